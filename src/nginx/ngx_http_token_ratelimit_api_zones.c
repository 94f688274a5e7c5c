
/*
 * ngx_http_token_ratelimit_api_zones.c - token_ratelimit_api: the zones
 * as JSON (their counters, top offenders, penalties and Redis state), one
 * key's state, and a key's reset.
 *
 *   GET    {loc}/zones  {loc}/zones/NAME  zones
 *   GET    {loc}/zones/NAME/keys?key=K    one key (or key_hex=, hash=)
 *   DELETE {loc}/zones/NAME/keys?key=K    reset it (cluster-wide: sync)
 */


#include "ngx_http_token_ratelimit.h"
#include "ngx_http_token_ratelimit_api.h"
#include "ngx_http_token_ratelimit_redis.h"
#include "ngx_http_token_ratelimit_reputation.h"
#include "ngx_http_token_ratelimit_util.h"


#define NGX_HTTP_TRL_API_TOP        10      /* top offenders shown */
#define NGX_HTTP_TRL_API_PENALTIES  20      /* penalties shown */


static void ngx_http_trl_api_zone(ngx_http_trl_out_t *out,
    ngx_http_trl_zone_t *zone, uint64_t now_ms);
static void ngx_http_trl_api_key_or_hash(ngx_http_trl_out_t *out,
    ngx_http_trl_zone_t *zone, ngx_str_t *key, trl_hash_t *hash);
static ngx_int_t ngx_http_trl_api_share_reset(ngx_http_trl_main_conf_t *tmcf,
    ngx_http_trl_zone_t *zone, ngx_str_t *key);
static ngx_uint_t ngx_http_trl_api_listed(trl_penalty_info_t *pen, size_t n,
    trl_hash_t *key);


/* GET {loc}/zones, {loc}/zones/NAME */

ngx_int_t
ngx_http_trl_api_zones(ngx_http_request_t *r, ngx_http_trl_main_conf_t *tmcf,
    ngx_str_t *name)
{
    uint64_t              now_ms;
    ngx_http_trl_out_t    out;
    ngx_http_trl_zone_t  *zone;

    now_ms = trl_clock_ms();

    ngx_http_trl_out_init(&out, r);

    if (name) {
        zone = ngx_http_trl_api_find_zone(tmcf, name);

        if (zone == NULL) {
            return ngx_http_trl_out_error(r, NGX_HTTP_NOT_FOUND,
                                          "zone_not_found", "no such zone");
        }

        ngx_http_trl_api_zone(&out, zone, now_ms);
        ngx_http_trl_out_cat(&out, (u_char *) "\n", 1);

        return ngx_http_trl_out_send(&out, NGX_HTTP_OK, "application/json");
    }

    ngx_http_trl_api_zone_map(&out, tmcf, now_ms);
    ngx_http_trl_out_cat(&out, (u_char *) "\n", 1);

    return ngx_http_trl_out_send(&out, NGX_HTTP_OK, "application/json");
}


/* {"NAME":{zone},...}: every zone */

void
ngx_http_trl_api_zone_map(ngx_http_trl_out_t *out,
    ngx_http_trl_main_conf_t *tmcf, uint64_t now_ms)
{
    ngx_uint_t             i;
    ngx_http_trl_zone_t  **zones;

    ngx_http_trl_out_cat(out, (u_char *) "{", 1);

    zones = tmcf->zones.elts;

    for (i = 0; i < tmcf->zones.nelts; i++) {
        if (i) {
            ngx_http_trl_out_cat(out, (u_char *) ",", 1);
        }

        ngx_http_trl_out_json(out, zones[i]->name.data, zones[i]->name.len);
        ngx_http_trl_out_cat(out, (u_char *) ":", 1);
        ngx_http_trl_api_zone(out, zones[i], now_ms);
    }

    ngx_http_trl_out_cat(out, (u_char *) "}", 1);
}


