
/*
 * ngx_http_token_ratelimit_sync_async.c - async zones over the Redis link:
 * the outbox and its publish.
 *
 * A worker decides at once from the places Redis reserved for the node
 * (its lease) or from a recent read that said "full", and else asks Redis
 * (sync_asks.c), the request waiting as a strict one does
 * (sync_strict.c); see trl_zone_async_apply.  The outbox holds
 * what is to be published: the admissions made from leases (and, after an
 * outage, on the node's own count), penalties started here, and the keys
 * rejected here (a read).  Every interval the outbox goes to Redis as
 * pipelined publish scripts (a chunk of keys each); the replies carry the
 * cluster totals back into the zone.  Each worker publishes exactly the
 * admissions it made, so a node publishes each admission once.  While
 * Redis is unreachable the outbox keeps the admissions (up to a bound) and
 * publishes them afterwards.
 *
 * Under cluster= every script's keys must share one hash slot: chunks are
 * then cut per zone and slot (each zone key is a slot of its own,
 * "{zone:key}"); with one Redis they are cut per zone only.
 */


#include "ngx_http_token_ratelimit_sync.h"
#include "ngx_http_token_ratelimit_util.h"


#define NGX_HTTP_TRL_OUTBOX_MAX    50000     /* keys per worker */
#define NGX_HTTP_TRL_EXIT_GRACE    2000      /* ms to publish when exiting */


typedef struct {
    ngx_rbtree_node_t            node;       /* key: the hash's low bits */
    ngx_http_trl_zone_t         *zone;
    trl_hash_t                   hash;
    ngx_str_t                    name;       /* the Redis key */
    ngx_int_t                    slot;       /* ... its hash slot, or -1 */
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


static void ngx_http_trl_sync_link_ready(void);
static ngx_http_trl_outbox_t *ngx_http_trl_outbox_get(void);
static void ngx_http_trl_note_penalty(ngx_http_trl_note_t *note,
    uint64_t penalty_ms, uint32_t violations, uint64_t forgive_ms);
static ngx_http_trl_note_t *ngx_http_trl_outbox_find(
    ngx_http_trl_outbox_t *ob, ngx_http_trl_zone_t *zone, trl_hash_t *hash);
static ngx_http_trl_note_t *ngx_http_trl_tree_find(ngx_rbtree_node_t *node,
    ngx_rbtree_node_t *sentinel, ngx_http_trl_zone_t *zone,
    trl_hash_t *hash);
static ngx_http_trl_note_t *ngx_http_trl_outbox_add(ngx_http_trl_zone_t *zone,
    trl_hash_t *hash, ngx_str_t *name, ngx_int_t slot, ngx_uint_t copy,
    ngx_uint_t delta, ngx_msec_t since);
static void ngx_http_trl_flush_handler(ngx_event_t *ev);
static void ngx_http_trl_flush(void);
static void ngx_http_trl_flush_zones(ngx_http_trl_outbox_t *ob,
    ngx_http_trl_batch_t *batch);
static void ngx_http_trl_flush_slots(ngx_http_trl_outbox_t *ob,
    ngx_http_trl_batch_t *batch);
static int ngx_libc_cdecl ngx_http_trl_note_cmp(const void *one,
    const void *two);
static ngx_http_trl_chunk_t *ngx_http_trl_chunk_create(
    ngx_http_trl_batch_t *batch, ngx_http_trl_zone_t *zone);
static ngx_int_t ngx_http_trl_send_chunk(ngx_http_trl_chunk_t *chunk);
static void ngx_http_trl_chunk_keys(ngx_http_trl_chunk_t *chunk,
    trl_publish_key_t *keys);
static void ngx_http_trl_chunk_reply(redisReply *reply, void *data);
static void ngx_http_trl_requeue(ngx_http_trl_chunk_t *chunk);
static void ngx_http_trl_batch_done(ngx_http_trl_batch_t *batch);


static ngx_http_trl_outbox_t  *ngx_http_trl_outbox;
static ngx_event_t             ngx_http_trl_flush_ev;
static ngx_uint_t              ngx_http_trl_inflight;
static ngx_uint_t              ngx_http_trl_flushing;
static ngx_uint_t              ngx_http_trl_exiting;
static ngx_msec_t              ngx_http_trl_exit_start;
static ngx_uint_t              ngx_http_trl_dropped_logged;
static ngx_log_t              *ngx_http_trl_sync_log;


ngx_int_t
ngx_http_trl_sync_init_process(ngx_cycle_t *cycle)
{
    ngx_http_trl_sync_log = cycle->log;

    ngx_http_trl_flush_ev.handler = ngx_http_trl_flush_handler;
    ngx_http_trl_flush_ev.data = &ngx_http_trl_dumb_connection;
    ngx_http_trl_flush_ev.log = cycle->log;
    ngx_http_trl_flush_ev.cancelable = 1;

    ngx_add_timer(&ngx_http_trl_flush_ev, ngx_http_trl_redis_conf()->interval);

    ngx_http_trl_asks_init(cycle);

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


/* --- the outbox --------------------------------------------------------- */

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

        note = ngx_http_trl_outbox_add(zone, &a->key, &name,
                                       ngx_http_trl_redis_slot(&name), 0, 0,
                                       0);
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

    /* ordered by the key alone: ties are looked for on both sides */
    ngx_rbtree_init(&ob->tree, &ob->sentinel, ngx_rbtree_insert_value);

    ngx_http_trl_outbox = ob;

    return ob;
}


static ngx_http_trl_note_t *
ngx_http_trl_outbox_add(ngx_http_trl_zone_t *zone, trl_hash_t *hash,
    ngx_str_t *name, ngx_int_t slot, ngx_uint_t copy, ngx_uint_t delta,
    ngx_msec_t since)
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
            (void) trl_zone_sync_unpend(zone->core, hash, (uint32_t) delta);
            trl_zone_sync_add(zone->core, TRL_SYNC_ERRORS, 1);

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
    note->slot = slot;
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

    /* not while a flush requeues what failed: that would flush again */

    if (ob->n >= NGX_HTTP_TRL_OUTBOX_MAX / 2 && !ngx_http_trl_flushing
        && ngx_http_trl_redis_ready())
    {
        ngx_http_trl_flush();
    }

    return note;
}


