
/*
 * ngx_http_token_ratelimit_distinct.c - distinct zones: the zone option
 * distinct=, their shared memory (a secret beside the core's zone), the
 * decision of one request and its settlement, and the variables
 * $token_ratelimit_distinct and $token_ratelimit_distinct_status.
 *
 * A distinct zone counts the distinct values of a string per key ("at
 * most 10 accounts per address per 10 minutes"); the core keeps 31-bit
 * fingerprints of the values, never the values (trl_distinct.h).  Every
 * admission is provisional at first: count=all confirms it once the
 * request is decided, count=failed/succeeded in the log phase, and a
 * request rejected by another zone gives it back (cancel).
 */


#include "ngx_http_token_ratelimit.h"
#include "ngx_http_token_ratelimit_util.h"
#include "ngx_http_token_ratelimit_sync.h"

#include <sys/random.h>


static ngx_int_t ngx_http_trl_distinct_async(ngx_http_request_t *r,
    ngx_http_trl_loc_conf_t *tlcf, ngx_http_trl_applied_t *a,
    trl_limit_t *tl);
static void ngx_http_trl_distinct_reply(redisReply *reply, void *data);
static ngx_int_t ngx_http_trl_distinct_eval(ngx_str_t *name,
    trl_distinct_redis_req_t *req, ngx_http_trl_reply_pt handler,
    void *data);


/*
 * The shared memory of a distinct zone: this head, then the core's zone.
 * The secret fingerprints values alike in every worker and across
 * reloads; it is made once per zone, from random bytes.
 */
#define NGX_HTTP_TRL_DISTINCT_HEAD    64
#define NGX_HTTP_TRL_DISTINCT_MAGIC   "trl-distinct-1"

#define NGX_HTTP_TRL_ERRLEN           256


static ngx_str_t  ngx_http_trl_distinct_names[] = {
    ngx_null_string,
    ngx_string("PASSED"),
    ngx_string("WARNED"),
    ngx_null_string,
    ngx_string("REJECTED_DRY_RUN"),
    ngx_string("REJECTED")
};


/* distinct=STRING: a string with variables, such as $trl_user */

char *
ngx_http_trl_distinct_option(ngx_conf_t *cf, ngx_command_t *cmd,
    ngx_str_t *value, ngx_http_trl_zone_t *ctx)
{
    ngx_str_t  v;

    v.data = value->data + 9;
    v.len = value->len - 9;

    if (v.len == 0 || ngx_strlchr(v.data, v.data + v.len, '$') == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid value \"%V\" in \"%V\" directive, "
                           "\"distinct=\" expects a string with variables, "
                           "such as distinct=$trl_user (defined by "
                           "\"token_ratelimit_subject\") or "
                           "distinct=$binary_remote_addr", value, &cmd->name);
        return NGX_CONF_ERROR;
    }

    ctx->distinct = ngx_http_trl_complex(cf, &v);

    return ctx->distinct ? NGX_CONF_OK : NGX_CONF_ERROR;
}


/*
 * The zone's whole configuration is read: N within the core's bound, and
 * a notice of the memory a key takes (nginx -t shows it).
 */

char *
ngx_http_trl_distinct_check(ngx_conf_t *cf, ngx_command_t *cmd,
    ngx_http_trl_zone_t *ctx, ssize_t size)
{
    size_t    bytes;
    uint32_t  keys;

    if (ctx->rate.limit > TRL_DISTINCT_MAX_LIMIT) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid rate \"rate=%V\" in \"%V\" directive: "
                           "a zone with \"distinct=\" counts at most %d "
                           "distinct values per key",
                           &ctx->rate_text, &cmd->name,
                           TRL_DISTINCT_MAX_LIMIT);
        return NGX_CONF_ERROR;
    }

    bytes = trl_distinct_key_bytes(ctx->rate.limit, 0);
    keys = trl_distinct_zone_keys(size - NGX_HTTP_TRL_DISTINCT_HEAD
                                  - 2 * ngx_pagesize, ctx->rate.limit, 0);

    if (keys == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "zone \"%V\" in \"%V\" directive is too small "
                           "for %uD distinct values per key (%uz bytes a "
                           "key), make it larger",
                           &ctx->name, &cmd->name, ctx->rate.limit, bytes);
        return NGX_CONF_ERROR;
    }

    ngx_conf_log_error(NGX_LOG_NOTICE, cf, 0,
                       "token_ratelimit_zone \"%V\" counts at most %uD "
                       "distinct values of \"%V\" per key (rate=%V): %uz "
                       "bytes a key, about %uD keys",
                       &ctx->name, ctx->rate.limit, &ctx->distinct->value,
                       &ctx->rate_text, bytes, keys);

    return NGX_CONF_OK;
}


