
/*
 * ngx_http_token_ratelimit_policy.c - YAML policy files.
 *
 *     token_ratelimit_policy_file conf.d/policies/auth.yaml
 *                                 [environment=production];
 *     ...
 *     location /login { token_ratelimit policy=login; ... }
 *
 * The file is read by the core (src/core/policy*.cpp) when the
 * configuration is; each policy of the chosen environment becomes a zone
 * of its own name, as token_ratelimit_zone would make it, so that reloads
 * keep its counts.  ${NAME} in the file takes the value of an
 * "env NAME=value;" directive of nginx.conf first, else of nginx's own
 * environment (the one it was started with: a reload does not see later
 * changes to it).
 */


#include "ngx_http_token_ratelimit.h"
#include "ngx_http_token_ratelimit_reputation.h"


#define NGX_HTTP_TRL_ERRLEN  1024


static const char *ngx_http_trl_env_lookup(void *ctx, const char *name,
    size_t len);
static char *ngx_http_trl_policy_distinct(ngx_conf_t *cf,
    ngx_command_t *cmd, ngx_http_trl_zone_t *ctx, trl_policy_t *policy);
static char *ngx_http_trl_policy_zone(ngx_conf_t *cf, ngx_command_t *cmd,
    ngx_http_trl_main_conf_t *tmcf, trl_policy_t *policy);
static void ngx_http_trl_policy_cleanup(void *data);


char *
ngx_http_trl_policy_file_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_trl_main_conf_t  *tmcf = conf;

    char                         err[NGX_HTTP_TRL_ERRLEN];
    size_t                       i, n;
    u_char                      *env;
    ngx_str_t                   *value, path;
    ngx_uint_t                   k;
    trl_policy_t                 policy;
    trl_policy_set_t            *set;
    ngx_pool_cleanup_t          *cln;
    ngx_http_trl_policy_file_t  *file;

    value = cf->args->elts;
    path = value[1];
    env = NULL;

    if (ngx_conf_full_name(cf->cycle, &path, 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    for (k = 2; k < cf->args->nelts; k++) {

        if (ngx_strncmp(value[k].data, "environment=", 12) == 0
            && value[k].len > 12)
        {
            env = value[k].data + 12;
            continue;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter \"%V\" in \"%V\" directive, "
                           "expected \"environment=name\"",
                           &value[k], &cmd->name);
        return NGX_CONF_ERROR;
    }

    set = trl_policy_load((char *) path.data, (char *) env,
                          ngx_http_trl_env_lookup, cf, err, sizeof(err));
    if (set == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "\"%V\" directive: %s",
                           &cmd->name, err);
        return NGX_CONF_ERROR;
    }

    cln = ngx_pool_cleanup_add(cf->pool, 0);
    if (cln == NULL) {
        trl_policy_free(set);
        return NGX_CONF_ERROR;
    }

    cln->handler = ngx_http_trl_policy_cleanup;
    cln->data = set;

    file = ngx_array_push(&tmcf->policy_files);
    if (file == NULL) {
        return NGX_CONF_ERROR;
    }

    file->set = set;
    file->path = path;

    n = trl_policy_count(set);

    for (i = 0; i < n; i++) {
        if (trl_policy_get(set, i, &policy) != TRL_OK
            || ngx_http_trl_policy_zone(cf, cmd, tmcf, &policy)
               != NGX_CONF_OK)
        {
            return NGX_CONF_ERROR;
        }
    }

    return NGX_CONF_OK;
}


/* A policy's zone, named after it. */

static char *
ngx_http_trl_policy_zone(ngx_conf_t *cf, ngx_command_t *cmd,
    ngx_http_trl_main_conf_t *tmcf, trl_policy_t *policy)
{
    ngx_str_t                          key;
    ngx_http_trl_zone_t               *ctx;
    ngx_http_compile_complex_value_t   ccv;

    ctx = ngx_pcalloc(cf->pool, sizeof(ngx_http_trl_zone_t));
    if (ctx == NULL) {
        return NGX_CONF_ERROR;
    }

    ctx->name.len = ngx_strlen(policy->name);
    ctx->name.data = ngx_pstrdup(cf->pool, &(ngx_str_t) {
                                     ctx->name.len, (u_char *) policy->name });

    key.len = ngx_strlen(policy->key);
    key.data = ngx_pnalloc(cf->pool, key.len + 1);

    if (ctx->name.data == NULL || key.data == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memcpy(key.data, policy->key, key.len + 1);

    ngx_memzero(&ccv, sizeof(ngx_http_compile_complex_value_t));

    ccv.cf = cf;
    ccv.value = &key;
    ccv.complex_value = &ctx->key;

    if (ngx_http_compile_complex_value(&ccv) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    ctx->rate = policy->rate;
    ctx->sync = policy->sync;
    ctx->log_key = policy->log_key;

    ngx_http_trl_zone_log_rate(ctx, policy->log_rate);

    if (policy->zone_size < 8 * ngx_pagesize) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" directive: policy \"%s\" (line %uD): "
                           "zone_size is too small, it must be at least %uzk",
                           &cmd->name, policy->name, policy->line,
                           8 * ngx_pagesize / 1024);
        return NGX_CONF_ERROR;
    }

    if (ngx_http_trl_zone_texts(cf, ctx) != NGX_CONF_OK) {
        return NGX_CONF_ERROR;
    }

    if (policy->distinct
        && ngx_http_trl_policy_distinct(cf, cmd, ctx, policy) != NGX_CONF_OK)
    {
        return NGX_CONF_ERROR;
    }

    if (ngx_http_trl_active_policy(cf, cmd, ctx, policy) != NGX_CONF_OK) {
        return NGX_CONF_ERROR;                      /* issue 15 */
    }

    return ngx_http_trl_zone_add(cf, tmcf, ctx, (ssize_t) policy->zone_size,
                                 &cmd->name);
}


