
/*
 * ngx_http_token_ratelimit_zone.c - token_ratelimit_zone: parsing, and the
 * shared memory zone that holds the counters, kept across reloads.
 */


#include "ngx_http_token_ratelimit.h"


#define NGX_HTTP_TRL_ERRLEN  256


static ngx_int_t ngx_http_trl_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
static char *ngx_http_trl_parse_zone(ngx_conf_t *cf, ngx_command_t *cmd,
    ngx_str_t *value, ngx_str_t *name, ssize_t *size);
static char *ngx_http_trl_parse_rate(ngx_conf_t *cf, ngx_command_t *cmd,
    ngx_str_t *value, ngx_http_trl_zone_t *ctx);
static char *ngx_http_trl_parse_sync(ngx_conf_t *cf, ngx_command_t *cmd,
    ngx_str_t *value, ngx_http_trl_zone_t *ctx);
static char *ngx_http_trl_parse_log_rate(ngx_conf_t *cf, ngx_command_t *cmd,
    ngx_str_t *value, ngx_http_trl_zone_t *ctx);
static char *ngx_http_trl_parse_log_key(ngx_conf_t *cf, ngx_command_t *cmd,
    ngx_str_t *value, ngx_http_trl_zone_t *ctx);


static ngx_str_t  ngx_http_trl_binary_remote_addr =
    ngx_string("$binary_remote_addr");


/*
 * token_ratelimit_zone key zone=name:size rate=rate [sync[=async|strict]]
 *     [log_rate=N|off] [log_key=on|off|hash|mask] [distinct=string]
 *     [signal=string];
 */

char *
ngx_http_trl_zone_directive(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_trl_main_conf_t  *tmcf = conf;

    char                              *rv;
    ssize_t                            size;
    ngx_str_t                         *value, name;
    ngx_uint_t                         i, have_rate;
    ngx_http_trl_zone_t               *ctx;
    ngx_http_compile_complex_value_t   ccv;

    value = cf->args->elts;

    if (value[1].len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "empty key in \"%V\" directive, expected a string "
                           "with variables such as $binary_remote_addr",
                           &cmd->name);
        return NGX_CONF_ERROR;
    }

    ctx = ngx_pcalloc(cf->pool, sizeof(ngx_http_trl_zone_t));
    if (ctx == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(&ccv, sizeof(ngx_http_compile_complex_value_t));

    ccv.cf = cf;
    ccv.value = &value[1];
    ccv.complex_value = &ctx->key;

    if (ngx_http_compile_complex_value(&ccv) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    size = 0;
    name.len = 0;
    have_rate = 0;

    for (i = 2; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "zone=", 5) == 0) {
            rv = ngx_http_trl_parse_zone(cf, cmd, &value[i], &name, &size);

        } else if (ngx_strncmp(value[i].data, "rate=", 5) == 0) {
            rv = ngx_http_trl_parse_rate(cf, cmd, &value[i], ctx);
            have_rate = 1;

        } else if (ngx_strncmp(value[i].data, "sync", 4) == 0) {
            rv = ngx_http_trl_parse_sync(cf, cmd, &value[i], ctx);

        } else if (ngx_strncmp(value[i].data, "log_rate=", 9) == 0) {
            rv = ngx_http_trl_parse_log_rate(cf, cmd, &value[i], ctx);

        } else if (ngx_strncmp(value[i].data, "log_key=", 8) == 0) {
            rv = ngx_http_trl_parse_log_key(cf, cmd, &value[i], ctx);

        } else if (ngx_strncmp(value[i].data, "distinct=", 9) == 0) {
            rv = ngx_http_trl_distinct_option(cf, cmd, &value[i], ctx);

        } else if (ngx_strncmp(value[i].data, "signal=", 7) == 0) {
            rv = ngx_http_trl_signal_option(cf, cmd, &value[i], ctx);

        } else if ((value[i].len == 6
                    && ngx_strncmp(value[i].data, "active", 6) == 0)
                   || ngx_strncmp(value[i].data, "active=", 7) == 0
                   || ngx_strncmp(value[i].data, "lifetime=", 9) == 0
                   || ngx_strncmp(value[i].data, "token=", 6) == 0)
        {
            rv = ngx_http_trl_active_option(cf, cmd, &value[i], ctx);

        } else {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid parameter \"%V\" in \"%V\" "
                               "directive, expected \"zone=name:size\", "
                               "\"rate=rate\" and optionally \"sync\", "
                               "\"log_rate=\", \"log_key=\", "
                               "\"distinct=\", \"signal=\", \"active\", "
                               "\"lifetime=\" and \"token=\"",
                               &value[i], &cmd->name);
            return NGX_CONF_ERROR;
        }

        if (rv != NGX_CONF_OK) {
            return rv;
        }
    }

    if (name.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" directive must have a \"zone=name:size\" "
                           "parameter", &cmd->name);
        return NGX_CONF_ERROR;
    }

    if (!have_rate) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" directive must have a \"rate=\" "
                           "parameter, such as rate=10r/m", &cmd->name);
        return NGX_CONF_ERROR;
    }

    ctx->name = name;

    if (ctx->distinct
        && ngx_http_trl_distinct_check(cf, cmd, ctx, size) != NGX_CONF_OK)
    {
        return NGX_CONF_ERROR;
    }

    if (ngx_http_trl_signal_check(cf, cmd, ctx) != NGX_CONF_OK
        || ngx_http_trl_active_check(cf, cmd, ctx, size) != NGX_CONF_OK)
    {
        return NGX_CONF_ERROR;
    }

    return ngx_http_trl_zone_add(cf, tmcf, ctx, size, &cmd->name);
}