static void
ngx_http_trl_api_zone(ngx_http_trl_out_t *out, ngx_http_trl_zone_t *zone,
    uint64_t now_ms)
{
    size_t               i, n;
    uint64_t             sync[TRL_SYNC_STATS], active;
    trl_zone_stats_t     st;
    size_t               named, shown;
    ngx_str_t            none;
    trl_offender_t       top[NGX_HTTP_TRL_API_TOP];
    trl_offender_t       names[NGX_HTTP_TRL_API_PENALTIES];
    trl_penalty_info_t   pen[2 * NGX_HTTP_TRL_API_PENALTIES];

    static const char  *modes[] = { "off", "async", "strict" };
    static const char  *log_keys[] = { "on", "off", "hash", "mask" };

    trl_zone_stats(zone->core, &st);

    ngx_http_trl_out_printf(out, "{\"key\":");
    ngx_http_trl_out_json(out, zone->key.value.data, zone->key.value.len);

    ngx_http_trl_out_printf(out,
        ",\"rate\":\"%V\",\"limit\":%uD,\"window_ms\":%uL,\"sync\":\"%s\","
        "\"memory\":{\"size\":%uz,\"capacity\":%uD,\"keys\":%uD},"
        "\"evictions\":%uL,"
        "\"requests\":{\"passed\":%uL,\"warned\":%uL,\"rejected\":%uL,"
        "\"rejected_dry_run\":%uL,\"bypassed\":%uL,\"denied\":%uL,"
        "\"penalized\":%uL},"
        "\"offenses\":%uL,\"penalties_started\":%uL,\"locks_recovered\":%uL,"
        "\"log_key\":\"%s\",\"log_suppressed\":%uL,\"log_rate\":",
        &zone->rate_text, zone->rate.limit,
        (uint64_t) zone->rate.window_ms, modes[zone->sync],
        zone->shm_zone->shm.size, st.capacity, st.keys, st.evicted,
        st.passed - st.warned, st.warned, st.rejected, st.rejected_dry_run,
        st.bypassed, st.denied, st.penalized, st.offenses, st.penalties,
        st.recovered, log_keys[zone->log_key],
        trl_zone_lines_suppressed(zone->core, TRL_LINES_ERRORS));

    if (zone->log_rate == NGX_HTTP_TRL_LOG_RATE_OFF) {
        ngx_http_trl_out_cat(out, (u_char *) "null", 4);
    } else {
        ngx_http_trl_out_printf(out, "%ui", zone->log_rate);
    }

    /* a distinct zone: what it counts, N, the memory a key takes */

    ngx_http_trl_out_printf(out, ",\"distinct\":");

    if (zone->distinct) {
        ngx_http_trl_out_printf(out, "{\"of\":");
        ngx_http_trl_out_json(out, zone->distinct->value.data,
                              zone->distinct->value.len);
        ngx_http_trl_out_printf(out, ",\"limit\":%uD,\"key_bytes\":%uz}",
                                zone->rate.limit,
                                trl_distinct_key_bytes(zone->rate.limit, 0));
    } else {
        ngx_http_trl_out_cat(out, (u_char *) "null", 4);
    }

    ngx_http_trl_api_active_zone(out, zone);        /* issue 15 */

    /* a signal zone (issue 14, signal.c): what signals */

    ngx_http_trl_out_printf(out, ",\"signal\":");

    if (zone->signal) {
        ngx_http_trl_out_json(out, zone->signal->value.data,
                              zone->signal->value.len);
    } else {
        ngx_http_trl_out_cat(out, (u_char *) "null", 4);
    }

    /* top offenders */

    n = trl_zone_offenders(zone->core, top, NGX_HTTP_TRL_API_TOP, now_ms);

    ngx_http_trl_out_printf(out, ",\"top_offenders\":[");

    for (i = 0; i < n; i++) {
        ngx_http_trl_out_printf(out, "%s{", i ? "," : "");
        ngx_http_trl_out_key(out, zone, (u_char *) top[i].text, top[i].len,
                             &top[i].key, top[i].truncated);
        ngx_http_trl_out_printf(out,
            ",\"recent\":%uL,\"rejections\":%uL,\"first\":%T,\"last\":%T}",
            top[i].score, top[i].total,
            ngx_http_trl_unix_time(top[i].first_ms, now_ms),
            ngx_http_trl_unix_time(top[i].last_ms, now_ms));
    }

    /*
     * penalties: first those of keys known by name (the offender table),
     * then the longest of the others, shown by hash
     */

    named = trl_zone_named_penalties(zone->core, pen, names,
                                     NGX_HTTP_TRL_API_PENALTIES, now_ms);

    n = trl_zone_penalties(zone->core, pen + named,
                           NGX_HTTP_TRL_API_PENALTIES, now_ms, &active);

    ngx_http_trl_out_printf(out, "],\"penalties_active\":%uL,\"penalties\":[",
                            active);

    shown = 0;

    for (i = 0; i < named + n && shown < NGX_HTTP_TRL_API_PENALTIES; i++) {

        if (i >= named && ngx_http_trl_api_listed(pen, named, &pen[i].key)) {
            continue;
        }

        ngx_http_trl_out_printf(out, "%s{", shown++ ? "," : "");

        if (i < named) {
            ngx_http_trl_out_key(out, zone, (u_char *) names[i].text,
                                 names[i].len, &names[i].key,
                                 names[i].truncated);
        } else {
            ngx_str_null(&none);
            ngx_http_trl_api_key_or_hash(out, zone, &none, &pen[i].key);
        }

        ngx_http_trl_out_printf(out,
            ",\"left\":%uL,\"until\":%T,\"violations\":%uD}",
            (pen[i].left_ms + 999) / 1000,
            ngx_http_trl_unix_time(now_ms + pen[i].left_ms, now_ms),
            pen[i].violations);
    }

    ngx_http_trl_out_cat(out, (u_char *) "]", 1);

    if (zone->sync != TRL_SYNC_MODE_OFF) {
        trl_zone_sync_stats(zone->core, sync);

        ngx_http_trl_out_printf(out,
            ",\"cluster\":{\"published\":%uL,\"reads\":%uL,\"errors\":%uL,"
            "\"last_success\":",
            sync[TRL_SYNC_PUBLISHED], sync[TRL_SYNC_READS],
            sync[TRL_SYNC_ERRORS]);

        if (sync[TRL_SYNC_LAST_OK]) {
            ngx_http_trl_out_printf(out, "%T",
                ngx_http_trl_unix_time(sync[TRL_SYNC_LAST_OK], now_ms));
        } else {
            ngx_http_trl_out_cat(out, (u_char *) "null", 4);
        }

        ngx_http_trl_out_printf(out,
            ",\"lag_ms\":%uL,\"strict_calls\":%uL,\"strict_cached\":%uL,"
            "\"fallback\":%uL}",
            sync[TRL_SYNC_LAG], sync[TRL_SYNC_STRICT], sync[TRL_SYNC_CACHED],
            sync[TRL_SYNC_FALLBACK]);
    }

    ngx_http_trl_api_attack_state(out, zone);
    ngx_http_trl_out_cat(out, (u_char *) "}", 1);
}


