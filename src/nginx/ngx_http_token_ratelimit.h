
/*
 * ngx_http_token_ratelimit.h - declarations shared by the module's files.
 *
 * The nginx side is a thin layer: configuration, the shared memory zone,
 * the request phases and the response.  Counting lives in the C++ core,
 * reached only through trl_core.h.
 */

#ifndef _NGX_HTTP_TOKEN_RATELIMIT_H_INCLUDED_
#define _NGX_HTTP_TOKEN_RATELIMIT_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "trl_core.h"
#include "trl_distinct.h"
#include "trl_active.h"


/* ngx_http_trl_ctx_t.denied_why */
#define NGX_HTTP_TRL_DENIED_DIRECTIVE   0       /* token_ratelimit_deny */
#define NGX_HTTP_TRL_DENIED_LIST        1       /* a runtime deny entry */
#define NGX_HTTP_TRL_DENIED_REPUTATION  2       /* deny_score= */

/* $token_ratelimit_status, in increasing precedence */
#define NGX_HTTP_TRL_NONE               0
#define NGX_HTTP_TRL_PASSED             1
#define NGX_HTTP_TRL_WARNED             2
#define NGX_HTTP_TRL_BYPASSED           3
#define NGX_HTTP_TRL_REJECTED_DRY_RUN   4
#define NGX_HTTP_TRL_REJECTED           5

/* token_ratelimit_headers */
#define NGX_HTTP_TRL_HEADERS_X          0x01
#define NGX_HTTP_TRL_HEADERS_IETF       0x02

/* count= and sync= are the core's TRL_COUNT_*, TRL_SYNC_MODE_* */

#define NGX_HTTP_TRL_ZONE_NAME_MAX      63      /* trl_list_entry_t.zone */
#define NGX_HTTP_TRL_STRICT_CACHE       1000    /* ms a strict block is
                                                   trusted locally */
#define NGX_HTTP_TRL_RESET_KEPT         60000   /* ms a reset is shared */

/* token_ratelimit_zone log_rate= (error log lines a second per zone) */
#define NGX_HTTP_TRL_LOG_RATE           5       /* the default */
#define NGX_HTTP_TRL_LOG_RATE_OFF       ((ngx_uint_t) -1)   /* unbounded */

/* token_ratelimit_zone log_key= is the core's TRL_LOG_KEY_* */

/* ngx_http_trl_key_shown_t.how */
#define NGX_HTTP_TRL_SHOW_TEXT          0       /* printable: as is */
#define NGX_HTTP_TRL_SHOW_BINARY        1       /* bytes: as hex/escaped */
#define NGX_HTTP_TRL_SHOW_HIDDEN        2       /* log_key=off: "-" */
#define NGX_HTTP_TRL_SHOW_HASH          3       /* log_key=hash: 32 hex */
#define NGX_HTTP_TRL_SHOW_MASKED        4       /* log_key=mask: "abcd..." */

#define NGX_HTTP_TRL_MASK_KEEP          4       /* bytes log_key=mask keeps */


/* a Redis server's address, resolved at configuration time */
typedef struct {
    ngx_str_t                   text;           /* as configured */
    ngx_str_t                   host;           /* numeric IP or unix path,
                                                   NUL-terminated */
    ngx_int_t                   port;           /* 0: unix socket */
} ngx_http_trl_redis_addr_t;


/* token_ratelimit_redis */
typedef struct {
    ngx_str_t                   address;        /* as configured; with
                                                   sentinels, the master's
                                                   name for the logs */
    ngx_str_t                   host;           /* numeric IP or unix path,
                                                   NUL-terminated */
    ngx_int_t                   port;           /* 0: unix socket */
    ngx_array_t                *sentinels;      /* of ..._redis_addr_t */
    ngx_array_t                *cluster;        /* the seeds, of
                                                   ..._redis_addr_t */
    ngx_str_t                   master;         /* master=, NUL-terminated */
    ngx_str_t                   sentinel_password;
    ngx_str_t                   password;
    ngx_int_t                   db;
    ngx_str_t                   prefix;
    ngx_msec_t                  interval;
    ngx_msec_t                  timeout;
    ngx_flag_t                  fail_closed;
    ngx_shm_zone_t             *shm;            /* the node's link state */
} ngx_http_trl_redis_conf_t;


