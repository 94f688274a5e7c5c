
/*
 * ngx_http_token_ratelimit_redis.c - token_ratelimit_redis and the link to
 * Redis: one hiredis async connection per worker, driven by nginx's own
 * event loop.
 *
 * hiredis 0.14 has no timeouts and resolves names with a blocking call, so
 * the address is resolved at configuration time, and every command carries
 * a deadline that an nginx timer watches: a connect that does not complete
 * in time, or a command left unanswered past its deadline while Redis has
 * answered nothing for as long, takes the link down.  (A deep pipeline that
 * Redis works through is slow, not dead: requests never wait on it beyond
 * their own timers.)
 * The link is set up (AUTH, SELECT, SCRIPT LOAD) before it serves, comes
 * back with exponential backoff and jitter, and every command is answered
 * exactly once: with Redis's reply, or NULL when the link failed.
 *
 * A Redis that answers but cannot serve the module is unreachable too
 * (honest health): an error reply to a call (READONLY from a replica,
 * MOVED, CLUSTERDOWN, LOADING, NOAUTH, BUSY, a script that fails; NOSCRIPT
 * only once, it is answered with EVAL) or a reply a handler cannot read
 * takes the link down, and it comes back through the set-up, whose last
 * step is a write probe (DEL of a key never written), with backoff.  The
 * backoff starts afresh only once a call is served again.
 *
 * Whether Redis is reachable is also kept per node, in a small shared
 * memory zone, with the reason of the outage, so that an outage, however
 * it began, is logged once when it begins and once when it ends, not once
 * per worker or per call.  After refusals the node is up again once no
 * call has been refused for a quiet time: a Redis that refuses only some
 * calls (the writes) is not taken for up by a read.
 */


#include "ngx_http_token_ratelimit.h"
#include "ngx_http_token_ratelimit_redis.h"
#include "ngx_http_token_ratelimit_api.h"


#define NGX_HTTP_TRL_LINK_DOWN        0
#define NGX_HTTP_TRL_LINK_CONNECTING  1
#define NGX_HTTP_TRL_LINK_READY       2
#define NGX_HTTP_TRL_LINK_ASKING      3       /* the sentinels */

#define NGX_HTTP_TRL_BACKOFF_MIN      100
#define NGX_HTTP_TRL_BACKOFF_MAX      5000
#define NGX_HTTP_TRL_BACKOFF_SENTINEL 1000    /* asking is cheap */
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
    unsigned                     retried:1;
};


typedef struct {
    ngx_http_trl_redis_conf_t   *conf;
    redisAsyncContext           *ac;
    ngx_connection_t            *conn;
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
    ngx_log_t                   *log;
} ngx_http_trl_link_t;


/* the node's view, in shared memory */
typedef struct {
    ngx_atomic_t                 up;
    ngx_atomic_t                 down_since;
    ngx_atomic_t                 outages;
    ngx_atomic_t                 failures;
    ngx_atomic_t                 refused_last;   /* ngx_current_msec */
    ngx_atomic_t                 refused;    /* calls, this outage */
    ngx_atomic_t                 lock;       /* of reason, master */
    size_t                       reason_len;
    u_char                       reason[NGX_HTTP_TRL_REASON_MAX];
    ngx_atomic_t                 failovers;  /* master changes seen */
    size_t                       master_len; /* the sentinels' master */
    u_char                       master[NGX_HTTP_TRL_MASTER_LEN];
} ngx_http_trl_redis_shared_t;


static ngx_int_t ngx_http_trl_redis_init_shm(ngx_shm_zone_t *shm_zone,
    void *data);
static char *ngx_http_trl_redis_parse_sentinels(ngx_conf_t *cf,
    ngx_command_t *cmd, ngx_str_t *list, ngx_http_trl_redis_conf_t *rc);
static char *ngx_http_trl_redis_parse_address(ngx_conf_t *cf,
    ngx_command_t *cmd, ngx_str_t *value, ngx_str_t *host, ngx_int_t *port);
static void ngx_http_trl_redis_connect(ngx_http_trl_link_t *link);
static void ngx_http_trl_redis_master(u_char *host, ngx_uint_t port,
    const char *err);
static void ngx_http_trl_redis_connect_to(ngx_http_trl_link_t *link);
static void ngx_http_trl_redis_fail(ngx_http_trl_link_t *link,
    const char *why, const char *detail);
static void ngx_http_trl_redis_schedule(ngx_http_trl_link_t *link);
static void ngx_http_trl_redis_retry(ngx_event_t *ev);
static void ngx_http_trl_redis_watchdog(ngx_event_t *ev);
static void ngx_http_trl_redis_arm(ngx_http_trl_link_t *link);
static void ngx_http_trl_redis_on_connect(const redisAsyncContext *ac,
    int status);
static void ngx_http_trl_redis_on_disconnect(const redisAsyncContext *ac,
    int status);
static void ngx_http_trl_redis_setup(redisAsyncContext *ac, void *r,
    void *privdata);
static void ngx_http_trl_redis_reply(redisAsyncContext *ac, void *r,
    void *privdata);
static ngx_int_t ngx_http_trl_redis_send(ngx_http_trl_link_t *link,
    ngx_http_trl_cmd_t *cmd, u_char *resp, size_t len);
static ngx_int_t ngx_http_trl_redis_send_eval(ngx_http_trl_link_t *link,
    ngx_http_trl_cmd_t *cmd);
static u_char *ngx_http_trl_resp_bulk(u_char *p, u_char *data, size_t len);
static u_char *ngx_http_trl_resp_uint(u_char *p, size_t n);
static void ngx_http_trl_redis_add_read(void *privdata);
static void ngx_http_trl_redis_del_read(void *privdata);
static void ngx_http_trl_redis_add_write(void *privdata);
static void ngx_http_trl_redis_del_write(void *privdata);
static void ngx_http_trl_redis_cleanup(void *privdata);
static void ngx_http_trl_redis_read_handler(ngx_event_t *ev);
static void ngx_http_trl_redis_write_handler(ngx_event_t *ev);
static void ngx_http_trl_redis_link_up(ngx_http_trl_link_t *link);
static void ngx_http_trl_redis_link_down(ngx_http_trl_link_t *link,
    const char *why, const char *detail);
static void ngx_http_trl_redis_refused(ngx_http_trl_link_t *link,
    const char *what, const char *reason, size_t len);
static void ngx_http_trl_redis_served(ngx_http_trl_link_t *link);
static void ngx_http_trl_redis_quiet(ngx_event_t *ev);


static ngx_http_trl_link_t    ngx_http_trl_link;
static u_char                 ngx_http_trl_role;   /* the ROLE's privdata */
static ngx_http_trl_ready_pt  ngx_http_trl_ready_handler;

