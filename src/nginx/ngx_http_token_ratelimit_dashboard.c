
/*
 * ngx_http_token_ratelimit_dashboard.c - token_ratelimit_api's live HTML
 * dashboard: {loc}/dashboard, {loc}/dashboard.js, {loc}/dashboard.css.
 *
 * The page is static; its script polls the API's JSON ({loc}/, found
 * relative to the script's own URL), keeps the last ten minutes of
 * per-zone rates in the browser and draws them as SVG. Self-contained: no
 * inline script or style and nothing fetched from elsewhere, so all three
 * are sent with a strict Content-Security-Policy. Every value from the API
 * reaches the page through textContent, never as markup (keys are chosen by
 * clients).
 *
 * The assets are real files under share/, turned into C strings in a
 * generated (and committed) header by scripts/embed-assets.pl, so that
 * they can be edited and checked as what they are, and nginx's own
 * ./configure --add-dynamic-module still builds them in.
 */


#include "ngx_http_token_ratelimit.h"
#include "ngx_http_token_ratelimit_api.h"
#include "ngx_http_token_ratelimit_util.h"


typedef struct {
    ngx_str_t                   name;
    ngx_str_t                   value;
} ngx_http_trl_dashboard_header_t;


static ngx_int_t ngx_http_trl_dashboard_headers(ngx_http_request_t *r);


/* the page (the two asset URLs go between its three parts), its style
 * and its script: share/dashboard.{html,css,js} */

#include "ngx_http_token_ratelimit_dashboard_assets.h"


static ngx_http_trl_dashboard_header_t  ngx_http_trl_dashboard_hdrs[] = {

    { ngx_string("Content-Security-Policy"),
      ngx_string("default-src 'none'; script-src 'self'; style-src 'self'; "
                 "img-src 'self' data:; connect-src 'self'; "
                 "base-uri 'none'; form-action 'none'; "
                 "frame-ancestors 'none'") },

    { ngx_string("X-Content-Type-Options"), ngx_string("nosniff") },
    { ngx_string("Cache-Control"), ngx_string("no-cache") },
    { ngx_string("Referrer-Policy"), ngx_string("no-referrer") },

    { ngx_null_string, ngx_null_string }
};


/* asset: "" (the page), ".js", ".css"; anything else is not found */

ngx_int_t
ngx_http_trl_api_dashboard(ngx_http_request_t *r, ngx_str_t *asset)
{
    size_t               i, up;
    const char          *type;
    ngx_http_trl_out_t   out;

    ngx_http_trl_out_init(&out, r);

    if (asset->len == 0) {

        /*
         * {loc}/dashboard/ works too: the page's relative URLs climb one
         * level for each slash the URI ends with
         */

        for (up = 0; up < r->uri.len && up < 16; up++) {
            if (r->uri.data[r->uri.len - 1 - up] != '/') {
                break;
            }
        }

        ngx_http_trl_out_cat(&out, (u_char *) ngx_http_trl_dashboard_html1,
                             sizeof(ngx_http_trl_dashboard_html1) - 1);

        for (i = 0; i < up; i++) {
            ngx_http_trl_out_cat(&out, (u_char *) "../", 3);
        }

        ngx_http_trl_out_cat(&out, (u_char *) ngx_http_trl_dashboard_html2,
                             sizeof(ngx_http_trl_dashboard_html2) - 1);

        for (i = 0; i < up; i++) {
            ngx_http_trl_out_cat(&out, (u_char *) "../", 3);
        }

        ngx_http_trl_out_cat(&out, (u_char *) ngx_http_trl_dashboard_html3,
                             sizeof(ngx_http_trl_dashboard_html3) - 1);

        type = "text/html; charset=utf-8";

    } else if (asset->len == 3 && ngx_strncmp(asset->data, ".js", 3) == 0) {
        ngx_http_trl_out_cat(&out, (u_char *) ngx_http_trl_dashboard_js,
                             sizeof(ngx_http_trl_dashboard_js) - 1);
        type = "application/javascript; charset=utf-8";

    } else if (asset->len == 4 && ngx_strncmp(asset->data, ".css", 4) == 0)
    {
        ngx_http_trl_out_cat(&out, (u_char *) ngx_http_trl_dashboard_css,
                             sizeof(ngx_http_trl_dashboard_css) - 1);
        type = "text/css; charset=utf-8";

    } else {
        return ngx_http_trl_out_error(r, NGX_HTTP_NOT_FOUND, "not_found",
                                      "no such API path");
    }

    if (ngx_http_trl_dashboard_headers(r) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_trl_out_send(&out, NGX_HTTP_OK, type);
}


static ngx_int_t
ngx_http_trl_dashboard_headers(ngx_http_request_t *r)
{
    ngx_http_trl_dashboard_header_t  *hd;

    for (hd = ngx_http_trl_dashboard_hdrs; hd->name.len; hd++) {
        if (ngx_http_trl_push_header(r, &hd->name, hd->value.data,
                                     hd->value.len)
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}
