
/*
 * ngx_http_token_ratelimit_crowdsec.h - CrowdSec (issue 14 part 3): the
 * decisions stream of token_ratelimit_api (api_crowdsec.c, its filters in
 * api_crowdsec_filter.c) and the netset file (netset.c), both made of the
 * decisions that decisions.c collects; one shared memory zone
 * (crowdsec_conf.c, with the keys' directive) holds what the bouncers were
 * sent and the netset file's state.
 */

#ifndef _NGX_HTTP_TOKEN_RATELIMIT_CROWDSEC_H_INCLUDED_
#define _NGX_HTTP_TOKEN_RATELIMIT_CROWDSEC_H_INCLUDED_


#include "ngx_http_token_ratelimit.h"
#include "ngx_http_token_ratelimit_api.h"
#include "trl_decisions.h"


#define NGX_HTTP_TRL_NETSET_ERROR_LEN  160


/* the netset file as the last write left it (the API shows it) */
typedef struct {
    time_t                      written;        /* last rewrite, 0: none */
    time_t                      checked;        /* last tick */
    ngx_uint_t                  entries;        /* lines of the file */
    ngx_uint_t                  writes;
    ngx_uint_t                  failures;       /* ticks that failed */
    time_t                      failing_since;  /* 0: the last one worked */
    size_t                      error_len;
    u_char                      error[NGX_HTTP_TRL_NETSET_ERROR_LEN];
} ngx_http_trl_netset_state_t;


typedef struct ngx_http_trl_crowdsec_s {
    ngx_shm_zone_t             *shm_zone;
    ngx_slab_pool_t            *shpool;         /* its mutex guards
                                                   netset_state */
    trl_stream_t               *stream;         /* in the shared memory */
    ngx_http_trl_netset_state_t  *netset_state; /* ... */
    ngx_str_t                   netset_path;    /* NUL-terminated; empty:
                                                   no netset file */
    ngx_str_t                   netset_tmp;     /* PATH.tmp */
    ngx_msec_t                  netset_interval;
} ngx_http_trl_crowdsec_t;


#define NGX_HTTP_TRL_CROWDSEC_ORIGIN   "token-ratelimit"


/* crowdsec_conf.c */
ngx_http_trl_crowdsec_t *ngx_http_trl_crowdsec_conf(ngx_conf_t *cf);

/* api_crowdsec.c */
ngx_int_t ngx_http_trl_api_crowdsec(ngx_http_request_t *r,
    ngx_http_trl_main_conf_t *tmcf, ngx_str_t *path);

/* api_crowdsec_filter.c: NGX_DECLINED for a bad ip= or range= */
ngx_int_t ngx_http_trl_crowdsec_collect(ngx_http_request_t *r,
    ngx_http_trl_main_conf_t *tmcf, ngx_array_t *decisions);

/* decisions.c: out is an array of trl_decision_t */
ngx_int_t ngx_http_trl_decisions(ngx_http_trl_main_conf_t *tmcf,
    ngx_pool_t *pool, ngx_array_t *out);
void ngx_http_trl_decision_value(trl_decision_t *d, ngx_str_t *value,
    u_char *buf);

/* netset.c: the API's view of the netset file */
void ngx_http_trl_netset_show(ngx_http_trl_out_t *out,
    ngx_http_trl_crowdsec_t *cs);


#endif /* _NGX_HTTP_TOKEN_RATELIMIT_CROWDSEC_H_INCLUDED_ */
