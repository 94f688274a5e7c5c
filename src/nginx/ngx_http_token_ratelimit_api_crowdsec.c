
/*
 * ngx_http_token_ratelimit_api_crowdsec.c - token_ratelimit_api as a
 * CrowdSec local API for bouncers (crowdsec 1.4's answers, to the byte
 * where it matters: key order, null for an empty list, the 403 body):
 *
 *   GET  {loc}/v1/decisions/stream[?startup=true]   new and deleted
 *                                                    decisions since this
 *                                                    bouncer's last pull
 *   GET  {loc}/v1/decisions                          those in force
 *   POST {loc}/v1/usage-metrics                      accepted (201)
 *   GET  {loc}/crowdsec                              the bouncers seen and
 *                                                    the netset file
 *
 * The v1 calls need an X-Api-Key header holding one of the location's
 * token_ratelimit_crowdsec_key keys (compared in constant time, never
 * logged).  A bouncer is its key and its User-Agent; what it was sent is
 * kept in the shared memory zone "token_ratelimit_crowdsec" (trl_stream_*,
 * trl_decisions.h: 8 bouncers, 4,096 decisions each).  The filters of
 * the bouncers' query apply as LAPI applies them (api_crowdsec_filter.c).
 */


#include "ngx_http_token_ratelimit.h"
#include "ngx_http_token_ratelimit_crowdsec.h"
#include "ngx_http_token_ratelimit_util.h"


/* what a decision without an expiry tells a bouncer: ten years */
#define NGX_HTTP_TRL_CROWDSEC_FOREVER "87600h0m0s"


static ngx_str_t *ngx_http_trl_crowdsec_auth(ngx_http_request_t *r,
    ngx_array_t *keys);
static ngx_int_t ngx_http_trl_crowdsec_decisions(ngx_http_request_t *r,
    ngx_http_trl_main_conf_t *tmcf, ngx_array_t *decisions);
static ngx_int_t ngx_http_trl_crowdsec_stream(ngx_http_request_t *r,
    ngx_http_trl_main_conf_t *tmcf, ngx_str_t *key);
static ngx_int_t ngx_http_trl_crowdsec_list(ngx_http_request_t *r,
    ngx_http_trl_main_conf_t *tmcf);
static ngx_int_t ngx_http_trl_crowdsec_status(ngx_http_request_t *r,
    ngx_http_trl_main_conf_t *tmcf);
static ngx_int_t ngx_http_trl_crowdsec_forbidden(ngx_http_request_t *r);
static void ngx_http_trl_crowdsec_array(ngx_http_trl_out_t *out,
    trl_decision_t *d, size_t n, ngx_uint_t deleted, uint64_t now_ms);


/* path: "crowdsec" or "v1/..." below the location */

ngx_int_t
ngx_http_trl_api_crowdsec(ngx_http_request_t *r,
    ngx_http_trl_main_conf_t *tmcf, ngx_str_t *path)
{
    ngx_str_t                *key;
    ngx_http_trl_loc_conf_t  *tlcf;

    if (path->len == 8) {
        if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
            return ngx_http_trl_out_not_allowed(r, "GET, HEAD");
        }

        return ngx_http_trl_crowdsec_status(r, tmcf);
    }

    tlcf = ngx_http_get_module_loc_conf(r, ngx_http_token_ratelimit_module);

    if (tlcf->crowdsec_keys == NULL || tmcf->crowdsec == NULL) {
        return ngx_http_trl_out_error(r, NGX_HTTP_NOT_FOUND, "not_found",
                                      "no token_ratelimit_crowdsec_key in "
                                      "this location");
    }

    key = ngx_http_trl_crowdsec_auth(r, tlcf->crowdsec_keys);

    if (key == NULL) {
        return ngx_http_trl_crowdsec_forbidden(r);
    }

    if (path->len == 19 && ngx_strncmp(path->data, "v1/decisions/stream", 19)
                           == 0)
    {
        /* not HEAD: a pull changes what the bouncer is said to hold */

        if (r->method != NGX_HTTP_GET) {
            return ngx_http_trl_out_not_allowed(r, "GET");
        }

        return ngx_http_trl_crowdsec_stream(r, tmcf, key);
    }

    if (path->len == 12 && ngx_strncmp(path->data, "v1/decisions", 12) == 0) {
        if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
            return ngx_http_trl_out_not_allowed(r, "GET, HEAD");
        }

        return ngx_http_trl_crowdsec_list(r, tmcf);
    }

    if (path->len == 16 && ngx_strncmp(path->data, "v1/usage-metrics", 16)
                           == 0)
    {
        if (r->method != NGX_HTTP_POST) {
            return ngx_http_trl_out_not_allowed(r, "POST");
        }

        /* taken and forgotten: the API's own counters tell more */

        r->headers_out.status = NGX_HTTP_CREATED;
        r->headers_out.content_length_n = 0;
        r->header_only = 1;

        return ngx_http_send_header(r);
    }

    return ngx_http_trl_out_error(r, NGX_HTTP_NOT_FOUND, "not_found",
                                  "no such API path");
}


