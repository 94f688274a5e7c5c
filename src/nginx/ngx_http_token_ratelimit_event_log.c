
/*
 * ngx_http_token_ratelimit_event_log.c - token_ratelimit_event_log: one JSON
 * object per line for every rejection, penalty start, deny and "Redis
 * unavailable" answer, for a key first going over a distinct limit, and
 * for the events other parts report (ngx_http_trl_event_log_extra: bans,
 * attack mode, signals), to a file or to syslog, for SIEM pipelines: in
 * our own field names (format=json, written here) or in the Elastic
 * Common Schema's (format=ecs, ngx_http_token_ratelimit_event_ecs.c).
 *
 * Nothing here runs for an admitted request.  Lines are rate-limited per
 * zone in the zone's shared memory (trl_zone_event_permit), so that a
 * flood cannot fill the disk; the lines refused are counted and reported
 * by a "suppressed" line before the next line written.  A line is built on
 * the stack and written with one write() (a regular file opened by nginx
 * with O_APPEND, reopened on "nginx -s reopen") or sent as one syslog
 * datagram; a failure never fails the request and is logged at most once
 * a minute.
 */


#include "ngx_http_token_ratelimit_event_log.h"
#include "ngx_http_token_ratelimit_util.h"


#define NGX_HTTP_TRL_EVENT_RATE        100      /* lines a second per zone */

/*
 * Escaped, a byte takes at most 6 (\u00XX or \ufffd): the longest line is
 * below 9 KB (ECS: 10 KB), plus the syslog header (PRI, time, host name,
 * tag).
 */
#define NGX_HTTP_TRL_EVENT_LINE        12288

#define NGX_HTTP_TRL_EVENT_ERROR_GAP   60       /* s between error lines */


static void ngx_http_trl_event_rejected(ngx_http_request_t *r,
    ngx_http_trl_loc_conf_t *tlcf, ngx_http_trl_applied_t *a);
static void ngx_http_trl_event_denied(ngx_http_request_t *r,
    ngx_http_trl_loc_conf_t *tlcf, ngx_http_trl_zone_t *zone,
    ngx_str_t *key, ngx_uint_t why);
static void ngx_http_trl_event_unavailable(ngx_http_request_t *r,
    ngx_http_trl_loc_conf_t *tlcf, ngx_http_trl_applied_t *a);
static ngx_http_trl_zone_t *ngx_http_trl_event_zone(
    ngx_http_trl_loc_conf_t *tlcf, ngx_http_trl_zone_t *zone);
static void ngx_http_trl_event_emit(ngx_http_request_t *r,
    ngx_http_trl_event_log_t *el, ngx_http_trl_event_rec_t *ev);
static ngx_uint_t ngx_http_trl_event_permit(ngx_http_request_t *r,
    ngx_http_trl_event_log_t *el, ngx_http_trl_zone_t *zone,
    uint64_t *wall_ms);
static void ngx_http_trl_event_line(ngx_http_request_t *r,
    ngx_http_trl_event_log_t *el, ngx_http_trl_event_rec_t *ev,
    uint64_t wall_ms);
static u_char *ngx_http_trl_event_json(ngx_http_request_t *r,
    ngx_http_trl_event_log_t *el, ngx_http_trl_event_rec_t *ev,
    uint64_t wall_ms, u_char *p, u_char *last);
static u_char *ngx_http_trl_event_request(ngx_http_request_t *r,
    ngx_http_trl_event_log_t *el, u_char *p, u_char *last);
static void ngx_http_trl_event_write(ngx_http_request_t *r,
    ngx_http_trl_event_log_t *el, u_char *buf, u_char *p);


static ngx_str_t  ngx_http_trl_request_id = ngx_string("request_id");


/*
 * token_ratelimit_event_log off | file [rate=N] [format=json|ecs] |
 *     syslog:server=address[,facility=..][,severity=..][,tag=..]
 *     [,nohostname] [rate=N] [format=json|ecs];
 */