/*
 * Makes a zone of ctx (key, rate, sync and name set): its shared memory,
 * of size bytes.  what names the directive in messages.
 */

char *
ngx_http_trl_zone_add(ngx_conf_t *cf, ngx_http_trl_main_conf_t *tmcf,
    ngx_http_trl_zone_t *ctx, ssize_t size, ngx_str_t *what)
{
    ngx_shm_zone_t        *shm_zone;
    ngx_http_trl_zone_t   *other, **slot;

    shm_zone = ngx_shared_memory_add(cf, &ctx->name, size,
                                     &ngx_http_token_ratelimit_module);
    if (shm_zone == NULL) {
        return NGX_CONF_ERROR;
    }

    if (shm_zone->data) {
        other = shm_zone->data;

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "zone \"%V\" in \"%V\" directive is already "
                           "defined in %V:%ui",
                           &ctx->name, what, &other->conf_file,
                           other->conf_line);
        return NGX_CONF_ERROR;
    }

    ctx->shm_zone = shm_zone;
    ctx->conf_file = cf->conf_file->file.name;
    ctx->conf_line = cf->conf_file->line;

    if (ctx->log_rate == 0) {
        ctx->log_rate = NGX_HTTP_TRL_LOG_RATE;
    }

    /* keys of exactly $binary_remote_addr are shown as addresses */

    ctx->key_addr = ctx->key.value.len == ngx_http_trl_binary_remote_addr.len
                    && ngx_strncmp(ctx->key.value.data,
                                   ngx_http_trl_binary_remote_addr.data,
                                   ctx->key.value.len) == 0;

    shm_zone->init = ngx_http_trl_init_zone;
    shm_zone->data = ctx;

    slot = ngx_array_push(&tmcf->zones);
    if (slot == NULL) {
        return NGX_CONF_ERROR;
    }

    *slot = ctx;

    return NGX_CONF_OK;
}