static ngx_str_t  ngx_http_trl_redis_shm_name =
    ngx_string("token_ratelimit_redis");


/*
 * token_ratelimit_redis address [password=..] [db=N] [prefix=..]
 *     [interval=time] [timeout=time] [fail=open|closed];
 * token_ratelimit_redis sentinel=host:port[,host:port...] master=name
 *     [sentinel_password=..] [password=..] ...;
 */

char *
ngx_http_trl_redis_directive(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_trl_main_conf_t  *tmcf = conf;

    u_char                     *p;
    ngx_int_t                   n;
    ngx_str_t                  *value, s;
    ngx_uint_t                  i, address;
    ngx_http_trl_redis_conf_t  *rc;

    if (tmcf->redis) {
        return "is duplicate";
    }

    rc = ngx_pcalloc(cf->pool, sizeof(ngx_http_trl_redis_conf_t));
    if (rc == NULL) {
        return NGX_CONF_ERROR;
    }

    value = cf->args->elts;

    ngx_str_set(&rc->prefix, "trl:");
    rc->interval = 100;
    rc->timeout = 100;
    address = 0;

    for (i = 1; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "sentinel=", 9) == 0) {
            if (rc->sentinels) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "duplicate \"sentinel=\" in \"%V\" "
                                   "directive", &cmd->name);
                return NGX_CONF_ERROR;
            }

            s.data = value[i].data + 9;
            s.len = value[i].len - 9;

            if (ngx_http_trl_redis_parse_sentinels(cf, cmd, &s, rc)
                != NGX_CONF_OK)
            {
                return NGX_CONF_ERROR;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "master=", 7) == 0) {
            rc->master.data = value[i].data + 7;
            rc->master.len = value[i].len - 7;

            if (rc->master.len == 0) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid value \"%V\" in \"%V\" "
                                   "directive, it must be \"master=\" and "
                                   "the name the sentinels monitor",
                                   &value[i], &cmd->name);
                return NGX_CONF_ERROR;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "sentinel_password=", 18) == 0) {
            rc->sentinel_password.data = value[i].data + 18;
            rc->sentinel_password.len = value[i].len - 18;
            continue;
        }

        if (ngx_strncmp(value[i].data, "cluster=", 8) == 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"%V\" in \"%V\" directive is not "
                               "supported by this version; use an "
                               "address or sentinel=", &value[i],
                               &cmd->name);
            return NGX_CONF_ERROR;
        }

        if (ngx_strncmp(value[i].data, "password=", 9) == 0) {
            rc->password.data = value[i].data + 9;
            rc->password.len = value[i].len - 9;
            continue;
        }

        if (ngx_strncmp(value[i].data, "db=", 3) == 0) {
            n = ngx_atoi(value[i].data + 3, value[i].len - 3);
            if (n == NGX_ERROR || n > 65535) {
                goto invalid;
            }
            rc->db = n;
            continue;
        }

        if (ngx_strncmp(value[i].data, "prefix=", 7) == 0) {
            rc->prefix.data = value[i].data + 7;
            rc->prefix.len = value[i].len - 7;
            continue;
        }

        if (ngx_strncmp(value[i].data, "interval=", 9) == 0
            || ngx_strncmp(value[i].data, "timeout=", 8) == 0)
        {
            s.data = (u_char *) ngx_strchr(value[i].data, '=') + 1;
            s.len = value[i].data + value[i].len - s.data;

            n = ngx_parse_time(&s, 0);
            if (n == NGX_ERROR || n < 1 || n > 60000) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid value \"%V\" in \"%V\" "
                                   "directive, it must be a time from 1ms "
                                   "to 60s, such as 100ms",
                                   &value[i], &cmd->name);
                return NGX_CONF_ERROR;
            }

            if (value[i].data[0] == 'i') {
                rc->interval = (ngx_msec_t) n;
            } else {
                rc->timeout = (ngx_msec_t) n;
            }

            continue;
        }

        if (ngx_strcmp(value[i].data, "fail=open") == 0) {
            rc->fail_closed = 0;
            continue;
        }

        if (ngx_strcmp(value[i].data, "fail=closed") == 0) {
            rc->fail_closed = 1;
            continue;
        }

        if (ngx_strncmp(value[i].data, "fail=", 5) == 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid value \"%V\" in \"%V\" directive, "
                               "it must be \"fail=open\" or \"fail=closed\"",
                               &value[i], &cmd->name);
            return NGX_CONF_ERROR;
        }

        if (i == 1) {
            if (ngx_http_trl_redis_parse_address(cf, cmd, &value[1],
                                                 &rc->host, &rc->port)
                != NGX_CONF_OK)
            {
                return NGX_CONF_ERROR;
            }

            rc->address = value[1];
            address = 1;
            continue;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter \"%V\" in \"%V\" directive, "
                           "expected sentinel=, master=, "
                           "sentinel_password=, password=, db=, prefix=, "
                           "interval=, timeout= or fail=",
                           &value[i], &cmd->name);
        return NGX_CONF_ERROR;
    }

    if (address && rc->sentinels) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" directive has both an address (\"%V\") "
                           "and \"sentinel=\": the sentinels find the "
                           "address, give one or the other",
                           &cmd->name, &value[1]);
        return NGX_CONF_ERROR;
    }

    if (!address && rc->sentinels == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" directive needs an address "
                           "(host:port or unix:/path) or "
                           "\"sentinel=host:port,...\" as its first "
                           "parameter", &cmd->name);
        return NGX_CONF_ERROR;
    }

    if (rc->sentinels && rc->master.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" directive with \"sentinel=\" needs "
                           "\"master=\" and the name the sentinels monitor",
                           &cmd->name);
        return NGX_CONF_ERROR;
    }

    if (rc->sentinels == NULL
        && (rc->master.len || rc->sentinel_password.data))
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%s\" in \"%V\" directive needs \"sentinel=\"",
                           rc->master.len ? "master=" : "sentinel_password=",
                           &cmd->name);
        return NGX_CONF_ERROR;
    }

    if (rc->sentinels) {

        /* the master's name, NUL-terminated; the logs name it */

        p = ngx_pnalloc(cf->pool, rc->master.len + 1);
        if (p == NULL) {
            return NGX_CONF_ERROR;
        }

        ngx_memcpy(p, rc->master.data, rc->master.len);
        p[rc->master.len] = '\0';
        rc->master.data = p;

        rc->address.len = sizeof("master ") - 1 + rc->master.len;
        rc->address.data = ngx_pnalloc(cf->pool, rc->address.len);
        if (rc->address.data == NULL) {
            return NGX_CONF_ERROR;
        }

        ngx_sprintf(rc->address.data, "master %V", &rc->master);
    }

    rc->shm = ngx_shared_memory_add(cf, &ngx_http_trl_redis_shm_name,
                                    8 * ngx_pagesize,
                                    &ngx_http_token_ratelimit_module);
    if (rc->shm == NULL) {
        return NGX_CONF_ERROR;
    }

    rc->shm->init = ngx_http_trl_redis_init_shm;
    rc->shm->data = rc;

    tmcf->redis = rc;

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid value \"%V\" in \"%V\" directive, "
                       "it must be \"db=\" and a number from 0 to 65535",
                       &value[i], &cmd->name);
    return NGX_CONF_ERROR;
}


