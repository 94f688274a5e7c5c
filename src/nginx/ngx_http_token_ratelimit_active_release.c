
/*
 * ngx_http_token_ratelimit_active_release.c - what the end of a request
 * does to active zones: the directive token_ratelimit_release (a
 * revocation gives a place back), the settlement of issuances and the
 * releases, both called by the log-phase handler (handler.c, first in the
 * phase: before access_log), and the variables $token_ratelimit_active,
 * $token_ratelimit_lifetime and $token_ratelimit_released.
 */


#include "ngx_http_token_ratelimit.h"
#include "ngx_http_token_ratelimit_util.h"
#include "ngx_http_token_ratelimit_sync.h"


/* One token_ratelimit_release directive. */
typedef struct {
    ngx_shm_zone_t             *shm_zone;
    ngx_http_complex_value_t   *key;        /* NULL: the zone's key */
    ngx_http_complex_value_t   *token;      /* NULL: the zone's token= */
    ngx_str_t                   file;
    ngx_uint_t                  line;
} ngx_http_trl_release_t;


static void ngx_http_trl_active_release_one(ngx_http_request_t *r,
    ngx_http_trl_ctx_t *ctx, ngx_http_trl_release_t *rel);
static ngx_int_t ngx_http_trl_active_redis_release(ngx_http_trl_zone_t *zone,
    ngx_str_t *key, uint32_t id);
static void ngx_http_trl_active_released(redisReply *reply, void *data);


/* token_ratelimit_release zone=name [key=string] [token=string]; */

char *
ngx_http_trl_release_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_trl_loc_conf_t  *tlcf = conf;

    ngx_str_t                 *value, v;
    ngx_uint_t                 i;
    ngx_http_trl_release_t    *rel;
    ngx_http_trl_main_conf_t  *tmcf;

    value = cf->args->elts;

    if (tlcf->releases == NGX_CONF_UNSET_PTR) {
        tlcf->releases = ngx_array_create(cf->pool, 2,
                                          sizeof(ngx_http_trl_release_t));
        if (tlcf->releases == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    rel = ngx_array_push(tlcf->releases);
    if (rel == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(rel, sizeof(ngx_http_trl_release_t));
    rel->file = cf->conf_file->file.name;
    rel->line = cf->conf_file->line;

    for (i = 1; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "zone=", 5) == 0 && value[i].len > 5) {
            v.data = value[i].data + 5;
            v.len = value[i].len - 5;

            rel->shm_zone = ngx_shared_memory_add(cf, &v, 0,
                                             &ngx_http_token_ratelimit_module);
            if (rel->shm_zone == NULL) {
                return NGX_CONF_ERROR;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "key=", 4) == 0 && value[i].len > 4) {
            v.data = value[i].data + 4;
            v.len = value[i].len - 4;

            rel->key = ngx_http_trl_complex(cf, &v);
            if (rel->key == NULL) {
                return NGX_CONF_ERROR;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "token=", 6) == 0 && value[i].len > 6) {
            v.data = value[i].data + 6;
            v.len = value[i].len - 6;

            rel->token = ngx_http_trl_complex(cf, &v);
            if (rel->token == NULL) {
                return NGX_CONF_ERROR;
            }

            continue;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter \"%V\" in \"%V\" directive, "
                           "expected \"zone=name\" and optionally "
                           "\"key=string\" and \"token=string\"",
                           &value[i], &cmd->name);
        return NGX_CONF_ERROR;
    }

    if (rel->shm_zone == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" directive must have a \"zone=name\" "
                           "parameter naming an active zone", &cmd->name);
        return NGX_CONF_ERROR;
    }

    tmcf = ngx_http_conf_get_module_main_conf(cf,
                                              ngx_http_token_ratelimit_module);
    tmcf->releases = 1;

    return NGX_CONF_OK;
}


/*
 * A level's releases, checked when its configuration is merged (the whole
 * http block is read by then: every zone is known): each names an active
 * zone.
 */

