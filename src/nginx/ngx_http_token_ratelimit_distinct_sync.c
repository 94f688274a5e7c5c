
/*
 * ngx_http_token_ratelimit_distinct_sync.c - distinct zones with
 * sync=strict: Redis decides each request in one script on a sorted set
 * per key (member: the value's fingerprint, score: its time; the core's
 * trl_distinct_script), so the cluster never counts more than N distinct
 * values per key in any window.
 *
 * The request waits as for strict request zones (sync_strict.c starts the
 * wait and sends through ngx_http_trl_distinct_send(); the handler hands
 * the answer to ngx_http_trl_distinct_answer()).  Every admission is
 * provisional in Redis: a request whose value does not count (rejected
 * by another zone, or not counted by count=failed/succeeded) gives its
 * member back with a cancel, which removes it only if that admission
 * added it and nobody touched it since.  Keeping one needs no call: a
 * provisional member counts like any other until it leaves the window.
 * The node's own slots mirror what Redis admitted: they decide while
 * Redis is down (fail=open), and what they admit then is not sent to
 * Redis later.
 */


#include "ngx_http_token_ratelimit_sync.h"


static void ngx_http_trl_distinct_reply(redisReply *reply, void *data);
static ngx_int_t ngx_http_trl_distinct_eval(ngx_str_t *name,
    trl_distinct_redis_req_t *req, ngx_http_trl_reply_pt handler,
    void *data);


/*
 * Before any question: NGX_OK when Redis is to decide (a->strict), else
 * the decision without it: fail=closed (NGX_BUSY, a 503) or the node's
 * own slots (fail=open).
 */

ngx_int_t
ngx_http_trl_distinct_strict(ngx_http_request_t *r,
    ngx_http_trl_loc_conf_t *tlcf, ngx_http_trl_applied_t *a,
    trl_limit_t *tl)
{
    if (ngx_http_trl_sync_available()) {
        a->strict = 1;
        return NGX_OK;
    }

    if (ngx_http_trl_fail_closed(a)) {
        return NGX_BUSY;
    }

    trl_zone_sync_add(a->zone->zone, TRL_SYNC_FALLBACK, 1);

    return ngx_http_trl_distinct_local(r, tlcf, a, tl);
}


/* The question for a (ask->name is the key's Redis name). */

ngx_int_t
ngx_http_trl_distinct_send(ngx_http_trl_applied_t *a, ngx_http_trl_ask_t *ask)
{
    trl_distinct_redis_req_t  *req;

    ask->answer.distinct = 1;

    req = &ask->answer.dreq;
    ngx_memzero(req, sizeof(trl_distinct_redis_req_t));

    req->op = TRL_DISTINCT_OP_ACQUIRE;
    req->window_ms = a->zone->rate.window_ms;
    req->limit = a->zone->rate.limit;
    req->fp = a->fp;
    req->provisional = 1;

    if (ngx_http_trl_distinct_eval(&ask->name, req,
                                   ngx_http_trl_distinct_reply, ask)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    trl_zone_sync_add(a->zone->zone, TRL_SYNC_STRICT, 1);

    return NGX_OK;
}


static void
ngx_http_trl_distinct_reply(redisReply *reply, void *data)
{
    ngx_http_trl_ask_t *ask = data;

    ask->state = NGX_HTTP_TRL_ASK_FAILED;

    if (reply && reply->type == REDIS_REPLY_STRING) {
        if (trl_distinct_redis_reply(reply->str, reply->len,
                                     &ask->answer.dreply)
            == TRL_OK)
        {
            ask->state = NGX_HTTP_TRL_ASK_ANSWERED;

        } else {
            ngx_http_trl_redis_unexpected(TRL_SCRIPT_DISTINCT);
        }

    } else if (reply && reply->type != REDIS_REPLY_ERROR) {
        ngx_http_trl_redis_unexpected(TRL_SCRIPT_DISTINCT);
    }

    ask->done(ask);
}


/*
 * Back in the handler: Redis's answer taken into the zone (NULL: none
 * came, and the fail policy decides).
 */

void
ngx_http_trl_distinct_answer(ngx_http_request_t *r,
    ngx_http_trl_loc_conf_t *tlcf, ngx_http_trl_applied_t *a,
    ngx_http_trl_answer_t *answer)
{
    trl_limit_t               tl;
    trl_result_t              res;
    ngx_http_trl_zone_t      *zone;
    trl_distinct_reply_t     *reply;

    zone = a->zone;
    tl = ngx_http_trl_limit(zone, a->limit, tlcf);
    tl.flags |= TRL_DISTINCT_PROVISIONAL;

    if (answer == NULL) {
        trl_zone_sync_add(zone->zone, TRL_SYNC_ERRORS, 1);

        if (ngx_http_trl_fail_closed(a)) {
            return;
        }

        trl_zone_sync_add(zone->zone, TRL_SYNC_FALLBACK, 1);
        (void) ngx_http_trl_distinct_local(r, tlcf, a, &tl);
        return;
    }

    reply = &answer->dreply;

    if (trl_distinct_strict_apply(zone->zone, &a->key, &tl, a->fp, reply,
                                  TRL_CLOCK_NOW, &res)
        != TRL_OK)
    {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "token_ratelimit zone \"%V\" failed to decide; "
                      "the request is passed", &zone->name);
        return;
    }

    ngx_http_trl_log_events(r, tlcf, zone, &tl, &a->key_text, &a->key,
                            &res);
    ngx_http_trl_set_result(a, &tl, &res);
    trl_zone_sync_put(zone->zone, TRL_SYNC_LAST_OK, trl_clock_ms());

    if (!reply->admitted || !reply->made) {
        return;                 /* nothing of this request's to give back */
    }

    a->redis_cell = (int64_t) reply->stamp_ms;
    a->in_redis = 1;            /* a cancel may give the member back */

    if (!a->admitted) {
        /* Redis admitted, the node rejects (a penalty it serves): undo */
        ngx_http_trl_distinct_release_redis(a);
    }
}


