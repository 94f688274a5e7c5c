
/*
 * ngx_http_token_ratelimit_redis.h - the link to Redis as the rest of the
 * module uses it (its inside: ngx_http_token_ratelimit_redis_link.h): the
 * scripts of the cluster-wide counting (sync_*.c) go through it.
 */

#ifndef _NGX_HTTP_TOKEN_RATELIMIT_REDIS_H_INCLUDED_
#define _NGX_HTTP_TOKEN_RATELIMIT_REDIS_H_INCLUDED_


#include <hiredis/hiredis.h>
#include <hiredis/async.h>

#include "trl_cluster.h"

#include "ngx_http_token_ratelimit.h"


typedef struct ngx_http_trl_cmd_s  ngx_http_trl_cmd_t;

/* reply is NULL when the link failed or the command's deadline passed */
typedef void (*ngx_http_trl_reply_pt)(redisReply *reply, void *data);

/* the link is (back) up: what waited for it may go now */
typedef void (*ngx_http_trl_ready_pt)(void);

/* host (numeric, NUL-terminated) is NULL when no sentinel told: err */
typedef void (*ngx_http_trl_master_pt)(u_char *host, ngx_uint_t port,
    const char *err);


/* redis_topology.c, redis.c (on_ready), redis_cmd.c (eval, unexpected) */
ngx_int_t ngx_http_trl_redis_init_process(ngx_cycle_t *cycle,
    ngx_http_trl_redis_conf_t *rc);
void ngx_http_trl_redis_exit_process(void);
ngx_uint_t ngx_http_trl_redis_ready(void);
ngx_http_trl_redis_conf_t *ngx_http_trl_redis_conf(void);
void ngx_http_trl_redis_on_ready(ngx_http_trl_ready_pt handler);
ngx_int_t ngx_http_trl_redis_eval(ngx_uint_t script, ngx_uint_t nkeys,
    ngx_str_t *args, ngx_uint_t nargs, ngx_msec_t timeout,
    ngx_http_trl_reply_pt handler, void *data);
void ngx_http_trl_redis_unexpected(ngx_uint_t script);

/*
 * cluster=: the hash slot of a Redis key, -1 when not clustered.  All the
 * keys of one script must be in one slot (the caller groups them).
 */
ngx_int_t ngx_http_trl_redis_slot(ngx_str_t *key);

/* sentinel.c */
void ngx_http_trl_sentinel_ask(ngx_http_trl_redis_conf_t *rc, ngx_log_t *log,
    ngx_http_trl_master_pt handler);
void ngx_http_trl_sentinel_exit(void);


#endif /* _NGX_HTTP_TOKEN_RATELIMIT_REDIS_H_INCLUDED_ */
