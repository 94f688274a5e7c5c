
/*
 * ngx_http_token_ratelimit_redis_event.c - a hiredis async context on
 * nginx's event loop: its socket as an nginx connection whose read and
 * write events (level-triggered) drive hiredis, for the links and the
 * asker alike (the adapters of hiredis, written for nginx).
 */


#include "ngx_http_token_ratelimit_redis_link.h"


static void ngx_http_trl_redis_add_read(void *privdata);
static void ngx_http_trl_redis_del_read(void *privdata);
static void ngx_http_trl_redis_add_write(void *privdata);
static void ngx_http_trl_redis_del_write(void *privdata);
static void ngx_http_trl_redis_cleanup(void *privdata);
static void ngx_http_trl_redis_read_handler(ngx_event_t *ev);
static void ngx_http_trl_redis_write_handler(ngx_event_t *ev);


/* NGX_ERROR: no free connection (the caller frees the context) */

ngx_int_t
ngx_http_trl_redis_attach(redisAsyncContext *ac, ngx_log_t *log)
{
    ngx_connection_t  *c;

    c = ngx_get_connection(ac->c.fd, log);
    if (c == NULL) {
        return NGX_ERROR;
    }

    c->data = ac;
    c->log = log;
    c->read->log = log;
    c->write->log = log;
    c->read->handler = ngx_http_trl_redis_read_handler;
    c->write->handler = ngx_http_trl_redis_write_handler;

    ac->ev.data = c;
    ac->ev.addRead = ngx_http_trl_redis_add_read;
    ac->ev.delRead = ngx_http_trl_redis_del_read;
    ac->ev.addWrite = ngx_http_trl_redis_add_write;
    ac->ev.delWrite = ngx_http_trl_redis_del_write;
    ac->ev.cleanup = ngx_http_trl_redis_cleanup;

    return NGX_OK;
}


static void
ngx_http_trl_redis_add_read(void *privdata)
{
    ngx_connection_t  *c = privdata;

    if (!c->read->active) {
        (void) ngx_add_event(c->read, NGX_READ_EVENT, NGX_LEVEL_EVENT);
    }
}


static void
ngx_http_trl_redis_del_read(void *privdata)
{
    ngx_connection_t  *c = privdata;

    if (c->read->active) {
        (void) ngx_del_event(c->read, NGX_READ_EVENT, 0);
    }
}


static void
ngx_http_trl_redis_add_write(void *privdata)
{
    ngx_connection_t  *c = privdata;

    if (!c->write->active) {
        (void) ngx_add_event(c->write, NGX_WRITE_EVENT, NGX_LEVEL_EVENT);
    }
}


static void
ngx_http_trl_redis_del_write(void *privdata)
{
    ngx_connection_t  *c = privdata;

    if (c->write->active) {
        (void) ngx_del_event(c->write, NGX_WRITE_EVENT, 0);
    }
}


/* hiredis frees the context (and closes the socket) after this */

static void
ngx_http_trl_redis_cleanup(void *privdata)
{
    ngx_connection_t  *c = privdata;

    ngx_http_trl_redis_del_read(c);
    ngx_http_trl_redis_del_write(c);

    if (c->read->posted) {
        ngx_delete_posted_event(c->read);
    }

    if (c->write->posted) {
        ngx_delete_posted_event(c->write);
    }

    ngx_free_connection(c);

    /* hiredis closes the socket; the exiting worker checks it is gone */

    c->fd = (ngx_socket_t) -1;
}


static void
ngx_http_trl_redis_read_handler(ngx_event_t *ev)
{
    ngx_connection_t  *c = ev->data;

    redisAsyncHandleRead(c->data);
}


static void
ngx_http_trl_redis_write_handler(ngx_event_t *ev)
{
    ngx_connection_t  *c = ev->data;

    redisAsyncHandleWrite(c->data);
}
