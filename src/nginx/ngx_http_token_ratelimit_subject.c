
/*
 * ngx_http_token_ratelimit_subject.c - token_ratelimit_subject: a variable
 * holding the subject of a request (the account it tries) as the
 * application sees it, normalised by the core (trl_subject_normalize):
 * percent-decoded, trimmed, optionally case-folded, at most
 * TRL_SUBJECT_MAX bytes.  Any zone may use it as its key or as the value
 * a distinct zone counts (distinct=).
 *
 * Sources: a string with variables (arg:, cookie: and header: are
 * spelled as $arg_, $cookie_ and $http_), a field of the request body
 * (form:, json:; the handler reads the body when the variable asks for
 * it, ngx_http_token_ratelimit_body.c), or a response header of the
 * upstream (upstream:), known in the log phase only: a distinct zone
 * counts such a value then (ngx_http_trl_distinct_late()).
 */


#include "ngx_http_token_ratelimit.h"


#define NGX_HTTP_TRL_SUBJECT_STRING    0
#define NGX_HTTP_TRL_SUBJECT_FORM      1
#define NGX_HTTP_TRL_SUBJECT_JSON      2
#define NGX_HTTP_TRL_SUBJECT_UPSTREAM  3

#define NGX_HTTP_TRL_BODY_DEFAULT      8192
#define NGX_HTTP_TRL_BODY_LIMIT        (1024 * 1024)


typedef struct {
    ngx_http_complex_value_t    value;          /* the raw subject */
    unsigned                    flags;          /* TRL_SUBJECT_* */
    ngx_uint_t                  source;         /* NGX_HTTP_TRL_SUBJECT_* */
    ngx_str_t                   field;          /* form:, json: */
    size_t                      body;           /* the largest body read */
} ngx_http_trl_subject_t;


/*
 * The subject of a body the extractor does not trust (a field twice, a
 * malformed or over-size body): one fixed value, so that padding a body
 * cannot buy more accounts.
 */
static u_char  ngx_http_trl_subject_invalid[] = "\0invalid";


static ngx_int_t ngx_http_trl_subject_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_trl_subject_body(ngx_http_request_t *r,
    ngx_http_trl_subject_t *subject, ngx_http_variable_value_t *v);
static ngx_uint_t ngx_http_trl_subject_type(ngx_http_request_t *r,
    ngx_uint_t source);
static char *ngx_http_trl_subject_source(ngx_conf_t *cf, ngx_command_t *cmd,
    ngx_str_t *value, ngx_http_trl_subject_t *subject);
static char *ngx_http_trl_subject_field(ngx_conf_t *cf, ngx_command_t *cmd,
    ngx_str_t *value, ngx_http_trl_subject_t *subject);


/*
 * token_ratelimit_subject $variable from=SOURCE [case=off|lower|domain]
 *                         [body=SIZE];
 *
 * SOURCE: arg:NAME (the query argument; '+' is a space), cookie:NAME,
 * header:NAME, form:NAME, json:NAME (a field of a body of at most
 * body=SIZE bytes, 8k by default), upstream:NAME (a response header of
 * the upstream), or any string with variables ($http_x_user).
 */