static char *
ngx_http_trl_parse_zone(ngx_conf_t *cf, ngx_command_t *cmd, ngx_str_t *value,
    ngx_str_t *name, ssize_t *size)
{
    char       err[128];
    u_char    *p, *q;
    uint64_t   bytes;

    bytes = 0;
    name->data = value->data + 5;

    p = (u_char *) ngx_strlchr(name->data, value->data + value->len, ':');

    if (p == NULL || p == name->data) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid zone \"%V\" in \"%V\" directive, "
                           "it must be \"zone=name:size\", such as "
                           "zone=login:10m", value, &cmd->name);
        return NGX_CONF_ERROR;
    }

    name->len = p - name->data;

    if (name->len > NGX_HTTP_TRL_ZONE_NAME_MAX) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "zone name in \"%V\" in \"%V\" directive is "
                           "too long, it must be at most %d bytes",
                           value, &cmd->name, NGX_HTTP_TRL_ZONE_NAME_MAX);
        return NGX_CONF_ERROR;
    }

    /* names appear in header fields, logs and metrics: keep them plain */

    for (q = name->data; q < p; q++) {
        if (!(isalnum(*q) || *q == '_' || *q == '-' || *q == '.')) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid zone name in \"%V\" in \"%V\" "
                               "directive, it may contain only letters, "
                               "digits, \"_\", \"-\" and \".\"",
                               value, &cmd->name);
            return NGX_CONF_ERROR;
        }
    }

    p++;

    if (trl_size_parse((char *) p, value->data + value->len - p, &bytes,
                       err, sizeof(err))
        != TRL_OK
        || bytes > NGX_MAX_OFF_T_VALUE)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid zone size \"%V\" in \"%V\" directive: "
                           "%s", value, &cmd->name,
                           bytes > NGX_MAX_OFF_T_VALUE ? "the size is too large"
                                                       : err);
        return NGX_CONF_ERROR;
    }

    *size = (ssize_t) bytes;

    if (*size < (ssize_t) (8 * ngx_pagesize)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "zone \"%V\" in \"%V\" directive is too small, "
                           "it must be at least %uzk",
                           value, &cmd->name, 8 * ngx_pagesize / 1024);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_trl_parse_rate(ngx_conf_t *cf, ngx_command_t *cmd, ngx_str_t *value,
    ngx_http_trl_zone_t *ctx)
{
    char  err[NGX_HTTP_TRL_ERRLEN];

    if (trl_rate_parse((char *) value->data + 5, value->len - 5, &ctx->rate,
                       err, sizeof(err))
        != TRL_OK)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid rate \"%V\" in \"%V\" directive: %s",
                           value, &cmd->name, err);
        return NGX_CONF_ERROR;
    }

    return ngx_http_trl_zone_texts(cf, ctx);
}


/* The rate and N as text, for logs and header fields. */

char *
ngx_http_trl_zone_texts(ngx_conf_t *cf, ngx_http_trl_zone_t *ctx)
{
    char    text[64];
    size_t  len;

    len = trl_rate_format(&ctx->rate, text, sizeof(text));

    ctx->rate_text.data = ngx_pnalloc(cf->pool, len);
    if (ctx->rate_text.data == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memcpy(ctx->rate_text.data, text, len);
    ctx->rate_text.len = len;

    ctx->limit_text.data = ngx_pnalloc(cf->pool, NGX_INT32_LEN);
    if (ctx->limit_text.data == NULL) {
        return NGX_CONF_ERROR;
    }

    ctx->limit_text.len = ngx_sprintf(ctx->limit_text.data, "%uD",
                                      ctx->rate.limit)
                          - ctx->limit_text.data;

    return NGX_CONF_OK;
}


/* sync alone is sync=async; the modes are the core's (trl_sync_parse) */

static char *
ngx_http_trl_parse_sync(ngx_conf_t *cf, ngx_command_t *cmd, ngx_str_t *value,
    ngx_http_trl_zone_t *ctx)
{
    char      err[128];
    uint32_t  mode;

    if (value->len == 4) {
        ctx->sync = TRL_SYNC_MODE_ASYNC;
        return NGX_CONF_OK;
    }

    if (value->data[4] != '='
        || trl_sync_parse((char *) value->data + 5, value->len - 5, &mode,
                          err, sizeof(err))
           != TRL_OK)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid value \"%V\" in \"%V\" directive: %s",
                           value, &cmd->name,
                           value->data[4] != '='
                           ? "expected sync or sync=off|async|strict" : err);
        return NGX_CONF_ERROR;
    }

    ctx->sync = mode;
    return NGX_CONF_OK;
}


