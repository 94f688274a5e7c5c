
/*
 * ngx_http_token_ratelimit_sync_lists.c - the runtime allow/deny lists
 * shared by the nodes through the Redis hash <prefix>lists.
 *
 * About once a second one worker of each node reconciles: it sends the
 * entries and removals Redis lacks and takes the whole hash in (the core's
 * trl_lists_outgoing / trl_lists_incoming decide what changes).  A change
 * through the API reconciles at once.
 *
 * The resets of keys of sync zones travel the same way, as entries kept a
 * minute: each node forgets the key when it first sees the entry.
 */


#include "ngx_http_token_ratelimit_sync.h"
#include "ngx_http_token_ratelimit_util.h"


#define NGX_HTTP_TRL_LISTS_EVERY     1000     /* ms between reconciles */
#define NGX_HTTP_TRL_LISTS_WAIT      1000     /* ms a reconcile may take */
#define NGX_HTTP_TRL_LISTS_PUTS      128      /* entries sent at a time */
#define NGX_HTTP_TRL_LISTS_DELS      256
#define NGX_HTTP_TRL_LISTS_RESETS    64       /* resets carried out at once */


/* One reconcile in flight: what was sent, to be confirmed by the reply. */
typedef struct {
    ngx_pool_t                 *pool;
    uint64_t                   *puts;
    size_t                      nputs;
    uint64_t                   *dels;
    size_t                      ndels;
} ngx_http_trl_reconcile_t;


static void ngx_http_trl_lists_timer(ngx_event_t *ev);
static void ngx_http_trl_lists_reconcile(ngx_uint_t force);
static ngx_int_t ngx_http_trl_lists_send(ngx_http_trl_redis_conf_t *rc);
static void ngx_http_trl_lists_reply(redisReply *reply, void *data);
static ngx_int_t ngx_http_trl_lists_take(ngx_http_trl_reconcile_t *rec,
    redisReply *reply);
static void ngx_http_trl_lists_reset(trl_list_entry_t *e, ngx_uint_t own);


static trl_lists_t               *ngx_http_trl_shared_lists;
static ngx_http_trl_main_conf_t  *ngx_http_trl_lists_tmcf;
static ngx_event_t   ngx_http_trl_lists_ev;
static ngx_log_t    *ngx_http_trl_lists_log;


void
ngx_http_trl_lists_sync_init(ngx_cycle_t *cycle)
{
    ngx_http_trl_main_conf_t  *tmcf;

    tmcf = ngx_http_cycle_get_module_main_conf(cycle,
                                               ngx_http_token_ratelimit_module);

    if (tmcf == NULL || tmcf->lists == NULL) {
        return;                             /* no token_ratelimit_api */
    }

    ngx_http_trl_shared_lists = tmcf->lists;
    ngx_http_trl_lists_tmcf = tmcf;
    ngx_http_trl_lists_log = cycle->log;

    ngx_http_trl_lists_ev.handler = ngx_http_trl_lists_timer;
    ngx_http_trl_lists_ev.data = &ngx_http_trl_dumb_connection;
    ngx_http_trl_lists_ev.log = cycle->log;
    ngx_http_trl_lists_ev.cancelable = 1;

    /* the workers' timers spread over the second */
    ngx_add_timer(&ngx_http_trl_lists_ev,
                  NGX_HTTP_TRL_LISTS_EVERY / 4
                  + (ngx_msec_t) ngx_random() % NGX_HTTP_TRL_LISTS_EVERY);
}


void
ngx_http_trl_lists_sync_exit(void)
{
    if (ngx_http_trl_lists_ev.timer_set) {
        ngx_del_timer(&ngx_http_trl_lists_ev);
    }

    ngx_http_trl_shared_lists = NULL;
}


/* An entry was added or removed through the API: tell Redis now. */

void
ngx_http_trl_lists_sync_now(void)
{
    ngx_http_trl_lists_reconcile(1);
}


static void
ngx_http_trl_lists_timer(ngx_event_t *ev)
{
    ngx_http_trl_lists_reconcile(0);

    if (!ngx_exiting) {
        ngx_add_timer(ev, NGX_HTTP_TRL_LISTS_EVERY / 4);
    }
}


