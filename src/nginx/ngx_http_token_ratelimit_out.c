
/*
 * ngx_http_token_ratelimit_out.c - a response body of unknown length,
 * built in pool buffers (the API's JSON, Prometheus text), and sending it;
 * the pieces the API, the metrics and the dashboard all answer with.
 */


#include "ngx_http_token_ratelimit.h"
#include "ngx_http_token_ratelimit_api.h"
#include "ngx_http_token_ratelimit_util.h"


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


/* A JSON string, quotes included (ngx_http_trl_json_escape). */

void
ngx_http_trl_out_json(ngx_http_trl_out_t *out, const u_char *s, size_t len)
{
    u_char        *p, buf[256];
    const u_char  *end;

    ngx_http_trl_out_cat(out, (u_char *) "\"", 1);

    end = s + len;

    while (s < end) {
        p = ngx_http_trl_json_escape(buf, buf + sizeof(buf), &s, end);
        ngx_http_trl_out_cat(out, buf, p - buf);
    }

    ngx_http_trl_out_cat(out, (u_char *) "\"", 1);
}


/*
 * A key as zone shows it (ngx_http_trl_key_show; zone NULL: as
 * log_key=on): "key":"text" when it is printable ASCII (an address in a
 * $binary_remote_addr zone), else "key":null,"key_hex":"..." (a key cut
 * short adds "truncated":true); log_key=mask: "key":"abcd...",
 * "masked":true; hash: "key":null,"hash":"<32 hex>", as for keys known
 * only by hash; off: "key":null,"hidden":true.  hash: the key's, when
 * known (key may be a cut text), else NULL.
 */

void
ngx_http_trl_out_key(ngx_http_trl_out_t *out, ngx_http_trl_zone_t *zone,
    const u_char *key, size_t len, const trl_hash_t *hash,
    ngx_uint_t truncated)
{
    size_t                     i, n;
    u_char                     hexbuf[2 * 128];
    const u_char              *p;
    ngx_http_trl_key_shown_t   ks;

    if (zone) {
        ngx_http_trl_key_show(zone, key, len, hash, &ks);

    } else {
        ks.how = NGX_HTTP_TRL_SHOW_TEXT;
        ks.text.data = (u_char *) key;
        ks.text.len = len;

        for (i = 0; i < len; i++) {
            if (key[i] < 0x20 || key[i] > 0x7e) {
                ks.how = NGX_HTTP_TRL_SHOW_BINARY;
                break;
            }
        }
    }

    switch (ks.how) {

    case NGX_HTTP_TRL_SHOW_TEXT:
        ngx_http_trl_out_cat(out, (u_char *) "\"key\":", 6);
        ngx_http_trl_out_json(out, ks.text.data, ks.text.len);
        break;

    case NGX_HTTP_TRL_SHOW_HIDDEN:
        ngx_http_trl_out_printf(out, "\"key\":null,\"hidden\":true");
        return;

    case NGX_HTTP_TRL_SHOW_HASH:
        ngx_http_trl_out_printf(out, "\"key\":null,\"hash\":\"%V\"",
                                &ks.text);
        return;

    case NGX_HTTP_TRL_SHOW_MASKED:
        ngx_http_trl_out_cat(out, (u_char *) "\"key\":", 6);
        ngx_http_trl_out_json(out, ks.text.data, ks.text.len);
        ngx_http_trl_out_printf(out, ",\"masked\":true");
        return;

    default: /* NGX_HTTP_TRL_SHOW_BINARY */
        ngx_http_trl_out_cat(out, (u_char *) "\"key\":null,\"key_hex\":\"",
                             22);

        p = ks.text.data;
        len = ks.text.len;

        while (len) {
            n = ngx_min(len, sizeof(hexbuf) / 2);
            ngx_http_trl_out_cat(out, hexbuf,
                                 ngx_hex_dump(hexbuf, (u_char *) p, n)
                                 - hexbuf);
            p += n;
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


/* An error answer: {"error":"<error>","message":"<message>"}. */

ngx_int_t
ngx_http_trl_out_error(ngx_http_request_t *r, ngx_uint_t status,
    const char *error, const char *message)
{
    ngx_http_trl_out_t  out;

    ngx_http_trl_out_init(&out, r);
    ngx_http_trl_out_printf(&out, "{\"error\":\"%s\",\"message\":", error);
    ngx_http_trl_out_json(&out, (u_char *) message, ngx_strlen(message));
    ngx_http_trl_out_cat(&out, (u_char *) "}\n", 2);

    return ngx_http_trl_out_send(&out, status, "application/json");
}


/* The node's Redis link as the API and the metrics show it. */

void
ngx_http_trl_out_redis_state(ngx_http_trl_main_conf_t *tmcf,
    ngx_http_trl_redis_state_t *state)
{
    ngx_memzero(state, sizeof(ngx_http_trl_redis_state_t));

    if (tmcf->redis) {
        ngx_http_trl_redis_state(state);
    }
}


/* 405, with the methods the path takes in Allow. */

ngx_int_t
ngx_http_trl_out_not_allowed(ngx_http_request_t *r, const char *allow)
{
    static ngx_str_t  name = ngx_string("Allow");

    (void) ngx_http_trl_push_header(r, &name, (u_char *) allow,
                                    ngx_strlen(allow));

    return ngx_http_trl_out_error(r, NGX_HTTP_NOT_ALLOWED,
                                  "method_not_allowed",
                                  "this method is not allowed here");
}