/*
 * log_rate=N (error log lines a second, all workers) or log_rate=off;
 * log_key=on|off|hash|mask: the core's grammar, as policy files have it.
 */

static char *
ngx_http_trl_parse_log_rate(ngx_conf_t *cf, ngx_command_t *cmd,
    ngx_str_t *value, ngx_http_trl_zone_t *ctx)
{
    char      err[128];
    uint32_t  rate;

    if (trl_log_rate_parse((char *) value->data + 9, value->len - 9, &rate,
                           err, sizeof(err))
        != TRL_OK)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid value \"%V\" in \"%V\" directive, "
                           "\"log_rate=\": %s",
                           value, &cmd->name, err);
        return NGX_CONF_ERROR;
    }

    ngx_http_trl_zone_log_rate(ctx, rate);

    return NGX_CONF_OK;
}


static char *
ngx_http_trl_parse_log_key(ngx_conf_t *cf, ngx_command_t *cmd,
    ngx_str_t *value, ngx_http_trl_zone_t *ctx)
{
    char      err[128];
    uint32_t  mode;

    if (trl_log_key_parse((char *) value->data + 8, value->len - 8, &mode,
                          err, sizeof(err))
        != TRL_OK)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid value \"%V\" in \"%V\" directive, "
                           "\"log_key=\": %s",
                           value, &cmd->name, err);
        return NGX_CONF_ERROR;
    }

    ctx->log_key = mode;

    return NGX_CONF_OK;
}


/* a rate of the core's grammar (0: the default) */

void
ngx_http_trl_zone_log_rate(ngx_http_trl_zone_t *ctx, uint32_t rate)
{
    ctx->log_rate = rate == TRL_LOG_RATE_OFF ? NGX_HTTP_TRL_LOG_RATE_OFF
                                             : (ngx_uint_t) rate;
}


/*
 * How a zone shows a key, in the error log, the event log and the API
 * (whose renderings escape what this gives as their formats need):
 *
 *   log_key=on    the key (SHOW_TEXT when printable ASCII, else
 *                 SHOW_BINARY); a zone keyed on exactly
 *                 $binary_remote_addr shows its 4- and 16-byte keys as
 *                 addresses (SHOW_TEXT);
 *   log_key=off   "-" (SHOW_HIDDEN);
 *   log_key=hash  the 32 hex digits of the key's hash in the zone, as the
 *                 API's "hash" and keys?hash= (SHOW_HASH);
 *   log_key=mask  the first 4 bytes of the text form (the address, the
 *                 key, or its hex when binary; a third of it when shorter
 *                 than 12 bytes), then "..." (SHOW_MASKED).
 *
 * hash: the key's hash when known (the key may be a cut text), else NULL.
 */

