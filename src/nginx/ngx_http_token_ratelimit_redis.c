
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
 * Whether Redis is reachable is also kept per node, in a small shared
 * memory zone, so that an outage is logged once when it begins and once
 * when it ends, not once per worker.  So is whether Redis, reachable,
 * serves the calls: a Redis that answers them with errors (a read-only
 * replica, a Redis Cluster node's MOVED, a script that fails), whatever
 * they are and however often they are retried, is logged once when the
 * refusals begin, and once when a call succeeds again after a quiet time.
 */


#include "ngx_http_token_ratelimit.h"
#include "ngx_http_token_ratelimit_redis.h"
#include "ngx_http_token_ratelimit_api.h"


#define NGX_HTTP_TRL_LINK_DOWN        0
#define NGX_HTTP_TRL_LINK_CONNECTING  1
#define NGX_HTTP_TRL_LINK_READY       2

#define NGX_HTTP_TRL_BACKOFF_MIN      100
#define NGX_HTTP_TRL_BACKOFF_MAX      5000

/* ms without a refused call before a good reply ends a refusal outage */
#define NGX_HTTP_TRL_REFUSED_QUIET    2000
#define NGX_HTTP_TRL_REASON_MAX       200


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
    ngx_event_t                  watchdog;
    ngx_queue_t                  cmds;
    ngx_msec_t                   last_reply;
    u_char                       sha[TRL_SCRIPTS][41];
    ngx_uint_t                   unexpected; /* the reply being handled */
    ngx_log_t                   *log;
} ngx_http_trl_link_t;


/* the node's view, in shared memory */
typedef struct {
    ngx_atomic_t                 up;
    ngx_atomic_t                 down_since;
    ngx_atomic_t                 outages;
    ngx_atomic_t                 failures;
    ngx_atomic_t                 serving;    /* 0: calls are refused */
    ngx_atomic_t                 refused_since;  /* s */
    ngx_atomic_t                 refused_last;   /* ngx_current_msec */
    ngx_atomic_t                 refused;    /* calls, this refusal */
} ngx_http_trl_redis_shared_t;


static ngx_int_t ngx_http_trl_redis_init_shm(ngx_shm_zone_t *shm_zone,
    void *data);
static char *ngx_http_trl_redis_parse_address(ngx_conf_t *cf,
    ngx_command_t *cmd, ngx_str_t *value, ngx_http_trl_redis_conf_t *rc);
static void ngx_http_trl_redis_connect(ngx_http_trl_link_t *link);
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
    ngx_uint_t script, const char *reason, size_t len);
static void ngx_http_trl_redis_served(ngx_http_trl_link_t *link);


static ngx_http_trl_link_t  ngx_http_trl_link;

static ngx_str_t  ngx_http_trl_redis_shm_name =
    ngx_string("token_ratelimit_redis");


/*
 * token_ratelimit_redis address [password=..] [db=N] [prefix=..]
 *     [interval=time] [timeout=time] [fail=open|closed];
 */

