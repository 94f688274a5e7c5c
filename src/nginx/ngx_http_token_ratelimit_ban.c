
/*
 * ngx_http_token_ratelimit_ban.c - auto-ban (issue 14): "token_ratelimit
 * ... penalty=... ban=COUNT:DURATION" (policy files: ban:).  When a key of
 * an address zone starts its COUNT-th penalty in a row (violations
 * counted by the penalty, forgotten after its forgive=), the client's
 * address is denied for DURATION through the runtime lists, with origin
 * "auto_ban:ZONE": every worker applies it on its next request, and with
 * token_ratelimit_redis every node within a second (as an API POST).
 *
 * Never banned: an address in the reputation's trusted ranges (trusted=
 * and set_real_ip_from), or a range that an allow entry of the lists
 * overlaps; a range already denied is not added again.  A dry run bans
 * nothing.
 */


#include "ngx_http_token_ratelimit.h"
#include "ngx_http_token_ratelimit_util.h"
#include "ngx_http_token_ratelimit_reputation.h"
#include "trl_decisions.h"


/* at most one "lists are full" line per zone per this many seconds */
#define NGX_HTTP_TRL_BAN_FULL_REPORT  60


static ngx_uint_t ngx_http_trl_ban_trusted(ngx_http_trl_main_conf_t *tmcf,
    trl_list_entry_t *e);
static void ngx_http_trl_ban_add(ngx_http_request_t *r,
    ngx_http_trl_loc_conf_t *tlcf, ngx_http_trl_applied_t *a);
static void ngx_http_trl_ban_full(ngx_http_request_t *r,
    ngx_http_trl_zone_t *zone);


static ngx_str_t  ngx_http_trl_client_key =
    ngx_string("$token_ratelimit_client");


/* ban=COUNT:DURATION (or off), parsed by the core as policy files' ban: */

char *
ngx_http_trl_ban_option(ngx_conf_t *cf, ngx_command_t *cmd, ngx_str_t *value,
    ngx_http_trl_limit_t *limit)
{
    char  err[NGX_MAX_ERROR_STR];

    if (ngx_strncmp(value->data, "ban=", 4) != 0) {
        return (char *) NGX_DECLINED;
    }

    if (trl_ban_parse((char *) value->data + 4, value->len - 4, &limit->ban,
                      err, sizeof(err))
        != TRL_OK)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid value \"%V\" in \"%V\" directive: %s",
                           value, &cmd->name, err);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/*
 * Once the http block is read: a ban needs a penalty (its violations) and
 * a zone keyed on the client's address, exactly $binary_remote_addr (the
 * address) or $token_ratelimit_client (IPv6: its prefix).
 */

char *
ngx_http_trl_ban_check(ngx_conf_t *cf, ngx_http_trl_main_conf_t *tmcf)
{
    ngx_uint_t            i;
    ngx_http_trl_ref_t   *refs;
    ngx_http_trl_zone_t  *zone;

    refs = tmcf->refs.elts;

    for (i = 0; i < tmcf->refs.nelts; i++) {
        if (refs[i].ban.count == 0) {
            continue;
        }

        zone = refs[i].shm_zone->data;

        if (!refs[i].penalty) {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "\"ban=\" of zone \"%V\" needs \"penalty=\" (a "
                          "ban counts penalties in a row) in %V:%ui",
                          &refs[i].shm_zone->shm.name, &refs[i].file,
                          refs[i].line);
            return NGX_CONF_ERROR;
        }

        if (zone == NULL) {
            continue;                   /* check_refs said so already */
        }

        if (!zone->key_addr
            && !(zone->key.value.len == ngx_http_trl_client_key.len
                 && ngx_strncmp(zone->key.value.data,
                                ngx_http_trl_client_key.data,
                                ngx_http_trl_client_key.len)
                    == 0))
        {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "\"ban=\" needs a zone keyed on the client's "
                          "address, \"$binary_remote_addr\" or "
                          "\"$token_ratelimit_client\", but zone \"%V\" is "
                          "keyed on \"%V\" in %V:%ui",
                          &zone->name, &zone->key.value, &refs[i].file,
                          refs[i].line);
            return NGX_CONF_ERROR;
        }

        tmcf->ban = 1;
    }

    return NGX_CONF_OK;
}


/* The request is decided: the penalties it started that call for a ban. */

void
ngx_http_trl_ban_apply(ngx_http_request_t *r, ngx_http_trl_loc_conf_t *tlcf,
    ngx_http_trl_ctx_t *ctx)
{
    ngx_uint_t               i;
    ngx_http_trl_applied_t  *a;

    for (i = 0; i < ctx->napplied; i++) {
        a = &ctx->applied[i];

        if (a->penalty_start && !a->dry_run && a->limit->ban.count
            && a->violations >= a->limit->ban.count)
        {
            ngx_http_trl_ban_add(r, tlcf, a);
        }
    }
}


