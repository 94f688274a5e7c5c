
/*
 * ngx_http_token_ratelimit_sync_strict.c - a request waits for Redis.
 *
 * Strict zones: Redis decides each request in one script.  Async zones: a
 * request the node cannot decide asks Redis (sync_asks.c).  Either way the
 * request waits without blocking the worker: the handler returns
 * NGX_AGAIN and is run again when the answers are in, or the timeout
 * passed; it then takes the answers into the zones itself (the end of
 * handler.c), through ngx_http_trl_strict_over() and _answer().  The
 * state of such a wait lives outside the request pool, so that answers
 * arriving after the request is gone find it, and give back places Redis
 * counted for nothing.
 */


#include "ngx_http_token_ratelimit_sync.h"


struct ngx_http_trl_wait_s {
    ngx_http_request_t          *request;    /* NULL once it is gone */
    ngx_uint_t                   refs;       /* request + unanswered */
    ngx_uint_t                   unanswered;
    ngx_uint_t                   timed_out;
    ngx_event_t                  timer;
    ngx_event_t                  resume;
    ngx_uint_t                   n;
    ngx_http_trl_ask_t          *asks;       /* per applied zone */
};


static ngx_int_t ngx_http_trl_strict_send(ngx_http_trl_loc_conf_t *tlcf,
    ngx_http_trl_applied_t *a, ngx_http_trl_ask_t *ask);
static void ngx_http_trl_strict_reply(redisReply *reply, void *data);
static void ngx_http_trl_ask_done(ngx_http_trl_ask_t *ask);
static void ngx_http_trl_strict_timeout(ngx_event_t *ev);
static void ngx_http_trl_strict_resume(ngx_event_t *ev);
static void ngx_http_trl_strict_cleanup(void *data);
static void ngx_http_trl_wait_unref(ngx_http_trl_wait_t *wait);
static void ngx_http_trl_release_name(ngx_str_t *name, int64_t cell);


/*
 * Asks Redis for every zone of the request that Redis decides (a->strict).
 * Returns NGX_AGAIN when the request is to wait, NGX_OK when no question
 * could be sent (the handler decides them by the fail policy at once; with
 * no memory for the wait, ctx->wait stays NULL and the zones pass).
 */

ngx_int_t
ngx_http_trl_strict_start(ngx_http_request_t *r,
    ngx_http_trl_loc_conf_t *tlcf, ngx_http_trl_ctx_t *ctx)
{
    ngx_uint_t                  i;
    ngx_pool_cleanup_t         *cln;
    ngx_http_trl_ask_t         *ask;
    ngx_http_trl_wait_t        *wait;
    ngx_http_trl_applied_t     *a;

    wait = ngx_calloc(sizeof(ngx_http_trl_wait_t)
                      + ctx->napplied * sizeof(ngx_http_trl_ask_t),
                      r->connection->log);
    if (wait == NULL) {
        return NGX_OK;                      /* decided without the zones */
    }

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        ngx_free(wait);
        return NGX_OK;
    }

    wait->request = r;
    wait->refs = 1;
    wait->n = ctx->napplied;
    wait->asks = (ngx_http_trl_ask_t *) (wait + 1);

    cln->handler = ngx_http_trl_strict_cleanup;
    cln->data = wait;

    ctx->wait = wait;

    for (i = 0; i < ctx->napplied; i++) {
        a = &ctx->applied[i];
        ask = &wait->asks[i];
        ask->wait = wait;
        ask->done = ngx_http_trl_ask_done;

        if (!a->strict) {
            continue;
        }

        ask->state = NGX_HTTP_TRL_ASK_FAILED;
        ask->answer.async = a->ask;

        /* the name outlives the request: a late answer may need it */

        if (ngx_http_trl_redis_name(NULL, a->zone, &a->key_text, &ask->name)
            != NGX_OK)
        {
            continue;
        }

        ask->slot = ngx_http_trl_redis_slot(&ask->name);

        if (ask->answer.async) {
            ask->zone = a->zone;
            ask->limit = a->n;
            ngx_http_trl_ask_queue(ask);

        } else if (ngx_http_trl_slots(a->zone)) {
            if (ngx_http_trl_distinct_send(a, ask) != NGX_OK) {
                continue;
            }

        } else if (ngx_http_trl_strict_send(tlcf, a, ask) != NGX_OK) {
            continue;
        }

        ask->state = NGX_HTTP_TRL_ASK_SENT;
        wait->unanswered++;
        wait->refs++;
    }

    if (wait->unanswered == 0) {
        return NGX_OK;
    }

    wait->timer.handler = ngx_http_trl_strict_timeout;
    wait->timer.data = wait;
    wait->timer.log = r->connection->log;

    wait->resume.handler = ngx_http_trl_strict_resume;
    wait->resume.data = wait;
    wait->resume.log = r->connection->log;

    ngx_add_timer(&wait->timer, ngx_http_trl_redis_conf()->timeout);

    /* a client that goes away meanwhile ends the request */

    r->read_event_handler = ngx_http_test_reading;
    r->write_event_handler = ngx_http_request_empty_handler;

    return NGX_AGAIN;
}


