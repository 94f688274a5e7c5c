
/*
 * ngx_http_token_ratelimit_prometheus.c - token_ratelimit_api's metrics in
 * the Prometheus text exposition format (version 0.0.4):
 * GET {loc}/metrics and GET {loc}/?format=prometheus.
 *
 * Every family has its HELP and TYPE lines and then one sample per zone
 * (label zone; token_ratelimit_requests_total also outcome), families never
 * interleaved.  No sample carries a key: keys are unbounded, the zone, the
 * outcome and the list action are not.  The numbers are the ones the JSON
 * at {loc}/ shows, taken from the same calls; they live in shared memory,
 * so they are the sum over the workers and survive a reload.
 */


#include "ngx_http_token_ratelimit.h"
#include "ngx_http_token_ratelimit_api.h"
#include "ngx_http_token_ratelimit_util.h"
#include "ngx_http_token_ratelimit_reputation.h"


/* one zone's numbers, read once per scrape */
typedef struct {
    ngx_http_trl_zone_t        *zone;
    trl_zone_stats_t            st;
    uint64_t                    sync[TRL_SYNC_STATS];
    uint64_t                    active;         /* keys serving a penalty */
} ngx_http_trl_prom_zone_t;


/* what a per-zone family shows */
enum {
    NGX_HTTP_TRL_PROM_PENALIZED = 0,
    NGX_HTTP_TRL_PROM_OFFENSES,
    NGX_HTTP_TRL_PROM_PENALTIES,
    NGX_HTTP_TRL_PROM_PENALTIES_ACTIVE,
    NGX_HTTP_TRL_PROM_EVICTIONS,
    NGX_HTTP_TRL_PROM_RECOVERED,
    NGX_HTTP_TRL_PROM_LOG_SUPPRESSED,
    NGX_HTTP_TRL_PROM_KEYS,
    NGX_HTTP_TRL_PROM_CAPACITY,
    NGX_HTTP_TRL_PROM_SIZE,
    NGX_HTTP_TRL_PROM_LIMIT,
    NGX_HTTP_TRL_PROM_WINDOW,                   /* ms, shown in seconds */
    NGX_HTTP_TRL_PROM_SYNC_PUBLISHED,
    NGX_HTTP_TRL_PROM_SYNC_READS,
    NGX_HTTP_TRL_PROM_SYNC_ERRORS,
    NGX_HTTP_TRL_PROM_SYNC_FALLBACK,
    NGX_HTTP_TRL_PROM_SYNC_STRICT,
    NGX_HTTP_TRL_PROM_SYNC_CACHED,
    NGX_HTTP_TRL_PROM_SYNC_LAST_OK,             /* Unix seconds, 0: never */
    NGX_HTTP_TRL_PROM_SYNC_LAG                  /* ms, shown in seconds */
};


typedef struct {
    const char                 *name;
    const char                 *type;
    const char                 *help;
    ngx_uint_t                  what;
    ngx_uint_t                  sync_only;
} ngx_http_trl_prom_family_t;


static void ngx_http_trl_prom_head(ngx_http_trl_out_t *out, const char *name,
    const char *type, const char *help);
static void ngx_http_trl_prom_requests(ngx_http_trl_out_t *out,
    ngx_http_trl_prom_zone_t *zones, ngx_uint_t n);
static void ngx_http_trl_prom_info(ngx_http_trl_out_t *out,
    ngx_http_trl_prom_zone_t *zones, ngx_uint_t n);
static void ngx_http_trl_prom_family(ngx_http_trl_out_t *out,
    ngx_http_trl_prom_family_t *f, ngx_http_trl_prom_zone_t *zones,
    ngx_uint_t n, uint64_t now_ms);
static void ngx_http_trl_prom_distinct(ngx_http_trl_out_t *out,
    ngx_http_trl_prom_zone_t *zones, ngx_uint_t n);
static void ngx_http_trl_prom_redis(ngx_http_trl_out_t *out,
    ngx_http_trl_main_conf_t *tmcf);
