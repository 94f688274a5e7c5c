
/*
 * ngx_http_token_ratelimit_sync.c - cluster-wide zones over the Redis link.
 *
 * Async zones: a worker decides at once from the places Redis reserved
 * for the node (its lease) or from a recent read that said "full", and
 * else asks Redis, the request waiting as a strict one does (the asks of
 * one round of events go together, one script per zone); see
 * trl_zone_async_apply.  The outbox holds what is to be published: the
 * admissions made from leases (and, after an outage, on the node's own
 * count), penalties started here, and the keys rejected here (a read).
 * Every interval the outbox goes to Redis as pipelined publish scripts (a
 * chunk of keys each); the replies carry the cluster totals back into the
 * zone.  Each worker publishes exactly the admissions it made, so a node
 * publishes each admission once.  While Redis is unreachable the outbox
 * keeps the admissions (up to a bound) and publishes them afterwards.
 *
 * Strict zones: Redis decides each request in one script; the request
 * waits for it without blocking the worker (the handler returns NGX_AGAIN
 * and is run again when the answers are in, or the timeout passed).  The
 * state of such a wait lives outside the request pool, so that answers
 * arriving after the request is gone find it, and give back places Redis
 * counted for nothing.
 */


#include "ngx_http_token_ratelimit.h"
#include "ngx_http_token_ratelimit_redis.h"


#define NGX_HTTP_TRL_OUTBOX_MAX    50000     /* keys per worker */
#define NGX_HTTP_TRL_CHUNK         64        /* keys per publish script */
#define NGX_HTTP_TRL_EXIT_GRACE    2000      /* ms to publish when exiting */

#define NGX_HTTP_TRL_ASK_NONE      0
#define NGX_HTTP_TRL_ASK_SENT      1
#define NGX_HTTP_TRL_ASK_ANSWERED  2
#define NGX_HTTP_TRL_ASK_FAILED    3


typedef struct {
    ngx_rbtree_node_t            node;       /* key: the hash's low bits */
    ngx_http_trl_zone_t         *zone;
    trl_hash_t                   hash;
    ngx_str_t                    name;       /* the Redis key */
    ngx_uint_t                   delta;      /* admissions to publish */
    ngx_uint_t                   leased;     /* ... taken from the lease */
    ngx_msec_t                   since;      /* the oldest of them */
    uint64_t                     penalty_ms; /* a penalty started here */
    uint64_t                     forgive_ms;
    uint32_t                     violations;
} ngx_http_trl_note_t;


typedef struct {
    ngx_pool_t                  *pool;
    ngx_rbtree_t                 tree;
    ngx_rbtree_node_t            sentinel;
    ngx_uint_t                   n;
} ngx_http_trl_outbox_t;


typedef struct {
    ngx_pool_t                  *pool;       /* freed with the last chunk */
    ngx_uint_t                   chunks;     /* unanswered */
} ngx_http_trl_batch_t;


typedef struct {
    ngx_http_trl_batch_t        *batch;
    ngx_http_trl_zone_t         *zone;
    ngx_http_trl_note_t        **notes;
    ngx_uint_t                   n;
} ngx_http_trl_chunk_t;


/* one strict zone's question to Redis, or an async zone's (async) */
typedef struct {
    ngx_http_trl_wait_t         *wait;
    ngx_uint_t                   state;
    ngx_uint_t                   abandoned;  /* decided without the answer */
    ngx_uint_t                   async;
    trl_strict_reply_t           reply;
    trl_ask_reply_t              answer;     /* async */
    ngx_http_trl_zone_t         *zone;       /* async: queued to be sent */
    void                        *next;
    int64_t                      cell;
    ngx_str_t                    name;
} ngx_http_trl_ask_t;


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


static ngx_http_trl_outbox_t *ngx_http_trl_outbox_get(void);
static void ngx_http_trl_note_penalty(ngx_http_trl_note_t *note,
    uint64_t penalty_ms, uint32_t violations, uint64_t forgive_ms);
static ngx_http_trl_note_t *ngx_http_trl_outbox_find(
    ngx_http_trl_outbox_t *ob, ngx_http_trl_zone_t *zone, trl_hash_t *hash);
static ngx_http_trl_note_t *ngx_http_trl_outbox_add(ngx_http_trl_zone_t *zone,
    trl_hash_t *hash, ngx_str_t *name, ngx_uint_t copy, ngx_uint_t delta,
    ngx_msec_t since);
static void ngx_http_trl_rbtree_insert(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel);
static void ngx_http_trl_sync_link_ready(void);
static void ngx_http_trl_flush_handler(ngx_event_t *ev);
static void ngx_http_trl_flush(void);
static ngx_int_t ngx_http_trl_send_chunk(ngx_http_trl_chunk_t *chunk);
static void ngx_http_trl_chunk_reply(redisReply *reply, void *data);
static void ngx_http_trl_requeue(ngx_http_trl_chunk_t *chunk);
static void ngx_http_trl_batch_done(ngx_http_trl_batch_t *batch);
static ngx_int_t ngx_http_trl_redis_name(ngx_pool_t *pool,
    ngx_http_trl_zone_t *zone, ngx_str_t *key, ngx_str_t *name);
static void ngx_http_trl_strict_reply(redisReply *reply, void *data);
static void ngx_http_trl_strict_timeout(ngx_event_t *ev);
static void ngx_http_trl_strict_resume(ngx_event_t *ev);
static void ngx_http_trl_strict_cleanup(void *data);
static void ngx_http_trl_wait_unref(ngx_http_trl_wait_t *wait);
static void ngx_http_trl_release_name(ngx_str_t *name, int64_t cell);
static void ngx_http_trl_ignore_reply(redisReply *reply, void *data);
static ngx_str_t *ngx_http_trl_number(ngx_pool_t *pool, ngx_str_t *s,
    uint64_t n);