static ngx_http_trl_note_t *
ngx_http_trl_outbox_find(ngx_http_trl_outbox_t *ob, ngx_http_trl_zone_t *zone,
    trl_hash_t *hash)
{
    return ngx_http_trl_tree_find(ob->tree.root, ob->tree.sentinel, zone,
                                  hash);
}


/*
 * The tree is ordered by the hash's low bits alone (inserted with
 * ngx_rbtree_insert_value); notes that tie on them (the same bits in two
 * zones, or a 64-bit collision) may sit on either side of one another
 * after a rotation, so a tie is looked for on both sides.
 */

static ngx_http_trl_note_t *
ngx_http_trl_tree_find(ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel,
    ngx_http_trl_zone_t *zone, trl_hash_t *hash)
{
    ngx_rbtree_key_t      key;
    ngx_http_trl_note_t  *note;

    key = (ngx_rbtree_key_t) hash->lo;

    while (node != sentinel) {

        if (key != node->key) {
            node = (key < node->key) ? node->left : node->right;
            continue;
        }

        note = (ngx_http_trl_note_t *) node;

        if (note->hash.hi == hash->hi && note->zone == zone) {
            return note;
        }

        note = ngx_http_trl_tree_find(node->left, sentinel, zone, hash);
        if (note) {
            return note;
        }

        node = node->right;
    }

    return NULL;
}


/* --- publish ------------------------------------------------------------ */

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


/* Sends the outbox: per zone (and slot), chunks of keys, one script each. */

static void
ngx_http_trl_flush(void)
{
    ngx_rbtree_node_t      *root;
    ngx_http_trl_note_t    *note;
    ngx_http_trl_batch_t   *batch;
    ngx_http_trl_outbox_t  *ob;

    ob = ngx_http_trl_outbox;
    ngx_http_trl_outbox = NULL;             /* new notes: a new outbox */

    ngx_log_debug1(NGX_LOG_DEBUG_EVENT, ngx_cycle->log, 0,
                   "token_ratelimit: flush: %ui keys to publish", ob->n);

    batch = ngx_pcalloc(ob->pool, sizeof(ngx_http_trl_batch_t));
    if (batch == NULL) {
        ngx_destroy_pool(ob->pool);
        return;
    }

    batch->pool = ob->pool;
    batch->chunks = 1;                      /* held while sending */

    ngx_http_trl_flushing = 1;

    root = ob->tree.root;

    if (root != ob->tree.sentinel) {
        note = (ngx_http_trl_note_t *) ngx_rbtree_min(root,
                                                      ob->tree.sentinel);

        if (note->slot < 0) {
            ngx_http_trl_flush_zones(ob, batch);

        } else {
            ngx_http_trl_flush_slots(ob, batch);
        }
    }

    ngx_http_trl_flushing = 0;

    ngx_http_trl_batch_done(batch);
}


