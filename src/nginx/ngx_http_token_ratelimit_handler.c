
/*
 * ngx_http_token_ratelimit_handler.c - the request side: the preaccess
 * handler that decides, and the log handler that gives back the places of
 * requests that count=failed / count=succeeded do not count.
 *
 * The handler runs in the PREACCESS phase, like limit_req, so that
 * "satisfy any" cannot skip it.  It runs once per request: its context is
 * also registered as a pool cleanup, where it is found again after an
 * internal redirect has cleared the module contexts.
 *
 * A request is decided in three steps: one pass finds each zone's key, its
 * hash and the runtime entries' verdict on it (ngx_http_trl_keys); one
 * access decision on the client and those keys (ngx_http_trl_access);
 * then each zone decides (ngx_http_trl_apply, and for strict zones Redis,
 * sync.c).  The outcome is recorded in the context and answered, written
 * to the event log and traced in the debug log in one place
 * (ngx_http_trl_finish).
 */


#include "ngx_http_token_ratelimit.h"
#include "ngx_http_token_ratelimit_redis.h"
#include "ngx_http_token_ratelimit_sync.h"
#include "ngx_http_token_ratelimit_reputation.h"


static ngx_int_t ngx_http_trl_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_trl_start(ngx_http_request_t *r,
    ngx_http_trl_loc_conf_t *tlcf, ngx_http_trl_ctx_t *ctx);
static ngx_uint_t ngx_http_trl_keys(ngx_http_request_t *r,
    ngx_http_trl_loc_conf_t *tlcf, ngx_http_trl_ctx_t *ctx);
static ngx_int_t ngx_http_trl_decide(ngx_http_request_t *r,
    ngx_http_trl_loc_conf_t *tlcf, ngx_http_trl_ctx_t *ctx);
static ngx_int_t ngx_http_trl_finish(ngx_http_request_t *r,
    ngx_http_trl_loc_conf_t *tlcf, ngx_http_trl_ctx_t *ctx);
static ngx_int_t ngx_http_trl_log_handler(ngx_http_request_t *r);
static void ngx_http_trl_log_settle(ngx_http_request_t *r,
    ngx_http_trl_ctx_t *ctx, ngx_uint_t failed);
static ngx_int_t ngx_http_trl_apply(ngx_http_request_t *r,
    ngx_http_trl_loc_conf_t *tlcf, ngx_http_trl_applied_t *a);
static ngx_int_t ngx_http_trl_apply_local(ngx_http_request_t *r,
    ngx_http_trl_loc_conf_t *tlcf, ngx_http_trl_applied_t *a,
    trl_limit_t *tl);
static ngx_int_t ngx_http_trl_apply_signal(ngx_http_request_t *r,
    ngx_http_trl_loc_conf_t *tlcf, ngx_http_trl_applied_t *a,
    trl_limit_t *tl);
static ngx_http_trl_applied_t *ngx_http_trl_most_restrictive(
    ngx_http_trl_ctx_t *ctx);
static void ngx_http_trl_release(ngx_http_trl_applied_t *a);
#if (NGX_DEBUG)
static void ngx_http_trl_trace(ngx_http_request_t *r,
    ngx_http_trl_ctx_t *ctx);
#endif
static ngx_int_t ngx_http_trl_strict_finish(ngx_http_request_t *r,
    ngx_http_trl_loc_conf_t *tlcf, ngx_http_trl_ctx_t *ctx);


/* A request's outcome counts in the count mode of a's limit. */
#define ngx_http_trl_counts(a, failed)                                       \
    ((a)->limit->count == TRL_COUNT_ALL                                       \
     || ((a)->limit->count == TRL_COUNT_FAILED && (failed))                   \
     || ((a)->limit->count == TRL_COUNT_SUCCEEDED && !(failed)))