static ngx_str_t *ngx_http_trl_factor(ngx_pool_t *pool, ngx_str_t *s,
    double factor);
static ngx_int_t ngx_http_trl_ask_send(ngx_http_trl_applied_t *a,
    ngx_http_trl_ask_t *ask);
static void ngx_http_trl_asks_handler(ngx_event_t *ev);
static void ngx_http_trl_asks_send(ngx_http_trl_ask_t **asks, ngx_uint_t n);
static void ngx_http_trl_asks_reply(redisReply *reply, void *data);
static void ngx_http_trl_ask_done(ngx_http_trl_ask_t *ask);
static ngx_str_t *ngx_http_trl_own_field(ngx_http_trl_zone_t *zone,
    ngx_str_t *s, u_char *buf);


static ngx_http_trl_outbox_t  *ngx_http_trl_outbox;
static ngx_event_t             ngx_http_trl_flush_ev;
static ngx_uint_t              ngx_http_trl_inflight;
static ngx_uint_t              ngx_http_trl_exiting;
static ngx_msec_t              ngx_http_trl_exit_start;
static ngx_uint_t              ngx_http_trl_dropped_logged;
static ngx_log_t              *ngx_http_trl_sync_log;
static ngx_http_trl_ask_t     *ngx_http_trl_asks;     /* to be sent */
static ngx_event_t             ngx_http_trl_asks_ev;


ngx_int_t
ngx_http_trl_sync_init_process(ngx_cycle_t *cycle)
{
    ngx_http_trl_sync_log = cycle->log;

    ngx_http_trl_flush_ev.handler = ngx_http_trl_flush_handler;
    ngx_http_trl_flush_ev.log = cycle->log;
    ngx_http_trl_flush_ev.cancelable = 1;

    ngx_http_trl_asks_ev.handler = ngx_http_trl_asks_handler;
    ngx_http_trl_asks_ev.log = cycle->log;

    ngx_add_timer(&ngx_http_trl_flush_ev, ngx_http_trl_redis_conf()->interval);

    ngx_http_trl_lists_sync_init(cycle);

    ngx_http_trl_redis_on_ready(ngx_http_trl_sync_link_ready);

    return NGX_OK;
}


void
ngx_http_trl_sync_exit_process(ngx_cycle_t *cycle)
{
    ngx_http_trl_exiting = 1;

    ngx_http_trl_lists_sync_exit();

    if (ngx_http_trl_flush_ev.timer_set) {
        ngx_del_timer(&ngx_http_trl_flush_ev);
    }

    if (ngx_http_trl_outbox) {
        ngx_destroy_pool(ngx_http_trl_outbox->pool);
        ngx_http_trl_outbox = NULL;
    }
}


ngx_uint_t
ngx_http_trl_sync_available(void)
{
    return ngx_http_trl_redis_ready();
}


/*
 * Redis cannot decide for a: with fail=closed, a becomes a 503 with
 * Retry-After: 1 (its rate-limit headers say the same) and 1 is returned;
 * with fail=open, 0 (the node decides).
 */

ngx_uint_t
ngx_http_trl_fail_closed(ngx_http_trl_applied_t *a)
{
    ngx_http_trl_redis_conf_t  *rc;

    rc = ngx_http_trl_redis_conf();

    if (rc == NULL || !rc->fail_closed) {
        return 0;
    }

    a->unavailable = 1;
    a->rejected = 1;
    a->retry_after = 1;
    a->reset = ngx_time() + 1;
    a->reset_in = 1;

    return 1;
}


/* The link is (back) up: what waited for it goes now. */

static void
ngx_http_trl_sync_link_ready(void)
{
    ngx_http_trl_dropped_logged = 0;

    if (ngx_http_trl_outbox && ngx_http_trl_outbox->n) {
        ngx_http_trl_flush();
    }

    ngx_http_trl_lists_sync_now();
}


/* --- async: the outbox ------------------------------------------------- */

/*
 * Notes a key of an async zone: delta admissions to publish (0: only its
 * cluster total is wanted).
 */

void
ngx_http_trl_sync_note(ngx_http_trl_zone_t *zone, ngx_http_trl_applied_t *a,
    ngx_uint_t delta)
{
    ngx_str_t               name;
    ngx_http_trl_note_t    *note;
    ngx_http_trl_outbox_t  *ob;

    ob = ngx_http_trl_outbox_get();
    if (ob == NULL) {
        return;
    }

    note = ngx_http_trl_outbox_find(ob, zone, &a->key);

    if (note == NULL) {
        if (ngx_http_trl_redis_name(ob->pool, zone, &a->key_text, &name)
            != NGX_OK)
        {
            return;
        }

        note = ngx_http_trl_outbox_add(zone, &a->key, &name, 0, 0, 0);
        if (note == NULL) {
            return;
        }
    }

    if (delta && note->delta == 0) {
        note->since = ngx_current_msec;
    }

    note->delta += delta;

    if (a->leased) {
        note->leased += delta;
    }

    if (a->penalty_ms) {
        ngx_http_trl_note_penalty(note, a->penalty_ms, a->violations,
                                  a->forgive_ms);
    }
}


static void
ngx_http_trl_note_penalty(ngx_http_trl_note_t *note, uint64_t penalty_ms,
    uint32_t violations, uint64_t forgive_ms)
{
    note->penalty_ms = ngx_max(note->penalty_ms, penalty_ms);
    note->violations = ngx_max(note->violations, violations);
    note->forgive_ms = ngx_max(note->forgive_ms, forgive_ms);
}


static ngx_http_trl_outbox_t *
ngx_http_trl_outbox_get(void)
{
    ngx_pool_t             *pool;
    ngx_http_trl_outbox_t  *ob;

    if (ngx_http_trl_outbox) {
        return ngx_http_trl_outbox;
    }

    pool = ngx_create_pool(16384, ngx_http_trl_sync_log);
    if (pool == NULL) {
        return NULL;
    }

    ob = ngx_pcalloc(pool, sizeof(ngx_http_trl_outbox_t));
    if (ob == NULL) {
        ngx_destroy_pool(pool);
        return NULL;
    }

    ob->pool = pool;
    ngx_rbtree_init(&ob->tree, &ob->sentinel, ngx_http_trl_rbtree_insert);

    ngx_http_trl_outbox = ob;

    return ob;
}


