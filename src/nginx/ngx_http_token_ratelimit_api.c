
/*
 * ngx_http_token_ratelimit_api.c - token_ratelimit_api: a content handler
 * for monitoring and administration, guarded by nginx's own allow/deny.
 *
 *   GET    {loc}/                         everything, JSON
 *   GET    {loc}/zones  {loc}/zones/NAME  zones
 *   GET    {loc}/zones/NAME/keys?key=K    one key (or key_hex=)
 *   DELETE {loc}/zones/NAME/keys?key=K    reset it (cluster-wide: sync)
 *   GET    {loc}/metrics                  Prometheus text (also
 *                                         {loc}/?format=prometheus, a
 *                                         scraper's Accept at {loc}/, or
 *                                         an exact location ".../metrics")
 *   GET    {loc}/dashboard                a live HTML dashboard (and its
 *                                         dashboard.js, dashboard.css)
 *   GET    {loc}/lists                    runtime allow/deny entries
 *   POST   {loc}/lists/allow|deny?...     add one (address=, cidr= or
 *                                         key= [zone=]; ttl=)
 *   DELETE {loc}/lists/ID                 remove one
 *
 * A wrong method gets 405 (with Allow), an unknown zone, entry or path 404,
 * malformed input 400 with a JSON error, all without touching any state.
 *
 * Cross-site requests (SPEC 7): a request with any method but GET, HEAD
 * and OPTIONS whose Sec-Fetch-Site is not "same-origin" or "none", or
 * whose Origin is not the request's own scheme, host and port, gets 403
 * with a JSON error before any route is looked at (so an unknown path or
 * a wrong method is refused the same way: the refusal tells nothing).
 */


#include "ngx_http_token_ratelimit.h"
#include "ngx_http_token_ratelimit_api.h"
#include "ngx_http_token_ratelimit_redis.h"


#define NGX_HTTP_TRL_API_TOP        10      /* top offenders shown */
#define NGX_HTTP_TRL_API_PENALTIES  20      /* penalties shown */


static ngx_int_t ngx_http_trl_api_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_trl_api_all(ngx_http_request_t *r,
    ngx_http_trl_main_conf_t *tmcf);
static ngx_int_t ngx_http_trl_api_zones(ngx_http_request_t *r,
    ngx_http_trl_main_conf_t *tmcf, ngx_str_t *name);
static ngx_int_t ngx_http_trl_api_key(ngx_http_request_t *r,
    ngx_http_trl_main_conf_t *tmcf, ngx_str_t *name);
static ngx_int_t ngx_http_trl_api_lists(ngx_http_request_t *r,
    ngx_http_trl_main_conf_t *tmcf, ngx_str_t *rest);
static ngx_int_t ngx_http_trl_api_hash_arg(ngx_http_request_t *r,
    trl_hash_t *hash);
static void ngx_http_trl_api_key_or_hash(ngx_http_trl_out_t *out,
    ngx_http_trl_zone_t *zone, ngx_str_t *key, trl_hash_t *hash);
static ngx_http_trl_zone_t *ngx_http_trl_api_entry_zone(
    ngx_http_trl_main_conf_t *tmcf, trl_list_entry_t *e);
static ngx_uint_t ngx_http_trl_api_listed(trl_penalty_info_t *pen, size_t n,
    trl_hash_t *key);
static void ngx_http_trl_api_zone_map(ngx_http_trl_out_t *out,
    ngx_http_trl_main_conf_t *tmcf, uint64_t now_ms);
static void ngx_http_trl_api_zone(ngx_http_trl_out_t *out,
    ngx_http_trl_zone_t *zone, uint64_t now_ms);
static void ngx_http_trl_api_redis_cluster(ngx_http_trl_out_t *out,
    ngx_http_trl_redis_conf_t *rc, ngx_http_trl_redis_state_t *st);
static void ngx_http_trl_api_redis(ngx_http_trl_out_t *out,
    ngx_http_trl_main_conf_t *tmcf);
static void ngx_http_trl_api_entries(ngx_http_trl_out_t *out,
    ngx_http_trl_main_conf_t *tmcf);
static ngx_http_trl_zone_t *ngx_http_trl_api_find_zone(
    ngx_http_trl_main_conf_t *tmcf, ngx_str_t *name);
static ngx_int_t ngx_http_trl_api_key_arg(ngx_http_request_t *r,
    ngx_str_t *key);
static ngx_int_t ngx_http_trl_api_not_allowed(ngx_http_request_t *r,
    const char *allow);
static ngx_int_t ngx_http_trl_api_arg(ngx_http_request_t *r,
    const char *name, ngx_str_t *value);
static ngx_uint_t ngx_http_trl_api_wants_text(ngx_http_request_t *r);
static ngx_int_t ngx_http_trl_api_share_reset(ngx_http_trl_main_conf_t *tmcf,
    ngx_http_trl_zone_t *zone, ngx_str_t *key);
static ngx_table_elt_t *ngx_http_trl_api_cross_site(ngx_http_request_t *r);
static ngx_uint_t ngx_http_trl_api_same_origin(ngx_http_request_t *r,
    ngx_str_t *origin);
static ngx_int_t ngx_http_trl_api_host_port(u_char *p, u_char *last,
    ngx_uint_t default_port, ngx_str_t *host, ngx_uint_t *port);
static ngx_int_t ngx_http_trl_api_refuse(ngx_http_request_t *r,
    ngx_table_elt_t *h);
static ngx_uint_t ngx_http_trl_api_exact_metrics(
    ngx_http_core_loc_conf_t *clcf);


char *
ngx_http_trl_api_directive(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_core_loc_conf_t  *clcf;
    ngx_http_trl_main_conf_t  *tmcf;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);

#if (NGX_PCRE)
    if (clcf->regex) {
        return "cannot be used in a regex location: its paths are found "
               "below the location's prefix";
    }