ngx_int_t
ngx_http_trl_init_phases(ngx_conf_t *cf)
{
    ngx_array_t                *handlers;
    ngx_http_handler_pt        *h;
    ngx_http_core_main_conf_t  *cmcf;

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    /*
     * nginx runs a phase's handlers last-registered first, and a dynamic
     * module registers after every static one: appended, the limiter
     * would run before realip's preaccess handler and key location-level
     * set_real_ip_from clients by the proxy's address.  Put first in the
     * array, it runs last in the preaccess phase, after realip (and after
     * limit_conn and limit_req, as a static token_ratelimit would).
     */

    handlers = &cmcf->phases[NGX_HTTP_PREACCESS_PHASE].handlers;

    h = ngx_array_push(handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h = handlers->elts;
    ngx_memmove(&h[1], &h[0], (handlers->nelts - 1) * sizeof(*h));
    h[0] = ngx_http_trl_handler;

    /*
     * First in the log phase too: before access_log, so that what the end
     * of a request does (active places kept or released, active.c) shows
     * in the variables it logs.
     */

    handlers = &cmcf->phases[NGX_HTTP_LOG_PHASE].handlers;

    h = ngx_array_push(handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h = handlers->elts;
    ngx_memmove(&h[1], &h[0], (handlers->nelts - 1) * sizeof(*h));
    h[0] = ngx_http_trl_log_handler;

    return NGX_OK;
}


void
ngx_http_trl_init_pid(void)
{
    trl_set_pid((int) ngx_pid);
}


static ngx_int_t
ngx_http_trl_handler(ngx_http_request_t *r)
{
    ngx_http_trl_ctx_t       *ctx;
    ngx_http_trl_loc_conf_t  *tlcf;

    tlcf = ngx_http_get_module_loc_conf(r, ngx_http_token_ratelimit_module);

    if (r != r->main || tlcf->limits.nelts == 0 || !tlcf->enabled) {
        return NGX_DECLINED;
    }

    ctx = ngx_http_trl_get_ctx(r);

    if (ctx) {
        if (ctx->body == NGX_HTTP_TRL_BODY_RESUMED) {
            ctx->body = NGX_HTTP_TRL_BODY_READ;     /* the body is in */
            return ngx_http_trl_start(r, tlcf, ctx);
        }

        if (ctx->body == NGX_HTTP_TRL_BODY_WAITING) {
            return NGX_DONE;
        }

        if (ctx->wait == NULL || ctx->decided) {
            return NGX_DECLINED;            /* limited once per request */
        }

        /* resumed: Redis has answered for the strict zones, or timed out */

        if (ngx_http_trl_strict_finish(r, tlcf, ctx) == NGX_AGAIN) {
            return NGX_AGAIN;
        }

        return ngx_http_trl_decide(r, tlcf, ctx);
    }

    ctx = ngx_http_trl_create_ctx(r, tlcf->limits.nelts);
    if (ctx == NULL) {
        return NGX_DECLINED;                /* never fail a request */
    }

    ctx->headers = tlcf->headers;

    return ngx_http_trl_start(r, tlcf, ctx);
}


static ngx_int_t
ngx_http_trl_start(ngx_http_request_t *r, ngx_http_trl_loc_conf_t *tlcf,
    ngx_http_trl_ctx_t *ctx)
{
    ngx_int_t                 rc;
    ngx_uint_t                i, n, strict, allowed;
    ngx_http_trl_applied_t   *a;

    n = ngx_http_trl_keys(r, tlcf, ctx);

    if (ctx->body_wanted && ctx->body == NGX_HTTP_TRL_BODY_NONE) {

        /* a subject is a field of the body: read it, then key again */

        rc = ngx_http_trl_body_read(r, ctx);

        if (rc == NGX_AGAIN) {
            return NGX_DONE;                /* resumed once it is in */
        }

        if (rc != NGX_OK) {
            return rc;
        }

        n = ngx_http_trl_keys(r, tlcf, ctx);
    }

    switch (ngx_http_trl_access(r, tlcf, ctx, n)) {

    case NGX_OK:
        ctx->status = NGX_HTTP_TRL_BYPASSED;
        return ngx_http_trl_finish(r, tlcf, ctx);

    case NGX_HTTP_FORBIDDEN:
        ctx->status = NGX_HTTP_TRL_REJECTED;
        ctx->denied = 1;
        return ngx_http_trl_finish(r, tlcf, ctx);

    default: /* NGX_DECLINED */
        break;
    }

    /* the client's reputation: denied, or each limit's N and level */

    if (ngx_http_trl_rep_request(r, tlcf, ctx, n) == NGX_HTTP_FORBIDDEN) {
        ctx->status = NGX_HTTP_TRL_REJECTED;
        ctx->denied = 1;
        ctx->denied_why = NGX_HTTP_TRL_DENIED_REPUTATION;
        return ngx_http_trl_finish(r, tlcf, ctx);
    }

    /* the zones decide; those that do not apply leave the array */

    strict = 0;
    allowed = 0;

    for (i = 0; i < n; i++) {

        a = &ctx->applied[ctx->napplied];

        if (a != &ctx->applied[i]) {
            *a = ctx->applied[i];
        }

        if (a->zone->attack) {
            ngx_http_trl_attack_request(a); /* scale= in attack mode */
        }

        rc = ngx_http_trl_apply(r, tlcf, a);

        if (rc == NGX_DECLINED) {
            continue;
        }

        if (rc == NGX_DONE) {
            allowed = 1;
            continue;
        }

        ctx->napplied++;
        strict |= a->strict;

        if (rc == NGX_BUSY && !a->dry_run) {
            strict = 0;                     /* the others are not asked */
            break;
        }
    }

    if (ctx->napplied == 0) {
        if (!allowed) {
            return NGX_DECLINED;            /* no key: not limited */
        }

        ctx->status = NGX_HTTP_TRL_BYPASSED;
        return ngx_http_trl_finish(r, tlcf, ctx);
    }

    if (strict) {
        if (ngx_http_trl_strict_start(r, tlcf, ctx) == NGX_AGAIN) {
            return NGX_AGAIN;               /* the worker goes on meanwhile */
        }

        (void) ngx_http_trl_strict_finish(r, tlcf, ctx);    /* none sent */
    }

    return ngx_http_trl_decide(r, tlcf, ctx);
}


/*
 * The one pass over the zones before any decision: each zone's key (a
 * zone whose key is empty does not apply and is left out), its hash, and
 * the runtime entries' verdict on it, into ctx->applied.  Returns how
 * many zones have a key.
 */

static ngx_uint_t
ngx_http_trl_keys(ngx_http_request_t *r, ngx_http_trl_loc_conf_t *tlcf,
    ngx_http_trl_ctx_t *ctx)
{
    ngx_uint_t                 i, n;
    ngx_http_trl_zone_t       *zone;
    ngx_http_trl_limit_t      *limits;
    ngx_http_trl_applied_t    *a;
    ngx_http_trl_main_conf_t  *tmcf;

    tmcf = ngx_http_get_module_main_conf(r, ngx_http_token_ratelimit_module);
    limits = tlcf->limits.elts;
    n = 0;

    for (i = 0; i < tlcf->limits.nelts; i++) {
        zone = limits[i].shm_zone->data;
        a = &ctx->applied[n];

        ngx_memzero(a, sizeof(ngx_http_trl_applied_t));

        if (ngx_http_complex_value(r, &zone->key, &a->key_text) != NGX_OK
            || a->key_text.len == 0)
        {
            ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                           "token_ratelimit: zone \"%V\": empty key, "
                           "not limited", &zone->name);
            continue;
        }

        a->limit = &limits[i];
        a->zone = zone;
        a->n = zone->rate.limit;            /* scale= may change it */

        if (ngx_http_trl_slots(zone)
            && ngx_http_trl_distinct_value(r, a) != NGX_OK)
        {
            continue;                       /* no value: not limited */
        }

        trl_zone_hash(zone->core, a->key_text.data, a->key_text.len, &a->key);

        /* runtime entries for this key (token_ratelimit_api) */

        switch (ngx_http_trl_lists_key(tmcf, zone, &a->key_text)) {

        case NGX_OK:
            a->allowed = 1;
            break;

        case NGX_HTTP_FORBIDDEN:
            a->denied = 1;
            break;

        default:
            break;
        }

        ngx_log_debug5(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "token_ratelimit: zone \"%V\" key %016xL%016xL%s%s",
                       &zone->name, a->key.hi, a->key.lo,
                       a->allowed ? ", an allow entry" : "",
                       a->denied ? ", a deny entry" : "");

        n++;
    }

    return n;
}


/*
 * Every applied zone has answered.  A request rejected by one zone is
 * counted by none, and the places the others gave are given back; the same
 * holds in a dry run of the whole location (as with limit_req), where it
 * passes but counts as a rejection.  A limit in a dry run of its own next
 * to enforced ones changes nothing for them.
 */

static ngx_int_t
ngx_http_trl_decide(ngx_http_request_t *r, ngx_http_trl_loc_conf_t *tlcf,
    ngx_http_trl_ctx_t *ctx)
{
    ngx_uint_t               i, dry, warned, enforced_warned;
    ngx_http_trl_applied_t  *a, *rejected;

    rejected = NULL;
    dry = 0;
    warned = 0;
    enforced_warned = 0;

    for (i = 0; i < ctx->napplied; i++) {
        a = &ctx->applied[i];

        if (a->rejected && !a->dry_run && rejected == NULL) {
            rejected = a;
        }

        dry |= a->rejected && a->dry_run;
        warned |= a->warned;
        enforced_warned |= a->warned && !a->limit->dry_run;
    }

    if (rejected || (dry && tlcf->dry_run)) {
        for (i = 0; i < ctx->napplied; i++) {
            a = &ctx->applied[i];

            if (a->admitted) {
                ngx_http_trl_release(a);
                a->remaining++;
            }

            a->late = 0;                    /* nothing to count later */
        }
    }

    if (rejected) {
        ctx->status = NGX_HTTP_TRL_REJECTED;
        ctx->shown = rejected;
        ctx->rejected = rejected;

        return ngx_http_trl_finish(r, tlcf, ctx);
    }

    ctx->status = dry ? NGX_HTTP_TRL_REJECTED_DRY_RUN
                      : warned ? NGX_HTTP_TRL_WARNED : NGX_HTTP_TRL_PASSED;

    ctx->shown = ngx_http_trl_most_restrictive(ctx);

    /*
     * The client is warned as if a limit in a dry run of its own were not
     * there: its rejection does not hide an enforced limit's warning.
     */

    ctx->warn_header = ctx->status == NGX_HTTP_TRL_WARNED
                       || (dry && !tlcf->dry_run && enforced_warned);

    /*
     * count=all keeps every place now: async zones publish it.  The other
     * count modes decide in the log phase.
     */

    for (i = 0; i < ctx->napplied; i++) {
        a = &ctx->applied[i];

        if (a->admitted && a->limit->count == TRL_COUNT_ALL) {
            if (a->zone->active) {
                continue;       /* kept in the log phase, for its lifetime */
            }

            if (a->zone->distinct) {
                ngx_http_trl_distinct_settle(a, 1);
                continue;
            }

            a->admitted = 0;

            if (a->publish) {
                ngx_http_trl_sync_note(a->zone, a, 1);
            }
        }
    }

    return ngx_http_trl_finish(r, tlcf, ctx);
}


/*
 * The request is decided (ctx->status, denied, rejected): its event log
 * lines, its debug trace, and its answer.
 */

static ngx_int_t
ngx_http_trl_finish(ngx_http_request_t *r, ngx_http_trl_loc_conf_t *tlcf,
    ngx_http_trl_ctx_t *ctx)
{
    ngx_http_trl_applied_t    *rejected;
    ngx_http_trl_main_conf_t  *tmcf;

    ctx->decided = 1;

    tmcf = ngx_http_get_module_main_conf(r, ngx_http_token_ratelimit_module);

    if (tmcf->defense_zone) {           /* some ban= or token_ratelimit_attack */
        ngx_http_trl_ban_apply(r, tlcf, ctx);
        ngx_http_trl_attack_events(r, tlcf, ctx);
    }

    if (tlcf->event_log
        && !(ctx->rejected && ngx_http_trl_attack_quiet(ctx->rejected->zone)))
    {
        ngx_http_trl_event_log_write(r, tlcf, ctx);
    }

#if (NGX_DEBUG)
    ngx_http_trl_trace(r, ctx);
#endif

    if (ctx->denied) {
        ctx->shown = NULL;
        return ngx_http_trl_deny(r);
    }

    rejected = ctx->rejected;

    if (rejected == NULL) {
        return NGX_DECLINED;
    }

    if (rejected->unavailable) {
        ctx->unavailable = 1;
        return ngx_http_trl_unavailable(r, ctx);
    }

    return ngx_http_trl_reject(r, tlcf, ctx);
}


#if (NGX_DEBUG)

/* each zone's decision, then the request's, as limit_req traces its own */

static void
ngx_http_trl_trace(ngx_http_request_t *r, ngx_http_trl_ctx_t *ctx)
{
    ngx_uint_t               i;
    ngx_http_trl_applied_t  *a;

    static const char  *status[] = {
        "not limited", "passed", "warned", "bypassed",
        "rejected (dry run)", "rejected"
    };

    for (i = 0; i < ctx->napplied; i++) {
        a = &ctx->applied[i];

        ngx_log_debug8(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "token_ratelimit: zone \"%V\" key %016xL%016xL: "
                       "%s, remaining %ui, reset in %T s, "
                       "Retry-After %T%s",
                       &a->zone->name, a->key.hi, a->key.lo,
                       a->unavailable ? "unavailable (Redis)"
                       : a->rejected ? (a->dry_run ? "rejected (dry run)"
                                                   : "rejected")
                       : a->warned ? "warned" : "passed",
                       a->remaining, a->reset_in,
                       a->rejected ? a->retry_after : 0,
                       a->penalty_start ? ", a penalty started" : "");
    }

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "token_ratelimit: request %s%s, Retry-After %T",
                   status[ctx->status],
                   ctx->denied ? " (denied)" : "",
                   ctx->rejected ? ctx->rejected->retry_after : 0);
}