static void
ngx_http_trl_lists_reconcile(ngx_uint_t force)
{
    ngx_http_trl_redis_conf_t  *rc;

    rc = ngx_http_trl_redis_conf();

    if (ngx_http_trl_shared_lists == NULL || rc == NULL
        || !ngx_http_trl_redis_ready())
    {
        return;                 /* the entries wait in the lists meanwhile */
    }

    if (!trl_lists_sync_due(ngx_http_trl_shared_lists,
                            ngx_http_trl_wall_ms(),
                            NGX_HTTP_TRL_LISTS_EVERY,
                            NGX_HTTP_TRL_LISTS_WAIT + 500, (int) force))
    {
        return;                 /* not due, or another worker is at it */
    }

    ngx_log_debug1(NGX_LOG_DEBUG_EVENT, ngx_cycle->log, 0,
                   "token_ratelimit: lists: reconcile with redis%s",
                   force ? " (asked for)" : "");

    if (ngx_http_trl_lists_send(rc) != NGX_OK) {
        (void) trl_lists_sync_done(ngx_http_trl_shared_lists);
    }
}


static ngx_int_t
ngx_http_trl_lists_send(ngx_http_trl_redis_conf_t *rc)
{
    size_t                     i, n, ndels;
    char                      *buf;
    uint64_t                   now_ms, epoch;
    ngx_pool_t                *pool;
    trl_argv_t                 argv;
    trl_bytes_t               *args;
    trl_list_entry_t          *puts;
    ngx_http_trl_reconcile_t  *rec;

    pool = ngx_create_pool(4096, ngx_http_trl_lists_log);
    if (pool == NULL) {
        return NGX_ERROR;
    }

    rec = ngx_pcalloc(pool, sizeof(ngx_http_trl_reconcile_t));
    puts = ngx_palloc(pool, NGX_HTTP_TRL_LISTS_PUTS
                            * sizeof(trl_list_entry_t));

    if (rec == NULL || puts == NULL) {
        goto failed;
    }

    rec->pool = pool;
    rec->puts = ngx_palloc(pool, NGX_HTTP_TRL_LISTS_PUTS * sizeof(uint64_t));
    rec->dels = ngx_palloc(pool, NGX_HTTP_TRL_LISTS_DELS * sizeof(uint64_t));

    if (rec->puts == NULL || rec->dels == NULL) {
        goto failed;
    }

    now_ms = ngx_http_trl_wall_ms();

    n = trl_lists_outgoing(ngx_http_trl_shared_lists, puts,
                           NGX_HTTP_TRL_LISTS_PUTS, rec->dels,
                           NGX_HTTP_TRL_LISTS_DELS, &ndels, now_ms);

    args = ngx_palloc(pool, TRL_LISTS_ARGS(n, ndels) * sizeof(trl_bytes_t));
    buf = ngx_pnalloc(pool, TRL_LISTS_BUF(rc->prefix.len, n, ndels));

    if (args == NULL || buf == NULL) {
        goto failed;
    }

    for (i = 0; i < n; i++) {
        rec->puts[i] = puts[i].id;

        if (puts[i].action == TRL_LIST_RESET) {
            ngx_http_trl_lists_reset(&puts[i], 1);  /* Redis's part, again */
        }
    }

    rec->nputs = n;
    rec->ndels = ndels;

    /* the epoch a rebuilt hash gets: a random id below 2^53 */

    epoch = ((uint64_t) ngx_random() << 31 ^ ngx_random())
            % 9007199254740991 + 1;

    trl_argv_init(&argv, args, TRL_LISTS_ARGS(n, ndels), buf,
                  TRL_LISTS_BUF(rc->prefix.len, n, ndels));

    if (trl_lists_encode((char *) rc->prefix.data, rc->prefix.len, now_ms,
                         epoch, puts, n, rec->dels, ndels, &argv)
        != TRL_OK
        || ngx_http_trl_script_eval(TRL_SCRIPT_LISTS, 1, &argv,
                                    ngx_max(rc->timeout,
                                            NGX_HTTP_TRL_LISTS_WAIT),
                                    ngx_http_trl_lists_reply, rec)
           != NGX_OK)
    {
        goto failed;
    }

    return NGX_OK;                          /* the command keeps a copy */

failed:

    ngx_destroy_pool(pool);
    return NGX_ERROR;
}