static ngx_http_trl_note_t *
ngx_http_trl_outbox_add(ngx_http_trl_zone_t *zone, trl_hash_t *hash,
    ngx_str_t *name, ngx_uint_t copy, ngx_uint_t delta, ngx_msec_t since)
{
    ngx_http_trl_note_t    *note;
    ngx_http_trl_outbox_t  *ob;

    ob = ngx_http_trl_outbox_get();
    if (ob == NULL) {
        return NULL;
    }

    if (ob->n >= NGX_HTTP_TRL_OUTBOX_MAX) {

        /* bounded: admissions beyond it are never published */

        if (delta) {
            (void) trl_zone_sync_unpend(zone->zone, hash, (uint32_t) delta);
            trl_zone_sync_add(zone->zone, TRL_SYNC_ERRORS, 1);

            if (!ngx_http_trl_dropped_logged) {
                ngx_http_trl_dropped_logged = 1;
                ngx_log_error(NGX_LOG_WARN, ngx_http_trl_sync_log, 0,
                              "token_ratelimit: %ui keys wait to be "
                              "published to redis; admissions of further "
                              "keys are counted on this node only",
                              (ngx_uint_t) NGX_HTTP_TRL_OUTBOX_MAX);
            }
        }

        return NULL;
    }

    note = ngx_palloc(ob->pool, sizeof(ngx_http_trl_note_t));
    if (note == NULL) {
        return NULL;
    }

    note->node.key = (ngx_rbtree_key_t) hash->lo;
    note->zone = zone;
    note->hash = *hash;
    note->delta = delta;
    note->leased = 0;
    note->since = delta ? since : 0;
    note->penalty_ms = 0;
    note->forgive_ms = 0;
    note->violations = 0;

    note->name = *name;

    if (copy) {                             /* from another outbox's pool */
        note->name.data = ngx_pnalloc(ob->pool, name->len);
        if (note->name.data == NULL) {
            return NULL;
        }

        ngx_memcpy(note->name.data, name->data, name->len);
    }

    ngx_rbtree_insert(&ob->tree, &note->node);
    ob->n++;

    if (ob->n >= NGX_HTTP_TRL_OUTBOX_MAX / 2 && ngx_http_trl_redis_ready()) {
        ngx_http_trl_flush();
    }

    return note;
}


static ngx_http_trl_note_t *
ngx_http_trl_outbox_find(ngx_http_trl_outbox_t *ob, ngx_http_trl_zone_t *zone,
    trl_hash_t *hash)
{
    ngx_rbtree_key_t      key;
    ngx_rbtree_node_t    *node, *sentinel;
    ngx_http_trl_note_t  *note;

    key = (ngx_rbtree_key_t) hash->lo;
    node = ob->tree.root;
    sentinel = ob->tree.sentinel;

    while (node != sentinel) {

        if (key != node->key) {
            node = (key < node->key) ? node->left : node->right;
            continue;
        }

        note = (ngx_http_trl_note_t *) node;

        if (note->hash.hi == hash->hi && note->zone == zone) {
            return note;
        }

        node = node->right;                 /* equal keys go right */
    }

    return NULL;
}


static void
ngx_http_trl_rbtree_insert(ngx_rbtree_node_t *temp, ngx_rbtree_node_t *node,
    ngx_rbtree_node_t *sentinel)
{
    ngx_rbtree_node_t  **p;

    for ( ;; ) {
        p = (node->key < temp->key) ? &temp->left : &temp->right;

        if (*p == sentinel) {
            break;
        }

        temp = *p;
    }

    *p = node;
    node->parent = temp;
    node->left = sentinel;
    node->right = sentinel;
    ngx_rbt_red(node);
}


/*
 * Every interval.  When the worker is shutting down (reload), the timer
 * stays non-cancelable while admissions wait, so that they are published
 * before it exits, for at most NGX_HTTP_TRL_EXIT_GRACE.
 */

static void
ngx_http_trl_flush_handler(ngx_event_t *ev)
{
    ngx_uint_t  waiting;

    if (ngx_http_trl_outbox && ngx_http_trl_outbox->n
        && ngx_http_trl_redis_ready())
    {
        ngx_http_trl_flush();
    }

    waiting = (ngx_http_trl_outbox && ngx_http_trl_outbox->n)
              || ngx_http_trl_inflight;

    if (ngx_exiting) {
        if (ngx_http_trl_exit_start == 0) {
            ngx_http_trl_exit_start = ngx_current_msec;
        }

        if (!waiting || ngx_current_msec - ngx_http_trl_exit_start
                        > NGX_HTTP_TRL_EXIT_GRACE)
        {
            return;                         /* let the worker exit */
        }
    }

    ev->cancelable = !waiting;

    ngx_add_timer(ev, ngx_http_trl_redis_conf()->interval);
}


/* Sends the outbox: per zone, chunks of keys, one script each. */