#endif

    clcf->handler = ngx_http_trl_api_handler;

    tmcf = ngx_http_conf_get_module_main_conf(cf,
                                              ngx_http_token_ratelimit_module);
    tmcf->api = 1;

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_trl_api_handler(ngx_http_request_t *r)
{
    ngx_int_t                  rc;
    ngx_str_t                  path, part, format;
    ngx_table_elt_t           *h;
    ngx_http_core_loc_conf_t  *clcf;
    ngx_http_trl_main_conf_t  *tmcf;

    tmcf = ngx_http_get_module_main_conf(r, ngx_http_token_ratelimit_module);
    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

    /* the path below the location: "", "zones/login", "lists/7" ... */

    path = r->uri;

    if (clcf->name.len && path.len >= clcf->name.len
        && ngx_strncmp(path.data, clcf->name.data, clcf->name.len) == 0)
    {
        path.data += clcf->name.len;
        path.len -= clcf->name.len;
    }

    while (path.len && path.data[0] == '/') {
        path.data++;
        path.len--;
    }

    while (path.len && path.data[path.len - 1] == '/') {
        path.len--;
    }

    /* no call takes a body (POST takes query arguments) */

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    /* SPEC 7: nothing a cross-site request asks for is looked at */

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD|NGX_HTTP_OPTIONS))) {
        h = ngx_http_trl_api_cross_site(r);

        if (h) {
            ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                           "token_ratelimit_api: cross-site check: %V "
                           "refused by its %V", &r->method_name, &h->key);

            return ngx_http_trl_api_refuse(r, h);
        }

        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "token_ratelimit_api: cross-site check: %V passed",
                       &r->method_name);
    }

    /* "location = /x/metrics { token_ratelimit_api; }" is {loc}/metrics */

    if (path.len == 0 && ngx_http_trl_api_exact_metrics(clcf)) {
        ngx_str_set(&path, "metrics");
    }

    if (path.len == 0) {
        if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
            return ngx_http_trl_api_not_allowed(r, "GET, HEAD");
        }

        if ((ngx_http_trl_api_arg(r, "format", &format) == NGX_OK
             && format.len == 10
             && ngx_strncmp(format.data, "prometheus", 10) == 0)
            || ngx_http_trl_api_wants_text(r))
        {
            return ngx_http_trl_api_prometheus(r, tmcf);
        }

        return ngx_http_trl_api_all(r, tmcf);
    }

    if (path.len == 7 && ngx_strncmp(path.data, "metrics", 7) == 0) {
        if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
            return ngx_http_trl_api_not_allowed(r, "GET, HEAD");
        }

        return ngx_http_trl_api_prometheus(r, tmcf);
    }

    /* dashboard, and its script and style: dashboard.js, dashboard.css */

    if (path.len >= 9 && ngx_strncmp(path.data, "dashboard", 9) == 0
        && (path.len == 9 || path.data[9] == '.'))
    {
        if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
            return ngx_http_trl_api_not_allowed(r, "GET, HEAD");
        }

        part.data = path.data + 9;
        part.len = path.len - 9;

        return ngx_http_trl_api_dashboard(r, &part);
    }

    if (path.len >= 5 && ngx_strncmp(path.data, "lists", 5) == 0
        && (path.len == 5 || path.data[5] == '/'))
    {
        part.data = path.data + ngx_min(path.len, 6);
        part.len = path.len - ngx_min(path.len, 6);

        return ngx_http_trl_api_lists(r, tmcf, &part);
    }

    if (path.len >= 5 && ngx_strncmp(path.data, "zones", 5) == 0
        && (path.len == 5 || path.data[5] == '/'))
    {
        part.data = path.data + ngx_min(path.len, 6);
        part.len = path.len - ngx_min(path.len, 6);

        /* zones/NAME/keys */

        if (part.len > 5
            && ngx_strncmp(part.data + part.len - 5, "/keys", 5) == 0)
        {
            part.len -= 5;
            return ngx_http_trl_api_key(r, tmcf, &part);
        }

        if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
            return ngx_http_trl_api_not_allowed(r, "GET, HEAD");
        }

        return ngx_http_trl_api_zones(r, tmcf, part.len ? &part : NULL);
    }

    return ngx_http_trl_api_error(r, NGX_HTTP_NOT_FOUND, "not_found",
                                  "no such API path");
}


/* GET {loc}/ */

static ngx_int_t
ngx_http_trl_api_all(ngx_http_request_t *r, ngx_http_trl_main_conf_t *tmcf)
{
    uint64_t             now_ms;
    ngx_http_trl_out_t   out;

    now_ms = trl_clock_ms();

    ngx_http_trl_out_init(&out, r);

    ngx_http_trl_out_printf(&out,
                            "{\"module\":\"token_ratelimit\","
                            "\"nginx\":\"%s\",\"pid\":%P,\"time\":%T,"
                            "\"redis\":",
                            NGINX_VERSION, ngx_pid, ngx_time());

    ngx_http_trl_api_redis(&out, tmcf);

    ngx_http_trl_out_printf(&out, ",\"zones\":");
    ngx_http_trl_api_zone_map(&out, tmcf, now_ms);
    ngx_http_trl_out_printf(&out, ",\"lists\":");
    ngx_http_trl_api_entries(&out, tmcf);
    ngx_http_trl_out_printf(&out, "}\n");

    return ngx_http_trl_out_send(&out, NGX_HTTP_OK, "application/json");
}


/* GET {loc}/zones, {loc}/zones/NAME */

