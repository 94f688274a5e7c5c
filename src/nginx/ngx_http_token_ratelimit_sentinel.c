
/*
 * ngx_http_token_ratelimit_sentinel.c - finds the master of
 * "token_ratelimit_redis sentinel=... master=NAME" for a worker's link:
 * asks the sentinels in turn "SENTINEL get-master-addr-by-name NAME", each
 * over its own short hiredis async connection on nginx's event loop, with
 * the link's timeout for the connect and the answer.  The sentinel that
 * answered is asked first the next time (the Sentinel client guidelines).
 * The link asks again before every connection it makes, so a failover is
 * followed as soon as the old master fails, refuses a write (READONLY) or
 * says it is no master (ROLE).
 */


#include "ngx_http_token_ratelimit.h"
#include "ngx_http_token_ratelimit_redis.h"


typedef struct {
    ngx_http_trl_redis_conf_t   *conf;
    ngx_log_t                   *log;
    ngx_http_trl_master_pt       handler;
    redisAsyncContext           *ac;         /* the sentinel asked now */
    ngx_uint_t                   first;      /* the one that answered */
    ngx_uint_t                   next;
    ngx_uint_t                   tried;
    ngx_event_t                  timer;      /* deadline, or next try */
    u_char                       host[NGX_SOCKADDR_STRLEN + 1];
    u_char                       err[128];
} ngx_http_trl_sentinel_t;


static void ngx_http_trl_sentinel_try(ngx_http_trl_sentinel_t *q);
static void ngx_http_trl_sentinel_failed(ngx_http_trl_sentinel_t *q,
    ngx_uint_t inside, const char *fmt, const char *detail);
static void ngx_http_trl_sentinel_timer(ngx_event_t *ev);
static void ngx_http_trl_sentinel_on_connect(const redisAsyncContext *ac,
    int status);
static void ngx_http_trl_sentinel_on_disconnect(const redisAsyncContext *ac,
    int status);
static void ngx_http_trl_sentinel_reply(redisAsyncContext *ac, void *r,
    void *privdata);
static void ngx_http_trl_sentinel_add_read(void *privdata);
static void ngx_http_trl_sentinel_del_read(void *privdata);
static void ngx_http_trl_sentinel_add_write(void *privdata);
static void ngx_http_trl_sentinel_del_write(void *privdata);
static void ngx_http_trl_sentinel_cleanup(void *privdata);
static void ngx_http_trl_sentinel_read_handler(ngx_event_t *ev);
static void ngx_http_trl_sentinel_write_handler(ngx_event_t *ev);


static ngx_http_trl_sentinel_t  ngx_http_trl_sentinel;


/*
 * Asks the sentinels for the master; the handler is called once, with the
 * master's numeric address, or with an error when no sentinel told it.
 */

void
ngx_http_trl_sentinel_ask(ngx_http_trl_redis_conf_t *rc, ngx_log_t *log,
    ngx_http_trl_master_pt handler)
{
    ngx_http_trl_sentinel_t  *q = &ngx_http_trl_sentinel;

    if (q->conf == NULL) {
        q->timer.handler = ngx_http_trl_sentinel_timer;
        q->timer.data = q;
        q->timer.cancelable = 1;
    }

    q->conf = rc;
    q->log = log;
    q->timer.log = log;
    q->handler = handler;
    q->tried = 0;
    q->next = q->first;
    q->err[0] = '\0';

    ngx_http_trl_sentinel_try(q);
}


void
ngx_http_trl_sentinel_exit(void)
{
    redisAsyncContext        *ac;
    ngx_http_trl_sentinel_t  *q = &ngx_http_trl_sentinel;

    if (q->timer.timer_set) {
        ngx_del_timer(&q->timer);
    }

    q->handler = NULL;
    ac = q->ac;
    q->ac = NULL;

    if (ac) {
        redisAsyncFree(ac);
    }
}