/*
 * The key of X-Api-Key among the location's (NULL: none): every key is
 * compared whole, whatever matched before, and each byte whatever the
 * bytes before, so that the time taken tells nothing of a key.
 */

static ngx_str_t *
ngx_http_trl_crowdsec_auth(ngx_http_request_t *r, ngx_array_t *keys)
{
    u_char            diff;
    ngx_str_t        *key, *match, given;
    ngx_uint_t        i, k;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    ngx_str_null(&given);

    part = &r->headers_in.headers.part;
    h = part->elts;

    for (i = 0; /* void */; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                break;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].key.len == 9
            && ngx_strncasecmp(h[i].key.data, (u_char *) "X-Api-Key", 9) == 0)
        {
            given = h[i].value;
            break;
        }
    }

    if (given.len == 0) {
        return NULL;
    }

    key = keys->elts;
    match = NULL;

    for (k = 0; k < keys->nelts; k++) {
        diff = (u_char) (key[k].len != given.len);

        for (i = 0; i < key[k].len; i++) {
            diff |= key[k].data[i] ^ given.data[i % given.len];
        }

        if (diff == 0) {
            match = &key[k];
        }
    }

    return match;
}


/* LAPI's answer to a missing or wrong key */

static ngx_int_t
ngx_http_trl_crowdsec_forbidden(ngx_http_request_t *r)
{
    ngx_http_trl_out_t  out;

    ngx_http_trl_out_init(&out, r);
    ngx_http_trl_out_printf(&out, "{\"message\":\"access forbidden\"}");

    return ngx_http_trl_out_send(&out, NGX_HTTP_FORBIDDEN,
                                 "application/json; charset=utf-8");
}


/*
 * The decisions in force that the request's filters keep: NGX_DECLINED
 * when they are in *decisions, else the request's answer (400, 500).
 */

static ngx_int_t
ngx_http_trl_crowdsec_decisions(ngx_http_request_t *r,
    ngx_http_trl_main_conf_t *tmcf, ngx_array_t *decisions)
{
    ngx_int_t  rc;

    rc = ngx_http_trl_crowdsec_collect(r, tmcf, decisions);

    if (rc == NGX_DECLINED) {
        return ngx_http_trl_out_error(r, NGX_HTTP_BAD_REQUEST, "bad_request",
                                      "ip= must be an address, range= a "
                                      "CIDR range");
    }

    return rc == NGX_OK ? NGX_DECLINED : NGX_HTTP_INTERNAL_SERVER_ERROR;
}


