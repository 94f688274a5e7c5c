
/*
 * ngx_http_token_ratelimit_sentinel.c - finds the master of
 * "token_ratelimit_redis sentinel=... master=NAME" for a worker's link:
 * the asker puts "SENTINEL get-master-addr-by-name NAME" to the sentinels
 * in turn.  The link asks again before every connection it makes, so a
 * failover is followed as soon as the old master fails, refuses a write
 * (READONLY) or says it is no master (ROLE).
 */


#include "ngx_http_token_ratelimit_redis_link.h"


typedef struct {
    ngx_http_trl_asker_t         asker;
    ngx_http_trl_master_pt       handler;
    ngx_uint_t                   port;
    u_char                       host[NGX_SOCKADDR_STRLEN + 1];
    u_char                       why[96];
} ngx_http_trl_sentinel_t;


static const char *ngx_http_trl_sentinel_read(ngx_http_trl_asker_t *q,
    redisReply *reply);
static void ngx_http_trl_sentinel_done(ngx_http_trl_asker_t *q,
    const char *err);


static ngx_http_trl_sentinel_t  ngx_http_trl_sentinel;


/*
 * Asks the sentinels for the master; the handler is called once, with the
 * master's numeric address, or with an error when no sentinel told it.
 */

void
ngx_http_trl_sentinel_ask(ngx_http_trl_redis_conf_t *rc, ngx_log_t *log,
    ngx_http_trl_master_pt handler)
{
    ngx_http_trl_asker_t     *q;
    ngx_http_trl_sentinel_t  *s = &ngx_http_trl_sentinel;

    q = &s->asker;

    if (q->busy) {
        ngx_http_trl_asker_stop(q);
    }

    q->log = log;
    q->servers = rc->sentinels->elts;
    q->nservers = rc->sentinels->nelts;
    q->password = rc->sentinel_password;
    q->what = "sentinel";
    q->argc = 3;
    q->argv[0] = "SENTINEL";
    q->argvlen[0] = 8;
    q->argv[1] = "get-master-addr-by-name";
    q->argvlen[1] = sizeof("get-master-addr-by-name") - 1;
    q->argv[2] = (char *) rc->master.data;
    q->argvlen[2] = rc->master.len;
    q->timeout = rc->timeout;
    q->read = ngx_http_trl_sentinel_read;
    q->done = ngx_http_trl_sentinel_done;
    q->data = rc;

    s->handler = handler;

    ngx_http_trl_asker_start(q);
}


void
ngx_http_trl_sentinel_exit(void)
{
    ngx_http_trl_sentinel.handler = NULL;

    if (ngx_http_trl_sentinel.asker.log) {
        ngx_http_trl_asker_stop(&ngx_http_trl_sentinel.asker);
    }
}


static const char *
ngx_http_trl_sentinel_read(ngx_http_trl_asker_t *q, redisReply *reply)
{
    u_char                   *p;
    size_t                    len;
    ngx_int_t                 port;
    redisReply               *h, *pt;
    ngx_http_trl_sentinel_t  *s = &ngx_http_trl_sentinel;

    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2) {
        return "does not know the master";
    }

    h = reply->element[0];
    pt = reply->element[1];

    if (h->type != REDIS_REPLY_STRING || pt->type != REDIS_REPLY_STRING
        || h->len == 0 || h->len > NGX_SOCKADDR_STRLEN)
    {
        return "unexpected answer";
    }

    port = ngx_atoi((u_char *) pt->str, pt->len);
    len = h->len;
    p = (u_char *) h->str;

    /* numeric only: a worker never resolves a name */

    if (port < 1 || port > 65535 || !ngx_http_trl_redis_numeric(p, len)) {
        p = ngx_snprintf(s->why, sizeof(s->why) - 1,
                         "not a numeric address: %*s",
                         ngx_min(len, (size_t) 48), p);
        *p = '\0';

        return (char *) s->why;
    }

    ngx_memcpy(s->host, p, len);
    s->host[len] = '\0';
    s->port = (ngx_uint_t) port;

    return NULL;
}


static void
ngx_http_trl_sentinel_done(ngx_http_trl_asker_t *q, const char *err)
{
    ngx_http_trl_master_pt    handler;
    ngx_http_trl_sentinel_t  *s = &ngx_http_trl_sentinel;

    handler = s->handler;
    s->handler = NULL;

    if (handler == NULL) {
        return;
    }

    if (err) {
        handler(NULL, 0, err);
        return;
    }

    handler(s->host, s->port, NULL);
}