void
ngx_http_trl_key_show(ngx_http_trl_zone_t *zone, const u_char *key,
    size_t len, const trl_hash_t *hash, ngx_http_trl_key_shown_t *ks)
{
    u_char      *p;
    size_t       i, keep, n;
    trl_hash_t   h;
    ngx_uint_t   binary;

    static u_char  hex[] = "0123456789abcdef";

    ks->text.data = (u_char *) key;
    ks->text.len = len;

    if (zone->log_key == TRL_LOG_KEY_OFF) {
        ks->how = NGX_HTTP_TRL_SHOW_HIDDEN;
        ks->buf[0] = '-';
        ks->text.data = ks->buf;
        ks->text.len = 1;
        return;
    }

    if (zone->log_key == TRL_LOG_KEY_HASH) {
        if (hash == NULL) {
            trl_zone_hash(zone->core, key, len, &h);
            hash = &h;
        }

        ks->how = NGX_HTTP_TRL_SHOW_HASH;
        ks->text.data = ks->buf;
        ks->text.len = ngx_sprintf(ks->buf, "%016xL%016xL", hash->hi,
                                   hash->lo)
                       - ks->buf;
        return;
    }

    binary = 0;

    if (zone->key_addr && (len == 4 || len == 16)) {
        ks->text.data = ks->buf;
        ks->text.len = ngx_inet_ntop(len == 4 ? AF_INET : AF_INET6,
                                     (void *) key, ks->buf,
                                     NGX_INET6_ADDRSTRLEN);

        if (ks->text.len == 0) {        /* no IPv6 support: as bytes */
            ks->text.data = (u_char *) key;
            ks->text.len = len;
            binary = 1;
        }

    } else {
        for (i = 0; i < len; i++) {
            if (key[i] < 0x20 || key[i] > 0x7e) {
                binary = 1;
                break;
            }
        }
    }

    if (zone->log_key != TRL_LOG_KEY_MASK) {
        ks->how = binary ? NGX_HTTP_TRL_SHOW_BINARY : NGX_HTTP_TRL_SHOW_TEXT;
        return;
    }

    /* the text form's first bytes: a binary key's are hex digits */

    n = binary ? 2 * ks->text.len : ks->text.len;
    keep = n >= 3 * NGX_HTTP_TRL_MASK_KEEP ? NGX_HTTP_TRL_MASK_KEEP : n / 3;

    p = ks->buf;

    for (i = 0; i < keep; i++) {
        *p++ = binary ? hex[(ks->text.data[i / 2] >> (i % 2 ? 0 : 4)) & 0xf]
                      : ks->text.data[i];
    }

    p = ngx_cpymem(p, "...", 3);

    ks->how = NGX_HTTP_TRL_SHOW_MASKED;
    ks->text.data = ks->buf;
    ks->text.len = p - ks->buf;
}


/*
 * Every zone named by token_ratelimit must be defined somewhere; a zone
 * that some location counts with count=failed/succeeded holds places that
 * may be given back.
 */

char *
ngx_http_trl_check_refs(ngx_conf_t *cf, ngx_http_trl_main_conf_t *tmcf)
{
    ngx_uint_t            i;
    ngx_http_trl_ref_t   *refs;
    ngx_http_trl_zone_t  *zone;

    refs = tmcf->refs.elts;

    for (i = 0; i < tmcf->refs.nelts; i++) {
        zone = refs[i].shm_zone->data;

        if (zone && refs[i].count != TRL_COUNT_ALL) {
            zone->held = 1;
        }

        if (zone && refs[i].warn > zone->rate.limit) {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "invalid value \"warn=%ui\" in \"token_ratelimit\" "
                          "directive, it must not exceed the limit of zone "
                          "\"%V\" (%V) in %V:%ui",
                          refs[i].warn, &zone->name, &zone->rate_text,
                          &refs[i].file, refs[i].line);
            return NGX_CONF_ERROR;
        }

        if (zone == NULL) {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "unknown zone \"%V\" in \"token_ratelimit\" "
                          "directive, no \"token_ratelimit_zone\" defines it "
                          "in %V:%ui",
                          &refs[i].shm_zone->shm.name, &refs[i].file,
                          refs[i].line);
            return NGX_CONF_ERROR;
        }
    }

    return NGX_CONF_OK;
}


/*
 * Runs in the master at start and on every reload.  A zone of unchanged
 * name and size is handed over with its memory (data is the previous
 * cycle's context): its counters are kept, and the new rate applies to them
 * at once.  A zone laid out by an incompatible module version is refused
 * rather than misread.
 */