#endif


/*
 * Applies one limit to a, which holds the zone's key: NGX_DECLINED when it
 * does not apply (a fault, which passes the request), NGX_DONE when an
 * allow entry names the key, NGX_OK when admitted (or, for a strict zone,
 * when Redis is to decide), NGX_BUSY when over the limit.
 */

static ngx_int_t
ngx_http_trl_apply(ngx_http_request_t *r, ngx_http_trl_loc_conf_t *tlcf,
    ngx_http_trl_applied_t *a)
{
    trl_limit_t           tl;
    trl_result_t          res;
    ngx_http_trl_zone_t  *zone;

    zone = a->zone;

    if (a->allowed) {
        trl_zone_count(zone->core, TRL_OUTCOME_BYPASSED);
        return NGX_DONE;                    /* allowed: not limited here */
    }

    tl = ngx_http_trl_limit(a, tlcf);

    if (zone->signal) {
        return ngx_http_trl_apply_signal(r, tlcf, a, &tl);
    }

    if (ngx_http_trl_slots(zone)) {
        return ngx_http_trl_distinct_apply(r, tlcf, a, &tl);   /* local */
    }

    if (zone->sync == TRL_SYNC_MODE_OFF) {
        return ngx_http_trl_apply_local(r, tlcf, a, &tl);
    }

    if (!ngx_http_trl_sync_available()) {

        if (ngx_http_trl_fail_closed(a)) {
            return NGX_BUSY;
        }

        trl_zone_sync_add(zone->core, TRL_SYNC_FALLBACK, 1);

        tl.flags &= ~TRL_LIMIT_SYNC;
        a->publish = 1;                     /* once Redis is back */

        return ngx_http_trl_apply_local(r, tlcf, a, &tl);
    }

    if (zone->sync == TRL_SYNC_MODE_STRICT) {

        /* a key Redis rejected is answered here until its unblock time */

        if (trl_zone_strict_cached(zone->core, &a->key, &tl, TRL_CLOCK_NOW,
                                   &res)
            == 1)
        {
            ngx_http_trl_log_events(r, tlcf, zone, &tl, &a->key_text,
                                    &a->key, &res);
            ngx_http_trl_set_result(a, &tl, &res);
            return NGX_BUSY;
        }

        a->strict = 1;
        return NGX_OK;
    }

    /*
     * Async: admitted from the node's lease, rejected on a recent "full",
     * or else Redis is asked (the request waits as a strict one does).
     */

    tl.flags |= TRL_LIMIT_LEASE;

    if (trl_zone_acquire(zone->core, &a->key, &tl, TRL_CLOCK_NOW, &res)
        != TRL_OK)
    {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "token_ratelimit zone \"%V\" failed to decide; "
                      "the request is passed", &zone->name);
        return NGX_DECLINED;
    }

    if (res.ask) {
        a->strict = 1;
        a->ask = 1;
        return NGX_OK;
    }

    ngx_http_trl_log_events(r, tlcf, zone, &tl, &a->key_text, &a->key, &res);
    ngx_http_trl_set_result(a, &tl, &res);

    if (res.leased) {
        a->leased = 1;
        a->publish = 1;                     /* moves it into a cell */
    }

    /*
     * A key rejected here is read every interval while it is asked for: a
     * penalty another node started, or a reset, is seen within one.
     */

    if (a->rejected) {
        ngx_http_trl_sync_note(zone, a, 0);
    }

    return a->rejected ? NGX_BUSY : NGX_OK;
}


