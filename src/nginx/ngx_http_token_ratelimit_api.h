
/*
 * ngx_http_token_ratelimit_api.h - token_ratelimit_api: the monitoring and
 * administration endpoint (api.c routes to api_zones.c, api_lists.c,
 * api_reputation.c, prometheus.c and dashboard.c; api_args.c reads a
 * call's arguments, api_origin.c refuses cross-site calls), and the
 * response builder and answers they share (out.c).
 */

#ifndef _NGX_HTTP_TOKEN_RATELIMIT_API_H_INCLUDED_
#define _NGX_HTTP_TOKEN_RATELIMIT_API_H_INCLUDED_


#include "ngx_http_token_ratelimit.h"


typedef struct {
    ngx_http_request_t         *request;
    ngx_chain_t                *first;
    ngx_chain_t                *last;
    size_t                      size;
    unsigned                    failed:1;
} ngx_http_trl_out_t;


#define NGX_HTTP_TRL_REASON_MAX         160
#define NGX_HTTP_TRL_MASTER_LEN         (NGX_SOCKADDR_STRLEN + 8)

#define NGX_HTTP_TRL_MASTERS_SHOWN      16

/* cluster=: a master of the slot map, as the node saw it last */
typedef struct {
    u_char                      addr[NGX_HTTP_TRL_MASTER_LEN];
    size_t                      addr_len;
    ngx_uint_t                  slots;
    ngx_uint_t                  up;
} ngx_http_trl_redis_master_t;

/* the node's Redis link, as the API shows it */
typedef struct {
    ngx_uint_t                  configured;
    ngx_uint_t                  up;
    ngx_uint_t                  outages;
    ngx_uint_t                  failures;
    time_t                      down_since;     /* 0 while up */
    size_t                      reason_len;     /* 0 while up */
    u_char                      reason[NGX_HTTP_TRL_REASON_MAX];
    ngx_uint_t                  failovers;      /* sentinel= */
    size_t                      master_len;     /* 0: none known yet */
    u_char                      master[NGX_HTTP_TRL_MASTER_LEN];
    ngx_uint_t                  maps;           /* cluster=: installed */
    ngx_uint_t                  slots_moved;
    ngx_uint_t                  unserved;
    ngx_uint_t                  nmasters;
    ngx_http_trl_redis_master_t masters[NGX_HTTP_TRL_MASTERS_SHOWN];
} ngx_http_trl_redis_state_t;


/* out.c */
void ngx_http_trl_out_init(ngx_http_trl_out_t *out, ngx_http_request_t *r);
void ngx_http_trl_out_cat(ngx_http_trl_out_t *out, const u_char *data,
    size_t len);
void ngx_http_trl_out_printf(ngx_http_trl_out_t *out, const char *fmt, ...);
void ngx_http_trl_out_json(ngx_http_trl_out_t *out, const u_char *s,
    size_t len);
void ngx_http_trl_out_key(ngx_http_trl_out_t *out, ngx_http_trl_zone_t *zone,
    const u_char *key, size_t len, const trl_hash_t *hash,
    ngx_uint_t truncated);
ngx_int_t ngx_http_trl_out_send(ngx_http_trl_out_t *out, ngx_uint_t status,
    const char *type);
ngx_int_t ngx_http_trl_out_error(ngx_http_request_t *r, ngx_uint_t status,
    const char *error, const char *message);
ngx_int_t ngx_http_trl_out_not_allowed(ngx_http_request_t *r,
    const char *allow);
void ngx_http_trl_out_redis_state(ngx_http_trl_main_conf_t *tmcf,
    ngx_http_trl_redis_state_t *state);

/* api.c: the directive and the router */
ngx_uint_t ngx_http_trl_api_location(ngx_http_core_loc_conf_t *clcf);
char *ngx_http_trl_api_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);

/* api_args.c */
ngx_int_t ngx_http_trl_api_arg(ngx_http_request_t *r, const char *name,
    ngx_str_t *value);
ngx_int_t ngx_http_trl_api_key_arg(ngx_http_request_t *r, ngx_str_t *key);
ngx_int_t ngx_http_trl_api_hash_arg(ngx_http_request_t *r,
    trl_hash_t *hash);
ngx_http_trl_zone_t *ngx_http_trl_api_find_zone(
    ngx_http_trl_main_conf_t *tmcf, ngx_str_t *name);

/* api_zones.c */
ngx_int_t ngx_http_trl_api_zones(ngx_http_request_t *r,
    ngx_http_trl_main_conf_t *tmcf, ngx_str_t *name);
ngx_int_t ngx_http_trl_api_key(ngx_http_request_t *r,
    ngx_http_trl_main_conf_t *tmcf, ngx_str_t *name);
void ngx_http_trl_api_zone_map(ngx_http_trl_out_t *out,
    ngx_http_trl_main_conf_t *tmcf, uint64_t now_ms);
void ngx_http_trl_api_redis(ngx_http_trl_out_t *out,
    ngx_http_trl_main_conf_t *tmcf);

/* api_lists.c */
ngx_int_t ngx_http_trl_api_lists(ngx_http_request_t *r,
    ngx_http_trl_main_conf_t *tmcf, ngx_str_t *rest);
void ngx_http_trl_api_entries(ngx_http_trl_out_t *out,
    ngx_http_trl_main_conf_t *tmcf);

/* api_reputation.c */
ngx_int_t ngx_http_trl_api_reputation(ngx_http_request_t *r,
    ngx_http_trl_main_conf_t *tmcf, ngx_str_t *rest);

/* api_origin.c */
ngx_table_elt_t *ngx_http_trl_api_cross_site(ngx_http_request_t *r);
ngx_int_t ngx_http_trl_api_refuse(ngx_http_request_t *r, ngx_table_elt_t *h);

/* prometheus.c */
ngx_int_t ngx_http_trl_api_prometheus(ngx_http_request_t *r,
    ngx_http_trl_main_conf_t *tmcf);

/* dashboard.c */
ngx_int_t ngx_http_trl_api_dashboard(ngx_http_request_t *r,
    ngx_str_t *asset);

/* redis.c */
void ngx_http_trl_redis_state(ngx_http_trl_redis_state_t *state);

/* api_attack.c (issue 14, BAN): {loc}/attack[/ZONE], a zone's state in
 * GET {loc}/ and {loc}/zones/NAME, the metrics of auto-ban and attack mode */
ngx_int_t ngx_http_trl_api_attack(ngx_http_request_t *r,
    ngx_http_trl_main_conf_t *tmcf, ngx_str_t *rest);
void ngx_http_trl_api_attack_state(ngx_http_trl_out_t *out,
    ngx_http_trl_zone_t *zone);
/* ngx_http_token_ratelimit_api_active.c (issue 15) */
void ngx_http_trl_api_active_places(ngx_http_trl_out_t *out,
    ngx_http_trl_zone_t *zone, trl_hash_t *hash, trl_limit_t *tl);
void ngx_http_trl_api_active_zone(ngx_http_trl_out_t *out,
    ngx_http_trl_zone_t *zone);
void ngx_http_trl_api_active_prometheus(ngx_http_trl_out_t *out,
    ngx_http_trl_main_conf_t *tmcf);

void ngx_http_trl_api_defense_prometheus(ngx_http_trl_out_t *out,
    ngx_http_trl_main_conf_t *tmcf);


#endif /* _NGX_HTTP_TOKEN_RATELIMIT_API_H_INCLUDED_ */
