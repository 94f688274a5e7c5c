
/*
 * ngx_http_token_ratelimit_api_active.c - active zones (issue 15) in
 * token_ratelimit_api: a key's places and when each expires, the zone's
 * lifetimes and counters, and their Prometheus series.
 */


#include "ngx_http_token_ratelimit.h"
#include "ngx_http_token_ratelimit_api.h"
#include "ngx_http_token_ratelimit_util.h"


/* ,"active":{"held":H,"places":[...]} of a key, or ,"active":null */

void
ngx_http_trl_api_active_places(ngx_http_trl_out_t *out,
    ngx_http_trl_zone_t *zone, trl_hash_t *hash, trl_limit_t *tl)
{
    size_t               i, n;
    uint64_t             now_ms, left;
    trl_active_place_t   places[TRL_DISTINCT_MAX_LIMIT + 1];

    if (zone->active == NULL) {
        ngx_http_trl_out_cat(out, (u_char *) ",\"active\":null", 14);
        return;
    }

    now_ms = trl_clock_ms();
    n = trl_active_places(zone->core, hash, tl, now_ms, places,
                          TRL_DISTINCT_MAX_LIMIT + 1);

    ngx_http_trl_out_printf(out, ",\"active\":{\"held\":%uz,\"places\":[",
                            n);

    for (i = 0; i < n; i++) {
        left = places[i].expires_ms > now_ms
               ? places[i].expires_ms - now_ms : 0;

        ngx_http_trl_out_printf(out, "%s{\"expires_in\":%uL.%03uL,"
                                "\"expires_at\":%T,\"token\":",
                                i ? "," : "", left / 1000, left % 1000,
                                ngx_http_trl_unix_time(places[i].expires_ms
                                                       + 999, now_ms));

        if (places[i].id) {
            ngx_http_trl_out_printf(out, "\"%08xD\"", places[i].id);
        } else {
            ngx_http_trl_out_cat(out, (u_char *) "null", 4);
        }

        ngx_http_trl_out_printf(out, ",\"pending\":%s}",
                                places[i].pending ? "true" : "false");
    }

    ngx_http_trl_out_cat(out, (u_char *) "]}", 2);
}


/* ,"active":{...} of a zone's view, or ,"active":null */

void
ngx_http_trl_api_active_zone(ngx_http_trl_out_t *out,
    ngx_http_trl_zone_t *zone)
{
    ngx_http_trl_active_t  *act;

    act = zone->active;

    if (act == NULL) {
        ngx_http_trl_out_cat(out, (u_char *) ",\"active\":null", 14);
        return;
    }

    ngx_http_trl_out_printf(out,
        ",\"active\":{\"max_lifetime\":%uL,\"default_lifetime\":%uL,"
        "\"issued\":%uL,\"released\":%uL,\"release_missed\":%uL,"
        "\"lifetime\":{\"upstream\":%uL,\"default\":%uL,\"capped\":%uL,"
        "\"invalid\":%uL}}",
        act->max_ms / 1000, act->default_ms / 1000,
        ngx_http_trl_active_stat(zone, NGX_HTTP_TRL_ACTIVE_ISSUED),
        ngx_http_trl_active_stat(zone, NGX_HTTP_TRL_ACTIVE_RELEASED),
        ngx_http_trl_active_stat(zone, NGX_HTTP_TRL_ACTIVE_MISSED),
        ngx_http_trl_active_stat(zone, NGX_HTTP_TRL_ACTIVE_LIFE_UPSTREAM),
        ngx_http_trl_active_stat(zone, NGX_HTTP_TRL_ACTIVE_LIFE_DEFAULT),
        ngx_http_trl_active_stat(zone, NGX_HTTP_TRL_ACTIVE_LIFE_CAPPED),
        ngx_http_trl_active_stat(zone, NGX_HTTP_TRL_ACTIVE_LIFE_INVALID));
}


/*
 * token_ratelimit_active_places_total{zone,outcome} and
 * token_ratelimit_active_lifetime_total{zone,source}; nothing when no
 * zone is active.
 */

void
ngx_http_trl_api_active_prometheus(ngx_http_trl_out_t *out,
    ngx_http_trl_main_conf_t *tmcf)
{
    ngx_uint_t             i, k, seen;
    ngx_http_trl_zone_t  **zones;

    static const struct {
        const char  *family;
        const char  *label;
        const char  *value;
        ngx_uint_t   stat;
    } series[] = {
        { "token_ratelimit_active_places_total", "outcome", "issued",
          NGX_HTTP_TRL_ACTIVE_ISSUED },
        { "token_ratelimit_active_places_total", "outcome", "released",
          NGX_HTTP_TRL_ACTIVE_RELEASED },
        { "token_ratelimit_active_places_total", "outcome", "release_missed",
          NGX_HTTP_TRL_ACTIVE_MISSED },
        { "token_ratelimit_active_lifetime_total", "source", "upstream",
          NGX_HTTP_TRL_ACTIVE_LIFE_UPSTREAM },
        { "token_ratelimit_active_lifetime_total", "source", "default",
          NGX_HTTP_TRL_ACTIVE_LIFE_DEFAULT },
        { "token_ratelimit_active_lifetime_total", "source", "capped",
          NGX_HTTP_TRL_ACTIVE_LIFE_CAPPED },
        { "token_ratelimit_active_lifetime_total", "source", "invalid",
          NGX_HTTP_TRL_ACTIVE_LIFE_INVALID },
    };

    zones = tmcf->zones.elts;
    seen = 0;

    for (k = 0; k < sizeof(series) / sizeof(series[0]); k++) {

        for (i = 0; i < tmcf->zones.nelts; i++) {
            if (zones[i]->active == NULL) {
                continue;
            }

            if (k == 0 && !seen++) {
                ngx_http_trl_out_printf(out,
                    "# HELP token_ratelimit_active_places_total Places of "
                    "active zones: kept for an issued token, released by a "
                    "revocation, or a revocation that found none.\n"
                    "# TYPE token_ratelimit_active_places_total counter\n");
            }

            if (k == 3 && seen++ == 1) {
                ngx_http_trl_out_printf(out,
                    "# HELP token_ratelimit_active_lifetime_total Where "
                    "the lifetime of a kept place came from: the "
                    "upstream's answer, the default (the rate's window), "
                    "capped at active=, or an unreadable value.\n"
                    "# TYPE token_ratelimit_active_lifetime_total counter\n");
            }

            /* zone names are plain: no label escaping needed */

            ngx_http_trl_out_printf(out, "%s{zone=\"%V\",%s=\"%s\"} %uL\n",
                                    series[k].family, &zones[i]->name,
                                    series[k].label, series[k].value,
                                    ngx_http_trl_active_stat(zones[i],
                                                        series[k].stat));
        }
    }
}
