
/*
 * ngx_http_token_ratelimit_event_ecs.c - token_ratelimit_event_log
 * format=ecs: an event as an Elastic Common Schema 8.x document, so that
 * a SIEM ingests it without a mapping of its own.
 *
 * ECS fields carry what ECS has a name for (@timestamp, event.*,
 * source.ip, url.path, http.*, user.hash, rule.name, host.name); our own
 * numbers go under the custom field set "token_ratelimit", with the
 * native format's names.  docs/events.md lists every field, and
 * t/event_log_ecs.t checks the lines against that list.
 *
 * Privacy: url.original (the query string may hold a password) is never
 * written; user.hash is the zone's keyed hash of a subject key, written
 * only where the zone's log_key= already shows the key or its hash (on,
 * hash), never for log_key=off or mask.
 */


#include "ngx_http_token_ratelimit_event_log.h"


#define NGX_HTTP_TRL_ECS_VERSION  "8.11.0"


/* How a native event reads in ECS's event.* terms. */
typedef struct {
    const char                 *event;          /* the native name */
    const char                 *action;         /* event.action */
    const char                 *kind;           /* event.kind */
    const char                 *type;           /* event.type, JSON */
    const char                 *outcome;        /* event.outcome */
} ngx_http_trl_ecs_class_t;


/*
 * outcome: "failure" where the limiter refused or acted against the
 * client, "success" where it let the request through (dry runs), "unknown"
 * where the event is no client's attempt.
 */
static ngx_http_trl_ecs_class_t  ngx_http_trl_ecs_classes[] = {
    { "rejected", "rate_limited", "event", "\"denied\"", "failure" },
    { "rejected_dry_run", "rate_limited_dry_run", "event", "\"info\"",
      "success" },
    { "penalty", "penalty_started", "alert", "\"denied\"", "failure" },
    { "distinct_exceeded", "distinct_exceeded", "alert", "\"denied\"",
      "failure" },
    { "denied", "denied", "event", "\"denied\"", "failure" },
    { "unavailable", "unavailable", "event", "\"denied\"", "failure" },
    { "suppressed", "suppressed", "event", "\"info\"", "unknown" },
    { "auto_banned", "auto_banned", "alert", "\"denied\"", "failure" },
    { "attack_mode", "attack_mode", "alert", "\"info\"", "unknown" },
    { "signal", "signal", "event", "\"info\"", "unknown" },
    { NULL, NULL, "event", "\"info\"", "unknown" }
};


static u_char *ngx_http_trl_ecs_event(u_char *p, u_char *last,
    ngx_http_trl_event_rec_t *ev);
static u_char *ngx_http_trl_ecs_request(ngx_http_request_t *r,
    ngx_http_trl_event_log_t *el, ngx_http_trl_event_rec_t *ev, u_char *p,
    u_char *last);
static u_char *ngx_http_trl_ecs_user(u_char *p, u_char *last,
    ngx_http_trl_event_rec_t *ev);
static u_char *ngx_http_trl_ecs_ours(ngx_http_request_t *r,
    ngx_http_trl_event_rec_t *ev, u_char *p, u_char *last);


u_char *
ngx_http_trl_event_ecs(ngx_http_request_t *r, ngx_http_trl_event_log_t *el,
    ngx_http_trl_event_rec_t *ev, uint64_t wall_ms, u_char *p, u_char *last)
{
    p = ngx_slprintf(p, last, "{\"@timestamp\":");
    p = ngx_http_trl_event_time(p, last, wall_ms);
    p = ngx_slprintf(p, last,
                     ",\"ecs\":{\"version\":\"" NGX_HTTP_TRL_ECS_VERSION
                     "\"}");

    p = ngx_http_trl_ecs_event(p, last, ev);

    if (ev->request) {
        p = ngx_http_trl_ecs_request(r, el, ev, p, last);
    }

    p = ngx_http_trl_ecs_user(p, last, ev);

    p = ngx_slprintf(p, last, ",\"rule\":{\"name\":");
    p = ngx_http_trl_event_string(p, last, NULL, ev->zone->name.data,
                                  ev->zone->name.len,
                                  NGX_HTTP_TRL_EVENT_SHORT_LEN, NULL);

    p = ngx_slprintf(p, last, "},\"host\":{\"name\":");
    p = ngx_http_trl_event_string(p, last, NULL, ngx_cycle->hostname.data,
                                  ngx_cycle->hostname.len,
                                  NGX_HTTP_TRL_EVENT_SHORT_LEN, NULL);
    p = ngx_slprintf(p, last, "}");

    p = ngx_http_trl_ecs_ours(r, ev, p, last);

    return ngx_slprintf(p, last, "}");
}


