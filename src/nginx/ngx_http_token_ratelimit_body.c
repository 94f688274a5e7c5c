
/*
 * ngx_http_token_ratelimit_body.c - the request body for the subjects
 * from=form: and from=json: (token_ratelimit_subject).
 *
 * The preaccess handler reads the body when a subject asks for it
 * (ctx->body_wanted), without blocking: ngx_http_read_client_request_body()
 * with a post handler that runs the phases again, as the mirror module
 * does.  The body stays where nginx put it, so proxy_pass (or any content
 * handler) sends it on as it would have read it itself.  A subject takes
 * it only in memory and within its bound: a body nginx wrote to a temporary
 * file (larger than client_body_buffer_size) is over the bound.
 */


#include "ngx_http_token_ratelimit.h"


static void ngx_http_trl_body_done(ngx_http_request_t *r);


/*
 * Reads the body: NGX_OK when it is in, NGX_AGAIN when the rest comes
 * later (the handler returns NGX_DONE; the phases run again once it is
 * in), or the status nginx answers a bad body with (400, 408, 413: what
 * proxy_pass would answer too).
 */

ngx_int_t
ngx_http_trl_body_read(ngx_http_request_t *r, ngx_http_trl_ctx_t *ctx)
{
    ngx_int_t  rc;

    ctx->body = NGX_HTTP_TRL_BODY_READING;
    r->request_body_in_single_buf = 1;

    rc = ngx_http_read_client_request_body(r, ngx_http_trl_body_done);

    if (rc == NGX_ERROR || rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        ctx->body = NGX_HTTP_TRL_BODY_READ;
        return rc;
    }

    /* the reference the read took: nginx's read handler holds the request */

    ngx_http_finalize_request(r, NGX_DONE);

    if (ctx->body == NGX_HTTP_TRL_BODY_READ) {
        return NGX_OK;                      /* it was in already */
    }

    ctx->body = NGX_HTTP_TRL_BODY_WAITING;

    return NGX_AGAIN;
}


static void
ngx_http_trl_body_done(ngx_http_request_t *r)
{
    ngx_http_trl_ctx_t  *ctx;

    ctx = ngx_http_trl_get_ctx(r);

    if (ctx == NULL) {
        return;                             /* cannot happen */
    }

    if (ctx->body == NGX_HTTP_TRL_BODY_READING) {
        ctx->body = NGX_HTTP_TRL_BODY_READ; /* in the call: no recursion */
        return;
    }

    ctx->body = NGX_HTTP_TRL_BODY_RESUMED;

    r->write_event_handler = ngx_http_core_run_phases;
    ngx_http_core_run_phases(r);
}


/*
 * The body of the request for a subject: NGX_OK with its bytes (at most
 * max), NGX_DECLINED when there is none (or it cannot be had), NGX_AGAIN
 * when it is not read yet (before the decision, the handler is asked to
 * read it), or NGX_HTTP_TRL_BODY_OVER.
 */

ngx_int_t
ngx_http_trl_body_get(ngx_http_request_t *r, size_t max, ngx_str_t *body)
{
    u_char                    *p;
    size_t                     len;
    ngx_buf_t                 *b, *one;
    ngx_chain_t               *cl;
    ngx_http_trl_ctx_t        *ctx;
    ngx_http_request_body_t   *rb;

    r = r->main;

    if (r->headers_in.content_length_n <= 0 && !r->headers_in.chunked) {
        return NGX_DECLINED;
    }

    if (r->headers_in.content_length_n > (off_t) max) {
        return NGX_HTTP_TRL_BODY_OVER;      /* not worth reading */
    }

    rb = r->request_body;

    if (rb == NULL) {
        ctx = ngx_http_trl_get_ctx(r);

        if (ctx && !ctx->decided && ctx->body == NGX_HTTP_TRL_BODY_NONE) {
            ctx->body_wanted = 1;
            return NGX_AGAIN;
        }

        return NGX_DECLINED;                /* discarded, or never read */
    }

    if (rb->rest != 0 || r->reading_body) {
        return NGX_DECLINED;                /* cut short */
    }

    if (rb->temp_file) {
        return NGX_HTTP_TRL_BODY_OVER;
    }

    len = 0;
    one = NULL;

    for (cl = rb->bufs; cl; cl = cl->next) {
        b = cl->buf;

        if (ngx_buf_special(b)) {
            continue;                       /* the end of a chunked body */
        }

        if (b->in_file || !ngx_buf_in_memory(b)) {
            return NGX_HTTP_TRL_BODY_OVER;
        }

        one = len == 0 ? b : NULL;
        len += b->last - b->pos;
    }

    if (len > max) {
        return NGX_HTTP_TRL_BODY_OVER;      /* chunked, longer than said */
    }

    if (len == 0) {
        return NGX_DECLINED;
    }

    if (one && (size_t) (one->last - one->pos) == len) {
        body->data = one->pos;              /* the usual case: one buffer */
        body->len = len;
        return NGX_OK;
    }

    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        return NGX_DECLINED;
    }

    body->data = p;
    body->len = len;

    for (cl = rb->bufs; cl; cl = cl->next) {
        if (!ngx_buf_special(cl->buf)) {
            p = ngx_cpymem(p, cl->buf->pos, cl->buf->last - cl->buf->pos);
        }
    }

    return NGX_OK;
}