char *
ngx_http_trl_event_log_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_trl_loc_conf_t  *tlcf = conf;

    u_char                    *p;
    ngx_int_t                  n;
    ngx_str_t                 *value, target;
    ngx_uint_t                 i, rate, format;
    ngx_syslog_peer_t         *peer;
    ngx_http_trl_event_log_t  *el;

    if (tlcf->event_log != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "off") == 0) {

        if (cf->args->nelts > 2) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid parameter \"%V\" in \"%V\" "
                               "directive, \"off\" takes no other "
                               "parameter", &value[2], &cmd->name);
            return NGX_CONF_ERROR;
        }

        tlcf->event_log = NULL;
        return NGX_CONF_OK;
    }

    if (value[1].len == 0 || ngx_strncmp(value[1].data, "rate=", 5) == 0
        || ngx_strncmp(value[1].data, "format=", 7) == 0)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter \"%V\" in \"%V\" directive, "
                           "expected a file, \"syslog:server=address\" or "
                           "\"off\" first", &value[1], &cmd->name);
        return NGX_CONF_ERROR;
    }

    rate = 0;
    format = NGX_CONF_UNSET_UINT;

    for (i = 2; i < cf->args->nelts; i++) {

        if ((rate && ngx_strncmp(value[i].data, "rate=", 5) == 0)
            || (format != NGX_CONF_UNSET_UINT
                && ngx_strncmp(value[i].data, "format=", 7) == 0))
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid parameter \"%V\" in \"%V\" "
                               "directive, given twice", &value[i],
                               &cmd->name);
            return NGX_CONF_ERROR;
        }

        if (ngx_strncmp(value[i].data, "rate=", 5) == 0) {

            n = ngx_atoi(value[i].data + 5, value[i].len - 5);

            if (n == NGX_ERROR || n < 1 || n > TRL_EVENT_MAX_RATE) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid parameter \"%V\" in \"%V\" "
                                   "directive, \"rate=\" takes the lines "
                                   "a second per zone, 1 to %d",
                                   &value[i], &cmd->name,
                                   TRL_EVENT_MAX_RATE);
                return NGX_CONF_ERROR;
            }

            rate = (ngx_uint_t) n;
            continue;
        }

        if (ngx_strncmp(value[i].data, "format=", 7) == 0) {

            if (value[i].len == 11
                && ngx_strncmp(value[i].data + 7, "json", 4) == 0)
            {
                format = NGX_HTTP_TRL_EVENT_JSON;
                continue;
            }

            if (value[i].len == 10
                && ngx_strncmp(value[i].data + 7, "ecs", 3) == 0)
            {
                format = NGX_HTTP_TRL_EVENT_ECS;
                continue;
            }

            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid parameter \"%V\" in \"%V\" "
                               "directive, \"format=\" takes \"json\" "
                               "or \"ecs\"", &value[i], &cmd->name);
            return NGX_CONF_ERROR;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter \"%V\" in \"%V\" directive, "
                           "expected \"rate=N\" or \"format=json|ecs\" "
                           "after the target", &value[i], &cmd->name);
        return NGX_CONF_ERROR;
    }

    el = ngx_pcalloc(cf->pool, sizeof(ngx_http_trl_event_log_t));
    if (el == NULL) {
        return NGX_CONF_ERROR;
    }

    el->rate = rate ? rate : NGX_HTTP_TRL_EVENT_RATE;
    el->format = (format == NGX_CONF_UNSET_UINT) ? NGX_HTTP_TRL_EVENT_JSON
                                                 : format;

    el->request_id = ngx_http_get_variable_index(cf,
                                                 &ngx_http_trl_request_id);
    if (el->request_id == NGX_ERROR) {
        return NGX_CONF_ERROR;
    }

    if (ngx_strncmp(value[1].data, "syslog:", 7) == 0) {

        /* nginx's parser cuts the argument at its commas: keep a copy */

        target.len = value[1].len;
        target.data = ngx_pstrdup(cf->pool, &value[1]);
        if (target.data == NULL) {
            return NGX_CONF_ERROR;
        }

        peer = ngx_pcalloc(cf->pool, sizeof(ngx_syslog_peer_t));
        if (peer == NULL) {
            return NGX_CONF_ERROR;
        }

        if (ngx_syslog_process_conf(cf, peer) != NGX_CONF_OK) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid parameter \"%V\" in \"%V\" "
                               "directive, expected \"syslog:server="
                               "address[,facility=..][,severity=..]"
                               "[,tag=..][,nohostname]\"",
                               &target, &cmd->name);
            return NGX_CONF_ERROR;
        }

        el->syslog = peer;
        tlcf->event_log = el;

        return NGX_CONF_OK;
    }

    for (p = value[1].data; p < value[1].data + value[1].len; p++) {
        if (*p == '$') {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid parameter \"%V\" in \"%V\" "
                               "directive, variables are not supported "
                               "in the file name", &value[1], &cmd->name);
            return NGX_CONF_ERROR;
        }
    }

    /* relative to the prefix, opened by nginx, reopened on USR1 */

    el->file = ngx_conf_open_file(cf->cycle, &value[1]);
    if (el->file == NULL) {
        return NGX_CONF_ERROR;
    }

    tlcf->event_log = el;

    return NGX_CONF_OK;
}


