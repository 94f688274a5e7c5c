
/*
 * ngx_http_token_ratelimit_reputation_match.c - the client's reputation
 * on the request path: its lists, looked up once per request (lock-free),
 * what the limits of the location do with them (deny_score=, scale=,
 * penalty_level=), and the variables $token_ratelimit_reputation,
 * $token_ratelimit_reputation_score and
 * $token_ratelimit_reputation_dry_run.
 */


#include "ngx_http_token_ratelimit.h"
#include "ngx_http_token_ratelimit_reputation.h"
#include "ngx_http_token_ratelimit_util.h"


#define NGX_HTTP_TRL_REP_VAR_LISTS     0
#define NGX_HTTP_TRL_REP_VAR_SCORE     1
#define NGX_HTTP_TRL_REP_VAR_DRY_RUN   2


/* the request's lookup, in a pool cleanup found again by its handler */
typedef struct {
    struct sockaddr            *sockaddr;       /* the address looked up */
    ngx_uint_t                  found;          /* 0: no table or address */
    uint64_t                    looked;         /* the slots looked up */
    trl_rep_match_t             m;
} ngx_http_trl_rep_cache_t;


static uint64_t ngx_http_trl_rep_want(ngx_http_trl_rep_use_t *use);
static uint32_t ngx_http_trl_rep_factor(ngx_http_trl_rep_use_t *use,
    uint64_t lists);
static void ngx_http_trl_rep_cleanup(void *data);
static ngx_http_trl_rep_list_t *ngx_http_trl_rep_slot(
    ngx_http_trl_rep_conf_t *rcf, ngx_int_t slot);
static ngx_http_trl_rep_list_t *ngx_http_trl_rep_worst(
    ngx_http_trl_rep_conf_t *rcf, uint64_t mask);
static void ngx_http_trl_rep_dry_run(ngx_http_request_t *r,
    ngx_http_trl_rep_conf_t *rcf, ngx_http_trl_applied_t *a,
    trl_rep_match_t *m);
static ngx_int_t ngx_http_trl_rep_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);


/* at most one line a second per worker of each kind; the rest counted */
static ngx_http_trl_log_gate_t  ngx_http_trl_rep_deny_gate;
static ngx_http_trl_log_gate_t  ngx_http_trl_rep_dry_gate;