/*
 * The head of a zone of slots (distinct and active zones): its magic, 16
 * random bytes at NGX_HTTP_TRL_SLOTS_SECRET (the fingerprints' secret
 * when no token_ratelimit_distinct_secret is configured), what its kind
 * keeps beyond; then the core's zone.
 */

ngx_int_t
ngx_http_trl_slots_head(ngx_shm_zone_t *shm_zone, u_char *block,
    size_t bytes, size_t head, const char *magic)
{
    u_char     *secret;
    ngx_uint_t  i;

    if (bytes <= head) {
        ngx_log_error(NGX_LOG_EMERG, shm_zone->shm.log, 0,
                      "token_ratelimit_zone \"%V\" is too small",
                      &shm_zone->shm.name);
        return NGX_ERROR;
    }

    ngx_memzero(block, head);
    ngx_memcpy(block, magic, ngx_strlen(magic) + 1);

    secret = block + NGX_HTTP_TRL_SLOTS_SECRET;

    if (getrandom(secret, 16, 0) != 16) {
        for (i = 0; i < 16; i++) {          /* no entropy source */
            secret[i] = (u_char) (ngx_random() ^ ngx_time() ^ ngx_pid);
        }
    }

    return NGX_OK;
}


/*
 * Every cycle: the zone made (or kept from the previous cycle) with the
 * head its kind has.  Its slots per key are fixed when it is made: a
 * reload may lower N, not raise it above them.
 */

