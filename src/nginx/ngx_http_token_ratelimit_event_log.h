
/*
 * ngx_http_token_ratelimit_event_log.h - what the event log's two line
 * formats share: the log, one event as both writers take it, and the
 * helpers that escape and cut what they write.  Private to
 * ngx_http_token_ratelimit_event_log.c (the native JSON lines) and
 * ngx_http_token_ratelimit_event_ecs.c (Elastic Common Schema lines).
 */


#ifndef _NGX_HTTP_TOKEN_RATELIMIT_EVENT_LOG_H_INCLUDED_
#define _NGX_HTTP_TOKEN_RATELIMIT_EVENT_LOG_H_INCLUDED_


#include "ngx_http_token_ratelimit.h"


/* What attacker-controlled fields are cut to (bytes before escaping). */
#define NGX_HTTP_TRL_EVENT_URI_LEN     512
#define NGX_HTTP_TRL_EVENT_HOST_LEN    256
#define NGX_HTTP_TRL_EVENT_METHOD_LEN  32
#define NGX_HTTP_TRL_EVENT_KEY_LEN     256      /* printable keys */
#define NGX_HTTP_TRL_EVENT_HEX_LEN     128      /* binary keys, as hex */
#define NGX_HTTP_TRL_EVENT_SHORT_LEN   128      /* client, zone, request id */


/* format= */
#define NGX_HTTP_TRL_EVENT_JSON        0
#define NGX_HTTP_TRL_EVENT_ECS         1


struct ngx_http_trl_event_log_s {
    ngx_open_file_t            *file;
    ngx_syslog_peer_t          *syslog;
    ngx_uint_t                  rate;
    ngx_uint_t                  format;         /* NGX_HTTP_TRL_EVENT_* */
    ngx_int_t                   request_id;     /* $request_id's index */
    time_t                      error_logged;   /* per process */
};


/* ngx_http_trl_event_rec_t.fields: the numbers an event carries */
#define NGX_HTTP_TRL_EV_LIMIT          0x0001   /* limit, window_ms */
#define NGX_HTTP_TRL_EV_COUNT          0x0002
#define NGX_HTTP_TRL_EV_PENALTY        0x0004   /* penalty_ms */
#define NGX_HTTP_TRL_EV_VIOLATIONS     0x0008
#define NGX_HTTP_TRL_EV_RETRY          0x0010   /* retry_after */
#define NGX_HTTP_TRL_EV_RESET          0x0020   /* reset_at */
#define NGX_HTTP_TRL_EV_FINGERPRINT    0x0040
#define NGX_HTTP_TRL_EV_DRY_RUN        0x0080   /* dry_run, true or false */


/* One event, as both formats write it. */
typedef struct {
    const char                 *event;          /* the native name */
    ngx_http_trl_zone_t        *zone;
    ngx_str_t                  *key;            /* NULL: none */
    trl_hash_t                 *hash;           /* the key's, or NULL */
    ngx_uint_t                  request;        /* the request's fields */
    ngx_uint_t                  fields;         /* NGX_HTTP_TRL_EV_* */
    ngx_uint_t                  status;         /* 0: none */
    uint32_t                    limit;
    uint64_t                    window_ms;
    uint64_t                    count;
    uint64_t                    penalty_ms;
    uint32_t                    violations;
    time_t                      retry_after;
    time_t                      reset_at;
    uint32_t                    fingerprint;
    uint64_t                    duration_ms;    /* 0: none */
    ngx_str_t                   of;             /* the values counted (a
                                                   distinct zone), or empty */
    ngx_str_t                   value;          /* empty: none */
    ngx_str_t                   reason;
    ngx_str_t                   state;
    unsigned                    penalized:1;
    unsigned                    dry_run:1;
} ngx_http_trl_event_rec_t;


/* ngx_http_token_ratelimit_event_ecs.c: the line after the syslog header */
u_char *ngx_http_trl_event_ecs(ngx_http_request_t *r,
    ngx_http_trl_event_log_t *el, ngx_http_trl_event_rec_t *ev,
    uint64_t wall_ms, u_char *p, u_char *last);

/* ngx_http_token_ratelimit_event_log.c */
u_char *ngx_http_trl_event_key(u_char *p, u_char *last,
    ngx_http_trl_zone_t *zone, ngx_str_t *key, trl_hash_t *hash);
u_char *ngx_http_trl_event_string(u_char *p, u_char *last,
    const char *name, u_char *data, size_t len, size_t max,
    const char *cut);
u_char *ngx_http_trl_event_seconds(u_char *p, u_char *last, uint64_t ms);
u_char *ngx_http_trl_event_numbers(u_char *p, u_char *last,
    ngx_http_trl_event_rec_t *ev);
u_char *ngx_http_trl_event_time(u_char *p, u_char *last, uint64_t wall_ms);
ngx_http_variable_value_t *ngx_http_trl_event_request_id(
    ngx_http_request_t *r, ngx_http_trl_event_log_t *el);


#endif /* _NGX_HTTP_TOKEN_RATELIMIT_EVENT_LOG_H_INCLUDED_ */