static ngx_http_variable_t  ngx_http_trl_rep_vars[] = {

    { ngx_string("token_ratelimit_reputation"), NULL,
      ngx_http_trl_rep_variable, NGX_HTTP_TRL_REP_VAR_LISTS,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("token_ratelimit_reputation_score"), NULL,
      ngx_http_trl_rep_variable, NGX_HTTP_TRL_REP_VAR_SCORE,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("token_ratelimit_reputation_dry_run"), NULL,
      ngx_http_trl_rep_variable, NGX_HTTP_TRL_REP_VAR_DRY_RUN,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

      ngx_http_null_variable
};


/*
 * The lists of the client's address (after realip).  The lookup is cached
 * for the request, and done again only if the address changed since (a
 * location's realip runs in the preaccess phase).  The limits look up only
 * the lists they name (want), so that a location pays for those alone; the
 * variables want them all, and a later call looks up what is missing.
 */

trl_rep_match_t *
ngx_http_trl_rep_match(ngx_http_request_t *r)
{
    return ngx_http_trl_rep_match_some(r, UINT64_MAX);
}


trl_rep_match_t *
ngx_http_trl_rep_match_some(ngx_http_request_t *r, uint64_t want)
{
    int                        family;
    u_char                    *addr;
    uint64_t                   missing;
    trl_rep_match_t            more;
    struct sockaddr           *sa;
    ngx_pool_cleanup_t        *cln;
    ngx_http_trl_ctx_t        *ctx;
    ngx_http_trl_rep_cache_t  *cache;
    ngx_http_trl_main_conf_t  *tmcf;

    tmcf = ngx_http_get_module_main_conf(r, ngx_http_token_ratelimit_module);

    if (tmcf == NULL || tmcf->rep == NULL || tmcf->rep->rep == NULL) {
        return NULL;
    }

    sa = r->connection->sockaddr;

    /*
     * The lookup lives in the module's context when the request has one
     * (a pointer away), else in a pool cleanup of its own that its handler
     * finds again (a variable read before the limits run, or without any).
     */

    ctx = ngx_http_trl_get_ctx(r);
    cache = ctx ? ctx->rep : NULL;

    if (cache == NULL) {
        for (cln = r->main->pool->cleanup; cln; cln = cln->next) {
            if (cln->handler == ngx_http_trl_rep_cleanup) {
                cache = cln->data;
                break;
            }
        }

        if (cache && ctx) {
            ctx->rep = cache;
        }
    }

    if (cache && cache->sockaddr == sa) {
        if (!cache->found) {
            return NULL;
        }

        missing = want & ~cache->looked;

        if (missing == 0) {
            return &cache->m;
        }

        if (ngx_http_trl_client_addr(sa, &family, &addr) == NGX_OK
            && trl_rep_lookup_some(tmcf->rep->rep, missing, family, addr,
                                   &more))
        {
            trl_rep_count(tmcf->rep->rep, &more);
            cache->m.lists |= more.lists;
            cache->m.dry_run |= more.dry_run;
            cache->m.score = ngx_max(cache->m.score, more.score);
        }

        cache->looked |= missing;

        return &cache->m;
    }

    if (cache == NULL && ctx) {
        cache = ngx_palloc(r->main->pool, sizeof(ngx_http_trl_rep_cache_t));
        if (cache == NULL) {
            return NULL;
        }

        ctx->rep = cache;

    } else if (cache == NULL) {
        cln = ngx_pool_cleanup_add(r->main->pool,
                                   sizeof(ngx_http_trl_rep_cache_t));
        if (cln == NULL) {
            return NULL;
        }

        cln->handler = ngx_http_trl_rep_cleanup;
        cache = cln->data;
    }

    ngx_memzero(cache, sizeof(ngx_http_trl_rep_cache_t));
    cache->sockaddr = sa;

    if (ngx_http_trl_client_addr(sa, &family, &addr) != NGX_OK) {
        return NULL;
    }

    cache->found = 1;
    cache->looked = want;

    if (trl_rep_lookup_some(tmcf->rep->rep, want, family, addr, &cache->m)) {
        trl_rep_count(tmcf->rep->rep, &cache->m);
    }

    return &cache->m;
}


static void
ngx_http_trl_rep_cleanup(void *data)
{
    /* nothing to free: it marks the request's lookup */
}


/* The slots a limit's options name (all of them for deny_score=). */

static uint64_t
ngx_http_trl_rep_want(ngx_http_trl_rep_use_t *use)
{
    uint64_t    want;
    ngx_int_t   slot;
    ngx_uint_t  j;

    if (use->deny_score) {
        return UINT64_MAX;
    }

    want = 0;

    for (j = 0; j < use->scale.n; j++) {
        slot = use->scale.term[j].list->slot;
        if (slot >= 0) {
            want |= (uint64_t) 1 << slot;
        }
    }

    for (j = 0; j < use->level.n; j++) {
        slot = use->level.term[j].list->slot;
        if (slot >= 0) {
            want |= (uint64_t) 1 << slot;
        }
    }

    return want;
}


/* The smallest factor among the scale= terms whose list is in lists (0:
 * none). */

static uint32_t
ngx_http_trl_rep_factor(ngx_http_trl_rep_use_t *use, uint64_t lists)
{
    uint32_t                  factor;
    ngx_uint_t                j;
    ngx_http_trl_rep_list_t  *list;

    factor = 0;

    for (j = 0; j < use->scale.n; j++) {
        list = use->scale.term[j].list;

        if (list->slot >= 0 && (lists & ((uint64_t) 1 << list->slot))
            && (factor == 0 || use->scale.term[j].value < factor))
        {
            factor = use->scale.term[j].value;
        }
    }

    return factor;
}


/*
 * The N of a key of a zone keyed on $binary_remote_addr, as its limits'
 * scale= makes it (the API's key view); 0 when the key is no address, its
 * limits name no scale= or several, or no list holds it.
 */

uint32_t
ngx_http_trl_rep_key_limit(ngx_http_trl_main_conf_t *tmcf,
    ngx_http_trl_zone_t *zone, u_char *key, size_t len)
{
    uint32_t          factor;
    trl_rep_match_t   m;

    if (tmcf->rep == NULL || tmcf->rep->rep == NULL || !zone->key_addr
        || zone->rep_scale == NULL || zone->rep_varies
        || (len != 4 && len != 16))
    {
        return 0;
    }

    if (!trl_rep_lookup_some(tmcf->rep->rep,
                             ngx_http_trl_rep_want(zone->rep_scale),
                             len == 4 ? 4 : 6, key, &m))
    {
        return 0;
    }

    factor = ngx_http_trl_rep_factor(zone->rep_scale, m.lists);

    return factor ? trl_rep_scale_limit(zone->rate.limit, factor) : 0;
}


/*
 * The limits that use lists: a source whose score reaches a limit's
 * deny_score= is denied (403, as by token_ratelimit_deny, counted as
 * denied by every zone of the location); else each limit's N is scaled by
 * the smallest factor of its matched terms and its penalties start at the
 * highest level of them.  Dry-run lists only report what they would do.
 */

ngx_int_t
ngx_http_trl_rep_request(ngx_http_request_t *r, ngx_http_trl_loc_conf_t *tlcf,
    ngx_http_trl_ctx_t *ctx, ngx_uint_t n)
{
    uint32_t                   factor, level;
    uint64_t                   want;
    ngx_uint_t                 i, j, more;
    trl_rep_match_t           *m;
    ngx_http_trl_rep_use_t    *use;
    ngx_http_trl_rep_conf_t   *rcf;
    ngx_http_trl_rep_list_t   *list, *worst;
    ngx_http_trl_applied_t    *a;
    ngx_http_trl_main_conf_t  *tmcf;

    /* the lists the limits name; deny_score= looks at every list's score */

    want = 0;

    for (i = 0; i < n; i++) {
        use = ctx->applied[i].limit->rep;

        if (use) {
            want |= ngx_http_trl_rep_want(use);
        }
    }

    m = want ? ngx_http_trl_rep_match_some(r, want) : NULL;

    if (m == NULL || (m->lists == 0 && m->dry_run == 0)) {
        return NGX_DECLINED;
    }

    tmcf = ngx_http_get_module_main_conf(r, ngx_http_token_ratelimit_module);
    rcf = tmcf->rep;

    /* deny_score= first: a denied request counts in no window */

    for (i = 0; i < n; i++) {
        use = ctx->applied[i].limit->rep;

        if (use == NULL || use->deny_score == 0 || m->lists == 0
            || m->score < use->deny_score)
        {
            continue;
        }

        worst = ngx_http_trl_rep_worst(rcf, m->lists);

        if (worst
            && ngx_http_trl_log_gate(&ngx_http_trl_rep_deny_gate, &more))
        {
            if (more) {
                ngx_log_error(tlcf->log_level, r->connection->log, 0,
                              "access denied by reputation list \"%V\" "
                              "(score %uD) (and %ui more since the last "
                              "line)", &worst->name, m->score, more);
            } else {
                ngx_log_error(tlcf->log_level, r->connection->log, 0,
                              "access denied by reputation list \"%V\" "
                              "(score %uD)", &worst->name, m->score);
            }
        }

        ngx_http_trl_count_all(tlcf, TRL_OUTCOME_DENIED);

        return NGX_HTTP_FORBIDDEN;
    }

    for (i = 0; i < n; i++) {
        a = &ctx->applied[i];
        use = a->limit->rep;

        if (use == NULL) {
            continue;
        }

        if (m->dry_run) {
            ngx_http_trl_rep_dry_run(r, rcf, a, m);
        }

        factor = ngx_http_trl_rep_factor(use, m->lists);
        level = 0;

        for (j = 0; j < use->level.n; j++) {
            list = use->level.term[j].list;

            if (list->slot >= 0 && (m->lists & ((uint64_t) 1 << list->slot))
                && use->level.term[j].value > level)
            {
                level = use->level.term[j].value;
            }
        }

        /* distinct= zones keep their N: their storage is sized by it */

        if (factor && !ngx_http_trl_slots(a->zone)) {
            a->n = trl_rep_scale_limit(a->zone->rate.limit, factor);
        }

        a->level = level;
    }

    return NGX_DECLINED;
}


/* The declared list of a slot (at most 64 lists: a scan). */

static ngx_http_trl_rep_list_t *
ngx_http_trl_rep_slot(ngx_http_trl_rep_conf_t *rcf, ngx_int_t slot)
{
    ngx_uint_t                i;
    ngx_http_trl_rep_list_t  *lists;

    lists = rcf->lists.elts;

    for (i = 0; i < rcf->lists.nelts; i++) {
        if (lists[i].slot == slot) {
            return &lists[i];
        }
    }

    return NULL;
}


/* The list of the highest score among those of mask. */

static ngx_http_trl_rep_list_t *
ngx_http_trl_rep_worst(ngx_http_trl_rep_conf_t *rcf, uint64_t mask)
{
    ngx_int_t                 slot;
    ngx_http_trl_rep_list_t  *list, *worst;

    worst = NULL;

    for (slot = 0; slot < TRL_REP_MAX_LISTS; slot++) {
        if (!(mask & ((uint64_t) 1 << slot))) {
            continue;
        }

        list = ngx_http_trl_rep_slot(rcf, slot);

        if (list && (worst == NULL || list->score > worst->score)) {
            worst = list;
        }
    }

    return worst;
}


/*
 * What the dry-run lists that matched would do to the limit a, logged at
 * info (one line a second per worker).
 */

static void
ngx_http_trl_rep_dry_run(ngx_http_request_t *r, ngx_http_trl_rep_conf_t *rcf,
    ngx_http_trl_applied_t *a, trl_rep_match_t *m)
{
    ngx_uint_t                j, more;
    ngx_http_trl_rep_use_t   *use;
    ngx_http_trl_rep_list_t  *list;

    if (r->connection->log->log_level < NGX_LOG_INFO) {
        return;
    }

    use = a->limit->rep;

    for (j = 0; j < use->scale.n; j++) {
        list = use->scale.term[j].list;

        if (list->slot < 0 || !(m->dry_run & ((uint64_t) 1 << list->slot))
            || !ngx_http_trl_log_gate(&ngx_http_trl_rep_dry_gate,
                                            &more))
        {
            continue;
        }

        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "reputation list \"%V\" (dry run) would scale the "
                      "limit of zone \"%V\" to %uD",
                      &list->name, &a->zone->name,
                      trl_rep_scale_limit(a->zone->rate.limit,
                                          use->scale.term[j].value));
    }

    for (j = 0; j < use->level.n; j++) {
        list = use->level.term[j].list;

        if (list->slot < 0 || !(m->dry_run & ((uint64_t) 1 << list->slot))
            || !ngx_http_trl_log_gate(&ngx_http_trl_rep_dry_gate,
                                            &more))
        {
            continue;
        }

        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "reputation list \"%V\" (dry run) would start the "
                      "penalties of zone \"%V\" at level %uD",
                      &list->name, &a->zone->name, use->level.term[j].value);
    }

    if (use->deny_score == 0) {
        return;
    }

    list = ngx_http_trl_rep_worst(rcf, m->dry_run);

    if (list && list->score >= use->deny_score
        && ngx_http_trl_log_gate(&ngx_http_trl_rep_dry_gate, &more))
    {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "reputation list \"%V\" (dry run) would deny access "
                      "(score %ui)", &list->name, list->score);
    }
}


