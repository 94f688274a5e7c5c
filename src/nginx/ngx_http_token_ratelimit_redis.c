
/*
 * ngx_http_token_ratelimit_redis.c - the link to Redis: a worker's hiredis
 * async connection to one server, driven by nginx's own event loop, and
 * the scripts sent over it.  With an address or sentinel= a worker has one
 * link; with cluster= one per master, chosen by the slot of a script's
 * keys (redis_cluster.c).
 *
 * hiredis 0.14 has no timeouts and resolves names with a blocking call, so
 * addresses are numeric (resolved at configuration time, or as the
 * sentinels and the cluster name them), and every command carries a
 * deadline that an nginx timer watches: a connect that does not complete
 * in time, or a command left unanswered past its deadline while Redis has
 * answered nothing for as long, takes the link down.  (A deep pipeline that
 * Redis works through is slow, not dead: requests never wait on it beyond
 * their own timers.)
 * The link is set up (AUTH, SELECT, SCRIPT LOAD, with sentinels ROLE, and
 * a write probe) before it serves, comes back with exponential backoff and
 * jitter, and every command is answered exactly once: with Redis's reply,
 * or NULL when the link failed.  An error reply takes the link down
 * (redis_health.c), except NOSCRIPT (answered with EVAL once) and, with
 * cluster=, the redirections MOVED and ASK, which are followed.
 */


#include "ngx_http_token_ratelimit_redis_link.h"


static void ngx_http_trl_redis_connect(ngx_http_trl_link_t *link);
static void ngx_http_trl_redis_master(u_char *host, ngx_uint_t port,
    const char *err);
static void ngx_http_trl_redis_connect_to(ngx_http_trl_link_t *link);
static void ngx_http_trl_redis_schedule(ngx_http_trl_link_t *link);
static void ngx_http_trl_redis_retry(ngx_event_t *ev);
static void ngx_http_trl_redis_watchdog(ngx_event_t *ev);
static void ngx_http_trl_redis_quiet(ngx_event_t *ev);
static void ngx_http_trl_redis_on_connect(const redisAsyncContext *ac,
    int status);
static void ngx_http_trl_redis_on_disconnect(const redisAsyncContext *ac,
    int status);
static void ngx_http_trl_redis_setup(redisAsyncContext *ac, void *r,
    void *privdata);


static ngx_http_trl_link_t        *ngx_http_trl_asking;    /* sentinels */
static ngx_http_trl_ready_pt       ngx_http_trl_ready_handler;
static u_char                      ngx_http_trl_role;  /* ROLE's privdata */




/* a link to host:port (port 0: a unix socket), not connected yet */

ngx_http_trl_link_t *
ngx_http_trl_link_create(ngx_http_trl_redis_conf_t *rc, ngx_log_t *log,
    u_char *host, ngx_int_t port)
{
    u_char               *p;
    ngx_http_trl_link_t  *link;

    link = ngx_pcalloc(ngx_cycle->pool, sizeof(ngx_http_trl_link_t));
    if (link == NULL) {
        return NULL;
    }

    link->conf = rc;
    link->log = log;
    link->backoff = NGX_HTTP_TRL_BACKOFF_MIN;

    ngx_queue_init(&link->cmds);

    if (host) {
        ngx_cpystrn(link->master, host, sizeof(link->master));
        link->host = link->master;
        link->port = port;

        p = ngx_snprintf(link->name_buf, sizeof(link->name_buf),
                         port == 0 ? "unix:%s"
                         : ngx_strchr(host, ':') ? "[%s]:%i" : "%s:%i",
                         link->master, port);
        link->name.data = link->name_buf;
        link->name.len = p - link->name_buf;
    }

    /* the probe's key: cluster= picks one in the node's slots */

    link->probe.data = ngx_pnalloc(ngx_cycle->pool,
                                   rc->prefix.len + sizeof("probe{}") - 1
                                   + NGX_INT_T_LEN + 1);
    if (link->probe.data == NULL) {
        return NULL;
    }

    link->probe.len = ngx_sprintf(link->probe.data, "%Vprobe%Z", &rc->prefix)
                      - link->probe.data - 1;

    link->retry.handler = ngx_http_trl_redis_retry;
    link->retry.data = link;
    link->retry.log = log;
    link->retry.cancelable = 1;

    link->watchdog.handler = ngx_http_trl_redis_watchdog;
    link->watchdog.data = link;
    link->watchdog.log = log;
    link->watchdog.cancelable = 1;

    link->quiet.handler = ngx_http_trl_redis_quiet;
    link->quiet.data = link;
    link->quiet.log = log;
    link->quiet.cancelable = 1;

    return link;
}


