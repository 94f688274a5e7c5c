
/*
 * ngx_http_token_ratelimit_result.c - a zone's answer for one request,
 * shared by the handler and the Redis sync (sync_*.c): what the core is
 * asked (ngx_http_trl_limit), the answer taken into the request's record
 * of the zone (ngx_http_trl_set_result), and the error log lines it calls
 * for (ngx_http_trl_log_events).
 */


#include "ngx_http_token_ratelimit.h"
#include "ngx_http_token_ratelimit_util.h"


/* A key is logged escaped and cut to this many bytes. */
#define NGX_HTTP_TRL_LOG_KEY_LEN   64

/* Room for ", N lines suppressed by log_rate". */

/* Room for "65535r/365d (scaled by reputation from 65535r/365d)". */
#define NGX_HTTP_TRL_LOG_RATE_LEN  96

/* At most one "zone is full" line per zone per this many ms. */
#define NGX_HTTP_TRL_EVICT_REPORT  60000


static u_char *ngx_http_trl_printable_key(u_char *buf, size_t size,
    ngx_http_trl_zone_t *zone, ngx_str_t *key, trl_hash_t *hash);
static void ngx_http_trl_rate_text(ngx_http_trl_zone_t *zone,
    trl_limit_t *tl, ngx_str_t *text, u_char *buf, size_t size);


/*
 * What a zone, a token_ratelimit directive and its location ask of the
 * core for the request a is of: its N is a->n (the zone's, or scaled by
 * reputation), on which a warn= percent is computed and to which an
 * absolute warn= is clamped; a->level starts its penalties higher.
 */

trl_limit_t
ngx_http_trl_limit(ngx_http_trl_applied_t *a, ngx_http_trl_loc_conf_t *tlcf)
{
    trl_limit_t                 tl;
    ngx_http_trl_zone_t        *zone;
    ngx_http_trl_limit_t       *limit;
    ngx_http_trl_redis_conf_t  *rc;

    zone = a->zone;
    limit = a->limit;

    ngx_memzero(&tl, sizeof(trl_limit_t));

    tl.rate = zone->rate;
    tl.rate.limit = a->n ? a->n : zone->rate.limit;
    tl.flags = (tlcf->dry_run || limit->dry_run) ? TRL_LIMIT_DRY_RUN : 0;
    tl.penalty = limit->penalty;
    tl.penalty.level = a->level;
    tl.warn = (uint32_t) ngx_min(limit->warn, tl.rate.limit);

    if (limit->warn_percent) {
        tl.warn = (uint32_t) ((tl.rate.limit * limit->warn_percent + 99)
                              / 100);
    }

    rc = zone->redis;

    if (zone->sync == TRL_SYNC_MODE_ASYNC) {
        tl.flags |= TRL_LIMIT_SYNC;
        tl.refresh_ms = (uint32_t) rc->interval;

    } else if (zone->sync == TRL_SYNC_MODE_STRICT) {
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
    a->remaining = res->remaining;
    a->reset_in = (time_t) ((res->reset_ms - res->now_ms + 999) / 1000);
    a->reset = ngx_http_trl_unix_time(res->reset_ms, res->now_ms);
    a->used = res->limit - res->remaining;
    a->violations = res->violations;
    a->penalized = res->penalized;

    if (res->penalty_start) {               /* for the cluster, too */
        a->penalty_start = 1;
        a->penalty_ms = res->penalty_ms;
        a->forgive_ms = tl->penalty.forgive_ms;
    }

    if (res->rejected) {
        a->rejected = 1;
        a->admitted = 0;
        a->dry_run = (tl->flags & TRL_LIMIT_DRY_RUN) != 0;
        a->log_first = res->log_first;
        a->retry_after = (time_t) ((res->retry_ms + 999) / 1000);

        if (a->retry_after < 1) {
            a->retry_after = 1;
        }

        return;
    }

    a->ticket = res->ticket;
    a->admitted = 1;
    a->warned = res->warned;
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
    u_char     rate_buf[NGX_HTTP_TRL_LOG_RATE_LEN];
    uint64_t   evicted;
    ngx_str_t  rate;

    /* the event log's lines are written once the request is decided */

    if (res->rejected) {
        trl_zone_offend(zone->core, hash, key->data, key->len,
                        res->now_ms);
    }

    if (res->recovered) {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "token_ratelimit zone \"%V\": took over a lock left "
                      "by a dead process and rebuilt its part of the zone",
                      &zone->name);
    }

    if (res->evicted) {
        evicted = trl_zone_eviction_report(zone->core, res->now_ms,
                                           NGX_HTTP_TRL_EVICT_REPORT);
        if (evicted) {
            ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                          "token_ratelimit zone \"%V\" is full: %uL keys "
                          "with live counts were evicted since the last "
                          "report; consider a larger zone",
                          &zone->name, evicted);
        }
    }

    if ((!res->log_first && res->suppressed == 0 && !res->warn_first
         && !res->penalty_start)
        || ngx_http_trl_attack_quiet(zone))   /* a summary a second */
    {
        return;
    }

    last = ngx_http_trl_printable_key(buf, sizeof(buf), zone, key, hash);
    ngx_http_trl_rate_text(zone, tl, &rate, rate_buf, sizeof(rate_buf));

    if (res->warn_first
        && ngx_http_trl_log_permit(r, zone, NGX_LOG_NOTICE, note, &more))
    {
        ngx_log_error(NGX_LOG_NOTICE, r->connection->log, 0,
                      "zone \"%V\": key \"%*s\" reached the warning "
                      "threshold, %uD of limit %V taken%*s",
                      &zone->name, (size_t) (last - buf), buf,
                      res->limit - res->remaining, &rate,
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
                          &rate, res->penalty_ms / 1000,
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
                          &rate,
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
                  &rate, (size_t) (more - note), note);
}


/*
 * Takes a place for a line at level in the zone's error log budget (a
 * line the error log would not write takes none).  On 1, note..*more
 * holds what the line ends with: ", N lines suppressed by log_rate" when
 * lines were refused since the last one, else nothing.
 */

ngx_uint_t
ngx_http_trl_log_permit(ngx_http_request_t *r, ngx_http_trl_zone_t *zone,
    ngx_uint_t level, u_char *note, u_char **more)
{
    uint64_t  suppressed;

    *more = note;

    if (r->connection->log->log_level < level) {
        return 0;
    }

    if (zone->log_rate == NGX_HTTP_TRL_LOG_RATE_OFF) {
        return 1;
    }

    if (!trl_zone_lines_permit(zone->core, TRL_LINES_ERRORS,
                               ngx_http_trl_wall_ms(),
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


/*
 * The limit a log line names: the zone's rate, or for a client whose N
 * reputation scaled, "5r/m (scaled by reputation from 10r/m)".
 */

static void
ngx_http_trl_rate_text(ngx_http_trl_zone_t *zone, trl_limit_t *tl,
    ngx_str_t *text, u_char *buf, size_t size)
{
    char    scaled[64];
    size_t  len;

    if (tl->rate.limit == zone->rate.limit) {
        *text = zone->rate_text;
        return;
    }

    len = trl_rate_format(&tl->rate, scaled, sizeof(scaled));

    text->data = buf;
    text->len = ngx_snprintf(buf, size, "%*s (scaled by reputation from %V)",
                             len, scaled, &zone->rate_text)
                - buf;
}
