
/*
 * ngx_http_token_ratelimit_active.c - active zones: the zone options
 * active[=MAX], lifetime= and token=, their shared memory, and the
 * settlement of an issuance (its place held for the token's lifetime, or
 * given back) when the request ends.
 *
 * An active zone counts the tokens a key holds at once.  It is a distinct
 * zone whose every admission is a new value (a random nonce) and whose
 * window is MAX (trl_active.h): the decision, the provisional hold of a
 * request in flight, the cancel, sync=strict and the header fields are the
 * distinct zone's (distinct.c).  What is its own: the lifetime read from
 * the upstream's answer in the log phase, the token's id, the release
 * (active_release.c), and counters in the zone's head.
 */


#include "ngx_http_token_ratelimit.h"
#include "ngx_http_token_ratelimit_util.h"
#include "ngx_http_token_ratelimit_sync.h"



/*
 * The shared memory of an active zone: this head, then the core's zone.
 * MAX is kept so that a reload cannot change it under the stored times
 * (a slot's time is expiry - MAX).
 */
#define NGX_HTTP_TRL_ACTIVE_MAGIC   "trl-active-1"
#define NGX_HTTP_TRL_ACTIVE_MAX     16      /* uint64_t MAX, ms */
#define NGX_HTTP_TRL_ACTIVE_STATS   64      /* ngx_atomic_t counters */

#define NGX_HTTP_TRL_ERRLEN         256



static ngx_http_trl_active_t *ngx_http_trl_active_conf(ngx_conf_t *cf,
    ngx_http_trl_zone_t *ctx);
static uint64_t ngx_http_trl_active_lifetime(ngx_http_request_t *r,
    ngx_http_trl_zone_t *zone);
static void ngx_http_trl_active_redis_settle(ngx_http_trl_applied_t *a,
    uint64_t lifetime_ms, uint32_t id);


/* active, active=MAX, lifetime=STRING, token=STRING */

char *
ngx_http_trl_active_option(ngx_conf_t *cf, ngx_command_t *cmd,
    ngx_str_t *value, ngx_http_trl_zone_t *ctx)
{
    char                       err[256];
    uint64_t                   ms;
    ngx_str_t                  v;
    ngx_http_complex_value_t  *cv;
    ngx_http_trl_active_t     *act;

    act = ngx_http_trl_active_conf(cf, ctx);
    if (act == NULL) {
        return NGX_CONF_ERROR;
    }

    if (value->len == 6) {                  /* "active" */
        act->on = 1;
        return NGX_CONF_OK;
    }

    if (ngx_strncmp(value->data, "active=", 7) == 0) {
        if (trl_active_parse((char *) value->data + 7, value->len - 7, &ms,
                             err, sizeof(err))
            != TRL_OK)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid value \"%V\" in \"%V\" directive: "
                               "%s", value, &cmd->name, err);
            return NGX_CONF_ERROR;
        }

        act->on = 1;
        act->max_ms = ms;
        act->max_text = *value;
        return NGX_CONF_OK;
    }

    /* lifetime= or token= */

    if (ngx_strncmp(value->data, "lifetime=", 9) == 0) {
        v.data = value->data + 9;
        v.len = value->len - 9;

    } else {
        v.data = value->data + 6;
        v.len = value->len - 6;
    }

    if (v.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "empty value \"%V\" in \"%V\" directive, expected "
                           "a string with variables such as "
                           "lifetime=$upstream_http_x_expires_in or "
                           "token=$upstream_http_x_token_id",
                           value, &cmd->name);
        return NGX_CONF_ERROR;
    }

    cv = ngx_http_trl_complex(cf, &v);
    if (cv == NULL) {
        return NGX_CONF_ERROR;
    }

    if (value->data[0] == 'l') {
        act->lifetime = cv;

    } else {
        act->token = cv;
    }

    return NGX_CONF_OK;
}


/*
 * A policy file's active:, lifetime: and token: (the core checked them):
 * as the zone options, then the same check.
 */