static ngx_int_t
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
            return ngx_http_trl_api_error(r, NGX_HTTP_NOT_FOUND,
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

static void
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

    trl_zone_stats(zone->zone, &st);

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
        trl_zone_lines_suppressed(zone->zone, TRL_LINES_ERRORS));

    if (zone->log_rate == NGX_HTTP_TRL_LOG_RATE_OFF) {
        ngx_http_trl_out_cat(out, (u_char *) "null", 4);
    } else {
        ngx_http_trl_out_printf(out, "%ui", zone->log_rate);
    }

    /* top offenders */

    n = trl_zone_offenders(zone->zone, top, NGX_HTTP_TRL_API_TOP, now_ms);

    ngx_http_trl_out_printf(out, ",\"top_offenders\":[");

    for (i = 0; i < n; i++) {
        ngx_http_trl_out_printf(out, "%s{", i ? "," : "");
        ngx_http_trl_out_key(out, zone, (u_char *) top[i].text, top[i].len,
                             &top[i].key, top[i].truncated);
        ngx_http_trl_out_printf(out,
            ",\"recent\":%uL,\"rejections\":%uL,\"first\":%T,\"last\":%T}",
            top[i].score, top[i].total,
            ngx_http_trl_api_unix(top[i].first_ms, now_ms),
            ngx_http_trl_api_unix(top[i].last_ms, now_ms));
    }

    /*
     * penalties: first those of keys known by name (the offender table),
     * then the longest of the others, shown by hash
     */

    named = trl_zone_named_penalties(zone->zone, pen, names,
                                     NGX_HTTP_TRL_API_PENALTIES, now_ms);

    n = trl_zone_penalties(zone->zone, pen + named,
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
            ngx_http_trl_api_unix(now_ms + pen[i].left_ms, now_ms),
            pen[i].violations);
    }

    ngx_http_trl_out_cat(out, (u_char *) "]", 1);

    if (zone->sync != NGX_HTTP_TRL_SYNC_OFF) {
        trl_zone_sync_stats(zone->zone, sync);

        ngx_http_trl_out_printf(out,
            ",\"cluster\":{\"published\":%uL,\"reads\":%uL,\"errors\":%uL,"
            "\"last_success\":",
            sync[TRL_SYNC_PUBLISHED], sync[TRL_SYNC_READS],
            sync[TRL_SYNC_ERRORS]);

        if (sync[TRL_SYNC_LAST_OK]) {
            ngx_http_trl_out_printf(out, "%T",
                ngx_http_trl_api_unix(sync[TRL_SYNC_LAST_OK], now_ms));
        } else {
            ngx_http_trl_out_cat(out, (u_char *) "null", 4);
        }

        ngx_http_trl_out_printf(out,
            ",\"lag_ms\":%uL,\"strict_calls\":%uL,\"strict_cached\":%uL,"
            "\"fallback\":%uL}",
            sync[TRL_SYNC_LAG], sync[TRL_SYNC_STRICT], sync[TRL_SYNC_CACHED],
            sync[TRL_SYNC_FALLBACK]);
    }

    ngx_http_trl_out_cat(out, (u_char *) "}", 1);
}


/*
 * cluster=: the seeds, and the masters of the slot map the node installed
 * last, each with its slots and whether its link is up.
 */

static void
ngx_http_trl_api_redis_cluster(ngx_http_trl_out_t *out,
    ngx_http_trl_redis_conf_t *rc, ngx_http_trl_redis_state_t *st)
{
    ngx_uint_t                   i;
    ngx_http_trl_redis_addr_t   *sa;
    ngx_http_trl_redis_master_t *m;

    ngx_http_trl_out_printf(out, "{\"mode\":\"cluster\",\"seeds\":[");

    sa = rc->cluster->elts;

    for (i = 0; i < rc->cluster->nelts; i++) {
        if (i) {
            ngx_http_trl_out_cat(out, (u_char *) ",", 1);
        }

        ngx_http_trl_out_json(out, sa[i].text.data, sa[i].text.len);
    }

    ngx_http_trl_out_printf(out, "],\"masters\":[");

    for (i = 0; i < st->nmasters; i++) {
        m = &st->masters[i];

        ngx_http_trl_out_printf(out, "%s{\"address\":", i ? "," : "");
        ngx_http_trl_out_json(out, m->addr, m->addr_len);
        ngx_http_trl_out_printf(out, ",\"slots\":%ui,\"up\":%s}", m->slots,
                                m->up ? "true" : "false");
    }

    ngx_http_trl_out_printf(out, "],\"slots_unserved\":%ui,\"maps\":%ui,"
                            "\"slots_moved\":%ui,\"failovers\":%ui,"
                            "\"address\":null", st->unserved, st->maps,
                            st->slots_moved, st->failovers);
}


static void
ngx_http_trl_api_redis(ngx_http_trl_out_t *out,
    ngx_http_trl_main_conf_t *tmcf)
{
    ngx_uint_t                  i;
    ngx_http_trl_redis_addr_t  *sa;
    ngx_http_trl_redis_state_t  st;

    if (tmcf->redis == NULL) {
        ngx_http_trl_out_cat(out, (u_char *) "null", 4);
        return;
    }

    ngx_http_trl_redis_state(&st);

    if (tmcf->redis->cluster) {
        ngx_http_trl_api_redis_cluster(out, tmcf->redis, &st);

    } else if (tmcf->redis->sentinels == NULL) {
        ngx_http_trl_out_printf(out, "{\"mode\":\"single\",\"address\":");
        ngx_http_trl_out_json(out, tmcf->redis->address.data,
                              tmcf->redis->address.len);

    } else {

        /* the master the sentinels named last, and who they are */

        ngx_http_trl_out_printf(out, "{\"mode\":\"sentinel\","
                                "\"master_name\":");
        ngx_http_trl_out_json(out, tmcf->redis->master.data,
                              tmcf->redis->master.len);
        ngx_http_trl_out_printf(out, ",\"sentinels\":[");

        sa = tmcf->redis->sentinels->elts;

        for (i = 0; i < tmcf->redis->sentinels->nelts; i++) {
            if (i) {
                ngx_http_trl_out_cat(out, (u_char *) ",", 1);
            }

            ngx_http_trl_out_json(out, sa[i].text.data, sa[i].text.len);
        }

        ngx_http_trl_out_printf(out, "],\"failovers\":%ui,\"address\":",
                                st.failovers);

        if (st.master_len) {
            ngx_http_trl_out_json(out, st.master, st.master_len);
        } else {
            ngx_http_trl_out_cat(out, (u_char *) "null", 4);
        }
    }

    ngx_http_trl_out_printf(out,
                            ",\"up\":%s,\"outages\":%ui,\"failures\":%ui,"
                            "\"down_since\":",
                            st.up ? "true" : "false", st.outages,
                            st.failures);

    if (st.down_since) {
        ngx_http_trl_out_printf(out, "%T", st.down_since);
    } else {
        ngx_http_trl_out_cat(out, (u_char *) "null", 4);
    }

    /* why it is down: the latest failure, the first line of an error */

    ngx_http_trl_out_cat(out, (u_char *) ",\"reason\":", 10);

    if (!st.up && st.reason_len) {
        ngx_http_trl_out_json(out, st.reason, st.reason_len);
    } else {
        ngx_http_trl_out_cat(out, (u_char *) "null", 4);
    }

    ngx_http_trl_out_cat(out, (u_char *) "}", 1);
}


/* {loc}/zones/NAME/keys?key=K: GET inspects, DELETE resets */