/* ,"event":{"kind":..,"category":[..],"type":[..],"action":..,...} */

static u_char *
ngx_http_trl_ecs_event(u_char *p, u_char *last, ngx_http_trl_event_rec_t *ev)
{
    const char                *type, *outcome, *action;
    ngx_http_trl_ecs_class_t  *c;

    for (c = ngx_http_trl_ecs_classes; c->event; c++) {
        if (ngx_strcmp(c->event, ev->event) == 0) {
            break;
        }
    }

    action = c->action ? c->action : ev->event;
    type = c->type;
    outcome = c->outcome;

    if (ev->dry_run) {                  /* the request went through */
        type = "\"info\"";
        outcome = "success";

    } else if (ngx_strcmp(ev->event, "attack_mode") == 0) {
        if (ev->state.len == 2 && ngx_strncmp(ev->state.data, "on", 2) == 0)
        {
            type = "\"start\"";

        } else if (ev->state.len == 3
                   && ngx_strncmp(ev->state.data, "off", 3) == 0)
        {
            type = "\"end\"";
        }
    }

    p = ngx_slprintf(p, last,
                     ",\"event\":{\"kind\":\"%s\","
                     "\"category\":[\"authentication\",\"network\"],"
                     "\"type\":[%s],\"action\":",
                     c->kind, type);

    /* a name other parts chose: escaped like any text */
    p = ngx_http_trl_event_string(p, last, NULL, (u_char *) action,
                                  ngx_strlen(action),
                                  NGX_HTTP_TRL_EVENT_SHORT_LEN, NULL);

    p = ngx_slprintf(p, last, ",\"outcome\":\"%s\"", outcome);

    if (ev->reason.len) {
        p = ngx_http_trl_event_string(p, last, "reason", ev->reason.data,
                                      ev->reason.len,
                                      NGX_HTTP_TRL_EVENT_SHORT_LEN, NULL);
    }

    return ngx_slprintf(p, last, ",\"module\":\"token_ratelimit\","
                        "\"dataset\":\"token_ratelimit.events\"}");
}


/*
 * ,"source":{"ip":..,"address":..},"url":{"path":..,"domain":..},
 * "http":{"request":{"method":..,"id":..},"response":{"status_code":..}}
 */

static u_char *
ngx_http_trl_ecs_request(ngx_http_request_t *r, ngx_http_trl_event_log_t *el,
    ngx_http_trl_event_rec_t *ev, u_char *p, u_char *last)
{
    ngx_str_t                  *addr, *host;
    ngx_uint_t                  family;
    ngx_http_variable_value_t  *v;

    addr = &r->connection->addr_text;
    family = r->connection->sockaddr->sa_family;

    /* source.ip is an address type: not "unix:" */

    p = ngx_slprintf(p, last, ",\"source\":{\"address\":");
    p = ngx_http_trl_event_string(p, last, NULL, addr->data, addr->len,
                                  NGX_HTTP_TRL_EVENT_SHORT_LEN, NULL);

    if (family == AF_INET
#if (NGX_HAVE_INET6)
        || family == AF_INET6
#endif
       )
    {
        p = ngx_http_trl_event_string(p, last, "ip", addr->data, addr->len,
                                      NGX_HTTP_TRL_EVENT_SHORT_LEN, NULL);
    }

    /* url.path only: the query string may hold credentials */

    p = ngx_slprintf(p, last, "},\"url\":{\"path\":");
    p = ngx_http_trl_event_string(p, last, NULL, r->uri.data, r->uri.len,
                                  NGX_HTTP_TRL_EVENT_URI_LEN, NULL);

    host = &r->headers_in.server;

    if (host->len) {
        p = ngx_http_trl_event_string(p, last, "domain", host->data,
                                      host->len, NGX_HTTP_TRL_EVENT_HOST_LEN,
                                      NULL);
    }

    p = ngx_slprintf(p, last, "},\"http\":{\"request\":{\"method\":");
    p = ngx_http_trl_event_string(p, last, NULL, r->method_name.data,
                                  r->method_name.len,
                                  NGX_HTTP_TRL_EVENT_METHOD_LEN, NULL);

    v = ngx_http_trl_event_request_id(r, el);

    if (v) {
        p = ngx_http_trl_event_string(p, last, "id", v->data, v->len,
                                      NGX_HTTP_TRL_EVENT_SHORT_LEN, NULL);
    }

    p = ngx_slprintf(p, last, "}");

    if (ev->status) {
        p = ngx_slprintf(p, last, ",\"response\":{\"status_code\":%ui}",
                         ev->status);
    }

    return ngx_slprintf(p, last, "}");
}