/*
 * The request is decided (ngx_http_trl_finish): its lines, from what the
 * context recorded.  Denied: a "denied" line.  Else, for each zone that
 * rejected it (enforced or in a dry run), a "rejected" line and a
 * "penalty" line when the rejection started a penalty; an "unavailable"
 * line when the answer is fail=closed's 503.
 */

void
ngx_http_trl_event_log_write(ngx_http_request_t *r,
    ngx_http_trl_loc_conf_t *tlcf, ngx_http_trl_ctx_t *ctx)
{
    ngx_uint_t               i;
    ngx_http_trl_applied_t  *a;

    if (ctx->denied) {
        a = ctx->denied_key;

        ngx_http_trl_event_denied(r, tlcf, a ? a->zone : NULL,
                                  a ? &a->key_text : NULL, ctx->denied_why);
        return;
    }

    for (i = 0; i < ctx->napplied; i++) {
        a = &ctx->applied[i];

        if (a->rejected && !a->unavailable) {
            ngx_http_trl_event_rejected(r, tlcf, a);
        }
    }

    if (ctx->rejected && ctx->rejected->unavailable) {
        ngx_http_trl_event_unavailable(r, tlcf, ctx->rejected);
    }
}


static void
ngx_http_trl_event_rejected(ngx_http_request_t *r,
    ngx_http_trl_loc_conf_t *tlcf, ngx_http_trl_applied_t *a)
{
    ngx_http_trl_zone_t       *zone;
    ngx_http_trl_event_rec_t   ev;

    zone = a->zone;

    ngx_memzero(&ev, sizeof(ngx_http_trl_event_rec_t));
    ev.event = a->dry_run ? "rejected_dry_run" : "rejected";
    ev.zone = zone;
    ev.key = &a->key_text;
    ev.hash = &a->key;
    ev.request = 1;
    ev.status = a->dry_run ? 0 : tlcf->status_code;
    ev.fields = NGX_HTTP_TRL_EV_LIMIT | NGX_HTTP_TRL_EV_COUNT
                | NGX_HTTP_TRL_EV_RETRY | NGX_HTTP_TRL_EV_RESET
                | NGX_HTTP_TRL_EV_DRY_RUN
                | (a->violations ? NGX_HTTP_TRL_EV_VIOLATIONS : 0);
    ev.limit = a->n;
    ev.window_ms = zone->rate.window_ms;
    ev.count = a->used;
    ev.violations = a->violations;
    ev.retry_after = a->retry_after;
    ev.reset_at = a->reset;
    ev.penalized = a->penalized;
    ev.dry_run = a->dry_run;

    ngx_http_trl_event_emit(r, tlcf->event_log, &ev);

    /*
     * A key's first rejection by a distinct zone in an episode: the value
     * itself (personal data) is never written, its fingerprint only with
     * log_key=on.
     */

    if (zone->distinct && a->log_first) {
        ev.event = "distinct_exceeded";
        ev.status = 0;
        ev.fields = NGX_HTTP_TRL_EV_LIMIT | NGX_HTTP_TRL_EV_DRY_RUN
                    | (zone->log_key == TRL_LOG_KEY_ON
                       ? NGX_HTTP_TRL_EV_FINGERPRINT : 0);
        ev.limit = zone->rate.limit;
        ev.fingerprint = a->fp;
        ev.of = zone->distinct->value;
        ev.penalized = 0;

        ngx_http_trl_event_emit(r, tlcf->event_log, &ev);
    }

    if (!a->penalty_start) {
        return;
    }

    /* the client's wait: the block, or the window if it frees later */

    ev.event = "penalty";
    ev.status = 0;
    ev.fields = NGX_HTTP_TRL_EV_LIMIT | NGX_HTTP_TRL_EV_PENALTY
                | NGX_HTTP_TRL_EV_VIOLATIONS | NGX_HTTP_TRL_EV_RETRY
                | NGX_HTTP_TRL_EV_RESET | NGX_HTTP_TRL_EV_DRY_RUN;
    ev.limit = a->n;
    ev.penalty_ms = a->penalty_ms;
    ev.of.len = 0;
    ev.penalized = 0;

    ngx_http_trl_event_emit(r, tlcf->event_log, &ev);
}


