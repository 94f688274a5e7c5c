
/*
 * ngx_http_token_ratelimit_decisions.c - the bans this node would hand to
 * CrowdSec bouncers and firewalls (api_crowdsec.c, netset.c): the runtime
 * deny entries of addresses and ranges (those of the API, the auto-bans,
 * CrowdSec's own), and the keys serving a penalty in zones keyed on exactly
 * $binary_remote_addr that the zone knows by name (its offender table: a
 * penalised key it knows only by hash cannot be told as an address).  A
 * range that overlaps a trusted one (the built-in ones, trusted= and
 * set_real_ip_from of token_ratelimit_reputation) is never among them.
 */


#include "ngx_http_token_ratelimit.h"
#include "ngx_http_token_ratelimit_crowdsec.h"
#include "ngx_http_token_ratelimit_reputation.h"
#include "ngx_http_token_ratelimit_util.h"


/* the named penalties looked at per zone */
#define NGX_HTTP_TRL_DECISION_PENALTIES  1024


static ngx_int_t ngx_http_trl_decisions_lists(ngx_http_trl_main_conf_t *tmcf,
    ngx_pool_t *pool, ngx_array_t *out, uint64_t wall_ms);
static ngx_int_t ngx_http_trl_decisions_penalties(
    ngx_http_trl_main_conf_t *tmcf, ngx_http_trl_zone_t *zone,
    ngx_pool_t *pool, ngx_array_t *out, uint64_t wall_ms);
static ngx_int_t ngx_http_trl_decision_push(ngx_http_trl_main_conf_t *tmcf,
    ngx_array_t *out, trl_decision_t *d);


/* out: an array of trl_decision_t made by the caller in pool */

ngx_int_t
ngx_http_trl_decisions(ngx_http_trl_main_conf_t *tmcf, ngx_pool_t *pool,
    ngx_array_t *out)
{
    uint64_t               wall_ms;
    ngx_uint_t             i;
    ngx_http_trl_zone_t  **zones;

    wall_ms = ngx_http_trl_wall_ms();

    if (tmcf->lists
        && ngx_http_trl_decisions_lists(tmcf, pool, out, wall_ms) != NGX_OK)
    {
        return NGX_ERROR;
    }

    zones = tmcf->zones.elts;

    for (i = 0; i < tmcf->zones.nelts; i++) {
        if (!zones[i]->key_addr || zones[i]->core == NULL) {
            continue;
        }

        if (ngx_http_trl_decisions_penalties(tmcf, zones[i], pool, out,
                                             wall_ms)
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_trl_decisions_lists(ngx_http_trl_main_conf_t *tmcf,
    ngx_pool_t *pool, ngx_array_t *out, uint64_t wall_ms)
{
    size_t             i, n, cap;
    trl_decision_t     d;
    trl_list_entry_t  *entries;

    cap = trl_lists_capacity(tmcf->lists);

    entries = ngx_palloc(pool, cap * sizeof(trl_list_entry_t));
    if (entries == NULL) {
        return NGX_ERROR;
    }

    n = trl_lists_get(tmcf->lists, entries, cap, wall_ms);

    for (i = 0; i < n; i++) {
        if (entries[i].action != TRL_LIST_DENY
            || (entries[i].family != 4 && entries[i].family != 6))
        {
            continue;
        }

        ngx_memzero(&d, sizeof(trl_decision_t));
        d.id = entries[i].id;
        d.expires_ms = entries[i].expires_ms;
        d.family = entries[i].family;
        d.prefix = entries[i].prefix;
        ngx_memcpy(d.addr, entries[i].addr, 16);

        /* who added it: "api", "auto_ban:ZONE", "crowdsec:SCENARIO" */
        ngx_cpystrn((u_char *) d.scenario,
                    (u_char *) (entries[i].origin[0] ? entries[i].origin
                                                     : "api"),
                    sizeof(d.scenario));

        if (ngx_http_trl_decision_push(tmcf, out, &d) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_trl_decisions_penalties(ngx_http_trl_main_conf_t *tmcf,
    ngx_http_trl_zone_t *zone, ngx_pool_t *pool, ngx_array_t *out,
    uint64_t wall_ms)
{
    size_t               i, n;
    trl_decision_t       d;
    trl_offender_t      *names;
    trl_penalty_info_t  *pen;

    pen = ngx_palloc(pool, NGX_HTTP_TRL_DECISION_PENALTIES
                           * sizeof(trl_penalty_info_t));
    names = ngx_palloc(pool, NGX_HTTP_TRL_DECISION_PENALTIES
                             * sizeof(trl_offender_t));
    if (pen == NULL || names == NULL) {
        return NGX_ERROR;
    }

    n = trl_zone_named_penalties(zone->core, pen, names,
                                 NGX_HTTP_TRL_DECISION_PENALTIES,
                                 trl_clock_ms());

    for (i = 0; i < n; i++) {

        /* $binary_remote_addr: 4 bytes (IPv4) or 16 (IPv6) */

        if (names[i].truncated || (names[i].len != 4 && names[i].len != 16)) {
            continue;
        }

        ngx_memzero(&d, sizeof(trl_decision_t));
        d.id = trl_decision_penalty_id((char *) zone->name.data,
                                       zone->name.len, names[i].text,
                                       names[i].len);
        d.expires_ms = wall_ms + pen[i].left_ms;
        d.family = names[i].len == 4 ? 4 : 6;
        d.prefix = names[i].len == 4 ? 32 : 128;
        ngx_memcpy(d.addr, names[i].text, names[i].len);
        ngx_cpystrn((u_char *) d.scenario, zone->name.data,
                    ngx_min(zone->name.len + 1, sizeof(d.scenario)));

        if (ngx_http_trl_decision_push(tmcf, out, &d) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_trl_decision_push(ngx_http_trl_main_conf_t *tmcf, ngx_array_t *out,
    trl_decision_t *d)
{
    trl_decision_t  *p;

    if (trl_decision_trusted(d, tmcf->rep ? tmcf->rep->trusted.elts : NULL,
                             tmcf->rep ? tmcf->rep->trusted.nelts : 0))
    {
        return NGX_OK;
    }

    p = ngx_array_push(out);
    if (p == NULL) {
        return NGX_ERROR;
    }

    *p = *d;

    return NGX_OK;
}


/* "203.0.113.7" (a whole address: scope Ip) or "203.0.113.0/24" (Range);
 * buf: NGX_INET6_ADDRSTRLEN + 5 bytes */

void
ngx_http_trl_decision_value(trl_decision_t *d, ngx_str_t *value, u_char *buf)
{
    size_t  len;

    len = ngx_inet_ntop(d->family == 4 ? AF_INET : AF_INET6, d->addr, buf,
                        NGX_INET6_ADDRSTRLEN);

    if (d->prefix != (d->family == 4 ? 32 : 128)) {
        len = ngx_sprintf(buf + len, "/%ud", (ngx_uint_t) d->prefix) - buf;
    }

    value->data = buf;
    value->len = len;
}