/* One token_ratelimit_zone: shm_zone->data. */
typedef struct {
    ngx_str_t                   name;
    ngx_http_complex_value_t    key;
    trl_rate_t                  rate;
    ngx_str_t                   rate_text;      /* canonical, for logs */
    ngx_str_t                   limit_text;     /* N, for header fields */
    ngx_uint_t                  sync;
    ngx_str_t                   conf_file;      /* where it was defined */
    ngx_uint_t                  conf_line;
    trl_zone_t                 *core;           /* the core's, in shared
                                                   memory */
    ngx_shm_zone_t             *shm_zone;
    ngx_http_trl_redis_conf_t  *redis;          /* sync zones */
    ngx_uint_t                  held;           /* some location counts
                                                   only failed/succeeded */
    ngx_uint_t                  log_rate;       /* log_rate=, or _OFF */
    ngx_uint_t                  log_key;        /* log_key= */
    ngx_uint_t                  key_addr;       /* keyed on exactly
                                                   $binary_remote_addr */
    ngx_http_complex_value_t   *distinct;       /* distinct=: the values
                                                   counted; NULL: requests */
    u_char                     *secret;         /* distinct: 16 bytes in
                                                   the shared memory */
    struct ngx_http_trl_rep_use_s  *rep_scale;  /* the scale= its limits
                                                   name (the API's key view
                                                   applies it), NULL: none */
    unsigned                    rep_varies:1;   /* ... they name several */
    ngx_http_complex_value_t   *signal;         /* signal=: counted in the
                                                   log phase (signal.c);
                                                   NULL: requests */
    struct ngx_http_trl_defense_s  *defense;    /* issue 14 (BAN): its
                                                   auto-ban counters and
                                                   attack state in shared
                                                   memory; NULL: none */
    struct ngx_http_trl_attack_conf_s  *attack; /* token_ratelimit_attack
                                                   (NULL: none) */
    struct ngx_http_trl_active_s  *active;      /* issue 15: active=, the
                                                   places held per key
                                                   (active.c); NULL: none */
} ngx_http_trl_zone_t;


/*
 * An active zone (issue 15): at most N places per key held at once, each
 * for its token's lifetime.  The zone's rate.window_ms is MAX; W (the
 * rate's window as written) is the lifetime when none is known.
 */
typedef struct ngx_http_trl_active_s {
    uint64_t                    max_ms;         /* active=MAX */
    uint64_t                    default_ms;     /* W */
    ngx_http_complex_value_t   *lifetime;       /* lifetime=, NULL: W */
    ngx_http_complex_value_t   *token;          /* token=, NULL: none */
    ngx_atomic_t               *stats;          /* NGX_HTTP_TRL_ACTIVE_*,
                                                   in the zone's head */
    ngx_str_t                   max_text;       /* "active=..." as written
                                                   (policy files: empty) */
    unsigned                    on:1;           /* "active" given */
} ngx_http_trl_active_t;

#define NGX_HTTP_TRL_ACTIVE_HEAD            128

#define NGX_HTTP_TRL_ACTIVE_ISSUED          0
#define NGX_HTTP_TRL_ACTIVE_RELEASED        1
#define NGX_HTTP_TRL_ACTIVE_MISSED          2
#define NGX_HTTP_TRL_ACTIVE_LIFE_UPSTREAM   3
#define NGX_HTTP_TRL_ACTIVE_LIFE_DEFAULT    4
#define NGX_HTTP_TRL_ACTIVE_LIFE_CAPPED     5
#define NGX_HTTP_TRL_ACTIVE_LIFE_INVALID    6
#define NGX_HTTP_TRL_ACTIVE_NSTATS          7

/* Zones whose keys hold slots of values (distinct.c decides them). */
#define ngx_http_trl_slots(zone)  ((zone)->distinct || (zone)->active)


/*
 * A key as a zone shows it in logs and the API (ngx_http_trl_key_show):
 * text points to the key itself (SHOW_TEXT, SHOW_BINARY) or into buf.
 */
typedef struct {
    ngx_uint_t                  how;            /* NGX_HTTP_TRL_SHOW_* */
    ngx_str_t                   text;
    u_char                      buf[NGX_INET6_ADDRSTRLEN + 16];
} ngx_http_trl_key_shown_t;


/* One token_ratelimit directive. */
typedef struct {
    ngx_shm_zone_t             *shm_zone;
    ngx_uint_t                  count;
    ngx_uint_t                  warn;           /* absolute, 0: none */
    ngx_uint_t                  warn_percent;   /* of N, 0: none */
    trl_penalty_t               penalty;        /* base_ms 0: none */
    ngx_flag_t                  dry_run;        /* this limit only */
    struct ngx_http_trl_rep_use_s  *rep;        /* scale=, penalty_level=,
                                                   deny_score=; NULL: none */
    trl_ban_t                   ban;            /* ban= (issue 14, BAN);
                                                   count 0: none */
} ngx_http_trl_limit_t;


