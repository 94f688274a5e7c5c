
/*
 * ngx_http_token_ratelimit_api_args.c - token_ratelimit_api: what a call
 * names in its path and query string (a zone, a key by its bytes or its
 * hash), read and checked the same way by every route.
 */


#include "ngx_http_token_ratelimit.h"
#include "ngx_http_token_ratelimit_api.h"


ngx_int_t
ngx_http_trl_api_arg(ngx_http_request_t *r, const char *name,
    ngx_str_t *value)
{
    return ngx_http_arg(r, (u_char *) name, ngx_strlen(name), value);
}


/* key=URL-encoded text, or key_hex=hex bytes */

ngx_int_t
ngx_http_trl_api_key_arg(ngx_http_request_t *r, ngx_str_t *key)
{
    u_char     *dst, *src;
    ngx_int_t   hi, lo;
    ngx_str_t   arg;
    ngx_uint_t  i;

    if (ngx_http_trl_api_arg(r, "key", &arg) == NGX_OK) {
        if (arg.len == 0) {
            return NGX_ERROR;
        }

        dst = ngx_pnalloc(r->pool, arg.len);
        if (dst == NULL) {
            return NGX_ERROR;
        }

        key->data = dst;
        src = arg.data;
        ngx_unescape_uri(&dst, &src, arg.len, 0);
        key->len = dst - key->data;

        return key->len ? NGX_OK : NGX_ERROR;
    }

    if (ngx_http_trl_api_arg(r, "key_hex", &arg) == NGX_OK) {
        if (arg.len == 0 || arg.len % 2) {
            return NGX_ERROR;
        }

        key->data = ngx_pnalloc(r->pool, arg.len / 2);
        if (key->data == NULL) {
            return NGX_ERROR;
        }

        for (i = 0; i < arg.len / 2; i++) {
            hi = ngx_hextoi(&arg.data[2 * i], 1);
            lo = ngx_hextoi(&arg.data[2 * i + 1], 1);

            if (hi == NGX_ERROR || lo == NGX_ERROR) {
                return NGX_ERROR;
            }

            key->data[i] = (u_char) (hi * 16 + lo);
        }

        key->len = arg.len / 2;
        return NGX_OK;
    }

    return NGX_ERROR;
}


/* hash=32 hex digits (hi, then lo): NGX_DECLINED when absent */

ngx_int_t
ngx_http_trl_api_hash_arg(ngx_http_request_t *r, trl_hash_t *hash)
{
    ngx_int_t   d;
    ngx_str_t   arg;
    ngx_uint_t  i;

    if (ngx_http_trl_api_arg(r, "hash", &arg) != NGX_OK) {
        return NGX_DECLINED;
    }

    if (arg.len != 32) {
        return NGX_ERROR;
    }

    hash->hi = 0;
    hash->lo = 0;

    for (i = 0; i < 32; i++) {
        d = ngx_hextoi(&arg.data[i], 1);

        if (d == NGX_ERROR) {
            return NGX_ERROR;
        }

        if (i < 16) {
            hash->hi = hash->hi << 4 | (uint64_t) d;
        } else {
            hash->lo = hash->lo << 4 | (uint64_t) d;
        }
    }

    return NGX_OK;
}


ngx_http_trl_zone_t *
ngx_http_trl_api_find_zone(ngx_http_trl_main_conf_t *tmcf, ngx_str_t *name)
{
    ngx_uint_t             i;
    ngx_http_trl_zone_t  **zones;

    zones = tmcf->zones.elts;

    for (i = 0; i < tmcf->zones.nelts; i++) {
        if (zones[i]->name.len == name->len
            && ngx_strncmp(zones[i]->name.data, name->data, name->len) == 0
            && zones[i]->core != NULL)
        {
            return zones[i];
        }
    }

    return NULL;
}