ngx_int_t
ngx_http_trl_slots_attach(ngx_shm_zone_t *shm_zone, ngx_http_trl_zone_t *ctx,
    u_char *block, size_t head, const char *magic, const char *what)
{
    char      err[NGX_HTTP_TRL_ERRLEN];
    uint32_t  made;

    if (ngx_memcmp(block, magic, ngx_strlen(magic) + 1) != 0) {
        ngx_log_error(NGX_LOG_EMERG, shm_zone->shm.log, 0,
                      "token_ratelimit_zone \"%V\" did not count %s; "
                      "rename the zone to start it afresh",
                      &shm_zone->shm.name, what);
        return NGX_ERROR;
    }

    if (ctx->secret == NULL) {
        ctx->secret = block + NGX_HTTP_TRL_SLOTS_SECRET;
    }

    ctx->core = trl_zone_attach(block + head, 0, err, sizeof(err));

    if (ctx->core == NULL) {
        ngx_log_error(NGX_LOG_EMERG, shm_zone->shm.log, 0,
                      "token_ratelimit_zone \"%V\": %s; restart nginx or "
                      "rename the zone", &shm_zone->shm.name, err);
        return NGX_ERROR;
    }

    made = trl_distinct_zone_limit(ctx->core);

    if (made < ctx->rate.limit) {
        ngx_log_error(NGX_LOG_EMERG, shm_zone->shm.log, 0,
                      "token_ratelimit_zone \"%V\" was made for %uD "
                      "%s per key and cannot count %uD; rename the zone "
                      "(or change its size) to start it afresh",
                      &shm_zone->shm.name, made, what, ctx->rate.limit);
        ctx->core = NULL;
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* A new distinct zone (in the master). */

ngx_int_t
ngx_http_trl_distinct_create(ngx_shm_zone_t *shm_zone,
    ngx_http_trl_zone_t *ctx, u_char *block, size_t bytes)
{
    char  err[NGX_HTTP_TRL_ERRLEN];

    if (ngx_http_trl_slots_head(shm_zone, block, bytes,
                                NGX_HTTP_TRL_DISTINCT_HEAD,
                                NGX_HTTP_TRL_DISTINCT_MAGIC)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (trl_distinct_zone_create(block + NGX_HTTP_TRL_DISTINCT_HEAD,
                                 bytes - NGX_HTTP_TRL_DISTINCT_HEAD, 0,
                                 ctx->rate.limit, err, sizeof(err))
        == NULL)
    {
        ngx_log_error(NGX_LOG_EMERG, shm_zone->shm.log, 0,
                      "token_ratelimit_zone \"%V\": %s",
                      &shm_zone->shm.name, err);
        return NGX_ERROR;
    }

    return NGX_OK;
}


ngx_int_t
ngx_http_trl_distinct_attach(ngx_shm_zone_t *shm_zone,
    ngx_http_trl_zone_t *ctx, u_char *block)
{
    return ngx_http_trl_slots_attach(shm_zone, ctx, block,
                                     NGX_HTTP_TRL_DISTINCT_HEAD,
                                     NGX_HTTP_TRL_DISTINCT_MAGIC,
                                     "distinct values");
}


/*
 * The value this request counts in a distinct zone, as a fingerprint;
 * NGX_DECLINED when it is empty (no subject: the zone does not apply).
 * A value made of a subject from=upstream: is known in the log phase
 * only (a->late): until then a stand-in fingerprint asks whether the key
 * has room for one more value.
 */

ngx_int_t
ngx_http_trl_distinct_value(ngx_http_request_t *r, ngx_http_trl_applied_t *a)
{
    ngx_str_t             value;
    ngx_http_trl_ctx_t   *ctx;
    ngx_http_trl_zone_t  *zone;

    zone = a->zone;

    if (zone->active) {
        a->fp = ngx_http_trl_active_nonce();    /* every place is new */
        return NGX_OK;
    }

    ctx = ngx_http_trl_get_ctx(r);

    if (ctx) {
        ctx->late = 0;                      /* set by the subject */
    }

    if (ngx_http_complex_value(r, zone->distinct, &value) != NGX_OK) {
        return NGX_DECLINED;
    }

    if (ctx && ctx->late) {
        ctx->late = 0;
        a->late = 1;
        a->fp = (uint32_t) ngx_random() & 0x7fffffff;

        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "token_ratelimit: zone \"%V\": the distinct value "
                       "is counted in the log phase", &zone->name);
        return NGX_OK;
    }

    if (value.len == 0) {
        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "token_ratelimit: zone \"%V\": no distinct value, "
                       "not limited", &zone->name);
        return NGX_DECLINED;
    }

    a->fp = trl_distinct_fingerprint(zone->secret, value.data, value.len);

    return NGX_OK;
}


/*
 * Decides one request in a distinct zone (sync=strict: Redis decides;
 * sync=async: Redis decides a value the node does not hold).
 */

ngx_int_t
ngx_http_trl_distinct_apply(ngx_http_request_t *r,
    ngx_http_trl_loc_conf_t *tlcf, ngx_http_trl_applied_t *a,
    trl_limit_t *tl)
{
    tl->flags |= TRL_DISTINCT_PROVISIONAL;

    /*
     * An active zone's every place is new: sync=async, which decides
     * repeats on the node, asks Redis for each as sync=strict does.
     */

    if (a->zone->sync == TRL_SYNC_MODE_STRICT
        || (a->zone->active && a->zone->sync == TRL_SYNC_MODE_ASYNC))
    {
        tl->flags &= ~TRL_LIMIT_SYNC;       /* no lease: Redis's set */
        return ngx_http_trl_distinct_strict(r, tlcf, a, tl);
    }

    if (a->zone->sync == TRL_SYNC_MODE_ASYNC) {
        return ngx_http_trl_distinct_async(r, tlcf, a, tl);
    }

    return ngx_http_trl_distinct_local(r, tlcf, a, tl);
}


/*
 * sync=async: a value the node holds for the key, live and settled, was
 * admitted through Redis and is still in its set, so a repeat of it is
 * decided here at once, without extending its time (it leaves the window
 * here when it leaves Redis's set, and is then asked again).  Any other
 * value (new to this node, or a provisional hold in flight) is decided by
 * Redis exactly as in a sync=strict zone, and so is every value while
 * Redis is unreachable (the fail policy).  New values are thus exact
 * while Redis answers; extra values come from fail=open: what a node
 * admitted by itself while Redis was down is held here, and its repeats
 * stay local until it leaves the window.
 */

static ngx_int_t
ngx_http_trl_distinct_async(ngx_http_request_t *r,
    ngx_http_trl_loc_conf_t *tlcf, ngx_http_trl_applied_t *a,
    trl_limit_t *tl)
{
    trl_limit_t           held;
    trl_result_t          res;
    ngx_http_trl_zone_t  *zone;

    zone = a->zone;
    tl->flags &= ~TRL_LIMIT_SYNC;           /* no lease: Redis's set */

    if (a->late || !ngx_http_trl_sync_available()) {
        return ngx_http_trl_distinct_strict(r, tlcf, a, tl);
    }

    held = *tl;
    held.flags |= TRL_DISTINCT_HELD;

    if (trl_distinct_acquire(zone->core, &a->key, &held, a->fp,
                             TRL_CLOCK_NOW, &res)
        != TRL_OK)
    {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "token_ratelimit zone \"%V\" failed to decide; "
                      "the request is passed", &zone->name);
        return NGX_DECLINED;
    }

    if (res.ask) {
        return ngx_http_trl_distinct_strict(r, tlcf, a, tl);
    }

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "token_ratelimit: zone \"%V\": a value held here, "
                   "decided without Redis", &zone->name);

    ngx_http_trl_log_events(r, tlcf, zone, &held, &a->key_text, &a->key,
                            &res);
    ngx_http_trl_set_result(a, &held, &res);

    return a->rejected ? NGX_BUSY : NGX_OK;
}


