
/*
 * ngx_http_token_ratelimit_sync_reset.c - a key of a sync zone forgotten
 * cluster-wide (token_ratelimit_api): its Redis entries are deleted, and
 * the reset travels to the other nodes as a list entry (sync_lists.c).
 */


#include "ngx_http_token_ratelimit_sync.h"


/* Forgets a key cluster-wide: every node drops it within two intervals. */

ngx_int_t
ngx_http_trl_sync_reset(ngx_http_trl_zone_t *zone, ngx_str_t *key)
{
    ngx_int_t                   rv;
    ngx_str_t                   name;
    ngx_pool_t                 *pool;
    trl_argv_t                  argv;
    trl_bytes_t                 args[TRL_RESET_ARGS], bytes;
    ngx_http_trl_redis_conf_t  *rc;

    rc = ngx_http_trl_redis_conf();
    if (rc == NULL) {
        return NGX_ERROR;
    }

    pool = ngx_create_pool(1024, ngx_cycle->log);
    if (pool == NULL) {
        return NGX_ERROR;
    }

    rv = ngx_http_trl_redis_name(pool, zone, key, &name);

    if (rv == NGX_OK) {
        bytes.data = (const char *) name.data;
        bytes.len = name.len;

        trl_argv_init(&argv, args, TRL_RESET_ARGS, NULL, 0);

        rv = trl_reset_encode(&bytes, &argv) == TRL_OK
             ? ngx_http_trl_script_eval(TRL_SCRIPT_RESET, 1, &argv,
                                        rc->timeout, NULL, NULL)
             : NGX_ERROR;
    }

    /* the link, or under cluster= the node of the key's slot, is down */

    if (rv != NGX_OK) {
        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                      "token_ratelimit: redis is unreachable, the reset of "
                      "a key of zone \"%V\" is local only", &zone->name);
    }

    ngx_destroy_pool(pool);                 /* the command keeps a copy */

    return rv == NGX_OK ? NGX_OK : NGX_ERROR;
}
