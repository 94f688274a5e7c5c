
/*
 * ngx_http_token_ratelimit_redis_conf.c - the token_ratelimit_redis
 * directive: one Redis (an address), the master that sentinels name
 * (sentinel= master=), or a Redis Cluster (cluster=, its seed nodes).
 * Every address is resolved here: workers never resolve a name.
 */


#include "ngx_http_token_ratelimit_redis_link.h"


static char *ngx_http_trl_redis_parse_list(ngx_conf_t *cf,
    ngx_command_t *cmd, const char *opt, ngx_str_t *list,
    ngx_array_t **addrs);
static char *ngx_http_trl_redis_parse_address(ngx_conf_t *cf,
    ngx_command_t *cmd, ngx_str_t *value, ngx_str_t *host, ngx_int_t *port);


static ngx_str_t  ngx_http_trl_redis_shm_name =
    ngx_string("token_ratelimit_redis");

/*
 * token_ratelimit_redis address [password=..] [db=N] [prefix=..]
 *     [interval=time] [timeout=time] [fail=open|closed];
 * token_ratelimit_redis sentinel=host:port[,host:port...] master=name
 *     [sentinel_password=..] [password=..] ...;
 * token_ratelimit_redis cluster=host:port[,host:port...] [password=..] ...;
 */