char *
ngx_http_trl_active_check_release(ngx_conf_t *cf, ngx_array_t *releases)
{
    ngx_uint_t               i;
    ngx_http_trl_zone_t     *zone;
    ngx_http_trl_release_t  *rel;

    if (releases == NULL) {
        return NGX_CONF_OK;
    }

    rel = releases->elts;

    for (i = 0; i < releases->nelts; i++) {
        zone = rel[i].shm_zone->data;

        if (zone == NULL) {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "unknown zone \"%V\" in \"token_ratelimit_release\" "
                          "directive, no \"token_ratelimit_zone\" defines it "
                          "in %V:%ui", &rel[i].shm_zone->shm.name,
                          &rel[i].file, rel[i].line);
            return NGX_CONF_ERROR;
        }

        if (zone->active == NULL) {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "zone \"%V\" in \"token_ratelimit_release\" "
                          "directive in %V:%ui is not an active zone: "
                          "only a zone with \"active\" holds places to "
                          "give back", &zone->name, &rel[i].file,
                          rel[i].line);
            return NGX_CONF_ERROR;
        }
    }

    return NGX_CONF_OK;
}


/*
 * The log phase of a request an active zone applied to (handler.c): its
 * place is kept for the token's lifetime when its outcome counts, else
 * given back; $token_ratelimit_active shows the key's places after.
 */

void
ngx_http_trl_active_end(ngx_http_request_t *r, ngx_http_trl_ctx_t *ctx,
    ngx_http_trl_applied_t *a, ngx_uint_t counts)
{
    if (a->unavailable) {
        return;
    }

    if (!a->admitted) {                     /* rejected: nothing changed */
        ngx_http_trl_active_show(ctx, a->n - ngx_min(a->remaining, a->n));
        return;
    }

    if (counts) {
        ngx_http_trl_active_keep(r, a);
        return;
    }

    ngx_http_trl_distinct_settle(a, 0);    /* given back */
    ngx_http_trl_active_show(ctx, ngx_http_trl_active_held(a));
}


/* A successful request's releases (the handler checked the status). */

void
ngx_http_trl_active_releases(ngx_http_request_t *r,
    ngx_http_trl_loc_conf_t *tlcf, ngx_http_trl_ctx_t *ctx)
{
    ngx_uint_t               i;
    ngx_http_trl_release_t  *rel;

    if (ctx == NULL) {
        ctx = ngx_http_trl_create_ctx(r, 0);
        if (ctx == NULL) {
            return;
        }

        ctx->decided = 1;       /* nothing to decide: from=upstream subjects
                                   are read now, not deferred */
    }

    rel = tlcf->releases->elts;

    for (i = 0; i < tlcf->releases->nelts; i++) {
        ngx_http_trl_active_release_one(r, ctx, &rel[i]);
    }
}


/*
 * One release: the key's place of the token named (token=, else the
 * zone's token= on this request), or without a name the settled place
 * that expires first.  Never below zero, never a place in flight, never
 * a penalty.  A sync zone releases in Redis too: its counters count
 * Redis's answer, the variable what the node itself held.
 */

static void
ngx_http_trl_active_release_one(ngx_http_request_t *r,
    ngx_http_trl_ctx_t *ctx, ngx_http_trl_release_t *rel)
{
    ngx_int_t             rc;
    uint32_t              id, held;
    ngx_str_t             key;
    trl_hash_t            hash;
    trl_limit_t           tl;
    ngx_http_trl_zone_t  *zone;

    zone = rel->shm_zone->data;

    if (zone == NULL || zone->core == NULL || zone->active == NULL) {
        return;
    }

    if (ngx_http_complex_value(r, rel->key ? rel->key : &zone->key, &key)
        != NGX_OK
        || key.len == 0)
    {
        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "token_ratelimit: zone \"%V\": empty key, nothing "
                       "to release", &zone->name);
        return;
    }

    id = ngx_http_trl_active_token(r, zone,
                                   rel->token ? rel->token
                                              : zone->active->token);

    trl_zone_hash(zone->core, key.data, key.len, &hash);

    ngx_memzero(&tl, sizeof(trl_limit_t));
    tl.rate = zone->rate;

    held = 0;
    rc = trl_active_release(zone->core, &hash, &tl, id, TRL_CLOCK_NOW, &held);

    if (rc == TRL_ERROR) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "token_ratelimit zone \"%V\" failed to release a "
                      "place", &zone->name);
        return;
    }

    /*
     * A sync zone counts what Redis released (the token may have been
     * issued on another node); the node's own places are what the
     * variable shows.
     */

    if (zone->sync == TRL_SYNC_MODE_OFF || !ngx_http_trl_sync_available()
        || ngx_http_trl_active_redis_release(zone, &key, id) != NGX_OK)
    {
        ngx_atomic_fetch_add(&zone->active->stats[
                                 rc == 1 ? NGX_HTTP_TRL_ACTIVE_RELEASED
                                         : NGX_HTTP_TRL_ACTIVE_MISSED],
                             1);
    }

    ctx->released = rc == 1 ? NGX_HTTP_TRL_RELEASED_ONE
                            : NGX_HTTP_TRL_RELEASED_NONE;
    ctx->active_held = held;    /* the release's key: what it is about */
    ctx->active_shown = 1;

    ngx_log_debug4(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "token_ratelimit: zone \"%V\": release of token id "
                   "%08xD: %s, %uD held", &zone->name, id,
                   rc == 1 ? "released" : "none to release", held);
}


