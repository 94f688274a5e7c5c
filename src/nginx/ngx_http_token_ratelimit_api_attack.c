
/*
 * ngx_http_token_ratelimit_api_attack.c - token_ratelimit_api and attack
 * mode, auto-ban (issue 14):
 *
 *   GET    {loc}/attack               every zone with token_ratelimit_attack
 *   POST   {loc}/attack/ZONE[?ttl=]   attack mode on for ttl (default: the
 *                                     zone's hold=), on every node
 *   DELETE {loc}/attack/ZONE          off now, on every node (the signal
 *                                     may enter it again)
 *
 * and the "attack" and "auto_bans" members of a zone in GET {loc}/ and
 * {loc}/zones/NAME, and their Prometheus families.
 */


#include "ngx_http_token_ratelimit.h"
#include "ngx_http_token_ratelimit_api.h"
#include "ngx_http_token_ratelimit_util.h"


static void ngx_http_trl_api_attack_one(ngx_http_trl_out_t *out,
    ngx_http_trl_zone_t *zone);


ngx_int_t
ngx_http_trl_api_attack(ngx_http_request_t *r, ngx_http_trl_main_conf_t *tmcf,
    ngx_str_t *rest)
{
    ngx_int_t                    ttl;
    ngx_str_t                    arg;
    ngx_uint_t                   i, n;
    ngx_http_trl_out_t           out;
    ngx_http_trl_zone_t         *zone;
    ngx_http_trl_attack_conf_t  *ac;

    if (rest->len == 0) {
        if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
            return ngx_http_trl_out_not_allowed(r, "GET, HEAD");
        }

        ngx_http_trl_out_init(&out, r);
        ngx_http_trl_out_cat(&out, (u_char *) "{", 1);

        ac = tmcf->attacks ? tmcf->attacks->elts : NULL;
        n = tmcf->attacks ? tmcf->attacks->nelts : 0;

        for (i = 0; i < n; i++) {
            ngx_http_trl_out_printf(&out, "%s\"%V\":", i ? "," : "",
                                    &ac[i].zone->name);
            ngx_http_trl_api_attack_one(&out, ac[i].zone);
        }

        ngx_http_trl_out_cat(&out, (u_char *) "}\n", 2);

        return ngx_http_trl_out_send(&out, NGX_HTTP_OK, "application/json");
    }

    zone = ngx_http_trl_api_find_zone(tmcf, rest);

    if (zone == NULL) {
        return ngx_http_trl_out_error(r, NGX_HTTP_NOT_FOUND, "zone_not_found",
                                      "no such zone");
    }

    if (zone->attack == NULL || zone->defense == NULL) {
        return ngx_http_trl_out_error(r, NGX_HTTP_NOT_FOUND,
                                      "attack_not_configured",
                                      "the zone has no token_ratelimit_attack");
    }

    if (r->method == NGX_HTTP_POST) {
        ttl = (ngx_int_t) zone->attack->p.hold_ms;

        if (ngx_http_trl_api_arg(r, "ttl", &arg) == NGX_OK) {
            ttl = ngx_parse_time(&arg, 0);

            if (ttl == NGX_ERROR || ttl <= 0) {
                return ngx_http_trl_out_error(r, NGX_HTTP_BAD_REQUEST,
                                              "bad_request",
                                              "ttl= must be a time such as "
                                              "30s, 10m or 1h");
            }
        }

        ngx_http_trl_attack_enter(zone, NGX_HTTP_TRL_ATTACK_API,
                                  ngx_http_trl_wall_ms() + (uint64_t) ttl);

    } else if (r->method == NGX_HTTP_DELETE) {
        ngx_http_trl_attack_leave(zone, 1);

    } else {
        return ngx_http_trl_out_not_allowed(r, "POST, DELETE");
    }

    ngx_http_trl_out_init(&out, r);
    ngx_http_trl_out_printf(&out, "{\"zone\":\"%V\",\"attack\":", &zone->name);
    ngx_http_trl_api_attack_one(&out, zone);
    ngx_http_trl_out_printf(&out, ",\"cluster\":%s}\n",
                            tmcf->redis ? "true" : "false");

    return ngx_http_trl_out_send(&out, NGX_HTTP_OK, "application/json");
}


/* {"on":..,"reason":..,"since":..,"until":..,"entered":..,"scale":..} */