static void
ngx_http_trl_sentinel_try(ngx_http_trl_sentinel_t *q)
{
    const char                 *argv[3];
    size_t                      argvlen[3];
    ngx_connection_t           *c;
    redisAsyncContext          *ac;
    ngx_http_trl_master_pt      handler;
    ngx_http_trl_redis_addr_t  *sa;

    if (q->tried == q->conf->sentinels->nelts) {
        handler = q->handler;
        q->handler = NULL;

        if (handler) {
            handler(NULL, 0, (char *) q->err);
        }

        return;
    }

    sa = q->conf->sentinels->elts;
    sa = &sa[q->next % q->conf->sentinels->nelts];

    ac = sa->port ? redisAsyncConnect((char *) sa->host.data, (int) sa->port)
                  : redisAsyncConnectUnix((char *) sa->host.data);

    if (ac == NULL || ac->err) {
        if (ac) {
            redisAsyncFree(ac);
        }

        ngx_http_trl_sentinel_failed(q, 0, "cannot connect", NULL);
        return;
    }

    c = ngx_get_connection(ac->c.fd, q->log);
    if (c == NULL) {
        redisAsyncFree(ac);
        ngx_http_trl_sentinel_failed(q, 0, "no free connection", NULL);
        return;
    }

    c->data = ac;
    c->log = q->log;
    c->read->log = q->log;
    c->write->log = q->log;
    c->read->handler = ngx_http_trl_sentinel_read_handler;
    c->write->handler = ngx_http_trl_sentinel_write_handler;

    q->ac = ac;

    ac->ev.data = c;
    ac->ev.addRead = ngx_http_trl_sentinel_add_read;
    ac->ev.delRead = ngx_http_trl_sentinel_del_read;
    ac->ev.addWrite = ngx_http_trl_sentinel_add_write;
    ac->ev.delWrite = ngx_http_trl_sentinel_del_write;
    ac->ev.cleanup = ngx_http_trl_sentinel_cleanup;

    redisAsyncSetConnectCallback(ac, ngx_http_trl_sentinel_on_connect);
    redisAsyncSetDisconnectCallback(ac, ngx_http_trl_sentinel_on_disconnect);

    if (q->conf->sentinel_password.len) {
        argv[0] = "AUTH";
        argvlen[0] = 4;
        argv[1] = (char *) q->conf->sentinel_password.data;
        argvlen[1] = q->conf->sentinel_password.len;

        redisAsyncCommandArgv(ac, ngx_http_trl_sentinel_reply, "AUTH", 2,
                              argv, argvlen);
    }

    argv[0] = "SENTINEL";
    argvlen[0] = 8;
    argv[1] = "get-master-addr-by-name";
    argvlen[1] = sizeof("get-master-addr-by-name") - 1;
    argv[2] = (char *) q->conf->master.data;
    argvlen[2] = q->conf->master.len;

    redisAsyncCommandArgv(ac, ngx_http_trl_sentinel_reply, NULL, 3, argv,
                          argvlen);

    if (q->timer.timer_set) {
        ngx_del_timer(&q->timer);
    }

    ngx_add_timer(&q->timer, ngx_max(q->conf->timeout, 100));
}


/*
 * This sentinel did not tell: the next one is asked (from a hiredis
 * callback, inside, once it has returned).
 */

static void
ngx_http_trl_sentinel_failed(ngx_http_trl_sentinel_t *q, ngx_uint_t inside,
    const char *why, const char *detail)
{
    u_char                     *p;
    redisAsyncContext          *ac;
    ngx_http_trl_redis_addr_t  *sa;

    sa = q->conf->sentinels->elts;
    sa = &sa[q->next % q->conf->sentinels->nelts];

    p = ngx_snprintf(q->err, sizeof(q->err) - 1, "sentinel %V: %s%s%s",
                     &sa->text, why, detail ? ": " : "",
                     detail ? detail : "");
    *p = '\0';

    ac = q->ac;
    q->ac = NULL;

    if (ac) {
        redisAsyncFree(ac);             /* inside a callback: on return */
    }

    q->next++;
    q->tried++;

    if (q->timer.timer_set) {
        ngx_del_timer(&q->timer);
    }

    if (inside) {
        ngx_add_timer(&q->timer, 1);
        return;
    }

    ngx_http_trl_sentinel_try(q);
}


static void
ngx_http_trl_sentinel_timer(ngx_event_t *ev)
{
    ngx_http_trl_sentinel_t  *q = ev->data;

    if (q->handler == NULL) {
        return;
    }

    if (q->ac) {
        ngx_http_trl_sentinel_failed(q, 0, "timed out", NULL);
        return;
    }

    ngx_http_trl_sentinel_try(q);
}


static void
ngx_http_trl_sentinel_on_connect(const redisAsyncContext *ac, int status)
{
    ngx_http_trl_sentinel_t  *q = &ngx_http_trl_sentinel;

    if (status == REDIS_OK || q->ac != ac) {
        return;
    }

    q->ac = NULL;                           /* hiredis frees it */
    ngx_http_trl_sentinel_failed(q, 1, "cannot connect", ac->errstr);
}