typedef struct {
    ngx_array_t                 zones;          /* ngx_http_trl_zone_t * */
    ngx_array_t                 refs;           /* ngx_http_trl_ref_t */
    ngx_http_trl_redis_conf_t  *redis;          /* NULL: none configured */
    ngx_array_t                 policy_files;   /* ngx_http_trl_policy_file_t */
    ngx_uint_t                  api;            /* token_ratelimit_api used */
    ngx_shm_zone_t             *lists_zone;
    trl_lists_t                *lists;          /* runtime allow/deny */
    u_char                     *distinct_secret; /* 16 bytes, or NULL */
    struct ngx_http_trl_rep_conf_s  *rep;       /* token_ratelimit_reputation
                                                   (NULL: none) */
    ngx_array_t                 rep_uses;       /* ngx_http_trl_rep_pending_t:
                                                   list names to resolve */
    ngx_uint_t                  waf_header;     /* token_ratelimit_waf_header
                                                   is used somewhere */
    ngx_int_t                   waf_score;      /* ... the index of
                                                   $token_ratelimit_reputation_
                                                   score */
    ngx_uint_t                  ban;            /* issue 14 (BAN): some
                                                   limit has ban= */
    ngx_array_t                *attacks;        /* ngx_http_trl_attack_conf_t,
                                                   NULL: none */
    ngx_shm_zone_t             *defense_zone;
    ngx_uint_t                  releases;       /* issue 15: some
                                                   token_ratelimit_release */
    struct ngx_http_trl_crowdsec_s  *crowdsec;  /* decisions stream and
                                                   netset (NULL: neither) */
} ngx_http_trl_main_conf_t;


/* token_ratelimit_policy_file */
typedef struct {
    trl_policy_set_t           *set;
    ngx_str_t                   path;
} ngx_http_trl_policy_file_t;


/* A zone named by token_ratelimit, checked once the http block is read. */
typedef struct {
    ngx_shm_zone_t             *shm_zone;
    ngx_str_t                   file;
    ngx_uint_t                  line;
    ngx_uint_t                  count;
    ngx_uint_t                  warn;
    trl_ban_t                   ban;            /* issue 14 (BAN) */
    ngx_uint_t                  penalty;        /* ... penalty= given */
} ngx_http_trl_ref_t;


/* token_ratelimit_event_log (ngx_http_token_ratelimit_event_log.c) */
typedef struct ngx_http_trl_event_log_s  ngx_http_trl_event_log_t;

/* token_ratelimit_waf_header (ngx_http_token_ratelimit_waf.c) */
typedef struct ngx_http_trl_waf_conf_s  ngx_http_trl_waf_conf_t;


typedef struct {
    ngx_array_t                 limits;         /* ngx_http_trl_limit_t */
    ngx_array_t                *bypass;         /* complex values */
    ngx_array_t                *deny;           /* complex values */
    ngx_uint_t                  status_code;
    ngx_uint_t                  log_level;
    ngx_flag_t                  dry_run;
    ngx_flag_t                  enabled;
    ngx_uint_t                  headers;
    ngx_uint_t                  ipv6_prefix;
    ngx_http_trl_event_log_t   *event_log;      /* NULL: off */
    ngx_http_trl_waf_conf_t    *waf;            /* token_ratelimit_waf_header;
                                                   NULL: off */
    ngx_array_t                *crowdsec_keys;  /* ngx_str_t: the API's
                                                   bouncer keys (not
                                                   inherited), NULL: none */
    ngx_array_t                *releases;       /* issue 15:
                                                   token_ratelimit_release,
                                                   NULL: none */
} ngx_http_trl_loc_conf_t;