char *
ngx_http_trl_active_policy(ngx_conf_t *cf, ngx_command_t *cmd,
    ngx_http_trl_zone_t *ctx, trl_policy_t *policy)
{
    ngx_uint_t                  i;
    ngx_str_t                   v;
    ngx_http_trl_active_t      *act;
    const char                 *text[2];
    ngx_http_complex_value_t  **cv[2];

    if (!policy->active) {
        return NGX_CONF_OK;
    }

    act = ngx_http_trl_active_conf(cf, ctx);
    if (act == NULL) {
        return NGX_CONF_ERROR;
    }

    act->on = 1;
    act->max_ms = policy->active_max_ms;

    text[0] = policy->lifetime;
    text[1] = policy->token;
    cv[0] = &act->lifetime;
    cv[1] = &act->token;

    for (i = 0; i < 2; i++) {
        if (text[i] == NULL) {
            continue;
        }

        /* a copy: the policy set does not outlive the configuration */

        v.len = ngx_strlen(text[i]);
        v.data = ngx_pnalloc(cf->pool, v.len);
        if (v.data == NULL) {
            return NGX_CONF_ERROR;
        }

        ngx_memcpy(v.data, text[i], v.len);

        *cv[i] = ngx_http_trl_complex(cf, &v);
        if (*cv[i] == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    return ngx_http_trl_active_check(cf, cmd, ctx,
                                     (ssize_t) policy->zone_size);
}


static ngx_http_trl_active_t *
ngx_http_trl_active_conf(ngx_conf_t *cf, ngx_http_trl_zone_t *ctx)
{
    if (ctx->active == NULL) {
        ctx->active = ngx_pcalloc(cf->pool, sizeof(ngx_http_trl_active_t));
    }

    return ctx->active;
}


/*
 * The zone's whole configuration is read: the options agree, W becomes
 * the lifetime used when none is known and MAX the zone's window, and a
 * notice states the memory a key takes (nginx -t shows it).
 */

char *
ngx_http_trl_active_check(ngx_conf_t *cf, ngx_command_t *cmd,
    ngx_http_trl_zone_t *ctx, ssize_t size)
{
    size_t                  bytes;
    uint32_t                keys;
    ngx_http_trl_active_t  *act;

    act = ctx->active;

    if (act == NULL) {
        return NGX_CONF_OK;
    }

    if (!act->on) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"lifetime=\" and \"token=\" of \"%V\" directive "
                           "need \"active\": they are the lifetime and the "
                           "id of a place in an active zone", &cmd->name);
        return NGX_CONF_ERROR;
    }

    if (ctx->distinct || ctx->signal) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"active\" cannot be combined with \"%s\" in "
                           "\"%V\" directive: a zone counts active places, "
                           "distinct values or requests",
                           ctx->distinct ? "distinct=" : "signal=",
                           &cmd->name);
        return NGX_CONF_ERROR;
    }

    if (ctx->rate.limit > TRL_DISTINCT_MAX_LIMIT) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid rate \"rate=%V\" in \"%V\" directive: "
                           "an active zone holds at most %d places per key",
                           &ctx->rate_text, &cmd->name,
                           TRL_DISTINCT_MAX_LIMIT);
        return NGX_CONF_ERROR;
    }

    if (act->max_ms == 0) {
        act->max_ms = ctx->rate.window_ms;
    }

    if (act->max_ms < ctx->rate.window_ms) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid value \"%V\" in \"%V\" directive: "
                           "the longest lifetime must be at least the "
                           "rate's window (rate=%V), which is the lifetime "
                           "of a token whose answer tells none",
                           &act->max_text, &cmd->name, &ctx->rate_text);
        return NGX_CONF_ERROR;
    }

    act->default_ms = ctx->rate.window_ms;
    ctx->rate.window_ms = act->max_ms;      /* the core's window: MAX */

    bytes = trl_distinct_key_bytes(ctx->rate.limit, 0);
    keys = trl_distinct_zone_keys(size - NGX_HTTP_TRL_ACTIVE_HEAD
                                  - 2 * ngx_pagesize, ctx->rate.limit, 0);

    if (keys == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "zone \"%V\" in \"%V\" directive is too small "
                           "for %uD active places per key (%uz bytes a "
                           "key), make it larger",
                           &ctx->name, &cmd->name, ctx->rate.limit, bytes);
        return NGX_CONF_ERROR;
    }

    ngx_conf_log_error(NGX_LOG_NOTICE, cf, 0,
                       "token_ratelimit_zone \"%V\" holds at most %uD "
                       "active places per key, each for its token's "
                       "lifetime (%M s when none is known, at most %M s): "
                       "%uz bytes a key, about %uD keys",
                       &ctx->name, ctx->rate.limit,
                       (ngx_msec_t) (act->default_ms / 1000),
                       (ngx_msec_t) (act->max_ms / 1000), bytes, keys);

    return NGX_CONF_OK;
}