static void
ngx_http_trl_flush(void)
{
    ngx_uint_t              i, n;
    ngx_rbtree_node_t      *node, *root, *sentinel;
    ngx_http_trl_note_t    *note;
    ngx_http_trl_batch_t   *batch;
    ngx_http_trl_chunk_t   *chunk, **open;
    ngx_http_trl_outbox_t  *ob;

    ob = ngx_http_trl_outbox;
    ngx_http_trl_outbox = NULL;             /* new notes: a new outbox */

    batch = ngx_pcalloc(ob->pool, sizeof(ngx_http_trl_batch_t));
    open = ngx_pcalloc(ob->pool, ob->n * sizeof(ngx_http_trl_chunk_t *));

    if (batch == NULL || open == NULL) {
        ngx_destroy_pool(ob->pool);
        return;
    }

    batch->pool = ob->pool;
    batch->chunks = 1;                      /* held while sending */

    root = ob->tree.root;
    sentinel = ob->tree.sentinel;
    n = 0;

    if (root != sentinel) {
        for (node = ngx_rbtree_min(root, sentinel);
             node;
             node = ngx_rbtree_next(&ob->tree, node))
        {
            note = (ngx_http_trl_note_t *) node;

            /* the open chunk of the note's zone */

            chunk = NULL;

            for (i = 0; i < n; i++) {
                if (open[i] && open[i]->zone == note->zone) {
                    chunk = open[i];
                    break;
                }
            }

            if (chunk == NULL) {
                chunk = ngx_pcalloc(ob->pool, sizeof(ngx_http_trl_chunk_t));
                if (chunk == NULL) {
                    break;
                }

                chunk->notes = ngx_palloc(ob->pool, NGX_HTTP_TRL_CHUNK
                                          * sizeof(ngx_http_trl_note_t *));
                if (chunk->notes == NULL) {
                    break;
                }

                chunk->batch = batch;
                chunk->zone = note->zone;
                i = n++;
                open[i] = chunk;
            }

            chunk->notes[chunk->n++] = note;

            if (chunk->n == NGX_HTTP_TRL_CHUNK) {
                (void) ngx_http_trl_send_chunk(chunk);
                open[i] = NULL;
            }
        }
    }

    for (i = 0; i < n; i++) {
        if (open[i]) {
            (void) ngx_http_trl_send_chunk(open[i]);
        }
    }

    ngx_http_trl_batch_done(batch);
}


static ngx_int_t
ngx_http_trl_send_chunk(ngx_http_trl_chunk_t *chunk)
{
    u_char                      own[2 + 16];
    ngx_str_t                  *args, *a;
    ngx_uint_t                  i, n;
    ngx_pool_t                 *pool;
    ngx_http_trl_note_t        *note;
    ngx_http_trl_zone_t        *zone;
    ngx_http_trl_redis_conf_t  *rc;

    pool = chunk->batch->pool;
    zone = chunk->zone;
    rc = ngx_http_trl_redis_conf();
    n = chunk->n;

    /* keys, then W, cell, N, the node's reservation field, then per key:
     * delta, leased, penalty, violations, forgive */

    args = ngx_palloc(pool, (6 * n + 4) * sizeof(ngx_str_t));
    if (args == NULL) {
        goto failed;
    }

    (void) ngx_http_trl_own_field(zone, &args[n + 3], own);

    for (i = 0; i < n; i++) {
        note = chunk->notes[i];
        args[i] = note->name;
        a = &args[n + 4 + 5 * i];

        if (ngx_http_trl_number(pool, &a[0], note->delta) == NULL
            || ngx_http_trl_number(pool, &a[1], note->leased) == NULL
            || ngx_http_trl_number(pool, &a[2], note->penalty_ms) == NULL
            || ngx_http_trl_number(pool, &a[3], note->violations) == NULL
            || ngx_http_trl_number(pool, &a[4], note->forgive_ms) == NULL)
        {
            goto failed;
        }
    }

    if (ngx_http_trl_number(pool, &args[n], zone->rate.window_ms) == NULL
        || ngx_http_trl_number(pool, &args[n + 1],
                               trl_redis_cell_ms(zone->rate.window_ms))
           == NULL
        || ngx_http_trl_number(pool, &args[n + 2], zone->rate.limit) == NULL)
    {
        goto failed;
    }

    /* a publish is not a request's wait: give it at least an interval */

    if (ngx_http_trl_redis_eval(TRL_SCRIPT_PUBLISH, n, args, 6 * n + 4,
                                ngx_max(rc->timeout, rc->interval),
                                ngx_http_trl_chunk_reply, chunk)
        != NGX_OK)
    {
        goto failed;
    }

    chunk->batch->chunks++;
    ngx_http_trl_inflight++;

    return NGX_OK;

failed:

    trl_zone_sync_add(zone->zone, TRL_SYNC_ERRORS, 1);
    ngx_http_trl_requeue(chunk);

    return NGX_ERROR;
}


/*
 * Redis's reply: now, then per key its total, free_in, reset_in, the
 * penalty left and its violations.
 */

