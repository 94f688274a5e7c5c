
/*
 * ngx_http_token_ratelimit_sync_asks.c - async zones: the requests a node
 * cannot decide (no lease left, no recent "full") ask Redis, which decides
 * each and may reserve a share of what remains for the node (kAsk in
 * sync.cpp).  The request waits as a strict one does (sync_strict.c).
 */


#include "ngx_http_token_ratelimit_sync.h"
#include "ngx_http_token_ratelimit_util.h"


static void ngx_http_trl_asks_handler(ngx_event_t *ev);
static void ngx_http_trl_asks_by_slot(ngx_http_trl_ask_t *list);
static int ngx_libc_cdecl ngx_http_trl_ask_cmp(const void *one,
    const void *two);
static void ngx_http_trl_asks_send(ngx_http_trl_ask_t **asks, ngx_uint_t n);
static void ngx_http_trl_asks_reply(redisReply *reply, void *data);


static ngx_http_trl_ask_t  *ngx_http_trl_asks;       /* to be sent */
static ngx_event_t          ngx_http_trl_asks_ev;
static ngx_log_t           *ngx_http_trl_asks_log;


void
ngx_http_trl_asks_init(ngx_cycle_t *cycle)
{
    ngx_http_trl_asks_log = cycle->log;

    ngx_http_trl_asks_ev.handler = ngx_http_trl_asks_handler;
    ngx_http_trl_asks_ev.data = &ngx_http_trl_dumb_connection;
    ngx_http_trl_asks_ev.log = cycle->log;
}


/*
 * The asks of a worker wait for the end of the current round of events:
 * those of one zone (under cluster=, of one zone and slot) go to Redis
 * together, up to NGX_HTTP_TRL_CHUNK keys per script.  ask->done is called
 * once for each, answered or failed.
 */

void
ngx_http_trl_ask_queue(ngx_http_trl_ask_t *ask)
{
    ask->next = ngx_http_trl_asks;
    ngx_http_trl_asks = ask;

    if (!ngx_http_trl_asks_ev.posted) {
        ngx_post_event(&ngx_http_trl_asks_ev, &ngx_posted_events);
    }

    trl_zone_sync_add(ask->zone->core, TRL_SYNC_STRICT, 1); /* Redis decides */
}


static void
ngx_http_trl_asks_handler(ngx_event_t *ev)
{
    ngx_uint_t           n;
    ngx_http_trl_ask_t  *ask, *next, *rest, *batch[NGX_HTTP_TRL_CHUNK];

    rest = ngx_http_trl_asks;
    ngx_http_trl_asks = NULL;

    if (rest && rest->slot >= 0) {
        ngx_http_trl_asks_by_slot(rest);
        return;
    }

    while (rest) {

        /* the asks of the first one's zone, a chunk at most */

        ask = rest;
        rest = NULL;
        n = 0;

        for ( /* void */ ; ask; ask = next) {
            next = ask->next;

            if (n == 0
                || (n < NGX_HTTP_TRL_CHUNK && ask->zone == batch[0]->zone
                    && ask->limit == batch[0]->limit))
            {
                batch[n++] = ask;

            } else {
                ask->next = rest;
                rest = ask;
            }
        }

        ngx_http_trl_asks_send(batch, n);
    }
}


/* cluster=: the asks sorted by zone and slot, a script per run of them. */

static void
ngx_http_trl_asks_by_slot(ngx_http_trl_ask_t *list)
{
    ngx_uint_t           i, n, first;
    ngx_http_trl_ask_t  *ask, **asks;

    for (n = 0, ask = list; ask; ask = ask->next) {
        n++;
    }

    asks = ngx_alloc(n * sizeof(ngx_http_trl_ask_t *), ngx_http_trl_asks_log);

    if (asks == NULL) {
        for (ask = list; ask; ask = list) {  /* one at a time, then */
            list = ask->next;
            ngx_http_trl_asks_send(&ask, 1);
        }

        return;
    }

    for (i = 0, ask = list; ask; ask = ask->next) {
        asks[i++] = ask;
    }

    ngx_qsort(asks, n, sizeof(ngx_http_trl_ask_t *), ngx_http_trl_ask_cmp);

    for (first = 0, i = 1; i <= n; i++) {
        if (i == n || i - first == NGX_HTTP_TRL_CHUNK
            || asks[i]->zone != asks[first]->zone
            || asks[i]->limit != asks[first]->limit
            || asks[i]->slot != asks[first]->slot)
        {
            ngx_http_trl_asks_send(&asks[first], i - first);
            first = i;
        }
    }

    ngx_free(asks);
}


