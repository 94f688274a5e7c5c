
/*
 * ngx_http_token_ratelimit_api_lists.c - token_ratelimit_api: the runtime
 * allow and deny entries (lists.c applies them to requests).
 *
 *   GET    {loc}/lists                    every entry
 *   POST   {loc}/lists/allow|deny?...     add one (address=, cidr= or
 *                                         key= [zone=]; ttl=; origin=,
 *                                         "api" when not given)
 *   DELETE {loc}/lists/ID                 remove one
 *   DELETE {loc}/lists/allow|deny?...     remove those of an address or
 *                                         range (address= or cidr=; the
 *                                         CrowdSec bouncer's script)
 */


#include "ngx_http_token_ratelimit.h"
#include "ngx_http_token_ratelimit_api.h"
#include "ngx_http_token_ratelimit_util.h"


static ngx_int_t ngx_http_trl_api_list_add(ngx_http_request_t *r,
    ngx_http_trl_main_conf_t *tmcf, ngx_uint_t action);
static ngx_int_t ngx_http_trl_api_parse_addr(ngx_str_t *text,
    trl_list_entry_t *e, ngx_uint_t cidr);
static ngx_int_t ngx_http_trl_api_unescape(ngx_str_t *arg, u_char *buf);
static ngx_http_trl_zone_t *ngx_http_trl_api_entry_zone(
    ngx_http_trl_main_conf_t *tmcf, trl_list_entry_t *e);
static ngx_int_t ngx_http_trl_api_list_remove_value(ngx_http_request_t *r,
    ngx_http_trl_main_conf_t *tmcf, ngx_uint_t action);
static ngx_uint_t ngx_http_trl_api_same_range(trl_list_entry_t *a,
    trl_list_entry_t *b);