/* Decides in the zone (for async zones, on the cluster estimate). */

static ngx_int_t
ngx_http_trl_apply_local(ngx_http_request_t *r,
    ngx_http_trl_loc_conf_t *tlcf, ngx_http_trl_applied_t *a,
    trl_limit_t *tl)
{
    trl_result_t          res;
    ngx_http_trl_zone_t  *zone;

    zone = a->zone;

    if (trl_zone_acquire(zone->core, &a->key, tl, TRL_CLOCK_NOW, &res)
        != TRL_OK)
    {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "token_ratelimit zone \"%V\" failed to decide; "
                      "the request is passed", &zone->name);
        return NGX_DECLINED;
    }

    ngx_http_trl_log_events(r, tlcf, zone, tl, &a->key_text, &a->key, &res);
    ngx_http_trl_set_result(a, tl, &res);

    /* while a key is asked for, its cluster total is read every interval */

    if (tl->flags & TRL_LIMIT_SYNC) {
        ngx_http_trl_sync_note(zone, a, 0);
    }

    return a->rejected ? NGX_BUSY : NGX_OK;
}


/*
 * A signal zone only checks (signal.c): not applied while the key has a
 * place, else decided the usual way, so that a rejection is counted,
 * answered and starts a penalty as any other (a place freed meanwhile is
 * given back at once).
 */

