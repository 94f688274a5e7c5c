
/*
 * ngx_http_token_ratelimit_handler.c - the request side: the preaccess
 * handler that decides, and the log handler that gives back the places of
 * requests that count=failed / count=succeeded do not count.
 *
 * The handler runs in the PREACCESS phase, like limit_req, so that
 * "satisfy any" cannot skip it.  It runs once per request: its context is
 * also registered as a pool cleanup, where it is found again after an
 * internal redirect has cleared the module contexts.
 */


#include "ngx_http_token_ratelimit.h"
#include "ngx_http_token_ratelimit_redis.h"
#include "ngx_http_token_ratelimit_sync.h"


/* A key is logged escaped and cut to this many bytes. */
#define NGX_HTTP_TRL_LOG_KEY_LEN   64

/* Room for ", N lines suppressed by log_rate". */
#define NGX_HTTP_TRL_LOG_NOTE_LEN  64

/* At most one "zone is full" line per zone per this many ms. */
#define NGX_HTTP_TRL_EVICT_REPORT  60000


static ngx_int_t ngx_http_trl_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_trl_decide(ngx_http_request_t *r,
    ngx_http_trl_loc_conf_t *tlcf, ngx_http_trl_ctx_t *ctx);
static ngx_int_t ngx_http_trl_log_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_trl_apply(ngx_http_request_t *r,
    ngx_http_trl_loc_conf_t *tlcf, ngx_http_trl_limit_t *limit,
    ngx_http_trl_applied_t *a);
static ngx_int_t ngx_http_trl_apply_local(ngx_http_request_t *r,
    ngx_http_trl_loc_conf_t *tlcf, ngx_http_trl_applied_t *a,
    trl_limit_t *tl);
static ngx_http_trl_ctx_t *ngx_http_trl_create_ctx(ngx_http_request_t *r,
    ngx_uint_t n);
static ngx_http_trl_applied_t *ngx_http_trl_most_restrictive(
    ngx_http_trl_ctx_t *ctx);
static void ngx_http_trl_release(ngx_http_trl_applied_t *a);
static ngx_uint_t ngx_http_trl_log_permit(ngx_http_request_t *r,
    ngx_http_trl_zone_t *zone, ngx_uint_t level, u_char *note, u_char **more);
static u_char *ngx_http_trl_printable_key(u_char *buf, size_t size,
    ngx_http_trl_zone_t *zone, ngx_str_t *key, trl_hash_t *hash);
static void ngx_http_trl_cleanup(void *data);
static ngx_int_t ngx_http_trl_strict_finish(ngx_http_request_t *r,
    ngx_http_trl_loc_conf_t *tlcf, ngx_http_trl_ctx_t *ctx);


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

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_LOG_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_trl_log_handler;

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
    ngx_int_t                 rc;
    ngx_uint_t                i, strict, allowed;
    ngx_http_trl_ctx_t       *ctx;
    ngx_http_trl_limit_t     *limits;
    ngx_http_trl_applied_t   *a;
    ngx_http_trl_loc_conf_t  *tlcf;

    tlcf = ngx_http_get_module_loc_conf(r, ngx_http_token_ratelimit_module);

    if (r != r->main || tlcf->limits.nelts == 0 || !tlcf->enabled) {
        return NGX_DECLINED;
    }

    ctx = ngx_http_trl_get_ctx(r);

    if (ctx) {
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

    switch (ngx_http_trl_access(r, tlcf)) {

    case NGX_OK:
        ctx->status = NGX_HTTP_TRL_BYPASSED;
        ctx->decided = 1;
        return NGX_DECLINED;

    case NGX_HTTP_FORBIDDEN:
        ctx->status = NGX_HTTP_TRL_REJECTED;
        ctx->denied = 1;
        ctx->decided = 1;
        return ngx_http_trl_deny(r);

    default: /* NGX_DECLINED */
        break;
    }

    limits = tlcf->limits.elts;
    strict = 0;
    allowed = 0;

    for (i = 0; i < tlcf->limits.nelts; i++) {

        a = &ctx->applied[ctx->napplied];

        rc = ngx_http_trl_apply(r, tlcf, &limits[i], a);

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
        if (allowed) {
            ctx->status = NGX_HTTP_TRL_BYPASSED;
            ctx->decided = 1;
        }

        return NGX_DECLINED;
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

    ctx->decided = 1;
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
        }
    }

    if (rejected) {
        ctx->status = NGX_HTTP_TRL_REJECTED;
        ctx->shown = rejected;

        if (rejected->denied) {
            ctx->denied = 1;
            ctx->shown = NULL;

            if (tlcf->event_log) {
                ngx_http_trl_event_denied(r, tlcf, rejected->zone,
                                          &rejected->key_text,
                                          NGX_HTTP_TRL_DENIED_LIST);
            }

            return ngx_http_trl_deny(r);
        }

        if (rejected->unavailable) {
            if (tlcf->event_log) {
                ngx_http_trl_event_unavailable(r, tlcf, rejected);
            }

            return ngx_http_trl_unavailable(r, ctx);
        }

        return ngx_http_trl_reject(r, tlcf, ctx);
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

        if (a->admitted && a->limit->count == NGX_HTTP_TRL_COUNT_ALL) {
            a->admitted = 0;

            if (a->publish) {
                ngx_http_trl_sync_note(a->zone, a, 1);
            }
        }
    }

    return NGX_DECLINED;
}


