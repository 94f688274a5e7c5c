
/*
 * ngx_http_token_ratelimit_module.c - the module's directives and
 * configuration: creation, merging and the checks that make "nginx -t"
 * name the directive and the bad value.
 */


#include "ngx_http_token_ratelimit.h"
#include "ngx_http_token_ratelimit_redis.h"
#include "ngx_http_token_ratelimit_api.h"
#include "ngx_http_token_ratelimit_reputation.h"


static void *ngx_http_trl_create_main_conf(ngx_conf_t *cf);
static char *ngx_http_trl_init_main_conf(ngx_conf_t *cf, void *conf);
static void *ngx_http_trl_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_trl_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);
static char *ngx_http_trl_limit_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_trl_set_enum(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_trl_set_bounded(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_trl_parse_warn(ngx_conf_t *cf, ngx_command_t *cmd,
    ngx_str_t *value, ngx_http_trl_limit_t *limit);
static char *ngx_http_trl_parse_penalty(ngx_conf_t *cf, ngx_command_t *cmd,
    ngx_str_t *value, trl_penalty_t *penalty);
static ngx_int_t ngx_http_trl_preconfiguration(ngx_conf_t *cf);
static ngx_int_t ngx_http_trl_postconfiguration(ngx_conf_t *cf);
static ngx_int_t ngx_http_trl_init_module(ngx_cycle_t *cycle);
static ngx_int_t ngx_http_trl_init_process(ngx_cycle_t *cycle);
static void ngx_http_trl_exit_process(ngx_cycle_t *cycle);


static ngx_conf_enum_t  ngx_http_trl_log_levels[] = {
    { ngx_string("info"), NGX_LOG_INFO },
    { ngx_string("notice"), NGX_LOG_NOTICE },
    { ngx_string("warn"), NGX_LOG_WARN },
    { ngx_string("error"), NGX_LOG_ERR },
    { ngx_null_string, 0 }
};


static ngx_conf_enum_t  ngx_http_trl_headers[] = {
    { ngx_string("on"), NGX_HTTP_TRL_HEADERS_X },
    { ngx_string("ietf"), NGX_HTTP_TRL_HEADERS_IETF },
    { ngx_string("both"), NGX_HTTP_TRL_HEADERS_X|NGX_HTTP_TRL_HEADERS_IETF },
    { ngx_string("off"), 0 },
    { ngx_null_string, 0 }
};


typedef struct {
    ngx_int_t     low;
    ngx_int_t     high;
    const char   *what;
} ngx_http_trl_bounds_t;


static ngx_http_trl_bounds_t  ngx_http_trl_status_bounds = {
    400, 599, "a status code"
};

static ngx_http_trl_bounds_t  ngx_http_trl_ipv6_prefix_bounds = {
    1, 128, "a prefix length"
};


static ngx_command_t  ngx_http_trl_commands[] = {

    { ngx_string("token_ratelimit_zone"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_2MORE,
      ngx_http_trl_zone_directive,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("token_ratelimit_subject"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_2MORE,
      ngx_http_trl_subject_directive,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("token_ratelimit_policy_file"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE12,
      ngx_http_trl_policy_file_directive,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("token_ratelimit_api"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_trl_api_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("token_ratelimit_release"),        /* issue 15 */
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_trl_release_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("token_ratelimit_distinct_secret"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_trl_distinct_secret_directive,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("token_ratelimit_redis"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_1MORE,
      ngx_http_trl_redis_directive,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("token_ratelimit_reputation"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_1MORE,
      ngx_http_trl_rep_directive,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("token_ratelimit_reputation_list"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_1MORE,
      ngx_http_trl_rep_list_directive,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("token_ratelimit"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_trl_limit_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("token_ratelimit_bypass"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_set_predicate_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_trl_loc_conf_t, bypass),
      NULL },

    { ngx_string("token_ratelimit_deny"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_set_predicate_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_trl_loc_conf_t, deny),
      NULL },

    { ngx_string("token_ratelimit_enabled"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_trl_loc_conf_t, enabled),
      NULL },

    { ngx_string("token_ratelimit_ipv6_prefix"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_trl_set_bounded,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_trl_loc_conf_t, ipv6_prefix),
      &ngx_http_trl_ipv6_prefix_bounds },

    { ngx_string("token_ratelimit_status"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_trl_set_bounded,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_trl_loc_conf_t, status_code),
      &ngx_http_trl_status_bounds },

    { ngx_string("token_ratelimit_log_level"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_trl_set_enum,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_trl_loc_conf_t, log_level),
      &ngx_http_trl_log_levels },

    { ngx_string("token_ratelimit_dry_run"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_trl_loc_conf_t, dry_run),
      NULL },

    { ngx_string("token_ratelimit_headers"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_trl_set_enum,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_trl_loc_conf_t, headers),
      &ngx_http_trl_headers },

    { ngx_string("token_ratelimit_event_log"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE123,
      ngx_http_trl_event_log_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    /* issue 14, part 1: the WAF both ways (waf.c, signal.c) */

    { ngx_string("token_ratelimit_waf_header"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_trl_waf_header_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    /* issue 14, BAN: attack mode (auto-ban is token_ratelimit's ban=) */

    { ngx_string("token_ratelimit_attack"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_1MORE,
      ngx_http_trl_attack_directive,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    /* CrowdSec (issue 14 part 3): api_crowdsec.c, netset.c */

    { ngx_string("token_ratelimit_crowdsec_key"),
      NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_trl_crowdsec_key_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("token_ratelimit_netset"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE12,
      ngx_http_trl_netset_directive,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_trl_module_ctx = {
    ngx_http_trl_preconfiguration,         /* preconfiguration */
    ngx_http_trl_postconfiguration,        /* postconfiguration */

    ngx_http_trl_create_main_conf,         /* create main configuration */
    ngx_http_trl_init_main_conf,           /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_trl_create_loc_conf,          /* create location configuration */
    ngx_http_trl_merge_loc_conf            /* merge location configuration */
};


ngx_module_t  ngx_http_token_ratelimit_module = {
    NGX_MODULE_V1,
    &ngx_http_trl_module_ctx,              /* module context */
    ngx_http_trl_commands,                 /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    ngx_http_trl_init_module,              /* init module */
    ngx_http_trl_init_process,             /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    ngx_http_trl_exit_process,             /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


static void *
ngx_http_trl_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_trl_main_conf_t  *tmcf;

    tmcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_trl_main_conf_t));
    if (tmcf == NULL) {
        return NULL;
    }

    if (ngx_array_init(&tmcf->zones, cf->pool, 4,
                       sizeof(ngx_http_trl_zone_t *))
        != NGX_OK
        || ngx_array_init(&tmcf->refs, cf->pool, 4,
                          sizeof(ngx_http_trl_ref_t))
           != NGX_OK
        || ngx_array_init(&tmcf->policy_files, cf->pool, 1,
                          sizeof(ngx_http_trl_policy_file_t))
           != NGX_OK
        || ngx_array_init(&tmcf->rep_uses, cf->pool, 1,
                          sizeof(ngx_http_trl_rep_pending_t))
           != NGX_OK)
    {
        return NULL;
    }

    return tmcf;
}


static char *
ngx_http_trl_init_main_conf(ngx_conf_t *cf, void *conf)
{
    ngx_http_trl_main_conf_t  *tmcf = conf;

    ngx_uint_t             i;
    ngx_http_trl_zone_t  **zones;

    if (ngx_http_trl_check_refs(cf, tmcf) != NGX_CONF_OK
        || ngx_http_trl_ban_check(cf, tmcf) != NGX_CONF_OK
        || ngx_http_trl_attack_init_conf(cf, tmcf) != NGX_CONF_OK
        || ngx_http_trl_defense_init_conf(cf, tmcf) != NGX_CONF_OK
        || ngx_http_trl_lists_init_conf(cf, tmcf) != NGX_CONF_OK
        || ngx_http_trl_distinct_init_conf(cf, tmcf) != NGX_CONF_OK
        || ngx_http_trl_rep_init_conf(cf, tmcf) != NGX_CONF_OK)
    {
        return NGX_CONF_ERROR;
    }

    zones = tmcf->zones.elts;

    for (i = 0; i < tmcf->zones.nelts; i++) {
        if (zones[i]->sync == TRL_SYNC_MODE_OFF) {
            continue;
        }

        if (tmcf->redis == NULL) {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "\"token_ratelimit_zone\" \"%V\" has \"sync\" but "
                          "no \"token_ratelimit_redis\" is configured "
                          "in %V:%ui",
                          &zones[i]->name, &zones[i]->conf_file,
                          zones[i]->conf_line);
            return NGX_CONF_ERROR;
        }

        zones[i]->redis = tmcf->redis;
    }

    return NGX_CONF_OK;
}


static void *
ngx_http_trl_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_trl_loc_conf_t  *conf;

    conf = ngx_pcalloc(cf->pool, sizeof(ngx_http_trl_loc_conf_t));
    if (conf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     conf->limits.elts = NULL;
     */

    conf->bypass = NGX_CONF_UNSET_PTR;
    conf->deny = NGX_CONF_UNSET_PTR;
    conf->status_code = NGX_CONF_UNSET_UINT;
    conf->log_level = NGX_CONF_UNSET_UINT;
    conf->dry_run = NGX_CONF_UNSET;
    conf->enabled = NGX_CONF_UNSET;
    conf->headers = NGX_CONF_UNSET_UINT;
    conf->ipv6_prefix = NGX_CONF_UNSET_UINT;
    conf->event_log = NGX_CONF_UNSET_PTR;
    conf->waf = NGX_CONF_UNSET_PTR;
    conf->releases = NGX_CONF_UNSET_PTR;

    return conf;
}


static char *
ngx_http_trl_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_trl_loc_conf_t  *prev = parent;
    ngx_http_trl_loc_conf_t  *conf = child;

    ngx_http_core_loc_conf_t  *clcf;

    /* a bouncer key where no API answers bouncers is a mistake, not a no-op */

    if (conf->crowdsec_keys) {
        clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);

        if (!ngx_http_trl_api_location(clcf)) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"token_ratelimit_crowdsec_key\" is used in "
                               "location \"%V\" without "
                               "\"token_ratelimit_api\": it takes effect "
                               "only in the API's own location", &clcf->name);
            return NGX_CONF_ERROR;
        }
    }

    if (conf->limits.elts == NULL) {
        conf->limits = prev->limits;
    }

    ngx_conf_merge_uint_value(conf->status_code, prev->status_code,
                              NGX_HTTP_TOO_MANY_REQUESTS);
    ngx_conf_merge_uint_value(conf->log_level, prev->log_level,
                              NGX_LOG_ERR);
    ngx_conf_merge_ptr_value(conf->bypass, prev->bypass, NULL);
    ngx_conf_merge_ptr_value(conf->deny, prev->deny, NULL);
    ngx_conf_merge_value(conf->dry_run, prev->dry_run, 0);
    ngx_conf_merge_value(conf->enabled, prev->enabled, 1);
    ngx_conf_merge_uint_value(conf->headers, prev->headers,
                              NGX_HTTP_TRL_HEADERS_X);
    ngx_conf_merge_uint_value(conf->ipv6_prefix, prev->ipv6_prefix, 64);
    ngx_conf_merge_ptr_value(conf->event_log, prev->event_log, NULL);
    ngx_conf_merge_ptr_value(conf->waf, prev->waf, NULL);
    ngx_conf_merge_ptr_value(conf->releases, prev->releases, NULL);

    return ngx_http_trl_active_check_release(cf, conf->releases);
}


/* token_ratelimit zone=name [count=all|failed|succeeded]; */

static char *
ngx_http_trl_limit_directive(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_trl_loc_conf_t  *tlcf = conf;

    char                        err[128], *rv;
    uint32_t                    mode;
    ngx_str_t                  *value, name;
    ngx_uint_t                  i, j, skip, policy;
    ngx_shm_zone_t             *shm_zone;
    ngx_http_trl_ref_t         *ref;
    ngx_http_trl_limit_t        parsed, *limit, *limits;
    ngx_http_trl_main_conf_t   *tmcf;

    value = cf->args->elts;

    shm_zone = NULL;
    skip = 0;
    policy = 0;
    ngx_memzero(&parsed, sizeof(ngx_http_trl_limit_t));
    parsed.count = TRL_COUNT_ALL;

    /* policy=NAME: everything comes from the policy file */

    if (ngx_strncmp(value[1].data, "policy=", 7) == 0) {

        if (cf->args->nelts > 2) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid parameter \"%V\" in \"%V\" "
                               "directive, \"policy=\" takes no other "
                               "parameter", &value[2], &cmd->name);
            return NGX_CONF_ERROR;
        }

        if (ngx_http_trl_policy_limit(cf, cmd, &value[1], &parsed, &skip)
            != NGX_CONF_OK)
        {
            return NGX_CONF_ERROR;
        }

        shm_zone = parsed.shm_zone;
        policy = 1;
    }

    for (i = 1 + policy; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "zone=", 5) == 0) {

            name.data = value[i].data + 5;
            name.len = value[i].len - 5;

            if (name.len == 0) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid zone name \"%V\" in \"%V\" "
                                   "directive", &value[i], &cmd->name);
                return NGX_CONF_ERROR;
            }

            shm_zone = ngx_shared_memory_add(cf, &name, 0,
                                             &ngx_http_token_ratelimit_module);
            if (shm_zone == NULL) {
                return NGX_CONF_ERROR;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "count=", 6) == 0) {

            if (trl_count_parse((char *) value[i].data + 6, value[i].len - 6,
                                &mode, err, sizeof(err))
                != TRL_OK)
            {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid value \"%V\" in \"%V\" "
                                   "directive: %s", &value[i], &cmd->name,
                                   err);
                return NGX_CONF_ERROR;
            }

            parsed.count = mode;
            continue;
        }

        if (ngx_strncmp(value[i].data, "warn=", 5) == 0) {
            if (ngx_http_trl_parse_warn(cf, cmd, &value[i], &parsed)
                != NGX_CONF_OK)
            {
                return NGX_CONF_ERROR;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "penalty=", 8) == 0) {
            if (ngx_http_trl_parse_penalty(cf, cmd, &value[i],
                                           &parsed.penalty)
                != NGX_CONF_OK)
            {
                return NGX_CONF_ERROR;
            }

            continue;
        }

        if (ngx_strcmp(value[i].data, "dry_run") == 0) {
            parsed.dry_run = 1;
            continue;
        }

        rv = ngx_http_trl_ban_option(cf, cmd, &value[i], &parsed);

        if (rv != (char *) NGX_DECLINED) {
            if (rv != NGX_CONF_OK) {
                return rv;
            }

            continue;
        }

        rv = ngx_http_trl_rep_option(cf, cmd, &value[i], &parsed);

        if (rv != (char *) NGX_DECLINED) {
            if (rv != NGX_CONF_OK) {
                return rv;
            }

            continue;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter \"%V\" in \"%V\" directive, "
                           "expected \"zone=name\" (or \"policy=name\") and "
                           "optionally \"count=all|failed|succeeded\", "
                           "\"warn=\", \"penalty=\", \"dry_run\", "
                           "\"scale=\", \"penalty_level=\", "
                           "\"deny_score=\" and \"ban=\"",
                           &value[i], &cmd->name);
        return NGX_CONF_ERROR;
    }

    if (shm_zone == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" directive must have a \"zone=name\" "
                           "or \"policy=name\" parameter", &cmd->name);
        return NGX_CONF_ERROR;
    }

    if (tlcf->limits.elts == NULL) {
        if (ngx_array_init(&tlcf->limits, cf->pool, 1,
                           sizeof(ngx_http_trl_limit_t))
            != NGX_OK)
        {
            return NGX_CONF_ERROR;
        }
    }

    if (skip) {
        return NGX_CONF_OK;         /* the policy file's switch is off */
    }

    limits = tlcf->limits.elts;

    for (j = 0; j < tlcf->limits.nelts; j++) {
        if (limits[j].shm_zone == shm_zone) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "zone \"%V\" is named twice by \"%V\" "
                               "directives at the same level",
                               &shm_zone->shm.name, &cmd->name);
            return NGX_CONF_ERROR;
        }
    }

    limit = ngx_array_push(&tlcf->limits);
    if (limit == NULL) {
        return NGX_CONF_ERROR;
    }

    *limit = parsed;
    limit->shm_zone = shm_zone;

    ngx_http_trl_rep_use_zone(cf, limit, shm_zone);

    /* the zone may be defined further down: checked in init_main_conf */

    tmcf = ngx_http_conf_get_module_main_conf(cf,
                                              ngx_http_token_ratelimit_module);

    ref = ngx_array_push(&tmcf->refs);
    if (ref == NULL) {
        return NGX_CONF_ERROR;
    }

    ref->shm_zone = shm_zone;
    ref->file = cf->conf_file->file.name;
    ref->line = cf->conf_file->line;
    ref->count = parsed.count;
    ref->warn = parsed.warn;
    ref->ban = parsed.ban;
    ref->penalty = parsed.penalty.base_ms != 0;

    return NGX_CONF_OK;
}


/* Like ngx_conf_set_enum_slot(), with an error that lists the choices. */

static char *
ngx_http_trl_set_enum(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    char  *p = conf;

    u_char           *last, buf[256];
    ngx_str_t        *value;
    ngx_uint_t       *np, n, total;
    ngx_conf_enum_t  *e;

    np = (ngx_uint_t *) (p + cmd->offset);

    if (*np != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    value = cf->args->elts;
    e = cmd->post;

    for (total = 0; e[total].name.len; total++) { /* void */ }

    for (n = 0; n < total; n++) {
        if (e[n].name.len == value[1].len
            && ngx_strcasecmp(e[n].name.data, value[1].data) == 0)
        {
            *np = e[n].value;
            return NGX_CONF_OK;
        }
    }

    last = buf;

    for (n = 0; n < total; n++) {
        last = ngx_slprintf(last, buf + sizeof(buf), "%s\"%V\"",
                            n == 0 ? "" : (n + 1 == total ? " or " : ", "),
                            &e[n].name);
    }

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid value \"%V\" in \"%V\" directive, "
                       "it must be %*s",
                       &value[1], &cmd->name, (size_t) (last - buf), buf);

    return NGX_CONF_ERROR;
}


/*
 * A whole number within bounds (cmd->post: ngx_http_trl_bounds_t), with
 * an error that says what it is, such as "a status code from 400 to 599".
 */

static char *
ngx_http_trl_set_bounded(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    char  *p = conf;

    ngx_int_t               n;
    ngx_str_t              *value;
    ngx_uint_t             *np;
    ngx_http_trl_bounds_t  *b = cmd->post;

    np = (ngx_uint_t *) (p + cmd->offset);

    if (*np != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    value = cf->args->elts;

    n = ngx_atoi(value[1].data, value[1].len);

    if (n < b->low || n > b->high) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid value \"%V\" in \"%V\" directive, "
                           "it must be %s from %i to %i",
                           &value[1], &cmd->name, b->what, b->low, b->high);
        return NGX_CONF_ERROR;
    }

    *np = (ngx_uint_t) n;

    return NGX_CONF_OK;
}


/*
 * warn=N (places taken), warn=P% (of N, rounded up) or warn=off; the core
 * parses it, as it does the policy files' warn:
 */

static char *
ngx_http_trl_parse_warn(ngx_conf_t *cf, ngx_command_t *cmd, ngx_str_t *value,
    ngx_http_trl_limit_t *limit)
{
    char      err[NGX_MAX_ERROR_STR];
    uint32_t  count, percent;

    if (trl_warn_parse((char *) value->data + 5, value->len - 5, &count,
                       &percent, err, sizeof(err))
        != TRL_OK)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid value \"%V\" in \"%V\" directive: %s",
                           value, &cmd->name, err);
        return NGX_CONF_ERROR;
    }

    limit->warn = count;
    limit->warn_percent = percent;

    return NGX_CONF_OK;
}