/* (re)starts a link: connects now, the backoff afresh */

void
ngx_http_trl_link_start(ngx_http_trl_link_t *link)
{
    link->backoff = NGX_HTTP_TRL_BACKOFF_MIN;
    link->state = NGX_HTTP_TRL_LINK_DOWN;

    if (link->retry.timer_set) {
        ngx_del_timer(&link->retry);
    }

    ngx_http_trl_redis_connect(link);
}


/*
 * Closes a link for good (the worker exits, or the node serves no slot
 * any more): what is outstanding is answered with NULL, nothing
 * reconnects.
 */

void
ngx_http_trl_link_close(ngx_http_trl_link_t *link)
{
    redisAsyncContext  *ac;

    link->state = NGX_HTTP_TRL_LINK_RETIRED;

    if (link->retry.timer_set) {
        ngx_del_timer(&link->retry);
    }

    if (link->watchdog.timer_set) {
        ngx_del_timer(&link->watchdog);
    }

    if (link->quiet.timer_set) {
        ngx_del_timer(&link->quiet);
    }

    ac = link->ac;
    link->ac = NULL;

    if (ac) {
        redisAsyncFree(ac);         /* answers what is outstanding */
    }
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
        ngx_http_trl_redis_connect_to(link);
        return;
    }

    link->state = NGX_HTTP_TRL_LINK_ASKING;
    ngx_http_trl_asking = link;

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
    ngx_http_trl_link_t          *link = ngx_http_trl_asking;
    ngx_http_trl_redis_shared_t  *sh;

    if (link == NULL || link->state != NGX_HTTP_TRL_LINK_ASKING) {
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

    sh = ngx_http_trl_redis_shared(link->conf);

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

    p = ngx_snprintf(link->name_buf, sizeof(link->name_buf), "%*s", len,
                     addr);
    link->name.data = link->name_buf;
    link->name.len = p - link->name_buf;

    ngx_http_trl_redis_connect_to(link);
}


