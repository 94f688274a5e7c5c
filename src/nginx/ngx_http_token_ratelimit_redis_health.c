
/*
 * ngx_http_token_ratelimit_redis_health.c - whether Redis serves the
 * module, kept per node in a small shared memory zone with the reason of
 * an outage, so that an outage, however it began, is logged once when it
 * begins and once when it ends, not once per worker, link or call.
 *
 * A Redis that answers but cannot serve the module is unreachable too
 * (honest health): an error reply to a call, or a reply a handler cannot
 * read, takes the link down (refused), and it comes back through the
 * set-up, whose last step is a write probe.  After refusals the node is up
 * again once no call has been refused for a quiet time: a Redis that
 * refuses only some calls (the writes) is not taken for up by a read.
 * With cluster=, the node is up while every master's link of a worker is.
 */


#include "ngx_http_token_ratelimit_redis_link.h"




ngx_int_t
ngx_http_trl_redis_init_shm(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_slab_pool_t              *shpool;
    ngx_http_trl_redis_shared_t  *sh;

    shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (data || shm_zone->shm.exists) {
        return NGX_OK;                      /* kept across reloads */
    }

    sh = ngx_slab_calloc(shpool, sizeof(ngx_http_trl_redis_shared_t));
    if (sh == NULL) {
        return NGX_ERROR;
    }

    sh->up = 1;
    shpool->data = sh;

    return NGX_OK;
}


ngx_http_trl_redis_shared_t *
ngx_http_trl_redis_shared(ngx_http_trl_redis_conf_t *rc)
{
    ngx_slab_pool_t  *shpool;

    shpool = (ngx_slab_pool_t *) rc->shm->shm.addr;

    return shpool->data;
}


/*
 * The node's view: only the transitions are logged, one line when an
 * outage begins, whatever took the link down first, and one when it ends.
 * The reason shown by the API is the latest.
 */

void
ngx_http_trl_redis_down(ngx_http_trl_redis_conf_t *rc, ngx_log_t *log,
    const char *why, const char *detail)
{
    u_char                       *p;
    ngx_http_trl_redis_shared_t  *sh;

    sh = ngx_http_trl_redis_shared(rc);

    (void) ngx_atomic_fetch_add(&sh->failures, 1);

    if (detail == NULL) {
        detail = "error";
    }

    ngx_spinlock(&sh->lock, ngx_pid, 1024);
    p = ngx_snprintf(sh->reason, NGX_HTTP_TRL_REASON_MAX, "%s: %s", why,
                     detail);
    sh->reason_len = p - sh->reason;
    ngx_unlock(&sh->lock);

    if (!ngx_atomic_cmp_set(&sh->up, 1, 0)) {
        return;
    }

    sh->down_since = (ngx_atomic_uint_t) ngx_time();
    (void) ngx_atomic_fetch_add(&sh->outages, 1);

    ngx_log_error(NGX_LOG_ERR, log, 0,
                  "token_ratelimit: redis %V is unreachable (%s: %s); %s",
                  &rc->address, why, detail,
                  rc->fail_closed
                      ? "requests of sync zones get 503 (fail=closed)"
                      : "sync zones count locally (fail=open)");
}


/*
 * A link went down.  With cluster=, a link to a node that serves no slot
 * does not count, and the reason names the node.
 */

void
ngx_http_trl_redis_link_down(ngx_http_trl_link_t *link, const char *why,
    const char *detail)
{
    u_char  buf[NGX_HTTP_TRL_REASON_MAX], *p;

    if (!link->conf->cluster) {
        ngx_http_trl_redis_down(link->conf, link->log, why, detail);
        return;
    }

    if (link->slots == 0) {
        return;
    }

    p = ngx_snprintf(buf, sizeof(buf) - 1, "%V: %s", &link->name, why);
    *p = '\0';

    ngx_http_trl_redis_down(link->conf, link->log, (char *) buf, detail);
}


/*
 * The link is ready, or served a call: the node is up again, unless a
 * call was refused (by any worker) less than a quiet time ago, or this
 * link, refused, has been ready again for less than a quiet time without
 * serving a call (the probe passes, a script keeps failing: one outage,
 * not one per reconnection); then the quiet timer looks again.
 */

void
ngx_http_trl_redis_link_up(ngx_http_trl_link_t *link)
{
    ngx_msec_t                    quiet;
    ngx_msec_int_t                left;
    ngx_atomic_uint_t             n;
    ngx_http_trl_redis_shared_t  *sh;

    sh = ngx_http_trl_redis_shared(link->conf);

    if (sh->up) {
        return;
    }

    n = sh->refused;

    if (n) {
        quiet = ngx_max(NGX_HTTP_TRL_REFUSED_QUIET,
                        2 * link->conf->interval);
        left = (ngx_msec_int_t) ((ngx_msec_t) sh->refused_last + quiet
                                 - ngx_current_msec);

        if (link->refused) {
            left = ngx_max(left, (ngx_msec_int_t) (link->ready_at + quiet
                                                   - ngx_current_msec));
        }

        if (left > 0) {
            if (!link->quiet.timer_set) {
                ngx_add_timer(&link->quiet, (ngx_msec_t) left);
            }

            return;
        }
    }

    if (!ngx_atomic_cmp_set(&sh->up, 0, 1)) {
        return;
    }

    (void) ngx_atomic_fetch_add(&sh->refused, -(ngx_atomic_int_t) n);

    if (n) {
        ngx_log_error(NGX_LOG_ERR, link->log, 0,
                      "token_ratelimit: redis %V is reachable again after "
                      "%T s (%uA calls refused)", &link->conf->address,
                      ngx_time() - (time_t) sh->down_since, n);
        return;
    }

    ngx_log_error(NGX_LOG_ERR, link->log, 0,
                  "token_ratelimit: redis %V is reachable again after %T s",
                  &link->conf->address,
                  ngx_time() - (time_t) sh->down_since);
}