char *
ngx_http_trl_redis_directive(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_trl_main_conf_t  *tmcf = conf;

    u_char                     *p;
    ngx_int_t                   n;
    ngx_str_t                  *value, s;
    ngx_uint_t                  i, address;
    const char                 *opt;
    ngx_array_t               **list;
    ngx_http_trl_redis_conf_t  *rc;

    if (tmcf->redis) {
        return "is duplicate";
    }

    rc = ngx_pcalloc(cf->pool, sizeof(ngx_http_trl_redis_conf_t));
    if (rc == NULL) {
        return NGX_CONF_ERROR;
    }

    value = cf->args->elts;

    ngx_str_set(&rc->prefix, "trl:");
    rc->interval = 100;
    rc->timeout = 100;
    address = 0;

    for (i = 1; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "sentinel=", 9) == 0
            || ngx_strncmp(value[i].data, "cluster=", 8) == 0)
        {
            list = value[i].data[0] == 's' ? &rc->sentinels : &rc->cluster;
            opt = value[i].data[0] == 's' ? "sentinel" : "cluster";

            if (*list) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "duplicate \"%s=\" in \"%V\" directive",
                                   opt, &cmd->name);
                return NGX_CONF_ERROR;
            }

            s.data = (u_char *) ngx_strchr(value[i].data, '=') + 1;
            s.len = value[i].data + value[i].len - s.data;

            if (ngx_http_trl_redis_parse_list(cf, cmd, opt, &s, list)
                != NGX_CONF_OK)
            {
                return NGX_CONF_ERROR;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "master=", 7) == 0) {
            rc->master.data = value[i].data + 7;
            rc->master.len = value[i].len - 7;

            if (rc->master.len == 0) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid value \"%V\" in \"%V\" "
                                   "directive, it must be \"master=\" and "
                                   "the name the sentinels monitor",
                                   &value[i], &cmd->name);
                return NGX_CONF_ERROR;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "sentinel_password=", 18) == 0) {
            rc->sentinel_password.data = value[i].data + 18;
            rc->sentinel_password.len = value[i].len - 18;
            continue;
        }

        if (ngx_strncmp(value[i].data, "password=", 9) == 0) {
            rc->password.data = value[i].data + 9;
            rc->password.len = value[i].len - 9;
            continue;
        }

        if (ngx_strncmp(value[i].data, "db=", 3) == 0) {
            n = ngx_atoi(value[i].data + 3, value[i].len - 3);
            if (n == NGX_ERROR || n > 65535) {
                goto invalid;
            }
            rc->db = n;
            continue;
        }

        if (ngx_strncmp(value[i].data, "prefix=", 7) == 0) {
            rc->prefix.data = value[i].data + 7;
            rc->prefix.len = value[i].len - 7;
            continue;
        }

        if (ngx_strncmp(value[i].data, "interval=", 9) == 0
            || ngx_strncmp(value[i].data, "timeout=", 8) == 0)
        {
            s.data = (u_char *) ngx_strchr(value[i].data, '=') + 1;
            s.len = value[i].data + value[i].len - s.data;

            n = ngx_parse_time(&s, 0);
            if (n == NGX_ERROR || n < 1 || n > 60000) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid value \"%V\" in \"%V\" "
                                   "directive, it must be a time from 1ms "
                                   "to 60s, such as 100ms",
                                   &value[i], &cmd->name);
                return NGX_CONF_ERROR;
            }

            if (value[i].data[0] == 'i') {
                rc->interval = (ngx_msec_t) n;
            } else {
                rc->timeout = (ngx_msec_t) n;
            }

            continue;
        }

        if (ngx_strcmp(value[i].data, "fail=open") == 0) {
            rc->fail_closed = 0;
            continue;
        }

        if (ngx_strcmp(value[i].data, "fail=closed") == 0) {
            rc->fail_closed = 1;
            continue;
        }

        if (ngx_strncmp(value[i].data, "fail=", 5) == 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid value \"%V\" in \"%V\" directive, "
                               "it must be \"fail=open\" or \"fail=closed\"",
                               &value[i], &cmd->name);
            return NGX_CONF_ERROR;
        }

        if (i == 1) {
            if (ngx_http_trl_redis_parse_address(cf, cmd, &value[1],
                                                 &rc->host, &rc->port)
                != NGX_CONF_OK)
            {
                return NGX_CONF_ERROR;
            }

            rc->address = value[1];
            address = 1;
            continue;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter \"%V\" in \"%V\" directive, "
                           "expected sentinel=, master=, "
                           "sentinel_password=, cluster=, password=, db=, "
                           "prefix=, "
                           "interval=, timeout= or fail=",
                           &value[i], &cmd->name);
        return NGX_CONF_ERROR;
    }

    if (rc->cluster && (address || rc->sentinels)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" directive has both \"cluster=\" and "
                           "%s: give one of an address, \"sentinel=\" or "
                           "\"cluster=\"", &cmd->name,
                           address ? "an address" : "\"sentinel=\"");
        return NGX_CONF_ERROR;
    }

    if (rc->cluster && rc->db) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"db=\" in \"%V\" directive cannot be used "
                           "with \"cluster=\": a Redis Cluster has only "
                           "database 0", &cmd->name);
        return NGX_CONF_ERROR;
    }

    if (address && rc->sentinels) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" directive has both an address (\"%V\") "
                           "and \"sentinel=\": the sentinels find the "
                           "address, give one or the other",
                           &cmd->name, &value[1]);
        return NGX_CONF_ERROR;
    }

    if (!address && rc->sentinels == NULL && rc->cluster == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" directive needs an address "
                           "(host:port or unix:/path), "
                           "\"sentinel=host:port,...\" or "
                           "\"cluster=host:port,...\" as its first "
                           "parameter", &cmd->name);
        return NGX_CONF_ERROR;
    }

    if (rc->sentinels && rc->master.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" directive with \"sentinel=\" needs "
                           "\"master=\" and the name the sentinels monitor",
                           &cmd->name);
        return NGX_CONF_ERROR;
    }

    if (rc->sentinels == NULL
        && (rc->master.len || rc->sentinel_password.data))
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%s\" in \"%V\" directive needs \"sentinel=\"",
                           rc->master.len ? "master=" : "sentinel_password=",
                           &cmd->name);
        return NGX_CONF_ERROR;
    }

    if (rc->sentinels) {

        /* the master's name, NUL-terminated; the logs name it */

        p = ngx_pnalloc(cf->pool, rc->master.len + 1);
        if (p == NULL) {
            return NGX_CONF_ERROR;
        }

        ngx_memcpy(p, rc->master.data, rc->master.len);
        p[rc->master.len] = '\0';
        rc->master.data = p;

        rc->address.len = sizeof("master ") - 1 + rc->master.len;
        rc->address.data = ngx_pnalloc(cf->pool, rc->address.len);
        if (rc->address.data == NULL) {
            return NGX_CONF_ERROR;
        }

        ngx_sprintf(rc->address.data, "master %V", &rc->master);
    }

    if (rc->cluster) {
        ngx_str_set(&rc->address, "cluster");   /* the logs name the node */
    }

    rc->shm = ngx_shared_memory_add(cf, &ngx_http_trl_redis_shm_name,
                                    8 * ngx_pagesize,
                                    &ngx_http_token_ratelimit_module);
    if (rc->shm == NULL) {
        return NGX_CONF_ERROR;
    }

    rc->shm->init = ngx_http_trl_redis_init_shm;
    rc->shm->data = rc;

    tmcf->redis = rc;

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid value \"%V\" in \"%V\" directive, "
                       "it must be \"db=\" and a number from 0 to 65535",
                       &value[i], &cmd->name);
    return NGX_CONF_ERROR;
}


