
/*
 * ngx_http_token_ratelimit_sync.h - what the files of cluster-wide zones
 * share: a request's question to Redis (ask) and its answer, the way a
 * script goes to the link, and the strict wait as the handler sees it.
 *
 *   sync_script.c  a key's Redis name; a core-encoded script to the link
 *   sync_async.c   async zones: the outbox and its publish
 *   sync_asks.c    async zones: a request the node cannot decide asks
 *   sync_strict.c  a request waiting for Redis (strict zones, async asks)
 *   sync_reset.c   a key forgotten cluster-wide
 *   distinct_sync.c  distinct zones with sync=strict
 *   handler.c      (its last part) the answers taken into the zones
 *
 * The scripts' arguments and replies are encoded and decoded by the core
 * (trl_scripts.h): these files only carry the bytes.
 */

#ifndef _NGX_HTTP_TOKEN_RATELIMIT_SYNC_H_INCLUDED_
#define _NGX_HTTP_TOKEN_RATELIMIT_SYNC_H_INCLUDED_


#include "trl_scripts.h"

#include "ngx_http_token_ratelimit.h"
#include "ngx_http_token_ratelimit_redis.h"


#define NGX_HTTP_TRL_CHUNK         64        /* keys per script, at most */

#define NGX_HTTP_TRL_ASK_NONE      0
#define NGX_HTTP_TRL_ASK_SENT      1
#define NGX_HTTP_TRL_ASK_ANSWERED  2
#define NGX_HTTP_TRL_ASK_FAILED    3


/* Redis's answer for one zone of a request */
typedef struct {
    ngx_uint_t                   async;      /* ask: an async zone's */
    ngx_uint_t                   distinct;   /* a distinct zone's */
    trl_strict_answer_t          strict;
    trl_ask_answer_t             ask;
    trl_distinct_redis_req_t     dreq;       /* distinct: the question */
    trl_distinct_reply_t         dreply;     /* ... and its answer */
} ngx_http_trl_answer_t;


typedef struct ngx_http_trl_ask_s  ngx_http_trl_ask_t;

/* an ask's answer is in, or it failed (state tells) */
typedef void (*ngx_http_trl_ask_done_pt)(ngx_http_trl_ask_t *ask);

/* one zone's question to Redis for a request */
struct ngx_http_trl_ask_s {
    ngx_http_trl_wait_t         *wait;
    ngx_uint_t                   state;
    ngx_uint_t                   abandoned;  /* decided without the answer */
    ngx_http_trl_answer_t        answer;
    ngx_str_t                    name;       /* the key's Redis name */
    ngx_int_t                    slot;       /* ... its hash slot, or -1 */
    ngx_http_trl_zone_t         *zone;       /* async: queued to be sent */
    uint32_t                     limit;      /* async: the request's N
                                                (reputation may scale it):
                                                a batch asks for one N */
    ngx_http_trl_ask_t          *next;
    ngx_http_trl_ask_done_pt     done;
};


/* ngx_http_token_ratelimit_sync_script.c */
ngx_int_t ngx_http_trl_redis_name(ngx_pool_t *pool,
    ngx_http_trl_zone_t *zone, ngx_str_t *key, ngx_str_t *name);
void ngx_http_trl_script_zone(ngx_http_trl_zone_t *zone,
    trl_script_zone_t *sz);
ngx_int_t ngx_http_trl_script_eval(ngx_uint_t script, ngx_uint_t nkeys,
    trl_argv_t *argv, ngx_msec_t timeout, ngx_http_trl_reply_pt handler,
    void *data);

/* ngx_http_token_ratelimit_distinct_sync.c */
ngx_int_t ngx_http_trl_slots_call(ngx_http_trl_zone_t *zone, ngx_str_t *key,
    trl_distinct_redis_req_t *req, ngx_http_trl_reply_pt handler,
    void *data);
ngx_int_t ngx_http_trl_distinct_send(ngx_http_trl_applied_t *a,
    ngx_http_trl_ask_t *ask);
void ngx_http_trl_distinct_answer(ngx_http_request_t *r,
    ngx_http_trl_loc_conf_t *tlcf, ngx_http_trl_applied_t *a,
    ngx_http_trl_answer_t *answer);
void ngx_http_trl_distinct_give_back(ngx_str_t *name,
    trl_distinct_redis_req_t *req, uint64_t stamp_ms);

/* ngx_http_token_ratelimit_sync_asks.c */
void ngx_http_trl_asks_init(ngx_cycle_t *cycle);
void ngx_http_trl_ask_queue(ngx_http_trl_ask_t *ask);

/* ngx_http_token_ratelimit_sync_strict.c, for handler.c */
ngx_int_t ngx_http_trl_strict_over(ngx_http_request_t *r,
    ngx_http_trl_wait_t *wait);
ngx_http_trl_answer_t *ngx_http_trl_strict_answer(ngx_http_trl_wait_t *wait,
    ngx_uint_t i);


#endif /* _NGX_HTTP_TOKEN_RATELIMIT_SYNC_H_INCLUDED_ */
