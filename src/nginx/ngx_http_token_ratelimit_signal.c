
/*
 * ngx_http_token_ratelimit_signal.c - signal zones (issue 14, "from the
 * WAF"): token_ratelimit_zone ... signal=$var.
 *
 * A request another module stopped before the preaccess phase (such as a
 * 403 of ModSecurity in the rewrite phase) never meets the limiter.  A
 * signal zone counts such requests instead: in the log phase, every main
 * request of the http block whose signal value is non-empty and not "0"
 * takes a place of the zone's key, as an admission would; once the key
 * has no place left the signal is a violation, counted as a rejection and
 * able to start the penalty of the location's limit on the zone.
 *
 * "token_ratelimit zone=NAME" on a signal zone only checks: the request
 * passes, uncounted, while the key has a place, and is rejected through
 * the usual path (429, Retry-After, penalty, logs) once it has none.
 *
 * sync=async zones publish their signals as admissions of the key, with
 * the other nodes' counts read back every interval: the log phase never
 * waits for Redis.  sync=strict would have to, and is refused.
 */


#include "ngx_http_token_ratelimit.h"
#include "ngx_http_token_ratelimit_util.h"


static ngx_int_t ngx_http_trl_signal_log_handler(ngx_http_request_t *r);
static void ngx_http_trl_signal_count(ngx_http_request_t *r,
    ngx_http_trl_loc_conf_t *tlcf, ngx_http_trl_zone_t *zone);
static ngx_http_trl_limit_t *ngx_http_trl_signal_limit(
    ngx_http_trl_loc_conf_t *tlcf, ngx_http_trl_zone_t *zone);


/* signal=$var of token_ratelimit_zone */

char *
ngx_http_trl_signal_option(ngx_conf_t *cf, ngx_command_t *cmd,
    ngx_str_t *value, ngx_http_trl_zone_t *ctx)
{
    ngx_str_t  v;

    v.data = value->data + 7;
    v.len = value->len - 7;

    if (v.len == 0 || ngx_strlchr(v.data, v.data + v.len, '$') == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid value \"%V\" in \"%V\" directive, "
                           "\"signal=\" expects a string with variables, "
                           "such as signal=$waf_blocked (a request signals "
                           "when it is neither empty nor \"0\")",
                           value, &cmd->name);
        return NGX_CONF_ERROR;
    }

    ctx->signal = ngx_http_trl_complex(cf, &v);

    return ctx->signal ? NGX_CONF_OK : NGX_CONF_ERROR;
}


/* The zone's options are all read: what a signal zone cannot be. */

char *
ngx_http_trl_signal_check(ngx_conf_t *cf, ngx_command_t *cmd,
    ngx_http_trl_zone_t *ctx)
{
    if (ctx->signal == NULL) {
        return NGX_CONF_OK;
    }

    if (ctx->sync == TRL_SYNC_MODE_STRICT) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"signal=\" cannot be used with \"sync=strict\" "
                           "in \"%V\" directive: signals are counted in the "
                           "log phase, which cannot wait for Redis; use "
                           "\"sync=async\" to share them", &cmd->name);
        return NGX_CONF_ERROR;
    }

    if (ctx->distinct) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"signal=\" cannot be used with \"distinct=\" "
                           "in \"%V\" directive: a signal zone counts "
                           "requests", &cmd->name);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/* postconfiguration: the log handler, only where a signal zone exists */

ngx_int_t
ngx_http_trl_signal_init(ngx_conf_t *cf)
{
    ngx_uint_t                  i;
    ngx_http_handler_pt        *h;
    ngx_http_trl_zone_t       **zones;
    ngx_http_trl_main_conf_t   *tmcf;
    ngx_http_core_main_conf_t  *cmcf;

    tmcf = ngx_http_conf_get_module_main_conf(cf,
                                              ngx_http_token_ratelimit_module);
    zones = tmcf->zones.elts;

    for (i = 0; i < tmcf->zones.nelts; i++) {
        if (zones[i]->signal) {
            break;
        }
    }

    if (i == tmcf->zones.nelts) {
        return NGX_OK;
    }

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_LOG_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_trl_signal_log_handler;

    return NGX_OK;
}


static ngx_int_t
ngx_http_trl_signal_log_handler(ngx_http_request_t *r)
{
    ngx_str_t                  value;
    ngx_uint_t                 i;
    ngx_http_trl_ctx_t        *ctx;
    ngx_http_trl_zone_t      **zones;
    ngx_http_trl_loc_conf_t   *tlcf;
    ngx_http_trl_main_conf_t  *tmcf;

    tlcf = ngx_http_get_module_loc_conf(r, ngx_http_token_ratelimit_module);

    if (r != r->main || !tlcf->enabled) {
        return NGX_OK;                      /* "token_ratelimit_enabled off" */
    }

    /*
     * A request the limiter itself rejected or denied is no news from
     * the WAF: counted, it would feed its own penalty.
     */

    ctx = ngx_http_trl_get_ctx(r);

    if (ctx && ctx->decided && ctx->status == NGX_HTTP_TRL_REJECTED) {
        return NGX_OK;
    }

    tmcf = ngx_http_get_module_main_conf(r, ngx_http_token_ratelimit_module);
    zones = tmcf->zones.elts;

    for (i = 0; i < tmcf->zones.nelts; i++) {

        if (zones[i]->signal == NULL) {
            continue;
        }

        if (ngx_http_complex_value(r, zones[i]->signal, &value) != NGX_OK
            || value.len == 0
            || (value.len == 1 && value.data[0] == '0'))
        {
            continue;
        }

        ngx_http_trl_signal_count(r, tlcf, zones[i]);
    }

    return NGX_OK;
}


