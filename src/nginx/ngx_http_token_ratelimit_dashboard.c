
/*
 * ngx_http_token_ratelimit_dashboard.c - token_ratelimit_api's live HTML
 * dashboard.
 */


#include "ngx_http_token_ratelimit.h"
#include "ngx_http_token_ratelimit_api.h"


ngx_int_t
ngx_http_trl_api_dashboard(ngx_http_request_t *r, ngx_str_t *asset)
{
    if (asset->len) {
        return ngx_http_trl_api_error(r, NGX_HTTP_NOT_FOUND, "not_found",
                                      "no such API path");
    }

    ngx_http_trl_out_t  out;

    ngx_http_trl_out_init(&out, r);
    ngx_http_trl_out_printf(&out, "<!doctype html><title>placeholder</title>\n");

    return ngx_http_trl_out_send(&out, NGX_HTTP_OK,
                                 "text/html; charset=utf-8");
}
