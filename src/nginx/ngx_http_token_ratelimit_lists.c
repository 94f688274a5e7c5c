
/*
 * ngx_http_token_ratelimit_lists.c - the runtime allow and deny entries
 * that token_ratelimit_api adds and removes: their shared memory (made when
 * some location has token_ratelimit_api, kept across reloads) and their
 * use on the request path.  An address entry acts like
 * token_ratelimit_bypass / token_ratelimit_deny for the client; a key
 * entry for the requests whose key in that zone (or any zone) is the key.
 */


#include "ngx_http_token_ratelimit.h"
#include "ngx_http_token_ratelimit_util.h"


#define NGX_HTTP_TRL_LISTS_SIZE  (512 * 1024)   /* some 2,000 entries */


static ngx_int_t ngx_http_trl_lists_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);


static ngx_str_t  ngx_http_trl_lists_name = ngx_string("token_ratelimit_lists");


char *
ngx_http_trl_lists_init_conf(ngx_conf_t *cf, ngx_http_trl_main_conf_t *tmcf)
{
    /* the API's entries, and the resets of sync zones between nodes */

    if (!tmcf->api && tmcf->redis == NULL && !tmcf->ban) {
        return NGX_CONF_OK;
    }

    tmcf->lists_zone = ngx_shared_memory_add(cf, &ngx_http_trl_lists_name,
                                             NGX_HTTP_TRL_LISTS_SIZE,
                                             &ngx_http_token_ratelimit_module);
    if (tmcf->lists_zone == NULL) {
        return NGX_CONF_ERROR;
    }

    tmcf->lists_zone->init = ngx_http_trl_lists_init_zone;
    tmcf->lists_zone->data = tmcf;

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_trl_lists_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_http_trl_main_conf_t  *otmcf = data;

    char                       err[128];
    size_t                     bytes;
    u_char                    *block;
    ngx_slab_pool_t           *shpool;
    ngx_http_trl_main_conf_t  *tmcf;

    ngx_cpystrn((u_char *) err, (u_char *) "no room for them", sizeof(err));

    tmcf = shm_zone->data;
    shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (otmcf || shm_zone->shm.exists) {
        block = shpool->data;
        tmcf->lists = trl_lists_attach(block, 0, err, sizeof(err));

    } else {
        bytes = (shpool->pfree > 1 ? shpool->pfree - 1 : 0) * ngx_pagesize;
        block = bytes ? ngx_slab_alloc(shpool, bytes) : NULL;

        if (block) {
            shpool->data = block;
            tmcf->lists = trl_lists_create(block, bytes, err, sizeof(err));
        }
    }

    if (tmcf->lists == NULL) {
        ngx_log_error(NGX_LOG_EMERG, shm_zone->shm.log, 0,
                      "token_ratelimit: the shared memory of the runtime "
                      "lists is unusable (%s); restart nginx", err);
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* NGX_DECLINED: no entry; NGX_OK: allowed (bypass); NGX_HTTP_FORBIDDEN */

ngx_int_t
ngx_http_trl_lists_addr(ngx_http_request_t *r,
    ngx_http_trl_main_conf_t *tmcf)
{
    int      family, rc;
    u_char  *addr;

    if (tmcf->lists == NULL
        || ngx_http_trl_client_addr(r->connection->sockaddr, &family, &addr)
           != NGX_OK)
    {
        return NGX_DECLINED;
    }

    rc = trl_lists_match_addr(tmcf->lists, family, addr,
                              ngx_http_trl_wall_ms());

    return rc == TRL_LIST_DENY ? NGX_HTTP_FORBIDDEN
           : rc == TRL_LIST_ALLOW ? NGX_OK : NGX_DECLINED;
}


ngx_int_t
ngx_http_trl_lists_key(ngx_http_trl_main_conf_t *tmcf,
    ngx_http_trl_zone_t *zone, ngx_str_t *key)
{
    int  rc;

    if (tmcf->lists == NULL) {
        return NGX_DECLINED;
    }

    rc = trl_lists_match_key(tmcf->lists, (char *) zone->name.data,
                             zone->name.len, key->data, key->len,
                             ngx_http_trl_wall_ms());

    return rc == TRL_LIST_DENY ? NGX_HTTP_FORBIDDEN
           : rc == TRL_LIST_ALLOW ? NGX_OK : NGX_DECLINED;
}

