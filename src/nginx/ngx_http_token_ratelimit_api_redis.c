
/*
 * ngx_http_token_ratelimit_api_redis.c - the API's "redis" object: the
 * topology (single, sentinel, cluster) and the node's view of its health.
 */


#include "ngx_http_token_ratelimit.h"
#include "ngx_http_token_ratelimit_api.h"


static void ngx_http_trl_api_redis_cluster(ngx_http_trl_out_t *out,
    ngx_http_trl_redis_conf_t *rc, ngx_http_trl_redis_state_t *st);


void
ngx_http_trl_api_redis(ngx_http_trl_out_t *out,
    ngx_http_trl_main_conf_t *tmcf)
{
    ngx_uint_t                  i;
    ngx_http_trl_redis_addr_t  *sa;
    ngx_http_trl_redis_state_t  st;

    if (tmcf->redis == NULL) {
        ngx_http_trl_out_cat(out, (u_char *) "null", 4);
        return;
    }

    ngx_http_trl_redis_state(&st);

    if (tmcf->redis->cluster) {
        ngx_http_trl_api_redis_cluster(out, tmcf->redis, &st);

    } else if (tmcf->redis->sentinels == NULL) {
        ngx_http_trl_out_printf(out, "{\"mode\":\"single\",\"address\":");
        ngx_http_trl_out_json(out, tmcf->redis->address.data,
                              tmcf->redis->address.len);

    } else {

        /* the master the sentinels named last, and who they are */

        ngx_http_trl_out_printf(out, "{\"mode\":\"sentinel\","
                                "\"master_name\":");
        ngx_http_trl_out_json(out, tmcf->redis->master.data,
                              tmcf->redis->master.len);
        ngx_http_trl_out_printf(out, ",\"sentinels\":[");

        sa = tmcf->redis->sentinels->elts;

        for (i = 0; i < tmcf->redis->sentinels->nelts; i++) {
            if (i) {
                ngx_http_trl_out_cat(out, (u_char *) ",", 1);
            }

            ngx_http_trl_out_json(out, sa[i].text.data, sa[i].text.len);
        }

        ngx_http_trl_out_printf(out, "],\"failovers\":%ui,\"address\":",
                                st.failovers);

        if (st.master_len) {
            ngx_http_trl_out_json(out, st.master, st.master_len);
        } else {
            ngx_http_trl_out_cat(out, (u_char *) "null", 4);
        }
    }

    ngx_http_trl_out_printf(out,
                            ",\"up\":%s,\"outages\":%ui,\"failures\":%ui,"
                            "\"down_since\":",
                            st.up ? "true" : "false", st.outages,
                            st.failures);

    if (st.down_since) {
        ngx_http_trl_out_printf(out, "%T", st.down_since);
    } else {
        ngx_http_trl_out_cat(out, (u_char *) "null", 4);
    }

    /* why it is down: the latest failure, the first line of an error */

    ngx_http_trl_out_cat(out, (u_char *) ",\"reason\":", 10);

    if (!st.up && st.reason_len) {
        ngx_http_trl_out_json(out, st.reason, st.reason_len);
    } else {
        ngx_http_trl_out_cat(out, (u_char *) "null", 4);
    }

    ngx_http_trl_out_cat(out, (u_char *) "}", 1);
}


/*
 * cluster=: the seeds, and the masters of the slot map the node installed
 * last, each with its slots and whether its link is up.
 */

static void
ngx_http_trl_api_redis_cluster(ngx_http_trl_out_t *out,
    ngx_http_trl_redis_conf_t *rc, ngx_http_trl_redis_state_t *st)
{
    ngx_uint_t                    i;
    ngx_http_trl_redis_addr_t    *sa;
    ngx_http_trl_redis_master_t  *m;

    ngx_http_trl_out_printf(out, "{\"mode\":\"cluster\",\"seeds\":[");

    sa = rc->cluster->elts;

    for (i = 0; i < rc->cluster->nelts; i++) {
        if (i) {
            ngx_http_trl_out_cat(out, (u_char *) ",", 1);
        }

        ngx_http_trl_out_json(out, sa[i].text.data, sa[i].text.len);
    }

    ngx_http_trl_out_printf(out, "],\"masters\":[");

    for (i = 0; i < st->nmasters; i++) {
        m = &st->masters[i];

        ngx_http_trl_out_printf(out, "%s{\"address\":", i ? "," : "");
        ngx_http_trl_out_json(out, m->addr, m->addr_len);
        ngx_http_trl_out_printf(out, ",\"slots\":%ui,\"up\":%s}", m->slots,
                                m->up ? "true" : "false");
    }

    ngx_http_trl_out_printf(out, "],\"slots_unserved\":%ui,\"maps\":%ui,"
                            "\"slots_moved\":%ui,\"failovers\":%ui,"
                            "\"address\":null", st->unserved, st->maps,
                            st->slots_moved, st->failovers);
}