static ngx_int_t
ngx_http_trl_apply_signal(ngx_http_request_t *r,
    ngx_http_trl_loc_conf_t *tlcf, ngx_http_trl_applied_t *a,
    trl_limit_t *tl)
{
    ngx_int_t  rc;

    if (ngx_http_trl_signal_peek(r, a, tl) == NGX_DECLINED) {
        return NGX_DECLINED;
    }

    if (a->zone->sync == TRL_SYNC_MODE_ASYNC
        && !ngx_http_trl_sync_available())
    {
        tl->flags &= ~TRL_LIMIT_SYNC;
    }

    rc = ngx_http_trl_apply_local(r, tlcf, a, tl);

    if (rc == NGX_OK) {
        ngx_http_trl_release(a);
        return NGX_DECLINED;
    }

    return rc;
}


/* The zone with the fewest places left; on a tie the later full reset. */

static ngx_http_trl_applied_t *
ngx_http_trl_most_restrictive(ngx_http_trl_ctx_t *ctx)
{
    ngx_uint_t               i, pass;
    ngx_http_trl_applied_t  *a, *best;

    /*
     * A limit in a dry run of its own changes nothing a client sees: the
     * enforced limits are shown; the dry-run ones only where every limit
     * that applied is one (as in "token_ratelimit_dry_run on").
     */

    best = NULL;

    for (pass = 0; pass < 2 && best == NULL; pass++) {

        for (i = 0; i < ctx->napplied; i++) {
            a = &ctx->applied[i];

            if (pass == 0 && a->limit->dry_run) {
                continue;
            }

            if (best == NULL
                || a->remaining < best->remaining
                || (a->remaining == best->remaining && a->reset > best->reset))
            {
                best = a;
            }
        }
    }

    return best;
}