char *
ngx_http_trl_subject_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ssize_t                  size;
    ngx_str_t               *value, name, s, *body;
    ngx_uint_t               i, have_from;
    ngx_http_variable_t     *var;
    ngx_http_trl_subject_t  *subject;

    value = cf->args->elts;

    if (value[1].len < 2 || value[1].data[0] != '$') {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid variable name \"%V\" in \"%V\" "
                           "directive, expected a name such as $trl_user",
                           &value[1], &cmd->name);
        return NGX_CONF_ERROR;
    }

    subject = ngx_pcalloc(cf->pool, sizeof(ngx_http_trl_subject_t));
    if (subject == NULL) {
        return NGX_CONF_ERROR;
    }

    subject->flags = TRL_SUBJECT_DECODE | TRL_SUBJECT_TRIM;
    subject->body = NGX_HTTP_TRL_BODY_DEFAULT;
    have_from = 0;
    body = NULL;

    for (i = 2; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "from=", 5) == 0) {
            if (ngx_http_trl_subject_source(cf, cmd, &value[i], subject)
                != NGX_CONF_OK)
            {
                return NGX_CONF_ERROR;
            }

            have_from = 1;
            continue;
        }

        if (ngx_strncmp(value[i].data, "body=", 5) == 0) {
            s.data = value[i].data + 5;
            s.len = value[i].len - 5;
            size = ngx_parse_size(&s);

            if (size <= 0 || size > NGX_HTTP_TRL_BODY_LIMIT) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid body size \"%V\" in \"%V\" "
                                   "directive, expected a size from 1 to "
                                   "1m, such as body=8k", &value[i],
                                   &cmd->name);
                return NGX_CONF_ERROR;
            }

            subject->body = size;
            body = &value[i];
            continue;
        }

        if (ngx_strcmp(value[i].data, "case=off") == 0) {
            subject->flags &= ~(TRL_SUBJECT_LOWER | TRL_SUBJECT_LOWER_DOMAIN);
            continue;
        }

        if (ngx_strcmp(value[i].data, "case=lower") == 0) {
            subject->flags &= ~TRL_SUBJECT_LOWER_DOMAIN;
            subject->flags |= TRL_SUBJECT_LOWER;
            continue;
        }

        if (ngx_strcmp(value[i].data, "case=domain") == 0) {
            subject->flags &= ~TRL_SUBJECT_LOWER;
            subject->flags |= TRL_SUBJECT_LOWER_DOMAIN;
            continue;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter \"%V\" in \"%V\" directive, "
                           "expected \"from=SOURCE\" and optionally "
                           "\"case=off\", \"case=lower\", \"case=domain\" "
                           "or \"body=SIZE\"",
                           &value[i], &cmd->name);
        return NGX_CONF_ERROR;
    }

    if (!have_from) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" directive must have a \"from=\" "
                           "parameter, such as from=arg:user, "
                           "from=cookie:user, from=header:X-User, "
                           "from=form:user, from=json:user, "
                           "from=upstream:X-User or from=$http_x_user",
                           &cmd->name);
        return NGX_CONF_ERROR;
    }

    if (body && subject->source != NGX_HTTP_TRL_SUBJECT_FORM
        && subject->source != NGX_HTTP_TRL_SUBJECT_JSON)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" in \"%V\" directive applies to "
                           "from=form:NAME and from=json:NAME only",
                           body, &cmd->name);
        return NGX_CONF_ERROR;
    }

    name.data = value[1].data + 1;
    name.len = value[1].len - 1;

    var = ngx_http_add_variable(cf, &name, 0);     /* once only */
    if (var == NULL) {
        return NGX_CONF_ERROR;
    }

    var->get_handler = ngx_http_trl_subject_variable;
    var->data = (uintptr_t) subject;

    return NGX_CONF_OK;
}


/*
 * from=arg:NAME, cookie:NAME, header:NAME, upstream:NAME (spelled as the
 * variables $arg_NAME ... $upstream_http_NAME), form:NAME, json:NAME, or
 * a string with variables
 */