/* sentinel= or cluster=: host:port[,host:port...] */

static char *
ngx_http_trl_redis_parse_list(ngx_conf_t *cf, ngx_command_t *cmd,
    const char *opt, ngx_str_t *list, ngx_array_t **addrs)
{
    u_char                     *p, *last, *comma;
    ngx_http_trl_redis_addr_t  *sa;

    *addrs = ngx_array_create(cf->pool, 3,
                              sizeof(ngx_http_trl_redis_addr_t));
    if (*addrs == NULL) {
        return NGX_CONF_ERROR;
    }

    p = list->data;
    last = p + list->len;

    for ( ;; ) {
        comma = ngx_strlchr(p, last, ',');
        if (comma == NULL) {
            comma = last;
        }

        sa = ngx_array_push(*addrs);
        if (sa == NULL) {
            return NGX_CONF_ERROR;
        }

        sa->text.data = p;
        sa->text.len = comma - p;

        if (sa->text.len == 0
            || (sa->text.len > 5 && ngx_strncmp(p, "unix:", 5) == 0))
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid value \"%s=%V\" in \"%V\" "
                               "directive, it must be a list of host:port "
                               "separated by commas, such as "
                               "\"%s=10.0.0.1:%s,10.0.0.2:%s\"",
                               opt, list, &cmd->name, opt,
                               opt[0] == 's' ? "26379" : "6379",
                               opt[0] == 's' ? "26379" : "6379");
            return NGX_CONF_ERROR;
        }

        if (ngx_http_trl_redis_parse_address(cf, cmd, &sa->text, &sa->host,
                                             &sa->port)
            != NGX_CONF_OK)
        {
            return NGX_CONF_ERROR;
        }

        if (comma == last) {
            break;
        }

        p = comma + 1;
    }

    return NGX_CONF_OK;
}


/* host:port (resolved now: workers never resolve) or unix:/path */

static char *
ngx_http_trl_redis_parse_address(ngx_conf_t *cf, ngx_command_t *cmd,
    ngx_str_t *value, ngx_str_t *host, ngx_int_t *port)
{
    u_char     *p;
    size_t      len;
    ngx_url_t   u;

    if (value->len > 5 && ngx_strncmp(value->data, "unix:", 5) == 0) {
        len = value->len - 5;

        p = ngx_pnalloc(cf->pool, len + 1);
        if (p == NULL) {
            return NGX_CONF_ERROR;
        }

        ngx_memcpy(p, value->data + 5, len);
        p[len] = '\0';

        host->data = p;
        host->len = len;
        *port = 0;

        return NGX_CONF_OK;
    }

    ngx_memzero(&u, sizeof(ngx_url_t));

    u.url = *value;
    u.default_port = 6379;

    if (ngx_parse_url(cf->pool, &u) != NGX_OK || u.naddrs == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid address \"%V\" in \"%V\" directive: %s",
                           value, &cmd->name,
                           u.err ? u.err : "host not found");
        return NGX_CONF_ERROR;
    }

    if (u.no_port && value->len && value->data[value->len - 1] == ':') {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid address \"%V\" in \"%V\" directive: "
                           "no port", value, &cmd->name);
        return NGX_CONF_ERROR;
    }

    p = ngx_pnalloc(cf->pool, NGX_SOCKADDR_STRLEN + 1);
    if (p == NULL) {
        return NGX_CONF_ERROR;
    }

    len = ngx_sock_ntop(u.addrs[0].sockaddr, u.addrs[0].socklen, p,
                        NGX_SOCKADDR_STRLEN, 0);
    p[len] = '\0';

    host->data = p;
    host->len = len;
    *port = ngx_inet_get_port(u.addrs[0].sockaddr);

    return NGX_CONF_OK;
}