/* What one zone decided for this request. */
typedef struct {
    ngx_http_trl_limit_t       *limit;
    ngx_http_trl_zone_t        *zone;
    ngx_str_t                   key_text;       /* the key, for Redis */
    trl_hash_t                  key;
    uint64_t                    ticket;
    int64_t                     redis_cell;     /* strict: Redis's ticket */
    ngx_uint_t                  remaining;
    time_t                      reset;          /* Unix time, seconds */
    time_t                      reset_in;       /* seconds from now */
    time_t                      retry_after;    /* seconds, if rejected */
    unsigned                    admitted:1;     /* holds a place */
    unsigned                    rejected:1;
    unsigned                    dry_run:1;      /* rejected in a dry run */
    unsigned                    publish:1;      /* counted here, to be
                                                   published to Redis */
    unsigned                    warned:1;
    ngx_uint_t                  used;           /* places taken, warned */
    uint64_t                    penalty_ms;     /* a penalty started here */
    uint64_t                    forgive_ms;
    uint32_t                    violations;
    unsigned                    strict:1;       /* Redis decides */
    unsigned                    ask:1;          /* ... for an async zone */
    unsigned                    leased:1;       /* admitted from the node's
                                                   lease (async) */
    unsigned                    in_redis:1;     /* holds a place in Redis */
    unsigned                    unavailable:1;  /* fail=closed, Redis down */
    unsigned                    denied:1;       /* a runtime deny entry */
    unsigned                    allowed:1;      /* a runtime allow entry */
    unsigned                    penalized:1;    /* serving a penalty */
    unsigned                    penalty_start:1; /* started one */
    unsigned                    log_first:1;    /* the key's first
                                                   rejection of an episode */
    uint32_t                    fp;             /* distinct: the value's
                                                   fingerprint */
    uint32_t                    n;              /* the N of this request:
                                                   the zone's, or scaled by
                                                   reputation (scale=) */
    uint32_t                    level;          /* penalty_level= (0) */
    unsigned                    late:1;         /* distinct: the value is
                                                   known in the log phase
                                                   (from=upstream:) */
} ngx_http_trl_applied_t;


typedef struct ngx_http_trl_wait_s  ngx_http_trl_wait_t;

typedef struct {
    ngx_http_trl_applied_t     *applied;
    ngx_uint_t                  napplied;
    ngx_http_trl_applied_t     *shown;          /* most restrictive */
    ngx_http_trl_applied_t     *rejected;       /* the zone answered for */
    ngx_http_trl_applied_t     *denied_key;     /* the key a deny entry
                                                   named, NULL: the client */
    ngx_uint_t                  denied_why;     /* NGX_HTTP_TRL_DENIED_* */
    ngx_uint_t                  status;         /* NGX_HTTP_TRL_PASSED ... */
    ngx_uint_t                  headers;
    ngx_http_trl_wait_t        *wait;           /* strict: Redis answers */
    void                       *rep;            /* the client's reputation
                                                   lookup (reputation_match.c)
                                                   */
    unsigned                    headers_done:1;
    unsigned                    decided:1;
    unsigned                    unavailable:1;  /* answered 503 */
    unsigned                    denied:1;       /* answered 403 */
    unsigned                    warn_header:1;  /* X-RateLimit-Warning */
    unsigned                    body:3;         /* NGX_HTTP_TRL_BODY_* */
    unsigned                    body_wanted:1;  /* a subject reads it */
    unsigned                    late:1;         /* a subject is known in
                                                   the log phase only */
    unsigned                    active_shown:1; /* issue 15: active_held
                                                   is set */
    unsigned                    released:2;     /* NGX_HTTP_TRL_RELEASED_* */
    uint32_t                    active_held;    /* places held after */
    uint32_t                    active_lifetime; /* seconds (rounded up)
                                                   its place is held */
} ngx_http_trl_ctx_t;

#define NGX_HTTP_TRL_RELEASED_ONE   1
#define NGX_HTTP_TRL_RELEASED_NONE  2

#define NGX_HTTP_TRL_VAR_ACTIVE     0
#define NGX_HTTP_TRL_VAR_LIFETIME   1
#define NGX_HTTP_TRL_VAR_RELEASED   2


/* ngx_http_trl_ctx_t.body: reading the request body for a subject */
#define NGX_HTTP_TRL_BODY_NONE      0
#define NGX_HTTP_TRL_BODY_READING   1       /* in the call that reads it */
#define NGX_HTTP_TRL_BODY_WAITING   2       /* the rest arrives later */
#define NGX_HTTP_TRL_BODY_RESUMED   3       /* in, the phases run again */
#define NGX_HTTP_TRL_BODY_READ      4

/* ngx_http_trl_body_get(): the body is over the bound, or in a file */
#define NGX_HTTP_TRL_BODY_OVER      NGX_ABORT


extern ngx_module_t  ngx_http_token_ratelimit_module;


/* ngx_http_token_ratelimit_zone.c */
char *ngx_http_trl_zone_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_trl_check_refs(ngx_conf_t *cf,
    ngx_http_trl_main_conf_t *tmcf);
char *ngx_http_trl_zone_add(ngx_conf_t *cf, ngx_http_trl_main_conf_t *tmcf,
    ngx_http_trl_zone_t *ctx, ssize_t size, ngx_str_t *what);
