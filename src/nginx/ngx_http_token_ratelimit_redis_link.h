
/*
 * ngx_http_token_ratelimit_redis_link.h - inside the link to Redis, shared
 * by its files only: a connection and its commands (redis.c), the node's
 * view of Redis' health (redis_health.c), the topology behind the link
 * (redis_cluster.c for cluster=, sentinel.c for sentinel=), and the asker
 * that puts one question to a list of servers in turn (redis_ask.c), all
 * on nginx's event loop (redis_event.c).
 */

#ifndef _NGX_HTTP_TOKEN_RATELIMIT_REDIS_LINK_H_INCLUDED_
#define _NGX_HTTP_TOKEN_RATELIMIT_REDIS_LINK_H_INCLUDED_


#include "ngx_http_token_ratelimit.h"
#include "ngx_http_token_ratelimit_redis.h"
#include "ngx_http_token_ratelimit_api.h"


#define NGX_HTTP_TRL_LINK_DOWN        0
#define NGX_HTTP_TRL_LINK_CONNECTING  1
#define NGX_HTTP_TRL_LINK_READY       2
#define NGX_HTTP_TRL_LINK_ASKING      3       /* the sentinels */
#define NGX_HTTP_TRL_LINK_RETIRED     4       /* cluster: serves no slot */

#define NGX_HTTP_TRL_BACKOFF_MIN      100
#define NGX_HTTP_TRL_BACKOFF_MAX      5000
#define NGX_HTTP_TRL_BACKOFF_ASK      1000    /* asking is cheap */
#define NGX_HTTP_TRL_RETRY_LOOK       250     /* at whether the node is up */

/* ms without a refused call before the node is up again after refusals */
#define NGX_HTTP_TRL_REFUSED_QUIET    2000

struct ngx_http_trl_cmd_s {
    ngx_queue_t                  queue;      /* outstanding, oldest first */
    ngx_msec_t                   deadline;
    ngx_msec_t                   timeout;
    ngx_http_trl_reply_pt        handler;
    void                        *data;
    ngx_uint_t                   script;
    ngx_uint_t                   argc;
    u_char                      *resp;       /* EVALSHA, in RESP */
    size_t                       resp_len;
    u_char                      *tail;       /* of resp: numkeys, args */
    size_t                       tail_len;   /* (kept for an EVAL retry) */
    ngx_uint_t                   redirects;  /* MOVED, ASK followed */
    unsigned                     retried:1;
    unsigned                     asking:1;   /* sent after ASKING (ASK) */
};


typedef struct ngx_http_trl_link_s  ngx_http_trl_link_t;

/*
 * What a topology with several links (cluster=) does for a link: names
 * its probe's key (one of its slots), hears that it went down (the map
 * may be stale) or is ready (returns whether the node may be up: every
 * master's link ready), follows a redirection (returns 0 when the error
 * is none: see redis_cluster.c).
 */
typedef struct {
    ngx_int_t                  (*probe)(ngx_http_trl_link_t *link);
    void                       (*down)(ngx_http_trl_link_t *link);
    ngx_uint_t                 (*up)(ngx_http_trl_link_t *link);
    ngx_uint_t                 (*redirect)(ngx_http_trl_link_t *link,
                                   ngx_http_trl_cmd_t *cmd,
                                   redisReply *reply);
} ngx_http_trl_link_hooks_t;

/* the link of a script's first key (NULL: none known yet) */
typedef ngx_http_trl_link_t *(*ngx_http_trl_route_pt)(ngx_str_t *key);

struct ngx_http_trl_link_s {
    ngx_http_trl_redis_conf_t   *conf;
    redisAsyncContext           *ac;
    ngx_uint_t                   state;
    ngx_uint_t                   setup_left;
    ngx_msec_t                   backoff;
    ngx_event_t                  retry;
    ngx_msec_t                   retry_at;
    ngx_event_t                  watchdog;
    ngx_queue_t                  cmds;
    ngx_msec_t                   last_reply;
    u_char                       sha[TRL_SCRIPTS][41];
    ngx_uint_t                   unexpected; /* the reply being handled */
    ngx_uint_t                   refused;    /* fell by a refusal, not
                                                served since */
    ngx_msec_t                   ready_at;
    ngx_event_t                  quiet;      /* up once refusals stop */
    ngx_str_t                    probe;      /* the key of the probe */
    u_char                      *host;       /* the server connected to */
    ngx_int_t                    port;
    u_char                       master[NGX_SOCKADDR_STRLEN + 1];
    ngx_str_t                    name;       /* host:port, for the logs */
    u_char                       name_buf[NGX_HTTP_TRL_MASTER_LEN];
    ngx_uint_t                   slots;      /* cluster: slots it serves */
    ngx_http_trl_link_hooks_t   *hooks;      /* NULL: a single link */
    ngx_log_t                   *log;
};


/* one master of cluster=, as the node saw it last */
typedef struct {
    u_char                       addr[NGX_HTTP_TRL_MASTER_LEN];
    size_t                       addr_len;
    ngx_uint_t                   slots;
    ngx_atomic_t                 up;
} ngx_http_trl_master_seen_t;