/* Decides in the node's own slots, as apply_local does in other zones. */

ngx_int_t
ngx_http_trl_distinct_local(ngx_http_request_t *r,
    ngx_http_trl_loc_conf_t *tlcf, ngx_http_trl_applied_t *a,
    trl_limit_t *tl)
{
    trl_result_t          res;
    ngx_http_trl_zone_t  *zone;

    zone = a->zone;
    tl->flags |= TRL_DISTINCT_PROVISIONAL;

    if (zone->active) {
        tl->flags |= TRL_DISTINCT_UNIQUE;
    }

    if (trl_distinct_acquire(zone->core, &a->key, tl, a->fp, TRL_CLOCK_NOW,
                             &res)
        != TRL_OK)
    {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "token_ratelimit zone \"%V\" failed to decide; "
                      "the request is passed", &zone->name);
        return NGX_DECLINED;
    }

    ngx_http_trl_log_events(r, tlcf, zone, tl, &a->key_text, &a->key, &res);
    ngx_http_trl_set_result(a, tl, &res);

    if (a->late) {

        /*
         * The stand-in was admitted: the key has room for a new value, and
         * the real one is counted in the log phase.  Give the slot back so
         * that attempts in flight together do not hold one each.
         */

        if (a->admitted) {
            ngx_http_trl_distinct_settle(a, 0);
        }

        a->late = !a->rejected;
    }

    return a->rejected ? NGX_BUSY : NGX_OK;
}


/*
 * The log phase of a request admitted by a zone whose value comes from
 * the upstream's response (from=upstream:), when its outcome counts: the
 * value is recorded whatever the key's count (TRL_LIMIT_FORCE; at N + 1
 * values the oldest gives way): the attempt already happened.
 */

void
ngx_http_trl_distinct_late(ngx_http_request_t *r, ngx_http_trl_applied_t *a)
{
    uint32_t              fp;
    ngx_str_t             value;
    trl_limit_t           tl;
    trl_result_t          res;
    ngx_http_trl_zone_t  *zone;

    zone = a->zone;

    if (ngx_http_complex_value(r, zone->distinct, &value) != NGX_OK
        || value.len == 0)
    {
        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "token_ratelimit: zone \"%V\": no distinct value in "
                       "the response, not counted", &zone->name);
        return;
    }

    fp = trl_distinct_fingerprint(zone->secret, value.data, value.len);

    ngx_memzero(&tl, sizeof(trl_limit_t));
    tl.rate = zone->rate;
    tl.flags = TRL_LIMIT_FORCE;

    if (trl_distinct_acquire(zone->core, &a->key, &tl, fp, TRL_CLOCK_NOW,
                             &res)
        != TRL_OK)
    {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "token_ratelimit zone \"%V\" failed to count a "
                      "value of the response", &zone->name);
    }
}


/*
 * Settles an admission: keep (count=all once decided; count=failed on a
 * failure) or give back (the request was rejected by another zone, or
 * its outcome is not counted).  A value another request relies on stays.
 */

void
ngx_http_trl_distinct_settle(ngx_http_trl_applied_t *a, ngx_uint_t keep)
{
    trl_limit_t  tl;

    if (!a->admitted) {
        return;
    }

    a->admitted = 0;

    ngx_memzero(&tl, sizeof(trl_limit_t));
    tl.rate = a->zone->rate;

    if (keep) {
        (void) trl_distinct_confirm(a->zone->core, &a->key, &tl, a->ticket,
                                    TRL_CLOCK_NOW);
    } else {
        (void) trl_distinct_cancel(a->zone->core, &a->key, &tl, a->ticket,
                                   TRL_CLOCK_NOW);
        ngx_http_trl_distinct_release_redis(a);     /* sync=strict */
    }
}


/*
 * The distinct zones of the request: the most restrictive (fewest values
 * left) for $token_ratelimit_distinct, and their verdict together for
 * $token_ratelimit_distinct_status; NULL when none applied.
 */

