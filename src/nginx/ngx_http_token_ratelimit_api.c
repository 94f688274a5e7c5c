
/*
 * ngx_http_token_ratelimit_api.c - token_ratelimit_api: a content handler
 * for monitoring and administration, guarded by nginx's own allow/deny;
 * this file routes a call to the file that answers it.
 *
 *   GET    {loc}/                         everything, JSON
 *   GET    {loc}/zones  {loc}/zones/NAME  zones
 *   GET    {loc}/zones/NAME/keys?key=K    one key (or key_hex=)
 *   DELETE {loc}/zones/NAME/keys?key=K    reset it (cluster-wide: sync)
 *   GET    {loc}/metrics                  Prometheus text (also
 *                                         {loc}/?format=prometheus, a
 *                                         scraper's Accept at {loc}/, or
 *                                         an exact location ".../metrics")
 *   GET    {loc}/dashboard                a live HTML dashboard (and its
 *                                         dashboard.js, dashboard.css)
 *   GET    {loc}/lists                    runtime allow/deny entries
 *   POST   {loc}/lists/allow|deny?...     add one (address=, cidr= or
 *                                         key= [zone=]; ttl=)
 *   DELETE {loc}/lists/ID                 remove one
 *   ...    {loc}/reputation[/NAME]        IP reputation lists (see
 *                                         api_reputation.c)
 *   ...    {loc}/attack[/ZONE]            attack mode (api_attack.c)
 *   ...    {loc}/v1/..., {loc}/crowdsec   a CrowdSec LAPI for bouncers
 *                                         (see api_crowdsec.c)
 *
 * A wrong method gets 405 (with Allow), an unknown zone, entry or path 404,
 * malformed input 400 with a JSON error, all without touching any state.
 *
 * Cross-site requests (SPEC 7): a request with any method but GET, HEAD
 * and OPTIONS whose Sec-Fetch-Site is not "same-origin" or "none", or
 * whose Origin is not the request's own scheme, host and port, gets 403
 * with a JSON error before any route is looked at (so an unknown path or
 * a wrong method is refused the same way: the refusal tells nothing).
 */


#include "ngx_http_token_ratelimit.h"
#include "ngx_http_token_ratelimit_api.h"
#include "ngx_http_token_ratelimit_crowdsec.h"


static ngx_int_t ngx_http_trl_api_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_trl_api_all(ngx_http_request_t *r,
    ngx_http_trl_main_conf_t *tmcf);
static ngx_uint_t ngx_http_trl_api_wants_text(ngx_http_request_t *r);
static ngx_uint_t ngx_http_trl_api_exact_metrics(
    ngx_http_core_loc_conf_t *clcf);


char *
ngx_http_trl_api_directive(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_core_loc_conf_t  *clcf;
    ngx_http_trl_main_conf_t  *tmcf;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);

#if (NGX_PCRE)
    if (clcf->regex) {
        return "cannot be used in a regex location: its paths are found "
               "below the location's prefix";
    }
#endif

    clcf->handler = ngx_http_trl_api_handler;

    tmcf = ngx_http_conf_get_module_main_conf(cf,
                                              ngx_http_token_ratelimit_module);
    tmcf->api = 1;

    return NGX_CONF_OK;
}


/* Whether a location serves token_ratelimit_api (known once it is read). */

ngx_uint_t
ngx_http_trl_api_location(ngx_http_core_loc_conf_t *clcf)
{
    return clcf->handler == ngx_http_trl_api_handler;
}


