
/*
 * ngx_http_token_ratelimit_api_crowdsec_filter.c - the decisions a
 * bouncer's call asks for (decisions.c collects them all): the stream's
 * filters (scopes=, origins=, scenarios_containing=,
 * scenarios_not_containing=) and a live bouncer's (ip= or range=: only
 * the decisions that hold that address or range; scope=, value=, type=),
 * as crowdsec 1.4's local API applies them.
 */


#include "ngx_http_token_ratelimit.h"
#include "ngx_http_token_ratelimit_crowdsec.h"


typedef struct {
    ngx_str_t                   scopes;
    ngx_str_t                   origins;
    ngx_str_t                   containing;
    ngx_str_t                   not_containing;
    ngx_str_t                   scope;          /* exact, one */
    ngx_str_t                   value;          /* exact */
    ngx_str_t                   type;
    trl_cidr_t                  held;           /* ip= or range= */
    ngx_uint_t                  has_held;
} ngx_http_trl_crowdsec_filter_t;


static ngx_uint_t ngx_http_trl_crowdsec_wanted(
    ngx_http_trl_crowdsec_filter_t *f, trl_decision_t *d);
static ngx_uint_t ngx_http_trl_crowdsec_any(ngx_str_t *list, u_char *text,
    size_t len, ngx_uint_t substring);


/* the decisions in force that the bouncer's filters let through */

ngx_int_t
ngx_http_trl_crowdsec_collect(ngx_http_request_t *r,
    ngx_http_trl_main_conf_t *tmcf, ngx_array_t *decisions)
{
    u_char                          *dst, *src;
    ngx_str_t                       *arg;
    ngx_uint_t                       i, n;
    trl_decision_t                  *d;
    ngx_http_trl_crowdsec_filter_t   f;

    static const char  *names[] = { "scopes", "origins",
                                    "scenarios_containing",
                                    "scenarios_not_containing", "scope",
                                    "value", "type", "ip", "range" };

    ngx_str_t   ip, range;
    ngx_str_t  *args[] = { &f.scopes, &f.origins, &f.containing,
                           &f.not_containing, &f.scope, &f.value, &f.type,
                           &ip, &range };

    ngx_memzero(&f, sizeof(ngx_http_trl_crowdsec_filter_t));

    for (i = 0; i < sizeof(args) / sizeof(args[0]); i++) {
        arg = args[i];

        if (ngx_http_trl_api_arg(r, names[i], arg) != NGX_OK
            || arg->len == 0)
        {
            ngx_str_null(arg);
            continue;
        }

        dst = ngx_pnalloc(r->pool, arg->len);
        if (dst == NULL) {
            return NGX_ERROR;
        }

        src = arg->data;
        arg->data = dst;
        ngx_unescape_uri(&dst, &src, arg->len, NGX_UNESCAPE_URI);
        arg->len = dst - arg->data;
    }

    /* a live bouncer asks about one address (or range): the decisions
     * that hold it, never all */

    arg = ip.len ? &ip : range.len ? &range : NULL;

    if (arg) {
        if (trl_cidr_parse((char *) arg->data, arg->len, &f.held, NULL, 0)
            != TRL_OK
            || (arg == &ip && f.held.prefix != (f.held.family == 4 ? 32
                                                                  : 128)))
        {
            return NGX_DECLINED;
        }

        f.has_held = 1;
    }

    if (ngx_array_init(decisions, r->pool, 16, sizeof(trl_decision_t))
        != NGX_OK
        || ngx_http_trl_decisions(tmcf, r->pool, decisions) != NGX_OK)
    {
        return NGX_ERROR;
    }

    d = decisions->elts;
    n = 0;

    for (i = 0; i < decisions->nelts; i++) {
        if (ngx_http_trl_crowdsec_wanted(&f, &d[i])) {
            d[n++] = d[i];
        }
    }

    decisions->nelts = n;

    return NGX_OK;
}


static ngx_uint_t
ngx_http_trl_crowdsec_wanted(ngx_http_trl_crowdsec_filter_t *f,
    trl_decision_t *d)
{
    size_t      len;
    ngx_str_t   value;
    ngx_uint_t  whole;
    u_char      buf[NGX_INET6_ADDRSTRLEN + 5];

    len = ngx_strlen(d->scenario);
    whole = d->prefix == (d->family == 4 ? 32 : 128);

    if (f->has_held && !trl_decision_covers(d, &f->held)) {
        return 0;
    }

    if (f->type.len
        && (f->type.len != 3 || ngx_strncasecmp(f->type.data,
                                                (u_char *) "ban", 3) != 0))
    {
        return 0;
    }

    if (f->scope.len
        && !(whole ? f->scope.len == 2
                     && ngx_strncasecmp(f->scope.data, (u_char *) "ip", 2)
                        == 0
                   : f->scope.len == 5
                     && ngx_strncasecmp(f->scope.data, (u_char *) "range",
                                        5) == 0))
    {
        return 0;
    }

    if (f->value.len) {
        ngx_http_trl_decision_value(d, &value, buf);

        if (value.len != f->value.len
            || ngx_strncmp(value.data, f->value.data, value.len) != 0)
        {
            return 0;
        }
    }

    if (f->scopes.len
        && !ngx_http_trl_crowdsec_any(&f->scopes,
                                      (u_char *) (d->prefix
                                                  == (d->family == 4
                                                      ? 32 : 128)
                                                  ? "ip" : "range"),
                                      d->prefix == (d->family == 4 ? 32 : 128)
                                      ? 2 : 5, 0))
    {
        return 0;
    }

    if (f->origins.len
        && !ngx_http_trl_crowdsec_any(&f->origins,
                                      (u_char *) NGX_HTTP_TRL_CROWDSEC_ORIGIN,
                                      sizeof(NGX_HTTP_TRL_CROWDSEC_ORIGIN) - 1,
                                      0))
    {
        return 0;
    }

    if (f->containing.len
        && !ngx_http_trl_crowdsec_any(&f->containing, (u_char *) d->scenario,
                                      len, 1))
    {
        return 0;
    }

    if (f->not_containing.len
        && ngx_http_trl_crowdsec_any(&f->not_containing,
                                     (u_char *) d->scenario, len, 1))
    {
        return 0;
    }

    return 1;
}


/* 1 when an item of the comma-separated list is text (case-insensitive),
 * or with substring, is found in it */

static ngx_uint_t
ngx_http_trl_crowdsec_any(ngx_str_t *list, u_char *text, size_t len,
    ngx_uint_t substring)
{
    u_char  *p, *end, *comma;
    size_t   n;

    p = list->data;
    end = list->data + list->len;

    while (p < end) {
        comma = ngx_strlchr(p, end, ',');
        if (comma == NULL) {
            comma = end;
        }

        n = comma - p;

        if (n && (substring
                  ? ngx_strlcasestrn(text, text + len, p, n - 1) != NULL
                  : n == len && ngx_strncasecmp(p, text, n) == 0))
        {
            return 1;
        }

        p = comma + 1;
    }

    return 0;
}