static char *
ngx_http_trl_subject_source(ngx_conf_t *cf, ngx_command_t *cmd,
    ngx_str_t *value, ngx_http_trl_subject_t *subject)
{
    u_char                            *p;
    size_t                             skip;
    ngx_str_t                          src, prefix, *v;
    ngx_uint_t                         i;
    ngx_http_compile_complex_value_t   ccv;

    static struct {
        ngx_str_t   source;
        ngx_str_t   variable;
    } named[] = {
        { ngx_string("arg:"), ngx_string("$arg_") },
        { ngx_string("cookie:"), ngx_string("$cookie_") },
        { ngx_string("header:"), ngx_string("$http_") },
        { ngx_string("upstream:"), ngx_string("$upstream_http_") },
    };

    src.data = value->data + 5;
    src.len = value->len - 5;
    v = &src;

    if (ngx_strncmp(src.data, "form:", 5) == 0
        || ngx_strncmp(src.data, "json:", 5) == 0)
    {
        return ngx_http_trl_subject_field(cf, cmd, value, subject);
    }

    for (i = 0; i < sizeof(named) / sizeof(named[0]); i++) {
        prefix = named[i].source;

        if (src.len <= prefix.len
            || ngx_strncmp(src.data, prefix.data, prefix.len) != 0)
        {
            continue;
        }

        skip = prefix.len;

        v = ngx_palloc(cf->pool, sizeof(ngx_str_t));
        if (v == NULL) {
            return NGX_CONF_ERROR;
        }

        v->len = named[i].variable.len + src.len - skip;
        v->data = ngx_pnalloc(cf->pool, v->len);
        if (v->data == NULL) {
            return NGX_CONF_ERROR;
        }

        p = ngx_cpymem(v->data, named[i].variable.data,
                       named[i].variable.len);

        for (skip = prefix.len; skip < src.len; skip++) {
            *p = src.data[skip];

            if (i >= 2) {                   /* as $http_NAME spells it */
                *p = *p == '-' ? '_' : ngx_tolower(*p);
            }

            if (!(isalnum(*p) || *p == '_' || *p == '-')) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid name in \"%V\" in \"%V\" "
                                   "directive, it may contain only "
                                   "letters, digits, \"_\" and \"-\"",
                                   value, &cmd->name);
                return NGX_CONF_ERROR;
            }

            p++;
        }

        if (i == 0) {
            subject->flags |= TRL_SUBJECT_PLUS;     /* query strings */
        }

        if (i == 3) {
            subject->source = NGX_HTTP_TRL_SUBJECT_UPSTREAM;
        }

        break;
    }

    if (v == &src && ngx_strlchr(src.data, src.data + src.len, '$') == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid source \"%V\" in \"%V\" directive, "
                           "expected from=arg:NAME, from=cookie:NAME, "
                           "from=header:NAME, from=form:NAME, "
                           "from=json:NAME, from=upstream:NAME or a string "
                           "with variables such as from=$http_x_user",
                           value, &cmd->name);
        return NGX_CONF_ERROR;
    }

    ngx_memzero(&ccv, sizeof(ngx_http_compile_complex_value_t));

    ccv.cf = cf;
    ccv.value = v;
    ccv.complex_value = &subject->value;

    if (ngx_http_compile_complex_value(&ccv) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/*
 * from=form:NAME, json:NAME: a field of the body.  Forms are
 * percent-decoded ('+' a space) as the application decodes them; JSON
 * strings are decoded by the extractor (escapes), never percent-decoded.
 */

static char *
ngx_http_trl_subject_field(ngx_conf_t *cf, ngx_command_t *cmd,
    ngx_str_t *value, ngx_http_trl_subject_t *subject)
{
    u_char  *p, *last;

    p = value->data + 10;                   /* "from=form:", "from=json:" */
    last = value->data + value->len;

    if (p == last) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid source \"%V\" in \"%V\" directive, "
                           "expected a field name, such as "
                           "from=form:username", value, &cmd->name);
        return NGX_CONF_ERROR;
    }

    subject->field.data = p;
    subject->field.len = last - p;

    for ( /* void */ ; p < last; p++) {
        if (*p <= ' ' || *p >= 0x7f || *p == '$' || *p == '"') {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid field name in \"%V\" in \"%V\" "
                               "directive, it may contain printable ASCII "
                               "characters other than \"$\" and \"\"\"",
                               value, &cmd->name);
            return NGX_CONF_ERROR;
        }
    }

    if (value->data[5] == 'f') {
        subject->source = NGX_HTTP_TRL_SUBJECT_FORM;
        subject->flags |= TRL_SUBJECT_PLUS;

    } else {
        subject->source = NGX_HTTP_TRL_SUBJECT_JSON;
        subject->flags &= ~TRL_SUBJECT_DECODE;
    }

    return NGX_CONF_OK;
}


/* The subject, normalised; not found when nothing is left of it. */

static ngx_int_t
ngx_http_trl_subject_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_http_trl_subject_t  *subject = (ngx_http_trl_subject_t *) data;

    u_char              *p;
    size_t               n;
    ngx_str_t            raw;
    ngx_http_trl_ctx_t  *ctx;

    if (subject->source == NGX_HTTP_TRL_SUBJECT_FORM
        || subject->source == NGX_HTTP_TRL_SUBJECT_JSON)
    {
        return ngx_http_trl_subject_body(r, subject, v);
    }

    if (subject->source == NGX_HTTP_TRL_SUBJECT_UPSTREAM) {
        ctx = ngx_http_trl_get_ctx(r);

        if (ctx && !ctx->decided) {
            ctx->late = 1;                  /* known in the log phase */
            v->not_found = 1;
            v->no_cacheable = 1;
            return NGX_OK;
        }
    }

    if (ngx_http_complex_value(r, &subject->value, &raw) != NGX_OK) {
        return NGX_ERROR;
    }

    p = ngx_pnalloc(r->pool, TRL_SUBJECT_MAX);
    if (p == NULL) {
        return NGX_ERROR;
    }

    if (trl_subject_normalize(raw.data, raw.len, subject->flags, (char *) p,
                              TRL_SUBJECT_MAX, &n)
        == TRL_SUBJECT_EMPTY)
    {
        v->not_found = 1;
        return NGX_OK;
    }

    v->len = n;
    v->valid = 1;
    v->no_cacheable = 0;
    v->not_found = 0;
    v->data = p;

    return NGX_OK;
}