/*
 * token_ratelimit_deny, a runtime deny entry or a reputation deny answered
 * 403.  zone: the zone whose key a deny entry named, else NULL: the
 * location's first zone, whose budget the line takes.
 */

static void
ngx_http_trl_event_denied(ngx_http_request_t *r,
    ngx_http_trl_loc_conf_t *tlcf, ngx_http_trl_zone_t *zone,
    ngx_str_t *key, ngx_uint_t why)
{
    ngx_http_trl_event_rec_t  ev;

    ngx_memzero(&ev, sizeof(ngx_http_trl_event_rec_t));
    ev.event = "denied";
    ev.zone = ngx_http_trl_event_zone(tlcf, zone);
    ev.key = key;
    ev.request = 1;
    ev.status = NGX_HTTP_FORBIDDEN;

    if (why == NGX_HTTP_TRL_DENIED_LIST) {
        ngx_str_set(&ev.reason, "deny_list");

    } else if (why == NGX_HTTP_TRL_DENIED_REPUTATION) {
        ngx_str_set(&ev.reason, "reputation");

    } else {
        ngx_str_set(&ev.reason, "token_ratelimit_deny");
    }

    ngx_http_trl_event_emit(r, tlcf->event_log, &ev);
}


/* fail=closed: Redis could not be asked, the request was answered 503. */

static void
ngx_http_trl_event_unavailable(ngx_http_request_t *r,
    ngx_http_trl_loc_conf_t *tlcf, ngx_http_trl_applied_t *a)
{
    ngx_http_trl_event_rec_t  ev;

    ngx_memzero(&ev, sizeof(ngx_http_trl_event_rec_t));
    ev.event = "unavailable";
    ev.zone = a->zone;
    ev.key = &a->key_text;
    ev.hash = &a->key;
    ev.request = 1;
    ev.status = NGX_HTTP_SERVICE_UNAVAILABLE;
    ev.fields = NGX_HTTP_TRL_EV_RETRY;
    ev.retry_after = 1;

    ngx_http_trl_event_emit(r, tlcf->event_log, &ev);
}


/*
 * An event no zone decision carries (auto-ban, attack mode, a signal):
 * the zone's budget (the location's first zone's when ev->zone is NULL),
 * the key as that zone shows it, the request, then "value",
 * "duration_s", "reason" and "state" when given.
 */

void
ngx_http_trl_event_log_extra(ngx_http_request_t *r,
    ngx_http_trl_loc_conf_t *tlcf, ngx_http_trl_event_t *ev)
{
    ngx_http_trl_event_rec_t  rec;

    ngx_memzero(&rec, sizeof(ngx_http_trl_event_rec_t));
    rec.event = ev->event;
    rec.zone = ngx_http_trl_event_zone(tlcf, ev->zone);
    rec.key = ev->key.len ? &ev->key : NULL;
    rec.request = 1;
    rec.value = ev->value;
    rec.duration_ms = ev->duration_ms;
    rec.reason = ev->reason;
    rec.state = ev->state;

    ngx_http_trl_event_emit(r, tlcf->event_log, &rec);
}