static void
ngx_http_trl_ban_add(ngx_http_request_t *r, ngx_http_trl_loc_conf_t *tlcf,
    ngx_http_trl_applied_t *a)
{
    int                        family, rc;
    u_char                    *addr, text[NGX_INET6_ADDRSTRLEN + 8];
    size_t                     len;
    ngx_uint_t                 i, bits;
    trl_list_entry_t           e;
    ngx_http_trl_zone_t       *zone;
    ngx_http_trl_event_t       ev;
    ngx_http_trl_main_conf_t  *tmcf;

    tmcf = ngx_http_get_module_main_conf(r, ngx_http_token_ratelimit_module);
    zone = a->zone;

    if (tmcf->lists == NULL
        || ngx_http_trl_client_addr(r->connection->sockaddr, &family, &addr)
           != NGX_OK)
    {
        return;
    }

    ngx_memzero(&e, sizeof(trl_list_entry_t));
    e.action = TRL_LIST_DENY;
    e.family = (uint8_t) family;
    e.prefix = family == 4 ? 32 : zone->key_addr ? 128 : tlcf->ipv6_prefix;
    ngx_memcpy(e.addr, addr, family == 4 ? 4 : 16);

    for (bits = e.prefix, i = 0; i < 16; i++) {     /* the rest zero */
        if (bits >= 8) {
            bits -= 8;
            continue;
        }

        e.addr[i] &= (u_char) (0xff00 >> bits);
        bits = 0;
    }

    len = ngx_inet_ntop(family == 4 ? AF_INET : AF_INET6, e.addr, text,
                        NGX_INET6_ADDRSTRLEN);
    len = ngx_sprintf(text + len, "/%ud", (unsigned) e.prefix) - text;

    if (ngx_http_trl_ban_trusted(tmcf, &e)) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "token_ratelimit zone \"%V\": %*s not banned, it is "
                      "in a trusted range", &zone->name, len, text);
        return;
    }

    e.created_ms = ngx_http_trl_wall_ms();
    e.expires_ms = e.created_ms + a->limit->ban.duration_ms;

    /* "auto_ban:" and the zone's name, cut to what an origin holds */
    ngx_snprintf((u_char *) e.origin, TRL_LIST_ORIGIN_MAX, "auto_ban:%V",
                 &zone->name);

    rc = trl_lists_add_ban(tmcf->lists, &e, e.created_ms);

    if (rc == TRL_LIST_COVERED) {
        return;
    }

    if (rc != TRL_OK) {
        ngx_http_trl_ban_full(r, zone);
        return;
    }

    if (zone->defense) {
        (void) ngx_atomic_fetch_add(&zone->defense->auto_bans, 1);
    }

    if (tmcf->redis) {
        ngx_http_trl_lists_sync_now();      /* or once Redis is back */
    }

    ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                  "token_ratelimit zone \"%V\": banned %*s for %uLs after "
                  "%uD penalties in a row (list entry %uL)", &zone->name,
                  len, text, a->limit->ban.duration_ms / 1000, a->violations,
                  e.id);

    if (tlcf->event_log) {
        ngx_memzero(&ev, sizeof(ngx_http_trl_event_t));
        ev.event = "auto_banned";
        ev.zone = zone;
        ev.key = a->key_text;
        ev.value.data = text;
        ev.value.len = len;
        ev.duration_ms = a->limit->ban.duration_ms;
        ngx_str_set(&ev.reason, "penalties");
        ngx_http_trl_event_log_extra(r, tlcf, &ev);
    }
}


/* 1 when e's range overlaps a trusted range of the reputation */

static ngx_uint_t
ngx_http_trl_ban_trusted(ngx_http_trl_main_conf_t *tmcf, trl_list_entry_t *e)
{
    return tmcf->rep != NULL
           && trl_cidr_overlaps(e->family, e->prefix, e->addr,
                                tmcf->rep->trusted.elts,
                                tmcf->rep->trusted.nelts);
}


/* Full lists: counted, and said at most once a minute per zone. */

static void
ngx_http_trl_ban_full(ngx_http_request_t *r, ngx_http_trl_zone_t *zone)
{
    ngx_atomic_uint_t  last, now;

    if (zone->defense == NULL) {
        return;
    }

    (void) ngx_atomic_fetch_add(&zone->defense->ban_full, 1);

    now = (ngx_atomic_uint_t) ngx_time();
    last = zone->defense->ban_full_log;

    if (now < last + NGX_HTTP_TRL_BAN_FULL_REPORT
        || !ngx_atomic_cmp_set(&zone->defense->ban_full_log, last, now))
    {
        return;
    }

    ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                  "token_ratelimit zone \"%V\": an auto-ban was lost, the "
                  "runtime lists are full (%uA lost so far); remove "
                  "entries or shorten ban=", &zone->name,
                  zone->defense->ban_full);
}
