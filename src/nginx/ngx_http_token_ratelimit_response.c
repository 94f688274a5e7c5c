
/*
 * ngx_http_token_ratelimit_response.c - what a client sees: the rejection
 * (429 with a JSON body, unless error_page handles the status), the
 * rate-limit header fields on every limited response, and the
 * $token_ratelimit_* variables.
 */


#include "ngx_http_token_ratelimit.h"
#include "ngx_http_token_ratelimit_util.h"


#define NGX_HTTP_TRL_EXCEEDED_BODY                                          \
    "{\"error\":\"rate_limit_exceeded\",\"message\":\"Rate limit "             \
    "exceeded. Try again in  seconds.\",\"limit\":,\"remaining\":0,"          \
    "\"reset_at\":,\"retry_after\":}"

#define NGX_HTTP_TRL_VAR_LIMIT      0
#define NGX_HTTP_TRL_VAR_REMAINING  1
#define NGX_HTTP_TRL_VAR_RESET      2


static ngx_int_t ngx_http_trl_header_filter(ngx_http_request_t *r);
static u_char *ngx_http_trl_decimal(u_char *p, uint64_t n);
static ngx_int_t ngx_http_trl_add_x_headers(ngx_http_request_t *r,
    ngx_http_trl_ctx_t *ctx);
static ngx_int_t ngx_http_trl_add_ietf_headers(ngx_http_request_t *r,
    ngx_http_trl_ctx_t *ctx);
static ngx_int_t ngx_http_trl_add_retry_after(ngx_http_request_t *r,
    ngx_http_trl_ctx_t *ctx);
static ngx_int_t ngx_http_trl_add_warning(ngx_http_request_t *r,
    ngx_http_trl_ctx_t *ctx);
static ngx_uint_t ngx_http_trl_has_error_page(ngx_http_request_t *r,
    ngx_uint_t status);
static ngx_int_t ngx_http_trl_send_json(ngx_http_request_t *r,
    ngx_uint_t status, u_char *body, size_t len);
static ngx_int_t ngx_http_trl_status_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_trl_number_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);


static ngx_http_output_header_filter_pt  ngx_http_next_header_filter;


static time_t     ngx_http_trl_last_reset = -1;
static u_char     ngx_http_trl_last_reset_text[NGX_TIME_T_LEN];
static size_t     ngx_http_trl_last_reset_len;

static ngx_str_t  ngx_http_trl_x_limit = ngx_string("X-RateLimit-Limit");
static ngx_str_t  ngx_http_trl_x_remaining =
    ngx_string("X-RateLimit-Remaining");
static ngx_str_t  ngx_http_trl_x_reset = ngx_string("X-RateLimit-Reset");
static ngx_str_t  ngx_http_trl_retry_after = ngx_string("Retry-After");
static ngx_str_t  ngx_http_trl_warning = ngx_string("X-RateLimit-Warning");
static ngx_str_t  ngx_http_trl_policy = ngx_string("RateLimit-Policy");
static ngx_str_t  ngx_http_trl_ratelimit = ngx_string("RateLimit");


static ngx_str_t  ngx_http_trl_status_names[] = {
    ngx_null_string,
    ngx_string("PASSED"),
    ngx_string("WARNED"),
    ngx_string("BYPASSED"),
    ngx_string("REJECTED_DRY_RUN"),
    ngx_string("REJECTED")
};


