
/*
 * ngx_http_token_ratelimit_out.c - a response body of unknown length,
 * built in pool buffers (the API's JSON, Prometheus text), and sending it.
 */


#include "ngx_http_token_ratelimit.h"
#include "ngx_http_token_ratelimit_api.h"


#define NGX_HTTP_TRL_OUT_CHUNK  8192


void
ngx_http_trl_out_init(ngx_http_trl_out_t *out, ngx_http_request_t *r)
{
    ngx_memzero(out, sizeof(ngx_http_trl_out_t));
    out->request = r;
}


/* Appends len bytes; on failure out->failed is set and later calls do
 * nothing. */

void
ngx_http_trl_out_cat(ngx_http_trl_out_t *out, const u_char *data, size_t len)
{
    size_t        n;
    ngx_buf_t    *b;
    ngx_chain_t  *cl;

    while (len && !out->failed) {

        b = out->last ? out->last->buf : NULL;

        if (b == NULL || b->last == b->end) {
            b = ngx_create_temp_buf(out->request->pool,
                                    ngx_max(len, NGX_HTTP_TRL_OUT_CHUNK));
            cl = ngx_alloc_chain_link(out->request->pool);

            if (b == NULL || cl == NULL) {
                out->failed = 1;
                return;
            }

            cl->buf = b;
            cl->next = NULL;

            if (out->last) {
                out->last->next = cl;
            } else {
                out->first = cl;
            }

            out->last = cl;
        }

        n = ngx_min(len, (size_t) (b->end - b->last));
        b->last = ngx_cpymem(b->last, data, n);
        data += n;
        len -= n;
        out->size += n;
    }
}


void
ngx_http_trl_out_printf(ngx_http_trl_out_t *out, const char *fmt, ...)
{
    u_char   buf[2048], *p;
    va_list  args;

    va_start(args, fmt);
    p = ngx_vslprintf(buf, buf + sizeof(buf), fmt, args);
    va_end(args);

    ngx_http_trl_out_cat(out, buf, p - buf);
}


/* A JSON string, quotes included. */

void
ngx_http_trl_out_json(ngx_http_trl_out_t *out, const u_char *s, size_t len)
{
    u_char        c, esc[7];
    const u_char *p, *end, *run;

    static u_char  hex[] = "0123456789abcdef";

    ngx_http_trl_out_cat(out, (u_char *) "\"", 1);

    run = s;
    end = s + len;

    for (p = s; p < end; p++) {
        c = *p;

        if (c >= 0x20 && c != '"' && c != '\\' && c < 0x7f) {
            continue;
        }

        ngx_http_trl_out_cat(out, run, p - run);
        run = p + 1;

        esc[0] = '\\';

        if (c == '"' || c == '\\') {
            esc[1] = c;
            ngx_http_trl_out_cat(out, esc, 2);
            continue;
        }

        esc[1] = 'u';
        esc[2] = '0';
        esc[3] = '0';
        esc[4] = hex[c >> 4];
        esc[5] = hex[c & 0xf];
        ngx_http_trl_out_cat(out, esc, 6);
    }

    ngx_http_trl_out_cat(out, run, end - run);
    ngx_http_trl_out_cat(out, (u_char *) "\"", 1);
}


/*
 * A key as the API shows it: "key":"text" when it is printable ASCII,
 * else "key":null,"key_hex":"..." (a key cut short adds "truncated":true).
 */

void
ngx_http_trl_out_key(ngx_http_trl_out_t *out, const u_char *key, size_t len,
    ngx_uint_t truncated)
{
    size_t   i, n;
    u_char   hexbuf[2 * 128];

    static u_char  hex[] = "0123456789abcdef";

    for (i = 0; i < len; i++) {
        if (key[i] < 0x20 || key[i] > 0x7e) {
            break;
        }
    }

    if (i == len) {
        ngx_http_trl_out_cat(out, (u_char *) "\"key\":", 6);
        ngx_http_trl_out_json(out, key, len);

    } else {
        ngx_http_trl_out_cat(out, (u_char *) "\"key\":null,\"key_hex\":\"",
                             22);

        while (len) {
            n = ngx_min(len, sizeof(hexbuf) / 2);

            for (i = 0; i < n; i++) {
                hexbuf[2 * i] = hex[key[i] >> 4];
                hexbuf[2 * i + 1] = hex[key[i] & 0xf];
            }

            ngx_http_trl_out_cat(out, hexbuf, 2 * n);
            key += n;
            len -= n;
        }

        ngx_http_trl_out_cat(out, (u_char *) "\"", 1);
    }

    if (truncated) {
        ngx_http_trl_out_cat(out, (u_char *) ",\"truncated\":true", 17);
    }
}


ngx_int_t
ngx_http_trl_out_send(ngx_http_trl_out_t *out, ngx_uint_t status,
    const char *type)
{
    ngx_int_t            rc;
    ngx_http_request_t  *r;

    r = out->request;

    if (out->failed) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    r->headers_out.status = status;
    r->headers_out.content_length_n = out->size;
    r->headers_out.content_type.data = (u_char *) type;
    r->headers_out.content_type.len = ngx_strlen(type);
    r->headers_out.content_type_len = r->headers_out.content_type.len;
    r->headers_out.content_type_lowcase = NULL;

    if (out->last == NULL || r->method == NGX_HTTP_HEAD) {
        r->header_only = 1;
    }

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    out->last->buf->last_buf = (r == r->main) ? 1 : 0;
    out->last->buf->last_in_chain = 1;

    return ngx_http_output_filter(r, out->first);
}