/*
 * Applies one limit: NGX_DECLINED when it does not apply (empty key, or a
 * fault, which passes the request), NGX_OK when admitted (or, for a strict
 * zone, when Redis is to decide), NGX_BUSY when over the limit.
 */

static ngx_int_t
ngx_http_trl_apply(ngx_http_request_t *r, ngx_http_trl_loc_conf_t *tlcf,
    ngx_http_trl_limit_t *limit, ngx_http_trl_applied_t *a)
{
    trl_limit_t           tl;
    trl_result_t          res;
    ngx_http_trl_zone_t  *zone;

    zone = limit->shm_zone->data;

    ngx_memzero(a, sizeof(ngx_http_trl_applied_t));

    if (ngx_http_complex_value(r, &zone->key, &a->key_text) != NGX_OK
        || a->key_text.len == 0)
    {
        return NGX_DECLINED;
    }

    trl_zone_hash(zone->zone, a->key_text.data, a->key_text.len, &a->key);

    a->limit = limit;
    a->zone = zone;

    /* runtime entries for this key (token_ratelimit_api) */

    switch (ngx_http_trl_lists_key(ngx_http_get_module_main_conf(r,
                                       ngx_http_token_ratelimit_module),
                                   zone, &a->key_text))
    {
    case NGX_OK:
        trl_zone_count(zone->zone, TRL_OUTCOME_BYPASSED);
        return NGX_DONE;                    /* allowed: not limited here */

    case NGX_HTTP_FORBIDDEN:
        a->denied = 1;
        a->rejected = 1;
        trl_zone_count(zone->zone, TRL_OUTCOME_DENIED);
        return NGX_BUSY;

    default:
        break;
    }

    tl = ngx_http_trl_limit(zone, limit, tlcf);

    if (zone->sync == NGX_HTTP_TRL_SYNC_OFF) {
        return ngx_http_trl_apply_local(r, tlcf, a, &tl);
    }

    if (!ngx_http_trl_sync_available()) {

        if (ngx_http_trl_fail_closed(a)) {
            return NGX_BUSY;
        }

        trl_zone_sync_add(zone->zone, TRL_SYNC_FALLBACK, 1);

        tl.flags &= ~TRL_LIMIT_SYNC;
        a->publish = 1;                     /* once Redis is back */

        return ngx_http_trl_apply_local(r, tlcf, a, &tl);
    }

    if (zone->sync == NGX_HTTP_TRL_SYNC_STRICT) {

        /* a key Redis rejected is answered here until its unblock time */

        if (trl_zone_strict_cached(zone->zone, &a->key, &tl, TRL_CLOCK_NOW,
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

    if (trl_zone_acquire(zone->zone, &a->key, &tl, TRL_CLOCK_NOW, &res)
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

    if (trl_zone_acquire(zone->zone, &a->key, tl, TRL_CLOCK_NOW, &res)
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


/* What a zone, a token_ratelimit directive and its location ask of the
 * core. */

trl_limit_t
ngx_http_trl_limit(ngx_http_trl_zone_t *zone, ngx_http_trl_limit_t *limit,
    ngx_http_trl_loc_conf_t *tlcf)
{
    trl_limit_t                 tl;
    ngx_http_trl_redis_conf_t  *rc;

    ngx_memzero(&tl, sizeof(trl_limit_t));

    tl.rate = zone->rate;
    tl.flags = (tlcf->dry_run || limit->dry_run) ? TRL_LIMIT_DRY_RUN : 0;
    tl.penalty = limit->penalty;
    tl.warn = (uint32_t) limit->warn;

    if (limit->warn_percent) {
        tl.warn = (uint32_t) ((zone->rate.limit * limit->warn_percent + 99)
                              / 100);
    }

    rc = zone->redis;

    if (zone->sync == NGX_HTTP_TRL_SYNC_ASYNC) {
        tl.flags |= TRL_LIMIT_SYNC;
        tl.refresh_ms = (uint32_t) rc->interval;

    } else if (zone->sync == NGX_HTTP_TRL_SYNC_STRICT) {
        /*
         * How long a block Redis answered is trusted here: a second, so
         * that a reset through the API reaches every node within one; an
         * interval where places held for count=failed/succeeded may come
         * back sooner.
         */
        tl.refresh_ms = NGX_HTTP_TRL_STRICT_CACHE;

        if (zone->held) {
            tl.refresh_ms = (uint32_t) ngx_min(rc->interval,
                                               NGX_HTTP_TRL_STRICT_CACHE);
        }
    }

    return tl;
}


/* Takes a zone's answer into the request's record of it. */

void
ngx_http_trl_set_result(ngx_http_trl_applied_t *a, trl_limit_t *tl,
    trl_result_t *res)
{
    uint64_t     wall_ms;
    ngx_time_t  *tp;

    a->remaining = res->remaining;
    a->reset_in = (time_t) ((res->reset_ms - res->now_ms + 999) / 1000);

    tp = ngx_timeofday();
    wall_ms = (uint64_t) tp->sec * 1000 + tp->msec;
    a->reset = (time_t) ((wall_ms + (res->reset_ms - res->now_ms) + 999)
                         / 1000);

    if (res->penalty_start) {               /* for the cluster, too */
        a->penalty_ms = res->penalty_ms;
        a->violations = res->violations;
        a->forgive_ms = tl->penalty.forgive_ms;
    }

    if (res->rejected) {
        a->rejected = 1;
        a->admitted = 0;
        a->dry_run = (tl->flags & TRL_LIMIT_DRY_RUN) != 0;
        a->retry_after = (time_t) ((res->retry_ms + 999) / 1000);

        if (a->retry_after < 1) {
            a->retry_after = 1;
        }

        return;
    }

    a->ticket = res->ticket;
    a->admitted = 1;
    a->warned = res->warned;
    a->used = res->limit - res->remaining;
}


/*
 * The error log lines of a decision.  Each takes a place in the zone's
 * budget of log_rate= lines a second (all workers together); a line
 * refused is counted, and the next line written says how many were.
 */

void
ngx_http_trl_log_events(ngx_http_request_t *r, ngx_http_trl_loc_conf_t *tlcf,
    ngx_http_trl_zone_t *zone, trl_limit_t *tl, ngx_str_t *key,
    trl_hash_t *hash, trl_result_t *res)
{
    u_char    *last, buf[NGX_HTTP_TRL_LOG_KEY_LEN * 4 + 4];
    u_char    *more, note[NGX_HTTP_TRL_LOG_NOTE_LEN];
    uint64_t   evicted;

    if (res->rejected) {
        trl_zone_offend(zone->zone, hash, key->data, key->len,
                        res->now_ms);

        if (tlcf->event_log) {
            ngx_http_trl_event_rejected(r, tlcf, zone, tl, key, hash, res);
        }
    }

    if (res->recovered) {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "token_ratelimit zone \"%V\": took over a lock left "
                      "by a dead process and rebuilt its part of the zone",
                      &zone->name);
    }

    if (res->evicted) {
        evicted = trl_zone_eviction_report(zone->zone, res->now_ms,
                                           NGX_HTTP_TRL_EVICT_REPORT);
        if (evicted) {
            ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                          "token_ratelimit zone \"%V\" is full: %uL keys "
                          "with live counts were evicted since the last "
                          "report; consider a larger zone",
                          &zone->name, evicted);
        }
    }

    if (!res->log_first && res->suppressed == 0 && !res->warn_first
        && !res->penalty_start)
    {
        return;
    }

    last = ngx_http_trl_printable_key(buf, sizeof(buf), zone, key, hash);

    if (res->warn_first
        && ngx_http_trl_log_permit(r, zone, NGX_LOG_NOTICE, note, &more))
    {
        ngx_log_error(NGX_LOG_NOTICE, r->connection->log, 0,
                      "zone \"%V\": key \"%*s\" reached the warning "
                      "threshold, %uD of limit %V taken%*s",
                      &zone->name, (size_t) (last - buf), buf,
                      res->limit - res->remaining, &zone->rate_text,
                      (size_t) (more - note), note);
    }

    if (res->penalty_start) {
        if (ngx_http_trl_log_permit(r, zone, tlcf->log_level, note, &more)) {
            ngx_log_error(tlcf->log_level, r->connection->log, 0,
                          "limiting requests%s by zone \"%V\", key "
                          "\"%*s\", limit %V, blocked for %uL.%03uLs "
                          "(violation %uD)%*s",
                          (tl->flags & TRL_LIMIT_DRY_RUN) ? ", dry run," : "",
                          &zone->name, (size_t) (last - buf), buf,
                          &zone->rate_text, res->penalty_ms / 1000,
                          res->penalty_ms % 1000, res->violations,
                          (size_t) (more - note), note);
        }

        return;
    }

    if (res->log_first) {
        if (ngx_http_trl_log_permit(r, zone, tlcf->log_level, note, &more)) {
            ngx_log_error(tlcf->log_level, r->connection->log, 0,
                          "limiting requests%s by zone \"%V\", key "
                          "\"%*s\", limit %V%s%*s",
                          (tl->flags & TRL_LIMIT_DRY_RUN) ? ", dry run," : "",
                          &zone->name, (size_t) (last - buf), buf,
                          &zone->rate_text,
                          res->penalized ? ", serving a penalty" : "",
                          (size_t) (more - note), note);
        }

        return;
    }

    /* a warning alone comes here too: no "0 more" line */

    if (res->suppressed == 0
        || !ngx_http_trl_log_permit(r, zone, tlcf->log_level, note, &more))
    {
        return;
    }

    ngx_log_error(tlcf->log_level, r->connection->log, 0,
                  "zone \"%V\" rejected %uD more requests of key \"%*s\" "
                  "after the one logged, limit %V%*s",
                  &zone->name, res->suppressed, (size_t) (last - buf), buf,
                  &zone->rate_text, (size_t) (more - note), note);
}


/*
 * Takes a place for a line at level in the zone's error log budget (a
 * line the error log would not write takes none).  On 1, note..*more
 * holds what the line ends with: ", N lines suppressed by log_rate" when
 * lines were refused since the last one, else nothing.
 */

static ngx_uint_t
ngx_http_trl_log_permit(ngx_http_request_t *r, ngx_http_trl_zone_t *zone,
    ngx_uint_t level, u_char *note, u_char **more)
{
    uint64_t     suppressed;
    ngx_time_t  *tp;

    *more = note;

    if (r->connection->log->log_level < level) {
        return 0;
    }

    if (zone->log_rate == NGX_HTTP_TRL_LOG_RATE_OFF) {
        return 1;
    }

    tp = ngx_timeofday();

    if (!trl_zone_lines_permit(zone->zone, TRL_LINES_ERRORS,
                               (uint64_t) tp->sec * 1000 + tp->msec,
                               (uint32_t) zone->log_rate, &suppressed))
    {
        return 0;
    }

    if (suppressed) {
        *more = ngx_snprintf(note, NGX_HTTP_TRL_LOG_NOTE_LEN,
                             ", %uL lines suppressed by log_rate",
                             suppressed);
    }

    return 1;
}


static ngx_http_trl_ctx_t *
ngx_http_trl_create_ctx(ngx_http_request_t *r, ngx_uint_t n)
{
    ngx_pool_cleanup_t  *cln;
    ngx_http_trl_ctx_t  *ctx;

    cln = ngx_pool_cleanup_add(r->pool, sizeof(ngx_http_trl_ctx_t)
                                        + n * sizeof(ngx_http_trl_applied_t));
    if (cln == NULL) {
        return NULL;
    }

    ctx = cln->data;
    ngx_memzero(ctx, sizeof(ngx_http_trl_ctx_t));
    ctx->applied = (ngx_http_trl_applied_t *) (ctx + 1);

    cln->handler = ngx_http_trl_cleanup;

    ngx_http_set_ctx(r, ctx, ngx_http_token_ratelimit_module);

    return ctx;
}


/*
 * Internal redirects (and named locations) clear the module contexts and
 * set r->internal; only then is the pool cleanup list searched.
 */

ngx_http_trl_ctx_t *
ngx_http_trl_get_ctx(ngx_http_request_t *r)
{
    ngx_pool_cleanup_t  *cln;
    ngx_http_trl_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r->main, ngx_http_token_ratelimit_module);

    if (ctx || !r->main->internal) {
        return ctx;
    }

    for (cln = r->main->pool->cleanup; cln; cln = cln->next) {
        if (cln->handler == ngx_http_trl_cleanup) {
            ctx = cln->data;
            ngx_http_set_ctx(r->main, ctx, ngx_http_token_ratelimit_module);
            return ctx;
        }
    }

    return NULL;
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

    a->admitted = 0;

    ngx_memzero(&tl, sizeof(trl_limit_t));
    tl.rate = a->zone->rate;
    tl.flags = a->zone->sync == NGX_HTTP_TRL_SYNC_ASYNC && !a->in_redis
               ? TRL_LIMIT_SYNC : 0;

    if (a->leased) {
        tl.flags |= TRL_LIMIT_LEASE;        /* back into the lease */
        a->publish = 0;
    }

    (void) trl_zone_release(a->zone->zone, &a->key, &tl, a->ticket,
                            TRL_CLOCK_NOW);

    if (a->in_redis) {
        ngx_http_trl_strict_release(a);
    }
}


/*
 * count=failed keeps the places of requests whose final status is >= 400
 * (or that never got one) and gives back the others; count=succeeded does
 * the opposite.
 */

static ngx_int_t
ngx_http_trl_log_handler(ngx_http_request_t *r)
{
    ngx_uint_t               i, status, failed;
    ngx_http_trl_ctx_t      *ctx;
    ngx_http_trl_applied_t  *a;

    if (r != r->main) {
        return NGX_OK;
    }

    ctx = ngx_http_trl_get_ctx(r);

    if (ctx == NULL || !ctx->decided) {
        return NGX_OK;
    }

    status = r->err_status ? r->err_status : r->headers_out.status;
    failed = (status == 0 || status >= NGX_HTTP_BAD_REQUEST);

    for (i = 0; i < ctx->napplied; i++) {
        a = &ctx->applied[i];

        if (!a->admitted) {
            continue;
        }

        if ((a->limit->count == NGX_HTTP_TRL_COUNT_FAILED && failed)
            || (a->limit->count == NGX_HTTP_TRL_COUNT_SUCCEEDED && !failed))
        {
            a->admitted = 0;                /* it counts: keep its place */

            if (a->publish) {
                ngx_http_trl_sync_note(a->zone, a, 1);
            }

            continue;
        }

        ngx_http_trl_release(a);
    }

    return NGX_OK;
}


/*
 * A key as the zone shows it (ngx_http_trl_key_show), for the error log:
 * bytes outside printable ASCII, '"' and '\\' as \xNN, cut to
 * NGX_HTTP_TRL_LOG_KEY_LEN bytes with "...".
 */

static u_char *
ngx_http_trl_printable_key(u_char *buf, size_t size,
    ngx_http_trl_zone_t *zone, ngx_str_t *key, trl_hash_t *hash)
{
    u_char                    *p, *last, c;
    ngx_uint_t                 i, n;
    ngx_http_trl_key_shown_t   ks;

    static u_char  hex[] = "0123456789abcdef";

    ngx_http_trl_key_show(zone, key->data, key->len, hash, &ks);

    p = buf;
    last = buf + size;
    n = ngx_min(ks.text.len, NGX_HTTP_TRL_LOG_KEY_LEN);

    for (i = 0; i < n && last - p >= 4; i++) {
        c = ks.text.data[i];

        if (c < 0x20 || c > 0x7e || c == '"' || c == '\\') {
            *p++ = '\\';
            *p++ = 'x';
            *p++ = hex[c >> 4];
            *p++ = hex[c & 0xf];

        } else {
            *p++ = c;
        }
    }

    if (ks.text.len > n && last - p >= 3) {
        p = ngx_cpymem(p, "...", 3);
    }

    return p;
}


static void
ngx_http_trl_cleanup(void *data)
{
    /*
     * Nothing to free: the context lives in the request pool.  The cleanup
     * exists so that ngx_http_trl_get_ctx() finds the context again after
     * an internal redirect.
     */
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
        tl = ngx_http_trl_limit(zone, a->limit, tlcf);
        answer = ngx_http_trl_strict_answer(ctx->wait, i);

        if (answer && answer->async) {
            a->ask = 0;
            tl.flags |= TRL_LIMIT_LEASE;

            if (trl_zone_async_apply(zone->zone, &a->key, &tl,
                                     &answer->ask.reply, TRL_CLOCK_NOW, &res)
                == TRL_OK)
            {
                ngx_http_trl_log_events(r, tlcf, zone, &tl, &a->key_text,
                                        &a->key, &res);
                ngx_http_trl_set_result(a, &tl, &res);
                trl_zone_sync_put(zone->zone, TRL_SYNC_LAST_OK,
                                  trl_clock_ms());

                trl_zone_sync_add(zone->zone, TRL_SYNC_READS, 1);

                if (answer->ask.reply.admitted) {
                    a->in_redis = 1;        /* counted there already */
                    a->redis_cell = (int64_t) answer->ask.cell;
                    trl_zone_sync_add(zone->zone, TRL_SYNC_PUBLISHED, 1);
                }

                if (a->penalty_ms) {
                    ngx_http_trl_sync_note(zone, a, 0);
                }
            }

            continue;
        }

        if (answer) {
            if (trl_zone_strict_apply(zone->zone, &a->key, &tl,
                                      &answer->strict.reply, TRL_CLOCK_NOW,
                                      &res)
                == TRL_OK)
            {
                ngx_http_trl_log_events(r, tlcf, zone, &tl, &a->key_text,
                                        &a->key, &res);
                ngx_http_trl_set_result(a, &tl, &res);
                trl_zone_sync_put(zone->zone, TRL_SYNC_LAST_OK,
                                  trl_clock_ms());

                if (answer->strict.reply.admitted) {
                    a->in_redis = 1;
                    a->redis_cell = (int64_t) answer->strict.cell;
                }
            }

            continue;
        }

        trl_zone_sync_add(zone->zone, TRL_SYNC_ERRORS, 1);

        if (ngx_http_trl_fail_closed(a)) {
            continue;
        }

        trl_zone_sync_add(zone->zone, TRL_SYNC_FALLBACK, 1);

        a->publish = 1;                     /* once Redis is back */
        a->ask = 0;
        tl.flags &= ~(TRL_LIMIT_SYNC | TRL_LIMIT_LEASE);

        if (trl_zone_acquire(zone->zone, &a->key, &tl, TRL_CLOCK_NOW, &res)
            == TRL_OK)
        {
            ngx_http_trl_log_events(r, tlcf, zone, &tl, &a->key_text,
                                    &a->key, &res);
            ngx_http_trl_set_result(a, &tl, &res);
        }
    }

    return NGX_OK;
}