static void
ngx_http_trl_chunk_reply(redisReply *reply, void *data)
{
    ngx_http_trl_chunk_t *chunk = data;

    u_char               *p, *last;
    int64_t               v[1 + 5 * NGX_HTTP_TRL_CHUNK], *k;
    uint64_t              published, lag;
    ngx_uint_t            i;
    trl_limit_t           tl;
    trl_sync_read_t       read;
    ngx_http_trl_note_t  *note;
    ngx_http_trl_zone_t  *zone;

    ngx_http_trl_inflight--;

    zone = chunk->zone;

    /*
     * "now", then per key: total, free_in, reset_in, penalty, violations.
     * An error reply is logged by redis.c, once per outage, not per call.
     */

    if (reply == NULL || reply->type != REDIS_REPLY_STRING) {
        if (reply && reply->type != REDIS_REPLY_ERROR) {
            ngx_http_trl_redis_unexpected(TRL_SCRIPT_PUBLISH);
        }

        trl_zone_sync_add(zone->zone, TRL_SYNC_ERRORS, 1);
        ngx_http_trl_requeue(chunk);
        ngx_http_trl_batch_done(chunk->batch);
        return;
    }

    p = (u_char *) reply->str;
    last = p + reply->len;

    /* read whole before any of it is applied */

    for (i = 0; i < 1 + 5 * chunk->n; i++) {
        if (ngx_http_trl_reply_int(&p, last, &v[i]) != NGX_OK) {
            break;
        }
    }

    if (i != 1 + 5 * chunk->n || p != last) {
        ngx_http_trl_redis_unexpected(TRL_SCRIPT_PUBLISH);
        trl_zone_sync_add(zone->zone, TRL_SYNC_ERRORS, 1);
        ngx_http_trl_batch_done(chunk->batch);
        return;
    }

    ngx_memzero(&tl, sizeof(trl_limit_t));
    tl.rate = zone->rate;
    tl.flags = TRL_LIMIT_SYNC;

    published = 0;
    lag = 0;

    for (i = 0; i < chunk->n; i++) {
        note = chunk->notes[i];

        k = &v[1 + 5 * i];

        read.stamp_ms = (uint64_t) v[0];
        read.total = (uint32_t) k[0];
        read.free_in_ms = (uint32_t) k[1];
        read.reset_in_ms = (uint32_t) k[2];
        read.penalty_in_ms = (uint32_t) k[3];
        read.violations = (uint32_t) k[4];
        read.published = (uint32_t) (note->delta - note->leased);

        (void) trl_zone_sync_apply(zone->zone, &note->hash, &tl, &read,
                                   TRL_CLOCK_NOW);

        published += note->delta;

        if (note->delta && ngx_current_msec - note->since > lag) {
            lag = ngx_current_msec - note->since;
        }
    }

    trl_zone_sync_add(zone->zone, TRL_SYNC_PUBLISHED, published);
    trl_zone_sync_add(zone->zone, TRL_SYNC_READS, chunk->n);
    trl_zone_sync_put(zone->zone, TRL_SYNC_LAST_OK, trl_clock_ms());
    trl_zone_sync_put(zone->zone, TRL_SYNC_LAG, lag);

    ngx_http_trl_batch_done(chunk->batch);
}


/* A chunk that did not reach Redis: its admissions wait for the next try. */

static void
ngx_http_trl_requeue(ngx_http_trl_chunk_t *chunk)
{
    ngx_uint_t            i;
    ngx_http_trl_note_t  *note, *again;

    if (ngx_http_trl_exiting) {
        return;
    }

    for (i = 0; i < chunk->n; i++) {
        note = chunk->notes[i];

        if (note->delta == 0 && note->penalty_ms == 0) {
            continue;                       /* a read: the next one will do */
        }

        again = ngx_http_trl_outbox_get()
                ? ngx_http_trl_outbox_find(ngx_http_trl_outbox, note->zone,
                                           &note->hash)
                : NULL;

        if (again) {
            again->since = again->delta ? ngx_min(again->since, note->since)
                                        : note->since;
            again->delta += note->delta;
            again->leased += note->leased;

        } else {
            again = ngx_http_trl_outbox_add(note->zone, &note->hash,
                                            &note->name, 1, note->delta,
                                            note->since);
            if (again == NULL) {
                continue;
            }

            again->leased = note->leased;
        }

        if (note->penalty_ms) {
            ngx_http_trl_note_penalty(again, note->penalty_ms,
                                      note->violations, note->forgive_ms);
        }
    }
}


static void
ngx_http_trl_batch_done(ngx_http_trl_batch_t *batch)
{
    if (--batch->chunks == 0) {
        ngx_destroy_pool(batch->pool);
    }
}


/*
 * The key's Redis name, <prefix>{<zone>:<key>} (a long key: its beginning
 * and a hash, see trl_redis_key), from pool, or from ngx_alloc when pool
 * is NULL (the caller frees it).  Every Redis name of a zone key is made
 * here.
 */

static ngx_int_t
ngx_http_trl_redis_name(ngx_pool_t *pool, ngx_http_trl_zone_t *zone,
    ngx_str_t *key, ngx_str_t *name)
{
    size_t                      size;
    ngx_http_trl_redis_conf_t  *rc;

    rc = ngx_http_trl_redis_conf();

    size = rc->prefix.len + zone->name.len + TRL_REDIS_NAME_MAX;

    name->data = pool ? ngx_pnalloc(pool, size)
                      : ngx_alloc(size, ngx_http_trl_sync_log);
    if (name->data == NULL) {
        name->len = 0;
        return NGX_ERROR;
    }

    name->len = trl_redis_key((char *) rc->prefix.data, rc->prefix.len,
                              (char *) zone->name.data, zone->name.len,
                              key->data, key->len, (char *) name->data,
                              size);

    if (name->len == 0 || name->len > size) {
        if (pool == NULL) {
            ngx_free(name->data);
        }

        name->data = NULL;
        name->len = 0;
        return NGX_ERROR;
    }

    return NGX_OK;
}


static ngx_str_t *
ngx_http_trl_number(ngx_pool_t *pool, ngx_str_t *s, uint64_t n)
{
    s->data = ngx_pnalloc(pool, NGX_INT64_LEN);
    if (s->data == NULL) {
        return NULL;
    }

    s->len = ngx_sprintf(s->data, "%uL", n) - s->data;

    return s;
}


/* A penalty factor as Lua reads it: "2", "1.5" (three decimals). */

static ngx_str_t *
ngx_http_trl_factor(ngx_pool_t *pool, ngx_str_t *s, double factor)
{
    uint64_t  milli;

    s->data = ngx_pnalloc(pool, NGX_INT64_LEN + 5);
    if (s->data == NULL) {
        return NULL;
    }

    milli = (uint64_t) (factor * 1000 + 0.5);

    s->len = ngx_sprintf(s->data, "%uL.%03uL", milli / 1000, milli % 1000)
             - s->data;

    return s;
}


/* --- administration (token_ratelimit_api) ------------------------------- */

/* Forgets a key cluster-wide: every node drops it within two intervals. */

