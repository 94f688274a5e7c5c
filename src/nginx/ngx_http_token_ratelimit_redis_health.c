
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


void
ngx_http_trl_redis_state(ngx_http_trl_redis_state_t *state)
{
    ngx_uint_t                    i;
    ngx_http_trl_redis_conf_t    *rc;
    ngx_http_trl_redis_shared_t  *sh;

    ngx_memzero(state, sizeof(ngx_http_trl_redis_state_t));

    rc = ngx_http_trl_redis_conf();

    if (rc == NULL) {
        return;
    }

    sh = ngx_http_trl_redis_shared(rc);

    state->configured = 1;
    state->up = sh->up;
    state->outages = sh->outages;
    state->failures = sh->failures;
    state->down_since = sh->up ? 0 : (time_t) sh->down_since;

    state->failovers = sh->failovers;

    ngx_spinlock(&sh->lock, ngx_pid, 1024);

    if (!state->up) {
        state->reason_len = ngx_min(sh->reason_len, NGX_HTTP_TRL_REASON_MAX);
        ngx_memcpy(state->reason, sh->reason, state->reason_len);
    }

    state->master_len = ngx_min(sh->master_len, NGX_HTTP_TRL_MASTER_LEN);
    ngx_memcpy(state->master, sh->master, state->master_len);

    /* cluster=: the masters of the map the node installed last */

    state->maps = sh->map_version;
    state->slots_moved = sh->slots_moved;
    state->unserved = sh->unserved;
    state->nmasters = ngx_min(sh->nmasters, NGX_HTTP_TRL_MASTERS_SHOWN);

    for (i = 0; i < state->nmasters; i++) {
        state->masters[i].addr_len = sh->masters[i].addr_len;
        ngx_memcpy(state->masters[i].addr, sh->masters[i].addr,
                   sh->masters[i].addr_len);
        state->masters[i].slots = sh->masters[i].slots;
        state->masters[i].up = sh->masters[i].up;
    }

    ngx_unlock(&sh->lock);
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

    if (link->conf->cluster) {
        ngx_http_trl_cluster_link_up(link);

        if (!ngx_http_trl_cluster_all_ready()) {
            return;                 /* another master is still down */
        }
    }

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


void
ngx_http_trl_redis_quiet(ngx_event_t *ev)
{
    ngx_http_trl_link_t  *link = ev->data;

    if (ngx_http_trl_redis_conf() && link->state == NGX_HTTP_TRL_LINK_READY) {
        ngx_http_trl_redis_link_up(link);
    }
}


/*
 * Redis answered with an error (what: the call refused): it cannot serve
 * the module, the link goes down as if Redis were unreachable, and the
 * set-up with its probe tries again after the backoff.  The reason is the
 * first line of the error, bounded.
 */

void
ngx_http_trl_redis_refused(ngx_http_trl_link_t *link, const char *what,
    const char *reason, size_t len)
{
    u_char                        c, why[64];
    u_char                        detail[NGX_HTTP_TRL_REASON_MAX];
    size_t                        n;
    ngx_http_trl_redis_shared_t  *sh;

    sh = ngx_http_trl_redis_shared(link->conf);

    /*
     * cluster=: CLUSTERDOWN is the cluster's state (a master failed, the
     * others vote), not this node refusing the module: the link comes
     * back as soon as the cluster does, without the quiet time.
     */

    if (link->conf->cluster && len >= 11
        && ngx_strncmp(reason, "CLUSTERDOWN", 11) == 0)
    {
        ngx_sprintf(why, "%s refused%Z", what);
        ngx_http_trl_link_fail(link, (char *) why, "CLUSTERDOWN");
        return;
    }

    (void) ngx_atomic_fetch_add(&sh->refused, 1);
    sh->refused_last = (ngx_atomic_uint_t) ngx_current_msec;

    link->refused = 1;

    for (n = 0; n < len && n < sizeof(detail) - 1; n++) {
        if (reason[n] == CR || reason[n] == LF) {
            break;
        }

        c = (u_char) reason[n];
        detail[n] = (c < 0x20 || c == 0x7f) ? (u_char) '?' : c;
    }

    detail[n] = '\0';

    ngx_sprintf(why, "%s refused%Z", what);

    ngx_http_trl_link_fail(link, (char *) why, (char *) detail);
}


/* a good reply: the backoff starts afresh; the node may be up again */

void
ngx_http_trl_redis_served(ngx_http_trl_link_t *link)
{
    ngx_http_trl_redis_shared_t  *sh;

    if (link->refused) {
        link->refused = 0;
        link->backoff = NGX_HTTP_TRL_BACKOFF_MIN;
    }

    sh = ngx_http_trl_redis_shared(link->conf);

    if (!sh->up) {
        ngx_http_trl_redis_link_up(link);
    }
}