static ngx_int_t
ngx_http_trl_api_key(ngx_http_request_t *r, ngx_http_trl_main_conf_t *tmcf,
    ngx_str_t *name)
{
    int                   rc;
    uint64_t              now_ms;
    ngx_str_t             key;
    ngx_uint_t            cluster;
    trl_hash_t            hash;
    trl_limit_t           tl;
    trl_result_t          res;
    ngx_http_trl_out_t    out;
    ngx_http_trl_zone_t  *zone;

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD|NGX_HTTP_DELETE))) {
        return ngx_http_trl_api_not_allowed(r, "GET, HEAD, DELETE");
    }

    zone = ngx_http_trl_api_find_zone(tmcf, name);

    if (zone == NULL) {
        return ngx_http_trl_api_error(r, NGX_HTTP_NOT_FOUND,
                                      "zone_not_found", "no such zone");
    }

    /* hash=: a key known only by the hash the penalties list shows */

    ngx_str_null(&key);

    rc = ngx_http_trl_api_hash_arg(r, &hash);

    if (rc == NGX_DECLINED) {
        if (ngx_http_trl_api_key_arg(r, &key) != NGX_OK) {
            return ngx_http_trl_api_error(r, NGX_HTTP_BAD_REQUEST,
                                          "bad_request",
                                          "give the key as key=..."
                                          " (URL-encoded), key_hex=... (hex"
                                          " bytes) or hash=... (32 hex"
                                          " digits, as listed)");
        }

        trl_zone_hash(zone->zone, key.data, key.len, &hash);

    } else if (rc != NGX_OK) {
        return ngx_http_trl_api_error(r, NGX_HTTP_BAD_REQUEST, "bad_request",
                                      "hash=... takes 32 hex digits");

    } else if (r->method == NGX_HTTP_DELETE
               && zone->sync != NGX_HTTP_TRL_SYNC_OFF)
    {
        /* a key's Redis entries and the other nodes' hashes need its text */
        return ngx_http_trl_api_error(r, NGX_HTTP_BAD_REQUEST, "bad_request",
                                      "a sync zone resets a key by name"
                                      " (key= or key_hex=), not by hash");
    }

    now_ms = trl_clock_ms();

    ngx_http_trl_out_init(&out, r);

    if (r->method == NGX_HTTP_DELETE) {
        rc = trl_zone_reset(zone->zone, &hash);
        cluster = 0;

        /*
         * A sync zone: its Redis entries go at once (if the link is up),
         * and the other nodes are told through the shared lists (now, or
         * once Redis is back).
         */

        if (zone->sync != NGX_HTTP_TRL_SYNC_OFF) {
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

    if (zone->sync == NGX_HTTP_TRL_SYNC_ASYNC) {
        tl.flags = TRL_LIMIT_SYNC;
        tl.refresh_ms = (uint32_t) zone->redis->interval;
    }

    rc = trl_zone_peek(zone->zone, &hash, &tl, now_ms, &res);

    if (rc == TRL_ERROR) {
        return ngx_http_trl_api_error(r, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                      "internal_error", "the zone failed");
    }

    ngx_http_trl_out_printf(&out, "{\"zone\":");
    ngx_http_trl_out_json(&out, zone->name.data, zone->name.len);
    ngx_http_trl_out_cat(&out, (u_char *) ",", 1);
    ngx_http_trl_api_key_or_hash(&out, zone, &key, &hash);

    ngx_http_trl_out_printf(&out,
        ",\"known\":%s,\"limit\":%uD,\"count\":%uD,\"remaining\":%uD,"
        "\"reset\":%T,\"blocked\":%s,\"retry_after\":%uL,\"violations\":%uD,"
        "\"penalty\":",
        rc == TRL_OK ? "true" : "false", res.limit,
        res.limit - res.remaining, res.remaining,
        ngx_http_trl_api_unix(res.reset_ms, res.now_ms),
        res.rejected ? "true" : "false",
        res.rejected ? (res.retry_ms + 999) / 1000 : 0, res.violations);

    if (res.penalized) {
        ngx_http_trl_out_printf(&out, "{\"left\":%uL,\"until\":%T}}\n",
                                (res.penalty_ms + 999) / 1000,
                                ngx_http_trl_api_unix(res.now_ms
                                                      + res.penalty_ms,
                                                      res.now_ms));
    } else {
        ngx_http_trl_out_cat(&out, (u_char *) "null}\n", 6);
    }

    return ngx_http_trl_out_send(&out, NGX_HTTP_OK, "application/json");
}


/* hash=32 hex digits (hi, then lo): NGX_DECLINED when absent */

static ngx_int_t
ngx_http_trl_api_hash_arg(ngx_http_request_t *r, trl_hash_t *hash)
{
    ngx_int_t   d;
    ngx_str_t   arg;
    ngx_uint_t  i;

    if (ngx_http_trl_api_arg(r, "hash", &arg) != NGX_OK) {
        return NGX_DECLINED;
    }

    if (arg.len != 32) {
        return NGX_ERROR;
    }

    hash->hi = 0;
    hash->lo = 0;

    for (i = 0; i < 32; i++) {
        d = ngx_hextoi(&arg.data[i], 1);

        if (d == NGX_ERROR) {
            return NGX_ERROR;
        }

        if (i < 16) {
            hash->hi = hash->hi << 4 | (uint64_t) d;
        } else {
            hash->lo = hash->lo << 4 | (uint64_t) d;
        }
    }

    return NGX_OK;
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


/* key=URL-encoded text, or key_hex=hex bytes */

static ngx_int_t
ngx_http_trl_api_key_arg(ngx_http_request_t *r, ngx_str_t *key)
{
    u_char     *dst, *src;
    ngx_int_t   hi, lo;
    ngx_str_t   arg;
    ngx_uint_t  i;

    if (ngx_http_trl_api_arg(r, "key", &arg) == NGX_OK) {
        if (arg.len == 0) {
            return NGX_ERROR;
        }

        dst = ngx_pnalloc(r->pool, arg.len);
        if (dst == NULL) {
            return NGX_ERROR;
        }

        key->data = dst;
        src = arg.data;
        ngx_unescape_uri(&dst, &src, arg.len, 0);
        key->len = dst - key->data;

        return key->len ? NGX_OK : NGX_ERROR;
    }

    if (ngx_http_trl_api_arg(r, "key_hex", &arg) == NGX_OK) {
        if (arg.len == 0 || arg.len % 2) {
            return NGX_ERROR;
        }

        key->data = ngx_pnalloc(r->pool, arg.len / 2);
        if (key->data == NULL) {
            return NGX_ERROR;
        }

        for (i = 0; i < arg.len / 2; i++) {
            hi = ngx_hextoi(&arg.data[2 * i], 1);
            lo = ngx_hextoi(&arg.data[2 * i + 1], 1);

            if (hi == NGX_ERROR || lo == NGX_ERROR) {
                return NGX_ERROR;
            }

            key->data[i] = (u_char) (hi * 16 + lo);
        }

        key->len = arg.len / 2;
        return NGX_OK;
    }

    return NGX_ERROR;
}


/*
 * A reset travels to the other nodes as an entry of the shared lists, kept
 * a minute (each node carries it out once, when it first sees it).
 */

static ngx_int_t
ngx_http_trl_api_share_reset(ngx_http_trl_main_conf_t *tmcf,
    ngx_http_trl_zone_t *zone, ngx_str_t *key)
{
    ngx_time_t        *tp;
    trl_list_entry_t   e;

    if (tmcf->lists == NULL || key->len > sizeof(e.key)) {
        return NGX_DECLINED;
    }

    ngx_memzero(&e, sizeof(trl_list_entry_t));

    tp = ngx_timeofday();

    e.action = TRL_LIST_RESET;
    e.created_ms = (uint64_t) tp->sec * 1000 + tp->msec;
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


/* --- runtime allow/deny entries ----------------------------------------- */

static ngx_int_t ngx_http_trl_api_list_add(ngx_http_request_t *r,
    ngx_http_trl_main_conf_t *tmcf, ngx_uint_t action);
static ngx_int_t ngx_http_trl_api_parse_addr(ngx_str_t *text,
    trl_list_entry_t *e, ngx_uint_t cidr);


static ngx_int_t
ngx_http_trl_api_lists(ngx_http_request_t *r, ngx_http_trl_main_conf_t *tmcf,
    ngx_str_t *rest)
{
    uint64_t            id;
    ngx_uint_t          i;
    ngx_http_trl_out_t  out;

    if (tmcf->lists == NULL) {
        return ngx_http_trl_api_error(r, NGX_HTTP_NOT_FOUND, "not_found",
                                      "no lists");
    }

    if (rest->len == 0) {
        if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
            return ngx_http_trl_api_not_allowed(r, "GET, HEAD");
        }

        ngx_http_trl_out_init(&out, r);
        ngx_http_trl_api_entries(&out, tmcf);
        ngx_http_trl_out_cat(&out, (u_char *) "\n", 1);

        return ngx_http_trl_out_send(&out, NGX_HTTP_OK, "application/json");
    }

    if ((rest->len == 5 && ngx_strncmp(rest->data, "allow", 5) == 0)
        || (rest->len == 4 && ngx_strncmp(rest->data, "deny", 4) == 0))
    {
        if (r->method != NGX_HTTP_POST) {
            return ngx_http_trl_api_not_allowed(r, "POST");
        }

        return ngx_http_trl_api_list_add(r, tmcf, rest->len == 5
                                                  ? TRL_LIST_ALLOW
                                                  : TRL_LIST_DENY);
    }

    /* {loc}/lists/ID */

    id = 0;

    for (i = 0; i < rest->len; i++) {
        if (rest->data[i] < '0' || rest->data[i] > '9' || i >= 19) {
            return ngx_http_trl_api_error(r, NGX_HTTP_NOT_FOUND, "not_found",
                                          "no such list entry");
        }

        id = id * 10 + (rest->data[i] - '0');
    }

    if (r->method != NGX_HTTP_DELETE) {
        return ngx_http_trl_api_not_allowed(r, "DELETE");
    }

    /* with Redis, the removal is kept until Redis has been told */

    if (trl_lists_remove(tmcf->lists, id, tmcf->redis != NULL) != 1) {
        return ngx_http_trl_api_error(r, NGX_HTTP_NOT_FOUND, "not_found",
                                      "no such list entry");
    }

    if (tmcf->redis) {
        ngx_http_trl_lists_sync_now();
    }

    ngx_http_trl_out_init(&out, r);
    ngx_http_trl_out_printf(&out,
                            "{\"id\":%uL,\"removed\":true,\"cluster\":%s}\n",
                            id, tmcf->redis ? "true" : "false");

    return ngx_http_trl_out_send(&out, NGX_HTTP_OK, "application/json");
}


/* POST {loc}/lists/allow|deny?address=|cidr=|key=[&zone=][&ttl=] */

static ngx_int_t
ngx_http_trl_api_list_add(ngx_http_request_t *r,
    ngx_http_trl_main_conf_t *tmcf, ngx_uint_t action)
{
    ngx_int_t            ttl;
    ngx_str_t            arg, key;
    ngx_time_t          *tp;
    trl_list_entry_t     e;
    ngx_http_trl_out_t   out;

    ngx_memzero(&e, sizeof(trl_list_entry_t));
    e.action = (uint8_t) action;

    if (ngx_http_trl_api_arg(r, "address", &arg) == NGX_OK) {
        if (ngx_http_trl_api_parse_addr(&arg, &e, 0) != NGX_OK) {
            return ngx_http_trl_api_error(r, NGX_HTTP_BAD_REQUEST,
                                          "bad_request",
                                          "address= must be an IPv4 or "
                                          "IPv6 address");
        }

    } else if (ngx_http_trl_api_arg(r, "cidr", &arg) == NGX_OK) {
        if (ngx_http_trl_api_parse_addr(&arg, &e, 1) != NGX_OK) {
            return ngx_http_trl_api_error(r, NGX_HTTP_BAD_REQUEST,
                                          "bad_request",
                                          "cidr= must be an address and a "
                                          "prefix length, such as "
                                          "203.0.113.0/24 or 2001:db8::/48");
        }

    } else if (ngx_http_trl_api_key_arg(r, &key) == NGX_OK) {
        if (key.len > sizeof(e.key)) {
            return ngx_http_trl_api_error(r, NGX_HTTP_BAD_REQUEST,
                                          "bad_request",
                                          "key= is longer than 128 bytes");
        }

        e.family = 0;
        e.key_len = (uint8_t) key.len;
        ngx_memcpy(e.key, key.data, key.len);

        if (ngx_http_trl_api_arg(r, "zone", &arg) == NGX_OK) {
            if (ngx_http_trl_api_find_zone(tmcf, &arg) == NULL) {
                return ngx_http_trl_api_error(r, NGX_HTTP_NOT_FOUND,
                                              "zone_not_found",
                                              "no such zone");
            }

            if (arg.len >= sizeof(e.zone)) {
                return ngx_http_trl_api_error(r, NGX_HTTP_BAD_REQUEST,
                                              "bad_request",
                                              "zone= is longer than 63 bytes");
            }

            ngx_memcpy(e.zone, arg.data, arg.len);
        }

    } else {
        return ngx_http_trl_api_error(r, NGX_HTTP_BAD_REQUEST, "bad_request",
                                      "give address=, cidr= or key= (with "
                                      "zone= for one zone only)");
    }

    tp = ngx_timeofday();
    e.created_ms = (uint64_t) tp->sec * 1000 + tp->msec;

    if (ngx_http_trl_api_arg(r, "ttl", &arg) == NGX_OK) {
        ttl = ngx_parse_time(&arg, 0);

        if (ttl == NGX_ERROR || ttl <= 0) {
            return ngx_http_trl_api_error(r, NGX_HTTP_BAD_REQUEST,
                                          "bad_request",
                                          "ttl= must be a time such as 30s, "
                                          "10m or 1d");
        }

        e.expires_ms = e.created_ms + (uint64_t) ttl;
    }

    if (trl_lists_add(tmcf->lists, &e, e.created_ms) != TRL_OK) {
        return ngx_http_trl_api_error(r, NGX_HTTP_INSUFFICIENT_STORAGE,
                                      "lists_full",
                                      "the lists are full; remove entries "
                                      "or wait for some to expire");
    }

    if (tmcf->redis) {
        ngx_http_trl_lists_sync_now();      /* or once Redis is back */
    }

    ngx_http_trl_out_init(&out, r);
    ngx_http_trl_out_printf(&out,
                            "{\"id\":%uL,\"action\":\"%s\",\"cluster\":%s}\n",
                            e.id, action == TRL_LIST_ALLOW ? "allow" : "deny",
                            tmcf->redis ? "true" : "false");

    return ngx_http_trl_out_send(&out, NGX_HTTP_CREATED, "application/json");
}


static ngx_int_t
ngx_http_trl_api_parse_addr(ngx_str_t *text, trl_list_entry_t *e,
    ngx_uint_t cidr)
{
    u_char     *slash, buf[NGX_INET6_ADDRSTRLEN + 1];
    size_t      len;
    in_addr_t   v4;
    ngx_int_t   bits;

    slash = ngx_strlchr(text->data, text->data + text->len, '/');

    if ((slash != NULL) != (cidr != 0)) {
        return NGX_ERROR;
    }

    len = slash ? (size_t) (slash - text->data) : text->len;

    if (len == 0 || len > NGX_INET6_ADDRSTRLEN) {
        return NGX_ERROR;
    }

    ngx_memcpy(buf, text->data, len);
    buf[len] = '\0';

    v4 = ngx_inet_addr(buf, len);

    if (v4 != INADDR_NONE) {
        e->family = 4;
        ngx_memcpy(e->addr, &v4, 4);
        e->prefix = 32;

    } else {
#if (NGX_HAVE_INET6)
        if (ngx_inet6_addr(buf, len, e->addr) != NGX_OK) {
            return NGX_ERROR;
        }

        e->family = 6;
        e->prefix = 128;
#else
        return NGX_ERROR;
#endif
    }

    if (slash) {
        bits = ngx_atoi(slash + 1, text->data + text->len - slash - 1);

        if (bits == NGX_ERROR || bits > e->prefix) {
            return NGX_ERROR;
        }

        e->prefix = (uint8_t) bits;
    }

    return NGX_OK;
}


static void
ngx_http_trl_api_entries(ngx_http_trl_out_t *out,
    ngx_http_trl_main_conf_t *tmcf)
{
    u_char             addr[NGX_INET6_ADDRSTRLEN];
    size_t             i, n, len;
    uint64_t           now_ms;
    ngx_time_t        *tp;
    trl_list_entry_t  *entries;

    if (tmcf->lists == NULL) {
        ngx_http_trl_out_cat(out, (u_char *) "null", 4);
        return;
    }

    entries = ngx_palloc(out->request->pool,
                         trl_lists_capacity(tmcf->lists)
                         * sizeof(trl_list_entry_t));
    if (entries == NULL) {
        out->failed = 1;
        return;
    }

    tp = ngx_timeofday();
    now_ms = (uint64_t) tp->sec * 1000 + tp->msec;

    n = trl_lists_get(tmcf->lists, entries, trl_lists_capacity(tmcf->lists),
                      now_ms);

    ngx_http_trl_out_cat(out, (u_char *) "[", 1);

    for (i = 0; i < n; i++) {
        ngx_http_trl_out_printf(out, "%s{\"id\":%uL,\"action\":\"%s\",",
                                i ? "," : "", entries[i].id,
                                entries[i].action == TRL_LIST_ALLOW
                                    ? "allow" : "deny");

        if (entries[i].family == 0) {
            ngx_http_trl_out_key(out,
                                 ngx_http_trl_api_entry_zone(tmcf,
                                                             &entries[i]),
                                 (u_char *) entries[i].key,
                                 entries[i].key_len, NULL, 0);
            ngx_http_trl_out_cat(out, (u_char *) ",\"zone\":", 8);

            if (entries[i].zone[0]) {
                ngx_http_trl_out_json(out, (u_char *) entries[i].zone,
                                      ngx_strlen(entries[i].zone));
            } else {
                ngx_http_trl_out_cat(out, (u_char *) "null", 4);
            }

        } else {
            len = ngx_inet_ntop(entries[i].family == 4 ? AF_INET : AF_INET6,
                                entries[i].addr, addr, sizeof(addr));

            ngx_http_trl_out_printf(out, "\"cidr\":\"%*s/%ud\"", len, addr,
                                    (ngx_uint_t) entries[i].prefix);
        }

        ngx_http_trl_out_printf(out, ",\"created\":%T,\"expires\":",
                                (time_t) (entries[i].created_ms / 1000));

        if (entries[i].expires_ms) {
            ngx_http_trl_out_printf(out, "%T}",
                                    (time_t) ((entries[i].expires_ms + 999)
                                              / 1000));
        } else {
            ngx_http_trl_out_cat(out, (u_char *) "null}", 5);
        }
    }

    ngx_http_trl_out_cat(out, (u_char *) "]", 1);
}


/* --- helpers -------------------------------------------------------------- */

static ngx_http_trl_zone_t *
ngx_http_trl_api_find_zone(ngx_http_trl_main_conf_t *tmcf, ngx_str_t *name)
{
    ngx_uint_t             i;
    ngx_http_trl_zone_t  **zones;

    zones = tmcf->zones.elts;

    for (i = 0; i < tmcf->zones.nelts; i++) {
        if (zones[i]->name.len == name->len
            && ngx_strncmp(zones[i]->name.data, name->data, name->len) == 0
            && zones[i]->zone != NULL)
        {
            return zones[i];
        }
    }

    return NULL;
}


/*
 * The zone whose log_key= shows a key entry of the lists: the zone it
 * names; for an entry of every zone, the first zone that does not show
 * keys in full (NULL when all do: the key as entered).
 */

static ngx_http_trl_zone_t *
ngx_http_trl_api_entry_zone(ngx_http_trl_main_conf_t *tmcf,
    trl_list_entry_t *e)
{
    ngx_str_t              name;
    ngx_uint_t             i;
    ngx_http_trl_zone_t  **zones;

    if (e->zone[0]) {
        name.data = (u_char *) e->zone;
        name.len = ngx_strlen(e->zone);
        return ngx_http_trl_api_find_zone(tmcf, &name);
    }

    zones = tmcf->zones.elts;

    for (i = 0; i < tmcf->zones.nelts; i++) {
        if (zones[i]->log_key != NGX_HTTP_TRL_LOG_KEY_ON) {
            return zones[i];
        }
    }

    return NULL;
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


/*
 * The Unix time of a clock time of the zones (monotonic ms).  The offset
 * between the two clocks is taken from fresh readings of both and kept
 * while it holds to within a second (it moves only when the wall clock is
 * stepped), so that a past moment reads the same in every response: not
 * a second later because nginx's cached time lagged behind.
 */

time_t
ngx_http_trl_api_unix(uint64_t clock_ms, uint64_t now_ms)
{
    int64_t          unix_ms, cur;
    struct timeval   tv;

    static int64_t     offset;
    static ngx_uint_t  offset_set;

    ngx_gettimeofday(&tv);
    cur = (int64_t) tv.tv_sec * 1000 + tv.tv_usec / 1000
          - (int64_t) trl_clock_ms();

    if (!offset_set || cur - offset > 1000 || offset - cur > 1000) {
        offset = cur;
        offset_set = 1;
    }

    unix_ms = (int64_t) clock_ms + offset;

    /* a moment past rounds down, a deadline up (never early) */

    return (time_t) ((unix_ms + (clock_ms > now_ms ? 999 : 0)) / 1000);
}


static ngx_int_t
ngx_http_trl_api_arg(ngx_http_request_t *r, const char *name,
    ngx_str_t *value)
{
    return ngx_http_arg(r, (u_char *) name, ngx_strlen(name), value);
}


/*
 * A Prometheus scraper asks for text (its Accept names openmetrics-text
 * or text/plain, never JSON); browsers and curl get JSON.
 */

static ngx_uint_t
ngx_http_trl_api_wants_text(ngx_http_request_t *r)
{
#if (NGX_HTTP_HEADERS)
    ngx_str_t  *accept;

    if (r->headers_in.accept == NULL) {
        return 0;
    }

    accept = &r->headers_in.accept->value;

    return (ngx_strlcasestrn(accept->data, accept->data + accept->len,
                             (u_char *) "openmetrics-text", 16 - 1) != NULL
            || ngx_strlcasestrn(accept->data, accept->data + accept->len,
                                (u_char *) "text/plain", 10 - 1) != NULL)
           && ngx_strlcasestrn(accept->data, accept->data + accept->len,
                               (u_char *) "json", 4 - 1) == NULL
           && ngx_strlcasestrn(accept->data, accept->data + accept->len,
                               (u_char *) "text/html", 9 - 1) == NULL;
#else
    return 0;
#endif
}


ngx_int_t
ngx_http_trl_api_error(ngx_http_request_t *r, ngx_uint_t status,
    const char *error, const char *message)
{
    ngx_http_trl_out_t  out;

    ngx_http_trl_out_init(&out, r);
    ngx_http_trl_out_printf(&out, "{\"error\":\"%s\",\"message\":", error);
    ngx_http_trl_out_json(&out, (u_char *) message, ngx_strlen(message));
    ngx_http_trl_out_cat(&out, (u_char *) "}\n", 2);

    return ngx_http_trl_out_send(&out, status, "application/json");
}


static ngx_int_t
ngx_http_trl_api_not_allowed(ngx_http_request_t *r, const char *allow)
{
    ngx_table_elt_t  *h;

    h = ngx_list_push(&r->headers_out.headers);
    if (h) {
        h->hash = 1;
        ngx_str_set(&h->key, "Allow");
        h->value.data = (u_char *) allow;
        h->value.len = ngx_strlen(allow);
        h->lowcase_key = NULL;
#if (nginx_version >= 1023000)
        h->next = NULL;
#endif
    }

    return ngx_http_trl_api_error(r, NGX_HTTP_NOT_ALLOWED,
                                  "method_not_allowed",
                                  "this method is not allowed here");
}


void
ngx_http_trl_api_redis_state(ngx_http_trl_main_conf_t *tmcf,
    ngx_http_trl_redis_state_t *state)
{
    ngx_memzero(state, sizeof(ngx_http_trl_redis_state_t));

    if (tmcf->redis) {
        ngx_http_trl_redis_state(state);
    }
}


/*
 * SPEC 7, the rule of Go's http.CrossOriginProtection, both headers
 * checked: the Sec-Fetch-Site or Origin header that shows a request
 * from another origin, or NULL.  A header that cannot be read as the
 * request's own origin ("null", a path, a bad port, no Host to compare
 * with) shows another origin; a request with neither header (curl,
 * scripts) is not a browser's cross-site request and goes on.
 */

static ngx_table_elt_t *
ngx_http_trl_api_cross_site(ngx_http_request_t *r)
{
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    part = &r->headers_in.headers.part;
    h = part->elts;

    for (i = 0; /* void */; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                return NULL;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].key.len == sizeof("Sec-Fetch-Site") - 1
            && ngx_strncasecmp(h[i].key.data, (u_char *) "Sec-Fetch-Site",
                               sizeof("Sec-Fetch-Site") - 1) == 0)
        {
            if ((h[i].value.len == sizeof("same-origin") - 1
                 && ngx_strncmp(h[i].value.data, "same-origin",
                                sizeof("same-origin") - 1) == 0)
                || (h[i].value.len == sizeof("none") - 1
                    && ngx_strncmp(h[i].value.data, "none",
                                   sizeof("none") - 1) == 0))
            {
                continue;
            }

            return &h[i];
        }

        if (h[i].key.len == sizeof("Origin") - 1
            && ngx_strncasecmp(h[i].key.data, (u_char *) "Origin",
                               sizeof("Origin") - 1) == 0
            && !ngx_http_trl_api_same_origin(r, &h[i].value))
        {
            return &h[i];
        }
    }
}


/*
 * Whether an Origin ("http://host[:port]", as browsers send it) is the
 * request's own: the connection's scheme (https with TLS), the Host
 * header's host (case-insensitive) and port, 80 or 443 where not given.
 */

static ngx_uint_t
ngx_http_trl_api_same_origin(ngx_http_request_t *r, ngx_str_t *origin)
{
    u_char      *p, *last;
    ngx_str_t    host, own_host;
    ngx_uint_t   https, port, own_port;

    p = origin->data;
    last = p + origin->len;

    if (origin->len > sizeof("http://") - 1
        && ngx_strncasecmp(p, (u_char *) "http://", sizeof("http://") - 1)
           == 0)
    {
        https = 0;
        p += sizeof("http://") - 1;

    } else if (origin->len > sizeof("https://") - 1
               && ngx_strncasecmp(p, (u_char *) "https://",
                                  sizeof("https://") - 1) == 0)
    {
        https = 1;
        p += sizeof("https://") - 1;

    } else {
        return 0;                   /* "null", another scheme */
    }

#if (NGX_HTTP_SSL)
    if (https != (r->connection->ssl != NULL)) {
        return 0;
    }
#else
    if (https) {
        return 0;
    }
#endif

    if (r->headers_in.host == NULL) {
        return 0;
    }

    if (ngx_http_trl_api_host_port(p, last, https ? 443 : 80, &host, &port)
        != NGX_OK
        || ngx_http_trl_api_host_port(r->headers_in.host->value.data,
                                      r->headers_in.host->value.data
                                      + r->headers_in.host->value.len,
                                      https ? 443 : 80, &own_host, &own_port)
           != NGX_OK)
    {
        return 0;
    }

    return port == own_port && host.len == own_host.len
           && ngx_strncasecmp(host.data, own_host.data, host.len) == 0;
}


/*
 * "host", "host:port", "[v6]" or "[v6]:port", nothing else (no path, no
 * user); an empty port is the default one.
 */

static ngx_int_t
ngx_http_trl_api_host_port(u_char *p, u_char *last, ngx_uint_t default_port,
    ngx_str_t *host, ngx_uint_t *port)
{
    u_char  *end, *q;

    if (p < last && *p == '[') {
        end = ngx_strlchr(p, last, ']');
        if (end == NULL) {
            return NGX_ERROR;
        }

        end++;

    } else {
        end = ngx_strlchr(p, last, ':');
        if (end == NULL) {
            end = last;
        }
    }

    host->data = p;
    host->len = end - p;

    if (host->len == 0) {
        return NGX_ERROR;
    }

    for (q = p; q < end; q++) {
        if (*q == '/' || *q == '@' || *q == '?' || *q == '#' || *q == '\\'
            || *q <= ' ' || *q == 0x7f)
        {
            return NGX_ERROR;
        }
    }

    *port = default_port;

    if (end == last) {
        return NGX_OK;
    }

    if (*end != ':' || last - end > 6) {
        return NGX_ERROR;
    }

    if (last - end == 1) {
        return NGX_OK;              /* "host:" */
    }

    *port = 0;

    for (q = end + 1; q < last; q++) {
        if (*q < '0' || *q > '9') {
            return NGX_ERROR;
        }

        *port = *port * 10 + (*q - '0');
    }

    return *port <= 65535 ? NGX_OK : NGX_ERROR;
}


/*
 * 403 for a cross-site request.  Each is logged at info (a page can send
 * many), and at most one a minute per worker at warn, so that attempts
 * show with the default error_log level too.
 */

static ngx_int_t
ngx_http_trl_api_refuse(ngx_http_request_t *r, ngx_table_elt_t *h)
{
    ngx_str_t          value;
    ngx_uint_t         origin;

    static time_t      last_warn;
    static ngx_uint_t  quiet;

    origin = (h->key.len == sizeof("Origin") - 1);

    value = h->value;
    if (value.len > 100) {
        value.len = 100;            /* enough to tell it */
    }

    if (ngx_time() - last_warn >= 60) {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "token_ratelimit_api refused a cross-site %V request"
                      " (%s \"%V%s\"); %ui more since the last such warning,"
                      " logged at info", &r->method_name,
                      origin ? "Origin" : "Sec-Fetch-Site", &value,
                      h->value.len > value.len ? "..." : "", quiet);

        last_warn = ngx_time();
        quiet = 0;

    } else {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "token_ratelimit_api refused a cross-site %V request"
                      " (%s \"%V%s\")", &r->method_name,
                      origin ? "Origin" : "Sec-Fetch-Site", &value,
                      h->value.len > value.len ? "..." : "");
        quiet++;
    }

    return ngx_http_trl_api_error(r, NGX_HTTP_FORBIDDEN,
                                  "cross_site_request",
                                  origin
                                  ? "refused: a request that changes state"
                                    " must come from the API's own origin"
                                    " (its Origin is another one)"
                                  : "refused: a request that changes state"
                                    " must come from the API's own origin"
                                    " (its Sec-Fetch-Site is not"
                                    " same-origin)");
}


/* "location = /x/metrics" (or "= /metrics"): the exporter's usual path */

static ngx_uint_t
ngx_http_trl_api_exact_metrics(ngx_http_core_loc_conf_t *clcf)
{
    return clcf->exact_match
           && clcf->name.len >= sizeof("/metrics") - 1
           && ngx_strncmp(clcf->name.data + clcf->name.len
                          - (sizeof("/metrics") - 1),
                          "/metrics", sizeof("/metrics") - 1) == 0;
}
