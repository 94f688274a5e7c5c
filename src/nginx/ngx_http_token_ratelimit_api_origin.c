
/*
 * ngx_http_token_ratelimit_api_origin.c - token_ratelimit_api's guard
 * against cross-site requests (SPEC 7): a request with any method but
 * GET, HEAD and OPTIONS whose Sec-Fetch-Site is not "same-origin" or
 * "none", or whose Origin is not the request's own scheme, host and port,
 * gets 403 with a JSON error before any route is looked at.
 */


#include "ngx_http_token_ratelimit.h"
#include "ngx_http_token_ratelimit_api.h"


static ngx_uint_t ngx_http_trl_api_same_origin(ngx_http_request_t *r,
    ngx_str_t *origin);
static ngx_int_t ngx_http_trl_api_host_port(u_char *p, u_char *last,
    ngx_uint_t default_port, ngx_str_t *host, ngx_uint_t *port);


/*
 * SPEC 7, the rule of Go's http.CrossOriginProtection, both headers
 * checked: the Sec-Fetch-Site or Origin header that shows a request
 * from another origin, or NULL.  A header that cannot be read as the
 * request's own origin ("null", a path, a bad port, no Host to compare
 * with) shows another origin; a request with neither header (curl,
 * scripts) is not a browser's cross-site request and goes on.
 */

ngx_table_elt_t *
ngx_http_trl_api_cross_site(ngx_http_request_t *r)
{
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    part = &r->headers_in.headers.part;
    h = part->elts;

    for (i = 0; /* void */; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                return NULL;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].key.len == sizeof("Sec-Fetch-Site") - 1
            && ngx_strncasecmp(h[i].key.data, (u_char *) "Sec-Fetch-Site",
                               sizeof("Sec-Fetch-Site") - 1) == 0)
        {
            if ((h[i].value.len == sizeof("same-origin") - 1
                 && ngx_strncmp(h[i].value.data, "same-origin",
                                sizeof("same-origin") - 1) == 0)
                || (h[i].value.len == sizeof("none") - 1
                    && ngx_strncmp(h[i].value.data, "none",
                                   sizeof("none") - 1) == 0))
            {
                continue;
            }

            return &h[i];
        }

        if (h[i].key.len == sizeof("Origin") - 1
            && ngx_strncasecmp(h[i].key.data, (u_char *) "Origin",
                               sizeof("Origin") - 1) == 0
            && !ngx_http_trl_api_same_origin(r, &h[i].value))
        {
            return &h[i];
        }
    }
}


/*
 * Whether an Origin ("http://host[:port]", as browsers send it) is the
 * request's own: the connection's scheme (https with TLS), the Host
 * header's host (case-insensitive) and port, 80 or 443 where not given.
 */

static ngx_uint_t
ngx_http_trl_api_same_origin(ngx_http_request_t *r, ngx_str_t *origin)
{
    u_char      *p, *last;
    ngx_str_t    host, own_host;
    ngx_uint_t   https, port, own_port;

    p = origin->data;
    last = p + origin->len;

    if (origin->len > sizeof("http://") - 1
        && ngx_strncasecmp(p, (u_char *) "http://", sizeof("http://") - 1)
           == 0)
    {
        https = 0;
        p += sizeof("http://") - 1;

    } else if (origin->len > sizeof("https://") - 1
               && ngx_strncasecmp(p, (u_char *) "https://",
                                  sizeof("https://") - 1) == 0)
    {
        https = 1;
        p += sizeof("https://") - 1;

    } else {
        return 0;                   /* "null", another scheme */
    }

#if (NGX_HTTP_SSL)
    if (https != (r->connection->ssl != NULL)) {
        return 0;
    }
#else
    if (https) {
        return 0;
    }
#endif

    if (r->headers_in.host == NULL) {
        return 0;
    }

    if (ngx_http_trl_api_host_port(p, last, https ? 443 : 80, &host, &port)
        != NGX_OK
        || ngx_http_trl_api_host_port(r->headers_in.host->value.data,
                                      r->headers_in.host->value.data
                                      + r->headers_in.host->value.len,
                                      https ? 443 : 80, &own_host, &own_port)
           != NGX_OK)
    {
        return 0;
    }

    return port == own_port && host.len == own_host.len
           && ngx_strncasecmp(host.data, own_host.data, host.len) == 0;
}


/*
 * "host", "host:port", "[v6]" or "[v6]:port", nothing else (no path, no
 * user); an empty port is the default one.
 */

static ngx_int_t
ngx_http_trl_api_host_port(u_char *p, u_char *last, ngx_uint_t default_port,
    ngx_str_t *host, ngx_uint_t *port)
{
    u_char  *end, *q;

    if (p < last && *p == '[') {
        end = ngx_strlchr(p, last, ']');
        if (end == NULL) {
            return NGX_ERROR;
        }

        end++;

    } else {
        end = ngx_strlchr(p, last, ':');
        if (end == NULL) {
            end = last;
        }
    }

    host->data = p;
    host->len = end - p;

    if (host->len == 0) {
        return NGX_ERROR;
    }

    for (q = p; q < end; q++) {
        if (*q == '/' || *q == '@' || *q == '?' || *q == '#' || *q == '\\'
            || *q <= ' ' || *q == 0x7f)
        {
            return NGX_ERROR;
        }
    }

    *port = default_port;

    if (end == last) {
        return NGX_OK;
    }

    if (*end != ':' || last - end > 6) {
        return NGX_ERROR;
    }

    if (last - end == 1) {
        return NGX_OK;              /* "host:" */
    }

    *port = 0;

    for (q = end + 1; q < last; q++) {
        if (*q < '0' || *q > '9') {
            return NGX_ERROR;
        }

        *port = *port * 10 + (*q - '0');
    }

    return *port <= 65535 ? NGX_OK : NGX_ERROR;
}


/*
 * 403 for a cross-site request.  Each is logged at info (a page can send
 * many), and at most one a minute per worker at warn, so that attempts
 * show with the default error_log level too.
 */

ngx_int_t
ngx_http_trl_api_refuse(ngx_http_request_t *r, ngx_table_elt_t *h)
{
    ngx_str_t          value;
    ngx_uint_t         origin;

    static time_t      last_warn;
    static ngx_uint_t  quiet;

    origin = (h->key.len == sizeof("Origin") - 1);

    value = h->value;
    if (value.len > 100) {
        value.len = 100;            /* enough to tell it */
    }

    if (ngx_time() - last_warn >= 60) {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "token_ratelimit_api refused a cross-site %V request"
                      " (%s \"%V%s\"); %ui more since the last such warning,"
                      " logged at info", &r->method_name,
                      origin ? "Origin" : "Sec-Fetch-Site", &value,
                      h->value.len > value.len ? "..." : "", quiet);

        last_warn = ngx_time();
        quiet = 0;

    } else {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "token_ratelimit_api refused a cross-site %V request"
                      " (%s \"%V%s\")", &r->method_name,
                      origin ? "Origin" : "Sec-Fetch-Site", &value,
                      h->value.len > value.len ? "..." : "");
        quiet++;
    }

    return ngx_http_trl_out_error(r, NGX_HTTP_FORBIDDEN,
                                  "cross_site_request",
                                  origin
                                  ? "refused: a request that changes state"
                                    " must come from the API's own origin"
                                    " (its Origin is another one)"
                                  : "refused: a request that changes state"
                                    " must come from the API's own origin"
                                    " (its Sec-Fetch-Site is not"
                                    " same-origin)");
}