static void
ngx_http_trl_redis_connect_to(ngx_http_trl_link_t *link)
{
    int                         i;
    char                        db[NGX_INT_T_LEN + 1];
    const char                 *argv[3];
    size_t                      argvlen[3];
    redisAsyncContext          *ac;
    ngx_http_trl_redis_conf_t  *rc;

    rc = link->conf;

    link->state = NGX_HTTP_TRL_LINK_DOWN;   /* until connecting */

    if (link->hooks && link->hooks->probe(link) != NGX_OK) {
        ngx_http_trl_redis_link_down(link, "cannot connect", "no memory");
        ngx_http_trl_redis_schedule(link);
        return;
    }

    ac = link->port ? redisAsyncConnect((char *) link->host, (int) link->port)
                    : redisAsyncConnectUnix((char *) link->host);

    if (ac == NULL) {
        ngx_http_trl_redis_link_down(link, "cannot connect", "no memory");
        ngx_http_trl_redis_schedule(link);
        return;
    }

    if (ac->err) {
        ngx_log_debug2(NGX_LOG_DEBUG_EVENT, link->log, 0,
                   "token_ratelimit: redis %V: down: cannot connect: %s",
                   &link->name, ac->errstr);

    ngx_http_trl_redis_link_down(link, "cannot connect", ac->errstr);
        redisAsyncFree(ac);
        ngx_http_trl_redis_schedule(link);
        return;
    }

    if (ngx_http_trl_redis_attach(ac, link->log) != NGX_OK) {
        ngx_http_trl_redis_link_down(link, "cannot connect",
                                     "no free connection");
        redisAsyncFree(ac);
        ngx_http_trl_redis_schedule(link);
        return;
    }

    ac->data = link;

    link->ac = ac;
    link->state = NGX_HTTP_TRL_LINK_CONNECTING;

    ngx_log_debug1(NGX_LOG_DEBUG_EVENT, link->log, 0,
                   "token_ratelimit: redis %V: connecting", &link->name);
    link->setup_left = 0;

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
    ngx_http_trl_link_t  *link = ac->data;

    if (status == REDIS_OK) {
        return;                             /* set-up replies follow */
    }

    if (link->state == NGX_HTTP_TRL_LINK_RETIRED) {
        link->ac = NULL;
        return;
    }

    /* hiredis frees the context once this returns */

    ngx_http_trl_redis_link_down(link, "cannot connect", ac->errstr);

    link->ac = NULL;
    link->state = NGX_HTTP_TRL_LINK_DOWN;

    if (link->watchdog.timer_set) {
        ngx_del_timer(&link->watchdog);
    }

    ngx_http_trl_redis_schedule(link);
}


static void
ngx_http_trl_redis_on_disconnect(const redisAsyncContext *ac, int status)
{
    ngx_http_trl_link_t  *link = ac->data;

    if (link->state == NGX_HTTP_TRL_LINK_RETIRED) {
        link->ac = NULL;
        return;
    }

    if (status != REDIS_OK) {
        ngx_log_debug2(NGX_LOG_DEBUG_EVENT, link->log, 0,
                       "token_ratelimit: redis %V: down: connection lost: %s",
                       &link->name, ac->errstr);

        ngx_http_trl_redis_link_down(link, "connection lost", ac->errstr);
    }

    link->ac = NULL;
    link->state = NGX_HTTP_TRL_LINK_DOWN;

    if (link->watchdog.timer_set) {
        ngx_del_timer(&link->watchdog);
    }

    ngx_http_trl_redis_schedule(link);
}


/* AUTH, SELECT and SCRIPT LOAD: the link serves once all have succeeded */

static void
ngx_http_trl_redis_setup(redisAsyncContext *ac, void *r, void *privdata)
{
    redisReply           *reply = r;
    ngx_http_trl_link_t  *link = ac->data;

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

    ngx_log_debug1(NGX_LOG_DEBUG_EVENT, link->log, 0,
                   "token_ratelimit: redis %V: ready", &link->name);

    ngx_http_trl_link_up(link);

    if (ngx_http_trl_ready_handler) {
        ngx_http_trl_ready_handler();
    }
}


/* Takes the link down: outstanding commands are answered with NULL. */

void
ngx_http_trl_link_fail(ngx_http_trl_link_t *link, const char *why,
    const char *detail)
{
    redisAsyncContext  *ac;

    ngx_log_debug3(NGX_LOG_DEBUG_EVENT, link->log, 0,
                   "token_ratelimit: redis %V: down: %s: %s", &link->name,
                   why, detail ? detail : "-");

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

    ngx_http_trl_redis_schedule(link);
}