/* A new zone (in the master): the head with MAX, the zone. */

ngx_int_t
ngx_http_trl_active_create(ngx_shm_zone_t *shm_zone,
    ngx_http_trl_zone_t *ctx, u_char *block, size_t bytes)
{
    char  err[NGX_HTTP_TRL_ERRLEN];

    if (ngx_http_trl_slots_head(shm_zone, block, bytes,
                                NGX_HTTP_TRL_ACTIVE_HEAD,
                                NGX_HTTP_TRL_ACTIVE_MAGIC)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    ngx_memcpy(block + NGX_HTTP_TRL_ACTIVE_MAX, &ctx->active->max_ms,
               sizeof(uint64_t));

    if (trl_active_zone_create(block + NGX_HTTP_TRL_ACTIVE_HEAD,
                               bytes - NGX_HTTP_TRL_ACTIVE_HEAD,
                               ctx->rate.limit, ctx->active->max_ms, err,
                               sizeof(err))
        == NULL)
    {
        ngx_log_error(NGX_LOG_EMERG, shm_zone->shm.log, 0,
                      "token_ratelimit_zone \"%V\": %s",
                      &shm_zone->shm.name, err);
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * Every cycle: the zone made (or kept).  A reload may not change MAX (the
 * stored times are relative to it).
 */

ngx_int_t
ngx_http_trl_active_attach(ngx_shm_zone_t *shm_zone,
    ngx_http_trl_zone_t *ctx, u_char *block)
{
    uint64_t  max_ms;

    if (ngx_http_trl_slots_attach(shm_zone, ctx, block,
                                  NGX_HTTP_TRL_ACTIVE_HEAD,
                                  NGX_HTTP_TRL_ACTIVE_MAGIC, "active places")
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    ngx_memcpy(&max_ms, block + NGX_HTTP_TRL_ACTIVE_MAX, sizeof(uint64_t));

    if (max_ms != ctx->active->max_ms
        || trl_active_zone_max(ctx->core) != max_ms)
    {
        ngx_log_error(NGX_LOG_EMERG, shm_zone->shm.log, 0,
                      "token_ratelimit_zone \"%V\" was made with "
                      "active=%Ms and cannot change it to active=%Ms (the "
                      "places it holds are timed from it); rename the "
                      "zone to start it afresh", &shm_zone->shm.name,
                      (ngx_msec_t) (max_ms / 1000),
                      (ngx_msec_t) (ctx->active->max_ms / 1000));
        ctx->core = NULL;
        return NGX_ERROR;
    }

    ctx->active->stats = (ngx_atomic_t *) (block + NGX_HTTP_TRL_ACTIVE_STATS);

    return NGX_OK;
}


/* An issuance's value: a nonce, new to the key (trl_active.h). */

uint32_t
ngx_http_trl_active_nonce(void)
{
    return trl_active_nonce((uint32_t) ngx_random()
                            ^ (uint32_t) ((uintptr_t) ngx_pid << 16));
}


/*
 * The request ended and its place counts: held for the token's lifetime
 * (the upstream's, else W, at most MAX) under the token's id, if any.
 */

void
ngx_http_trl_active_keep(ngx_http_request_t *r, ngx_http_trl_applied_t *a)
{
    uint32_t                id, held;
    uint64_t                life;
    trl_limit_t             tl;
    ngx_http_trl_ctx_t     *ctx;
    ngx_http_trl_zone_t    *zone;
    ngx_http_trl_active_t  *act;

    zone = a->zone;
    act = zone->active;
    a->admitted = 0;

    life = ngx_http_trl_active_lifetime(r, zone);

    id = ngx_http_trl_active_token(r, zone, act->token);

    ngx_memzero(&tl, sizeof(trl_limit_t));
    tl.rate = zone->rate;

    held = 0;

    if (trl_active_settle(zone->core, &a->key, &tl, a->ticket, life, id,
                          TRL_CLOCK_NOW, &held)
        != TRL_OK)
    {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "token_ratelimit zone \"%V\" failed to keep a place",
                      &zone->name);
    }

    if (life) {
        ngx_atomic_fetch_add(&act->stats[NGX_HTTP_TRL_ACTIVE_ISSUED], 1);
    }

    ctx = ngx_http_trl_get_ctx(r);

    if (ctx) {
        ngx_http_trl_active_show(ctx, held);
        ctx->active_lifetime = ngx_max(ctx->active_lifetime,
                                       (uint32_t) ((life + 999) / 1000));
    }

    ngx_log_debug4(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "token_ratelimit: zone \"%V\": place kept for %uL ms, "
                   "token id %08xD, %uD held", &zone->name, life, id, held);

    if (a->in_redis) {
        a->in_redis = 0;
        ngx_http_trl_active_redis_settle(a, life, id);
    }
}


/* The id of a token= (or release token=) on r, 0: none. */

uint32_t
ngx_http_trl_active_token(ngx_http_request_t *r, ngx_http_trl_zone_t *zone,
    ngx_http_complex_value_t *cv)
{
    ngx_str_t  token;

    if (cv == NULL || ngx_http_complex_value(r, cv, &token) != NGX_OK
        || token.len == 0)
    {
        return 0;
    }

    return trl_active_id(zone->secret, token.data, token.len);
}


/*
 * The lifetime of the request's token: lifetime= evaluated now (the
 * upstream has answered), an integer of seconds (expires_in) or an nginx
 * time; none known: W; over MAX: MAX.  0 holds no place.
 */

static uint64_t
ngx_http_trl_active_lifetime(ngx_http_request_t *r, ngx_http_trl_zone_t *zone)
{
    u_char                 *more, note[NGX_HTTP_TRL_LOG_NOTE_LEN];
    ngx_str_t               v;
    uint64_t                ms;
    ngx_http_trl_active_t  *act;

    act = zone->active;

    if (act->lifetime == NULL
        || ngx_http_complex_value(r, act->lifetime, &v) != NGX_OK
        || v.len == 0)
    {
        ngx_atomic_fetch_add(&act->stats[NGX_HTTP_TRL_ACTIVE_LIFE_DEFAULT],
                             1);
        return act->default_ms;
    }

    if (trl_active_lifetime((char *) v.data, v.len, &ms) != TRL_OK) {
        ngx_atomic_fetch_add(&act->stats[NGX_HTTP_TRL_ACTIVE_LIFE_INVALID],
                             1);

        /* within the zone's log_rate: an upstream may answer it always */

        if (ngx_http_trl_log_permit(r, zone, NGX_LOG_WARN, note, &more)) {
            v.len = ngx_min(v.len, 64);
            ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                          "token_ratelimit zone \"%V\": lifetime \"%V\" is "
                          "not a number of seconds or a time; the place is "
                          "held for %M s%*s", &zone->name, &v,
                          (ngx_msec_t) (act->default_ms / 1000),
                          (size_t) (more - note), note);
        }

        return act->default_ms;
    }

    if (ms > act->max_ms) {
        ngx_atomic_fetch_add(&act->stats[NGX_HTTP_TRL_ACTIVE_LIFE_CAPPED],
                             1);
        return act->max_ms;
    }

    ngx_atomic_fetch_add(&act->stats[NGX_HTTP_TRL_ACTIVE_LIFE_UPSTREAM], 1);

    return ms;
}


/* The place in Redis gets its lifetime and id (or goes, lifetime 0). */

static void
ngx_http_trl_active_redis_settle(ngx_http_trl_applied_t *a,
    uint64_t lifetime_ms, uint32_t id)
{
    trl_distinct_redis_req_t  req;

    ngx_memzero(&req, sizeof(trl_distinct_redis_req_t));
    req.op = TRL_DISTINCT_OP_SETTLE;
    req.fp = a->fp;
    req.stamp_ms = (uint64_t) a->redis_cell;
    req.lifetime_ms = lifetime_ms;
    req.id = id;

    (void) ngx_http_trl_slots_call(a->zone, &a->key_text, &req, NULL, NULL);
}


/* The zone's counters, for the API and Prometheus. */

uint64_t
ngx_http_trl_active_stat(ngx_http_trl_zone_t *zone, ngx_uint_t i)
{
    if (zone->active == NULL || zone->active->stats == NULL) {
        return 0;
    }

    return (uint64_t) zone->active->stats[i];
}