static void
ngx_http_trl_release(ngx_http_trl_applied_t *a)
{
    trl_limit_t  tl;

    if (!a->admitted) {
        return;
    }

    if (ngx_http_trl_slots(a->zone)) {
        ngx_http_trl_distinct_settle(a, 0);
        return;
    }

    a->admitted = 0;

    ngx_memzero(&tl, sizeof(trl_limit_t));
    tl.rate = a->zone->rate;
    tl.flags = a->zone->sync == TRL_SYNC_MODE_ASYNC && !a->in_redis
               ? TRL_LIMIT_SYNC : 0;

    if (a->leased) {
        tl.flags |= TRL_LIMIT_LEASE;        /* back into the lease */
        a->publish = 0;
    }

    (void) trl_zone_release(a->zone->core, &a->key, &tl, a->ticket,
                            TRL_CLOCK_NOW);

    if (a->in_redis) {
        ngx_http_trl_strict_release(a);
    }
}


/*
 * The request ended: its places are settled (ngx_http_trl_log_settle),
 * then, if it succeeded, its location's releases run
 * (token_ratelimit_release).
 */

static ngx_int_t
ngx_http_trl_log_handler(ngx_http_request_t *r)
{
    ngx_uint_t                status, failed;
    ngx_http_trl_ctx_t       *ctx;
    ngx_http_trl_loc_conf_t  *tlcf;

    if (r != r->main) {
        return NGX_OK;
    }

    ctx = ngx_http_trl_get_ctx(r);
    tlcf = ngx_http_get_module_loc_conf(r, ngx_http_token_ratelimit_module);

    if ((ctx == NULL || !ctx->decided) && tlcf->releases == NULL) {
        return NGX_OK;                      /* not limited, nothing to do */
    }

    status = r->err_status ? r->err_status : r->headers_out.status;
    failed = (status == 0 || status >= NGX_HTTP_BAD_REQUEST);

    if (ctx && ctx->decided) {
        ngx_http_trl_log_settle(r, ctx, failed);
    }

    if (tlcf->releases && !failed && tlcf->enabled) {
        ngx_http_trl_active_releases(r, tlcf, ctx);     /* issue 15 */
    }

    return NGX_OK;
}