ngx_int_t
ngx_http_trl_sync_reset(ngx_http_trl_zone_t *zone, ngx_str_t *key)
{
    ngx_int_t                   rv;
    ngx_str_t                   name;
    ngx_pool_t                 *pool;
    ngx_http_trl_redis_conf_t  *rc;

    rc = ngx_http_trl_redis_conf();
    if (rc == NULL) {
        return NGX_ERROR;
    }

    pool = ngx_create_pool(1024, ngx_http_trl_sync_log);
    if (pool == NULL) {
        return NGX_ERROR;
    }

    rv = ngx_http_trl_redis_name(pool, zone, key, &name);

    if (rv == NGX_OK) {
        rv = ngx_http_trl_redis_eval(TRL_SCRIPT_RESET, 1, &name, 1,
                                     rc->timeout, ngx_http_trl_ignore_reply,
                                     NULL);
    }

    if (rv != NGX_OK) {
        ngx_log_error(NGX_LOG_WARN, ngx_http_trl_sync_log, 0,
                      "token_ratelimit: redis is unreachable, the reset of "
                      "a key of zone \"%V\" is local only", &zone->name);
    }

    ngx_destroy_pool(pool);                 /* the command keeps a copy */

    return rv == NGX_OK ? NGX_OK : NGX_ERROR;
}


/* --- strict: a request waits for Redis --------------------------------- */

/*
 * Asks Redis for every strict zone of the request.  Returns NGX_AGAIN when
 * the request is to wait, NGX_OK when all is decided already (no question
 * could be sent: the fail policy has decided).
 */

ngx_int_t
ngx_http_trl_strict_start(ngx_http_request_t *r,
    ngx_http_trl_loc_conf_t *tlcf, ngx_http_trl_ctx_t *ctx)
{
    ngx_str_t                   args[8];
    ngx_uint_t                  i;
    trl_penalty_t              *penalty;
    ngx_pool_cleanup_t         *cln;
    ngx_http_trl_ask_t         *ask;
    ngx_http_trl_wait_t        *wait;
    ngx_http_trl_zone_t        *zone;
    ngx_http_trl_applied_t     *a;
    ngx_http_trl_redis_conf_t  *rc;

    rc = ngx_http_trl_redis_conf();

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

        if (!a->strict) {
            continue;
        }

        zone = a->zone;
        ask->state = NGX_HTTP_TRL_ASK_FAILED;
        ask->async = a->ask;

        /* the name outlives the request: a late answer may need it */

        if (ngx_http_trl_redis_name(NULL, zone, &a->key_text, &ask->name)
            != NGX_OK)
        {
            continue;
        }

        if (ask->async) {
            if (ngx_http_trl_ask_send(a, ask) != NGX_OK) {
                continue;
            }

            ask->state = NGX_HTTP_TRL_ASK_SENT;
            wait->unanswered++;
            wait->refs++;
            continue;
        }

        args[0] = ask->name;
        penalty = &a->limit->penalty;

        if (ngx_http_trl_number(r->pool, &args[1], zone->rate.window_ms)
            == NULL
            || ngx_http_trl_number(r->pool, &args[2],
                                   trl_redis_cell_ms(zone->rate.window_ms))
               == NULL
            || ngx_http_trl_number(r->pool, &args[3], zone->rate.limit)
               == NULL
            || ngx_http_trl_number(r->pool, &args[4],
                                   (tlcf->dry_run || a->limit->dry_run)
                                   ? 0 : penalty->base_ms)
               == NULL
            || ngx_http_trl_factor(r->pool, &args[5], penalty->factor)
               == NULL
            || ngx_http_trl_number(r->pool, &args[6], penalty->max_ms)
               == NULL
            || ngx_http_trl_number(r->pool, &args[7], penalty->forgive_ms)
               == NULL)
        {
            continue;
        }

        if (ngx_http_trl_redis_eval(TRL_SCRIPT_STRICT, 1, args, 8,
                                    rc->timeout, ngx_http_trl_strict_reply,
                                    ask)
            != NGX_OK)
        {
            continue;
        }

        ask->state = NGX_HTTP_TRL_ASK_SENT;
        wait->unanswered++;
        wait->refs++;
        trl_zone_sync_add(zone->zone, TRL_SYNC_STRICT, 1);
    }

    if (wait->unanswered == 0) {
        (void) ngx_http_trl_strict_finish(r, tlcf, ctx);
        return NGX_OK;
    }

    wait->timer.handler = ngx_http_trl_strict_timeout;
    wait->timer.data = wait;
    wait->timer.log = r->connection->log;

    wait->resume.handler = ngx_http_trl_strict_resume;
    wait->resume.data = wait;
    wait->resume.log = r->connection->log;

    ngx_add_timer(&wait->timer, rc->timeout);

    /* a client that goes away meanwhile ends the request */

    r->read_event_handler = ngx_http_test_reading;
    r->write_event_handler = ngx_http_request_empty_handler;

    return NGX_AGAIN;
}