static ngx_int_t
ngx_http_trl_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_http_trl_zone_t  *octx = data;

    char                  err[NGX_HTTP_TRL_ERRLEN];
    size_t                len, bytes;
    u_char               *block;
    ngx_slab_pool_t      *shpool;
    ngx_http_trl_zone_t  *ctx;

    ctx = shm_zone->data;
    shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (octx) {
        if (ctx->key.value.len != octx->key.value.len
            || ngx_strncmp(ctx->key.value.data, octx->key.value.data,
                           ctx->key.value.len)
               != 0)
        {
            ngx_log_error(NGX_LOG_EMERG, shm_zone->shm.log, 0,
                          "token_ratelimit_zone \"%V\" uses the \"%V\" key "
                          "while previously it used the \"%V\" key; "
                          "rename the zone to start it afresh",
                          &shm_zone->shm.name, &ctx->key.value,
                          &octx->key.value);
            return NGX_ERROR;
        }

        if ((ctx->distinct == NULL) != (octx->distinct == NULL)) {
            ngx_log_error(NGX_LOG_EMERG, shm_zone->shm.log, 0,
                          "token_ratelimit_zone \"%V\" changed between "
                          "counting requests and counting distinct values "
                          "(distinct=), which needs another layout of its "
                          "memory; rename the zone to start it afresh",
                          &shm_zone->shm.name);
            return NGX_ERROR;
        }

        if ((ctx->active == NULL) != (octx->active == NULL)) {
            ngx_log_error(NGX_LOG_EMERG, shm_zone->shm.log, 0,
                          "token_ratelimit_zone \"%V\" changed between "
                          "counting requests and holding active places "
                          "(active), which needs another layout of its "
                          "memory; rename the zone to start it afresh",
                          &shm_zone->shm.name);
            return NGX_ERROR;
        }

        block = shpool->data;
        goto attach;
    }

    if (shm_zone->shm.exists) {
        block = shpool->data;
        goto attach;
    }

    /* all free pages but one, which is left for the small log_ctx string */

    shpool->log_nomem = 0;
    bytes = (shpool->pfree > 1 ? shpool->pfree - 1 : 0) * ngx_pagesize;

    block = bytes ? ngx_slab_alloc(shpool, bytes) : NULL;
    if (block == NULL) {
        ngx_log_error(NGX_LOG_EMERG, shm_zone->shm.log, 0,
                      "token_ratelimit_zone \"%V\": could not allocate "
                      "%uz bytes of shared memory", &shm_zone->shm.name,
                      bytes);
        return NGX_ERROR;
    }

    if (ctx->active) {
        if (ngx_http_trl_active_create(shm_zone, ctx, block, bytes)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

    } else if (ctx->distinct) {
        if (ngx_http_trl_distinct_create(shm_zone, ctx, block, bytes)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

    } else if (trl_zone_create(block, bytes,
                               ctx->sync != TRL_SYNC_MODE_OFF
                               ? TRL_ZONE_SYNC : 0,
                               err, sizeof(err))
               == NULL)
    {
        ngx_log_error(NGX_LOG_EMERG, shm_zone->shm.log, 0,
                      "token_ratelimit_zone \"%V\": %s",
                      &shm_zone->shm.name, err);
        return NGX_ERROR;
    }

    shpool->data = block;

    len = sizeof(" in token_ratelimit_zone \"\"") + shm_zone->shm.name.len;

    shpool->log_ctx = ngx_slab_alloc(shpool, len);
    if (shpool->log_ctx == NULL) {
        return NGX_ERROR;
    }

    ngx_sprintf(shpool->log_ctx, " in token_ratelimit_zone \"%V\"%Z",
                &shm_zone->shm.name);

attach:

    if (ctx->active) {
        return ngx_http_trl_active_attach(shm_zone, ctx, block);
    }

    if (ctx->distinct) {
        return ngx_http_trl_distinct_attach(shm_zone, ctx, block);
    }

    ctx->core = trl_zone_attach(block, 0, err, sizeof(err));

    if (ctx->core == NULL) {
        ngx_log_error(NGX_LOG_EMERG, shm_zone->shm.log, 0,
                      "token_ratelimit_zone \"%V\": %s; restart nginx or "
                      "rename the zone", &shm_zone->shm.name, err);
        return NGX_ERROR;
    }

    if (((trl_zone_flags(ctx->core) & TRL_ZONE_SYNC) != 0)
        != (ctx->sync != TRL_SYNC_MODE_OFF))
    {
        ngx_log_error(NGX_LOG_EMERG, shm_zone->shm.log, 0,
                      "token_ratelimit_zone \"%V\" changed between local "
                      "and \"sync\", which needs another layout of its "
                      "memory; rename the zone (or change its size) to "
                      "start it afresh", &shm_zone->shm.name);
        ctx->core = NULL;
        return NGX_ERROR;
    }

    return NGX_OK;
}
