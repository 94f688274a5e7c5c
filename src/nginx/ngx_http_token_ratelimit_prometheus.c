
/*
 * ngx_http_token_ratelimit_prometheus.c - token_ratelimit_api's metrics in
 * the Prometheus text exposition format.
 */


#include "ngx_http_token_ratelimit.h"
#include "ngx_http_token_ratelimit_api.h"


ngx_int_t
ngx_http_trl_api_prometheus(ngx_http_request_t *r,
    ngx_http_trl_main_conf_t *tmcf)
{
    ngx_http_trl_out_t  out;

    ngx_http_trl_out_init(&out, r);
    ngx_http_trl_out_printf(&out, "# placeholder\n");

    return ngx_http_trl_out_send(&out, NGX_HTTP_OK,
                                 "text/plain; version=0.0.4; charset=utf-8");
}