/* sentinel=host:port[,host:port...] */

static char *
ngx_http_trl_redis_parse_sentinels(ngx_conf_t *cf, ngx_command_t *cmd,
    ngx_str_t *list, ngx_http_trl_redis_conf_t *rc)
{
    u_char                     *p, *last, *comma;
    ngx_http_trl_redis_addr_t  *sa;

    rc->sentinels = ngx_array_create(cf->pool, 3,
                                     sizeof(ngx_http_trl_redis_addr_t));
    if (rc->sentinels == NULL) {
        return NGX_CONF_ERROR;
    }

    p = list->data;
    last = p + list->len;

    for ( ;; ) {
        comma = ngx_strlchr(p, last, ',');
        if (comma == NULL) {
            comma = last;
        }

        sa = ngx_array_push(rc->sentinels);
        if (sa == NULL) {
            return NGX_CONF_ERROR;
        }

        sa->text.data = p;
        sa->text.len = comma - p;

        if (sa->text.len == 0
            || (sa->text.len > 5 && ngx_strncmp(p, "unix:", 5) == 0))
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid value \"sentinel=%V\" in \"%V\" "
                               "directive, it must be a list of host:port "
                               "separated by commas, such as "
                               "\"sentinel=10.0.0.1:26379,10.0.0.2:26379\"",
                               list, &cmd->name);
            return NGX_CONF_ERROR;
        }

        if (ngx_http_trl_redis_parse_address(cf, cmd, &sa->text, &sa->host,
                                             &sa->port)
            != NGX_CONF_OK)
        {
            return NGX_CONF_ERROR;
        }

        if (comma == last) {
            break;
        }

        p = comma + 1;
    }

    return NGX_CONF_OK;
}


/* host:port (resolved now: workers never resolve) or unix:/path */

static char *
ngx_http_trl_redis_parse_address(ngx_conf_t *cf, ngx_command_t *cmd,
    ngx_str_t *value, ngx_str_t *host, ngx_int_t *port)
{
    u_char     *p;
    size_t      len;
    ngx_url_t   u;

    if (value->len > 5 && ngx_strncmp(value->data, "unix:", 5) == 0) {
        len = value->len - 5;

        p = ngx_pnalloc(cf->pool, len + 1);
        if (p == NULL) {
            return NGX_CONF_ERROR;
        }

        ngx_memcpy(p, value->data + 5, len);
        p[len] = '\0';

        host->data = p;
        host->len = len;
        *port = 0;

        return NGX_CONF_OK;
    }

    ngx_memzero(&u, sizeof(ngx_url_t));

    u.url = *value;
    u.default_port = 6379;

    if (ngx_parse_url(cf->pool, &u) != NGX_OK || u.naddrs == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid address \"%V\" in \"%V\" directive: %s",
                           value, &cmd->name,
                           u.err ? u.err : "host not found");
        return NGX_CONF_ERROR;
    }

    if (u.no_port && value->len && value->data[value->len - 1] == ':') {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid address \"%V\" in \"%V\" directive: "
                           "no port", value, &cmd->name);
        return NGX_CONF_ERROR;
    }

    p = ngx_pnalloc(cf->pool, NGX_SOCKADDR_STRLEN + 1);
    if (p == NULL) {
        return NGX_CONF_ERROR;
    }

    len = ngx_sock_ntop(u.addrs[0].sockaddr, u.addrs[0].socklen, p,
                        NGX_SOCKADDR_STRLEN, 0);
    p[len] = '\0';

    host->data = p;
    host->len = len;
    *port = ngx_inet_get_port(u.addrs[0].sockaddr);

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_trl_redis_init_shm(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_slab_pool_t              *shpool;
    ngx_http_trl_redis_shared_t  *sh;

    shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (data || shm_zone->shm.exists) {
        return NGX_OK;                      /* kept across reloads */
    }

    sh = ngx_slab_calloc(shpool, sizeof(ngx_http_trl_redis_shared_t));
    if (sh == NULL) {
        return NGX_ERROR;
    }

    sh->up = 1;
    shpool->data = sh;

    return NGX_OK;
}


static ngx_http_trl_redis_shared_t *
ngx_http_trl_redis_shared(ngx_http_trl_link_t *link)
{
    ngx_slab_pool_t  *shpool;

    shpool = (ngx_slab_pool_t *) link->conf->shm->shm.addr;

    return shpool->data;
}


ngx_int_t
ngx_http_trl_redis_init_process(ngx_cycle_t *cycle,
    ngx_http_trl_redis_conf_t *rc)
{
    ngx_http_trl_link_t  *link = &ngx_http_trl_link;

    ngx_memzero(link, sizeof(ngx_http_trl_link_t));

    link->conf = rc;
    link->log = cycle->log;
    link->backoff = NGX_HTTP_TRL_BACKOFF_MIN;

    ngx_queue_init(&link->cmds);

    link->probe.len = rc->prefix.len + sizeof("probe") - 1;
    link->probe.data = ngx_pnalloc(cycle->pool, link->probe.len + 1);
    if (link->probe.data == NULL) {
        return NGX_ERROR;
    }

    ngx_sprintf(link->probe.data, "%Vprobe%Z", &rc->prefix);

    link->retry.handler = ngx_http_trl_redis_retry;
    link->retry.data = link;
    link->retry.log = cycle->log;
    link->retry.cancelable = 1;

    link->watchdog.handler = ngx_http_trl_redis_watchdog;
    link->watchdog.data = link;
    link->watchdog.log = cycle->log;
    link->watchdog.cancelable = 1;

    link->quiet.handler = ngx_http_trl_redis_quiet;
    link->quiet.data = link;
    link->quiet.log = cycle->log;
    link->quiet.cancelable = 1;

    /*
     * The clock cached before the fork may be seconds old (large zones
     * take time to set up): the connect's deadline must not start late.
     */

    ngx_time_update();

    ngx_http_trl_redis_connect(link);

    return NGX_OK;
}


void
ngx_http_trl_redis_exit_process(void)
{
    ngx_http_trl_link_t  *link = &ngx_http_trl_link;

    if (link->conf == NULL) {
        return;
    }

    if (link->retry.timer_set) {
        ngx_del_timer(&link->retry);
    }

    if (link->watchdog.timer_set) {
        ngx_del_timer(&link->watchdog);
    }

    if (link->quiet.timer_set) {
        ngx_del_timer(&link->quiet);
    }

    link->conf = NULL;                      /* no reconnect from callbacks */

    ngx_http_trl_sentinel_exit();

    if (link->ac) {
        redisAsyncFree(link->ac);           /* answers what is outstanding */
    }
}