/*
 * penalty=BASE[:FACTOR[:MAX[:FORGIVE]]], parsed by the core, as the policy
 * files' penalty: mapping
 */

static char *
ngx_http_trl_parse_penalty(ngx_conf_t *cf, ngx_command_t *cmd,
    ngx_str_t *value, trl_penalty_t *penalty)
{
    char  err[NGX_MAX_ERROR_STR];

    if (trl_penalty_parse((char *) value->data + 8, value->len - 8, penalty,
                          err, sizeof(err))
        != TRL_OK)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid value \"%V\" in \"%V\" directive: %s",
                           value, &cmd->name, err);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_trl_preconfiguration(ngx_conf_t *cf)
{
    if (ngx_http_trl_add_variables(cf) != NGX_OK) {
        return NGX_ERROR;
    }

    return ngx_http_trl_rep_add_variables(cf);
}


static ngx_int_t
ngx_http_trl_postconfiguration(ngx_conf_t *cf)
{
    if (ngx_http_trl_init_phases(cf) != NGX_OK) {
        return NGX_ERROR;
    }

    if (ngx_http_trl_signal_init(cf) != NGX_OK          /* issue 14, WAF */
        || ngx_http_trl_waf_init(cf) != NGX_OK)
    {
        return NGX_ERROR;
    }

    return ngx_http_trl_init_header_filter(cf);
}