static ngx_http_variable_t  ngx_http_trl_vars[] = {

    { ngx_string("token_ratelimit_status"), NULL,
      ngx_http_trl_status_variable, 0, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("token_ratelimit_limit"), NULL,
      ngx_http_trl_number_variable, NGX_HTTP_TRL_VAR_LIMIT,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("token_ratelimit_remaining"), NULL,
      ngx_http_trl_number_variable, NGX_HTTP_TRL_VAR_REMAINING,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("token_ratelimit_reset"), NULL,
      ngx_http_trl_number_variable, NGX_HTTP_TRL_VAR_RESET,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("token_ratelimit_client"), NULL,
      ngx_http_trl_client_variable, 0, 0, 0 },

    { ngx_string("token_ratelimit_distinct"), NULL,
      ngx_http_trl_distinct_count_variable, 0, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("token_ratelimit_distinct_status"), NULL,
      ngx_http_trl_distinct_status_variable, 0, NGX_HTTP_VAR_NOCACHEABLE,
      0 },

    { ngx_string("token_ratelimit_active"), NULL,        /* issue 15 */
      ngx_http_trl_active_variable, NGX_HTTP_TRL_VAR_ACTIVE,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("token_ratelimit_lifetime"), NULL,
      ngx_http_trl_active_variable, NGX_HTTP_TRL_VAR_LIFETIME,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("token_ratelimit_released"), NULL,
      ngx_http_trl_active_variable, NGX_HTTP_TRL_VAR_RELEASED,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

      ngx_http_null_variable
};


/*
 * Answers a rejected request.  The status goes to nginx's error_page when
 * the location has one for it; otherwise the JSON body is sent here.  The
 * header fields are added by the header filter either way.
 */

ngx_int_t
ngx_http_trl_reject(ngx_http_request_t *r, ngx_http_trl_loc_conf_t *tlcf,
    ngx_http_trl_ctx_t *ctx)
{
    u_char                  *p, body[sizeof(NGX_HTTP_TRL_EXCEEDED_BODY)
                                     + 3 * NGX_TIME_T_LEN + NGX_INT_T_LEN];
    ngx_uint_t               status;
    ngx_http_trl_applied_t  *a;

    status = ngx_http_trl_attack_status(ctx, tlcf->status_code);

    /* 444 closes the connection; error_page takes precedence over JSON */

    if (status == NGX_HTTP_CLOSE || ngx_http_trl_has_error_page(r, status)) {
        return status;
    }

    a = ctx->shown;

    p = ngx_sprintf(body,
                    "{\"error\":\"rate_limit_exceeded\","
                    "\"message\":\"Rate limit exceeded. "
                    "Try again in %T second%s.\","
                    "\"limit\":%uD,\"remaining\":0,"
                    "\"reset_at\":%T,\"retry_after\":%T}",
                    a->retry_after, a->retry_after == 1 ? "" : "s",
                    a->n, a->reset, a->retry_after);

    return ngx_http_trl_send_json(r, status, body, p - body);
}


/* fail=closed: Redis cannot be reached for a sync zone of the request. */

ngx_int_t
ngx_http_trl_unavailable(ngx_http_request_t *r, ngx_http_trl_ctx_t *ctx)
{
    static u_char  body[] =
        "{\"error\":\"rate_limit_unavailable\","
        "\"message\":\"Rate limiting is unavailable. "
        "Try again in 1 second.\",\"retry_after\":1}";

    if (ngx_http_trl_has_error_page(r, NGX_HTTP_SERVICE_UNAVAILABLE)) {
        return NGX_HTTP_SERVICE_UNAVAILABLE;
    }

    return ngx_http_trl_send_json(r, NGX_HTTP_SERVICE_UNAVAILABLE, body,
                                  sizeof(body) - 1);
}


/* token_ratelimit_deny matched. */

ngx_int_t
ngx_http_trl_deny(ngx_http_request_t *r)
{
    static u_char  body[] =
        "{\"error\":\"access_denied\",\"message\":\"Access denied.\"}";

    if (ngx_http_trl_has_error_page(r, NGX_HTTP_FORBIDDEN)) {
        return NGX_HTTP_FORBIDDEN;
    }

    return ngx_http_trl_send_json(r, NGX_HTTP_FORBIDDEN, body,
                                  sizeof(body) - 1);
}


static ngx_int_t
ngx_http_trl_send_json(ngx_http_request_t *r, ngx_uint_t status,
    u_char *body, size_t len)
{
    ngx_int_t     rc;
    ngx_buf_t    *b;
    ngx_chain_t   out;

    if (ngx_http_discard_request_body(r) != NGX_OK) {
        return status;
    }

    b = ngx_create_temp_buf(r->pool, len);
    if (b == NULL) {
        return status;
    }

    b->last = ngx_cpymem(b->last, body, len);
    b->last_buf = 1;
    b->last_in_chain = 1;

    out.buf = b;
    out.next = NULL;

    r->headers_out.status = status;
    r->headers_out.content_length_n = len;

    ngx_str_set(&r->headers_out.content_type, "application/json");
    r->headers_out.content_type_len = r->headers_out.content_type.len;
    r->headers_out.content_type_lowcase = NULL;

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        ngx_http_finalize_request(r, rc);
        return NGX_DONE;
    }

    ngx_http_finalize_request(r, ngx_http_output_filter(r, &out));

    return NGX_DONE;
}