char *
ngx_http_trl_redis_directive(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_trl_main_conf_t  *tmcf = conf;

    ngx_int_t                   n;
    ngx_str_t                  *value, s;
    ngx_uint_t                  i;
    ngx_http_trl_redis_conf_t  *rc;

    if (tmcf->redis) {
        return "is duplicate";
    }

    rc = ngx_pcalloc(cf->pool, sizeof(ngx_http_trl_redis_conf_t));
    if (rc == NULL) {
        return NGX_CONF_ERROR;
    }

    value = cf->args->elts;

    if (ngx_http_trl_redis_parse_address(cf, cmd, &value[1], rc)
        != NGX_CONF_OK)
    {
        return NGX_CONF_ERROR;
    }

    ngx_str_set(&rc->prefix, "trl:");
    rc->interval = 100;
    rc->timeout = 100;

    for (i = 2; i < cf->args->nelts; i++) {

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

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter \"%V\" in \"%V\" directive, "
                           "expected password=, db=, prefix=, interval=, "
                           "timeout= or fail=", &value[i], &cmd->name);
        return NGX_CONF_ERROR;
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


/* host:port (resolved now: workers never resolve) or unix:/path */

static char *
ngx_http_trl_redis_parse_address(ngx_conf_t *cf, ngx_command_t *cmd,
    ngx_str_t *value, ngx_http_trl_redis_conf_t *rc)
{
    u_char     *p;
    size_t      len;
    ngx_url_t   u;

    rc->address = *value;

    if (value->len > 5 && ngx_strncmp(value->data, "unix:", 5) == 0) {
        len = value->len - 5;

        p = ngx_pnalloc(cf->pool, len + 1);
        if (p == NULL) {
            return NGX_CONF_ERROR;
        }

        ngx_memcpy(p, value->data + 5, len);
        p[len] = '\0';

        rc->host.data = p;
        rc->host.len = len;
        rc->port = 0;

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

    rc->host.data = p;
    rc->host.len = len;
    rc->port = ngx_inet_get_port(u.addrs[0].sockaddr);

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
    sh->serving = 1;
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

    link->retry.handler = ngx_http_trl_redis_retry;
    link->retry.data = link;
    link->retry.log = cycle->log;
    link->retry.cancelable = 1;

    link->watchdog.handler = ngx_http_trl_redis_watchdog;
    link->watchdog.data = link;
    link->watchdog.log = cycle->log;
    link->watchdog.cancelable = 1;

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

    link->conf = NULL;                      /* no reconnect from callbacks */

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


static void
ngx_http_trl_redis_connect(ngx_http_trl_link_t *link)
{
    int                         i;
    char                        db[NGX_INT_T_LEN + 1];
    const char                 *argv[3];
    size_t                      argvlen[3];
    ngx_connection_t           *c;
    redisAsyncContext          *ac;
    ngx_http_trl_redis_conf_t  *rc;

    rc = link->conf;

    ac = rc->port ? redisAsyncConnect((char *) rc->host.data, (int) rc->port)
                  : redisAsyncConnectUnix((char *) rc->host.data);

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
        ngx_http_trl_redis_fail(link, "set-up failed", reply->str);
        return;
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
    link->backoff = NGX_HTTP_TRL_BACKOFF_MIN;

    if (link->watchdog.timer_set) {
        ngx_del_timer(&link->watchdog);
    }

    ngx_http_trl_redis_link_up(link);
    ngx_http_trl_sync_link_ready();
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

    /* refusals are logged here, once per outage: not by the handlers */

    script = cmd->script;
    error = reply && reply->type == REDIS_REPLY_ERROR;

    if (error) {
        ngx_http_trl_redis_refused(link, script, reply->str,
                                   reply->len);
    }

    link->unexpected = 0;

    cmd->handler(reply, cmd->data);
    ngx_free(cmd);

    if (reply && !error && !link->unexpected) {
        ngx_http_trl_redis_served(link);
    }

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
    ngx_msec_t  delay;

    if (link->retry.timer_set || ngx_exiting || ngx_quit || ngx_terminate) {
        return;
    }

    /* half to all of the backoff, which doubles up to its cap */

    delay = link->backoff / 2 + (ngx_msec_t) ngx_random() % (link->backoff / 2
                                                              + 1);

    link->backoff = ngx_min(link->backoff * 2, NGX_HTTP_TRL_BACKOFF_MAX);

    ngx_add_timer(&link->retry, delay);
}


static void
ngx_http_trl_redis_retry(ngx_event_t *ev)
{
    ngx_http_trl_link_t  *link = ev->data;

    if (link->conf && link->ac == NULL) {
        ngx_http_trl_redis_connect(link);
    }
}


/* the node's view: only the transitions are logged */

static void
ngx_http_trl_redis_link_down(ngx_http_trl_link_t *link, const char *why,
    const char *detail)
{
    ngx_http_trl_redis_shared_t  *sh;

    sh = ngx_http_trl_redis_shared(link);

    (void) ngx_atomic_fetch_add(&sh->failures, 1);

    if (!ngx_atomic_cmp_set(&sh->up, 1, 0)) {
        return;
    }

    sh->down_since = (ngx_atomic_uint_t) ngx_time();
    (void) ngx_atomic_fetch_add(&sh->outages, 1);

    ngx_log_error(NGX_LOG_ERR, link->log, 0,
                  "token_ratelimit: redis %V is unreachable (%s: %s); %s",
                  &link->conf->address, why, detail ? detail : "error",
                  link->conf->fail_closed
                      ? "requests of sync zones get 503 (fail=closed)"
                      : "sync zones count locally (fail=open)");
}


static void
ngx_http_trl_redis_link_up(ngx_http_trl_link_t *link)
{
    ngx_http_trl_redis_shared_t  *sh;

    sh = ngx_http_trl_redis_shared(link);

    if (!ngx_atomic_cmp_set(&sh->up, 0, 1)) {
        return;
    }

    ngx_log_error(NGX_LOG_ERR, link->log, 0,
                  "token_ratelimit: redis %V is reachable again after %T s",
                  &link->conf->address,
                  ngx_time() - (time_t) sh->down_since);
}


/*
 * A reply that a handler could not read: counted and logged as a refusal
 * (by script: "unexpected answer").
 */

void
ngx_http_trl_redis_unexpected(ngx_uint_t script)
{
    ngx_http_trl_link_t  *link = &ngx_http_trl_link;

    if (link->conf == NULL) {
        return;
    }

    link->unexpected = 1;

    ngx_http_trl_redis_refused(link, script, "unexpected answer",
                               sizeof("unexpected answer") - 1);
}


/*
 * Redis answered a call with an error: the first refusal of an outage is
 * logged, with its reason; the others are counted.
 */

static void
ngx_http_trl_redis_refused(ngx_http_trl_link_t *link, ngx_uint_t script,
    const char *reason, size_t len)
{
    ngx_http_trl_redis_shared_t  *sh;

    static const char  *names[TRL_SCRIPTS] = {
        "publish", "strict decision", "release", "reset", "lists",
        "async decision"
    };

    sh = ngx_http_trl_redis_shared(link);

    (void) ngx_atomic_fetch_add(&sh->refused, 1);
    sh->refused_last = (ngx_atomic_uint_t) ngx_current_msec;

    if (!ngx_atomic_cmp_set(&sh->serving, 1, 0)) {
        return;
    }

    sh->refused_since = (ngx_atomic_uint_t) ngx_time();

    ngx_log_error(NGX_LOG_ERR, link->log, 0,
                  "token_ratelimit: redis %V refuses the module's calls "
                  "(%s: %*s); they are retried, and logged again once "
                  "redis serves them",
                  &link->conf->address,
                  script < TRL_SCRIPTS ? names[script] : "call",
                  ngx_min(len, NGX_HTTP_TRL_REASON_MAX),
                  reason ? reason : "error");
}


/*
 * A good reply.  It ends a refusal outage once no call has been refused
 * for NGX_HTTP_TRL_REFUSED_QUIET (or two intervals): a Redis that refuses
 * only some calls (a replica: the writes) is not served again by a read.
 */

static void
ngx_http_trl_redis_served(ngx_http_trl_link_t *link)
{
    ngx_msec_t                    quiet;
    ngx_atomic_uint_t             n;
    ngx_http_trl_redis_shared_t  *sh;

    sh = ngx_http_trl_redis_shared(link);

    if (sh->serving) {
        return;
    }

    quiet = ngx_max(NGX_HTTP_TRL_REFUSED_QUIET, 2 * link->conf->interval);

    if ((ngx_msec_int_t) (ngx_current_msec - (ngx_msec_t) sh->refused_last)
        < (ngx_msec_int_t) quiet)
    {
        return;
    }

    if (!ngx_atomic_cmp_set(&sh->serving, 0, 1)) {
        return;
    }

    n = sh->refused;
    (void) ngx_atomic_fetch_add(&sh->refused, -(ngx_atomic_int_t) n);

    ngx_log_error(NGX_LOG_ERR, link->log, 0,
                  "token_ratelimit: redis %V serves the module's calls "
                  "again after %T s (%uA calls refused)",
                  &link->conf->address,
                  ngx_time() - (time_t) sh->refused_since, n);
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