/*
 * count=failed keeps the places of requests whose final status is >= 400
 * (or that never got one) and gives back the others; count=succeeded does
 * the opposite; count=all keeps them all (only active zones and values
 * known late have any left to keep by now).
 */

static void
ngx_http_trl_log_settle(ngx_http_request_t *r, ngx_http_trl_ctx_t *ctx,
    ngx_uint_t failed)
{
    ngx_uint_t               i;
    ngx_http_trl_applied_t  *a;

    for (i = 0; i < ctx->napplied; i++) {
        a = &ctx->applied[i];

        if (a->late) {                      /* from=upstream: counted now */
            a->late = 0;

            if (ngx_http_trl_counts(a, failed)) {
                ngx_http_trl_distinct_late(r, a);
            }

            continue;
        }

        if (a->zone->active) {
            ngx_http_trl_active_end(r, ctx, a,
                                    ngx_http_trl_counts(a, failed));
            continue;
        }

        if (!a->admitted) {
            continue;
        }

        if (ngx_http_trl_counts(a, failed)) {
            if (a->zone->distinct) {
                ngx_http_trl_distinct_settle(a, 1);
                continue;
            }

            a->admitted = 0;                /* it counts: keep its place */

            if (a->publish) {
                ngx_http_trl_sync_note(a->zone, a, 1);
            }

            continue;
        }

        ngx_http_trl_release(a);
    }
}


/* --- the answers of Redis, taken into the zones ------------------------- */