void
ngx_http_trl_redis_state(ngx_http_trl_redis_state_t *state)
{
    ngx_http_trl_redis_shared_t  *sh;

    ngx_memzero(state, sizeof(ngx_http_trl_redis_state_t));

    if (ngx_http_trl_link.conf == NULL) {
        return;
    }

    sh = ngx_http_trl_redis_shared(&ngx_http_trl_link);

    state->configured = 1;
    state->up = sh->up;
    state->outages = sh->outages;
    state->failures = sh->failures;
    state->down_since = sh->up ? 0 : (time_t) sh->down_since;

    state->failovers = sh->failovers;

    ngx_spinlock(&sh->lock, ngx_pid, 1024);

    if (!state->up) {
        state->reason_len = ngx_min(sh->reason_len, NGX_HTTP_TRL_REASON_MAX);
        ngx_memcpy(state->reason, sh->reason, state->reason_len);
    }

    state->master_len = ngx_min(sh->master_len, NGX_HTTP_TRL_MASTER_LEN);
    ngx_memcpy(state->master, sh->master, state->master_len);

    ngx_unlock(&sh->lock);
}


ngx_uint_t
ngx_http_trl_redis_ready(void)
{
    return ngx_http_trl_link.state == NGX_HTTP_TRL_LINK_READY;
}


ngx_http_trl_redis_conf_t *
ngx_http_trl_redis_conf(void)
{
    return ngx_http_trl_link.conf;
}


void
ngx_http_trl_redis_on_ready(ngx_http_trl_ready_pt handler)
{
    ngx_http_trl_ready_handler = handler;
}


ngx_int_t
ngx_http_trl_redis_slot(ngx_str_t *key)
{
    if (ngx_http_trl_link.conf == NULL
        || ngx_http_trl_link.conf->cluster == NULL)
    {
        return -1;
    }

    return (ngx_int_t) trl_cluster_slot(key->data, key->len);
}


/*
 * With sentinels, the master is asked for before every connection: a
 * failover is followed as soon as the old master fails, refuses a write
 * or is no master (ROLE).
 */

static void
ngx_http_trl_redis_connect(ngx_http_trl_link_t *link)
{
    if (link->conf->sentinels == NULL) {
        link->host = link->conf->host.data;
        link->port = link->conf->port;

        ngx_http_trl_redis_connect_to(link);
        return;
    }

    link->state = NGX_HTTP_TRL_LINK_ASKING;

    ngx_http_trl_sentinel_ask(link->conf, link->log,
                              ngx_http_trl_redis_master);
}


/* the sentinels' answer: the master, noted for the node, or none */

static void
ngx_http_trl_redis_master(u_char *host, ngx_uint_t port, const char *err)
{
    u_char                        addr[NGX_HTTP_TRL_MASTER_LEN], *p;
    size_t                        len;
    ngx_uint_t                    changed;
    ngx_http_trl_link_t          *link = &ngx_http_trl_link;
    ngx_http_trl_redis_shared_t  *sh;

    if (link->conf == NULL || link->state != NGX_HTTP_TRL_LINK_ASKING) {
        return;
    }

    if (host == NULL) {
        link->state = NGX_HTTP_TRL_LINK_DOWN;
        ngx_http_trl_redis_link_down(link, "no master from the sentinels",
                                     err);
        ngx_http_trl_redis_schedule(link);
        return;
    }

    p = ngx_snprintf(addr, sizeof(addr),
                     ngx_strchr(host, ':') ? "[%s]:%ui" : "%s:%ui",
                     host, port);
    len = p - addr;

    sh = ngx_http_trl_redis_shared(link);

    ngx_spinlock(&sh->lock, ngx_pid, 1024);

    changed = sh->master_len != len
              || ngx_memcmp(sh->master, addr, len) != 0;

    if (changed && sh->master_len) {
        (void) ngx_atomic_fetch_add(&sh->failovers, 1);
        ngx_log_error(NGX_LOG_WARN, link->log, 0,
                      "token_ratelimit: redis %V is now %*s (was %*s), "
                      "say the sentinels", &link->conf->address, len, addr,
                      sh->master_len, sh->master);
    }

    ngx_memcpy(sh->master, addr, len);
    sh->master_len = len;

    ngx_unlock(&sh->lock);

    ngx_cpystrn(link->master, host, sizeof(link->master));
    link->host = link->master;
    link->port = (ngx_int_t) port;

    ngx_http_trl_redis_connect_to(link);
}