char *ngx_http_trl_zone_texts(ngx_conf_t *cf, ngx_http_trl_zone_t *ctx);
void ngx_http_trl_zone_log_rate(ngx_http_trl_zone_t *ctx, uint32_t rate);
void ngx_http_trl_key_show(ngx_http_trl_zone_t *zone, const u_char *key,
    size_t len, const trl_hash_t *hash, ngx_http_trl_key_shown_t *ks);

/* ngx_http_token_ratelimit_policy.c */
char *ngx_http_trl_policy_file_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_trl_policy_limit(ngx_conf_t *cf, ngx_command_t *cmd,
    ngx_str_t *value, ngx_http_trl_limit_t *limit, ngx_uint_t *skip);

/* ngx_http_token_ratelimit_redis_conf.c */
char *ngx_http_trl_redis_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);

/* ngx_http_token_ratelimit_handler.c */
ngx_int_t ngx_http_trl_init_phases(ngx_conf_t *cf);
void ngx_http_trl_init_pid(void);

/* ngx_http_token_ratelimit_ctx.c */
ngx_http_trl_ctx_t *ngx_http_trl_create_ctx(ngx_http_request_t *r,
    ngx_uint_t n);
ngx_http_trl_ctx_t *ngx_http_trl_get_ctx(ngx_http_request_t *r);

/* ngx_http_token_ratelimit_result.c (the handler's and sync_*.c's) */
void ngx_http_trl_set_result(ngx_http_trl_applied_t *a, trl_limit_t *tl,
    trl_result_t *res);
void ngx_http_trl_log_events(ngx_http_request_t *r,
    ngx_http_trl_loc_conf_t *tlcf, ngx_http_trl_zone_t *zone,
    trl_limit_t *tl, ngx_str_t *key, trl_hash_t *hash, trl_result_t *res);
trl_limit_t ngx_http_trl_limit(ngx_http_trl_applied_t *a,
    ngx_http_trl_loc_conf_t *tlcf);
#define NGX_HTTP_TRL_LOG_NOTE_LEN  64
ngx_uint_t ngx_http_trl_log_permit(ngx_http_request_t *r,
    ngx_http_trl_zone_t *zone, ngx_uint_t level, u_char *note, u_char **more);

/* ngx_http_token_ratelimit_sync_async.c */
ngx_int_t ngx_http_trl_sync_init_process(ngx_cycle_t *cycle);
void ngx_http_trl_sync_exit_process(ngx_cycle_t *cycle);
void ngx_http_trl_sync_note(ngx_http_trl_zone_t *zone,
    ngx_http_trl_applied_t *a, ngx_uint_t delta);

/* ngx_http_token_ratelimit_sync_strict.c */
ngx_int_t ngx_http_trl_strict_start(ngx_http_request_t *r,
    ngx_http_trl_loc_conf_t *tlcf, ngx_http_trl_ctx_t *ctx);
void ngx_http_trl_strict_release(ngx_http_trl_applied_t *a);

/* ngx_http_token_ratelimit_sync_script.c (the fail policy) */
ngx_uint_t ngx_http_trl_sync_available(void);
ngx_uint_t ngx_http_trl_fail_closed(ngx_http_trl_applied_t *a);

/* ngx_http_token_ratelimit_sync_reset.c */
ngx_int_t ngx_http_trl_sync_reset(ngx_http_trl_zone_t *zone, ngx_str_t *key);

/* ngx_http_token_ratelimit_sync_lists.c */
void ngx_http_trl_lists_sync_init(ngx_cycle_t *cycle);
void ngx_http_trl_lists_sync_exit(void);
void ngx_http_trl_lists_sync_now(void);

/* ngx_http_token_ratelimit_lists.c */
char *ngx_http_trl_lists_init_conf(ngx_conf_t *cf,
    ngx_http_trl_main_conf_t *tmcf);
ngx_int_t ngx_http_trl_lists_addr(ngx_http_request_t *r,
    ngx_http_trl_main_conf_t *tmcf);
ngx_int_t ngx_http_trl_lists_key(ngx_http_trl_main_conf_t *tmcf,
    ngx_http_trl_zone_t *zone, ngx_str_t *key);

/* ngx_http_token_ratelimit_response.c */
ngx_int_t ngx_http_trl_init_header_filter(ngx_conf_t *cf);
ngx_int_t ngx_http_trl_reject(ngx_http_request_t *r,
    ngx_http_trl_loc_conf_t *tlcf, ngx_http_trl_ctx_t *ctx);
ngx_int_t ngx_http_trl_unavailable(ngx_http_request_t *r,
    ngx_http_trl_ctx_t *ctx);