/* distinct: as token_ratelimit_zone's distinct= (the core checked it) */

static char *
ngx_http_trl_policy_distinct(ngx_conf_t *cf, ngx_command_t *cmd,
    ngx_http_trl_zone_t *ctx, trl_policy_t *policy)
{
    size_t     len;
    ngx_str_t  value;

    len = ngx_strlen(policy->distinct);

    value.len = sizeof("distinct=") - 1 + len;
    value.data = ngx_pnalloc(cf->pool, value.len + 1);
    if (value.data == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memcpy(ngx_cpymem(value.data, "distinct=", 9), policy->distinct,
               len + 1);

    if (ngx_http_trl_distinct_option(cf, cmd, &value, ctx) != NGX_CONF_OK) {
        return NGX_CONF_ERROR;
    }

    return ngx_http_trl_distinct_check(cf, cmd, ctx,
                                       (ssize_t) policy->zone_size);
}


/*
 * token_ratelimit policy=NAME: the limit a policy describes.  With the
 * file's master switch off ("enabled: false") the directive adds nothing
 * (*skip set).
 */

char *
ngx_http_trl_policy_limit(ngx_conf_t *cf, ngx_command_t *cmd,
    ngx_str_t *value, ngx_http_trl_limit_t *limit, ngx_uint_t *skip)
{
    ngx_str_t                    name, where;
    ngx_uint_t                   i;
    trl_policy_t                 policy;
    ngx_http_trl_main_conf_t    *tmcf;
    ngx_http_trl_policy_file_t  *files;

    tmcf = ngx_http_conf_get_module_main_conf(cf,
                                              ngx_http_token_ratelimit_module);

    name.data = value->data + 7;
    name.len = value->len - 7;

    files = tmcf->policy_files.elts;

    for (i = 0; i < tmcf->policy_files.nelts; i++) {
        if (trl_policy_find(files[i].set, (char *) name.data, name.len,
                            &policy)
            == TRL_OK)
        {
            break;
        }
    }

    if (i == tmcf->policy_files.nelts) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "unknown policy \"%V\" in \"%V\" directive, "
                           "%s", &name, &cmd->name,
                           i ? "no policy file read before it has it "
                               "(in its environment)"
                             : "no \"token_ratelimit_policy_file\" is read "
                               "before it");
        return NGX_CONF_ERROR;
    }

    *skip = !trl_policy_enabled(files[i].set);

    limit->shm_zone = ngx_shared_memory_add(cf, &name, 0,
                                            &ngx_http_token_ratelimit_module);
    if (limit->shm_zone == NULL) {
        return NGX_CONF_ERROR;
    }

    limit->count = policy.count;
    limit->warn = policy.warn;
    limit->dry_run = policy.dry_run;

    limit->penalty = policy.penalty;
    limit->ban = policy.ban;

    /* scale:, penalty_level:, deny_score: (names resolved later) */

    where.len = sizeof("in policy \"\"") - 1 + name.len;
    where.data = ngx_pnalloc(cf->pool, where.len);
    if (where.data == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_sprintf(where.data, "in policy \"%V\"", &name);

    if (ngx_http_trl_rep_use_add(cf, limit, &policy.scale,
                                 &policy.penalty_level, policy.deny_score,
                                 &where, &files[i].path, policy.line)
        != NGX_CONF_OK)
    {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/* ${NAME}: "env NAME=value;" of nginx.conf, else nginx's environment. */

static const char *
ngx_http_trl_env_lookup(void *data, const char *name, size_t len)
{
    ngx_conf_t *cf = data;

    char              buf[256];
    ngx_str_t        *var;
    ngx_uint_t        i;
    ngx_core_conf_t  *ccf;

    ccf = (ngx_core_conf_t *) ngx_get_conf(cf->cycle->conf_ctx,
                                           ngx_core_module);

    var = ccf->env.elts;

    for (i = 0; i < ccf->env.nelts; i++) {
        if (var[i].len == len && var[i].data[len] == '='
            && ngx_strncmp(var[i].data, name, len) == 0)
        {
            return (char *) var[i].data + len + 1;
        }
    }

    if (len >= sizeof(buf)) {
        return NULL;
    }

    ngx_memcpy(buf, name, len);
    buf[len] = '\0';

    return getenv(buf);
}


static void
ngx_http_trl_policy_cleanup(void *data)
{
    trl_policy_free(data);
}