static void
ngx_http_trl_redis_schedule(ngx_http_trl_link_t *link)
{
    ngx_msec_t  delay, cap;

    if (link->retry.timer_set || link->state == NGX_HTTP_TRL_LINK_RETIRED
        || ngx_exiting || ngx_quit || ngx_terminate)
    {
        return;
    }

    if (link->hooks) {
        link->hooks->down(link);        /* cluster=: the map may be stale */
    }

    /* half to all of the backoff, which doubles up to its cap */

    delay = link->backoff / 2 + (ngx_msec_t) ngx_random() % (link->backoff / 2
                                                              + 1);

    cap = (link->conf->sentinels || link->conf->cluster)
          ? NGX_HTTP_TRL_BACKOFF_ASK : NGX_HTTP_TRL_BACKOFF_MAX;

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

    if (link->ac || link->state != NGX_HTTP_TRL_LINK_DOWN) {
        return;
    }

    /*
     * Once another worker of the node has Redis serving again, this one
     * does not wait out the rest of its backoff.
     */

    sh = ngx_http_trl_redis_shared(link->conf);
    left = (ngx_msec_int_t) (link->retry_at - ngx_current_msec);

    if (left > 0 && !sh->up) {
        ngx_add_timer(&link->retry,
                      ngx_min((ngx_msec_t) left, NGX_HTTP_TRL_RETRY_LOOK));
        return;
    }

    ngx_http_trl_redis_connect(link);
}


void
ngx_http_trl_redis_on_ready(ngx_http_trl_ready_pt handler)
{
    ngx_http_trl_ready_handler = handler;
}


/*
 * The link is ready, or served a call: the node may be up again (with
 * cluster=, once every master's link of the worker is ready).
 */

void
ngx_http_trl_link_up(ngx_http_trl_link_t *link)
{
    if (link->hooks && !link->hooks->up(link)) {
        return;
    }

    ngx_http_trl_redis_link_up(link);
}


/*
 * Redis answered with an error (what: the call refused): it cannot serve
 * the module, the link goes down as if Redis were unreachable, and the
 * set-up with its probe tries again after the backoff.  The reason is the
 * first line of the error, bounded.
 */

void
ngx_http_trl_redis_refused(ngx_http_trl_link_t *link, const char *what,
    const char *reason, size_t len)
{
    u_char                        c, why[64];
    u_char                        detail[NGX_HTTP_TRL_REASON_MAX];
    size_t                        n;
    ngx_http_trl_redis_shared_t  *sh;

    sh = ngx_http_trl_redis_shared(link->conf);

    /*
     * cluster=: CLUSTERDOWN is the cluster's state (a master failed, the
     * others vote), not this node refusing the module: the link comes
     * back as soon as the cluster does, without the quiet time.
     */

    if (link->conf->cluster && len >= 11
        && ngx_strncmp(reason, "CLUSTERDOWN", 11) == 0)
    {
        ngx_sprintf(why, "%s refused%Z", what);
        ngx_http_trl_link_fail(link, (char *) why, "CLUSTERDOWN");
        return;
    }

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

    ngx_http_trl_link_fail(link, (char *) why, (char *) detail);
}


/* a good reply: the backoff starts afresh; the node may be up again */

void
ngx_http_trl_redis_served(ngx_http_trl_link_t *link)
{
    ngx_http_trl_redis_shared_t  *sh;

    if (link->refused) {
        link->refused = 0;
        link->backoff = NGX_HTTP_TRL_BACKOFF_MIN;
    }

    sh = ngx_http_trl_redis_shared(link->conf);

    if (!sh->up) {
        ngx_http_trl_link_up(link);
    }
}


static void
ngx_http_trl_redis_quiet(ngx_event_t *ev)
{
    ngx_http_trl_link_t  *link = ev->data;

    if (link->state == NGX_HTTP_TRL_LINK_READY) {
        ngx_http_trl_link_up(link);
    }
}


/* the watchdog: the connect, or the oldest outstanding command, is late */

void
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
        ngx_http_trl_link_fail(link, "cannot connect", "timed out");
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

    ngx_log_debug2(NGX_LOG_DEBUG_EVENT, link->log, 0,
                   "token_ratelimit: redis %V: script %ui past its deadline",
                   &link->name, cmd->script);

    ngx_http_trl_link_fail(link, "no answer", "timed out");
}