static void
ngx_http_trl_redis_connect_to(ngx_http_trl_link_t *link)
{
    int                         i;
    char                        db[NGX_INT_T_LEN + 1];
    const char                 *argv[3];
    size_t                      argvlen[3];
    ngx_connection_t           *c;
    redisAsyncContext          *ac;
    ngx_http_trl_redis_conf_t  *rc;

    rc = link->conf;

    link->state = NGX_HTTP_TRL_LINK_DOWN;   /* until connecting */

    ac = link->port ? redisAsyncConnect((char *) link->host, (int) link->port)
                    : redisAsyncConnectUnix((char *) link->host);

    if (ac == NULL) {
        ngx_http_trl_redis_link_down(link, "cannot connect", "no memory");
        ngx_http_trl_redis_schedule(link);
        return;
    }

    if (ac->err) {
        ngx_http_trl_redis_link_down(link, "cannot connect", ac->errstr);
        redisAsyncFree(ac);
        ngx_http_trl_redis_schedule(link);
        return;
    }

    c = ngx_get_connection(ac->c.fd, link->log);
    if (c == NULL) {
        ngx_http_trl_redis_link_down(link, "cannot connect",
                                     "no free connection");
        redisAsyncFree(ac);
        ngx_http_trl_redis_schedule(link);
        return;
    }

    c->data = link;
    c->log = link->log;
    c->read->log = link->log;
    c->write->log = link->log;
    c->read->handler = ngx_http_trl_redis_read_handler;
    c->write->handler = ngx_http_trl_redis_write_handler;

    link->ac = ac;
    link->conn = c;
    link->state = NGX_HTTP_TRL_LINK_CONNECTING;
    link->setup_left = 0;

    ac->ev.data = link;
    ac->ev.addRead = ngx_http_trl_redis_add_read;
    ac->ev.delRead = ngx_http_trl_redis_del_read;
    ac->ev.addWrite = ngx_http_trl_redis_add_write;
    ac->ev.delWrite = ngx_http_trl_redis_del_write;
    ac->ev.cleanup = ngx_http_trl_redis_cleanup;

    redisAsyncSetConnectCallback(ac, ngx_http_trl_redis_on_connect);
    redisAsyncSetDisconnectCallback(ac, ngx_http_trl_redis_on_disconnect);

    /* set-up, sent as soon as the connection is there */

    if (rc->password.len) {
        argv[0] = "AUTH";
        argvlen[0] = 4;
        argv[1] = (char *) rc->password.data;
        argvlen[1] = rc->password.len;

        redisAsyncCommandArgv(ac, ngx_http_trl_redis_setup, "AUTH", 2, argv,
                              argvlen);
        link->setup_left++;
    }

    if (rc->db) {
        argv[0] = "SELECT";
        argvlen[0] = 6;
        argv[1] = db;
        argvlen[1] = ngx_sprintf((u_char *) db, "%i", rc->db) - (u_char *) db;

        redisAsyncCommandArgv(ac, ngx_http_trl_redis_setup, "SELECT", 2,
                              argv, argvlen);
        link->setup_left++;
    }

    for (i = 0; i < TRL_SCRIPTS; i++) {
        argv[0] = "SCRIPT";
        argvlen[0] = 6;
        argv[1] = "LOAD";
        argvlen[1] = 4;
        argv[2] = trl_redis_script(i);
        argvlen[2] = ngx_strlen(argv[2]);

        redisAsyncCommandArgv(ac, ngx_http_trl_redis_setup, link->sha[i], 3,
                              argv, argvlen);
        link->setup_left++;
    }

    /* a master the sentinels named must still be one */

    if (rc->sentinels) {
        argv[0] = "ROLE";
        argvlen[0] = 4;

        redisAsyncCommandArgv(ac, ngx_http_trl_redis_setup,
                              &ngx_http_trl_role, 1, argv, argvlen);
        link->setup_left++;
    }

    /*
     * The probe: a write of a key never written.  A replica (READONLY),
     * a Redis Cluster node without the slot (CLUSTERDOWN, MOVED), a Redis
     * loading its data (LOADING) or running a long script (BUSY) refuses it.
     */

    argv[0] = "DEL";
    argvlen[0] = 3;
    argv[1] = (char *) link->probe.data;
    argvlen[1] = link->probe.len;

    redisAsyncCommandArgv(ac, ngx_http_trl_redis_setup, NULL, 2, argv,
                          argvlen);
    link->setup_left++;

    /* the connect and the set-up must complete within the timeout */

    ngx_add_timer(&link->watchdog, rc->timeout);
}


static void
ngx_http_trl_redis_on_connect(const redisAsyncContext *ac, int status)
{
    ngx_http_trl_link_t  *link = ac->ev.data;

    if (status == REDIS_OK) {
        return;                             /* set-up replies follow */
    }

    /* hiredis frees the context once this returns */

    ngx_http_trl_redis_link_down(link, "cannot connect", ac->errstr);

    link->ac = NULL;
    link->state = NGX_HTTP_TRL_LINK_DOWN;

    if (link->watchdog.timer_set) {
        ngx_del_timer(&link->watchdog);
    }

    if (link->conf) {
        ngx_http_trl_redis_schedule(link);
    }
}


static void
ngx_http_trl_redis_on_disconnect(const redisAsyncContext *ac, int status)
{
    ngx_http_trl_link_t  *link = ac->ev.data;

    if (status != REDIS_OK) {
        ngx_http_trl_redis_link_down(link, "connection lost", ac->errstr);
    }

    link->ac = NULL;
    link->state = NGX_HTTP_TRL_LINK_DOWN;

    if (link->watchdog.timer_set) {
        ngx_del_timer(&link->watchdog);
    }

    if (link->conf) {
        ngx_http_trl_redis_schedule(link);
    }
}


/* AUTH, SELECT and SCRIPT LOAD: the link serves once all have succeeded */

static void
ngx_http_trl_redis_setup(redisAsyncContext *ac, void *r, void *privdata)
{
    redisReply           *reply = r;
    ngx_http_trl_link_t  *link = ac->ev.data;

    if (reply == NULL) {
        return;                             /* the link is going down */
    }

    if (reply->type == REDIS_REPLY_ERROR) {
        ngx_http_trl_redis_refused(link, "set-up", reply->str, reply->len);
        return;
    }

    if (privdata == &ngx_http_trl_role) {
        if (reply->type != REDIS_REPLY_ARRAY || reply->elements == 0
            || reply->element[0]->type != REDIS_REPLY_STRING
            || reply->element[0]->len != 6
            || ngx_strncmp(reply->element[0]->str, "master", 6) != 0)
        {
            ngx_http_trl_redis_refused(link, "ROLE", "not a master",
                                       sizeof("not a master") - 1);
            return;
        }

        privdata = NULL;
    }

    if (reply->type == REDIS_REPLY_STRING && reply->len == 40) {
        ngx_memcpy(privdata, reply->str, 40);
        ((u_char *) privdata)[40] = '\0';
    }

    if (--link->setup_left > 0) {
        return;
    }

    link->state = NGX_HTTP_TRL_LINK_READY;
    link->last_reply = ngx_current_msec;

    if (!link->refused) {
        link->backoff = NGX_HTTP_TRL_BACKOFF_MIN;
    }

    link->ready_at = ngx_current_msec;

    if (link->watchdog.timer_set) {
        ngx_del_timer(&link->watchdog);
    }

    ngx_http_trl_redis_link_up(link);

    if (ngx_http_trl_ready_handler) {
        ngx_http_trl_ready_handler();
    }
}


/*
 * Runs a script: EVALSHA, and EVAL once should Redis have lost it
 * (NOSCRIPT, after a restart or SCRIPT FLUSH).  args are the keys, then
 * the other arguments.  The handler is called exactly once: with the
 * reply (an error reply included), or with NULL when the link failed or
 * the deadline passed.  Returns NGX_DECLINED when the link is not ready.
 */