/* The zone whose budget a line takes: its own, else the location's first. */

static ngx_http_trl_zone_t *
ngx_http_trl_event_zone(ngx_http_trl_loc_conf_t *tlcf,
    ngx_http_trl_zone_t *zone)
{
    ngx_http_trl_limit_t  *limits;

    if (zone) {
        return zone;
    }

    if (tlcf->limits.nelts == 0) {
        return NULL;
    }

    limits = tlcf->limits.elts;

    return limits[0].shm_zone->data;
}


/* The event's line, if the zone's budget for this second allows it. */

static void
ngx_http_trl_event_emit(ngx_http_request_t *r, ngx_http_trl_event_log_t *el,
    ngx_http_trl_event_rec_t *ev)
{
    uint64_t  wall_ms;

    if (ev->zone == NULL
        || !ngx_http_trl_event_permit(r, el, ev->zone, &wall_ms))
    {
        return;
    }

    ngx_http_trl_event_line(r, el, ev, wall_ms);
}


/*
 * Takes a place in the zone's budget for this second (wall clock, as the
 * line's "time"); the lines refused since the last one are reported first.
 */

static ngx_uint_t
ngx_http_trl_event_permit(ngx_http_request_t *r,
    ngx_http_trl_event_log_t *el, ngx_http_trl_zone_t *zone,
    uint64_t *wall_ms)
{
    uint64_t                   suppressed;
    ngx_http_trl_event_rec_t   ev;

    *wall_ms = ngx_http_trl_wall_ms();

    if (!trl_zone_event_permit(zone->core, *wall_ms, (uint32_t) el->rate,
                               &suppressed))
    {
        return 0;
    }

    if (suppressed) {
        ngx_memzero(&ev, sizeof(ngx_http_trl_event_rec_t));
        ev.event = "suppressed";
        ev.zone = zone;
        ev.fields = NGX_HTTP_TRL_EV_COUNT;
        ev.count = suppressed;

        ngx_http_trl_event_line(r, el, &ev, *wall_ms);
    }

    return 1;
}


/* One line in the log's format, after the syslog header. */

static void
ngx_http_trl_event_line(ngx_http_request_t *r, ngx_http_trl_event_log_t *el,
    ngx_http_trl_event_rec_t *ev, uint64_t wall_ms)
{
    u_char  *p, *last, buf[NGX_HTTP_TRL_EVENT_LINE];

    p = buf;
    last = buf + sizeof(buf) - 1;     /* room for the newline */

    if (el->syslog) {
        p = ngx_syslog_add_header(el->syslog, p);
    }

    if (el->format == NGX_HTTP_TRL_EVENT_ECS) {
        p = ngx_http_trl_event_ecs(r, el, ev, wall_ms, p, last);

    } else {
        p = ngx_http_trl_event_json(r, el, ev, wall_ms, p, last);
    }

    ngx_http_trl_event_write(r, el, buf, p);
}


/*
 * The native line: {"time":..,"event":..,"zone":.., the key, the request,
 * then the numbers the event carries, in this order.
 */

