
/*
 * ngx_http_token_ratelimit_ctx.c - a request's record of its decision
 * (ngx_http_trl_ctx_t): made by the handler, read by the header filter
 * and the variables.  It lives in the request pool and is registered as a
 * pool cleanup, where it is found again after an internal redirect has
 * cleared the module contexts.
 */


#include "ngx_http_token_ratelimit.h"


static void ngx_http_trl_cleanup(void *data);


ngx_http_trl_ctx_t *
ngx_http_trl_create_ctx(ngx_http_request_t *r, ngx_uint_t n)
{
    ngx_pool_cleanup_t  *cln;
    ngx_http_trl_ctx_t  *ctx;

    cln = ngx_pool_cleanup_add(r->pool, sizeof(ngx_http_trl_ctx_t)
                                        + n * sizeof(ngx_http_trl_applied_t));
    if (cln == NULL) {
        return NULL;
    }

    ctx = cln->data;
    ngx_memzero(ctx, sizeof(ngx_http_trl_ctx_t));
    ctx->applied = (ngx_http_trl_applied_t *) (ctx + 1);

    cln->handler = ngx_http_trl_cleanup;

    ngx_http_set_ctx(r, ctx, ngx_http_token_ratelimit_module);

    return ctx;
}


/*
 * Internal redirects (and named locations) clear the module contexts and
 * set r->internal; only then is the pool cleanup list searched.
 */

ngx_http_trl_ctx_t *
ngx_http_trl_get_ctx(ngx_http_request_t *r)
{
    ngx_pool_cleanup_t  *cln;
    ngx_http_trl_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r->main, ngx_http_token_ratelimit_module);

    if (ctx || !r->main->internal) {
        return ctx;
    }

    for (cln = r->main->pool->cleanup; cln; cln = cln->next) {
        if (cln->handler == ngx_http_trl_cleanup) {
            ctx = cln->data;
            ngx_http_set_ctx(r->main, ctx, ngx_http_token_ratelimit_module);
            return ctx;
        }
    }

    return NULL;
}


static void
ngx_http_trl_cleanup(void *data)
{
    /*
     * Nothing to free: the context lives in the request pool.  The cleanup
     * exists so that ngx_http_trl_get_ctx() finds the context again after
     * an internal redirect.
     */
}
