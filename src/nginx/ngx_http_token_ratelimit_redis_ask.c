
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

    if (ngx_http_trl_redis_attach(ac, q->log) != NGX_OK) {
        redisAsyncFree(ac);
        ngx_http_trl_asker_failed(q, 0, "no free connection", NULL);
        return;
    }

    ac->data = q;
    q->ac = ac;

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


/* an address a worker may connect to: numeric, never a name to resolve */

ngx_uint_t
ngx_http_trl_redis_numeric(u_char *host, size_t len)
{
#if (NGX_HAVE_INET6)
    u_char  buf[16];
#endif

    if (len == 0 || len > NGX_SOCKADDR_STRLEN) {
        return 0;
    }

    if (ngx_inet_addr(host, len) != INADDR_NONE) {
        return 1;
    }

#if (NGX_HAVE_INET6)
    if (ngx_inet6_addr(host, len, buf) == NGX_OK) {
        return 1;
    }
#endif

    return 0;
}