/* One Redis: a chunk per zone at a time, in the tree's order. */

static void
ngx_http_trl_flush_zones(ngx_http_trl_outbox_t *ob,
    ngx_http_trl_batch_t *batch)
{
    ngx_uint_t             i, n;
    ngx_rbtree_node_t     *node;
    ngx_http_trl_note_t   *note;
    ngx_http_trl_chunk_t  *chunk, **open;

    open = ngx_pcalloc(ob->pool, ob->n * sizeof(ngx_http_trl_chunk_t *));
    if (open == NULL) {
        return;
    }

    n = 0;

    for (node = ngx_rbtree_min(ob->tree.root, ob->tree.sentinel);
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
            chunk = ngx_http_trl_chunk_create(batch, note->zone);
            if (chunk == NULL) {
                break;
            }

            i = n++;
            open[i] = chunk;
        }

        chunk->notes[chunk->n++] = note;

        if (chunk->n == NGX_HTTP_TRL_CHUNK) {
            (void) ngx_http_trl_send_chunk(chunk);
            open[i] = NULL;
        }
    }

    for (i = 0; i < n; i++) {
        if (open[i]) {
            (void) ngx_http_trl_send_chunk(open[i]);
        }
    }
}


/* cluster=: the notes sorted by zone and slot, a chunk per run of them. */

static void
ngx_http_trl_flush_slots(ngx_http_trl_outbox_t *ob,
    ngx_http_trl_batch_t *batch)
{
    ngx_uint_t             i, n;
    ngx_rbtree_node_t     *node;
    ngx_http_trl_note_t  **notes, *note;
    ngx_http_trl_chunk_t  *chunk;

    notes = ngx_palloc(ob->pool, ob->n * sizeof(ngx_http_trl_note_t *));
    if (notes == NULL) {
        return;
    }

    n = 0;

    for (node = ngx_rbtree_min(ob->tree.root, ob->tree.sentinel);
         node && n < ob->n;
         node = ngx_rbtree_next(&ob->tree, node))
    {
        notes[n++] = (ngx_http_trl_note_t *) node;
    }

    ngx_qsort(notes, n, sizeof(ngx_http_trl_note_t *), ngx_http_trl_note_cmp);

    chunk = NULL;

    for (i = 0; i < n; i++) {
        note = notes[i];

        if (chunk
            && (chunk->n == NGX_HTTP_TRL_CHUNK || chunk->zone != note->zone
                || chunk->notes[0]->slot != note->slot))
        {
            (void) ngx_http_trl_send_chunk(chunk);
            chunk = NULL;
        }

        if (chunk == NULL) {
            chunk = ngx_http_trl_chunk_create(batch, note->zone);
            if (chunk == NULL) {
                return;
            }
        }

        chunk->notes[chunk->n++] = note;
    }

    if (chunk) {
        (void) ngx_http_trl_send_chunk(chunk);
    }
}


static int ngx_libc_cdecl
ngx_http_trl_note_cmp(const void *one, const void *two)
{
    ngx_http_trl_note_t  *a = *(ngx_http_trl_note_t **) one;
    ngx_http_trl_note_t  *b = *(ngx_http_trl_note_t **) two;

    if (a->zone != b->zone) {
        return (uintptr_t) a->zone < (uintptr_t) b->zone ? -1 : 1;
    }

    return (a->slot > b->slot) - (a->slot < b->slot);
}


static ngx_http_trl_chunk_t *
ngx_http_trl_chunk_create(ngx_http_trl_batch_t *batch,
    ngx_http_trl_zone_t *zone)
{
    ngx_http_trl_chunk_t  *chunk;

    chunk = ngx_pcalloc(batch->pool, sizeof(ngx_http_trl_chunk_t));
    if (chunk == NULL) {
        return NULL;
    }

    chunk->notes = ngx_palloc(batch->pool, NGX_HTTP_TRL_CHUNK
                                           * sizeof(ngx_http_trl_note_t *));
    if (chunk->notes == NULL) {
        return NULL;
    }

    chunk->batch = batch;
    chunk->zone = zone;

    return chunk;
}