static u_char *
ngx_http_trl_event_json(ngx_http_request_t *r, ngx_http_trl_event_log_t *el,
    ngx_http_trl_event_rec_t *ev, uint64_t wall_ms, u_char *p, u_char *last)
{
    p = ngx_slprintf(p, last, "{\"time\":");
    p = ngx_http_trl_event_time(p, last, wall_ms);
    p = ngx_slprintf(p, last, ",\"event\":\"%s\"", ev->event);
    p = ngx_http_trl_event_string(p, last, "zone", ev->zone->name.data,
                                  ev->zone->name.len,
                                  NGX_HTTP_TRL_EVENT_SHORT_LEN, NULL);

    if (ev->key) {
        p = ngx_http_trl_event_key(p, last, ev->zone, ev->key, ev->hash);
    }

    if (ev->request) {
        p = ngx_http_trl_event_request(r, el, p, last);
    }

    if (ev->of.len) {
        p = ngx_http_trl_event_string(p, last, "of", ev->of.data,
                                      ev->of.len,
                                      NGX_HTTP_TRL_EVENT_SHORT_LEN, NULL);
    }

    if (ev->status) {
        p = ngx_slprintf(p, last, ",\"status\":%ui", ev->status);
    }

    p = ngx_http_trl_event_numbers(p, last, ev);

    if (ev->reason.len) {
        p = ngx_http_trl_event_string(p, last, "reason", ev->reason.data,
                                      ev->reason.len,
                                      NGX_HTTP_TRL_EVENT_SHORT_LEN, NULL);
    }

    if (ev->state.len) {
        p = ngx_http_trl_event_string(p, last, "state", ev->state.data,
                                      ev->state.len,
                                      NGX_HTTP_TRL_EVENT_SHORT_LEN, NULL);
    }

    if (!ev->request) {                 /* "suppressed": the node alone */
        p = ngx_http_trl_event_string(p, last, "node",
                                      ngx_cycle->hostname.data,
                                      ngx_cycle->hostname.len,
                                      NGX_HTTP_TRL_EVENT_SHORT_LEN, NULL);
    }

    if (ev->fields & NGX_HTTP_TRL_EV_DRY_RUN) {
        p = ngx_slprintf(p, last, ",\"dry_run\":%s",
                         ev->dry_run ? "true" : "false");
    }

    return ngx_slprintf(p, last, "}");
}


/* "2026-11-22T21:29:25.257Z": ISO 8601 UTC with ms, quoted */

u_char *
ngx_http_trl_event_time(u_char *p, u_char *last, uint64_t wall_ms)
{
    ngx_tm_t  tm;

    ngx_gmtime((time_t) (wall_ms / 1000), &tm);

    return ngx_slprintf(p, last,
                        "\"%4d-%02d-%02dT%02d:%02d:%02d.%03uLZ\"",
                        tm.ngx_tm_year, tm.ngx_tm_mon, tm.ngx_tm_mday,
                        tm.ngx_tm_hour, tm.ngx_tm_min, tm.ngx_tm_sec,
                        wall_ms % 1000);
}


/* $request_id of the request, NULL when it has none */

ngx_http_variable_value_t *
ngx_http_trl_event_request_id(ngx_http_request_t *r,
    ngx_http_trl_event_log_t *el)
{
    ngx_http_variable_value_t  *v;

    v = ngx_http_get_indexed_variable(r, el->request_id);

    if (v == NULL || v->not_found || v->len == 0) {
        return NULL;
    }

    return v;
}


/* ,"client":..,"method":..,"uri":..,"host":..,"request_id":..,"node":.. */

static u_char *
ngx_http_trl_event_request(ngx_http_request_t *r,
    ngx_http_trl_event_log_t *el, u_char *p, u_char *last)
{
    ngx_str_t                  *host;
    ngx_http_variable_value_t  *v;

    p = ngx_http_trl_event_string(p, last, "client",
                                  r->connection->addr_text.data,
                                  r->connection->addr_text.len,
                                  NGX_HTTP_TRL_EVENT_SHORT_LEN, NULL);

    p = ngx_http_trl_event_string(p, last, "method", r->method_name.data,
                                  r->method_name.len,
                                  NGX_HTTP_TRL_EVENT_METHOD_LEN, NULL);

    p = ngx_http_trl_event_string(p, last, "uri", r->uri.data, r->uri.len,
                                  NGX_HTTP_TRL_EVENT_URI_LEN,
                                  "uri_truncated");

    host = &r->headers_in.server;

    if (host->len) {
        p = ngx_http_trl_event_string(p, last, "host", host->data,
                                      host->len, NGX_HTTP_TRL_EVENT_HOST_LEN,
                                      NULL);
    }

    v = ngx_http_trl_event_request_id(r, el);

    if (v) {
        p = ngx_http_trl_event_string(p, last, "request_id", v->data,
                                      v->len, NGX_HTTP_TRL_EVENT_SHORT_LEN,
                                      NULL);
    }

    return ngx_http_trl_event_string(p, last, "node",
                                     ngx_cycle->hostname.data,
                                     ngx_cycle->hostname.len,
                                     NGX_HTTP_TRL_EVENT_SHORT_LEN, NULL);
}


