
/*
 * ngx_http_token_ratelimit_crowdsec_conf.c - token_ratelimit_crowdsec_key
 * (the keys of a token_ratelimit_api location's bouncers) and the shared
 * memory zone "token_ratelimit_crowdsec" that it and token_ratelimit_netset
 * share: what each bouncer was sent (trl_stream_*) and the netset file's
 * state.
 */


#include "ngx_http_token_ratelimit.h"
#include "ngx_http_token_ratelimit_crowdsec.h"


#define NGX_HTTP_TRL_CROWDSEC_KEY_MIN  16


static ngx_int_t ngx_http_trl_crowdsec_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);


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