static ngx_int_t
ngx_http_trl_crowdsec_stream(ngx_http_request_t *r,
    ngx_http_trl_main_conf_t *tmcf, ngx_str_t *key)
{
    u_char              *who, *p;
    size_t               nwho, nnew, ndel, held;
    ngx_int_t            rc;
    uint64_t             now_ms;
    ngx_str_t            arg;
    ngx_uint_t           startup;
    ngx_array_t          decisions;
    trl_decision_t      *fresh, *gone;
    ngx_http_trl_out_t   out;

    startup = ngx_http_trl_api_arg(r, "startup", &arg) == NGX_OK
              && arg.len == 4 && ngx_strncmp(arg.data, "true", 4) == 0;

    rc = ngx_http_trl_crowdsec_decisions(r, tmcf, &decisions);

    if (rc != NGX_DECLINED) {
        return rc;                          /* answered: a bad filter */
    }

    /* the bouncer: its key and its User-Agent */

    nwho = key->len + 1 + (r->headers_in.user_agent
                           ? r->headers_in.user_agent->value.len : 0);

    who = ngx_pnalloc(r->pool, nwho);
    fresh = ngx_palloc(r->pool, ngx_max(1, ngx_min(decisions.nelts,
                                                   TRL_STREAM_MAX))
                                * sizeof(trl_decision_t));
    gone = ngx_palloc(r->pool, TRL_STREAM_MAX * sizeof(trl_decision_t));

    if (who == NULL || fresh == NULL || gone == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = ngx_cpymem(who, key->data, key->len);
    *p++ = '\0';

    if (r->headers_in.user_agent) {
        ngx_memcpy(p, r->headers_in.user_agent->value.data,
                   r->headers_in.user_agent->value.len);
    }

    now_ms = ngx_http_trl_wall_ms();

    if (trl_stream_pull(tmcf->crowdsec->stream, who, nwho, startup,
                        decisions.elts, decisions.nelts, fresh, &nnew,
                        gone, &ndel, &held, now_ms)
        != TRL_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_log_debug5(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "token_ratelimit_api: decisions stream%s: %uz in force, "
                   "%uz new, %uz deleted, %uz held back",
                   startup ? " (startup)" : "", decisions.nelts, nnew, ndel,
                   held);

    ngx_http_trl_out_init(&out, r);
    ngx_http_trl_out_printf(&out, "{\"deleted\":");
    ngx_http_trl_crowdsec_array(&out, gone, ndel, 1, now_ms);
    ngx_http_trl_out_printf(&out, ",\"new\":");
    ngx_http_trl_crowdsec_array(&out, fresh, nnew, 0, now_ms);
    ngx_http_trl_out_printf(&out, "}");

    return ngx_http_trl_out_send(&out, NGX_HTTP_OK,
                                 "application/json; charset=utf-8");
}


static ngx_int_t
ngx_http_trl_crowdsec_list(ngx_http_request_t *r,
    ngx_http_trl_main_conf_t *tmcf)
{
    ngx_int_t            rc;
    ngx_array_t          decisions;
    ngx_http_trl_out_t   out;

    rc = ngx_http_trl_crowdsec_decisions(r, tmcf, &decisions);

    if (rc != NGX_DECLINED) {
        return rc;                          /* answered: a bad filter */
    }

    ngx_http_trl_out_init(&out, r);
    ngx_http_trl_crowdsec_array(&out, decisions.elts, decisions.nelts, 0,
                                ngx_http_trl_wall_ms());

    return ngx_http_trl_out_send(&out, NGX_HTTP_OK,
                                 "application/json; charset=utf-8");
}


/* decisions as LAPI writes them (keys sorted); none: null */

static void
ngx_http_trl_crowdsec_array(ngx_http_trl_out_t *out, trl_decision_t *d,
    size_t n, ngx_uint_t deleted, uint64_t now_ms)
{
    char        duration[32];
    size_t      i;
    int64_t     left;
    ngx_str_t   value;
    u_char      buf[NGX_INET6_ADDRSTRLEN + 5];

    if (n == 0) {
        ngx_http_trl_out_cat(out, (u_char *) "null", 4);
        return;
    }

    ngx_http_trl_out_cat(out, (u_char *) "[", 1);

    for (i = 0; i < n; i++) {

        if (d[i].expires_ms == 0) {
            ngx_cpystrn((u_char *) duration,
                        (u_char *) (deleted ? "0s"
                                            : NGX_HTTP_TRL_CROWDSEC_FOREVER),
                        sizeof(duration));

        } else {
            /* a deleted decision: how long ago it expired (0s: removed
             * before its time) */

            left = (int64_t) d[i].expires_ms - (int64_t) now_ms;

            if (deleted && left > 0) {
                left = 0;
            }

            if (trl_decision_duration(left, duration, sizeof(duration))
                == 0)
            {
                out->failed = 1;
                return;
            }
        }

        ngx_http_trl_decision_value(&d[i], &value, buf);

        ngx_http_trl_out_printf(out,
                                "%s{\"duration\":\"%s\",\"id\":%uL,"
                                "\"origin\":\"" NGX_HTTP_TRL_CROWDSEC_ORIGIN
                                "\",\"scenario\":",
                                i ? "," : "", duration, d[i].id);
        ngx_http_trl_out_json(out, (u_char *) d[i].scenario,
                              ngx_strlen(d[i].scenario));
        ngx_http_trl_out_printf(out,
                                ",\"scope\":\"%s\",\"type\":\"ban\","
                                "\"value\":\"%V\"}",
                                d[i].prefix == (d[i].family == 4 ? 32 : 128)
                                ? "Ip" : "Range", &value);
    }

    ngx_http_trl_out_cat(out, (u_char *) "]", 1);
}


/* GET {loc}/crowdsec */

static ngx_int_t
ngx_http_trl_crowdsec_status(ngx_http_request_t *r,
    ngx_http_trl_main_conf_t *tmcf)
{
    size_t                 i, n;
    ngx_http_trl_out_t     out;
    trl_stream_bouncer_t   b[TRL_STREAM_BOUNCERS];

    ngx_http_trl_out_init(&out, r);

    if (tmcf->crowdsec == NULL) {
        ngx_http_trl_out_printf(&out, "{\"bouncers\":[],\"netset\":null}\n");
        return ngx_http_trl_out_send(&out, NGX_HTTP_OK, "application/json");
    }

    n = trl_stream_bouncers(tmcf->crowdsec->stream, b, TRL_STREAM_BOUNCERS);

    ngx_http_trl_out_printf(&out, "{\"bouncers\":[");

    for (i = 0; i < n; i++) {
        ngx_http_trl_out_printf(&out,
                                "%s{\"first_pull\":%T,\"last_pull\":%T,"
                                "\"pulls\":%uL,\"decisions\":%uD,"
                                "\"held_back\":%uD}",
                                i ? "," : "", (time_t) (b[i].first_ms / 1000),
                                (time_t) (b[i].last_ms / 1000), b[i].pulls,
                                b[i].sent, b[i].held_back);
    }

    ngx_http_trl_out_printf(&out, "],\"max_bouncers\":%d,"
                            "\"max_decisions\":%d,\"netset\":",
                            TRL_STREAM_BOUNCERS, TRL_STREAM_MAX);

    ngx_http_trl_netset_show(&out, tmcf->crowdsec);

    ngx_http_trl_out_printf(&out, "}\n");

    return ngx_http_trl_out_send(&out, NGX_HTTP_OK, "application/json");
}
