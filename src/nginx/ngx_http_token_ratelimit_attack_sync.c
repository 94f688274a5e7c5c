
/*
 * ngx_http_token_ratelimit_attack_sync.c - attack mode across the nodes
 * (token_ratelimit_redis): a node that has a zone in attack mode of its
 * own (its signal, or the API's ttl) keeps the Redis key
 * <prefix>attack:<zone> set to "<node> <reason>", with the time to live of
 * hold= (the API's: what is left of its ttl), renewed each second by the
 * attack timer's worker; every node reads it at the same tick, and a key
 * set by another node keeps the zone on here (attack.c).  The API's
 * DELETE removes the key.
 */


#include "ngx_http_token_ratelimit.h"
#include "ngx_http_token_ratelimit_redis.h"


/* "<hostname>/<master pid>": two nodes on one host differ */
#define NGX_HTTP_TRL_NODE_LEN  (NGX_MAXHOSTNAMELEN + NGX_INT64_LEN + 1)


static void ngx_http_trl_attack_reply(redisReply *reply, void *data);


static ngx_http_trl_main_conf_t  *ngx_http_trl_attack_tmcf;
static u_char                     ngx_http_trl_attack_busy[
                                      NGX_HTTP_TRL_ATTACK_MAX];
static u_char                     ngx_http_trl_node[NGX_HTTP_TRL_NODE_LEN];
static size_t                     ngx_http_trl_node_len;


/* local: this node holds the zone on (its signal or the API's ttl) */

void
ngx_http_trl_attack_sync(ngx_http_trl_main_conf_t *tmcf, ngx_uint_t i,
    ngx_uint_t local, uint64_t now_ms)
{
    u_char                      *p, key[256], value[NGX_HTTP_TRL_NODE_LEN
                                                 + 16];
    u_char                       ttl[NGX_INT64_LEN];
    uint64_t                     ms;
    ngx_str_t                    args[4];
    ngx_uint_t                   nargs;
    ngx_http_trl_defense_t      *d;
    ngx_http_trl_attack_conf_t  *ac;

    if (i >= sizeof(ngx_http_trl_attack_busy) || ngx_http_trl_attack_busy[i]
        || !ngx_http_trl_redis_ready())
    {
        return;
    }

    ngx_http_trl_attack_tmcf = tmcf;

    if (ngx_http_trl_node_len == 0) {
        ngx_http_trl_node_len = ngx_snprintf(ngx_http_trl_node,
                                             NGX_HTTP_TRL_NODE_LEN, "%V/%P",
                                             &ngx_cycle->hostname,
                                             ngx_parent)
                                - ngx_http_trl_node;
    }

    ac = &((ngx_http_trl_attack_conf_t *) tmcf->attacks->elts)[i];
    d = ac->zone->defense;

    p = ngx_snprintf(key, sizeof(key), "%Vattack:%V", &tmcf->redis->prefix,
                     &ac->zone->name);

    args[0].data = key;
    args[0].len = p - key;
    nargs = 2;

    if (d->attack_clear) {
        d->attack_clear = 0;
        ngx_str_set(&args[1], "del");

    } else if (local && d->attack) {
        ms = ac->p.hold_ms;

        if (d->attack_until > now_ms && d->attack_until - now_ms > ms) {
            ms = d->attack_until - now_ms;
        }

        ngx_str_set(&args[1], "set");
        args[2].data = value;
        args[2].len = ngx_snprintf(value, sizeof(value), "%*s %s",
                                   ngx_http_trl_node_len, ngx_http_trl_node,
                                   ngx_http_trl_attack_why(d->attack_why))
                      - value;
        args[3].data = ttl;
        args[3].len = ngx_sprintf(ttl, "%uL", ms) - ttl;
        nargs = 4;

    } else {
        ngx_str_set(&args[1], "get");
    }

    if (ngx_http_trl_redis_eval(TRL_SCRIPT_ATTACK, 1, args, nargs,
                                tmcf->redis->timeout,
                                ngx_http_trl_attack_reply,
                                (void *) (uintptr_t) i)
        == NGX_OK)
    {
        ngx_http_trl_attack_busy[i] = 1;
    }
}


/* {value, pttl}: a value of another node keeps the zone on here */

static void
ngx_http_trl_attack_reply(redisReply *reply, void *data)
{
    ngx_uint_t i = (uintptr_t) data;

    redisReply                  *v;
    ngx_http_trl_defense_t      *d;
    ngx_http_trl_attack_conf_t  *ac;

    ngx_http_trl_attack_busy[i] = 0;

    if (ngx_http_trl_attack_tmcf == NULL || reply == NULL
        || reply->type == REDIS_REPLY_ERROR)
    {
        return;                             /* the next tick asks again */
    }

    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2
        || reply->element[0]->type != REDIS_REPLY_STRING)
    {
        ngx_http_trl_redis_unexpected(TRL_SCRIPT_ATTACK);
        return;
    }

    ac = &((ngx_http_trl_attack_conf_t *)
           ngx_http_trl_attack_tmcf->attacks->elts)[i];
    d = ac->zone->defense;
    v = reply->element[0];

    d->attack_remote = v->len > 0
                       && !(v->len > ngx_http_trl_node_len
                            && v->str[ngx_http_trl_node_len] == ' '
                            && ngx_strncmp(v->str, ngx_http_trl_node,
                                           ngx_http_trl_node_len)
                               == 0);

    if (d->attack_remote) {
        ngx_http_trl_attack_enter(ac->zone, NGX_HTTP_TRL_ATTACK_CLUSTER, 0);
    }
}