/* the node's view, in shared memory */
typedef struct {
    ngx_atomic_t                 up;
    ngx_atomic_t                 down_since;
    ngx_atomic_t                 outages;
    ngx_atomic_t                 failures;
    ngx_atomic_t                 refused_last;   /* ngx_current_msec */
    ngx_atomic_t                 refused;    /* calls, this outage */
    ngx_atomic_t                 lock;       /* of reason, master(s) */
    size_t                       reason_len;
    u_char                       reason[NGX_HTTP_TRL_REASON_MAX];
    ngx_atomic_t                 failovers;  /* master changes seen */
    size_t                       master_len; /* the sentinels' master */
    u_char                       master[NGX_HTTP_TRL_MASTER_LEN];
    ngx_atomic_t                 map_version;    /* cluster: maps seen */
    ngx_atomic_t                 slots_moved;
    ngx_uint_t                   unserved;
    ngx_uint_t                   nmasters;
    ngx_http_trl_master_seen_t   masters[NGX_HTTP_TRL_MASTERS_SHOWN];
} ngx_http_trl_redis_shared_t;


/*
 * The asker: one question (argv) to the servers of a list, in turn, each
 * over its own short connection, with AUTH first when a password is set;
 * the server that answered is asked first the next time.  read() looks at
 * the answer: NULL when it is taken (done(NULL) follows), else why not
 * (the next server is asked).  done() is called once, with the last error
 * when no server answered.
 */

typedef struct ngx_http_trl_asker_s  ngx_http_trl_asker_t;

typedef const char *(*ngx_http_trl_asker_read_pt)(ngx_http_trl_asker_t *q,
    redisReply *reply);
typedef void (*ngx_http_trl_asker_done_pt)(ngx_http_trl_asker_t *q,
    const char *err);

struct ngx_http_trl_asker_s {
    ngx_log_t                   *log;
    ngx_http_trl_redis_addr_t   *servers;
    ngx_uint_t                   nservers;
    ngx_str_t                    password;
    const char                  *what;       /* "sentinel", "node" */
    ngx_uint_t                   argc;
    const char                  *argv[3];
    size_t                       argvlen[3];
    ngx_msec_t                   timeout;
    ngx_http_trl_asker_read_pt   read;
    ngx_http_trl_asker_done_pt   done;
    void                        *data;

    redisAsyncContext           *ac;         /* the server asked now */
    ngx_uint_t                   first;      /* the one that answered */
    ngx_uint_t                   next;
    ngx_uint_t                   tried;
    ngx_uint_t                   busy;
    ngx_event_t                  timer;      /* deadline, or next try */
    u_char                       err[128];
};


/*
 * The files call each other one way: topology -> cluster -> cmd -> link
 * (redis.c) -> health, sentinel, ask -> event.  A link calls back up only
 * through the hooks its topology gave it, and the commands find their
 * link through the route the topology set.
 */

/* redis_topology.c: the public face (ngx_http_token_ratelimit_redis.h) */

/* redis_cluster.c */
ngx_int_t ngx_http_trl_cluster_init(ngx_cycle_t *cycle,
    ngx_http_trl_redis_conf_t *rc);
void ngx_http_trl_cluster_exit(void);
ngx_uint_t ngx_http_trl_cluster_ready(void);

/* redis_cmd.c */
void ngx_http_trl_redis_route(ngx_http_trl_route_pt route);
ngx_int_t ngx_http_trl_link_send(ngx_http_trl_link_t *link,
    ngx_http_trl_cmd_t *cmd, ngx_uint_t asking);

/* redis.c */
ngx_http_trl_link_t *ngx_http_trl_link_create(ngx_http_trl_redis_conf_t *rc,
    ngx_log_t *log, u_char *host, ngx_int_t port);
void ngx_http_trl_link_start(ngx_http_trl_link_t *link);
void ngx_http_trl_link_close(ngx_http_trl_link_t *link);
void ngx_http_trl_link_fail(ngx_http_trl_link_t *link, const char *why,
    const char *detail);
void ngx_http_trl_link_up(ngx_http_trl_link_t *link);
void ngx_http_trl_redis_refused(ngx_http_trl_link_t *link, const char *what,
    const char *reason, size_t len);
void ngx_http_trl_redis_served(ngx_http_trl_link_t *link);
void ngx_http_trl_redis_arm(ngx_http_trl_link_t *link);

/* redis_health.c */
ngx_int_t ngx_http_trl_redis_init_shm(ngx_shm_zone_t *shm_zone, void *data);
ngx_http_trl_redis_shared_t *ngx_http_trl_redis_shared(
    ngx_http_trl_redis_conf_t *rc);
void ngx_http_trl_redis_down(ngx_http_trl_redis_conf_t *rc, ngx_log_t *log,
    const char *why, const char *detail);
void ngx_http_trl_redis_link_down(ngx_http_trl_link_t *link,
    const char *why, const char *detail);
void ngx_http_trl_redis_link_up(ngx_http_trl_link_t *link);

/* redis_event.c */
ngx_int_t ngx_http_trl_redis_attach(redisAsyncContext *ac, ngx_log_t *log);

/* redis_ask.c */
void ngx_http_trl_asker_start(ngx_http_trl_asker_t *q);
void ngx_http_trl_asker_stop(ngx_http_trl_asker_t *q);
ngx_uint_t ngx_http_trl_redis_numeric(u_char *host, size_t len);


#endif /* _NGX_HTTP_TOKEN_RATELIMIT_REDIS_LINK_H_INCLUDED_ */
