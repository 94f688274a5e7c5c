
/*
 * ngx_http_token_ratelimit_netset.c - token_ratelimit_netset: the
 * decisions of the CrowdSec stream (decisions.c) as a plain file for nft
 * and ipset, one address or CIDR range a line, sorted.  The first worker
 * checks them every interval and rewrites the file only when they changed:
 * PATH.tmp written, then renamed over PATH (a reader sees the old file or
 * the new one, never a part).  A failing write is logged once until a
 * write works again, and shown by the API ({loc}/crowdsec).
 */


#include "ngx_http_token_ratelimit.h"
#include "ngx_http_token_ratelimit_crowdsec.h"
#include "ngx_http_token_ratelimit_util.h"


#define NGX_HTTP_TRL_NETSET_LINE  (NGX_INET6_ADDRSTRLEN + 5)


static void ngx_http_trl_netset_tick(ngx_event_t *ev);
static ngx_int_t ngx_http_trl_netset_text(ngx_http_trl_main_conf_t *tmcf,
    ngx_pool_t *pool, ngx_str_t *text, ngx_uint_t *lines);
static ngx_int_t ngx_http_trl_netset_write(ngx_http_trl_crowdsec_t *cs,
    ngx_str_t *text, ngx_log_t *log, u_char *err, size_t errlen);
static int ngx_libc_cdecl ngx_http_trl_netset_cmp(const void *one,
    const void *two);


static ngx_event_t                ngx_http_trl_netset_event;
static ngx_http_trl_main_conf_t  *ngx_http_trl_netset_tmcf;

/* the worker's memory of its last write */
static uint32_t                   ngx_http_trl_netset_crc;
static size_t                     ngx_http_trl_netset_len;
static ngx_uint_t                 ngx_http_trl_netset_done;
static ngx_uint_t                 ngx_http_trl_netset_failing;


/* token_ratelimit_netset PATH [interval=TIME] */