/*
 * ,"user":{"hash":"<32 hex>"}: a subject key (not an address: that is
 * source.ip), as the zone's keyed hash (the API's "hash", keys?hash=),
 * where log_key= shows the key or that hash already.
 */

static u_char *
ngx_http_trl_ecs_user(u_char *p, u_char *last, ngx_http_trl_event_rec_t *ev)
{
    trl_hash_t            h, *hash;
    ngx_http_trl_zone_t  *zone;

    zone = ev->zone;

    if (ev->key == NULL || zone->key_addr
        || (zone->log_key != TRL_LOG_KEY_ON
            && zone->log_key != TRL_LOG_KEY_HASH))
    {
        return p;
    }

    hash = ev->hash;

    if (hash == NULL) {
        trl_zone_hash(zone->core, ev->key->data, ev->key->len, &h);
        hash = &h;
    }

    return ngx_slprintf(p, last, ",\"user\":{\"hash\":\"%016xL%016xL\"}",
                        hash->hi, hash->lo);
}


/*
 * ,"token_ratelimit":{"event":..,"zone":.., the key as log_key= shows it,
 * the numbers, as the native format names them}
 */

static u_char *
ngx_http_trl_ecs_ours(ngx_http_request_t *r, ngx_http_trl_event_rec_t *ev,
    u_char *p, u_char *last)
{
    p = ngx_slprintf(p, last, ",\"token_ratelimit\":{\"event\":");
    p = ngx_http_trl_event_string(p, last, NULL, (u_char *) ev->event,
                                  ngx_strlen(ev->event),
                                  NGX_HTTP_TRL_EVENT_SHORT_LEN, NULL);
    p = ngx_http_trl_event_string(p, last, "zone", ev->zone->name.data,
                                  ev->zone->name.len,
                                  NGX_HTTP_TRL_EVENT_SHORT_LEN, NULL);

    if (ev->key) {
        p = ngx_http_trl_event_key(p, last, ev->zone, ev->key, ev->hash);
    }

    if (ev->request && r->uri.len > NGX_HTTP_TRL_EVENT_URI_LEN) {
        p = ngx_slprintf(p, last, ",\"uri_truncated\":true");
    }

    if (ev->of.len) {
        p = ngx_http_trl_event_string(p, last, "of", ev->of.data,
                                      ev->of.len,
                                      NGX_HTTP_TRL_EVENT_SHORT_LEN, NULL);
    }

    p = ngx_http_trl_event_numbers(p, last, ev);

    if (ev->state.len) {
        p = ngx_http_trl_event_string(p, last, "state", ev->state.data,
                                      ev->state.len,
                                      NGX_HTTP_TRL_EVENT_SHORT_LEN, NULL);
    }

    if (ev->fields & NGX_HTTP_TRL_EV_DRY_RUN) {
        p = ngx_slprintf(p, last, ",\"dry_run\":%s",
                         ev->dry_run ? "true" : "false");
    }

    return ngx_slprintf(p, last, "}");
}
