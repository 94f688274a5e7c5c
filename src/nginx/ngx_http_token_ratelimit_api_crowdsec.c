
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
 * the bouncers' query (scopes=, origins=, scenarios_containing=,
 * scenarios_not_containing=; a live bouncer's ip= or range=, scope=,
 * value=, type=) apply as LAPI applies them.
 */


#include "ngx_http_token_ratelimit.h"
#include "ngx_http_token_ratelimit_crowdsec.h"
#include "ngx_http_token_ratelimit_util.h"


#define NGX_HTTP_TRL_CROWDSEC_ORIGIN  "token-ratelimit"

/* what a decision without an expiry tells a bouncer: ten years */
#define NGX_HTTP_TRL_CROWDSEC_FOREVER "87600h0m0s"

#define NGX_HTTP_TRL_CROWDSEC_KEY_MIN  16


typedef struct {
    ngx_str_t                   scopes;
    ngx_str_t                   origins;
    ngx_str_t                   containing;
    ngx_str_t                   not_containing;
    ngx_str_t                   scope;          /* exact, one */
    ngx_str_t                   value;          /* exact */
    ngx_str_t                   type;
    trl_cidr_t                  held;           /* ip= or range= */
    ngx_uint_t                  has_held;
} ngx_http_trl_crowdsec_filter_t;


static ngx_int_t ngx_http_trl_crowdsec_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
static ngx_str_t *ngx_http_trl_crowdsec_auth(ngx_http_request_t *r,
    ngx_array_t *keys);
static ngx_int_t ngx_http_trl_crowdsec_stream(ngx_http_request_t *r,
    ngx_http_trl_main_conf_t *tmcf, ngx_str_t *key);
static ngx_int_t ngx_http_trl_crowdsec_list(ngx_http_request_t *r,
    ngx_http_trl_main_conf_t *tmcf);
static ngx_int_t ngx_http_trl_crowdsec_status(ngx_http_request_t *r,
    ngx_http_trl_main_conf_t *tmcf);
static ngx_int_t ngx_http_trl_crowdsec_forbidden(ngx_http_request_t *r);
static ngx_int_t ngx_http_trl_crowdsec_collect(ngx_http_request_t *r,
    ngx_http_trl_main_conf_t *tmcf, ngx_array_t *decisions);
static ngx_uint_t ngx_http_trl_crowdsec_wanted(
    ngx_http_trl_crowdsec_filter_t *f, trl_decision_t *d);
static ngx_uint_t ngx_http_trl_crowdsec_any(ngx_str_t *list, u_char *text,
    size_t len, ngx_uint_t substring);
static void ngx_http_trl_crowdsec_array(ngx_http_trl_out_t *out,
    trl_decision_t *d, size_t n, ngx_uint_t deleted, uint64_t now_ms);


static ngx_str_t  ngx_http_trl_crowdsec_name =
    ngx_string("token_ratelimit_crowdsec");


/* the zone of the stream and the netset file, made by the first of the two
 * directives */

ngx_http_trl_crowdsec_t *
ngx_http_trl_crowdsec_conf(ngx_conf_t *cf)
{
    ngx_http_trl_crowdsec_t   *cs;
    ngx_http_trl_main_conf_t  *tmcf;

    tmcf = ngx_http_conf_get_module_main_conf(cf,
                                              ngx_http_token_ratelimit_module);

    if (tmcf->crowdsec) {
        return tmcf->crowdsec;
    }

    cs = ngx_pcalloc(cf->pool, sizeof(ngx_http_trl_crowdsec_t));
    if (cs == NULL) {
        return NULL;
    }

    cs->shm_zone = ngx_shared_memory_add(cf, &ngx_http_trl_crowdsec_name,
                                         trl_stream_size()
                                         + sizeof(ngx_http_trl_netset_state_t)
                                         + 16 * ngx_pagesize,
                                         &ngx_http_token_ratelimit_module);
    if (cs->shm_zone == NULL) {
        return NULL;
    }

    cs->shm_zone->init = ngx_http_trl_crowdsec_init_zone;
    cs->shm_zone->data = cs;

    tmcf->crowdsec = cs;

    return cs;
}


