
/*
 * ngx_http_token_ratelimit_util.c - small helpers every part of the glue
 * uses: the clocks, a response header field, JSON string escaping, a
 * directive's string with variables.
 */


#include "ngx_http_token_ratelimit_util.h"
#include "trl_core.h"


/* A string with variables of a directive, compiled; NULL on failure. */

ngx_http_complex_value_t *
ngx_http_trl_complex(ngx_conf_t *cf, ngx_str_t *value)
{
    ngx_http_complex_value_t          *cv;
    ngx_http_compile_complex_value_t   ccv;

    cv = ngx_pcalloc(cf->pool, sizeof(ngx_http_complex_value_t));
    if (cv == NULL) {
        return NULL;
    }

    ngx_memzero(&ccv, sizeof(ngx_http_compile_complex_value_t));

    ccv.cf = cf;
    ccv.value = value;
    ccv.complex_value = cv;

    if (ngx_http_compile_complex_value(&ccv) != NGX_OK) {
        return NULL;
    }

    return cv;
}


/* The wall clock in ms, as nginx cached it (list entries, log budgets). */

ngx_connection_t  ngx_http_trl_dumb_connection;   /* fd 0, never used */


uint64_t
ngx_http_trl_wall_ms(void)
{
    ngx_time_t  *tp;

    tp = ngx_timeofday();

    return (uint64_t) tp->sec * 1000 + tp->msec;
}


/*
 * The Unix time of a clock time of the zones (monotonic ms, trl_clock_ms):
 * a deadline (after now_ms) rounds up, never early; a moment past (or now)
 * rounds down.  The
 * offset between the two clocks is taken from fresh readings of both and
 * kept while it holds to within a second (it moves only when the wall
 * clock is stepped), so that a moment reads the same in every response:
 * not a second later because nginx's cached time lagged behind.
 */

time_t
ngx_http_trl_unix_time(uint64_t clock_ms, uint64_t now_ms)
{
    int64_t          unix_ms, cur;
    struct timeval   tv;

    static int64_t     offset;
    static ngx_uint_t  offset_set;

    ngx_gettimeofday(&tv);
    cur = (int64_t) tv.tv_sec * 1000 + tv.tv_usec / 1000
          - (int64_t) trl_clock_ms();

    if (!offset_set || cur - offset > 1000 || offset - cur > 1000) {
        offset = cur;
        offset_set = 1;
    }

    unix_ms = (int64_t) clock_ms + offset;

    return (time_t) ((unix_ms + (clock_ms > now_ms ? 999 : 0)) / 1000);
}


/* A response header field; name and value must outlive the request. */

ngx_int_t
ngx_http_trl_push_header(ngx_http_request_t *r, ngx_str_t *name,
    u_char *value, size_t len)
{
    ngx_table_elt_t  *h;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h->hash = 1;
    h->key = *name;
    h->value.data = value;
    h->value.len = len;
    h->lowcase_key = NULL;
#if (nginx_version >= 1023000)
    h->next = NULL;
#endif

    return NGX_OK;
}


/*
 * A JSON string's contents, from *s up to end, into p up to last: '"' and
 * '\' escaped, control bytes and DEL as \u00XX, valid UTF-8 kept as is,
 * and every byte of an invalid (or cut, overlong, surrogate, above
 * U+10FFFF) sequence as \ufffd, so that the output is valid UTF-8 and
 * valid JSON whatever the input.  It stops where the next character may
 * not fit (NGX_HTTP_TRL_JSON_ESCAPED_MAX bytes free are always enough);
 * *s is left at what was not written.
 */

u_char *
ngx_http_trl_json_escape(u_char *p, u_char *last, const u_char **s,
    const u_char *end)
{
    u_char         c;
    size_t         n, i, len;
    uint32_t       u, min;
    const u_char  *q;

    static u_char  hex[] = "0123456789abcdef";

    q = *s;

    while (q < end && last - p >= NGX_HTTP_TRL_JSON_ESCAPED_MAX) {
        c = *q;
        len = end - q;

        if (c >= 0x20 && c < 0x7f) {
            if (c == '"' || c == '\\') {
                *p++ = '\\';
            }

            *p++ = c;
            q++;
            continue;
        }

        if (c < 0x80) {
            *p++ = '\\';
            *p++ = 'u';
            *p++ = '0';
            *p++ = '0';
            *p++ = hex[c >> 4];
            *p++ = hex[c & 0xf];
            q++;
            continue;
        }

        if (c >= 0xc2 && c <= 0xdf) {
            n = 2;
            u = c & 0x1f;
            min = 0x80;

        } else if (c >= 0xe0 && c <= 0xef) {
            n = 3;
            u = c & 0x0f;
            min = 0x800;

        } else if (c >= 0xf0 && c <= 0xf4) {
            n = 4;
            u = c & 0x07;
            min = 0x10000;

        } else {
            n = 0;
            u = 0;
            min = 1;
        }

        if (n && n <= len) {
            for (i = 1; i < n; i++) {
                if ((q[i] & 0xc0) != 0x80) {
                    break;
                }

                u = (u << 6) | (q[i] & 0x3f);
            }

            if (i == n && u >= min && u <= 0x10ffff
                && (u < 0xd800 || u > 0xdfff))
            {
                p = ngx_cpymem(p, q, n);
                q += n;
                continue;
            }
        }

        p = ngx_cpymem(p, "\\ufffd", 6);
        q++;
    }

    *s = q;

    return p;
}


/* Adds the variables of a table ended by ngx_http_null_variable. */

ngx_int_t
ngx_http_trl_add_variable_table(ngx_conf_t *cf, ngx_http_variable_t *vars)
{
    ngx_http_variable_t  *var, *v;

    for (v = vars; v->name.len; v++) {
        var = ngx_http_add_variable(cf, &v->name, v->flags);
        if (var == NULL) {
            return NGX_ERROR;
        }

        var->get_handler = v->get_handler;
        var->data = v->data;
    }

    return NGX_OK;
}


/*
 * A client address as the lists take it: IPv4, an IPv4-mapped IPv6 address
 * as IPv4, IPv6; NGX_DECLINED for unix sockets.
 */

ngx_int_t
ngx_http_trl_client_addr(struct sockaddr *sa, int *family, u_char **addr)
{
#if (NGX_HAVE_INET6)
    struct sockaddr_in6  *sin6;
#endif

    switch (sa->sa_family) {

    case AF_INET:
        *family = 4;
        *addr = (u_char *) &((struct sockaddr_in *) sa)->sin_addr;
        return NGX_OK;

#if (NGX_HAVE_INET6)
    case AF_INET6:
        sin6 = (struct sockaddr_in6 *) sa;

        if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
            *family = 4;
            *addr = &sin6->sin6_addr.s6_addr[12];

        } else {
            *family = 6;
            *addr = sin6->sin6_addr.s6_addr;
        }

        return NGX_OK;
#endif

    default:
        return NGX_DECLINED;
    }
}


/*
 * 1 when a line of this kind may be written now (at most one a second per
 * worker), with *more the lines held back since the last; 0: held back,
 * counted.
 */

ngx_uint_t
ngx_http_trl_log_gate(ngx_http_trl_log_gate_t *gate, ngx_uint_t *more)
{
    time_t  now;

    now = ngx_time();

    if (now - gate->logged < 1) {
        gate->unlogged++;
        return 0;
    }

    *more = gate->unlogged;
    gate->logged = now;
    gate->unlogged = 0;

    return 1;
}