/*
 * The release in Redis; its answer is counted in the zone's head (shared
 * memory the worker keeps mapped for as long as it lives, whatever a
 * reload does meanwhile).
 */

static ngx_int_t
ngx_http_trl_active_redis_release(ngx_http_trl_zone_t *zone, ngx_str_t *key,
    uint32_t id)
{
    trl_distinct_redis_req_t  req;

    ngx_memzero(&req, sizeof(trl_distinct_redis_req_t));
    req.op = TRL_DISTINCT_OP_RELEASE;
    req.id = id;

    return ngx_http_trl_slots_call(zone, key, &req,
                                   ngx_http_trl_active_released,
                                   (void *) zone->active->stats);
}


static void
ngx_http_trl_active_released(redisReply *reply, void *data)
{
    ngx_atomic_t          *stats = data;
    trl_distinct_reply_t   r;

    if (reply == NULL || reply->type != REDIS_REPLY_STRING
        || trl_distinct_redis_reply(reply->str, reply->len, &r) != TRL_OK)
    {
        return;                 /* the link's health machinery reports it */
    }

    ngx_atomic_fetch_add(&stats[r.made ? NGX_HTTP_TRL_ACTIVE_RELEASED
                                       : NGX_HTTP_TRL_ACTIVE_MISSED], 1);
}


/*
 * $token_ratelimit_active of an issuance: the places of the most held
 * key, if the request has several active zones.
 */

void
ngx_http_trl_active_show(ngx_http_trl_ctx_t *ctx, uint32_t held)
{
    if (!ctx->active_shown || held > ctx->active_held) {
        ctx->active_held = held;
        ctx->active_shown = 1;
    }
}


/* The places a's key holds now (after a give-back). */

uint32_t
ngx_http_trl_active_held(ngx_http_trl_applied_t *a)
{
    trl_limit_t   tl;
    trl_result_t  res;

    ngx_memzero(&tl, sizeof(trl_limit_t));
    tl.rate = a->zone->rate;

    if (trl_distinct_peek(a->zone->core, &a->key, &tl, TRL_CLOCK_NOW, &res)
        != TRL_OK)
    {
        return 0;
    }

    return res.limit - ngx_min(res.remaining, res.limit);
}


/* --- variables ----------------------------------------------------------- */

ngx_int_t
ngx_http_trl_active_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    u_char              *p;
    uint64_t             n;
    ngx_http_trl_ctx_t  *ctx;

    ctx = ngx_http_trl_get_ctx(r);
    v->not_found = 1;

    if (ctx == NULL) {
        return NGX_OK;
    }

    switch (data) {

    case NGX_HTTP_TRL_VAR_ACTIVE:
        if (!ctx->active_shown) {
            return NGX_OK;
        }
        n = ctx->active_held;
        break;

    case NGX_HTTP_TRL_VAR_LIFETIME:
        if (!ctx->active_lifetime) {
            return NGX_OK;
        }
        n = ctx->active_lifetime;
        break;

    default: /* NGX_HTTP_TRL_VAR_RELEASED */
        if (ctx->released == 0) {
            return NGX_OK;
        }
        n = ctx->released == NGX_HTTP_TRL_RELEASED_ONE;
        break;
    }

    p = ngx_pnalloc(r->pool, NGX_INT64_LEN);
    if (p == NULL) {
        return NGX_ERROR;
    }

    v->len = ngx_sprintf(p, "%uL", n) - p;
    v->data = p;
    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;

    return NGX_OK;
}