/*
 * The key as the zone shows it (ngx_http_trl_key_show): ,"key":"..." when
 * printable ASCII (an address in a $binary_remote_addr zone), else
 * ,"key_hex":"..." (binary keys); a key cut short adds
 * "key_truncated":true.  log_key=mask: ,"key":"abcd...","key_masked":true;
 * hash: ,"key_hash":"<32 hex>"; off: ,"key":null,"key_hidden":true.
 */

u_char *
ngx_http_trl_event_key(u_char *p, u_char *last, ngx_http_trl_zone_t *zone,
    ngx_str_t *key, trl_hash_t *hash)
{
    size_t                     len;
    ngx_http_trl_key_shown_t   ks;

    ngx_http_trl_key_show(zone, key->data, key->len, hash, &ks);

    switch (ks.how) {

    case NGX_HTTP_TRL_SHOW_TEXT:
        return ngx_http_trl_event_string(p, last, "key", ks.text.data,
                                         ks.text.len,
                                         NGX_HTTP_TRL_EVENT_KEY_LEN,
                                         "key_truncated");

    case NGX_HTTP_TRL_SHOW_HIDDEN:
        return ngx_slprintf(p, last, ",\"key\":null,\"key_hidden\":true");

    case NGX_HTTP_TRL_SHOW_HASH:
        return ngx_slprintf(p, last, ",\"key_hash\":\"%V\"", &ks.text);

    case NGX_HTTP_TRL_SHOW_MASKED:
        p = ngx_http_trl_event_string(p, last, "key", ks.text.data,
                                      ks.text.len,
                                      NGX_HTTP_TRL_EVENT_KEY_LEN, NULL);
        return ngx_slprintf(p, last, ",\"key_masked\":true");

    default: /* NGX_HTTP_TRL_SHOW_BINARY */
        break;
    }

    len = ngx_min(ks.text.len, NGX_HTTP_TRL_EVENT_HEX_LEN);

    if ((size_t) (last - p) < sizeof(",\"key_hex\":\"\"") + 2 * len) {
        return p;
    }

    p = ngx_cpymem(p, ",\"key_hex\":\"", sizeof(",\"key_hex\":\"") - 1);
    p = ngx_hex_dump(p, ks.text.data, len);

    *p++ = '"';

    if (ks.text.len > len) {
        p = ngx_slprintf(p, last, ",\"key_truncated\":true");
    }

    return p;
}


/*
 * ,"name":"value" (name NULL: the value alone), the value cut to max
 * bytes (then ,"<cut>":true when cut is given) and escaped.
 */

u_char *
ngx_http_trl_event_string(u_char *p, u_char *last, const char *name,
    u_char *data, size_t len, size_t max, const char *cut)
{
    ngx_uint_t     truncated;
    const u_char  *s;

    truncated = 0;

    if (len > max) {
        len = max;
        truncated = 1;
    }

    if (name) {
        p = ngx_slprintf(p, last, ",\"%s\":", name);
    }

    if (last - p < 2) {
        return p;
    }

    *p++ = '"';
    s = data;
    p = ngx_http_trl_json_escape(p, last - 1, &s, data + len);
    *p++ = '"';

    if (truncated && cut) {
        p = ngx_slprintf(p, last, ",\"%s\":true", cut);
    }

    return p;
}


/* Seconds from ms, as a JSON number: "30", "0.5", "1.25". */

u_char *
ngx_http_trl_event_seconds(u_char *p, u_char *last, uint64_t ms)
{
    uint64_t  frac;

    frac = ms % 1000;

    if (frac == 0) {
        return ngx_slprintf(p, last, "%uL", ms / 1000);
    }

    if (frac % 100 == 0) {
        return ngx_slprintf(p, last, "%uL.%uL", ms / 1000, frac / 100);
    }

    if (frac % 10 == 0) {
        return ngx_slprintf(p, last, "%uL.%02uL", ms / 1000, frac / 10);
    }

    return ngx_slprintf(p, last, "%uL.%03uL", ms / 1000, frac);
}


