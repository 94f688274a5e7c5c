
/*
 * ngx_http_token_ratelimit_redis_ask.c - the asker: puts one question to
 * the servers of a list in turn (the sentinels for their master, the
 * cluster's nodes for the slot map), each over its own short hiredis async
 * connection on nginx's event loop, with a deadline for the connect and
 * the answer.  The server that answered is asked first the next time (the
 * Sentinel client guidelines).  Never blocks: addresses are numeric.
 */


#include "ngx_http_token_ratelimit_redis_link.h"


static void ngx_http_trl_asker_try(ngx_http_trl_asker_t *q);
static void ngx_http_trl_asker_failed(ngx_http_trl_asker_t *q,
    ngx_uint_t inside, const char *why, const char *detail);
static void ngx_http_trl_asker_timer(ngx_event_t *ev);
static void ngx_http_trl_asker_on_connect(const redisAsyncContext *ac,
    int status);
static void ngx_http_trl_asker_on_disconnect(const redisAsyncContext *ac,
    int status);
static void ngx_http_trl_asker_reply(redisAsyncContext *ac, void *r,
    void *privdata);
static void ngx_http_trl_asker_add_read(void *privdata);
static void ngx_http_trl_asker_del_read(void *privdata);
static void ngx_http_trl_asker_add_write(void *privdata);
static void ngx_http_trl_asker_del_write(void *privdata);
static void ngx_http_trl_asker_cleanup(void *privdata);
static void ngx_http_trl_asker_read_handler(ngx_event_t *ev);
static void ngx_http_trl_asker_write_handler(ngx_event_t *ev);


static u_char  ngx_http_trl_asker_auth;     /* AUTH's privdata */


void
ngx_http_trl_asker_start(ngx_http_trl_asker_t *q)
{
    q->timer.handler = ngx_http_trl_asker_timer;
    q->timer.data = q;
    q->timer.log = q->log;
    q->timer.cancelable = 1;

    q->busy = 1;
    q->tried = 0;
    q->next = q->first;
    q->err[0] = '\0';

    ngx_http_trl_asker_try(q);
}


void
ngx_http_trl_asker_stop(ngx_http_trl_asker_t *q)
{
    redisAsyncContext  *ac;

    if (q->timer.timer_set) {
        ngx_del_timer(&q->timer);
    }

    q->busy = 0;
    ac = q->ac;
    q->ac = NULL;

    if (ac) {
        redisAsyncFree(ac);
    }
}


static void
ngx_http_trl_asker_try(ngx_http_trl_asker_t *q)
{
    const char                 *argv[2];
    size_t                      argvlen[2];
    ngx_connection_t           *c;
    redisAsyncContext          *ac;
    ngx_http_trl_redis_addr_t  *sa;

    if (q->tried == q->nservers) {
        q->busy = 0;
        q->done(q, (char *) q->err);
        return;
    }

    sa = &q->servers[q->next % q->nservers];

    ac = sa->port ? redisAsyncConnect((char *) sa->host.data, (int) sa->port)
                  : redisAsyncConnectUnix((char *) sa->host.data);

    if (ac == NULL || ac->err) {
        if (ac) {
            redisAsyncFree(ac);
        }

        ngx_http_trl_asker_failed(q, 0, "cannot connect", NULL);
        return;
    }

    c = ngx_get_connection(ac->c.fd, q->log);
    if (c == NULL) {
        redisAsyncFree(ac);
        ngx_http_trl_asker_failed(q, 0, "no free connection", NULL);
        return;
    }

    c->data = ac;
    c->log = q->log;
    c->read->log = q->log;
    c->write->log = q->log;
    c->read->handler = ngx_http_trl_asker_read_handler;
    c->write->handler = ngx_http_trl_asker_write_handler;

    q->ac = ac;

    ac->data = q;
    ac->ev.data = c;
    ac->ev.addRead = ngx_http_trl_asker_add_read;
    ac->ev.delRead = ngx_http_trl_asker_del_read;
    ac->ev.addWrite = ngx_http_trl_asker_add_write;
    ac->ev.delWrite = ngx_http_trl_asker_del_write;
    ac->ev.cleanup = ngx_http_trl_asker_cleanup;

    redisAsyncSetConnectCallback(ac, ngx_http_trl_asker_on_connect);
    redisAsyncSetDisconnectCallback(ac, ngx_http_trl_asker_on_disconnect);

    if (q->password.len) {
        argv[0] = "AUTH";
        argvlen[0] = 4;
        argv[1] = (char *) q->password.data;
        argvlen[1] = q->password.len;

        redisAsyncCommandArgv(ac, ngx_http_trl_asker_reply,
                              &ngx_http_trl_asker_auth, 2, argv, argvlen);
    }

    redisAsyncCommandArgv(ac, ngx_http_trl_asker_reply, NULL, (int) q->argc,
                          q->argv, q->argvlen);

    if (q->timer.timer_set) {
        ngx_del_timer(&q->timer);
    }

    ngx_add_timer(&q->timer, ngx_max(q->timeout, 100));
}