ngx_int_t
ngx_http_trl_api_lists(ngx_http_request_t *r, ngx_http_trl_main_conf_t *tmcf,
    ngx_str_t *rest)
{
    uint64_t            id;
    ngx_uint_t          i;
    ngx_http_trl_out_t  out;

    if (tmcf->lists == NULL) {
        return ngx_http_trl_out_error(r, NGX_HTTP_NOT_FOUND, "not_found",
                                      "no lists");
    }

    if (rest->len == 0) {
        if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
            return ngx_http_trl_out_not_allowed(r, "GET, HEAD");
        }

        ngx_http_trl_out_init(&out, r);
        ngx_http_trl_api_entries(&out, tmcf);
        ngx_http_trl_out_cat(&out, (u_char *) "\n", 1);

        return ngx_http_trl_out_send(&out, NGX_HTTP_OK, "application/json");
    }

    if ((rest->len == 5 && ngx_strncmp(rest->data, "allow", 5) == 0)
        || (rest->len == 4 && ngx_strncmp(rest->data, "deny", 4) == 0))
    {
        if (r->method == NGX_HTTP_DELETE) {
            return ngx_http_trl_api_list_remove_value(r, tmcf,
                                                      rest->len == 5
                                                      ? TRL_LIST_ALLOW
                                                      : TRL_LIST_DENY);
        }

        if (r->method != NGX_HTTP_POST) {
            return ngx_http_trl_out_not_allowed(r, "POST, DELETE");
        }

        return ngx_http_trl_api_list_add(r, tmcf, rest->len == 5
                                                  ? TRL_LIST_ALLOW
                                                  : TRL_LIST_DENY);
    }

    /* {loc}/lists/ID */

    id = 0;

    for (i = 0; i < rest->len; i++) {
        if (rest->data[i] < '0' || rest->data[i] > '9' || i >= 19) {
            return ngx_http_trl_out_error(r, NGX_HTTP_NOT_FOUND, "not_found",
                                          "no such list entry");
        }

        id = id * 10 + (rest->data[i] - '0');
    }

    if (r->method != NGX_HTTP_DELETE) {
        return ngx_http_trl_out_not_allowed(r, "DELETE");
    }

    /* with Redis, the removal is kept until Redis has been told */

    if (trl_lists_remove(tmcf->lists, id, tmcf->redis != NULL) != 1) {
        return ngx_http_trl_out_error(r, NGX_HTTP_NOT_FOUND, "not_found",
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


/*
 * POST {loc}/lists/allow|deny?address=|cidr=|key=[&zone=][&ttl=][&origin=]
 */

static ngx_int_t
ngx_http_trl_api_list_add(ngx_http_request_t *r,
    ngx_http_trl_main_conf_t *tmcf, ngx_uint_t action)
{
    u_char               origin[3 * TRL_LIST_ORIGIN_MAX];
    ngx_int_t            ttl;
    ngx_str_t            arg, key;
    trl_list_entry_t     e;
    ngx_http_trl_out_t   out;

    ngx_memzero(&e, sizeof(trl_list_entry_t));
    e.action = (uint8_t) action;

    if (ngx_http_trl_api_arg(r, "address", &arg) == NGX_OK) {
        if (ngx_http_trl_api_parse_addr(&arg, &e, 0) != NGX_OK) {
            return ngx_http_trl_out_error(r, NGX_HTTP_BAD_REQUEST,
                                          "bad_request",
                                          "address= must be an IPv4 or "
                                          "IPv6 address");
        }

    } else if (ngx_http_trl_api_arg(r, "cidr", &arg) == NGX_OK) {
        if (ngx_http_trl_api_parse_addr(&arg, &e, 1) != NGX_OK) {
            return ngx_http_trl_out_error(r, NGX_HTTP_BAD_REQUEST,
                                          "bad_request",
                                          "cidr= must be an address and a "
                                          "prefix length, such as "
                                          "203.0.113.0/24 or 2001:db8::/48");
        }

    } else if (ngx_http_trl_api_key_arg(r, &key) == NGX_OK) {
        if (key.len > sizeof(e.key)) {
            return ngx_http_trl_out_error(r, NGX_HTTP_BAD_REQUEST,
                                          "bad_request",
                                          "key= is longer than 128 bytes");
        }

        e.family = 0;
        e.key_len = (uint8_t) key.len;
        ngx_memcpy(e.key, key.data, key.len);

        if (ngx_http_trl_api_arg(r, "zone", &arg) == NGX_OK) {
            if (ngx_http_trl_api_find_zone(tmcf, &arg) == NULL) {
                return ngx_http_trl_out_error(r, NGX_HTTP_NOT_FOUND,
                                              "zone_not_found",
                                              "no such zone");
            }

            if (arg.len >= sizeof(e.zone)) {
                return ngx_http_trl_out_error(r, NGX_HTTP_BAD_REQUEST,
                                              "bad_request",
                                              "zone= is longer than 63 bytes");
            }

            ngx_memcpy(e.zone, arg.data, arg.len);
        }

    } else {
        return ngx_http_trl_out_error(r, NGX_HTTP_BAD_REQUEST, "bad_request",
                                      "give address=, cidr= or key= (with "
                                      "zone= for one zone only)");
    }

    e.created_ms = ngx_http_trl_wall_ms();

    if (ngx_http_trl_api_arg(r, "ttl", &arg) == NGX_OK) {
        ttl = ngx_parse_time(&arg, 0);

        if (ttl == NGX_ERROR || ttl <= 0) {
            return ngx_http_trl_out_error(r, NGX_HTTP_BAD_REQUEST,
                                          "bad_request",
                                          "ttl= must be a time such as 30s, "
                                          "10m or 1d");
        }

        e.expires_ms = e.created_ms + (uint64_t) ttl;
    }

    if (ngx_http_trl_api_arg(r, "origin", &arg) != NGX_OK) {
        ngx_str_set(&arg, "api");

    } else if (arg.len > 3 * TRL_LIST_ORIGIN_MAX
               || ngx_http_trl_api_unescape(&arg, origin) != NGX_OK
               || !trl_list_origin_valid((char *) arg.data, arg.len))
    {
        return ngx_http_trl_out_error(r, NGX_HTTP_BAD_REQUEST, "bad_request",
                                      "origin= must be 1 to 63 printable "
                                      "characters without spaces, such as "
                                      "crowdsec:ssh-bf");
    }

    ngx_memcpy(e.origin, arg.data, arg.len);

    if (trl_lists_add(tmcf->lists, &e, e.created_ms) != TRL_OK) {
        return ngx_http_trl_out_error(r, NGX_HTTP_INSUFFICIENT_STORAGE,
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


/* DELETE {loc}/lists/allow|deny?address=|cidr=[&origin=] */

static ngx_int_t
ngx_http_trl_api_list_remove_value(ngx_http_request_t *r,
    ngx_http_trl_main_conf_t *tmcf, ngx_uint_t action)
{
    size_t               i, n, removed;
    ngx_str_t            arg, origin;
    trl_list_entry_t     want, *entries;
    ngx_http_trl_out_t   out;
    u_char               buf[3 * TRL_LIST_ORIGIN_MAX];

    ngx_memzero(&want, sizeof(trl_list_entry_t));

    /* origin=: only the entries that origin added */

    ngx_str_null(&origin);

    if (ngx_http_trl_api_arg(r, "origin", &origin) == NGX_OK
        && (origin.len > sizeof(buf)
            || ngx_http_trl_api_unescape(&origin, buf) != NGX_OK
            || !trl_list_origin_valid((char *) origin.data, origin.len)))
    {
        return ngx_http_trl_out_error(r, NGX_HTTP_BAD_REQUEST, "bad_request",
                                      "origin= must be 1 to 63 printable "
                                      "characters without spaces");
    }

    if (!((ngx_http_trl_api_arg(r, "address", &arg) == NGX_OK
           && ngx_http_trl_api_parse_addr(&arg, &want, 0) == NGX_OK)
          || (ngx_http_trl_api_arg(r, "cidr", &arg) == NGX_OK
              && ngx_http_trl_api_parse_addr(&arg, &want, 1) == NGX_OK)))
    {
        return ngx_http_trl_out_error(r, NGX_HTTP_BAD_REQUEST, "bad_request",
                                      "give address= or cidr= (the entries "
                                      "of that address or range are "
                                      "removed), or remove one by "
                                      "DELETE {loc}/lists/ID");
    }

    entries = ngx_palloc(r->pool, trl_lists_capacity(tmcf->lists)
                                  * sizeof(trl_list_entry_t));
    if (entries == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    n = trl_lists_get(tmcf->lists, entries, trl_lists_capacity(tmcf->lists),
                      ngx_http_trl_wall_ms());

    ngx_http_trl_out_init(&out, r);
    ngx_http_trl_out_printf(&out, "{\"removed\":[");

    removed = 0;

    for (i = 0; i < n; i++) {
        if (entries[i].action != action
            || !ngx_http_trl_api_same_range(&entries[i], &want)
            || (origin.len
                && (ngx_strlen(entries[i].origin) != origin.len
                    || ngx_strncmp(entries[i].origin, origin.data,
                                   origin.len) != 0))
            || trl_lists_remove(tmcf->lists, entries[i].id,
                                tmcf->redis != NULL)
               != 1)
        {
            continue;
        }

        ngx_http_trl_out_printf(&out, "%s%uL", removed++ ? "," : "",
                                entries[i].id);
    }

    if (removed == 0) {
        return ngx_http_trl_out_error(r, NGX_HTTP_NOT_FOUND, "not_found",
                                      "no such list entry");
    }

    if (tmcf->redis) {
        ngx_http_trl_lists_sync_now();
    }

    ngx_http_trl_out_printf(&out, "],\"cluster\":%s}\n",
                            tmcf->redis ? "true" : "false");

    return ngx_http_trl_out_send(&out, NGX_HTTP_OK, "application/json");
}


/* the same family, prefix and bits within the prefix */

static ngx_uint_t
ngx_http_trl_api_same_range(trl_list_entry_t *a, trl_list_entry_t *b)
{
    ngx_uint_t  whole, rest;

    if (a->family != b->family || a->prefix != b->prefix) {
        return 0;
    }

    whole = a->prefix / 8;
    rest = a->prefix % 8;

    return ngx_memcmp(a->addr, b->addr, whole) == 0
           && (rest == 0
               || ((a->addr[whole] ^ b->addr[whole])
                   & (0xff << (8 - rest)) & 0xff) == 0);
}


/* arg URL-decoded into buf (room for arg->len bytes), arg then names it */

static ngx_int_t
ngx_http_trl_api_unescape(ngx_str_t *arg, u_char *buf)
{
    u_char  *dst, *src;

    dst = buf;
    src = arg->data;
    ngx_unescape_uri(&dst, &src, arg->len, 0);

    arg->data = buf;
    arg->len = dst - buf;

    return arg->len ? NGX_OK : NGX_ERROR;
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


void
ngx_http_trl_api_entries(ngx_http_trl_out_t *out,
    ngx_http_trl_main_conf_t *tmcf)
{
    u_char             addr[NGX_INET6_ADDRSTRLEN];
    size_t             i, n, len;
    uint64_t           now_ms;
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

    now_ms = ngx_http_trl_wall_ms();

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

        ngx_http_trl_out_cat(out, (u_char *) ",\"origin\":", 10);
        ngx_http_trl_out_json(out, (u_char *) entries[i].origin,
                              ngx_strlen(entries[i].origin));

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
        if (zones[i]->log_key != TRL_LOG_KEY_ON) {
            return zones[i];
        }
    }

    return NULL;
}