/* One write() of the line (file), or one syslog datagram. */

static void
ngx_http_trl_event_write(ngx_http_request_t *r,
    ngx_http_trl_event_log_t *el, u_char *buf, u_char *p)
{
    size_t     len;
    ssize_t    n;
    ngx_err_t  err;

    if (el->syslog) {
        len = p - buf;
        n = ngx_syslog_send(el->syslog, buf, len);

        if (n == (ssize_t) len) {
            return;
        }

        if (ngx_time() - el->error_logged >= NGX_HTTP_TRL_EVENT_ERROR_GAP) {
            el->error_logged = ngx_time();
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "token_ratelimit_event_log: send() to syslog "
                          "failed or was incomplete (%z of %uz); lines are "
                          "lost until it works again", n, len);
        }

        return;
    }

    *p++ = '\n';                        /* the buffer keeps room for it */
    len = p - buf;

    n = ngx_write_fd(el->file->fd, buf, len);

    if (n == (ssize_t) len) {
        return;
    }

    err = (n == -1) ? ngx_errno : 0;

    if (ngx_time() - el->error_logged >= NGX_HTTP_TRL_EVENT_ERROR_GAP) {
        el->error_logged = ngx_time();
        ngx_log_error(NGX_LOG_ERR, r->connection->log, err,
                      "token_ratelimit_event_log: " ngx_write_fd_n
                      " to \"%V\" failed or was incomplete (%z of %uz)",
                      &el->file->name, n, len);
    }
}


/*
 * The numbers of an event and the extra events' value and duration, in
 * the order both formats write them (the native line at its top level,
 * ECS under "token_ratelimit").
 */

u_char *
ngx_http_trl_event_numbers(u_char *p, u_char *last,
    ngx_http_trl_event_rec_t *ev)
{
    if (ev->fields & NGX_HTTP_TRL_EV_LIMIT) {
        p = ngx_slprintf(p, last, ",\"limit\":%uD,\"window_ms\":%uL",
                         ev->limit, ev->window_ms);
    }

    if (ev->fields & NGX_HTTP_TRL_EV_COUNT) {
        p = ngx_slprintf(p, last, ",\"count\":%uL", ev->count);
    }

    if (ev->fields & NGX_HTTP_TRL_EV_PENALTY) {
        p = ngx_slprintf(p, last, ",\"penalty_s\":");
        p = ngx_http_trl_event_seconds(p, last, ev->penalty_ms);
    }

    if (ev->fields & NGX_HTTP_TRL_EV_VIOLATIONS) {
        p = ngx_slprintf(p, last, ",\"violations\":%uD", ev->violations);
    }

    if (ev->fields & NGX_HTTP_TRL_EV_RETRY) {
        p = ngx_slprintf(p, last, ",\"retry_after\":%T", ev->retry_after);
    }

    if (ev->fields & NGX_HTTP_TRL_EV_RESET) {
        p = ngx_slprintf(p, last, ",\"reset_at\":%T", ev->reset_at);
    }

    if (ev->penalized) {
        p = ngx_slprintf(p, last, ",\"penalized\":true");
    }

    if (ev->fields & NGX_HTTP_TRL_EV_FINGERPRINT) {
        p = ngx_slprintf(p, last, ",\"fingerprint\":\"%08xD\"",
                         ev->fingerprint);
    }

    if (ev->value.len) {
        p = ngx_http_trl_event_string(p, last, "value", ev->value.data,
                                      ev->value.len,
                                      NGX_HTTP_TRL_EVENT_SHORT_LEN, NULL);
    }

    if (ev->duration_ms) {
        p = ngx_slprintf(p, last, ",\"duration_s\":");
        p = ngx_http_trl_event_seconds(p, last, ev->duration_ms);
    }

    return p;
}