static void
ngx_http_trl_lists_reply(redisReply *reply, void *data)
{
    ngx_http_trl_reconcile_t  *rec = data;

    if (ngx_http_trl_shared_lists == NULL) {
        ngx_destroy_pool(rec->pool);        /* exiting */
        return;
    }

    /*
     * Not this time: the next reconcile tries again.  An error reply is
     * logged by redis.c, once per outage; a link that failed, once too.
     */

    ngx_log_debug1(NGX_LOG_DEBUG_EVENT, ngx_cycle->log, 0,
                   "token_ratelimit: lists: reconcile %s",
                   reply == NULL ? "got no answer"
                   : reply->type == REDIS_REPLY_ERROR ? "refused"
                   : "answered");

    if (reply && reply->type != REDIS_REPLY_ERROR
        && (reply->type != REDIS_REPLY_ARRAY
            || ngx_http_trl_lists_take(rec, reply) != NGX_OK))
    {
        ngx_http_trl_redis_unexpected(TRL_SCRIPT_LISTS);
    }

    ngx_destroy_pool(rec->pool);

    if (trl_lists_sync_done(ngx_http_trl_shared_lists)) {
        ngx_http_trl_lists_reconcile(1);    /* asked for meanwhile */
    }
}


/* The reply: the hash's epoch, then id and value per entry. */

static ngx_int_t
ngx_http_trl_lists_take(ngx_http_trl_reconcile_t *rec, redisReply *reply)
{
    size_t             i, n, nresets;
    uint64_t           epoch;
    redisReply        *el;
    trl_bytes_t       *elements;
    trl_list_entry_t  *remote, resets[NGX_HTTP_TRL_LISTS_RESETS];

    elements = ngx_palloc(rec->pool, (reply->elements + 1)
                                     * sizeof(trl_bytes_t));
    remote = ngx_palloc(rec->pool, (reply->elements / 2 + 1)
                                   * sizeof(trl_list_entry_t));
    if (elements == NULL || remote == NULL) {
        return NGX_ERROR;
    }

    for (i = 0; i < reply->elements; i++) {
        el = reply->element[i];

        elements[i].data = el->type == REDIS_REPLY_STRING ? el->str : NULL;
        elements[i].len = el->type == REDIS_REPLY_STRING ? el->len : 0;
    }

    if (trl_lists_decode(elements, reply->elements, &epoch, remote,
                         reply->elements / 2 + 1, &n)
        != TRL_OK)
    {
        return NGX_ERROR;
    }

    trl_lists_incoming(ngx_http_trl_shared_lists, epoch, remote, n,
                       rec->puts, rec->nputs, rec->dels, rec->ndels,
                       resets, NGX_HTTP_TRL_LISTS_RESETS, &nresets,
                       ngx_http_trl_wall_ms());

    for (i = 0; i < nresets; i++) {
        ngx_http_trl_lists_reset(&resets[i], 0);
    }

    return NGX_OK;
}


/*
 * A reset of a key of a sync zone: another node's is carried out here (the
 * zone forgets the key); this node's own, on its way to Redis, deletes the
 * key's Redis entries once more (the API's first attempt may have found
 * the link down).
 */

static void
ngx_http_trl_lists_reset(trl_list_entry_t *e, ngx_uint_t own)
{
    size_t                 len;
    ngx_str_t              key;
    ngx_uint_t             i;
    trl_hash_t             hash;
    ngx_http_trl_zone_t  **zones, *zone;

    len = ngx_strlen(e->zone);
    zones = ngx_http_trl_lists_tmcf->zones.elts;
    zone = NULL;

    for (i = 0; i < ngx_http_trl_lists_tmcf->zones.nelts; i++) {
        if (zones[i]->name.len == len
            && ngx_strncmp(zones[i]->name.data, e->zone, len) == 0)
        {
            zone = zones[i];
            break;
        }
    }

    if (zone == NULL || zone->sync == TRL_SYNC_MODE_OFF) {
        return;                             /* not shared with that node */
    }

    key.data = (u_char *) e->key;
    key.len = e->key_len;

    if (own) {
        (void) ngx_http_trl_sync_reset(zone, &key);
        return;
    }

    trl_zone_hash(zone->core, key.data, key.len, &hash);
    (void) trl_zone_reset(zone->core, &hash);

    ngx_log_error(NGX_LOG_INFO, ngx_http_trl_lists_log, 0,
                  "token_ratelimit zone \"%V\": a key was reset through "
                  "the API of another node", &zone->name);
}