static void ngx_http_trl_prom_lists(ngx_http_trl_out_t *out,
    ngx_http_trl_main_conf_t *tmcf);
static void ngx_http_trl_prom_reputation(ngx_http_trl_out_t *out,
    ngx_http_trl_main_conf_t *tmcf);
static void ngx_http_trl_prom_label(ngx_http_trl_out_t *out, u_char *s,
    size_t len);
static void ngx_http_trl_prom_ms(ngx_http_trl_out_t *out, uint64_t ms);


static ngx_http_trl_prom_family_t  ngx_http_trl_prom_families[] = {

    { "token_ratelimit_penalized_requests_total", "counter",
      "Requests rejected while their key was serving a penalty "
      "(a subset of outcome=\"rejected\").",
      NGX_HTTP_TRL_PROM_PENALIZED, 0 },

    { "token_ratelimit_offenses_total", "counter",
      "Keys going over their limit: a key counts once per episode, until "
      "it is admitted again.",
      NGX_HTTP_TRL_PROM_OFFENSES, 0 },

    { "token_ratelimit_penalties_started_total", "counter",
      "Penalties started.",
      NGX_HTTP_TRL_PROM_PENALTIES, 0 },

    { "token_ratelimit_penalties_active", "gauge",
      "Keys serving a penalty now.",
      NGX_HTTP_TRL_PROM_PENALTIES_ACTIVE, 0 },

    { "token_ratelimit_evictions_total", "counter",
      "Live keys evicted for want of room in the zone.",
      NGX_HTTP_TRL_PROM_EVICTIONS, 0 },

    { "token_ratelimit_lock_recoveries_total", "counter",
      "Zone locks taken over from processes that died holding them.",
      NGX_HTTP_TRL_PROM_RECOVERED, 0 },

    { "token_ratelimit_log_suppressed_total", "counter",
      "Error log lines not written: the zone's log_rate= budget of lines "
      "a second was spent.",
      NGX_HTTP_TRL_PROM_LOG_SUPPRESSED, 0 },

    { "token_ratelimit_zone_keys", "gauge",
      "Entries of the zone in use: the keys it holds (when full, it "
      "reuses the entries of keys whose window is over).",
      NGX_HTTP_TRL_PROM_KEYS, 0 },

    { "token_ratelimit_zone_capacity_keys", "gauge",
      "Keys the zone can hold.",
      NGX_HTTP_TRL_PROM_CAPACITY, 0 },

    { "token_ratelimit_zone_size_bytes", "gauge",
      "Size of the zone's shared memory.",
      NGX_HTTP_TRL_PROM_SIZE, 0 },

    { "token_ratelimit_zone_limit", "gauge",
      "Requests a key may make per window (N of rate=N/W).",
      NGX_HTTP_TRL_PROM_LIMIT, 0 },

    { "token_ratelimit_zone_window_seconds", "gauge",
      "Length of the sliding window (W of rate=N/W).",
      NGX_HTTP_TRL_PROM_WINDOW, 0 },

    { "token_ratelimit_sync_published_total", "counter",
      "Admissions published to Redis (sync zones).",
      NGX_HTTP_TRL_PROM_SYNC_PUBLISHED, 1 },

    { "token_ratelimit_sync_reads_total", "counter",
      "Key totals read back from Redis (sync zones).",
      NGX_HTTP_TRL_PROM_SYNC_READS, 1 },

    { "token_ratelimit_sync_errors_total", "counter",
      "Redis calls that failed or timed out (sync zones).",
      NGX_HTTP_TRL_PROM_SYNC_ERRORS, 1 },

    { "token_ratelimit_sync_fallback_total", "counter",
      "Decisions made locally for want of Redis (sync zones).",
      NGX_HTTP_TRL_PROM_SYNC_FALLBACK, 1 },

    { "token_ratelimit_sync_strict_calls_total", "counter",
      "Decisions asked of Redis (sync=strict zones).",
      NGX_HTTP_TRL_PROM_SYNC_STRICT, 1 },

    { "token_ratelimit_sync_strict_cached_total", "counter",
      "Rejections answered from the local block cache without asking "
      "Redis (sync=strict zones).",
      NGX_HTTP_TRL_PROM_SYNC_CACHED, 1 },

    { "token_ratelimit_sync_last_success_timestamp_seconds", "gauge",
      "Unix time of the last good reply from Redis (0: none yet).",
      NGX_HTTP_TRL_PROM_SYNC_LAST_OK, 1 },

    { "token_ratelimit_sync_lag_seconds", "gauge",
      "Age of the oldest admission in the last batch published to Redis.",
      NGX_HTTP_TRL_PROM_SYNC_LAG, 1 }
};


