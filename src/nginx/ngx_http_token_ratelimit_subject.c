
/*
 * ngx_http_token_ratelimit_subject.c - token_ratelimit_subject: a variable
 * holding the subject of a request (the account it tries) as the
 * application sees it, normalised by the core (trl_subject_normalize):
 * percent-decoded, trimmed, optionally case-folded, at most
 * TRL_SUBJECT_MAX bytes.  Any zone may use it as its key or as the value
 * a distinct zone counts (distinct=).
 */


#include "ngx_http_token_ratelimit.h"


typedef struct {
    ngx_http_complex_value_t    value;          /* the raw subject */
    unsigned                    flags;          /* TRL_SUBJECT_* */
} ngx_http_trl_subject_t;


static ngx_int_t ngx_http_trl_subject_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static char *ngx_http_trl_subject_source(ngx_conf_t *cf, ngx_command_t *cmd,
    ngx_str_t *value, ngx_http_trl_subject_t *subject);


/*
 * token_ratelimit_subject $variable from=SOURCE [case=off|lower|domain];
 *
 * SOURCE: arg:NAME (the query argument; '+' is a space), cookie:NAME,
 * header:NAME, or any string with variables ($http_x_user).
 */

char *
ngx_http_trl_subject_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_str_t               *value, name;
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
    have_from = 0;

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
                           "\"case=off\", \"case=lower\" or \"case=domain\"",
                           &value[i], &cmd->name);
        return NGX_CONF_ERROR;
    }

    if (!have_from) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" directive must have a \"from=\" "
                           "parameter, such as from=arg:user, "
                           "from=cookie:user, from=header:X-User or "
                           "from=$http_x_user", &cmd->name);
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


/* from=arg:NAME, cookie:NAME, header:NAME, or a string with variables */

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
    };

    src.data = value->data + 5;
    src.len = value->len - 5;
    v = &src;

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

            if (i == 2) {                   /* as $http_NAME spells it */
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

        break;
    }

    if (v == &src && ngx_strlchr(src.data, src.data + src.len, '$') == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid source \"%V\" in \"%V\" directive, "
                           "expected from=arg:NAME, from=cookie:NAME, "
                           "from=header:NAME or a string with variables "
                           "such as from=$http_x_user", value, &cmd->name);
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


/* The subject, normalised; not found when nothing is left of it. */

static ngx_int_t
ngx_http_trl_subject_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_http_trl_subject_t  *subject = (ngx_http_trl_subject_t *) data;

    u_char     *p;
    size_t      n;
    ngx_str_t   raw;

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