static ngx_http_trl_applied_t *
ngx_http_trl_distinct_shown(ngx_http_request_t *r, ngx_uint_t *status)
{
    ngx_uint_t               i, s;
    ngx_http_trl_ctx_t      *ctx;
    ngx_http_trl_applied_t  *a, *best;

    ctx = ngx_http_trl_get_ctx(r);

    if (ctx == NULL || !ctx->decided || ctx->denied) {
        return NULL;
    }

    best = NULL;
    *status = NGX_HTTP_TRL_PASSED;

    for (i = 0; i < ctx->napplied; i++) {
        a = &ctx->applied[i];

        if (a->zone->distinct == NULL || a->unavailable) {
            continue;
        }

        s = a->rejected ? (a->dry_run ? NGX_HTTP_TRL_REJECTED_DRY_RUN
                                      : NGX_HTTP_TRL_REJECTED)
            : a->warned ? NGX_HTTP_TRL_WARNED : NGX_HTTP_TRL_PASSED;

        *status = ngx_max(*status, s);

        if (best == NULL || a->remaining < best->remaining) {
            best = a;
        }
    }

    return best;
}


ngx_int_t
ngx_http_trl_distinct_count_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    u_char                  *p;
    ngx_uint_t               status;
    ngx_http_trl_applied_t  *a;

    a = ngx_http_trl_distinct_shown(r, &status);

    if (a == NULL) {
        v->not_found = 1;
        return NGX_OK;
    }

    p = ngx_pnalloc(r->pool, NGX_INT32_LEN);
    if (p == NULL) {
        return NGX_ERROR;
    }

    v->len = ngx_sprintf(p, "%ui", a->zone->rate.limit
                                   - ngx_min(a->remaining,
                                             a->zone->rate.limit))
             - p;
    v->valid = 1;
    v->no_cacheable = 0;
    v->not_found = 0;
    v->data = p;

    return NGX_OK;
}


ngx_int_t
ngx_http_trl_distinct_status_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_uint_t  status;

    if (ngx_http_trl_distinct_shown(r, &status) == NULL) {
        v->not_found = 1;
        return NGX_OK;
    }

    v->valid = 1;
    v->no_cacheable = 0;
    v->not_found = 0;
    v->len = ngx_http_trl_distinct_names[status].len;
    v->data = ngx_http_trl_distinct_names[status].data;

    return NGX_OK;
}


/* --- sync=strict: Redis decides ------------------------------------------ */

/*
 * Distinct zones with sync=strict: Redis decides each request in one script on a sorted set
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

    trl_zone_sync_add(a->zone->core, TRL_SYNC_FALLBACK, 1);

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
    req->unique = a->zone->active != NULL;

    if (ngx_http_trl_distinct_eval(&ask->name, req,
                                   ngx_http_trl_distinct_reply, ask)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    trl_zone_sync_add(a->zone->core, TRL_SYNC_STRICT, 1);

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
    tl = ngx_http_trl_limit(a, tlcf);
    tl.flags |= TRL_DISTINCT_PROVISIONAL;

    if (answer == NULL) {
        trl_zone_sync_add(zone->core, TRL_SYNC_ERRORS, 1);

        if (ngx_http_trl_fail_closed(a)) {
            return;
        }

        trl_zone_sync_add(zone->core, TRL_SYNC_FALLBACK, 1);
        (void) ngx_http_trl_distinct_local(r, tlcf, a, &tl);
        return;
    }

    reply = &answer->dreply;

    if (trl_distinct_strict_apply(zone->core, &a->key, &tl, a->fp, reply,
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
    trl_zone_sync_put(zone->core, TRL_SYNC_LAST_OK, trl_clock_ms());

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
    trl_distinct_redis_req_t  req;

    if (!a->in_redis) {
        return;
    }

    a->in_redis = 0;

    ngx_memzero(&req, sizeof(trl_distinct_redis_req_t));
    req.op = TRL_DISTINCT_OP_CANCEL;
    req.fp = a->fp;
    req.made = 1;
    req.stamp_ms = (uint64_t) a->redis_cell;

    (void) ngx_http_trl_slots_call(a->zone, &a->key_text, &req, NULL, NULL);
}


/*
 * A call of the script on the Redis name of a zone's key (W and N are the
 * zone's); the command keeps its own copy of the name.
 */

ngx_int_t
ngx_http_trl_slots_call(ngx_http_trl_zone_t *zone, ngx_str_t *key,
    trl_distinct_redis_req_t *req, ngx_http_trl_reply_pt handler,
    void *data)
{
    ngx_int_t  rc;
    ngx_str_t  name;

    if (ngx_http_trl_redis_name(NULL, zone, key, &name) != NGX_OK) {
        return NGX_ERROR;
    }

    req->window_ms = zone->rate.window_ms;
    req->limit = zone->rate.limit;

    rc = ngx_http_trl_distinct_eval(&name, req, handler, data);
    ngx_free(name.data);

    return rc;
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