/* One signal: a place of the key, or a violation when it has none. */

static void
ngx_http_trl_signal_count(ngx_http_request_t *r,
    ngx_http_trl_loc_conf_t *tlcf, ngx_http_trl_zone_t *zone)
{
    trl_limit_t              tl;
    trl_result_t             res;
    ngx_http_trl_event_t     ev;
    ngx_http_trl_limit_t    *limit, bare;
    ngx_http_trl_applied_t   a;

    ngx_memzero(&a, sizeof(ngx_http_trl_applied_t));

    if (ngx_http_complex_value(r, &zone->key, &a.key_text) != NGX_OK
        || a.key_text.len == 0)
    {
        return;                             /* no key: no signal */
    }

    /* the location's limit on the zone gives its penalty, if it has one */

    limit = ngx_http_trl_signal_limit(tlcf, zone);

    if (limit == NULL) {
        ngx_memzero(&bare, sizeof(ngx_http_trl_limit_t));
        bare.shm_zone = zone->shm_zone;
        limit = &bare;
    }

    a.zone = zone;
    a.limit = limit;
    a.n = zone->rate.limit;

    trl_zone_hash(zone->core, a.key_text.data, a.key_text.len, &a.key);

    tl = ngx_http_trl_limit(&a, tlcf);
    tl.flags &= ~TRL_LIMIT_DRY_RUN;         /* a signal is a fact */
    tl.warn = 0;

    if (zone->sync == TRL_SYNC_MODE_ASYNC && !ngx_http_trl_sync_available()) {
        tl.flags &= ~TRL_LIMIT_SYNC;        /* published once Redis is back */
    }

    if (trl_zone_acquire(zone->core, &a.key, &tl, TRL_CLOCK_NOW, &res)
        != TRL_OK)
    {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "token_ratelimit zone \"%V\" failed to count a "
                      "signal", &zone->name);
        return;
    }

    ngx_http_trl_log_events(r, tlcf, zone, &tl, &a.key_text, &a.key, &res);
    ngx_http_trl_set_result(&a, &tl, &res);

    if (tlcf->event_log) {
        ngx_memzero(&ev, sizeof(ngx_http_trl_event_t));
        ev.event = "signal";
        ev.zone = zone;
        ev.key = a.key_text;
        ngx_str_set(&ev.reason, "counted");

        if (res.rejected) {
            ngx_str_set(&ev.reason, "violation");
            ev.duration_ms = res.penalty_start ? res.penalty_ms : 0;
        }

        ngx_http_trl_event_log_extra(r, tlcf, &ev);
    }

    ngx_log_debug4(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "token_ratelimit: signal zone \"%V\" key "
                   "%016xL%016xL: %s",
                   &zone->name, a.key.hi, a.key.lo,
                   res.rejected ? "violation" : "counted");

    if (zone->sync == TRL_SYNC_MODE_ASYNC) {
        ngx_http_trl_sync_note(zone, &a, res.rejected ? 0 : 1);
    }
}


static ngx_http_trl_limit_t *
ngx_http_trl_signal_limit(ngx_http_trl_loc_conf_t *tlcf,
    ngx_http_trl_zone_t *zone)
{
    ngx_uint_t             i;
    ngx_http_trl_limit_t  *limits;

    limits = tlcf->limits.elts;

    for (i = 0; i < tlcf->limits.nelts; i++) {
        if (limits[i].shm_zone == zone->shm_zone) {
            return &limits[i];
        }
    }

    return NULL;
}


/*
 * token_ratelimit on a signal zone, in the preaccess handler: it only
 * checks.  NGX_DECLINED while the key has a place (the zone does not
 * apply: nothing counted, nothing shown), NGX_BUSY when the next request
 * would be rejected, which the caller then decides the usual way.
 */

ngx_int_t
ngx_http_trl_signal_peek(ngx_http_request_t *r, ngx_http_trl_applied_t *a,
    trl_limit_t *tl)
{
    int           rc;
    trl_result_t  res;

    rc = trl_zone_peek(a->zone->core, &a->key, tl, TRL_CLOCK_NOW, &res);

    if (rc == TRL_ERROR) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "token_ratelimit zone \"%V\" failed to decide; "
                      "the request is passed", &a->zone->name);
        return NGX_DECLINED;
    }

    if (rc == TRL_OK && res.rejected) {
        return NGX_BUSY;
    }

    /*
     * sync=async: the other nodes' signals are learnt by reading the key's
     * cluster total every interval while it is asked for; the zone holds
     * the key (uncounted) so that the reads land.
     */

    if (tl->flags & TRL_LIMIT_SYNC) {
        (void) trl_zone_sync_watch(a->zone->core, &a->key, tl,
                                   TRL_CLOCK_NOW);
        ngx_http_trl_sync_note(a->zone, a, 0);
    }

    return NGX_DECLINED;
}