ngx_int_t ngx_http_trl_deny(ngx_http_request_t *r);

/* ngx_http_token_ratelimit_access.c */
char *ngx_http_trl_predicate_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
ngx_int_t ngx_http_trl_access(ngx_http_request_t *r,
    ngx_http_trl_loc_conf_t *tlcf, ngx_http_trl_ctx_t *ctx,
    ngx_uint_t nkeys);
ngx_int_t ngx_http_trl_client_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
ngx_int_t ngx_http_trl_add_variables(ngx_conf_t *cf);
void ngx_http_trl_count_all(ngx_http_trl_loc_conf_t *tlcf, int outcome);

/* ngx_http_token_ratelimit_distinct.c */
#define NGX_HTTP_TRL_SLOTS_SECRET  32       /* in the head of a zone of
                                               slots: 16 random bytes */
ngx_int_t ngx_http_trl_slots_head(ngx_shm_zone_t *shm_zone, u_char *block,
    size_t bytes, size_t head, const char *magic);
ngx_int_t ngx_http_trl_slots_attach(ngx_shm_zone_t *shm_zone,
    ngx_http_trl_zone_t *ctx, u_char *block, size_t head, const char *magic,
    const char *what);
char *ngx_http_trl_distinct_option(ngx_conf_t *cf, ngx_command_t *cmd,
    ngx_str_t *value, ngx_http_trl_zone_t *ctx);
char *ngx_http_trl_distinct_check(ngx_conf_t *cf, ngx_command_t *cmd,
    ngx_http_trl_zone_t *ctx, ssize_t size);
ngx_int_t ngx_http_trl_distinct_create(ngx_shm_zone_t *shm_zone,
    ngx_http_trl_zone_t *ctx, u_char *block, size_t bytes);
ngx_int_t ngx_http_trl_distinct_attach(ngx_shm_zone_t *shm_zone,
    ngx_http_trl_zone_t *ctx, u_char *block);
ngx_int_t ngx_http_trl_distinct_value(ngx_http_request_t *r,
    ngx_http_trl_applied_t *a);
ngx_int_t ngx_http_trl_distinct_apply(ngx_http_request_t *r,
    ngx_http_trl_loc_conf_t *tlcf, ngx_http_trl_applied_t *a,
    trl_limit_t *tl);
void ngx_http_trl_distinct_settle(ngx_http_trl_applied_t *a,
    ngx_uint_t keep);
ngx_int_t ngx_http_trl_distinct_local(ngx_http_request_t *r,
    ngx_http_trl_loc_conf_t *tlcf, ngx_http_trl_applied_t *a,
    trl_limit_t *tl);

/* ngx_http_token_ratelimit_distinct_sync.c */
ngx_int_t ngx_http_trl_distinct_strict(ngx_http_request_t *r,
    ngx_http_trl_loc_conf_t *tlcf, ngx_http_trl_applied_t *a,
    trl_limit_t *tl);
void ngx_http_trl_distinct_release_redis(ngx_http_trl_applied_t *a);
ngx_int_t ngx_http_trl_distinct_count_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
ngx_int_t ngx_http_trl_distinct_status_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);

void ngx_http_trl_distinct_late(ngx_http_request_t *r,
    ngx_http_trl_applied_t *a);

/* ngx_http_token_ratelimit_distinct_secret.c */
char *ngx_http_trl_distinct_secret_directive(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
char *ngx_http_trl_distinct_init_conf(ngx_conf_t *cf,
    ngx_http_trl_main_conf_t *tmcf);

/* ngx_http_token_ratelimit_subject.c */
char *ngx_http_trl_subject_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);

/* ngx_http_token_ratelimit_body.c */
ngx_int_t ngx_http_trl_body_read(ngx_http_request_t *r,
    ngx_http_trl_ctx_t *ctx);
ngx_int_t ngx_http_trl_body_get(ngx_http_request_t *r, size_t max,
    ngx_str_t *body);

/* ngx_http_token_ratelimit_event_log.c: the caller tests tlcf->event_log */
char *ngx_http_trl_event_log_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
void ngx_http_trl_event_log_write(ngx_http_request_t *r,
    ngx_http_trl_loc_conf_t *tlcf, ngx_http_trl_ctx_t *ctx);


/*
 * Issue 14 (EVENTS): events that no zone decision carries; the caller
 * tests tlcf->event_log != NULL.  Written like the other events (rate=
 * budget of ev->zone, or the location's first zone when NULL), in the
 * log's format (ngx_http_token_ratelimit_event_log.c).
 */