static void
ngx_http_trl_strict_reply(redisReply *reply, void *data)
{
    ngx_http_trl_ask_t *ask = data;

    u_char      *p, *last;
    int64_t      v[8];
    ngx_uint_t   i;

    ask->state = NGX_HTTP_TRL_ASK_FAILED;

    /* admitted, total, free_in, reset_in, cell, violations, penalty,
     * block_in */

    if (reply && reply->type == REDIS_REPLY_STRING) {
        p = (u_char *) reply->str;
        last = p + reply->len;

        for (i = 0; i < 8; i++) {
            if (ngx_http_trl_reply_int(&p, last, &v[i]) != NGX_OK) {
                break;
            }
        }

        if (i == 8 && p == last) {
            ask->state = NGX_HTTP_TRL_ASK_ANSWERED;
            ask->reply.admitted = v[0] == 1;
            ask->reply.total = (uint32_t) v[1];
            ask->reply.free_in_ms = (uint32_t) v[2];
            ask->reply.reset_in_ms = (uint32_t) v[3];
            ask->cell = v[4];
            ask->reply.violations = (uint32_t) v[5];
            ask->reply.penalty = (uint8_t) v[6];
            ask->reply.block_in_ms = (uint32_t) v[7];

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
    ngx_http_trl_wait_t  *wait;

    wait = ask->wait;

    wait->unanswered--;

    /* Redis counted a place that nobody will use: give it back */

    if ((wait->request == NULL || ask->abandoned)
        && ask->state == NGX_HTTP_TRL_ASK_ANSWERED
        && (ask->async ? ask->answer.admitted : ask->reply.admitted))
    {
        ngx_http_trl_release_name(&ask->name, ask->cell);
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
 * Back in the handler: takes the answers into the zones; a question left
 * unanswered (timeout, link down) is decided by the fail policy.
 */

ngx_int_t
ngx_http_trl_strict_finish(ngx_http_request_t *r,
    ngx_http_trl_loc_conf_t *tlcf, ngx_http_trl_ctx_t *ctx)
{
    ngx_uint_t               i;
    trl_limit_t              tl;
    trl_result_t             res;
    ngx_http_trl_ask_t      *ask;
    ngx_http_trl_wait_t     *wait;
    ngx_http_trl_zone_t     *zone;
    ngx_http_trl_applied_t  *a;

    wait = ctx->wait;

    if (wait->unanswered && !wait->timed_out) {
        return NGX_AGAIN;
    }

    if (wait->timer.timer_set) {
        ngx_del_timer(&wait->timer);
    }

    r->read_event_handler = ngx_http_block_reading;

    for (i = 0; i < ctx->napplied; i++) {
        a = &ctx->applied[i];
        ask = &wait->asks[i];

        if (!a->strict) {
            continue;
        }

        a->strict = 0;
        zone = a->zone;
        tl = ngx_http_trl_limit(zone, a->limit, tlcf);

        if (ask->state == NGX_HTTP_TRL_ASK_ANSWERED && ask->async) {
            a->ask = 0;
            tl.flags |= TRL_LIMIT_LEASE;
            ask->answer.lease_ms = trl_lease_ms(zone->rate.window_ms);

            if (trl_zone_async_apply(zone->zone, &a->key, &tl, &ask->answer,
                                     TRL_CLOCK_NOW, &res)
                == TRL_OK)
            {
                ngx_http_trl_log_events(r, tlcf, zone, &tl, &a->key_text,
                                        &a->key, &res);
                ngx_http_trl_set_result(a, &tl, &res);
                trl_zone_sync_put(zone->zone, TRL_SYNC_LAST_OK,
                                  trl_clock_ms());

                trl_zone_sync_add(zone->zone, TRL_SYNC_READS, 1);

                if (ask->answer.admitted) {
                    a->in_redis = 1;        /* counted there already */
                    a->redis_cell = ask->cell;
                    trl_zone_sync_add(zone->zone, TRL_SYNC_PUBLISHED, 1);
                }

                if (a->penalty_ms) {
                    ngx_http_trl_sync_note(zone, a, 0);
                }
            }

            continue;
        }

        if (ask->state == NGX_HTTP_TRL_ASK_ANSWERED) {
            if (trl_zone_strict_apply(zone->zone, &a->key, &tl, &ask->reply,
                                      TRL_CLOCK_NOW, &res)
                == TRL_OK)
            {
                ngx_http_trl_log_events(r, tlcf, zone, &tl, &a->key_text,
                                        &a->key, &res);
                ngx_http_trl_set_result(a, &tl, &res);
                trl_zone_sync_put(zone->zone, TRL_SYNC_LAST_OK,
                                  trl_clock_ms());

                if (ask->reply.admitted) {
                    a->in_redis = 1;
                    a->redis_cell = ask->cell;
                }
            }

            continue;
        }

        if (ask->state == NGX_HTTP_TRL_ASK_SENT) {
            ask->abandoned = 1;             /* a late answer is given back */
        }

        trl_zone_sync_add(zone->zone, TRL_SYNC_ERRORS, 1);

        if (ngx_http_trl_fail_closed(a)) {
            continue;
        }

        trl_zone_sync_add(zone->zone, TRL_SYNC_FALLBACK, 1);

        a->publish = 1;                     /* once Redis is back */
        a->ask = 0;
        tl.flags &= ~(TRL_LIMIT_SYNC | TRL_LIMIT_LEASE);

        if (trl_zone_acquire(zone->zone, &a->key, &tl, TRL_CLOCK_NOW, &res)
            == TRL_OK)
        {
            ngx_http_trl_log_events(r, tlcf, zone, &tl, &a->key_text,
                                    &a->key, &res);
            ngx_http_trl_set_result(a, &tl, &res);
        }
    }

    return NGX_OK;
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
    u_char     num[NGX_INT64_LEN];
    ngx_str_t  args[2];

    args[0] = *name;
    args[1].data = num;
    args[1].len = ngx_sprintf(num, "%L", cell) - num;

    (void) ngx_http_trl_redis_eval(TRL_SCRIPT_RELEASE, 1, args, 2,
                                   ngx_http_trl_redis_conf()->timeout,
                                   ngx_http_trl_ignore_reply, NULL);
}


static void
ngx_http_trl_ignore_reply(redisReply *reply, void *data)
{
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


/* --- async: a request that the node cannot decide asks Redis ----------- */

/* "l:" and the node's id in hex: its reservations' field in a key. */

static ngx_str_t *
ngx_http_trl_own_field(ngx_http_trl_zone_t *zone, ngx_str_t *s, u_char *buf)
{
    s->data = buf;
    s->len = ngx_sprintf(buf, "l:%016xL", trl_zone_node_id(zone->zone))
             - buf;

    return s;
}


/*
 * The asks of a worker wait for the end of the current round of events:
 * those of one zone go to Redis together, up to NGX_HTTP_TRL_CHUNK keys per
 * script.
 */

static ngx_int_t
ngx_http_trl_ask_send(ngx_http_trl_applied_t *a, ngx_http_trl_ask_t *ask)
{
    ask->zone = a->zone;
    ask->next = ngx_http_trl_asks;
    ngx_http_trl_asks = ask;

    if (!ngx_http_trl_asks_ev.posted) {
        ngx_post_event(&ngx_http_trl_asks_ev, &ngx_posted_events);
    }

    trl_zone_sync_add(a->zone->zone, TRL_SYNC_STRICT, 1);  /* Redis decides */

    return NGX_OK;
}


static void
ngx_http_trl_asks_handler(ngx_event_t *ev)
{
    ngx_uint_t           n;
    ngx_http_trl_ask_t  *ask, *next, *rest, *batch[NGX_HTTP_TRL_CHUNK];

    rest = ngx_http_trl_asks;
    ngx_http_trl_asks = NULL;

    while (rest) {

        /* the asks of the first one's zone, a chunk at most */

        ask = rest;
        rest = NULL;
        n = 0;

        for ( /* void */ ; ask; ask = next) {
            next = ask->next;

            if (n == 0
                || (n < NGX_HTTP_TRL_CHUNK && ask->zone == batch[0]->zone))
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


static void
ngx_http_trl_asks_send(ngx_http_trl_ask_t **asks, ngx_uint_t n)
{
    u_char                      own[2 + 16], num[6][NGX_INT64_LEN];
    uint64_t                    limit, v[6];
    ngx_str_t                  *args;
    ngx_uint_t                  i;
    ngx_http_trl_ask_t        **batch;
    ngx_http_trl_zone_t        *zone;
    ngx_http_trl_redis_conf_t  *rc;

    rc = ngx_http_trl_redis_conf();
    zone = asks[0]->zone;
    limit = zone->rate.limit;

    /* keys; W, cell, N, own field, lease, hold, largest share */

    args = ngx_alloc((n + 7) * sizeof(ngx_str_t), ngx_http_trl_sync_log);
    batch = ngx_alloc((n + 1) * sizeof(ngx_http_trl_ask_t *),
                      ngx_http_trl_sync_log);

    if (args == NULL || batch == NULL) {
        goto failed;
    }

    for (i = 0; i < n; i++) {
        args[i] = asks[i]->name;
        batch[i] = asks[i];
    }

    batch[n] = NULL;

    v[0] = zone->rate.window_ms;
    v[1] = trl_redis_cell_ms(zone->rate.window_ms);
    v[2] = limit;
    v[3] = trl_lease_ms(zone->rate.window_ms);
    v[4] = 2 * rc->interval + rc->timeout;
    v[5] = (limit + 9) / 10;

    for (i = 0; i < 6; i++) {
        args[n + (i < 3 ? i : i + 1)].data = num[i];
        args[n + (i < 3 ? i : i + 1)].len = ngx_sprintf(num[i], "%uL", v[i])
                                            - num[i];
    }

    (void) ngx_http_trl_own_field(zone, &args[n + 3], own);

    if (ngx_http_trl_redis_eval(TRL_SCRIPT_ASK, n, args, n + 7, rc->timeout,
                                ngx_http_trl_asks_reply, batch)
        != NGX_OK)
    {
        goto failed;
    }

    ngx_free(args);                         /* the command keeps a copy */

    return;

failed:

    if (args) {
        ngx_free(args);
    }

    if (batch) {
        ngx_free(batch);
    }

    for (i = 0; i < n; i++) {
        asks[i]->state = NGX_HTTP_TRL_ASK_FAILED;
        ngx_http_trl_ask_done(asks[i]);
    }
}


/* now; per key: admitted, total, free_in, reset_in, penalty, violations,
 * cell, share */

static void
ngx_http_trl_asks_reply(redisReply *reply, void *data)
{
    ngx_http_trl_ask_t **batch = data;

    u_char               *p, *last;
    int64_t               now, v[8];
    ngx_uint_t            i, k, n, ok;
    ngx_http_trl_ask_t   *ask;

    for (n = 0; batch[n]; n++) { /* void */ }

    ok = 0;
    p = NULL;
    last = NULL;

    if (reply && reply->type == REDIS_REPLY_STRING) {
        p = (u_char *) reply->str;
        last = p + reply->len;
        ok = ngx_http_trl_reply_int(&p, last, &now) == NGX_OK;

        /* read whole before any of it is taken */

        for (i = 0; ok && i < 8 * n; i++) {
            ok = ngx_http_trl_reply_int(&p, last, &v[0]) == NGX_OK;
        }

        ok = ok && p == last;

        if (!ok) {
            ngx_http_trl_redis_unexpected(TRL_SCRIPT_ASK);
        }

    } else if (reply && reply->type != REDIS_REPLY_ERROR) {
        ngx_http_trl_redis_unexpected(TRL_SCRIPT_ASK);
    }

    if (ok) {
        p = (u_char *) reply->str;
        last = p + reply->len;
        (void) ngx_http_trl_reply_int(&p, last, &now);
    }

    for (i = 0; i < n; i++) {
        ask = batch[i];
        ask->state = NGX_HTTP_TRL_ASK_FAILED;

        if (ok) {
            for (k = 0; k < 8; k++) {
                (void) ngx_http_trl_reply_int(&p, last, &v[k]);
            }

            ask->state = NGX_HTTP_TRL_ASK_ANSWERED;
            ask->answer.stamp_ms = (uint64_t) now;
            ask->answer.admitted = v[0] == 1;
            ask->answer.total = (uint32_t) v[1];
            ask->answer.free_in_ms = (uint32_t) v[2];
            ask->answer.reset_in_ms = (uint32_t) v[3];
            ask->answer.penalty_in_ms = (uint32_t) v[4];
            ask->answer.violations = (uint32_t) v[5];
            ask->cell = v[6];
            ask->answer.lease = (uint32_t) v[7];
        }

        ngx_http_trl_ask_done(ask);
    }

    ngx_free(batch);
}