/* A value whose request did not count leaves Redis (see above). */

void
ngx_http_trl_distinct_release_redis(ngx_http_trl_applied_t *a)
{
    ngx_str_t                 name;
    trl_distinct_redis_req_t  req;

    if (!a->in_redis) {
        return;
    }

    a->in_redis = 0;

    if (ngx_http_trl_redis_name(NULL, a->zone, &a->key_text, &name)
        != NGX_OK)
    {
        return;
    }

    ngx_memzero(&req, sizeof(trl_distinct_redis_req_t));
    req.window_ms = a->zone->rate.window_ms;
    req.limit = a->zone->rate.limit;
    req.fp = a->fp;

    ngx_http_trl_distinct_give_back(&name, &req, (uint64_t) a->redis_cell);
    ngx_free(name.data);                    /* the command keeps a copy */
}


/*
 * Cancels the admission req made at stamp_ms (Redis's clock) under name:
 * the member goes if it is still that admission's sole hold.  Lost with
 * the link, it stays until it leaves the window (over-strict, never
 * under).
 */

void
ngx_http_trl_distinct_give_back(ngx_str_t *name,
    trl_distinct_redis_req_t *req, uint64_t stamp_ms)
{
    trl_distinct_redis_req_t  cancel;

    cancel = *req;
    cancel.op = TRL_DISTINCT_OP_CANCEL;
    cancel.provisional = 0;
    cancel.force = 0;
    cancel.made = 1;
    cancel.stamp_ms = stamp_ms;

    (void) ngx_http_trl_distinct_eval(name, &cancel, NULL, NULL);
}


static ngx_int_t
ngx_http_trl_distinct_eval(ngx_str_t *name, trl_distinct_redis_req_t *req,
    ngx_http_trl_reply_pt handler, void *data)
{
    char                 buf[TRL_DISTINCT_REDIS_BUF];
    size_t               i, n;
    trl_argv_t           argv;
    trl_bytes_t          args[1 + TRL_DISTINCT_REDIS_ARGS];
    trl_distinct_arg_t   dargs[TRL_DISTINCT_REDIS_ARGS];

    n = trl_distinct_redis_args(req, buf, sizeof(buf), dargs,
                                TRL_DISTINCT_REDIS_ARGS);
    if (n == 0) {
        return NGX_ERROR;
    }

    args[0].data = (const char *) name->data;
    args[0].len = name->len;

    for (i = 0; i < n; i++) {
        args[1 + i].data = dargs[i].data;
        args[1 + i].len = dargs[i].len;
    }

    ngx_memzero(&argv, sizeof(trl_argv_t));
    argv.args = args;
    argv.max = 1 + n;
    argv.n = 1 + n;

    return ngx_http_trl_script_eval(TRL_SCRIPT_DISTINCT, 1, &argv,
                                    ngx_http_trl_redis_conf()->timeout,
                                    handler, data);
}
