
/*
 * ngx_http_token_ratelimit_access.c - who is not limited at all: the
 * bypass and deny predicates (token_ratelimit_bypass, token_ratelimit_deny:
 * any value that is neither empty nor "0" matches, as with nginx's own
 * proxy_no_cache), and $token_ratelimit_client, the client address to key
 * on, IPv6 addresses cut to their network prefix so that a host cannot
 * rotate addresses within it.
 */


#include "ngx_http_token_ratelimit.h"
#include "ngx_http_token_ratelimit_util.h"


static void ngx_http_trl_log_denied(ngx_http_request_t *r,
    ngx_http_trl_loc_conf_t *tlcf);


/* at most one "denied" line a second per worker; the rest are counted */
static ngx_http_trl_log_gate_t  ngx_http_trl_deny_gate;


/*
 * The request's one access decision, taken on the client's address and
 * the keys the handler found (ctx->applied[0 .. nkeys - 1], each with the
 * verdict of the runtime entries for it): NGX_HTTP_FORBIDDEN when denied,
 * NGX_OK when bypassed, NGX_DECLINED when the zones are to decide.
 *
 *   - a deny entry for the address or token_ratelimit_deny: denied, and
 *     every zone counts it;
 *   - an allow entry for the address (unless a deny entry names one of
 *     the keys: deny wins) or token_ratelimit_bypass: bypassed, every zone
 *     counts it;
 *   - a deny entry for a key: denied, counted by its zone.
 *
 * The outcome is recorded in ctx (denied_key, denied_why) for the event
 * log and the debug log.
 */

ngx_int_t
ngx_http_trl_access(ngx_http_request_t *r, ngx_http_trl_loc_conf_t *tlcf,
    ngx_http_trl_ctx_t *ctx, ngx_uint_t nkeys)
{
    ngx_int_t                  listed;
    ngx_uint_t                 i;
    ngx_http_trl_applied_t    *key_denied;
    ngx_http_trl_main_conf_t  *tmcf;

    tmcf = ngx_http_get_module_main_conf(r, ngx_http_token_ratelimit_module);

    /* the runtime entries of token_ratelimit_api, then the directives */

    listed = ngx_http_trl_lists_addr(r, tmcf);

    if (listed == NGX_HTTP_FORBIDDEN
        || (tlcf->deny
            && ngx_http_test_predicates(r, tlcf->deny) == NGX_DECLINED))
    {
        ctx->denied_why = listed == NGX_HTTP_FORBIDDEN
                          ? NGX_HTTP_TRL_DENIED_LIST
                          : NGX_HTTP_TRL_DENIED_DIRECTIVE;

        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "token_ratelimit: denied by %s",
                       listed == NGX_HTTP_FORBIDDEN
                       ? "a deny entry for the address"
                       : "token_ratelimit_deny");

        ngx_http_trl_log_denied(r, tlcf);
        ngx_http_trl_count_all(tlcf, TRL_OUTCOME_DENIED);

        return NGX_HTTP_FORBIDDEN;
    }

    key_denied = NULL;

    for (i = 0; i < nkeys; i++) {
        if (ctx->applied[i].denied) {
            key_denied = &ctx->applied[i];
            break;
        }
    }

    if ((listed == NGX_OK && key_denied == NULL)
        || (tlcf->bypass
            && ngx_http_test_predicates(r, tlcf->bypass) == NGX_DECLINED))
    {
        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "token_ratelimit: bypassed by %s",
                       listed == NGX_OK && key_denied == NULL
                       ? "an allow entry for the address"
                       : "token_ratelimit_bypass");

        ngx_http_trl_count_all(tlcf, TRL_OUTCOME_BYPASSED);

        return NGX_OK;
    }

    if (key_denied) {
        ctx->denied_key = key_denied;
        ctx->denied_why = NGX_HTTP_TRL_DENIED_LIST;

        ngx_log_debug3(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "token_ratelimit: zone \"%V\" key %016xL%016xL: "
                       "denied by a deny entry for the key",
                       &key_denied->zone->name, key_denied->key.hi,
                       key_denied->key.lo);

        trl_zone_count(key_denied->zone->core, TRL_OUTCOME_DENIED);

        return NGX_HTTP_FORBIDDEN;
    }

    return NGX_DECLINED;
}