/*
 * Back in the handler (or at once when no question could be sent): takes
 * Redis's answers for the zones it decides (strict zones, async ones that
 * asked) into the zones, as ngx_http_trl_apply_local() takes the zone's
 * own decision; a question left unanswered (timeout, link or node down) is
 * decided by the fail policy.  NGX_AGAIN while answers are due.
 */

static ngx_int_t
ngx_http_trl_strict_finish(ngx_http_request_t *r,
    ngx_http_trl_loc_conf_t *tlcf, ngx_http_trl_ctx_t *ctx)
{
    ngx_uint_t               i;
    trl_limit_t              tl;
    trl_result_t             res;
    ngx_http_trl_zone_t     *zone;
    ngx_http_trl_answer_t   *answer;
    ngx_http_trl_applied_t  *a;

    if (ctx->wait == NULL) {
        return NGX_OK;                      /* no memory: the zones pass */
    }

    if (ngx_http_trl_strict_over(r, ctx->wait) == NGX_AGAIN) {
        return NGX_AGAIN;
    }

    for (i = 0; i < ctx->napplied; i++) {
        a = &ctx->applied[i];

        if (!a->strict) {
            continue;
        }

        a->strict = 0;
        zone = a->zone;
        tl = ngx_http_trl_limit(a, tlcf);
        answer = ngx_http_trl_strict_answer(ctx->wait, i);

        if (ngx_http_trl_slots(zone)) {
            ngx_http_trl_distinct_answer(r, tlcf, a, answer);
            continue;
        }

        if (answer && answer->async) {
            a->ask = 0;
            tl.flags |= TRL_LIMIT_LEASE;

            if (trl_zone_async_apply(zone->core, &a->key, &tl,
                                     &answer->ask.reply, TRL_CLOCK_NOW, &res)
                == TRL_OK)
            {
                ngx_http_trl_log_events(r, tlcf, zone, &tl, &a->key_text,
                                        &a->key, &res);
                ngx_http_trl_set_result(a, &tl, &res);
                trl_zone_sync_put(zone->core, TRL_SYNC_LAST_OK,
                                  trl_clock_ms());

                trl_zone_sync_add(zone->core, TRL_SYNC_READS, 1);

                if (answer->ask.reply.admitted) {
                    a->in_redis = 1;        /* counted there already */
                    a->redis_cell = (int64_t) answer->ask.cell;
                    trl_zone_sync_add(zone->core, TRL_SYNC_PUBLISHED, 1);
                }

                if (a->penalty_ms) {
                    ngx_http_trl_sync_note(zone, a, 0);
                }
            }

            continue;
        }

        if (answer) {
            if (trl_zone_strict_apply(zone->core, &a->key, &tl,
                                      &answer->strict.reply, TRL_CLOCK_NOW,
                                      &res)
                == TRL_OK)
            {
                ngx_http_trl_log_events(r, tlcf, zone, &tl, &a->key_text,
                                        &a->key, &res);
                ngx_http_trl_set_result(a, &tl, &res);
                trl_zone_sync_put(zone->core, TRL_SYNC_LAST_OK,
                                  trl_clock_ms());

                if (answer->strict.reply.admitted) {
                    a->in_redis = 1;
                    a->redis_cell = (int64_t) answer->strict.cell;
                }
            }

            continue;
        }

        trl_zone_sync_add(zone->core, TRL_SYNC_ERRORS, 1);

        if (ngx_http_trl_fail_closed(a)) {
            continue;
        }

        trl_zone_sync_add(zone->core, TRL_SYNC_FALLBACK, 1);

        a->publish = 1;                     /* once Redis is back */
        a->ask = 0;
        tl.flags &= ~(TRL_LIMIT_SYNC | TRL_LIMIT_LEASE);

        if (trl_zone_acquire(zone->core, &a->key, &tl, TRL_CLOCK_NOW, &res)
            == TRL_OK)
        {
            ngx_http_trl_log_events(r, tlcf, zone, &tl, &a->key_text,
                                    &a->key, &res);
            ngx_http_trl_set_result(a, &tl, &res);
        }
    }

    return NGX_OK;
}
