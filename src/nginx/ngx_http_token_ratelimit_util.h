
/*
 * ngx_http_token_ratelimit_util.h - small helpers every part of the glue
 * uses: the clocks, a response header field, JSON string escaping.
 */

#ifndef _NGX_HTTP_TOKEN_RATELIMIT_UTIL_H_INCLUDED_
#define _NGX_HTTP_TOKEN_RATELIMIT_UTIL_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>


/* Escaped, a byte of a JSON string takes at most this many bytes. */
#define NGX_HTTP_TRL_JSON_ESCAPED_MAX   6


/*
 * What a timer without a connection has as its data: nginx's debug traces
 * of timers read ev->data as a connection (its fd), so a NULL data crashes
 * a worker whose error log is at debug level.
 */
extern ngx_connection_t  ngx_http_trl_dumb_connection;


/* A kind of log line written at most once a second per worker. */
typedef struct {
    time_t                      logged;
    ngx_uint_t                  unlogged;
} ngx_http_trl_log_gate_t;

ngx_http_complex_value_t *ngx_http_trl_complex(ngx_conf_t *cf,
    ngx_str_t *value);
uint64_t ngx_http_trl_wall_ms(void);
time_t ngx_http_trl_unix_time(uint64_t clock_ms, uint64_t now_ms);
ngx_int_t ngx_http_trl_push_header(ngx_http_request_t *r, ngx_str_t *name,
    u_char *value, size_t len);
u_char *ngx_http_trl_json_escape(u_char *p, u_char *last, const u_char **s,
    const u_char *end);
ngx_int_t ngx_http_trl_add_variable_table(ngx_conf_t *cf,
    ngx_http_variable_t *vars);
ngx_int_t ngx_http_trl_client_addr(struct sockaddr *sa, int *family,
    u_char **addr);
ngx_uint_t ngx_http_trl_log_gate(ngx_http_trl_log_gate_t *gate,
    ngx_uint_t *more);


#endif /* _NGX_HTTP_TOKEN_RATELIMIT_UTIL_H_INCLUDED_ */