static ngx_int_t
ngx_http_trl_strict_send(ngx_http_trl_loc_conf_t *tlcf,
    ngx_http_trl_applied_t *a, ngx_http_trl_ask_t *ask)
{
    char                        buf[TRL_STRICT_BUF];
    trl_argv_t                  argv;
    trl_bytes_t                 args[TRL_STRICT_ARGS], name;
    trl_penalty_t               penalty;
    trl_script_zone_t           sz;
    ngx_http_trl_redis_conf_t  *rc;

    rc = ngx_http_trl_redis_conf();

    name.data = (const char *) ask->name.data;
    name.len = ask->name.len;

    ngx_http_trl_script_zone(a->zone, &sz);
    trl_argv_init(&argv, args, TRL_STRICT_ARGS, buf, sizeof(buf));

    /* the request's N and penalty level (reputation) */

    sz.limit = a->n;
    penalty = a->limit->penalty;
    penalty.level = a->level;

    if (trl_strict_encode(&sz, &penalty,
                          tlcf->dry_run || a->limit->dry_run, &name, &argv)
        != TRL_OK
        || ngx_http_trl_script_eval(TRL_SCRIPT_STRICT, 1, &argv, rc->timeout,
                                    ngx_http_trl_strict_reply, ask)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    trl_zone_sync_add(a->zone->core, TRL_SYNC_STRICT, 1);

    return NGX_OK;
}


static void
ngx_http_trl_strict_reply(redisReply *reply, void *data)
{
    ngx_http_trl_ask_t *ask = data;

    ask->state = NGX_HTTP_TRL_ASK_FAILED;

    if (reply && reply->type == REDIS_REPLY_STRING) {
        if (trl_strict_decode(reply->str, reply->len, &ask->answer.strict)
            == TRL_OK)
        {
            ask->state = NGX_HTTP_TRL_ASK_ANSWERED;

        } else {
            ngx_http_trl_redis_unexpected(TRL_SCRIPT_STRICT);
        }

    } else if (reply && reply->type != REDIS_REPLY_ERROR) {
        ngx_http_trl_redis_unexpected(TRL_SCRIPT_STRICT);
    }

    ngx_http_trl_ask_done(ask);
}


/* An answer is in (or failed): the wait goes on once all are. */

static void
ngx_http_trl_ask_done(ngx_http_trl_ask_t *ask)
{
    int64_t               cell;
    ngx_uint_t            admitted;
    ngx_http_trl_wait_t  *wait;

    wait = ask->wait;

    wait->unanswered--;

    /* Redis counted a place that nobody will use: give it back */

    if (ask->answer.distinct) {
        admitted = ask->answer.dreply.admitted && ask->answer.dreply.made;
        cell = 0;

    } else if (ask->answer.async) {
        admitted = ask->answer.ask.reply.admitted;
        cell = (int64_t) ask->answer.ask.cell;

    } else {
        admitted = ask->answer.strict.reply.admitted;
        cell = (int64_t) ask->answer.strict.cell;
    }

    if ((wait->request == NULL || ask->abandoned)
        && ask->state == NGX_HTTP_TRL_ASK_ANSWERED && admitted)
    {
        if (ask->answer.distinct) {
            ngx_http_trl_distinct_give_back(&ask->name, &ask->answer.dreq,
                                            ask->answer.dreply.stamp_ms);

        } else {
            ngx_http_trl_release_name(&ask->name, cell);
        }
    }

    if (wait->request && !ask->abandoned && wait->unanswered == 0
        && !wait->resume.posted)
    {
        ngx_post_event(&wait->resume, &ngx_posted_events);
    }

    ngx_http_trl_wait_unref(wait);
}


static void
ngx_http_trl_strict_timeout(ngx_event_t *ev)
{
    ngx_http_trl_wait_t  *wait = ev->data;

    wait->timed_out = 1;

    if (!wait->resume.posted) {
        ngx_post_event(&wait->resume, &ngx_posted_events);
    }
}


static void
ngx_http_trl_strict_resume(ngx_event_t *ev)
{
    ngx_connection_t     *c;
    ngx_http_request_t   *r;
    ngx_http_trl_wait_t  *wait = ev->data;

    r = wait->request;

    if (r == NULL) {
        return;
    }

    c = r->connection;

    r->read_event_handler = ngx_http_block_reading;
    r->write_event_handler = ngx_http_core_run_phases;

    ngx_http_core_run_phases(r);
    ngx_http_run_posted_requests(c);
}


/*
 * Back in the handler: NGX_AGAIN while answers are due and the timeout has
 * not passed; else the wait is over (NGX_OK) and the answers are read with
 * ngx_http_trl_strict_answer().
 */

ngx_int_t
ngx_http_trl_strict_over(ngx_http_request_t *r, ngx_http_trl_wait_t *wait)
{
    if (wait->unanswered && !wait->timed_out) {
        return NGX_AGAIN;
    }

    if (wait->timer.timer_set) {
        ngx_del_timer(&wait->timer);
    }

    r->read_event_handler = ngx_http_block_reading;

    return NGX_OK;
}


/*
 * Redis's answer for the request's i-th applied zone, or NULL when there is
 * none (it failed, the link was down, or the timeout passed: an answer
 * still due is then given back when it comes).
 */

ngx_http_trl_answer_t *
ngx_http_trl_strict_answer(ngx_http_trl_wait_t *wait, ngx_uint_t i)
{
    ngx_http_trl_ask_t  *ask;

    ask = &wait->asks[i];

    if (ask->state == NGX_HTTP_TRL_ASK_ANSWERED) {
        return &ask->answer;
    }

    if (ask->state == NGX_HTTP_TRL_ASK_SENT) {
        ask->abandoned = 1;                 /* a late answer is given back */
    }

    return NULL;
}


/* Gives a strict admission back in Redis (a rollback, or count=failed). */

void
ngx_http_trl_strict_release(ngx_http_trl_applied_t *a)
{
    ngx_str_t  name;

    a->in_redis = 0;

    if (ngx_http_trl_redis_name(NULL, a->zone, &a->key_text, &name)
        != NGX_OK)
    {
        return;
    }

    ngx_http_trl_release_name(&name, a->redis_cell);
    ngx_free(name.data);                    /* the command keeps a copy */
}


static void
ngx_http_trl_release_name(ngx_str_t *name, int64_t cell)
{
    char         buf[TRL_RELEASE_BUF];
    trl_argv_t   argv;
    trl_bytes_t  args[TRL_RELEASE_ARGS], key;

    key.data = (const char *) name->data;
    key.len = name->len;

    trl_argv_init(&argv, args, TRL_RELEASE_ARGS, buf, sizeof(buf));

    /* lost with the link (or its node, under cluster=): the place comes
     * back with its cell */

    if (trl_release_encode(&key, (uint64_t) cell, &argv) == TRL_OK) {
        (void) ngx_http_trl_script_eval(TRL_SCRIPT_RELEASE, 1, &argv,
                                        ngx_http_trl_redis_conf()->timeout,
                                        NULL, NULL);
    }
}


/* The request is gone; answers still due find the wait without it. */

static void
ngx_http_trl_strict_cleanup(void *data)
{
    ngx_http_trl_wait_t  *wait = data;

    wait->request = NULL;

    if (wait->timer.timer_set) {
        ngx_del_timer(&wait->timer);
    }

    if (wait->resume.posted) {
        ngx_delete_posted_event(&wait->resume);
    }

    ngx_http_trl_wait_unref(wait);
}


static void
ngx_http_trl_wait_unref(ngx_http_trl_wait_t *wait)
{
    ngx_uint_t  i;

    if (--wait->refs > 0) {
        return;
    }

    for (i = 0; i < wait->n; i++) {
        if (wait->asks[i].name.data) {
            ngx_free(wait->asks[i].name.data);
        }
    }

    ngx_free(wait);
}
