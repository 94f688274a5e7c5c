
/*
 * ngx_http_token_ratelimit_reputation_use.c - what a limit does with the
 * reputation lists: the options scale=, penalty_level= and deny_score= of
 * token_ratelimit (and their policy file twins), parsed by the core, and
 * their list names resolved to the declared lists once the http block is
 * read (a list may be declared after the limit that names it).
 */


#include "ngx_http_token_ratelimit.h"
#include "ngx_http_token_ratelimit_reputation.h"


static ngx_http_trl_rep_pending_t *ngx_http_trl_rep_pending(ngx_conf_t *cf,
    ngx_http_trl_limit_t *limit, ngx_str_t *where);
static char *ngx_http_trl_rep_resolve_terms(ngx_conf_t *cf,
    ngx_http_trl_main_conf_t *tmcf, ngx_http_trl_rep_pending_t *p,
    const trl_rep_terms_t *terms, ngx_http_trl_rep_terms_t *out);
static ngx_uint_t ngx_http_trl_rep_same_scale(ngx_http_trl_rep_use_t *a,
    ngx_http_trl_rep_use_t *b);


static ngx_str_t  ngx_http_trl_rep_in_directive =
    ngx_string("in \"token_ratelimit\" directive");


/*
 * token_ratelimit ... scale=LIST:FACTOR[,...] penalty_level=LIST:LEVEL[,...]
 * deny_score=SCORE
 */

char *
ngx_http_trl_rep_option(ngx_conf_t *cf, ngx_command_t *cmd, ngx_str_t *value,
    ngx_http_trl_limit_t *limit)
{
    char                         err[NGX_MAX_ERROR_STR];
    int                          rc;
    size_t                       skip;
    uint32_t                     score;
    const char                  *accepted;
    ngx_http_trl_rep_pending_t  *p;

    if (ngx_strncmp(value->data, "scale=", 6) == 0) {
        skip = 6;
        accepted = "LIST:FACTOR[,LIST:FACTOR...], FACTOR from 0.001 to 100";

    } else if (ngx_strncmp(value->data, "penalty_level=", 14) == 0) {
        skip = 14;
        accepted = "LIST:LEVEL[,LIST:LEVEL...], LEVEL from 1 to 30";

    } else if (ngx_strncmp(value->data, "deny_score=", 11) == 0) {
        skip = 11;
        accepted = "a score from 1 to 100";

    } else {
        return (char *) NGX_DECLINED;
    }

    p = ngx_http_trl_rep_pending(cf, limit, &ngx_http_trl_rep_in_directive);
    if (p == NULL) {
        return NGX_CONF_ERROR;
    }

    switch (skip) {

    case 6:
        if (p->scale.n) {
            goto duplicate;
        }

        rc = trl_rep_scale_parse((char *) value->data + skip,
                                 value->len - skip, &p->scale, err,
                                 sizeof(err));
        break;

    case 14:
        if (p->level.n) {
            goto duplicate;
        }

        rc = trl_rep_level_parse((char *) value->data + skip,
                                 value->len - skip, &p->level, err,
                                 sizeof(err));
        break;

    default:
        if (p->use->deny_score) {
            goto duplicate;
        }

        rc = trl_rep_score_parse((char *) value->data + skip,
                                 value->len - skip, &score, err,
                                 sizeof(err));
        p->use->deny_score = score;
        break;
    }

    if (rc != TRL_OK) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid value \"%V\" in \"%V\" directive: %s; "
                           "expected %s", value, &cmd->name, err, accepted);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;

duplicate:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "duplicate parameter \"%V\" in \"%V\" directive",
                       value, &cmd->name);
    return NGX_CONF_ERROR;
}


/* A policy's scale:, penalty_level: and deny_score: (parsed by the core). */

char *
ngx_http_trl_rep_use_add(ngx_conf_t *cf, ngx_http_trl_limit_t *limit,
    const trl_rep_terms_t *scale, const trl_rep_terms_t *level,
    ngx_uint_t deny_score, ngx_str_t *where, ngx_str_t *file,
    ngx_uint_t line)
{
    ngx_http_trl_rep_pending_t  *p;

    if (scale->n == 0 && level->n == 0 && deny_score == 0) {
        return NGX_CONF_OK;
    }

    p = ngx_http_trl_rep_pending(cf, limit, where);
    if (p == NULL) {
        return NGX_CONF_ERROR;
    }

    p->scale = *scale;
    p->level = *level;
    p->use->deny_score = deny_score;
    p->file = *file;                        /* the policy file's line */
    p->line = line;

    return NGX_CONF_OK;
}


/* The pending resolution of limit's names: the one it has, or a new one. */