/* {loc}/zones/NAME/keys?key=K: GET inspects, DELETE resets */

ngx_int_t
ngx_http_trl_api_key(ngx_http_request_t *r, ngx_http_trl_main_conf_t *tmcf,
    ngx_str_t *name)
{
    int                   rc;
    uint64_t              now_ms;
    ngx_str_t             key;
    ngx_uint_t            cluster;
    trl_hash_t            hash;
    uint32_t              scaled;
    trl_limit_t           tl;
    trl_result_t          res;
    ngx_http_trl_out_t    out;
    ngx_http_trl_zone_t  *zone;

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD|NGX_HTTP_DELETE))) {
        return ngx_http_trl_out_not_allowed(r, "GET, HEAD, DELETE");
    }

    zone = ngx_http_trl_api_find_zone(tmcf, name);

    if (zone == NULL) {
        return ngx_http_trl_out_error(r, NGX_HTTP_NOT_FOUND,
                                      "zone_not_found", "no such zone");
    }

    /* hash=: a key known only by the hash the penalties list shows */

    ngx_str_null(&key);

    rc = ngx_http_trl_api_hash_arg(r, &hash);

    if (rc == NGX_DECLINED) {
        if (ngx_http_trl_api_key_arg(r, &key) != NGX_OK) {
            return ngx_http_trl_out_error(r, NGX_HTTP_BAD_REQUEST,
                                          "bad_request",
                                          "give the key as key=..."
                                          " (URL-encoded), key_hex=... (hex"
                                          " bytes) or hash=... (32 hex"
                                          " digits, as listed)");
        }

        trl_zone_hash(zone->core, key.data, key.len, &hash);

    } else if (rc != NGX_OK) {
        return ngx_http_trl_out_error(r, NGX_HTTP_BAD_REQUEST, "bad_request",
                                      "hash=... takes 32 hex digits");

    } else if (r->method == NGX_HTTP_DELETE
               && zone->sync != TRL_SYNC_MODE_OFF)
    {
        /* a key's Redis entries and the other nodes' hashes need its text */
        return ngx_http_trl_out_error(r, NGX_HTTP_BAD_REQUEST, "bad_request",
                                      "a sync zone resets a key by name"
                                      " (key= or key_hex=), not by hash");
    }

    now_ms = trl_clock_ms();

    ngx_http_trl_out_init(&out, r);

    if (r->method == NGX_HTTP_DELETE) {
        rc = trl_zone_reset(zone->core, &hash);
        cluster = 0;

        /*
         * A sync zone: its Redis entries go at once (if the link is up),
         * and the other nodes are told through the shared lists (now, or
         * once Redis is back).
         */

        if (zone->sync != TRL_SYNC_MODE_OFF) {
            (void) ngx_http_trl_sync_reset(zone, &key);
            cluster = ngx_http_trl_api_share_reset(tmcf, zone, &key)
                      == NGX_OK;
        }

        ngx_http_trl_out_printf(&out, "{\"zone\":");
        ngx_http_trl_out_json(&out, zone->name.data, zone->name.len);
        ngx_http_trl_out_cat(&out, (u_char *) ",", 1);
        ngx_http_trl_api_key_or_hash(&out, zone, &key, &hash);
        ngx_http_trl_out_printf(&out, ",\"reset\":true,\"known\":%s,"
                                "\"cluster\":%s}\n",
                                rc == 1 ? "true" : "false",
                                cluster ? "true" : "false");

        return ngx_http_trl_out_send(&out, NGX_HTTP_OK, "application/json");
    }

    ngx_memzero(&tl, sizeof(trl_limit_t));
    tl.rate = zone->rate;

    /* a listed address: its N as its limits' scale= makes it */

    scaled = key.len ? ngx_http_trl_rep_key_limit(tmcf, zone, key.data,
                                                  key.len)
                     : 0;
    if (scaled) {
        tl.rate.limit = scaled;
    }

    if (zone->sync == TRL_SYNC_MODE_ASYNC) {
        tl.flags = TRL_LIMIT_SYNC;
        tl.refresh_ms = (uint32_t) zone->redis->interval;
    }

    rc = ngx_http_trl_slots(zone) ? trl_distinct_peek(zone->core, &hash, &tl, now_ms,
                                            &res)
                        : trl_zone_peek(zone->core, &hash, &tl, now_ms, &res);

    if (rc == TRL_ERROR) {
        return ngx_http_trl_out_error(r, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                      "internal_error", "the zone failed");
    }

    ngx_http_trl_out_printf(&out, "{\"zone\":");
    ngx_http_trl_out_json(&out, zone->name.data, zone->name.len);
    ngx_http_trl_out_cat(&out, (u_char *) ",", 1);
    ngx_http_trl_api_key_or_hash(&out, zone, &key, &hash);

    ngx_http_trl_out_printf(&out, ",\"known\":%s,\"limit\":%uD,",
                            rc == TRL_OK ? "true" : "false", res.limit);

    if (scaled) {
        ngx_http_trl_out_printf(&out, "\"scaled_from\":%uD,",
                                zone->rate.limit);
    }

    ngx_http_trl_out_printf(&out,
        "\"count\":%uD,\"remaining\":%uD,"
        "\"reset\":%T,\"blocked\":%s,\"retry_after\":%uL,\"violations\":%uD,"
        "\"penalty\":",
        res.limit - res.remaining, res.remaining,
        ngx_http_trl_unix_time(res.reset_ms, res.now_ms),
        res.rejected ? "true" : "false",
        res.rejected ? (res.retry_ms + 999) / 1000 : 0, res.violations);

    if (res.penalized) {
        ngx_http_trl_out_printf(&out, "{\"left\":%uL,\"until\":%T}",
                                (res.penalty_ms + 999) / 1000,
                                ngx_http_trl_unix_time(res.now_ms
                                                       + res.penalty_ms,
                                                       res.now_ms));
    } else {
        ngx_http_trl_out_cat(&out, (u_char *) "null", 4);
    }

    ngx_http_trl_api_active_places(&out, zone, &hash, &tl);   /* issue 15 */
    ngx_http_trl_out_cat(&out, (u_char *) "}\n", 2);

    return ngx_http_trl_out_send(&out, NGX_HTTP_OK, "application/json");
}