ngx_int_t
ngx_http_trl_rep_add_variables(ngx_conf_t *cf)
{
    return ngx_http_trl_add_variable_table(cf, ngx_http_trl_rep_vars);
}


/* "" and "0" for a client on no list (or without a table) */

static ngx_int_t
ngx_http_trl_rep_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    u_char                    *p;
    size_t                     len;
    uint64_t                   mask;
    trl_rep_match_t           *m;
    ngx_http_trl_main_conf_t  *tmcf;

    m = ngx_http_trl_rep_match(r);

    v->valid = 1;
    v->no_cacheable = 0;
    v->not_found = 0;

    if (data == NGX_HTTP_TRL_REP_VAR_SCORE) {
        p = ngx_pnalloc(r->pool, NGX_INT32_LEN);
        if (p == NULL) {
            return NGX_ERROR;
        }

        v->data = p;
        v->len = ngx_sprintf(p, "%uD", m ? m->score : 0) - p;

        return NGX_OK;
    }

    mask = m == NULL ? 0
           : data == NGX_HTTP_TRL_REP_VAR_LISTS ? m->lists : m->dry_run;

    if (mask == 0) {
        v->len = 0;
        v->data = (u_char *) "";
        return NGX_OK;
    }

    tmcf = ngx_http_get_module_main_conf(r, ngx_http_token_ratelimit_module);

    len = TRL_REP_MAX_LISTS * TRL_REP_NAME_LEN;

    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    v->data = p;
    v->len = trl_rep_names(tmcf->rep->rep, mask, (char *) p, len);

    return NGX_OK;
}