/* The same test nginx makes before it follows an error_page. */

static ngx_uint_t
ngx_http_trl_has_error_page(ngx_http_request_t *r, ngx_uint_t status)
{
    ngx_uint_t                 i;
    ngx_http_err_page_t       *err_page;
    ngx_http_core_loc_conf_t  *clcf;

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

    if (r->error_page || clcf->error_pages == NULL || r->uri_changes == 0) {
        return 0;
    }

    err_page = clcf->error_pages->elts;

    for (i = 0; i < clcf->error_pages->nelts; i++) {
        if ((ngx_uint_t) err_page[i].status == status) {
            return 1;
        }
    }

    return 0;
}


ngx_int_t
ngx_http_trl_init_header_filter(ngx_conf_t *cf)
{
    ngx_http_next_header_filter = ngx_http_top_header_filter;
    ngx_http_top_header_filter = ngx_http_trl_header_filter;

    return NGX_OK;
}


static ngx_int_t
ngx_http_trl_header_filter(ngx_http_request_t *r)
{
    ngx_http_trl_ctx_t  *ctx;

    if (r != r->main) {
        return ngx_http_next_header_filter(r);
    }

    ctx = ngx_http_trl_get_ctx(r);

    if (ctx == NULL || ctx->shown == NULL || ctx->headers_done) {
        return ngx_http_next_header_filter(r);
    }

    ctx->headers_done = 1;

    /* out of memory: the response goes out without the fields */

    if (((ctx->headers & NGX_HTTP_TRL_HEADERS_X)
         && ngx_http_trl_add_x_headers(r, ctx) != NGX_OK)
        || ((ctx->headers & NGX_HTTP_TRL_HEADERS_IETF)
            && ngx_http_trl_add_ietf_headers(r, ctx) != NGX_OK)
        || (ctx->status == NGX_HTTP_TRL_REJECTED
            && ngx_http_trl_add_retry_after(r, ctx) != NGX_OK)
        || (ctx->warn_header
            && ngx_http_trl_add_warning(r, ctx) != NGX_OK))
    {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "token_ratelimit: no memory for the rate-limit "
                      "header fields");
    }

    return ngx_http_next_header_filter(r);
}