static ngx_http_trl_rep_pending_t *
ngx_http_trl_rep_pending(ngx_conf_t *cf, ngx_http_trl_limit_t *limit,
    ngx_str_t *where)
{
    ngx_uint_t                   i;
    ngx_http_trl_rep_pending_t  *p;
    ngx_http_trl_main_conf_t    *tmcf;

    tmcf = ngx_http_conf_get_module_main_conf(cf,
                                              ngx_http_token_ratelimit_module);

    if (limit->rep) {
        p = tmcf->rep_uses.elts;

        for (i = 0; i < tmcf->rep_uses.nelts; i++) {
            if (p[i].use == limit->rep) {
                return &p[i];
            }
        }

        return NULL;
    }

    limit->rep = ngx_pcalloc(cf->pool, sizeof(ngx_http_trl_rep_use_t));
    if (limit->rep == NULL) {
        return NULL;
    }

    p = ngx_array_push(&tmcf->rep_uses);
    if (p == NULL) {
        return NULL;
    }

    ngx_memzero(p, sizeof(ngx_http_trl_rep_pending_t));

    p->use = limit->rep;
    p->file = cf->conf_file->file.name;
    p->line = cf->conf_file->line;
    p->where = *where;

    return p;
}


/* The limit's zone, known once its directive is read. */

void
ngx_http_trl_rep_use_zone(ngx_conf_t *cf, ngx_http_trl_limit_t *limit,
    ngx_shm_zone_t *shm_zone)
{
    ngx_uint_t                   i;
    ngx_http_trl_rep_pending_t  *p;
    ngx_http_trl_main_conf_t    *tmcf;

    if (limit->rep == NULL) {
        return;
    }

    tmcf = ngx_http_conf_get_module_main_conf(cf,
                                              ngx_http_token_ratelimit_module);
    p = tmcf->rep_uses.elts;

    for (i = 0; i < tmcf->rep_uses.nelts; i++) {
        if (p[i].use == limit->rep) {
            p[i].shm_zone = shm_zone;
        }
    }
}


/* Once the http block is read: every name a declared list. */

char *
ngx_http_trl_rep_resolve(ngx_conf_t *cf, ngx_http_trl_main_conf_t *tmcf)
{
    ngx_uint_t                   i;
    ngx_http_trl_zone_t         *zone;
    ngx_http_trl_rep_pending_t  *p;

    p = tmcf->rep_uses.elts;

    for (i = 0; i < tmcf->rep_uses.nelts; i++) {

        if (ngx_http_trl_rep_resolve_terms(cf, tmcf, &p[i], &p[i].scale,
                                           &p[i].use->scale)
            != NGX_CONF_OK
            || ngx_http_trl_rep_resolve_terms(cf, tmcf, &p[i], &p[i].level,
                                              &p[i].use->level)
               != NGX_CONF_OK)
        {
            return NGX_CONF_ERROR;
        }

        if (tmcf->rep == NULL || tmcf->rep->lists.nelts == 0) {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "\"deny_score\" %V in %V:%ui needs reputation "
                          "lists: declare them with "
                          "token_ratelimit_reputation_list",
                          &p[i].where, &p[i].file, p[i].line);
            return NGX_CONF_ERROR;
        }

        zone = p[i].shm_zone ? p[i].shm_zone->data : NULL;

        /* the API's key view scales a key as its limits do, if they agree */

        if (zone && p[i].scale.n) {
            if (zone->rep_scale == NULL) {
                zone->rep_scale = p[i].use;

            } else if (!ngx_http_trl_rep_same_scale(zone->rep_scale,
                                                    p[i].use))
            {
                zone->rep_varies = 1;
            }
        }

        if (p[i].scale.n && zone && ngx_http_trl_slots(zone)) {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "\"scale\" %V in %V:%ui cannot be used with zone "
                          "\"%V\": a distinct= zone keeps the N it is "
                          "sized for", &p[i].where, &p[i].file, p[i].line,
                          &zone->name);
            return NGX_CONF_ERROR;
        }
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_trl_rep_resolve_terms(ngx_conf_t *cf,
    ngx_http_trl_main_conf_t *tmcf, ngx_http_trl_rep_pending_t *p,
    const trl_rep_terms_t *terms, ngx_http_trl_rep_terms_t *out)
{
    size_t                    len;
    ngx_uint_t                i;
    ngx_http_trl_rep_list_t  *list;

    for (i = 0; i < terms->n; i++) {
        len = ngx_strlen(terms->term[i].name);

        list = ngx_http_trl_rep_find(tmcf->rep, (u_char *) terms->term[i].name,
                                     len);
        if (list == NULL) {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "unknown reputation list \"%*s\" %V in %V:%ui, "
                          "declare it with token_ratelimit_reputation_list",
                          len, terms->term[i].name, &p->where, &p->file,
                          p->line);
            return NGX_CONF_ERROR;
        }

        out->term[i].list = list;
        out->term[i].value = terms->term[i].value;
    }

    out->n = terms->n;

    return NGX_CONF_OK;
}


static ngx_uint_t
ngx_http_trl_rep_same_scale(ngx_http_trl_rep_use_t *a,
    ngx_http_trl_rep_use_t *b)
{
    ngx_uint_t  i;

    if (a->scale.n != b->scale.n) {
        return 0;
    }

    for (i = 0; i < a->scale.n; i++) {
        if (a->scale.term[i].list != b->scale.term[i].list
            || a->scale.term[i].value != b->scale.term[i].value)
        {
            return 0;
        }
    }

    return 1;
}