/*
 * "key":... as the zone shows keys (a key the operator typed too: the
 * answer may be logged or shown on a screen), or "key":null,"hash":"..."
 * for a key given by hash
 */

static void
ngx_http_trl_api_key_or_hash(ngx_http_trl_out_t *out,
    ngx_http_trl_zone_t *zone, ngx_str_t *key, trl_hash_t *hash)
{
    if (key->data != NULL) {
        ngx_http_trl_out_key(out, zone, key->data, key->len, hash, 0);
        return;
    }

    ngx_http_trl_out_printf(out, "\"key\":null,\"hash\":\"%016xL%016xL\"",
                            hash->hi, hash->lo);
}


/*
 * A reset travels to the other nodes as an entry of the shared lists, kept
 * a minute (each node carries it out once, when it first sees it).
 */

static ngx_int_t
ngx_http_trl_api_share_reset(ngx_http_trl_main_conf_t *tmcf,
    ngx_http_trl_zone_t *zone, ngx_str_t *key)
{
    trl_list_entry_t  e;

    if (tmcf->lists == NULL || key->len > sizeof(e.key)) {
        return NGX_DECLINED;
    }

    ngx_memzero(&e, sizeof(trl_list_entry_t));

    e.action = TRL_LIST_RESET;
    e.created_ms = ngx_http_trl_wall_ms();
    e.expires_ms = e.created_ms + NGX_HTTP_TRL_RESET_KEPT;
    e.key_len = (uint8_t) key->len;
    ngx_memcpy(e.key, key->data, key->len);
    ngx_memcpy(e.zone, zone->name.data, zone->name.len);

    if (trl_lists_add(tmcf->lists, &e, e.created_ms) != TRL_OK) {
        return NGX_DECLINED;
    }

    ngx_http_trl_lists_sync_now();

    return NGX_OK;
}


/* Is key among the first n of pen? */

static ngx_uint_t
ngx_http_trl_api_listed(trl_penalty_info_t *pen, size_t n, trl_hash_t *key)
{
    size_t  i;

    for (i = 0; i < n; i++) {
        if (pen[i].key.lo == key->lo && pen[i].key.hi == key->hi) {
            return 1;
        }
    }

    return 0;
}