static ngx_int_t
ngx_http_trl_add_x_headers(ngx_http_request_t *r, ngx_http_trl_ctx_t *ctx)
{
    u_char                  *remaining, *reset, *last, *limit;
    ngx_str_t                limit_text;
    ngx_http_trl_applied_t  *a;

    a = ctx->shown;

    remaining = ngx_pnalloc(r->pool, NGX_INT_T_LEN + NGX_TIME_T_LEN);
    if (remaining == NULL) {
        return NGX_ERROR;
    }

    limit_text = a->zone->limit_text;

    if (a->n != a->zone->rate.limit) {      /* scaled by reputation */
        limit = ngx_pnalloc(r->pool, NGX_INT32_LEN);
        if (limit == NULL) {
            return NGX_ERROR;
        }

        limit_text.data = limit;
        limit_text.len = ngx_http_trl_decimal(limit, a->n) - limit;
    }

    reset = ngx_http_trl_decimal(remaining, a->remaining);

    /* consecutive responses mostly share their reset second */

    if (a->reset != ngx_http_trl_last_reset) {
        ngx_http_trl_last_reset = a->reset;
        ngx_http_trl_last_reset_len =
            ngx_http_trl_decimal(ngx_http_trl_last_reset_text,
                                 (uint64_t) a->reset)
            - ngx_http_trl_last_reset_text;
    }

    last = ngx_cpymem(reset, ngx_http_trl_last_reset_text,
                      ngx_http_trl_last_reset_len);

    if (ngx_http_trl_push_header(r, &ngx_http_trl_x_limit, limit_text.data,
                                 limit_text.len) != NGX_OK
        || ngx_http_trl_push_header(r, &ngx_http_trl_x_remaining, remaining,
                                    reset - remaining) != NGX_OK
        || ngx_http_trl_push_header(r, &ngx_http_trl_x_reset, reset,
                                    last - reset) != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * draft-ietf-httpapi-ratelimit-headers: one policy per applied zone, named
 * after the zone, with its quota and window, and its current state:
 *
 *     RateLimit-Policy: "login";q=10;w=60
 *     RateLimit: "login";r=3;t=42
 */

static ngx_int_t
ngx_http_trl_add_ietf_headers(ngx_http_request_t *r, ngx_http_trl_ctx_t *ctx)
{
    u_char                  *policy, *state, *p, *q;
    size_t                   len;
    ngx_uint_t               i;
    ngx_http_trl_applied_t  *a;

    len = 0;

    for (i = 0; i < ctx->napplied; i++) {
        len += ctx->applied[i].zone->name.len + sizeof("\"\";q=;w=, ") - 1
               + NGX_INT_T_LEN + NGX_TIME_T_LEN;
    }

    policy = ngx_pnalloc(r->pool, len);
    state = ngx_pnalloc(r->pool, len);

    if (policy == NULL || state == NULL) {
        return NGX_ERROR;
    }

    p = policy;
    q = state;

    for (i = 0; i < ctx->napplied; i++) {
        a = &ctx->applied[i];

        if (i > 0) {
            p = ngx_cpymem(p, ", ", 2);
            q = ngx_cpymem(q, ", ", 2);
        }

        p = ngx_sprintf(p, "\"%V\";q=%uD;w=%uL", &a->zone->name,
                        a->n,
                        (uint64_t) (a->zone->rate.window_ms / 1000));
        q = ngx_sprintf(q, "\"%V\";r=%ui;t=%T", &a->zone->name,
                        a->remaining, a->reset_in);
    }

    if (ngx_http_trl_push_header(r, &ngx_http_trl_policy, policy, p - policy)
        != NGX_OK
        || ngx_http_trl_push_header(r, &ngx_http_trl_ratelimit, state,
                                    q - state)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_trl_add_retry_after(ngx_http_request_t *r, ngx_http_trl_ctx_t *ctx)
{
    u_char  *p;

    p = ngx_pnalloc(r->pool, NGX_TIME_T_LEN);
    if (p == NULL) {
        return NGX_ERROR;
    }

    return ngx_http_trl_push_header(r, &ngx_http_trl_retry_after, p,
                                    ngx_http_trl_decimal(p,
                                        (uint64_t) ctx->shown->retry_after)
                                    - p);
}


/*
 * Past a warning threshold (the request was admitted):
 *
 *     X-RateLimit-Warning: "login";used=8;limit=10
 *
 * one list member per zone that warned.
 */

static ngx_int_t
ngx_http_trl_add_warning(ngx_http_request_t *r, ngx_http_trl_ctx_t *ctx)
{
    u_char                  *value, *p;
    size_t                   len;
    ngx_uint_t               i;
    ngx_http_trl_applied_t  *a;

    len = 0;

    for (i = 0; i < ctx->napplied; i++) {
        len += ctx->applied[i].zone->name.len + sizeof("\"\";used=;limit=, ")
               + 2 * NGX_INT_T_LEN;
    }

    value = ngx_pnalloc(r->pool, len);
    if (value == NULL) {
        return NGX_ERROR;
    }

    p = value;

    for (i = 0; i < ctx->napplied; i++) {
        a = &ctx->applied[i];

        /* a dry-run limit next to enforced ones is not shown */

        if (!a->warned || (a->limit->dry_run && !ctx->shown->limit->dry_run))
        {
            continue;
        }

        if (p != value) {
            p = ngx_cpymem(p, ", ", 2);
        }

        p = ngx_sprintf(p, "\"%V\";used=%ui;limit=%uD", &a->zone->name,
                        a->used, a->n);
    }

    return ngx_http_trl_push_header(r, &ngx_http_trl_warning, value,
                                    p - value);
}


/*
 * Writes n in decimal, two digits at a time: every limited response carries
 * two numbers, and ngx_sprintf()'s format parsing would cost more than the
 * limiter's decision.
 */

static u_char *
ngx_http_trl_decimal(u_char *p, uint64_t n)
{
    u_char      buf[NGX_INT64_LEN], *q;
    ngx_uint_t  i;

    static const u_char  pairs[] =
        "00010203040506070809101112131415161718192021222324252627282930313233"
        "34353637383940414243444546474849505152535455565758596061626364656667"
        "6869707172737475767778798081828384858687888990919293949596979899";

    q = buf + sizeof(buf);

    while (n >= 100) {
        i = (ngx_uint_t) (n % 100) * 2;
        n /= 100;
        *--q = pairs[i + 1];
        *--q = pairs[i];
    }

    if (n >= 10) {
        i = (ngx_uint_t) n * 2;
        *--q = pairs[i + 1];
        *--q = pairs[i];

    } else {
        *--q = (u_char) ('0' + n);
    }

    return ngx_cpymem(p, q, buf + sizeof(buf) - q);
}


ngx_int_t
ngx_http_trl_add_variables(ngx_conf_t *cf)
{
    return ngx_http_trl_add_variable_table(cf, ngx_http_trl_vars);
}


static ngx_int_t
ngx_http_trl_status_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_http_trl_ctx_t  *ctx;

    ctx = ngx_http_trl_get_ctx(r);

    if (ctx == NULL || ctx->status == NGX_HTTP_TRL_NONE) {
        v->not_found = 1;
        return NGX_OK;
    }

    v->valid = 1;
    v->no_cacheable = 0;
    v->not_found = 0;
    v->len = ngx_http_trl_status_names[ctx->status].len;
    v->data = ngx_http_trl_status_names[ctx->status].data;

    return NGX_OK;
}


static ngx_int_t
ngx_http_trl_number_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    u_char                  *p;
    ngx_http_trl_ctx_t      *ctx;
    ngx_http_trl_applied_t  *a;

    ctx = ngx_http_trl_get_ctx(r);

    if (ctx == NULL || ctx->shown == NULL) {
        v->not_found = 1;
        return NGX_OK;
    }

    p = ngx_pnalloc(r->pool, NGX_TIME_T_LEN);
    if (p == NULL) {
        return NGX_ERROR;
    }

    a = ctx->shown;

    switch (data) {

    case NGX_HTTP_TRL_VAR_LIMIT:
        v->len = ngx_sprintf(p, "%uD", a->n) - p;
        break;

    case NGX_HTTP_TRL_VAR_REMAINING:
        v->len = ngx_sprintf(p, "%ui", a->remaining) - p;
        break;

    default: /* NGX_HTTP_TRL_VAR_RESET */
        v->len = ngx_sprintf(p, "%T", a->reset) - p;
        break;
    }

    v->valid = 1;
    v->no_cacheable = 0;
    v->not_found = 0;
    v->data = p;

    return NGX_OK;
}
