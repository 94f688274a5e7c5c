
/*
 * ngx_http_token_ratelimit_redis_topology.c - which Redis the link talks
 * to: one server (an address, or the master the sentinels name: a single
 * link a worker) or a Redis Cluster (redis_cluster.c: a link per master);
 * the link's face to the rest of the module (ready, configuration, key
 * slots, the node's state for the API).
 */


#include "ngx_http_token_ratelimit_redis_link.h"


static ngx_http_trl_link_t *ngx_http_trl_redis_single_route(ngx_str_t *key);


static ngx_http_trl_redis_conf_t  *ngx_http_trl_redis_cf;  /* NULL: none,
                                                               or exiting */
static ngx_http_trl_link_t        *ngx_http_trl_single;    /* not cluster= */


ngx_int_t
ngx_http_trl_redis_init_process(ngx_cycle_t *cycle,
    ngx_http_trl_redis_conf_t *rc)
{
    ngx_http_trl_link_t  *link;

    ngx_http_trl_redis_cf = rc;

    /*
     * The clock cached before the fork may be seconds old (large zones
     * take time to set up): the connect's deadline must not start late.
     */

    ngx_time_update();

    if (rc->cluster) {
        return ngx_http_trl_cluster_init(cycle, rc);
    }

    link = ngx_http_trl_link_create(rc, cycle->log,
                                    rc->sentinels ? NULL : rc->host.data,
                                    rc->port);
    if (link == NULL) {
        return NGX_ERROR;
    }

    ngx_http_trl_single = link;

    ngx_http_trl_redis_route(ngx_http_trl_redis_single_route);
    ngx_http_trl_link_start(link);

    return NGX_OK;
}


void
ngx_http_trl_redis_exit_process(void)
{
    if (ngx_http_trl_redis_cf == NULL) {
        return;
    }

    ngx_http_trl_redis_cf = NULL;       /* no reconnect from callbacks */

    if (ngx_http_trl_single) {
        ngx_http_trl_sentinel_exit();
        ngx_http_trl_link_close(ngx_http_trl_single);
        return;
    }

    ngx_http_trl_cluster_exit();
}


ngx_uint_t
ngx_http_trl_redis_ready(void)
{
    if (ngx_http_trl_single) {
        return ngx_http_trl_single->state == NGX_HTTP_TRL_LINK_READY;
    }

    return ngx_http_trl_redis_cf && ngx_http_trl_cluster_ready();
}


ngx_http_trl_redis_conf_t *
ngx_http_trl_redis_conf(void)
{
    return ngx_http_trl_redis_cf;
}


ngx_int_t
ngx_http_trl_redis_slot(ngx_str_t *key)
{
    if (ngx_http_trl_redis_cf == NULL
        || ngx_http_trl_redis_cf->cluster == NULL)
    {
        return -1;
    }

    return (ngx_int_t) trl_cluster_slot(key->data, key->len);
}


void
ngx_http_trl_redis_state(ngx_http_trl_redis_state_t *state)
{
    ngx_uint_t                    i;
    ngx_http_trl_redis_conf_t    *rc;
    ngx_http_trl_redis_shared_t  *sh;

    ngx_memzero(state, sizeof(ngx_http_trl_redis_state_t));

    rc = ngx_http_trl_redis_cf;

    if (rc == NULL) {
        return;
    }

    sh = ngx_http_trl_redis_shared(rc);

    state->configured = 1;
    state->up = sh->up;
    state->outages = sh->outages;
    state->failures = sh->failures;
    state->down_since = sh->up ? 0 : (time_t) sh->down_since;

    state->failovers = sh->failovers;

    ngx_spinlock(&sh->lock, ngx_pid, 1024);

    if (!state->up) {
        state->reason_len = ngx_min(sh->reason_len, NGX_HTTP_TRL_REASON_MAX);
        ngx_memcpy(state->reason, sh->reason, state->reason_len);
    }

    state->master_len = ngx_min(sh->master_len, NGX_HTTP_TRL_MASTER_LEN);
    ngx_memcpy(state->master, sh->master, state->master_len);

    /* cluster=: the masters of the map the node installed last */

    state->maps = sh->map_version;
    state->slots_moved = sh->slots_moved;
    state->unserved = sh->unserved;
    state->nmasters = ngx_min(sh->nmasters, NGX_HTTP_TRL_MASTERS_SHOWN);

    for (i = 0; i < state->nmasters; i++) {
        state->masters[i].addr_len = sh->masters[i].addr_len;
        ngx_memcpy(state->masters[i].addr, sh->masters[i].addr,
                   sh->masters[i].addr_len);
        state->masters[i].slots = sh->masters[i].slots;
        state->masters[i].up = sh->masters[i].up;
    }

    ngx_unlock(&sh->lock);
}


/* the one link (address or sentinel=) serves every key */

static ngx_http_trl_link_t *
ngx_http_trl_redis_single_route(ngx_str_t *key)
{
    return ngx_http_trl_single;
}
