
/*
 * ngx_http_token_ratelimit_sync_script.c - between the core's script
 * codecs (trl_scripts.h) and the Redis link: a zone key's Redis name, a
 * zone as its scripts see it, and an encoded argument vector sent.
 */


#include "ngx_http_token_ratelimit_sync.h"


#define NGX_HTTP_TRL_ARGS_STACK  16


static void ngx_http_trl_ignore_reply(redisReply *reply, void *data);


/*
 * The key's Redis name, <prefix>{<zone>:<key>} (a long key: its beginning
 * and a hash, see trl_redis_key), from pool, or from ngx_alloc when pool
 * is NULL (the caller frees it).  Every Redis name of a zone key is made
 * here.
 */

ngx_int_t
ngx_http_trl_redis_name(ngx_pool_t *pool, ngx_http_trl_zone_t *zone,
    ngx_str_t *key, ngx_str_t *name)
{
    size_t                      size;
    ngx_http_trl_redis_conf_t  *rc;

    rc = ngx_http_trl_redis_conf();

    size = rc->prefix.len + zone->name.len + TRL_REDIS_NAME_MAX;

    name->data = pool ? ngx_pnalloc(pool, size)
                      : ngx_alloc(size, ngx_cycle->log);
    if (name->data == NULL) {
        name->len = 0;
        return NGX_ERROR;
    }

    name->len = trl_redis_key((char *) rc->prefix.data, rc->prefix.len,
                              (char *) zone->name.data, zone->name.len,
                              key->data, key->len, (char *) name->data,
                              size);

    if (name->len == 0 || name->len > size) {
        if (pool == NULL) {
            ngx_free(name->data);
        }

        name->data = NULL;
        name->len = 0;
        return NGX_ERROR;
    }

    return NGX_OK;
}


void
ngx_http_trl_script_zone(ngx_http_trl_zone_t *zone, trl_script_zone_t *sz)
{
    sz->window_ms = zone->rate.window_ms;
    sz->limit = zone->rate.limit;
    sz->node_id = trl_zone_node_id(zone->core);
}


/*
 * Sends a script with the arguments the core encoded (its first nkeys are
 * its keys).  The link copies the command: argv may go when this returns.
 * A handler NULL: the reply is not read.  Anything but NGX_OK (the link
 * is down, or under cluster= the node of the keys' slot is) is an outage
 * for this call, and the handler is not called.
 */

ngx_int_t
ngx_http_trl_script_eval(ngx_uint_t script, ngx_uint_t nkeys,
    trl_argv_t *argv, ngx_msec_t timeout, ngx_http_trl_reply_pt handler,
    void *data)
{
    ngx_int_t    rv;
    ngx_str_t   *args, stack[NGX_HTTP_TRL_ARGS_STACK];
    ngx_uint_t   i;

    if (argv->n == 0 || nkeys > argv->n) {
        return NGX_ERROR;
    }

    args = stack;

    if (argv->n > NGX_HTTP_TRL_ARGS_STACK) {
        args = ngx_alloc(argv->n * sizeof(ngx_str_t), ngx_cycle->log);
        if (args == NULL) {
            return NGX_ERROR;
        }
    }

    for (i = 0; i < argv->n; i++) {
        args[i].data = (u_char *) argv->args[i].data;
        args[i].len = argv->args[i].len;
    }

    rv = ngx_http_trl_redis_eval(script, nkeys, args, argv->n, timeout,
                                 handler ? handler
                                         : ngx_http_trl_ignore_reply,
                                 data);

    if (args != stack) {
        ngx_free(args);
    }

    return rv;
}


static void
ngx_http_trl_ignore_reply(redisReply *reply, void *data)
{
}


/* Redis can decide now (with cluster=, some master can) */

ngx_uint_t
ngx_http_trl_sync_available(void)
{
    return ngx_http_trl_redis_ready();
}


/*
 * Redis cannot decide for a: with fail=closed, a becomes a 503 with
 * Retry-After: 1 (its rate-limit headers say the same) and 1 is returned;
 * with fail=open, 0 (the node decides).
 */

ngx_uint_t
ngx_http_trl_fail_closed(ngx_http_trl_applied_t *a)
{
    ngx_http_trl_redis_conf_t  *rc;

    rc = ngx_http_trl_redis_conf();

    if (rc == NULL || !rc->fail_closed) {
        return 0;
    }

    a->unavailable = 1;
    a->rejected = 1;
    a->retry_after = 1;
    a->reset = ngx_time() + 1;
    a->reset_in = 1;

    return 1;
}