static void
ngx_http_trl_api_attack_one(ngx_http_trl_out_t *out, ngx_http_trl_zone_t *zone)
{
    ngx_http_trl_defense_t      *d = zone->defense;
    ngx_http_trl_attack_conf_t  *ac = zone->attack;

    ngx_http_trl_out_printf(out, "{\"on\":%s,\"reason\":",
                            d->attack ? "true" : "false");

    if (d->attack) {
        ngx_http_trl_out_printf(out, "\"%s\",\"since\":%T,",
                                ngx_http_trl_attack_why(d->attack_why),
                                (time_t) (d->attack_since / 1000));
    } else {
        ngx_http_trl_out_cat(out, (u_char *) "null,\"since\":null,", 18);
    }

    if (d->attack && d->attack_until > ngx_http_trl_wall_ms()) {
        ngx_http_trl_out_printf(out, "\"until\":%T,",
                                (time_t) ((d->attack_until + 999) / 1000));
    } else {
        ngx_http_trl_out_cat(out, (u_char *) "\"until\":null,", 13);
    }

    ngx_http_trl_out_printf(out,
        "\"cluster\":%s,\"entered\":%uA,\"rejected_percent\":%uD,"
        "\"offenders_per_s\":%uD,\"min_per_s\":%uD,\"hold_ms\":%uL,"
        "\"scale\":%uD.%03uD,\"status\":%uD,\"log\":\"%s\"}",
        d->attack_remote ? "true" : "false", d->attack_entered,
        ac->p.rejected, ac->p.offenders, ac->p.min, ac->p.hold_ms,
        ac->p.scale / 1000, ac->p.scale % 1000, ac->p.status,
        ac->p.log == TRL_ATTACK_LOG_SUMMARY ? "summary" : "full");
}


/* a zone's members in GET {loc}/ and {loc}/zones/NAME */

void
ngx_http_trl_api_attack_state(ngx_http_trl_out_t *out,
    ngx_http_trl_zone_t *zone)
{
    ngx_http_trl_out_cat(out, (u_char *) ",\"attack\":", 10);

    if (zone->attack && zone->defense) {
        ngx_http_trl_api_attack_one(out, zone);
    } else {
        ngx_http_trl_out_cat(out, (u_char *) "null", 4);
    }

    if (zone->defense) {
        ngx_http_trl_out_printf(out, ",\"auto_bans\":%uA,"
                                "\"auto_bans_lost\":%uA",
                                zone->defense->auto_bans,
                                zone->defense->ban_full);
    }
}


void
ngx_http_trl_api_defense_prometheus(ngx_http_trl_out_t *out,
    ngx_http_trl_main_conf_t *tmcf)
{
    ngx_uint_t                   i, k;
    ngx_http_trl_zone_t        **zones;
    ngx_http_trl_defense_t      *d;

    static const struct {
        const char  *name;
        const char  *type;
        const char  *help;
        ngx_uint_t   attack;
    } families[] = {
        { "token_ratelimit_auto_bans_total", "counter",
          "Addresses the zone's ban= added to the deny list.", 0 },
        { "token_ratelimit_auto_bans_lost_total", "counter",
          "Auto-bans not added because the runtime lists were full.", 0 },
        { "token_ratelimit_attack_mode", "gauge",
          "1 while the zone is in attack mode.", 1 },
        { "token_ratelimit_attack_mode_entered_total", "counter",
          "Times the zone entered attack mode.", 1 },
    };

    if (tmcf->defense_zone == NULL) {
        return;
    }

    zones = tmcf->zones.elts;

    for (k = 0; k < sizeof(families) / sizeof(families[0]); k++) {

        if (families[k].attack ? tmcf->attacks == NULL : !tmcf->ban) {
            continue;
        }

        ngx_http_trl_out_printf(out, "# HELP %s %s\n# TYPE %s %s\n",
                                families[k].name, families[k].help,
                                families[k].name, families[k].type);

        for (i = 0; i < tmcf->zones.nelts; i++) {
            d = zones[i]->defense;

            if (d == NULL || (families[k].attack && zones[i]->attack == NULL))
            {
                continue;
            }

            /* zone names are plain: no label escaping needed */

            ngx_http_trl_out_printf(out, "%s{zone=\"%V\"} %uA\n",
                                    families[k].name, &zones[i]->name,
                                    k == 0 ? d->auto_bans
                                    : k == 1 ? d->ban_full
                                    : k == 2 ? d->attack
                                    : d->attack_entered);
        }
    }
}