typedef struct {
    const char                 *event;      /* "auto_banned", "attack_mode",
                                               "signal", ... (native name) */
    ngx_http_trl_zone_t        *zone;       /* NULL: none */
    ngx_str_t                   key;        /* the raw key bytes (shown as the
                                               zone's log_key= says), or empty */
    ngx_str_t                   value;      /* e.g. the banned address/CIDR as
                                               text, or empty */
    uint64_t                    duration_ms; /* 0: none */
    ngx_str_t                   reason;     /* short text, or empty */
    ngx_str_t                   state;      /* "on"/"off" for attack_mode, or
                                               empty */
} ngx_http_trl_event_t;

void ngx_http_trl_event_log_extra(ngx_http_request_t *r,
    ngx_http_trl_loc_conf_t *tlcf, ngx_http_trl_event_t *ev);

/* --- issue 14, part 1: the WAF both ways --------------------------------- */

/* ngx_http_token_ratelimit_signal.c: signal zones */
char *ngx_http_trl_signal_option(ngx_conf_t *cf, ngx_command_t *cmd,
    ngx_str_t *value, ngx_http_trl_zone_t *ctx);
char *ngx_http_trl_signal_check(ngx_conf_t *cf, ngx_command_t *cmd,
    ngx_http_trl_zone_t *ctx);
ngx_int_t ngx_http_trl_signal_init(ngx_conf_t *cf);
ngx_int_t ngx_http_trl_signal_peek(ngx_http_request_t *r,
    ngx_http_trl_applied_t *a, trl_limit_t *tl);

/* ngx_http_token_ratelimit_waf.c: the limiter's view as a request header */
char *ngx_http_trl_waf_header_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
ngx_int_t ngx_http_trl_waf_init(ngx_conf_t *cf);
ngx_int_t ngx_http_trl_waf_init_module(ngx_cycle_t *cycle);

/*
 * Issue 14 (BAN): auto-ban and attack mode.  Each zone's record in the
 * shared memory "token_ratelimit_defense" (defense.c), made when some
 * limit has ban= or some zone token_ratelimit_attack, found by name so
 * that it survives reloads.
 */
typedef struct ngx_http_trl_defense_s {
    u_char                      name[NGX_HTTP_TRL_ZONE_NAME_MAX + 1];
    ngx_atomic_t                auto_bans;      /* deny entries added */
    ngx_atomic_t                ban_full;       /* bans lost: lists full */
    ngx_atomic_t                ban_full_log;   /* Unix s of the last line */
    ngx_atomic_t                attack;         /* 1: on (the request path
                                                   loads only this) */
    ngx_atomic_t                attack_entered; /* times it went on */
    ngx_atomic_t                attack_since;   /* Unix ms it went on */
    ngx_atomic_t                attack_until;   /* Unix ms the API's ttl
                                                   ends, 0: none */
    ngx_atomic_t                attack_held;    /* Unix ms the signal (or a
                                                   node through Redis) last
                                                   held it on */
    ngx_atomic_t                attack_why;     /* NGX_HTTP_TRL_ATTACK_* */
    ngx_atomic_t                attack_remote;  /* another node keeps it */
    ngx_atomic_t                attack_clear;   /* left by the API: Redis
                                                   is to forget it too */
    ngx_atomic_t                attack_events;  /* events to write: bit 0
                                                   on, bit 1 off */
    ngx_atomic_t                summary_sec;    /* log=summary: the second
                                                   counted */
    ngx_atomic_t                summary_rejected; /* ... its rejections */
    ngx_atomic_t                used;           /* the record is a zone's */
} ngx_http_trl_defense_t;

#define NGX_HTTP_TRL_ATTACK_API        1
#define NGX_HTTP_TRL_ATTACK_REJECTED   2
#define NGX_HTTP_TRL_ATTACK_OFFENDERS  3
#define NGX_HTTP_TRL_ATTACK_CLUSTER    4

#define NGX_HTTP_TRL_ATTACK_MAX        64   /* token_ratelimit_attack zones */


/* token_ratelimit_attack: one zone's thresholds and effects */
typedef struct ngx_http_trl_attack_conf_s {
    ngx_http_trl_zone_t        *zone;
    ngx_str_t                   zone_name;
    trl_attack_t                p;              /* the thresholds and
                                                   effects (the core's
                                                   grammar) */
    ngx_str_t                   conf_file;
    ngx_uint_t                  conf_line;
} ngx_http_trl_attack_conf_t;

/* ngx_http_token_ratelimit_defense.c */
char *ngx_http_trl_defense_init_conf(ngx_conf_t *cf,
    ngx_http_trl_main_conf_t *tmcf);