char *
ngx_http_trl_netset_directive(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_str_t                *value, path, s;
    ngx_msec_t                interval;
    ngx_uint_t                i;
    ngx_http_trl_crowdsec_t  *cs;

    value = cf->args->elts;
    interval = 10000;

    for (i = 2; i < cf->args->nelts; i++) {
        if (ngx_strncmp(value[i].data, "interval=", 9) == 0) {
            s.data = value[i].data + 9;
            s.len = value[i].len - 9;

            interval = ngx_parse_time(&s, 0);

            if (interval == (ngx_msec_t) NGX_ERROR || interval < 1000
                || interval > 3600000)
            {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "\"%V\" has a bad \"%V\": takes a time "
                                   "from 1s to 1h, such as interval=10s",
                                   &cmd->name, &value[i]);
                return NGX_CONF_ERROR;
            }

            continue;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" has an unknown parameter \"%V\": takes "
                           "PATH and \"interval=TIME\"",
                           &cmd->name, &value[i]);
        return NGX_CONF_ERROR;
    }

    cs = ngx_http_trl_crowdsec_conf(cf);
    if (cs == NULL) {
        return NGX_CONF_ERROR;
    }

    if (cs->netset_path.len) {
        return "is duplicate";
    }

    path = value[1];

    if (path.len == 0 || path.data[path.len - 1] == '/') {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" takes the path of a file, not \"%V\"",
                           &cmd->name, &path);
        return NGX_CONF_ERROR;
    }

    if (ngx_conf_full_name(cf->cycle, &path, 0) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    cs->netset_path = path;             /* NUL-terminated by full_name */
    cs->netset_tmp.len = path.len + 4;
    cs->netset_tmp.data = ngx_pnalloc(cf->pool, path.len + 5);
    if (cs->netset_tmp.data == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_sprintf(cs->netset_tmp.data, "%V.tmp%Z", &path);
    cs->netset_interval = interval;

    return NGX_CONF_OK;
}


/* the first worker keeps the file */

ngx_int_t
ngx_http_trl_netset_init_process(ngx_cycle_t *cycle)
{
    ngx_http_trl_main_conf_t  *tmcf;

    tmcf = ngx_http_cycle_get_module_main_conf(cycle,
                                               ngx_http_token_ratelimit_module);

    if (tmcf == NULL || tmcf->crowdsec == NULL
        || tmcf->crowdsec->netset_path.len == 0 || ngx_worker != 0)
    {
        return NGX_OK;
    }

    ngx_http_trl_netset_tmcf = tmcf;
    ngx_http_trl_netset_done = 0;
    ngx_http_trl_netset_failing = 0;

    ngx_http_trl_netset_event.handler = ngx_http_trl_netset_tick;
    ngx_http_trl_netset_event.data = &ngx_http_trl_dumb_connection;
    ngx_http_trl_netset_event.log = cycle->log;
    ngx_http_trl_netset_event.cancelable = 1;

    ngx_add_timer(&ngx_http_trl_netset_event, 100);

    return NGX_OK;
}


static void
ngx_http_trl_netset_tick(ngx_event_t *ev)
{
    u_char                        err[NGX_HTTP_TRL_NETSET_ERROR_LEN];
    uint32_t                      crc;
    ngx_str_t                     text;
    ngx_int_t                     rc;
    ngx_uint_t                    lines;
    ngx_pool_t                   *pool;
    ngx_http_trl_crowdsec_t      *cs;
    ngx_http_trl_netset_state_t  *st;

    if (ngx_exiting || ngx_quit || ngx_terminate) {
        return;
    }

    cs = ngx_http_trl_netset_tmcf->crowdsec;
    st = cs->netset_state;

    pool = ngx_create_pool(16384, ev->log);
    if (pool == NULL) {
        goto next;
    }

    err[0] = '\0';
    lines = 0;

    rc = ngx_http_trl_netset_text(ngx_http_trl_netset_tmcf, pool, &text,
                                  &lines);

    if (rc != NGX_OK) {
        ngx_cpystrn(err, (u_char *) "out of memory", sizeof(err));

    } else {
        crc = ngx_crc32_long(text.data, text.len);

        if (ngx_http_trl_netset_done && !ngx_http_trl_netset_failing
            && crc == ngx_http_trl_netset_crc
            && text.len == ngx_http_trl_netset_len)
        {
            ngx_shmtx_lock(&cs->shpool->mutex);
            st->checked = ngx_time();
            ngx_shmtx_unlock(&cs->shpool->mutex);
            goto done;
        }

        rc = ngx_http_trl_netset_write(cs, &text, ev->log, err, sizeof(err));

        if (rc == NGX_OK) {
            ngx_http_trl_netset_crc = crc;
            ngx_http_trl_netset_len = text.len;
            ngx_http_trl_netset_done = 1;
        }
    }

    /* one error line per outage, one line when it ends */

    if (rc != NGX_OK && !ngx_http_trl_netset_failing) {
        ngx_log_error(NGX_LOG_ERR, ev->log, 0,
                      "token_ratelimit_netset: cannot write \"%V\": %s; "
                      "trying again every %M ms", &cs->netset_path, err,
                      cs->netset_interval);

    } else if (rc == NGX_OK && ngx_http_trl_netset_failing) {
        ngx_log_error(NGX_LOG_NOTICE, ev->log, 0,
                      "token_ratelimit_netset: \"%V\" written again",
                      &cs->netset_path);
    }

    ngx_shmtx_lock(&cs->shpool->mutex);

    st->checked = ngx_time();

    if (rc == NGX_OK) {
        st->written = st->checked;
        st->entries = lines;
        st->writes++;
        st->failing_since = 0;
        st->error_len = 0;

    } else {
        st->failures++;

        if (st->failing_since == 0) {
            st->failing_since = st->checked;
        }

        st->error_len = ngx_strlen(err);
        ngx_memcpy(st->error, err, st->error_len);
    }

    ngx_shmtx_unlock(&cs->shpool->mutex);

    ngx_http_trl_netset_failing = (rc != NGX_OK);

done:

    ngx_destroy_pool(pool);

next:

    ngx_add_timer(ev, cs->netset_interval);
}


/* the lines, sorted (IPv4 first), each once */

static ngx_int_t
ngx_http_trl_netset_text(ngx_http_trl_main_conf_t *tmcf, ngx_pool_t *pool,
    ngx_str_t *text, ngx_uint_t *lines)
{
    u_char          *p, *last_line, buf[NGX_HTTP_TRL_NETSET_LINE];
    ngx_str_t        value;
    ngx_uint_t       i;
    ngx_array_t      decisions;
    trl_decision_t  *d;

    if (ngx_array_init(&decisions, pool, 64, sizeof(trl_decision_t))
        != NGX_OK
        || ngx_http_trl_decisions(tmcf, pool, &decisions) != NGX_OK)
    {
        return NGX_ERROR;
    }

    d = decisions.elts;

    ngx_qsort(d, decisions.nelts, sizeof(trl_decision_t),
              ngx_http_trl_netset_cmp);

    text->data = ngx_pnalloc(pool, decisions.nelts
                                   * (NGX_HTTP_TRL_NETSET_LINE + 1) + 1);
    if (text->data == NULL) {
        return NGX_ERROR;
    }

    p = text->data;
    last_line = NULL;

    for (i = 0; i < decisions.nelts; i++) {
        ngx_http_trl_decision_value(&d[i], &value, buf);

        if (last_line
            && (size_t) (p - last_line) == value.len + 1
            && ngx_memcmp(last_line, value.data, value.len) == 0)
        {
            continue;
        }

        last_line = p;
        p = ngx_cpymem(p, value.data, value.len);
        *p++ = '\n';
        (*lines)++;
    }

    text->len = p - text->data;

    return NGX_OK;
}


static ngx_int_t
ngx_http_trl_netset_write(ngx_http_trl_crowdsec_t *cs, ngx_str_t *text,
    ngx_log_t *log, u_char *err, size_t errlen)
{
    ssize_t   n;
    size_t    done;
    ngx_fd_t  fd;
    ngx_err_t e;

    fd = ngx_open_file(cs->netset_tmp.data, NGX_FILE_WRONLY,
                       NGX_FILE_TRUNCATE, NGX_FILE_DEFAULT_ACCESS);

    if (fd == NGX_INVALID_FILE) {
        e = ngx_errno;
        ngx_snprintf(err, errlen - 1, "open(\"%V\") failed (%d: %s)%Z",
                     &cs->netset_tmp, e, strerror(e));
        return NGX_ERROR;
    }

    for (done = 0; done < text->len; done += n) {
        n = ngx_write_fd(fd, text->data + done, text->len - done);

        if (n <= 0) {
            e = ngx_errno;
            ngx_snprintf(err, errlen - 1, "write(\"%V\") failed (%d: %s)%Z",
                         &cs->netset_tmp, e, strerror(e));
            (void) ngx_close_file(fd);
            (void) ngx_delete_file(cs->netset_tmp.data);
            return NGX_ERROR;
        }
    }

    if (ngx_close_file(fd) == NGX_FILE_ERROR) {
        e = ngx_errno;
        ngx_snprintf(err, errlen - 1, "close(\"%V\") failed (%d: %s)%Z",
                     &cs->netset_tmp, e, strerror(e));
        (void) ngx_delete_file(cs->netset_tmp.data);
        return NGX_ERROR;
    }

    if (ngx_rename_file(cs->netset_tmp.data, cs->netset_path.data)
        == NGX_FILE_ERROR)
    {
        e = ngx_errno;
        ngx_snprintf(err, errlen - 1, "rename() to \"%V\" failed (%d: %s)%Z",
                     &cs->netset_path, e, strerror(e));
        (void) ngx_delete_file(cs->netset_tmp.data);
        return NGX_ERROR;
    }

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, log, 0,
                   "token_ratelimit_netset: \"%V\" written, %uz bytes",
                   &cs->netset_path, text->len);

    return NGX_OK;
}


