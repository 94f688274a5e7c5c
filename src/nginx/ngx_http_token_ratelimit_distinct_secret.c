
/*
 * ngx_http_token_ratelimit_distinct_secret.c - the cluster-wide secret of
 * distinct zones (token_ratelimit_distinct_secret), and its check once the
 * http block is read.
 *
 * Distinct zones keep keyed fingerprints of values, never the values.
 * Without the directive each zone fingerprints under 16 random bytes of
 * its own (kept in its shared memory): nodes then disagree on every
 * fingerprint, so a sync=strict zone, whose Redis set holds the
 * fingerprints of every node, is refused without it.  The secret is never
 * logged: messages give its length only.
 */


#include "ngx_http_token_ratelimit.h"


#define NGX_HTTP_TRL_SECRET_MIN   16
#define NGX_HTTP_TRL_SECRET_MAX   4096


static char *ngx_http_trl_secret_file(ngx_conf_t *cf, ngx_command_t *cmd,
    ngx_str_t *path, ngx_str_t *text);


/* token_ratelimit_distinct_secret TEXT | file=PATH; */

char *
ngx_http_trl_distinct_secret_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_trl_main_conf_t  *tmcf = conf;

    ngx_str_t  *value, text, path;

    if (tmcf->distinct_secret) {
        return "is duplicate";
    }

    value = cf->args->elts;
    text = value[1];

    if (text.len > 5 && ngx_strncmp(text.data, "file=", 5) == 0) {
        path.data = text.data + 5;
        path.len = text.len - 5;

        if (ngx_http_trl_secret_file(cf, cmd, &path, &text) != NGX_CONF_OK) {
            return NGX_CONF_ERROR;
        }
    }

    if (text.len < NGX_HTTP_TRL_SECRET_MIN
        || text.len > NGX_HTTP_TRL_SECRET_MAX)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid secret in \"%V\" directive: it has %uz "
                           "bytes, expected %d to %d (such as 32 random "
                           "characters, the same on every node), or "
                           "\"file=path\"", &cmd->name, text.len,
                           NGX_HTTP_TRL_SECRET_MIN, NGX_HTTP_TRL_SECRET_MAX);
        return NGX_CONF_ERROR;
    }

    tmcf->distinct_secret = ngx_pcalloc(cf->pool, 16);
    if (tmcf->distinct_secret == NULL) {
        return NGX_CONF_ERROR;
    }

    trl_distinct_secret(text.data, text.len, tmcf->distinct_secret);

    return NGX_CONF_OK;
}


/* The secret is the file's content, without trailing whitespace. */

static char *
ngx_http_trl_secret_file(ngx_conf_t *cf, ngx_command_t *cmd, ngx_str_t *path,
    ngx_str_t *text)
{
    ssize_t          n;
    ngx_fd_t         fd;
    ngx_err_t        err;
    ngx_file_t       file;
    ngx_file_info_t  fi;

    if (ngx_conf_full_name(cf->cycle, path, 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    fd = ngx_open_file(path->data, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);

    if (fd == NGX_INVALID_FILE) {
        err = ngx_errno;
        ngx_conf_log_error(NGX_LOG_EMERG, cf, err,
                           "cannot open the secret file \"%V\" of \"%V\" "
                           "directive", path, &cmd->name);
        return NGX_CONF_ERROR;
    }

    ngx_memzero(&file, sizeof(ngx_file_t));
    file.fd = fd;
    file.name = *path;
    file.log = cf->log;

    n = -1;

    if (ngx_fd_info(fd, &fi) != NGX_FILE_ERROR
        && ngx_file_size(&fi) <= NGX_HTTP_TRL_SECRET_MAX + 64)
    {
        text->data = ngx_pnalloc(cf->temp_pool, NGX_HTTP_TRL_SECRET_MAX + 64);

        if (text->data) {
            n = ngx_read_file(&file, text->data,
                              NGX_HTTP_TRL_SECRET_MAX + 64, 0);
        }

    } else {
        n = NGX_HTTP_TRL_SECRET_MAX + 65;       /* too large */
    }

    if (ngx_close_file(fd) == NGX_FILE_ERROR) {
        ngx_conf_log_error(NGX_LOG_ALERT, cf, ngx_errno,
                           ngx_close_file_n " \"%V\" failed", path);
    }

    if (n < 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "cannot read the secret file \"%V\" of \"%V\" "
                           "directive", path, &cmd->name);
        return NGX_CONF_ERROR;
    }

    if (n > NGX_HTTP_TRL_SECRET_MAX + 64) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "the secret file \"%V\" of \"%V\" directive is "
                           "too large, expected at most %d bytes",
                           path, &cmd->name, NGX_HTTP_TRL_SECRET_MAX);
        return NGX_CONF_ERROR;
    }

    while (n > 0 && (text->data[n - 1] == '\n' || text->data[n - 1] == '\r'
                     || text->data[n - 1] == ' ' || text->data[n - 1] == '\t'))
    {
        n--;
    }

    text->len = n;

    return NGX_CONF_OK;
}


/*
 * The http block is read: every distinct zone fingerprints under the
 * configured secret, if any; one with sync needs it.
 */

char *
ngx_http_trl_distinct_init_conf(ngx_conf_t *cf,
    ngx_http_trl_main_conf_t *tmcf)
{
    ngx_uint_t             i;
    ngx_http_trl_zone_t  **zones;

    zones = tmcf->zones.elts;

    for (i = 0; i < tmcf->zones.nelts; i++) {
        if (zones[i]->active) {                 /* issue 15: token ids */
            if (tmcf->distinct_secret) {
                zones[i]->secret = tmcf->distinct_secret;

            } else if (zones[i]->sync != TRL_SYNC_MODE_OFF
                       && zones[i]->active->token)
            {
                ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                              "\"token_ratelimit_zone\" \"%V\" in %V:%ui "
                              "has \"token=\" and \"sync\" but no "
                              "\"token_ratelimit_distinct_secret\" is "
                              "configured: without it each node "
                              "fingerprints token ids under secret bytes of "
                              "its own and a release on one node would not "
                              "find a token issued on another",
                              &zones[i]->name, &zones[i]->conf_file,
                              zones[i]->conf_line);
                return NGX_CONF_ERROR;
            }

            continue;
        }

        if (zones[i]->distinct == NULL) {
            continue;
        }

        if (tmcf->distinct_secret) {
            zones[i]->secret = tmcf->distinct_secret;
            continue;
        }

        if (zones[i]->sync != TRL_SYNC_MODE_OFF) {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "\"token_ratelimit_zone\" \"%V\" in %V:%ui has "
                          "\"distinct=\" and \"sync=%s\" but no "
                          "\"token_ratelimit_distinct_secret\" is "
                          "configured: without it each node fingerprints "
                          "values under secret bytes of its own and the "
                          "nodes would not agree in Redis",
                          &zones[i]->name, &zones[i]->conf_file,
                          zones[i]->conf_line,
                          zones[i]->sync == TRL_SYNC_MODE_ASYNC
                          ? "async" : "strict");
            return NGX_CONF_ERROR;
        }
    }

    return NGX_CONF_OK;
}