/* ngx_http_token_ratelimit_ban.c */
char *ngx_http_trl_ban_option(ngx_conf_t *cf, ngx_command_t *cmd,
    ngx_str_t *value, ngx_http_trl_limit_t *limit);
char *ngx_http_trl_ban_check(ngx_conf_t *cf, ngx_http_trl_main_conf_t *tmcf);
void ngx_http_trl_ban_apply(ngx_http_request_t *r,
    ngx_http_trl_loc_conf_t *tlcf, ngx_http_trl_ctx_t *ctx);

/* ngx_http_token_ratelimit_attack.c */
char *ngx_http_trl_attack_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_trl_attack_init_conf(ngx_conf_t *cf,
    ngx_http_trl_main_conf_t *tmcf);
ngx_int_t ngx_http_trl_attack_init_process(ngx_cycle_t *cycle);
void ngx_http_trl_attack_request(ngx_http_trl_applied_t *a);
ngx_uint_t ngx_http_trl_attack_quiet(ngx_http_trl_zone_t *zone);
ngx_uint_t ngx_http_trl_attack_status(ngx_http_trl_ctx_t *ctx,
    ngx_uint_t status);
void ngx_http_trl_attack_enter(ngx_http_trl_zone_t *zone, ngx_uint_t why,
    uint64_t until_ms);
void ngx_http_trl_attack_leave(ngx_http_trl_zone_t *zone, ngx_uint_t api);
const char *ngx_http_trl_attack_why(ngx_uint_t why);

/* ngx_http_token_ratelimit_attack_sync.c */
void ngx_http_trl_attack_sync(ngx_http_trl_main_conf_t *tmcf,
    ngx_uint_t i, ngx_uint_t local, uint64_t now_ms);
void ngx_http_trl_attack_events(ngx_http_request_t *r,
    ngx_http_trl_loc_conf_t *tlcf, ngx_http_trl_ctx_t *ctx);
/* CrowdSec (issue 14 part 3): ngx_http_token_ratelimit_crowdsec.h */
char *ngx_http_trl_crowdsec_key_directive(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
char *ngx_http_trl_netset_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
ngx_int_t ngx_http_trl_netset_init_process(ngx_cycle_t *cycle);


/* Active tokens (issue 15): ngx_http_token_ratelimit_active.c */
char *ngx_http_trl_active_option(ngx_conf_t *cf, ngx_command_t *cmd,
    ngx_str_t *value, ngx_http_trl_zone_t *ctx);
char *ngx_http_trl_active_check(ngx_conf_t *cf, ngx_command_t *cmd,
    ngx_http_trl_zone_t *ctx, ssize_t size);
char *ngx_http_trl_active_policy(ngx_conf_t *cf, ngx_command_t *cmd,
    ngx_http_trl_zone_t *ctx, trl_policy_t *policy);
ngx_int_t ngx_http_trl_active_create(ngx_shm_zone_t *shm_zone,
    ngx_http_trl_zone_t *ctx, u_char *block, size_t bytes);
ngx_int_t ngx_http_trl_active_attach(ngx_shm_zone_t *shm_zone,
    ngx_http_trl_zone_t *ctx, u_char *block);
uint32_t ngx_http_trl_active_nonce(void);
uint32_t ngx_http_trl_active_token(ngx_http_request_t *r,
    ngx_http_trl_zone_t *zone, ngx_http_complex_value_t *cv);
void ngx_http_trl_active_keep(ngx_http_request_t *r,
    ngx_http_trl_applied_t *a);
uint64_t ngx_http_trl_active_stat(ngx_http_trl_zone_t *zone, ngx_uint_t i);

/* ngx_http_token_ratelimit_active_release.c */
char *ngx_http_trl_release_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_trl_active_check_release(ngx_conf_t *cf,
    ngx_array_t *releases);
void ngx_http_trl_active_end(ngx_http_request_t *r, ngx_http_trl_ctx_t *ctx,
    ngx_http_trl_applied_t *a, ngx_uint_t counts);
void ngx_http_trl_active_releases(ngx_http_request_t *r,
    ngx_http_trl_loc_conf_t *tlcf, ngx_http_trl_ctx_t *ctx);
void ngx_http_trl_active_show(ngx_http_trl_ctx_t *ctx, uint32_t held);
uint32_t ngx_http_trl_active_held(ngx_http_trl_applied_t *a);
ngx_int_t ngx_http_trl_active_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);


#endif /* _NGX_HTTP_TOKEN_RATELIMIT_H_INCLUDED_ */