static ngx_int_t
ngx_http_trl_crowdsec_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    char                      err[128];
    u_char                   *block;
    ngx_slab_pool_t          *shpool;
    ngx_http_trl_crowdsec_t  *cs;

    cs = shm_zone->data;
    shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;
    cs->shpool = shpool;

    ngx_cpystrn((u_char *) err, (u_char *) "no room for it", sizeof(err));

    if (data || shm_zone->shm.exists) {
        block = shpool->data;
        cs->netset_state = (ngx_http_trl_netset_state_t *) block;
        cs->stream = trl_stream_attach(block
                                       + sizeof(ngx_http_trl_netset_state_t),
                                       trl_stream_size(), err, sizeof(err));

    } else {
        block = ngx_slab_calloc(shpool, sizeof(ngx_http_trl_netset_state_t)
                                        + trl_stream_size());
        if (block) {
            shpool->data = block;
            cs->netset_state = (ngx_http_trl_netset_state_t *) block;
            cs->stream = trl_stream_create(block
                                         + sizeof(ngx_http_trl_netset_state_t),
                                         trl_stream_size(), err, sizeof(err));
        }
    }

    if (cs->stream == NULL) {
        ngx_log_error(NGX_LOG_EMERG, shm_zone->shm.log, 0,
                      "token_ratelimit: the shared memory of the CrowdSec "
                      "decisions stream is unusable (%s); restart nginx",
                      err);
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* token_ratelimit_crowdsec_key KEY | file=PATH */

char *
ngx_http_trl_crowdsec_key_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_trl_loc_conf_t  *tlcf = conf;

    u_char     *p;
    ssize_t     n;
    ngx_str_t  *value, *key, path;
    ngx_file_t  file;
    u_char      buf[1024];

    value = cf->args->elts;

    if (tlcf->crowdsec_keys == NULL) {
        tlcf->crowdsec_keys = ngx_array_create(cf->pool, 1,
                                               sizeof(ngx_str_t));
        if (tlcf->crowdsec_keys == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    key = ngx_array_push(tlcf->crowdsec_keys);
    if (key == NULL) {
        return NGX_CONF_ERROR;
    }

    if (ngx_strncmp(value[1].data, "file=", 5) == 0) {
        path.data = value[1].data + 5;
        path.len = value[1].len - 5;

        if (ngx_conf_full_name(cf->cycle, &path, 1) != NGX_OK) {
            return NGX_CONF_ERROR;
        }

        ngx_memzero(&file, sizeof(ngx_file_t));
        file.name = path;
        file.log = cf->log;
        file.fd = ngx_open_file(path.data, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);

        if (file.fd == NGX_INVALID_FILE) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                               "\"%V\" cannot open the key file \"%V\"",
                               &cmd->name, &path);
            return NGX_CONF_ERROR;
        }

        n = ngx_read_file(&file, buf, sizeof(buf), 0);
        ngx_close_file(file.fd);

        if (n == NGX_ERROR || n == (ssize_t) sizeof(buf)) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"%V\" cannot read a key of at most %uz "
                               "bytes from \"%V\"", &cmd->name,
                               sizeof(buf) - 1, &path);
            return NGX_CONF_ERROR;
        }

        /* the first line, without its end or surrounding blanks */

        p = buf;
        while (n && (*p == ' ' || *p == '\t')) {
            p++;
            n--;
        }

        key->data = p;
        key->len = 0;

        while ((ssize_t) key->len < n && p[key->len] != '\n'
               && p[key->len] != '\r')
        {
            key->len++;
        }

        while (key->len && (p[key->len - 1] == ' '
                            || p[key->len - 1] == '\t'))
        {
            key->len--;
        }

        key->data = ngx_pstrdup(cf->pool, key);
        if (key->data == NULL) {
            return NGX_CONF_ERROR;
        }

        ngx_explicit_memzero(buf, sizeof(buf));

    } else {
        *key = value[1];
    }

    /* the key itself is never shown: not here, not in a log */

    if (key->len < NGX_HTTP_TRL_CROWDSEC_KEY_MIN) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" needs a key of at least %d characters "
                           "(such as the 32 hexadecimal digits of "
                           "\"openssl rand -hex 16\"), as KEY or in the "
                           "first line of file=PATH; this one has %uz",
                           &cmd->name, NGX_HTTP_TRL_CROWDSEC_KEY_MIN,
                           key->len);
        return NGX_CONF_ERROR;
    }

    for (p = key->data; p < key->data + key->len; p++) {
        if (*p <= ' ' || *p >= 0x7f) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"%V\" takes a key of printable ASCII "
                               "characters without blanks", &cmd->name);
            return NGX_CONF_ERROR;
        }
    }

    if (ngx_http_trl_crowdsec_conf(cf) == NULL) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


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

    rc = ngx_http_trl_crowdsec_collect(r, tmcf, &decisions);

    if (rc == NGX_DECLINED) {
        return ngx_http_trl_out_error(r, NGX_HTTP_BAD_REQUEST, "bad_request",
                                      "ip= must be an address, range= a "
                                      "CIDR range");
    }

    if (rc != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
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

    rc = ngx_http_trl_crowdsec_collect(r, tmcf, &decisions);

    if (rc == NGX_DECLINED) {
        return ngx_http_trl_out_error(r, NGX_HTTP_BAD_REQUEST, "bad_request",
                                      "ip= must be an address, range= a "
                                      "CIDR range");
    }

    if (rc != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_http_trl_out_init(&out, r);
    ngx_http_trl_crowdsec_array(&out, decisions.elts, decisions.nelts, 0,
                                ngx_http_trl_wall_ms());

    return ngx_http_trl_out_send(&out, NGX_HTTP_OK,
                                 "application/json; charset=utf-8");
}


/* the decisions in force that the bouncer's filters let through */

static ngx_int_t
ngx_http_trl_crowdsec_collect(ngx_http_request_t *r,
    ngx_http_trl_main_conf_t *tmcf, ngx_array_t *decisions)
{
    u_char                          *dst, *src;
    ngx_str_t                       *arg;
    ngx_uint_t                       i, n;
    trl_decision_t                  *d;
    ngx_http_trl_crowdsec_filter_t   f;

    static const char  *names[] = { "scopes", "origins",
                                    "scenarios_containing",
                                    "scenarios_not_containing", "scope",
                                    "value", "type", "ip", "range" };

    ngx_str_t   ip, range;
    ngx_str_t  *args[] = { &f.scopes, &f.origins, &f.containing,
                           &f.not_containing, &f.scope, &f.value, &f.type,
                           &ip, &range };

    ngx_memzero(&f, sizeof(ngx_http_trl_crowdsec_filter_t));

    for (i = 0; i < sizeof(args) / sizeof(args[0]); i++) {
        arg = args[i];

        if (ngx_http_trl_api_arg(r, names[i], arg) != NGX_OK
            || arg->len == 0)
        {
            ngx_str_null(arg);
            continue;
        }

        dst = ngx_pnalloc(r->pool, arg->len);
        if (dst == NULL) {
            return NGX_ERROR;
        }

        src = arg->data;
        arg->data = dst;
        ngx_unescape_uri(&dst, &src, arg->len, NGX_UNESCAPE_URI);
        arg->len = dst - arg->data;
    }

    /* a live bouncer asks about one address (or range): the decisions
     * that hold it, never all */

    arg = ip.len ? &ip : range.len ? &range : NULL;

    if (arg) {
        if (trl_cidr_parse((char *) arg->data, arg->len, &f.held, NULL, 0)
            != TRL_OK
            || (arg == &ip && f.held.prefix != (f.held.family == 4 ? 32
                                                                  : 128)))
        {
            return NGX_DECLINED;
        }

        f.has_held = 1;
    }

    if (ngx_array_init(decisions, r->pool, 16, sizeof(trl_decision_t))
        != NGX_OK
        || ngx_http_trl_decisions(tmcf, r->pool, decisions) != NGX_OK)
    {
        return NGX_ERROR;
    }

    d = decisions->elts;
    n = 0;

    for (i = 0; i < decisions->nelts; i++) {
        if (ngx_http_trl_crowdsec_wanted(&f, &d[i])) {
            d[n++] = d[i];
        }
    }

    decisions->nelts = n;

    return NGX_OK;
}


static ngx_uint_t
ngx_http_trl_crowdsec_wanted(ngx_http_trl_crowdsec_filter_t *f,
    trl_decision_t *d)
{
    size_t      len;
    ngx_str_t   value;
    ngx_uint_t  whole;
    u_char      buf[NGX_INET6_ADDRSTRLEN + 5];

    len = ngx_strlen(d->scenario);
    whole = d->prefix == (d->family == 4 ? 32 : 128);

    if (f->has_held && !trl_decision_covers(d, &f->held)) {
        return 0;
    }

    if (f->type.len
        && (f->type.len != 3 || ngx_strncasecmp(f->type.data,
                                                (u_char *) "ban", 3) != 0))
    {
        return 0;
    }

    if (f->scope.len
        && !(whole ? f->scope.len == 2
                     && ngx_strncasecmp(f->scope.data, (u_char *) "ip", 2)
                        == 0
                   : f->scope.len == 5
                     && ngx_strncasecmp(f->scope.data, (u_char *) "range",
                                        5) == 0))
    {
        return 0;
    }

    if (f->value.len) {
        ngx_http_trl_decision_value(d, &value, buf);

        if (value.len != f->value.len
            || ngx_strncmp(value.data, f->value.data, value.len) != 0)
        {
            return 0;
        }
    }

    if (f->scopes.len
        && !ngx_http_trl_crowdsec_any(&f->scopes,
                                      (u_char *) (d->prefix
                                                  == (d->family == 4
                                                      ? 32 : 128)
                                                  ? "ip" : "range"),
                                      d->prefix == (d->family == 4 ? 32 : 128)
                                      ? 2 : 5, 0))
    {
        return 0;
    }

    if (f->origins.len
        && !ngx_http_trl_crowdsec_any(&f->origins,
                                      (u_char *) NGX_HTTP_TRL_CROWDSEC_ORIGIN,
                                      sizeof(NGX_HTTP_TRL_CROWDSEC_ORIGIN) - 1,
                                      0))
    {
        return 0;
    }

    if (f->containing.len
        && !ngx_http_trl_crowdsec_any(&f->containing, (u_char *) d->scenario,
                                      len, 1))
    {
        return 0;
    }

    if (f->not_containing.len
        && ngx_http_trl_crowdsec_any(&f->not_containing,
                                     (u_char *) d->scenario, len, 1))
    {
        return 0;
    }

    return 1;
}


/* 1 when an item of the comma-separated list is text (case-insensitive),
 * or with substring, is found in it */

static ngx_uint_t
ngx_http_trl_crowdsec_any(ngx_str_t *list, u_char *text, size_t len,
    ngx_uint_t substring)
{
    u_char  *p, *end, *comma;
    size_t   n;

    p = list->data;
    end = list->data + list->len;

    while (p < end) {
        comma = ngx_strlchr(p, end, ',');
        if (comma == NULL) {
            comma = end;
        }

        n = comma - p;

        if (n && (substring
                  ? ngx_strlcasestrn(text, text + len, p, n - 1) != NULL
                  : n == len && ngx_strncasecmp(p, text, n) == 0))
        {
            return 1;
        }

        p = comma + 1;
    }

    return 0;
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