ngx_int_t
ngx_http_trl_redis_eval(ngx_uint_t script, ngx_uint_t nkeys, ngx_str_t *args,
    ngx_uint_t nargs, ngx_msec_t timeout, ngx_http_trl_reply_pt handler,
    void *data)
{
    u_char               *p, num[2 * NGX_INT_T_LEN];
    size_t                size, head, numlen;
    ngx_uint_t            i;
    ngx_http_trl_cmd_t   *cmd;
    ngx_http_trl_link_t  *link = &ngx_http_trl_link;

    if (link->state != NGX_HTTP_TRL_LINK_READY) {
        return NGX_DECLINED;
    }

    /*
     * One allocation: the command, then the request in Redis' protocol,
     * formatted here (hiredis' own formatting costs more than the rest of
     * a publish): "*argc", EVALSHA and the script's SHA1 (head), then
     * numkeys and the arguments (tail), each "$len\r\nbytes\r\n".
     */

    numlen = ngx_http_trl_resp_uint(num, nkeys) - num;

    head = ngx_http_trl_resp_uint(num + numlen, nargs + 3) - (num + numlen)
           + sizeof("*\r\n$7\r\nEVALSHA\r\n$40\r\n\r\n") - 1 + 40;

    size = sizeof(ngx_http_trl_cmd_t) + head
           + (nargs + 1) * (sizeof("$\r\n\r\n") - 1 + NGX_SIZE_T_LEN)
           + numlen;

    for (i = 0; i < nargs; i++) {
        size += args[i].len;
    }

    cmd = ngx_alloc(size, link->log);
    if (cmd == NULL) {
        return NGX_ERROR;
    }

    cmd->handler = handler;
    cmd->data = data;
    cmd->script = script;
    cmd->retried = 0;
    cmd->argc = nargs + 3;

    p = (u_char *) (cmd + 1);
    cmd->resp = p;

    *p++ = '*';
    p = ngx_http_trl_resp_uint(p, cmd->argc);
    p = ngx_cpymem(p, "\r\n$7\r\nEVALSHA\r\n", sizeof("\r\n$7\r\nEVALSHA\r\n") - 1);
    p = ngx_http_trl_resp_bulk(p, link->sha[script], 40);

    cmd->tail = p;
    p = ngx_http_trl_resp_bulk(p, num, numlen);

    for (i = 0; i < nargs; i++) {
        p = ngx_http_trl_resp_bulk(p, args[i].data, args[i].len);
    }

    cmd->tail_len = p - cmd->tail;
    cmd->resp_len = p - cmd->resp;

    cmd->deadline = ngx_current_msec + timeout;
    cmd->timeout = timeout;

    if (ngx_http_trl_redis_send(link, cmd, cmd->resp, cmd->resp_len)
        != NGX_OK)
    {
        ngx_free(cmd);
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * The next integer of a script's answer "n n n ..." (a string: see
 * sync.cpp), from *pos, which moves past it.  NGX_ERROR when there is
 * none or it is malformed.
 */

ngx_int_t
ngx_http_trl_reply_int(u_char **pos, u_char *last, int64_t *value)
{
    u_char      *p;
    int64_t      v;
    ngx_uint_t   neg, digits;

    p = *pos;

    if (p < last && *p == ' ') {            /* the separator */
        p++;
    }

    neg = (p < last && *p == '-');
    p += neg;

    v = 0;

    for (digits = 0; p < last && *p >= '0' && *p <= '9'; digits++, p++) {
        if (digits == 18) {
            return NGX_ERROR;
        }

        v = v * 10 + (*p - '0');
    }

    if (digits == 0 || (p < last && *p != ' ')) {
        return NGX_ERROR;
    }

    *value = neg ? -v : v;
    *pos = p;

    return NGX_OK;
}


/* "$len\r\ndata\r\n" */

static u_char *
ngx_http_trl_resp_bulk(u_char *p, u_char *data, size_t len)
{
    *p++ = '$';
    p = ngx_http_trl_resp_uint(p, len);
    *p++ = CR; *p++ = LF;
    p = ngx_cpymem(p, data, len);
    *p++ = CR; *p++ = LF;

    return p;
}


/* n in decimal (ngx_sprintf's general path costs several times more) */

static u_char *
ngx_http_trl_resp_uint(u_char *p, size_t n)
{
    u_char  tmp[NGX_SIZE_T_LEN], *t;

    t = tmp + NGX_SIZE_T_LEN;

    do {
        *--t = (u_char) ('0' + n % 10);
        n /= 10;
    } while (n);

    return ngx_cpymem(p, t, tmp + NGX_SIZE_T_LEN - t);
}


/* hiredis copies the request into its output buffer */

static ngx_int_t
ngx_http_trl_redis_send(ngx_http_trl_link_t *link, ngx_http_trl_cmd_t *cmd,
    u_char *resp, size_t len)
{
    if (redisAsyncFormattedCommand(link->ac, ngx_http_trl_redis_reply, cmd,
                                   (char *) resp, len)
        != REDIS_OK)
    {
        return NGX_ERROR;
    }

    ngx_queue_insert_tail(&link->cmds, &cmd->queue);

    if (!link->watchdog.timer_set) {
        ngx_http_trl_redis_arm(link);
    }

    return NGX_OK;
}


/* the script unknown to Redis (NOSCRIPT): the same request as EVAL */

static ngx_int_t
ngx_http_trl_redis_send_eval(ngx_http_trl_link_t *link,
    ngx_http_trl_cmd_t *cmd)
{
    u_char     *p, *resp;
    size_t      len;
    ngx_int_t   rc;
    const char *body;

    body = trl_redis_script((int) cmd->script);
    len = ngx_strlen(body);

    resp = ngx_alloc(sizeof("*\r\n$4\r\nEVAL\r\n$\r\n\r\n") - 1
                     + 2 * NGX_SIZE_T_LEN + len + cmd->tail_len, link->log);
    if (resp == NULL) {
        return NGX_ERROR;
    }

    p = resp;
    *p++ = '*';
    p = ngx_http_trl_resp_uint(p, cmd->argc);
    p = ngx_cpymem(p, "\r\n$4\r\nEVAL\r\n", sizeof("\r\n$4\r\nEVAL\r\n") - 1);
    p = ngx_http_trl_resp_bulk(p, (u_char *) body, len);
    p = ngx_cpymem(p, cmd->tail, cmd->tail_len);

    rc = ngx_http_trl_redis_send(link, cmd, resp, p - resp);

    ngx_free(resp);

    return rc;
}


static void
ngx_http_trl_redis_reply(redisAsyncContext *ac, void *r, void *privdata)
{
    ngx_uint_t            script, error;
    redisReply           *reply = r;
    ngx_http_trl_cmd_t   *cmd = privdata;
    ngx_http_trl_link_t  *link = &ngx_http_trl_link;

    static const char  *names[TRL_SCRIPTS] = {
        "publish", "strict decision", "release", "reset", "lists",
        "async decision"
    };

    ngx_queue_remove(&cmd->queue);
    link->last_reply = ngx_current_msec;

    if (reply && reply->type == REDIS_REPLY_ERROR && !cmd->retried
        && ngx_strncmp(reply->str, "NOSCRIPT", 8) == 0
        && link->state == NGX_HTTP_TRL_LINK_READY)
    {
        cmd->retried = 1;

        if (ngx_http_trl_redis_send_eval(link, cmd) == NGX_OK) {
            return;
        }

        reply = NULL;
    }

    script = cmd->script;
    error = reply && reply->type == REDIS_REPLY_ERROR;

    link->unexpected = 0;

    cmd->handler(reply, cmd->data);
    ngx_free(cmd);

    /*
     * A refusal takes the link down (the handler has had the error reply;
     * the commands outstanding get NULL): the set-up probes Redis again.
     */

    if (reply == NULL || link->state != NGX_HTTP_TRL_LINK_READY) {
        return;
    }

    if (error) {
        ngx_http_trl_redis_refused(link, names[script], reply->str,
                                   reply->len);
        return;
    }

    if (link->unexpected) {
        ngx_http_trl_redis_refused(link, names[script], "unexpected answer",
                                   sizeof("unexpected answer") - 1);
        return;
    }

    ngx_http_trl_redis_served(link);

    /* the watchdog, if set, looks at the next command when it fires */
}


/* the watchdog: the connect, or the oldest outstanding command, is late */

static void
ngx_http_trl_redis_arm(ngx_http_trl_link_t *link)
{
    ngx_msec_int_t       left;
    ngx_http_trl_cmd_t  *cmd;

    if (link->watchdog.timer_set) {
        ngx_del_timer(&link->watchdog);
    }

    if (ngx_queue_empty(&link->cmds)) {
        return;
    }

    cmd = ngx_queue_data(ngx_queue_head(&link->cmds), ngx_http_trl_cmd_t,
                         queue);

    left = (ngx_msec_int_t) (cmd->deadline - ngx_current_msec);

    ngx_add_timer(&link->watchdog, left > 0 ? (ngx_msec_t) left : 1);
}


static void
ngx_http_trl_redis_watchdog(ngx_event_t *ev)
{
    ngx_http_trl_cmd_t   *cmd;
    ngx_http_trl_link_t  *link = ev->data;

    if (link->state == NGX_HTTP_TRL_LINK_CONNECTING) {
        ngx_http_trl_redis_fail(link, "cannot connect", "timed out");
        return;
    }

    if (ngx_queue_empty(&link->cmds)) {
        return;
    }

    cmd = ngx_queue_data(ngx_queue_head(&link->cmds), ngx_http_trl_cmd_t,
                         queue);

    if ((ngx_msec_int_t) (cmd->deadline - ngx_current_msec) > 0) {
        ngx_http_trl_redis_arm(link);
        return;
    }

    /* late, but Redis is working through what it was sent: wait on */

    if ((ngx_msec_int_t) (link->last_reply + cmd->timeout - ngx_current_msec)
        > 0)
    {
        ngx_add_timer(&link->watchdog,
                      link->last_reply + cmd->timeout - ngx_current_msec);
        return;
    }

    ngx_http_trl_redis_fail(link, "no answer", "timed out");
}


/* Takes the link down: outstanding commands are answered with NULL. */

static void
ngx_http_trl_redis_fail(ngx_http_trl_link_t *link, const char *why,
    const char *detail)
{
    redisAsyncContext  *ac;

    ngx_http_trl_redis_link_down(link, why, detail);

    ac = link->ac;

    link->ac = NULL;
    link->state = NGX_HTTP_TRL_LINK_DOWN;

    if (link->watchdog.timer_set) {
        ngx_del_timer(&link->watchdog);
    }

    if (link->quiet.timer_set) {
        ngx_del_timer(&link->quiet);
    }

    /*
     * Freed at once, or, from inside a hiredis callback, as soon as it
     * returns; on_disconnect is not called for a link that never connected.
     */

    if (ac) {
        redisAsyncFree(ac);
    }

    if (link->conf) {
        ngx_http_trl_redis_schedule(link);
    }
}


static void
ngx_http_trl_redis_schedule(ngx_http_trl_link_t *link)
{
    ngx_msec_t  delay, cap;

    if (link->retry.timer_set || ngx_exiting || ngx_quit || ngx_terminate) {
        return;
    }

    /* half to all of the backoff, which doubles up to its cap */

    delay = link->backoff / 2 + (ngx_msec_t) ngx_random() % (link->backoff / 2
                                                              + 1);

    cap = link->conf->sentinels ? NGX_HTTP_TRL_BACKOFF_SENTINEL
                                : NGX_HTTP_TRL_BACKOFF_MAX;

    link->backoff = ngx_min(link->backoff * 2, cap);

    link->retry_at = ngx_current_msec + delay;

    ngx_add_timer(&link->retry, ngx_min(delay, NGX_HTTP_TRL_RETRY_LOOK));
}


static void
ngx_http_trl_redis_retry(ngx_event_t *ev)
{
    ngx_msec_int_t                left;
    ngx_http_trl_link_t          *link = ev->data;
    ngx_http_trl_redis_shared_t  *sh;

    if (link->conf == NULL || link->ac || link->state != NGX_HTTP_TRL_LINK_DOWN)
    {
        return;
    }

    /*
     * Once another worker of the node has Redis serving again, this one
     * does not wait out the rest of its backoff.
     */

    sh = ngx_http_trl_redis_shared(link);
    left = (ngx_msec_int_t) (link->retry_at - ngx_current_msec);

    if (left > 0 && !sh->up) {
        ngx_add_timer(&link->retry,
                      ngx_min((ngx_msec_t) left, NGX_HTTP_TRL_RETRY_LOOK));
        return;
    }

    ngx_http_trl_redis_connect(link);
}


/*
 * The node's view: only the transitions are logged, one line when an
 * outage begins, whatever took the link down first, and one when it ends.
 * The reason shown by the API is the latest.
 */

static void
ngx_http_trl_redis_link_down(ngx_http_trl_link_t *link, const char *why,
    const char *detail)
{
    u_char                       *p;
    ngx_http_trl_redis_shared_t  *sh;

    sh = ngx_http_trl_redis_shared(link);

    (void) ngx_atomic_fetch_add(&sh->failures, 1);

    if (detail == NULL) {
        detail = "error";
    }

    ngx_spinlock(&sh->lock, ngx_pid, 1024);
    p = ngx_snprintf(sh->reason, NGX_HTTP_TRL_REASON_MAX, "%s: %s", why,
                     detail);
    sh->reason_len = p - sh->reason;
    ngx_unlock(&sh->lock);

    if (!ngx_atomic_cmp_set(&sh->up, 1, 0)) {
        return;
    }

    sh->down_since = (ngx_atomic_uint_t) ngx_time();
    (void) ngx_atomic_fetch_add(&sh->outages, 1);

    ngx_log_error(NGX_LOG_ERR, link->log, 0,
                  "token_ratelimit: redis %V is unreachable (%s: %s); %s",
                  &link->conf->address, why, detail,
                  link->conf->fail_closed
                      ? "requests of sync zones get 503 (fail=closed)"
                      : "sync zones count locally (fail=open)");
}


/*
 * The link is ready, or served a call: the node is up again, unless a
 * call was refused (by any worker) less than a quiet time ago, or this
 * link, refused, has been ready again for less than a quiet time without
 * serving a call (the probe passes, a script keeps failing: one outage,
 * not one per reconnection); then the quiet timer looks again.
 */

static void
ngx_http_trl_redis_link_up(ngx_http_trl_link_t *link)
{
    ngx_msec_t                    quiet;
    ngx_msec_int_t                left;
    ngx_atomic_uint_t             n;
    ngx_http_trl_redis_shared_t  *sh;

    sh = ngx_http_trl_redis_shared(link);

    if (sh->up) {
        return;
    }

    n = sh->refused;

    if (n) {
        quiet = ngx_max(NGX_HTTP_TRL_REFUSED_QUIET,
                        2 * link->conf->interval);
        left = (ngx_msec_int_t) ((ngx_msec_t) sh->refused_last + quiet
                                 - ngx_current_msec);

        if (link->refused) {
            left = ngx_max(left, (ngx_msec_int_t) (link->ready_at + quiet
                                                   - ngx_current_msec));
        }

        if (left > 0) {
            if (!link->quiet.timer_set) {
                ngx_add_timer(&link->quiet, (ngx_msec_t) left);
            }

            return;
        }
    }

    if (!ngx_atomic_cmp_set(&sh->up, 0, 1)) {
        return;
    }

    (void) ngx_atomic_fetch_add(&sh->refused, -(ngx_atomic_int_t) n);

    if (n) {
        ngx_log_error(NGX_LOG_ERR, link->log, 0,
                      "token_ratelimit: redis %V is reachable again after "
                      "%T s (%uA calls refused)", &link->conf->address,
                      ngx_time() - (time_t) sh->down_since, n);
        return;
    }

    ngx_log_error(NGX_LOG_ERR, link->log, 0,
                  "token_ratelimit: redis %V is reachable again after %T s",
                  &link->conf->address,
                  ngx_time() - (time_t) sh->down_since);
}


static void
ngx_http_trl_redis_quiet(ngx_event_t *ev)
{
    ngx_http_trl_link_t  *link = ev->data;

    if (link->conf && link->state == NGX_HTTP_TRL_LINK_READY) {
        ngx_http_trl_redis_link_up(link);
    }
}


/*
 * A reply that a handler could not read: a refusal (by script:
 * "unexpected answer"), once the handler returns.
 */

void
ngx_http_trl_redis_unexpected(ngx_uint_t script)
{
    ngx_http_trl_link_t  *link = &ngx_http_trl_link;

    if (link->conf == NULL) {
        return;
    }

    link->unexpected = 1;
}


/*
 * Redis answered with an error (what: the call refused): it cannot serve
 * the module, the link goes down as if Redis were unreachable, and the
 * set-up with its probe tries again after the backoff.  The reason is the
 * first line of the error, bounded.
 */

static void
ngx_http_trl_redis_refused(ngx_http_trl_link_t *link, const char *what,
    const char *reason, size_t len)
{
    u_char                        c, why[64];
    u_char                        detail[NGX_HTTP_TRL_REASON_MAX];
    size_t                        n;
    ngx_http_trl_redis_shared_t  *sh;

    sh = ngx_http_trl_redis_shared(link);

    (void) ngx_atomic_fetch_add(&sh->refused, 1);
    sh->refused_last = (ngx_atomic_uint_t) ngx_current_msec;

    link->refused = 1;

    for (n = 0; n < len && n < sizeof(detail) - 1; n++) {
        if (reason[n] == CR || reason[n] == LF) {
            break;
        }

        c = (u_char) reason[n];
        detail[n] = (c < 0x20 || c == 0x7f) ? (u_char) '?' : c;
    }

    detail[n] = '\0';

    ngx_sprintf(why, "%s refused%Z", what);

    ngx_http_trl_redis_fail(link, (char *) why, (char *) detail);
}


/* a good reply: the backoff starts afresh; the node may be up again */

static void
ngx_http_trl_redis_served(ngx_http_trl_link_t *link)
{
    ngx_http_trl_redis_shared_t  *sh;

    if (link->refused) {
        link->refused = 0;
        link->backoff = NGX_HTTP_TRL_BACKOFF_MIN;
    }

    sh = ngx_http_trl_redis_shared(link);

    if (!sh->up) {
        ngx_http_trl_redis_link_up(link);
    }
}


/* hiredis' event hooks, on nginx events (level-triggered) */

static void
ngx_http_trl_redis_add_read(void *privdata)
{
    ngx_http_trl_link_t  *link = privdata;

    if (link->conn && !link->conn->read->active) {
        (void) ngx_add_event(link->conn->read, NGX_READ_EVENT,
                             NGX_LEVEL_EVENT);
    }
}


static void
ngx_http_trl_redis_del_read(void *privdata)
{
    ngx_http_trl_link_t  *link = privdata;

    if (link->conn && link->conn->read->active) {
        (void) ngx_del_event(link->conn->read, NGX_READ_EVENT, 0);
    }
}


static void
ngx_http_trl_redis_add_write(void *privdata)
{
    ngx_http_trl_link_t  *link = privdata;

    if (link->conn && !link->conn->write->active) {
        (void) ngx_add_event(link->conn->write, NGX_WRITE_EVENT,
                             NGX_LEVEL_EVENT);
    }
}


static void
ngx_http_trl_redis_del_write(void *privdata)
{
    ngx_http_trl_link_t  *link = privdata;

    if (link->conn && link->conn->write->active) {
        (void) ngx_del_event(link->conn->write, NGX_WRITE_EVENT, 0);
    }
}


/* hiredis frees the context (and closes the socket) after this */

static void
ngx_http_trl_redis_cleanup(void *privdata)
{
    ngx_connection_t     *c;
    ngx_http_trl_link_t  *link = privdata;

    c = link->conn;

    if (c == NULL) {
        return;
    }

    ngx_http_trl_redis_del_read(link);
    ngx_http_trl_redis_del_write(link);

    if (c->read->posted) {
        ngx_delete_posted_event(c->read);
    }

    if (c->write->posted) {
        ngx_delete_posted_event(c->write);
    }

    ngx_free_connection(c);

    /* hiredis closes the socket; the exiting worker checks it is gone */

    c->fd = (ngx_socket_t) -1;
    link->conn = NULL;
}


static void
ngx_http_trl_redis_read_handler(ngx_event_t *ev)
{
    ngx_connection_t     *c = ev->data;
    ngx_http_trl_link_t  *link = c->data;

    if (link->ac) {
        redisAsyncHandleRead(link->ac);
    }
}


static void
ngx_http_trl_redis_write_handler(ngx_event_t *ev)
{
    ngx_connection_t     *c = ev->data;
    ngx_http_trl_link_t  *link = c->data;

    if (link->ac) {
        redisAsyncHandleWrite(link->ac);
    }
}