static ngx_int_t
ngx_http_trl_api_handler(ngx_http_request_t *r)
{
    ngx_int_t                  rc;
    ngx_str_t                  path, part, format;
    ngx_uint_t                 reputation;
    ngx_table_elt_t           *h;
    ngx_http_core_loc_conf_t  *clcf;
    ngx_http_trl_main_conf_t  *tmcf;

    tmcf = ngx_http_get_module_main_conf(r, ngx_http_token_ratelimit_module);
    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

    /* the path below the location: "", "zones/login", "lists/7" ... */

    path = r->uri;

    if (clcf->name.len && path.len >= clcf->name.len
        && ngx_strncmp(path.data, clcf->name.data, clcf->name.len) == 0)
    {
        path.data += clcf->name.len;
        path.len -= clcf->name.len;
    }

    while (path.len && path.data[0] == '/') {
        path.data++;
        path.len--;
    }

    while (path.len && path.data[path.len - 1] == '/') {
        path.len--;
    }

    /* no call takes a body (POST takes query arguments) but reputation
     * lists: api_reputation.c reads or discards it */

    reputation = path.len >= 10
                 && ngx_strncmp(path.data, "reputation", 10) == 0
                 && (path.len == 10 || path.data[10] == '/');

    rc = reputation ? NGX_OK : ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    /* SPEC 7: nothing a cross-site request asks for is looked at */

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD|NGX_HTTP_OPTIONS))) {
        h = ngx_http_trl_api_cross_site(r);

        if (h) {
            ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                           "token_ratelimit_api: cross-site check: %V "
                           "refused by its %V", &r->method_name, &h->key);

            rc = ngx_http_discard_request_body(r);
            if (rc != NGX_OK) {
                return rc;
            }

            return ngx_http_trl_api_refuse(r, h);
        }

        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "token_ratelimit_api: cross-site check: %V passed",
                       &r->method_name);
    }

    /* "location = /x/metrics { token_ratelimit_api; }" is {loc}/metrics */

    if (path.len == 0 && ngx_http_trl_api_exact_metrics(clcf)) {
        ngx_str_set(&path, "metrics");
    }

    if (path.len == 0) {
        if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
            return ngx_http_trl_out_not_allowed(r, "GET, HEAD");
        }

        if ((ngx_http_trl_api_arg(r, "format", &format) == NGX_OK
             && format.len == 10
             && ngx_strncmp(format.data, "prometheus", 10) == 0)
            || ngx_http_trl_api_wants_text(r))
        {
            return ngx_http_trl_api_prometheus(r, tmcf);
        }

        return ngx_http_trl_api_all(r, tmcf);
    }

    if (path.len == 7 && ngx_strncmp(path.data, "metrics", 7) == 0) {
        if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
            return ngx_http_trl_out_not_allowed(r, "GET, HEAD");
        }

        return ngx_http_trl_api_prometheus(r, tmcf);
    }

    /* dashboard, and its script and style: dashboard.js, dashboard.css */

    if (path.len >= 9 && ngx_strncmp(path.data, "dashboard", 9) == 0
        && (path.len == 9 || path.data[9] == '.'))
    {
        if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
            return ngx_http_trl_out_not_allowed(r, "GET, HEAD");
        }

        part.data = path.data + 9;
        part.len = path.len - 9;

        return ngx_http_trl_api_dashboard(r, &part);
    }

    if (path.len >= 5 && ngx_strncmp(path.data, "lists", 5) == 0
        && (path.len == 5 || path.data[5] == '/'))
    {
        part.data = path.data + ngx_min(path.len, 6);
        part.len = path.len - ngx_min(path.len, 6);

        return ngx_http_trl_api_lists(r, tmcf, &part);
    }

    if (path.len >= 6 && ngx_strncmp(path.data, "attack", 6) == 0
        && (path.len == 6 || path.data[6] == '/'))
    {
        part.data = path.data + ngx_min(path.len, 7);
        part.len = path.len - ngx_min(path.len, 7);

        return ngx_http_trl_api_attack(r, tmcf, &part);
    }

    if (reputation) {
        part.data = path.data + ngx_min(path.len, 11);
        part.len = path.len - ngx_min(path.len, 11);

        return ngx_http_trl_api_reputation(r, tmcf, &part);
    }

    if ((path.len == 8 && ngx_strncmp(path.data, "crowdsec", 8) == 0)
        || (path.len > 3 && ngx_strncmp(path.data, "v1/", 3) == 0))
    {
        return ngx_http_trl_api_crowdsec(r, tmcf, &path);
    }

    if (path.len >= 5 && ngx_strncmp(path.data, "zones", 5) == 0
        && (path.len == 5 || path.data[5] == '/'))
    {
        part.data = path.data + ngx_min(path.len, 6);
        part.len = path.len - ngx_min(path.len, 6);

        /* zones/NAME/keys */

        if (part.len > 5
            && ngx_strncmp(part.data + part.len - 5, "/keys", 5) == 0)
        {
            part.len -= 5;
            return ngx_http_trl_api_key(r, tmcf, &part);
        }

        if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
            return ngx_http_trl_out_not_allowed(r, "GET, HEAD");
        }

        return ngx_http_trl_api_zones(r, tmcf, part.len ? &part : NULL);
    }

    return ngx_http_trl_out_error(r, NGX_HTTP_NOT_FOUND, "not_found",
                                  "no such API path");
}


/* GET {loc}/ */

static ngx_int_t
ngx_http_trl_api_all(ngx_http_request_t *r, ngx_http_trl_main_conf_t *tmcf)
{
    uint64_t             now_ms;
    ngx_http_trl_out_t   out;

    now_ms = trl_clock_ms();

    ngx_http_trl_out_init(&out, r);

    ngx_http_trl_out_printf(&out,
                            "{\"module\":\"token_ratelimit\","
                            "\"nginx\":\"%s\",\"pid\":%P,\"time\":%T,"
                            "\"redis\":",
                            NGINX_VERSION, ngx_pid, ngx_time());

    ngx_http_trl_api_redis(&out, tmcf);

    ngx_http_trl_out_printf(&out, ",\"zones\":");
    ngx_http_trl_api_zone_map(&out, tmcf, now_ms);
    ngx_http_trl_out_printf(&out, ",\"lists\":");
    ngx_http_trl_api_entries(&out, tmcf);
    ngx_http_trl_out_printf(&out, "}\n");

    return ngx_http_trl_out_send(&out, NGX_HTTP_OK, "application/json");
}


/*
 * A Prometheus scraper asks for text (its Accept names openmetrics-text
 * or text/plain, never JSON); browsers and curl get JSON.
 */

static ngx_uint_t
ngx_http_trl_api_wants_text(ngx_http_request_t *r)
{
#if (NGX_HTTP_HEADERS)
    ngx_str_t  *accept;

    if (r->headers_in.accept == NULL) {
        return 0;
    }

    accept = &r->headers_in.accept->value;

    return (ngx_strlcasestrn(accept->data, accept->data + accept->len,
                             (u_char *) "openmetrics-text", 16 - 1) != NULL
            || ngx_strlcasestrn(accept->data, accept->data + accept->len,
                                (u_char *) "text/plain", 10 - 1) != NULL)
           && ngx_strlcasestrn(accept->data, accept->data + accept->len,
                               (u_char *) "json", 4 - 1) == NULL
           && ngx_strlcasestrn(accept->data, accept->data + accept->len,
                               (u_char *) "text/html", 9 - 1) == NULL;
#else
    return 0;
#endif
}


/* "location = /x/metrics" (or "= /metrics"): the exporter's usual path */

static ngx_uint_t
ngx_http_trl_api_exact_metrics(ngx_http_core_loc_conf_t *clcf)
{
    return clcf->exact_match
           && clcf->name.len >= sizeof("/metrics") - 1
           && ngx_strncmp(clcf->name.data + clcf->name.len
                          - (sizeof("/metrics") - 1),
                          "/metrics", sizeof("/metrics") - 1) == 0;
}