/* Every zone of the location counts an outcome decided before them. */

void
ngx_http_trl_count_all(ngx_http_trl_loc_conf_t *tlcf, int outcome)
{
    ngx_uint_t             i;
    ngx_http_trl_zone_t   *zone;
    ngx_http_trl_limit_t  *limits;

    limits = tlcf->limits.elts;

    for (i = 0; i < tlcf->limits.nelts; i++) {
        zone = limits[i].shm_zone->data;
        trl_zone_count(zone->core, outcome);
    }
}


static void
ngx_http_trl_log_denied(ngx_http_request_t *r, ngx_http_trl_loc_conf_t *tlcf)
{
    ngx_uint_t  more;

    if (!ngx_http_trl_log_gate(&ngx_http_trl_deny_gate, &more)) {
        return;
    }

    if (more) {
        ngx_log_error(tlcf->log_level, r->connection->log, 0,
                      "access denied by token_ratelimit_deny "
                      "(and %ui more since the last line)", more);
    } else {
        ngx_log_error(tlcf->log_level, r->connection->log, 0,
                      "access denied by token_ratelimit_deny");
    }
}


/*
 * $token_ratelimit_client: "192.0.2.7" for IPv4 (and IPv4-mapped IPv6),
 * "2001:db8:1:2::/64" for IPv6 with token_ratelimit_ipv6_prefix 64.
 */

ngx_int_t
ngx_http_trl_client_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    u_char                   *p;
    size_t                    len;
    ngx_uint_t                i, bits;
    struct sockaddr          *sa;
    ngx_http_trl_loc_conf_t  *tlcf;
#if (NGX_HAVE_INET6)
    u_char                    addr[16];
    struct sockaddr_in6      *sin6;
#endif

    sa = r->connection->sockaddr;

    p = ngx_pnalloc(r->pool, NGX_INET6_ADDRSTRLEN + 4);
    if (p == NULL) {
        return NGX_ERROR;
    }

    switch (sa->sa_family) {

#if (NGX_HAVE_INET6)
    case AF_INET6:
        sin6 = (struct sockaddr_in6 *) sa;

        if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
            len = ngx_inet_ntop(AF_INET, &sin6->sin6_addr.s6_addr[12], p,
                                NGX_INET_ADDRSTRLEN);
            break;
        }

        tlcf = ngx_http_get_module_loc_conf(r,
                                            ngx_http_token_ratelimit_module);
        bits = tlcf->ipv6_prefix;

        ngx_memcpy(addr, sin6->sin6_addr.s6_addr, 16);

        for (i = 0; i < 16; i++) {
            if (bits >= 8) {
                bits -= 8;
                continue;
            }

            addr[i] &= (u_char) (0xff00 >> bits);
            bits = 0;
        }

        len = ngx_inet6_ntop(addr, p, NGX_INET6_ADDRSTRLEN);

        if (tlcf->ipv6_prefix < 128) {
            len = ngx_sprintf(p + len, "/%ui", tlcf->ipv6_prefix) - p;
        }

        break;
#endif

    case AF_INET:
        len = ngx_inet_ntop(AF_INET,
                            &((struct sockaddr_in *) sa)->sin_addr, p,
                            NGX_INET_ADDRSTRLEN);
        break;

    default:                                /* unix sockets */
        len = r->connection->addr_text.len;
        p = r->connection->addr_text.data;
        break;
    }

    v->len = len;
    v->valid = 1;
    v->no_cacheable = 0;
    v->not_found = 0;
    v->data = p;

    return NGX_OK;
}