static int ngx_libc_cdecl
ngx_http_trl_netset_cmp(const void *one, const void *two)
{
    const trl_decision_t  *a = one;
    const trl_decision_t  *b = two;

    int  c;

    if (a->family != b->family) {
        return a->family < b->family ? -1 : 1;
    }

    c = ngx_memcmp(a->addr, b->addr, 16);

    if (c) {
        return c;
    }

    return (int) a->prefix - (int) b->prefix;
}


/* {loc}/crowdsec: "netset":{...} or null */

void
ngx_http_trl_netset_show(ngx_http_trl_out_t *out, ngx_http_trl_crowdsec_t *cs)
{
    ngx_http_trl_netset_state_t  st;

    if (cs->netset_path.len == 0) {
        ngx_http_trl_out_cat(out, (u_char *) "null", 4);
        return;
    }

    ngx_shmtx_lock(&cs->shpool->mutex);
    st = *cs->netset_state;
    ngx_shmtx_unlock(&cs->shpool->mutex);

    ngx_http_trl_out_cat(out, (u_char *) "{\"path\":", 8);
    ngx_http_trl_out_json(out, cs->netset_path.data, cs->netset_path.len);
    ngx_http_trl_out_printf(out, ",\"interval\":%M,\"entries\":%ui,"
                            "\"writes\":%ui,\"written\":%T,\"checked\":%T,"
                            "\"failures\":%ui,\"failing_since\":",
                            cs->netset_interval / 1000, st.entries,
                            st.writes, st.written, st.checked, st.failures);

    if (st.failing_since) {
        ngx_http_trl_out_printf(out, "%T,\"error\":", st.failing_since);
        ngx_http_trl_out_json(out, st.error, st.error_len);
        ngx_http_trl_out_cat(out, (u_char *) "}", 1);

    } else {
        ngx_http_trl_out_cat(out, (u_char *) "null,\"error\":null}", 18);
    }
}