/* The modules are all configured: the phase engine is built. */

static ngx_int_t
ngx_http_trl_init_module(ngx_cycle_t *cycle)
{
    return ngx_http_trl_waf_init_module(cycle);         /* issue 14, WAF */
}


/* Workers (and a single process) keep their own link to Redis. */

static ngx_int_t
ngx_http_trl_init_process(ngx_cycle_t *cycle)
{
    ngx_http_trl_main_conf_t  *tmcf;

    ngx_http_trl_init_pid();

    if (ngx_process != NGX_PROCESS_WORKER
        && ngx_process != NGX_PROCESS_SINGLE)
    {
        return NGX_OK;
    }

    if (ngx_http_trl_rep_init_process(cycle) != NGX_OK
        || ngx_http_trl_attack_init_process(cycle) != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (ngx_http_trl_netset_init_process(cycle) != NGX_OK) {
        return NGX_ERROR;
    }

    tmcf = ngx_http_cycle_get_module_main_conf(cycle,
                                               ngx_http_token_ratelimit_module);

    if (tmcf == NULL || tmcf->redis == NULL) {
        return NGX_OK;
    }

    if (ngx_http_trl_redis_init_process(cycle, tmcf->redis) != NGX_OK) {
        return NGX_ERROR;
    }

    ngx_http_trl_rep_sync_init(cycle);

    return ngx_http_trl_sync_init_process(cycle);
}


static void
ngx_http_trl_exit_process(ngx_cycle_t *cycle)
{
    ngx_http_trl_main_conf_t  *tmcf;

    ngx_http_trl_rep_exit_process(cycle);

    tmcf = ngx_http_cycle_get_module_main_conf(cycle,
                                               ngx_http_token_ratelimit_module);

    if (tmcf == NULL || tmcf->redis == NULL) {
        return;
    }

    ngx_http_trl_rep_sync_exit();
    ngx_http_trl_sync_exit_process(cycle);
    ngx_http_trl_redis_exit_process();
}