/*
 * form:, json: the field of the body, when the body is of the type the
 * source reads; "\0invalid" for a body the extractor does not trust.
 */

static ngx_int_t
ngx_http_trl_subject_body(ngx_http_request_t *r,
    ngx_http_trl_subject_t *subject, ngx_http_variable_value_t *v)
{
    u_char     *raw, *p;
    size_t      n, len;
    ngx_int_t   rc;
    ngx_str_t   body;

    v->not_found = 1;

    if (!ngx_http_trl_subject_type(r, subject->source)) {
        return NGX_OK;                      /* another type: no subject */
    }

    rc = ngx_http_trl_body_get(r, subject->body, &body);

    if (rc == NGX_AGAIN) {
        v->no_cacheable = 1;                /* asked again once read */
        return NGX_OK;
    }

    if (rc == NGX_DECLINED) {
        return NGX_OK;
    }

    if (rc == NGX_OK) {

        /* a form's value is still encoded: room for %XX of every byte */

        len = subject->source == NGX_HTTP_TRL_SUBJECT_FORM
              ? 3 * TRL_SUBJECT_MAX : TRL_SUBJECT_MAX;

        raw = ngx_pnalloc(r->pool, len + TRL_SUBJECT_MAX);
        if (raw == NULL) {
            return NGX_ERROR;
        }

        p = raw + len;

        rc = subject->source == NGX_HTTP_TRL_SUBJECT_FORM
             ? trl_form_field(body.data, body.len,
                              (char *) subject->field.data,
                              subject->field.len, (char *) raw, len, &n)
             : trl_json_field(body.data, body.len,
                              (char *) subject->field.data,
                              subject->field.len, (char *) raw, len, &n);

        if (rc == TRL_FIELD_NONE) {
            return NGX_OK;
        }

        if (rc == TRL_FIELD_FOUND || rc == TRL_FIELD_LONG) {
            if (trl_subject_normalize(raw, n, subject->flags, (char *) p,
                                      TRL_SUBJECT_MAX, &n)
                == TRL_SUBJECT_EMPTY)
            {
                return NGX_OK;
            }

            v->len = n;
            v->data = p;
            v->valid = 1;
            v->no_cacheable = 0;
            v->not_found = 0;

            return NGX_OK;
        }

        /* TRL_FIELD_TWICE, TRL_FIELD_MALFORMED */
    }

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "token_ratelimit: subject of a body that is %s",
                   rc == NGX_HTTP_TRL_BODY_OVER ? "over the bound"
                   : rc == TRL_FIELD_TWICE ? "ambiguous" : "malformed");

    v->len = sizeof(ngx_http_trl_subject_invalid) - 1;
    v->data = ngx_http_trl_subject_invalid;
    v->valid = 1;
    v->no_cacheable = 0;
    v->not_found = 0;

    return NGX_OK;
}


/*
 * form: reads application/x-www-form-urlencoded bodies, json:
 * application/json ones (parameters such as "; charset=utf-8" allowed).
 */

static ngx_uint_t
ngx_http_trl_subject_type(ngx_http_request_t *r, ngx_uint_t source)
{
    size_t            len;
    ngx_str_t         want;
    ngx_table_elt_t  *h;

    static ngx_str_t  form = ngx_string("application/x-www-form-urlencoded");
    static ngx_str_t  json = ngx_string("application/json");

    h = r->main->headers_in.content_type;

    if (h == NULL) {
        return 0;
    }

    want = source == NGX_HTTP_TRL_SUBJECT_FORM ? form : json;
    len = h->value.len;

    if (len < want.len
        || ngx_strncasecmp(h->value.data, want.data, want.len) != 0)
    {
        return 0;
    }

    return len == want.len || h->value.data[want.len] == ';'
           || h->value.data[want.len] == ' ';
}