/*
 * This server did not tell: the next one is asked (from a hiredis
 * callback, inside, once it has returned).
 */

static void
ngx_http_trl_asker_failed(ngx_http_trl_asker_t *q, ngx_uint_t inside,
    const char *why, const char *detail)
{
    u_char                     *p;
    redisAsyncContext          *ac;
    ngx_http_trl_redis_addr_t  *sa;

    sa = &q->servers[q->next % q->nservers];

    p = ngx_snprintf(q->err, sizeof(q->err) - 1, "%s %V: %s%s%s", q->what,
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

    ngx_http_trl_asker_try(q);
}


static void
ngx_http_trl_asker_timer(ngx_event_t *ev)
{
    ngx_http_trl_asker_t  *q = ev->data;

    if (!q->busy) {
        return;
    }

    if (q->ac) {
        ngx_http_trl_asker_failed(q, 0, "timed out", NULL);
        return;
    }

    ngx_http_trl_asker_try(q);
}


static void
ngx_http_trl_asker_on_connect(const redisAsyncContext *ac, int status)
{
    ngx_http_trl_asker_t  *q = ac->data;

    if (status == REDIS_OK || q->ac != ac) {
        return;
    }

    q->ac = NULL;                           /* hiredis frees it */
    ngx_http_trl_asker_failed(q, 1, "cannot connect", ac->errstr);
}


static void
ngx_http_trl_asker_on_disconnect(const redisAsyncContext *ac, int status)
{
    ngx_http_trl_asker_t  *q = ac->data;

    if (q->ac != ac) {
        return;                             /* freed by us */
    }

    q->ac = NULL;
    ngx_http_trl_asker_failed(q, 1, "connection lost", ac->errstr);
}


static void
ngx_http_trl_asker_reply(redisAsyncContext *ac, void *r, void *privdata)
{
    const char            *err;
    redisReply            *reply = r;
    ngx_http_trl_asker_t  *q = ac->data;

    if (reply == NULL || q->ac != ac) {
        return;
    }

    if (reply->type == REDIS_REPLY_ERROR) {
        ngx_http_trl_asker_failed(q, 1, privdata ? "AUTH refused" : "refused",
                                  reply->str);
        return;
    }

    if (privdata) {
        return;                             /* AUTH */
    }

    err = q->read(q, reply);

    if (err) {
        ngx_http_trl_asker_failed(q, 1, err, NULL);
        return;
    }

    q->first = q->next % q->nservers;

    q->ac = NULL;
    redisAsyncFree(ac);                     /* once this returns */

    if (q->timer.timer_set) {
        ngx_del_timer(&q->timer);
    }

    q->busy = 0;
    q->done(q, NULL);
}


/* hiredis' event hooks, on nginx events; privdata is the connection */

static void
ngx_http_trl_asker_add_read(void *privdata)
{
    ngx_connection_t  *c = privdata;

    if (!c->read->active) {
        (void) ngx_add_event(c->read, NGX_READ_EVENT, NGX_LEVEL_EVENT);
    }
}


static void
ngx_http_trl_asker_del_read(void *privdata)
{
    ngx_connection_t  *c = privdata;

    if (c->read->active) {
        (void) ngx_del_event(c->read, NGX_READ_EVENT, 0);
    }
}


static void
ngx_http_trl_asker_add_write(void *privdata)
{
    ngx_connection_t  *c = privdata;

    if (!c->write->active) {
        (void) ngx_add_event(c->write, NGX_WRITE_EVENT, NGX_LEVEL_EVENT);
    }
}


static void
ngx_http_trl_asker_del_write(void *privdata)
{
    ngx_connection_t  *c = privdata;

    if (c->write->active) {
        (void) ngx_del_event(c->write, NGX_WRITE_EVENT, 0);
    }
}


static void
ngx_http_trl_asker_cleanup(void *privdata)
{
    ngx_connection_t  *c = privdata;

    ngx_http_trl_asker_del_read(c);
    ngx_http_trl_asker_del_write(c);

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
ngx_http_trl_asker_read_handler(ngx_event_t *ev)
{
    ngx_connection_t  *c = ev->data;

    redisAsyncHandleRead(c->data);
}


static void
ngx_http_trl_asker_write_handler(ngx_event_t *ev)
{
    ngx_connection_t  *c = ev->data;

    redisAsyncHandleWrite(c->data);
}