static int ngx_libc_cdecl
ngx_http_trl_ask_cmp(const void *one, const void *two)
{
    ngx_http_trl_ask_t  *a = *(ngx_http_trl_ask_t **) one;
    ngx_http_trl_ask_t  *b = *(ngx_http_trl_ask_t **) two;

    if (a->zone != b->zone) {
        return (uintptr_t) a->zone < (uintptr_t) b->zone ? -1 : 1;
    }

    if (a->limit != b->limit) {
        return a->limit < b->limit ? -1 : 1;
    }

    return (a->slot > b->slot) - (a->slot < b->slot);
}


static void
ngx_http_trl_asks_send(ngx_http_trl_ask_t **asks, ngx_uint_t n)
{
    char                        buf[TRL_ASK_BUF];
    ngx_uint_t                  i;
    trl_argv_t                  argv;
    trl_bytes_t                 names[NGX_HTTP_TRL_CHUNK];
    trl_bytes_t                 args[TRL_ASK_ARGS(NGX_HTTP_TRL_CHUNK)];
    trl_script_zone_t           sz;
    ngx_http_trl_ask_t        **batch;
    ngx_http_trl_redis_conf_t  *rc;

    rc = ngx_http_trl_redis_conf();

    /* the reply's: the asks, NULL-terminated */

    batch = ngx_alloc((n + 1) * sizeof(ngx_http_trl_ask_t *),
                      ngx_http_trl_asks_log);
    if (batch == NULL) {
        goto failed;
    }

    for (i = 0; i < n; i++) {
        names[i].data = (const char *) asks[i]->name.data;
        names[i].len = asks[i]->name.len;
        batch[i] = asks[i];
    }

    batch[n] = NULL;

    ngx_http_trl_script_zone(asks[0]->zone, &sz);
    sz.limit = asks[0]->limit;          /* the batch's N (reputation) */
    trl_argv_init(&argv, args, TRL_ASK_ARGS(NGX_HTTP_TRL_CHUNK), buf,
                  sizeof(buf));

    /* a reservation is held for the node's publish of its admissions */

    if (trl_ask_encode(&sz, 2 * rc->interval + rc->timeout, names, n, &argv)
        != TRL_OK
        || ngx_http_trl_script_eval(TRL_SCRIPT_ASK, n, &argv, rc->timeout,
                                    ngx_http_trl_asks_reply, batch)
           != NGX_OK)
    {
        ngx_free(batch);
        goto failed;
    }

    return;

failed:

    for (i = 0; i < n; i++) {
        asks[i]->state = NGX_HTTP_TRL_ASK_FAILED;
        asks[i]->done(asks[i]);
    }
}


/* Redis's reply: per key its decision, read whole before any is taken. */

static void
ngx_http_trl_asks_reply(redisReply *reply, void *data)
{
    ngx_http_trl_ask_t **batch = data;

    trl_ask_answer_t     answers[NGX_HTTP_TRL_CHUNK];
    ngx_uint_t           i, n, ok;
    trl_script_zone_t    sz;
    ngx_http_trl_ask_t  *ask;

    for (n = 0; batch[n]; n++) { /* void */ }

    ok = 0;

    if (reply && reply->type == REDIS_REPLY_STRING) {
        ngx_http_trl_script_zone(batch[0]->zone, &sz);
        sz.limit = batch[0]->limit;

        ok = trl_ask_decode(&sz, reply->str, reply->len, n, answers)
             == TRL_OK;

        if (!ok) {
            ngx_http_trl_redis_unexpected(TRL_SCRIPT_ASK);
        }

    } else if (reply && reply->type != REDIS_REPLY_ERROR) {
        ngx_http_trl_redis_unexpected(TRL_SCRIPT_ASK);
    }

    for (i = 0; i < n; i++) {
        ask = batch[i];
        ask->state = NGX_HTTP_TRL_ASK_FAILED;

        if (ok) {
            ask->state = NGX_HTTP_TRL_ASK_ANSWERED;
            ask->answer.ask = answers[i];
        }

        ask->done(ask);
    }

    ngx_free(batch);
}