static ngx_int_t
ngx_http_trl_send_chunk(ngx_http_trl_chunk_t *chunk)
{
    char                        buf[TRL_PUBLISH_BUF(NGX_HTTP_TRL_CHUNK)];
    trl_argv_t                  argv;
    trl_bytes_t                 args[TRL_PUBLISH_ARGS(NGX_HTTP_TRL_CHUNK)];
    trl_publish_key_t           keys[NGX_HTTP_TRL_CHUNK];
    trl_script_zone_t           sz;
    ngx_http_trl_redis_conf_t  *rc;

    rc = ngx_http_trl_redis_conf();

    ngx_http_trl_chunk_keys(chunk, keys);
    ngx_http_trl_script_zone(chunk->zone, &sz);
    trl_argv_init(&argv, args, TRL_PUBLISH_ARGS(NGX_HTTP_TRL_CHUNK), buf,
                  sizeof(buf));

    /* a publish is not a request's wait: give it at least an interval */

    if (trl_publish_encode(&sz, keys, chunk->n, &argv) != TRL_OK
        || ngx_http_trl_script_eval(TRL_SCRIPT_PUBLISH, chunk->n, &argv,
                                    ngx_max(rc->timeout, rc->interval),
                                    ngx_http_trl_chunk_reply, chunk)
           != NGX_OK)
    {
        trl_zone_sync_add(chunk->zone->core, TRL_SYNC_ERRORS, 1);
        ngx_http_trl_requeue(chunk);
        return NGX_ERROR;
    }

    chunk->batch->chunks++;
    ngx_http_trl_inflight++;

    return NGX_OK;
}


static void
ngx_http_trl_chunk_keys(ngx_http_trl_chunk_t *chunk, trl_publish_key_t *keys)
{
    ngx_uint_t            i;
    ngx_http_trl_note_t  *note;

    for (i = 0; i < chunk->n; i++) {
        note = chunk->notes[i];

        keys[i].name.data = (const char *) note->name.data;
        keys[i].name.len = note->name.len;
        keys[i].delta = note->delta;
        keys[i].leased = note->leased;
        keys[i].penalty_ms = note->penalty_ms;
        keys[i].violations = note->violations;
        keys[i].forgive_ms = note->forgive_ms;
    }
}


/* Redis's reply: per key a read of its cluster total, for the zone. */

static void
ngx_http_trl_chunk_reply(redisReply *reply, void *data)
{
    ngx_http_trl_chunk_t *chunk = data;

    uint64_t              published, lag;
    ngx_uint_t            i;
    trl_limit_t           tl;
    trl_sync_read_t       reads[NGX_HTTP_TRL_CHUNK];
    trl_publish_key_t     keys[NGX_HTTP_TRL_CHUNK];
    ngx_http_trl_note_t  *note;
    ngx_http_trl_zone_t  *zone;

    ngx_http_trl_inflight--;

    zone = chunk->zone;

    ngx_log_debug3(NGX_LOG_DEBUG_EVENT, ngx_cycle->log, 0,
                   "token_ratelimit: publish of zone \"%V\", %ui keys: %s",
                   &zone->name, chunk->n,
                   reply == NULL ? "no answer (kept for the next flush)"
                   : reply->type == REDIS_REPLY_ERROR ? "refused"
                   : "answered");

    /* an error reply is logged by redis.c, once per outage, not per call */

    if (reply == NULL || reply->type != REDIS_REPLY_STRING) {
        if (reply && reply->type != REDIS_REPLY_ERROR) {
            ngx_http_trl_redis_unexpected(TRL_SCRIPT_PUBLISH);
        }

        trl_zone_sync_add(zone->core, TRL_SYNC_ERRORS, 1);
        ngx_http_trl_requeue(chunk);
        ngx_http_trl_batch_done(chunk->batch);
        return;
    }

    ngx_http_trl_chunk_keys(chunk, keys);

    if (trl_publish_decode(reply->str, reply->len, keys, chunk->n, reads)
        != TRL_OK)
    {
        ngx_http_trl_redis_unexpected(TRL_SCRIPT_PUBLISH);
        trl_zone_sync_add(zone->core, TRL_SYNC_ERRORS, 1);
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

        (void) trl_zone_sync_apply(zone->core, &note->hash, &tl, &reads[i],
                                   TRL_CLOCK_NOW);

        published += note->delta;

        if (note->delta && ngx_current_msec - note->since > lag) {
            lag = ngx_current_msec - note->since;
        }
    }

    trl_zone_sync_add(zone->core, TRL_SYNC_PUBLISHED, published);
    trl_zone_sync_add(zone->core, TRL_SYNC_READS, chunk->n);
    trl_zone_sync_put(zone->core, TRL_SYNC_LAST_OK, trl_clock_ms());
    trl_zone_sync_put(zone->core, TRL_SYNC_LAG, lag);

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
                                            &note->name, note->slot, 1,
                                            note->delta, note->since);
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