ngx_int_t
ngx_http_trl_api_prometheus(ngx_http_request_t *r,
    ngx_http_trl_main_conf_t *tmcf)
{
    uint64_t                   now_ms;
    ngx_uint_t                 i, n;
    ngx_http_trl_out_t         out;
    ngx_http_trl_zone_t      **zones;
    ngx_http_trl_prom_zone_t  *pz;

    now_ms = trl_clock_ms();

    ngx_http_trl_out_init(&out, r);

    /* every zone read once, before any family is written */

    pz = ngx_pcalloc(r->pool, (tmcf->zones.nelts + 1)
                              * sizeof(ngx_http_trl_prom_zone_t));
    if (pz == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    zones = tmcf->zones.elts;
    n = 0;

    for (i = 0; i < tmcf->zones.nelts; i++) {
        if (zones[i]->core == NULL) {
            continue;
        }

        pz[n].zone = zones[i];
        trl_zone_stats(zones[i]->core, &pz[n].st);

        (void) trl_zone_penalties(zones[i]->core, NULL, 0, now_ms,
                                  &pz[n].active);

        if (zones[i]->sync != TRL_SYNC_MODE_OFF) {
            trl_zone_sync_stats(zones[i]->core, pz[n].sync);
        }

        n++;
    }

    ngx_http_trl_prom_requests(&out, pz, n);

    for (i = 0; i < sizeof(ngx_http_trl_prom_families)
                    / sizeof(ngx_http_trl_prom_family_t); i++)
    {
        ngx_http_trl_prom_family(&out, &ngx_http_trl_prom_families[i], pz, n,
                                 now_ms);
    }

    ngx_http_trl_prom_info(&out, pz, n);
    ngx_http_trl_prom_distinct(&out, pz, n);
    ngx_http_trl_prom_redis(&out, tmcf);
    ngx_http_trl_prom_lists(&out, tmcf);
    ngx_http_trl_prom_reputation(&out, tmcf);
    ngx_http_trl_api_defense_prometheus(&out, tmcf);
    ngx_http_trl_api_active_prometheus(&out, tmcf);     /* issue 15 */

    return ngx_http_trl_out_send(&out, NGX_HTTP_OK,
                                 "text/plain; version=0.0.4; charset=utf-8");
}


static void
ngx_http_trl_prom_head(ngx_http_trl_out_t *out, const char *name,
    const char *type, const char *help)
{
    ngx_http_trl_out_printf(out, "# HELP %s %s\n# TYPE %s %s\n",
                            name, help, name, type);
}


/* outcomes are exclusive: their sum is every request the zone saw */

static void
ngx_http_trl_prom_requests(ngx_http_trl_out_t *out,
    ngx_http_trl_prom_zone_t *zones, ngx_uint_t n)
{
    uint64_t            v[6];
    ngx_uint_t          i, k;
    trl_zone_stats_t   *st;

    static const char  *outcomes[] = {
        "passed", "warned", "rejected", "rejected_dry_run", "bypassed",
        "denied"
    };

    if (n == 0) {
        return;
    }

    ngx_http_trl_prom_head(out, "token_ratelimit_requests_total", "counter",
                           "Requests by outcome: passed, warned (admitted "
                           "past the warning threshold), rejected, "
                           "rejected_dry_run (over the limit, let through), "
                           "bypassed and denied (before the zone was asked).");

    for (i = 0; i < n; i++) {
        st = &zones[i].st;

        v[0] = st->passed - st->warned;     /* passed counts warned too */
        v[1] = st->warned;
        v[2] = st->rejected;
        v[3] = st->rejected_dry_run;
        v[4] = st->bypassed;
        v[5] = st->denied;

        for (k = 0; k < 6; k++) {
            ngx_http_trl_out_printf(out, "token_ratelimit_requests_total"
                                    "{zone=\"");
            ngx_http_trl_prom_label(out, zones[i].zone->name.data,
                                    zones[i].zone->name.len);
            ngx_http_trl_out_printf(out, "\",outcome=\"%s\"} %uL\n",
                                    outcomes[k], v[k]);
        }
    }
}


static void
ngx_http_trl_prom_family(ngx_http_trl_out_t *out,
    ngx_http_trl_prom_family_t *f, ngx_http_trl_prom_zone_t *zones,
    ngx_uint_t n, uint64_t now_ms)
{
    uint64_t                   v;
    ngx_uint_t                 i, seen;
    trl_zone_stats_t          *st;
    ngx_http_trl_prom_zone_t  *z;

    seen = 0;

    for (i = 0; i < n; i++) {
        z = &zones[i];
        st = &z->st;

        if (f->sync_only && z->zone->sync == TRL_SYNC_MODE_OFF) {
            continue;
        }

        if (!seen) {
            ngx_http_trl_prom_head(out, f->name, f->type, f->help);
            seen = 1;
        }

        switch (f->what) {

        case NGX_HTTP_TRL_PROM_PENALIZED:
            v = st->penalized;
            break;

        case NGX_HTTP_TRL_PROM_OFFENSES:
            v = st->offenses;
            break;

        case NGX_HTTP_TRL_PROM_PENALTIES:
            v = st->penalties;
            break;

        case NGX_HTTP_TRL_PROM_PENALTIES_ACTIVE:
            v = z->active;
            break;

        case NGX_HTTP_TRL_PROM_EVICTIONS:
            v = st->evicted;
            break;

        case NGX_HTTP_TRL_PROM_RECOVERED:
            v = st->recovered;
            break;

        case NGX_HTTP_TRL_PROM_LOG_SUPPRESSED:
            v = trl_zone_lines_suppressed(z->zone->core,
                                          TRL_LINES_ERRORS);
            break;

        case NGX_HTTP_TRL_PROM_KEYS:
            v = st->keys;
            break;

        case NGX_HTTP_TRL_PROM_CAPACITY:
            v = st->capacity;
            break;

        case NGX_HTTP_TRL_PROM_SIZE:
            v = z->zone->shm_zone->shm.size;
            break;

        case NGX_HTTP_TRL_PROM_LIMIT:
            v = z->zone->rate.limit;
            break;

        case NGX_HTTP_TRL_PROM_WINDOW:
            v = z->zone->rate.window_ms;
            break;

        case NGX_HTTP_TRL_PROM_SYNC_PUBLISHED:
            v = z->sync[TRL_SYNC_PUBLISHED];
            break;

        case NGX_HTTP_TRL_PROM_SYNC_READS:
            v = z->sync[TRL_SYNC_READS];
            break;

        case NGX_HTTP_TRL_PROM_SYNC_ERRORS:
            v = z->sync[TRL_SYNC_ERRORS];
            break;

        case NGX_HTTP_TRL_PROM_SYNC_FALLBACK:
            v = z->sync[TRL_SYNC_FALLBACK];
            break;

        case NGX_HTTP_TRL_PROM_SYNC_STRICT:
            v = z->sync[TRL_SYNC_STRICT];
            break;

        case NGX_HTTP_TRL_PROM_SYNC_CACHED:
            v = z->sync[TRL_SYNC_CACHED];
            break;

        case NGX_HTTP_TRL_PROM_SYNC_LAST_OK:
            v = z->sync[TRL_SYNC_LAST_OK];
            v = v ? (uint64_t) ngx_http_trl_unix_time(v, now_ms) : 0;
            break;

        default: /* NGX_HTTP_TRL_PROM_SYNC_LAG */
            v = z->sync[TRL_SYNC_LAG];
            break;
        }

        ngx_http_trl_out_printf(out, "%s{zone=\"", f->name);
        ngx_http_trl_prom_label(out, z->zone->name.data, z->zone->name.len);
        ngx_http_trl_out_cat(out, (u_char *) "\"} ", 3);

        if (f->what == NGX_HTTP_TRL_PROM_WINDOW
            || f->what == NGX_HTTP_TRL_PROM_SYNC_LAG)
        {
            ngx_http_trl_prom_ms(out, v);

        } else {
            ngx_http_trl_out_printf(out, "%uL", v);
        }

        ngx_http_trl_out_cat(out, (u_char *) "\n", 1);
    }
}


/* the zone's configuration, as labels of a constant 1 */

static void
ngx_http_trl_prom_info(ngx_http_trl_out_t *out,
    ngx_http_trl_prom_zone_t *zones, ngx_uint_t n)
{
    ngx_uint_t            i;
    ngx_http_trl_zone_t  *zone;

    static const char    *modes[] = { "off", "async", "strict" };

    if (n == 0) {
        return;
    }

    ngx_http_trl_prom_head(out, "token_ratelimit_zone_info", "gauge",
                           "A zone's configuration: its key expression, "
                           "its rate and its sync mode (always 1).");

    for (i = 0; i < n; i++) {
        zone = zones[i].zone;

        ngx_http_trl_out_cat(out, (u_char *) "token_ratelimit_zone_info"
                                             "{zone=\"", 32);
        ngx_http_trl_prom_label(out, zone->name.data, zone->name.len);
        ngx_http_trl_out_cat(out, (u_char *) "\",key=\"", 7);
        ngx_http_trl_prom_label(out, zone->key.value.data,
                                zone->key.value.len);
        ngx_http_trl_out_cat(out, (u_char *) "\",rate=\"", 8);
        ngx_http_trl_prom_label(out, zone->rate_text.data,
                                zone->rate_text.len);
        ngx_http_trl_out_printf(out, "\",sync=\"%s\"} 1\n",
                                modes[zone->sync]);
    }
}


/*
 * Distinct zones (distinct=): N distinct values per key, and the memory a
 * key takes; zones counting requests have neither series.
 */

static void
ngx_http_trl_prom_distinct(ngx_http_trl_out_t *out,
    ngx_http_trl_prom_zone_t *zones, ngx_uint_t n)
{
    ngx_uint_t            i, k, seen;
    ngx_http_trl_zone_t  *zone;

    static const char  *names[] = {
        "token_ratelimit_zone_distinct_limit",
        "token_ratelimit_zone_distinct_key_bytes"
    };

    static const char  *help[] = {
        "Distinct values a key may have per window (N of rate=N/W in a "
        "zone with distinct=).",
        "Shared memory a key of a distinct zone takes, in bytes."
    };

    for (k = 0; k < 2; k++) {
        seen = 0;

        for (i = 0; i < n; i++) {
            zone = zones[i].zone;

            if (zone->distinct == NULL) {
                continue;
            }

            if (!seen++) {
                ngx_http_trl_prom_head(out, names[k], "gauge", help[k]);
            }

            ngx_http_trl_out_printf(out, "%s{zone=\"", names[k]);
            ngx_http_trl_prom_label(out, zone->name.data, zone->name.len);
            ngx_http_trl_out_printf(out, "\"} %uz\n",
                                    k == 0 ? (size_t) zone->rate.limit
                                    : trl_distinct_key_bytes(zone->rate.limit,
                                                             0));
        }
    }
}


static void
ngx_http_trl_prom_redis(ngx_http_trl_out_t *out,
    ngx_http_trl_main_conf_t *tmcf)
{
    ngx_uint_t                  i;
    ngx_http_trl_redis_state_t  st;

    if (tmcf->redis == NULL) {
        return;
    }

    ngx_http_trl_out_redis_state(tmcf, &st);

    ngx_http_trl_prom_head(out, "token_ratelimit_redis_up", "gauge",
                           "1 while this node's link to Redis is up and "
                           "Redis serves it.");
    ngx_http_trl_out_printf(out, "token_ratelimit_redis_up %ui\n",
                            st.up ? 1 : 0);

    ngx_http_trl_prom_head(out, "token_ratelimit_redis_outages_total",
                           "counter", "Times the link to Redis went down.");
    ngx_http_trl_out_printf(out, "token_ratelimit_redis_outages_total %ui\n",
                            st.outages);

    ngx_http_trl_prom_head(out, "token_ratelimit_redis_failures_total",
                           "counter",
                           "Redis calls that failed or timed out, "
                           "all zones together.");
    ngx_http_trl_out_printf(out, "token_ratelimit_redis_failures_total %ui\n",
                            st.failures);

    if (tmcf->redis->sentinels || tmcf->redis->cluster) {
        ngx_http_trl_prom_head(out, "token_ratelimit_redis_failovers_total",
                               "counter",
                               "Masters replaced, as the sentinels or the "
                               "cluster's slot map said.");
        ngx_http_trl_out_printf(out,
                                "token_ratelimit_redis_failovers_total %ui\n",
                                st.failovers);
    }

    if (tmcf->redis->cluster == NULL) {
        return;
    }

    /* one series per master: at most NGX_HTTP_TRL_MASTERS_SHOWN */

    ngx_http_trl_prom_head(out, "token_ratelimit_redis_master_up", "gauge",
                           "1 while the link to this master of the Redis "
                           "Cluster is up.");

    for (i = 0; i < st.nmasters; i++) {
        ngx_http_trl_out_printf(out,
                                "token_ratelimit_redis_master_up"
                                "{address=\"%*s\"} %ui\n",
                                st.masters[i].addr_len, st.masters[i].addr,
                                st.masters[i].up ? 1 : 0);
    }

    ngx_http_trl_prom_head(out, "token_ratelimit_redis_master_slots", "gauge",
                           "Hash slots this master serves, by the slot map "
                           "this node read last.");

    for (i = 0; i < st.nmasters; i++) {
        ngx_http_trl_out_printf(out,
                                "token_ratelimit_redis_master_slots"
                                "{address=\"%*s\"} %ui\n",
                                st.masters[i].addr_len, st.masters[i].addr,
                                st.masters[i].slots);
    }

    ngx_http_trl_prom_head(out, "token_ratelimit_redis_slots_unserved",
                           "gauge", "Hash slots without a master.");
    ngx_http_trl_out_printf(out, "token_ratelimit_redis_slots_unserved %ui\n",
                            st.unserved);
}


/* the runtime allow and deny entries: how many of each, none by name */

static void
ngx_http_trl_prom_lists(ngx_http_trl_out_t *out,
    ngx_http_trl_main_conf_t *tmcf)
{
    uint64_t  allow, deny;

    if (tmcf->lists == NULL) {
        return;
    }

    trl_lists_count(tmcf->lists, ngx_http_trl_wall_ms(), &allow, &deny);

    ngx_http_trl_prom_head(out, "token_ratelimit_list_entries", "gauge",
                           "Runtime allow and deny entries (added through "
                           "the API) in force now.");
    ngx_http_trl_out_printf(out,
                            "token_ratelimit_list_entries{action=\"allow\"} "
                            "%uL\n"
                            "token_ratelimit_list_entries{action=\"deny\"} "
                            "%uL\n",
                            allow, deny);
}


/* the reputation lists, by name (at most 64: declared in nginx.conf) */

static void
ngx_http_trl_prom_reputation(ngx_http_trl_out_t *out,
    ngx_http_trl_main_conf_t *tmcf)
{
    ngx_uint_t                i, f, n;
    trl_rep_zone_info_t       zi;
    trl_rep_list_info_t      *info;
    ngx_http_trl_rep_list_t  *lists;

    static const char  *families[][3] = {
        { "token_ratelimit_reputation_ranges", "gauge",
          "Address ranges (IPv4 and IPv6, after merging) of the list's "
          "table in force." },
        { "token_ratelimit_reputation_matched_total", "counter",
          "Requests whose client address the list held." },
        { "token_ratelimit_reputation_version", "gauge",
          "Version of the list's table in force (0: never loaded; uploads: "
          "the Unix time of the upload in ms)." },
        { "token_ratelimit_reputation_load_failed", "gauge",
          "1 while the list's last load failed (a bad or missing file, an "
          "upload or a Redis copy refused): the table in force is the last "
          "good one." }
    };

    if (tmcf->rep == NULL || tmcf->rep->rep == NULL) {
        return;
    }

    n = tmcf->rep->lists.nelts;
    lists = tmcf->rep->lists.elts;

    info = ngx_pcalloc(out->request->pool,
                       (n + 1) * sizeof(trl_rep_list_info_t));
    if (info == NULL) {
        out->failed = 1;
        return;
    }

    for (i = 0; i < n; i++) {
        if (lists[i].slot < 0
            || trl_rep_info(tmcf->rep->rep, (int) lists[i].slot, &info[i])
               != TRL_OK)
        {
            ngx_memzero(&info[i], sizeof(trl_rep_list_info_t));
        }
    }

    for (f = 0; f < 4; f++) {
        ngx_http_trl_prom_head(out, families[f][0], families[f][1],
                               families[f][2]);

        for (i = 0; i < n; i++) {
            ngx_http_trl_out_printf(out, "%s{list=\"", families[f][0]);
            ngx_http_trl_prom_label(out, lists[i].name.data,
                                    lists[i].name.len);
            ngx_http_trl_out_printf(out, "\"} %uL\n",
                                    f == 0 ? info[i].ranges4
                                             + info[i].ranges6
                                    : f == 1 ? info[i].matched
                                    : f == 2 ? info[i].version
                                    : (uint64_t) (info[i].error[0] != '\0'));
        }
    }

    trl_rep_zone_info(tmcf->rep->rep, &zi);

    ngx_http_trl_prom_head(out, "token_ratelimit_reputation_bytes", "gauge",
                           "Bytes of the reputation table's shared memory "
                           "in use (tables in force and retired).");
    ngx_http_trl_out_printf(out, "token_ratelimit_reputation_bytes %uL\n",
                            zi.used);
}


/*
 * A label value: backslash, double quote and line feed escaped as the
 * format says; other control bytes, and bytes that are not UTF-8, become
 * "?" (a label value must be UTF-8).
 */

static void
ngx_http_trl_prom_label(ngx_http_trl_out_t *out, u_char *s, size_t len)
{
    u_char  *p, *end, *run, *next;

    run = s;
    end = s + len;
    p = s;

    while (p < end) {

        if (*p >= 0x20 && *p < 0x7f && *p != '\\' && *p != '"') {
            p++;
            continue;
        }

        if (*p >= 0x80) {
            next = p;

            if (ngx_utf8_decode(&next, end - p) <= 0x10ffff) {
                p = next;
                continue;
            }
        }

        ngx_http_trl_out_cat(out, run, p - run);

        switch (*p) {

        case '\\':
            ngx_http_trl_out_cat(out, (u_char *) "\\\\", 2);
            break;

        case '"':
            ngx_http_trl_out_cat(out, (u_char *) "\\\"", 2);
            break;

        case '\n':
            ngx_http_trl_out_cat(out, (u_char *) "\\n", 2);
            break;

        default:
            ngx_http_trl_out_cat(out, (u_char *) "?", 1);
            break;
        }

        run = ++p;
    }

    ngx_http_trl_out_cat(out, run, p - run);
}


/* milliseconds as seconds: "10", "0.25" */

static void
ngx_http_trl_prom_ms(ngx_http_trl_out_t *out, uint64_t ms)
{
    u_char  buf[NGX_INT64_LEN + 8], *p;

    if (ms % 1000 == 0) {
        ngx_http_trl_out_printf(out, "%uL", ms / 1000);
        return;
    }

    p = ngx_sprintf(buf, "%uL.%03uL", ms / 1000, ms % 1000);

    while (p[-1] == '0') {
        p--;
    }

    ngx_http_trl_out_cat(out, buf, p - buf);
}