static void
ngx_http_trl_sentinel_on_disconnect(const redisAsyncContext *ac, int status)
{
    ngx_http_trl_sentinel_t  *q = &ngx_http_trl_sentinel;

    if (q->ac != ac) {
        return;                             /* freed by us */
    }

    q->ac = NULL;
    ngx_http_trl_sentinel_failed(q, 1, "connection lost", ac->errstr);
}


static void
ngx_http_trl_sentinel_reply(redisAsyncContext *ac, void *r, void *privdata)
{
    u_char                   *p;
    size_t                    len;
    ngx_int_t                 port;
    redisReply               *reply = r, *h, *pt;
    ngx_http_trl_master_pt    handler;
    ngx_http_trl_sentinel_t  *q = &ngx_http_trl_sentinel;

    if (reply == NULL || q->ac != ac) {
        return;
    }

    if (reply->type == REDIS_REPLY_ERROR) {
        ngx_http_trl_sentinel_failed(q, 1,
                                     privdata ? "AUTH refused" : "refused",
                                     reply->str);
        return;
    }

    if (privdata) {
        return;                             /* AUTH */
    }

    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2) {
        ngx_http_trl_sentinel_failed(q, 1, "does not know the master",
                                     (char *) q->conf->master.data);
        return;
    }

    h = reply->element[0];
    pt = reply->element[1];

    if (h->type != REDIS_REPLY_STRING || pt->type != REDIS_REPLY_STRING
        || h->len == 0 || h->len > NGX_SOCKADDR_STRLEN)
    {
        ngx_http_trl_sentinel_failed(q, 1, "unexpected answer", NULL);
        return;
    }

    port = ngx_atoi((u_char *) pt->str, pt->len);
    len = h->len;
    p = (u_char *) h->str;

    /* numeric only: a worker never resolves a name */

    if (port < 1 || port > 65535
        || (ngx_inet_addr(p, len) == INADDR_NONE
#if (NGX_HAVE_INET6)
            && ngx_inet6_addr(p, len, q->host) != NGX_OK
#endif
           ))
    {
        ngx_http_trl_sentinel_failed(q, 1, "not a numeric address",
                                     h->str);
        return;
    }

    ngx_memcpy(q->host, p, len);
    q->host[len] = '\0';

    q->first = q->next % q->conf->sentinels->nelts;

    q->ac = NULL;
    redisAsyncFree(ac);                     /* once this returns */

    if (q->timer.timer_set) {
        ngx_del_timer(&q->timer);
    }

    handler = q->handler;
    q->handler = NULL;

    if (handler) {
        handler(q->host, (ngx_uint_t) port, NULL);
    }
}


/* hiredis' event hooks, on nginx events; privdata is the connection */

static void
ngx_http_trl_sentinel_add_read(void *privdata)
{
    ngx_connection_t  *c = privdata;

    if (!c->read->active) {
        (void) ngx_add_event(c->read, NGX_READ_EVENT, NGX_LEVEL_EVENT);
    }
}


static void
ngx_http_trl_sentinel_del_read(void *privdata)
{
    ngx_connection_t  *c = privdata;

    if (c->read->active) {
        (void) ngx_del_event(c->read, NGX_READ_EVENT, 0);
    }
}


static void
ngx_http_trl_sentinel_add_write(void *privdata)
{
    ngx_connection_t  *c = privdata;

    if (!c->write->active) {
        (void) ngx_add_event(c->write, NGX_WRITE_EVENT, NGX_LEVEL_EVENT);
    }
}


static void
ngx_http_trl_sentinel_del_write(void *privdata)
{
    ngx_connection_t  *c = privdata;

    if (c->write->active) {
        (void) ngx_del_event(c->write, NGX_WRITE_EVENT, 0);
    }
}


static void
ngx_http_trl_sentinel_cleanup(void *privdata)
{
    ngx_connection_t  *c = privdata;

    ngx_http_trl_sentinel_del_read(c);
    ngx_http_trl_sentinel_del_write(c);

    if (c->read->posted) {
        ngx_delete_posted_event(c->read);
    }

    if (c->write->posted) {
        ngx_delete_posted_event(c->write);
    }

    ngx_free_connection(c);

    c->fd = (ngx_socket_t) -1;              /* hiredis closes it */
}


static void
ngx_http_trl_sentinel_read_handler(ngx_event_t *ev)
{
    ngx_connection_t  *c = ev->data;

    redisAsyncHandleRead(c->data);
}


static void
ngx_http_trl_sentinel_write_handler(ngx_event_t *ev)
{
    ngx_connection_t  *c = ev->data;

    redisAsyncHandleWrite(c->data);
}
