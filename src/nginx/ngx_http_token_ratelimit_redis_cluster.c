
/*
 * ngx_http_token_ratelimit_redis_cluster.c - "token_ratelimit_redis
 * cluster=host:port,...": the slot map and a worker's links, one per
 * master (the Redis Cluster specification's client duties).
 *
 * The map comes from CLUSTER SLOTS, asked of the masters known, then of
 * the seeds, by the asker (never blocking: nodes are named by numeric
 * addresses).  It is asked again soon after a MOVED or a master's link
 * going down (the cluster may have failed over: asked every half second
 * until that link is back or the map names another master), and every few
 * seconds otherwise.  A script goes to the link of its keys' slot (the
 * sync code puts one slot's keys in a script); a MOVED reply moves that
 * slot in the map at once and the script is sent again to the node named,
 * an ASK sends it there once after ASKING, a TRYAGAIN (a multi-key script
 * during a migration) is answered as a failed call.  A node that serves
 * no slot any more loses its link.
 *
 * Health: the node is up while every slot has a master and every master's
 * link of a worker is ready; the reason of an outage names the node.
 */


#include "ngx_http_token_ratelimit_redis_link.h"


#define NGX_HTTP_TRL_LINKS_MAX       (TRL_CLUSTER_NODES_MAX + 16)
#define NGX_HTTP_TRL_REDIRECTS_MAX   5
#define NGX_HTTP_TRL_REFRESH_SOON    50      /* ms: after MOVED, link down */
#define NGX_HTTP_TRL_REFRESH_DOWN    500     /* while a master is down */
#define NGX_HTTP_TRL_REFRESH_FAILED  1000    /* no node answered */
#define NGX_HTTP_TRL_REFRESH_EVERY   5000


typedef struct {
    ngx_http_trl_redis_conf_t   *conf;
    ngx_log_t                   *log;
    trl_slot_map_t              *map;        /* installed; NULL: none yet */
    trl_slot_map_t              *next;       /* read, to be installed */
    ngx_http_trl_link_t        **slot_link;  /* TRL_CLUSTER_SLOTS */
    ngx_uint_t                   unserved;
    ngx_http_trl_link_t         *links[NGX_HTTP_TRL_LINKS_MAX];
    ngx_uint_t                   nlinks;
    ngx_http_trl_asker_t         asker;      /* CLUSTER SLOTS */
    ngx_http_trl_redis_addr_t   *servers;    /* asked: masters, seeds */
    ngx_event_t                  refresh;
    ngx_uint_t                   again;      /* asked while asking */
} ngx_http_trl_cluster_t;


static ngx_http_trl_link_t *ngx_http_trl_cluster_route(ngx_str_t *key);
static ngx_uint_t ngx_http_trl_cluster_all_ready(void);
static ngx_uint_t ngx_http_trl_cluster_redirect(ngx_http_trl_link_t *link,
    ngx_http_trl_cmd_t *cmd, redisReply *reply);
static void ngx_http_trl_cluster_link_down(ngx_http_trl_link_t *link);
static ngx_uint_t ngx_http_trl_cluster_link_up(ngx_http_trl_link_t *link);
static ngx_int_t ngx_http_trl_cluster_probe(ngx_http_trl_link_t *link);
static void ngx_http_trl_cluster_ask(ngx_http_trl_cluster_t *cl);
static void ngx_http_trl_cluster_refresh_handler(ngx_event_t *ev);
static void ngx_http_trl_cluster_refresh_in(ngx_http_trl_cluster_t *cl,
    ngx_msec_t delay);
static const char *ngx_http_trl_cluster_read(ngx_http_trl_asker_t *q,
    redisReply *reply);
static void ngx_http_trl_cluster_done(ngx_http_trl_asker_t *q,
    const char *err);
static void ngx_http_trl_cluster_install(ngx_http_trl_cluster_t *cl,
    trl_slot_map_t *map);
static void ngx_http_trl_cluster_show(ngx_http_trl_cluster_t *cl,
    ngx_uint_t moved, ngx_uint_t failovers);
static ngx_http_trl_link_t *ngx_http_trl_cluster_link(
    ngx_http_trl_cluster_t *cl, const char *host, ngx_uint_t port);
static void ngx_http_trl_cluster_mark(ngx_http_trl_link_t *link,
    ngx_uint_t up);
static void ngx_http_trl_cluster_answer(ngx_http_trl_cmd_t *cmd);


static ngx_http_trl_cluster_t  ngx_http_trl_cluster;

static ngx_http_trl_link_hooks_t  ngx_http_trl_cluster_hooks = {
    ngx_http_trl_cluster_probe,
    ngx_http_trl_cluster_link_down,
    ngx_http_trl_cluster_link_up,
    ngx_http_trl_cluster_redirect
};


ngx_int_t
ngx_http_trl_cluster_init(ngx_cycle_t *cycle, ngx_http_trl_redis_conf_t *rc)
{
    ngx_http_trl_cluster_t  *cl = &ngx_http_trl_cluster;

    ngx_memzero(cl, sizeof(ngx_http_trl_cluster_t));

    cl->conf = rc;
    cl->log = cycle->log;

    cl->slot_link = ngx_pcalloc(cycle->pool, TRL_CLUSTER_SLOTS
                                             * sizeof(ngx_http_trl_link_t *));
    cl->servers = ngx_pcalloc(cycle->pool,
                              (NGX_HTTP_TRL_LINKS_MAX + rc->cluster->nelts)
                              * sizeof(ngx_http_trl_redis_addr_t));

    if (cl->slot_link == NULL || cl->servers == NULL) {
        return NGX_ERROR;
    }

    cl->refresh.handler = ngx_http_trl_cluster_refresh_handler;
    cl->refresh.data = cl;
    cl->refresh.log = cycle->log;
    cl->refresh.cancelable = 1;

    ngx_http_trl_redis_route(ngx_http_trl_cluster_route);
    ngx_http_trl_cluster_ask(cl);

    return NGX_OK;
}


void
ngx_http_trl_cluster_exit(void)
{
    ngx_uint_t               i;
    ngx_http_trl_cluster_t  *cl = &ngx_http_trl_cluster;

    if (cl->conf == NULL) {
        return;
    }

    if (cl->refresh.timer_set) {
        ngx_del_timer(&cl->refresh);
    }

    if (cl->asker.log) {
        ngx_http_trl_asker_stop(&cl->asker);
    }

    for (i = 0; i < cl->nlinks; i++) {
        ngx_http_trl_link_close(cl->links[i]);
    }

    trl_slot_map_destroy(cl->map);
    trl_slot_map_destroy(cl->next);

    cl->map = NULL;
    cl->next = NULL;
    cl->conf = NULL;
}


/* the link to the master of a key's slot, NULL while none is known */

static ngx_http_trl_link_t *
ngx_http_trl_cluster_route(ngx_str_t *key)
{
    ngx_http_trl_link_t     *link;
    ngx_http_trl_cluster_t  *cl = &ngx_http_trl_cluster;

    link = cl->slot_link[trl_cluster_slot(key->data, key->len)];

    if (link == NULL) {
        ngx_http_trl_cluster_refresh_in(cl, NGX_HTTP_TRL_REFRESH_SOON);
    }

    return link;
}


/* some master can serve: the keys of the others fail on their own */

ngx_uint_t
ngx_http_trl_cluster_ready(void)
{
    ngx_uint_t               i;
    ngx_http_trl_cluster_t  *cl = &ngx_http_trl_cluster;

    for (i = 0; i < cl->nlinks; i++) {
        if (cl->links[i]->slots
            && cl->links[i]->state == NGX_HTTP_TRL_LINK_READY)
        {
            return 1;
        }
    }

    return 0;
}


static ngx_uint_t
ngx_http_trl_cluster_all_ready(void)
{
    ngx_uint_t               i;
    ngx_http_trl_cluster_t  *cl = &ngx_http_trl_cluster;

    if (cl->map == NULL || cl->unserved) {
        return 0;
    }

    for (i = 0; i < cl->nlinks; i++) {
        if (cl->links[i]->slots
            && cl->links[i]->state != NGX_HTTP_TRL_LINK_READY)
        {
            return 0;
        }
    }

    return 1;
}


/*
 * An error reply on a cluster link: MOVED (the slot is another master's:
 * the map learns it, the script goes there), ASK (the slot is being
 * migrated and the key is on the target: the script goes there once, after
 * ASKING), TRYAGAIN (a multi-key script whose keys are split by a
 * migration: a failed call).  Returns 0 for any other error; else the
 * command has been sent on or answered.
 */

static ngx_uint_t
ngx_http_trl_cluster_redirect(ngx_http_trl_link_t *link,
    ngx_http_trl_cmd_t *cmd, redisReply *reply)
{
    int                           kind;
    char                          host[TRL_CLUSTER_HOST_MAX];
    unsigned                      slot, port;
    ngx_http_trl_link_t          *target, *old;
    ngx_http_trl_cluster_t       *cl = &ngx_http_trl_cluster;
    ngx_http_trl_redis_shared_t  *sh;

    if (reply->len >= 8 && ngx_strncmp(reply->str, "TRYAGAIN", 8) == 0) {
        ngx_log_debug1(NGX_LOG_DEBUG_EVENT, link->log, 0,
                       "token_ratelimit: redis %V: TRYAGAIN", &link->name);
        ngx_http_trl_cluster_answer(cmd);
        return 1;
    }

    kind = trl_cluster_redirect(reply->str, reply->len, &slot, host, &port);

    if (kind == 0) {
        return 0;
    }

    if (host[0] == '\0') {
        ngx_cpystrn((u_char *) host, link->host, sizeof(host));
    }

    ngx_log_debug5(NGX_LOG_DEBUG_EVENT, link->log, 0,
                   "token_ratelimit: redis %V: %s %ui %s:%ui", &link->name,
                   kind == TRL_CLUSTER_MOVED ? "MOVED" : "ASK",
                   (ngx_uint_t) slot, host, (ngx_uint_t) port);

    if (++cmd->redirects > NGX_HTTP_TRL_REDIRECTS_MAX
        || !ngx_http_trl_redis_numeric((u_char *) host, ngx_strlen(host)))
    {
        ngx_http_trl_cluster_answer(cmd);
        ngx_http_trl_cluster_refresh_in(cl, NGX_HTTP_TRL_REFRESH_SOON);
        return 1;
    }

    target = ngx_http_trl_cluster_link(cl, host, port);

    if (kind == TRL_CLUSTER_MOVED) {

        if (target && cl->slot_link[slot] != target) {
            old = cl->slot_link[slot];

            if (old) {
                old->slots--;
            }

            cl->slot_link[slot] = target;

            if (target->slots++ == 0
                && target->state == NGX_HTTP_TRL_LINK_RETIRED)
            {
                ngx_http_trl_link_start(target);
            }

            sh = ngx_http_trl_redis_shared(cl->conf);
            (void) ngx_atomic_fetch_add(&sh->slots_moved, 1);
        }

        if (cl->map) {
            (void) trl_slot_map_move(cl->map, slot, host, ngx_strlen(host),
                                     port);
        }

        ngx_http_trl_cluster_refresh_in(cl, NGX_HTTP_TRL_REFRESH_SOON);
    }

    if (target == NULL
        || ngx_http_trl_link_send(target, cmd, kind == TRL_CLUSTER_ASK)
           != NGX_OK)
    {
        ngx_http_trl_cluster_answer(cmd);
    }

    return 1;
}


/* a master's link is down: the map may be stale (a failover) */

static void
ngx_http_trl_cluster_link_down(ngx_http_trl_link_t *link)
{
    ngx_http_trl_cluster_mark(link, 0);
    ngx_http_trl_cluster_refresh_in(&ngx_http_trl_cluster,
                                    NGX_HTTP_TRL_REFRESH_SOON);
}


static ngx_uint_t
ngx_http_trl_cluster_link_up(ngx_http_trl_link_t *link)
{
    ngx_http_trl_cluster_mark(link, 1);

    return ngx_http_trl_cluster_all_ready();    /* else one is still down */
}


/*
 * The probe's key, "<prefix>probe{N}", with N such that the key is in one
 * of the node's slots: a node refuses a write of another's (MOVED).
 */

static ngx_int_t
ngx_http_trl_cluster_probe(ngx_http_trl_link_t *link)
{
    u_char                  *p, tag[NGX_INT_T_LEN];
    ngx_uint_t               n;
    ngx_http_trl_cluster_t  *cl = &ngx_http_trl_cluster;

    for (n = 0; n < 20 * TRL_CLUSTER_SLOTS; n++) {
        p = ngx_sprintf(tag, "%ui", n);

        if (cl->slot_link[trl_cluster_slot(tag, p - tag)] == link) {
            break;
        }
    }

    p = ngx_sprintf(link->probe.data, "%Vprobe{%ui}", &cl->conf->prefix, n);
    *p = '\0';
    link->probe.len = p - link->probe.data;

    return NGX_OK;
}


/* --- the slot map ------------------------------------------------------ */

static void
ngx_http_trl_cluster_ask(ngx_http_trl_cluster_t *cl)
{
    ngx_uint_t                  i, n;
    ngx_http_trl_link_t        *link;
    ngx_http_trl_asker_t       *q;
    ngx_http_trl_redis_addr_t  *seeds;

    q = &cl->asker;

    if (q->busy) {
        cl->again = 1;
        return;
    }

    /* the masters known first: the seeds may be gone */

    n = 0;

    for (i = 0; i < cl->nlinks; i++) {
        link = cl->links[i];

        if (link->slots == 0) {
            continue;
        }

        cl->servers[n].text = link->name;
        cl->servers[n].host.data = link->host;
        cl->servers[n].host.len = ngx_strlen(link->host);
        cl->servers[n].port = link->port;
        n++;
    }

    seeds = cl->conf->cluster->elts;

    for (i = 0; i < cl->conf->cluster->nelts; i++) {
        cl->servers[n++] = seeds[i];
    }

    q->log = cl->log;
    q->servers = cl->servers;
    q->nservers = n;
    q->first = 0;
    q->password = cl->conf->password;
    q->what = "node";
    q->argc = 2;
    q->argv[0] = "CLUSTER";
    q->argvlen[0] = 7;
    q->argv[1] = "SLOTS";
    q->argvlen[1] = 5;
    q->timeout = cl->conf->timeout;
    q->read = ngx_http_trl_cluster_read;
    q->done = ngx_http_trl_cluster_done;
    q->data = cl;

    cl->again = 0;

    ngx_log_debug1(NGX_LOG_DEBUG_EVENT, cl->log, 0,
                   "token_ratelimit: redis cluster: CLUSTER SLOTS of %ui "
                   "nodes", n);

    ngx_http_trl_asker_start(q);
}


static void
ngx_http_trl_cluster_refresh_handler(ngx_event_t *ev)
{
    ngx_http_trl_cluster_t  *cl = ev->data;

    if (cl->conf) {
        ngx_http_trl_cluster_ask(cl);
    }
}


static void
ngx_http_trl_cluster_refresh_in(ngx_http_trl_cluster_t *cl, ngx_msec_t delay)
{
    if (cl->conf == NULL || ngx_exiting || ngx_quit || ngx_terminate) {
        return;
    }

    if (cl->asker.busy) {
        cl->again = 1;
        return;
    }

    if (cl->refresh.timer_set) {
        if ((ngx_msec_int_t) (cl->refresh.timer.key - ngx_current_msec)
            <= (ngx_msec_int_t) delay)
        {
            return;
        }

        ngx_del_timer(&cl->refresh);
    }

    ngx_add_timer(&cl->refresh, delay);
}


/*
 * CLUSTER SLOTS: [[start, end, [host, port, id], replicas...], ...].  An
 * empty host is the node asked.
 */

static const char *
ngx_http_trl_cluster_read(ngx_http_trl_asker_t *q, redisReply *reply)
{
    u_char                  *host;
    size_t                   len;
    ngx_int_t                port;
    ngx_uint_t               i;
    redisReply              *e, *m;
    trl_slot_map_t          *map;
    ngx_http_trl_cluster_t  *cl = q->data;

    if (reply->type != REDIS_REPLY_ARRAY) {
        return "unexpected answer to CLUSTER SLOTS";
    }

    map = trl_slot_map_create();
    if (map == NULL) {
        return "no memory";
    }

    for (i = 0; i < reply->elements; i++) {
        e = reply->element[i];

        if (e->type != REDIS_REPLY_ARRAY || e->elements < 3
            || e->element[0]->type != REDIS_REPLY_INTEGER
            || e->element[1]->type != REDIS_REPLY_INTEGER
            || e->element[2]->type != REDIS_REPLY_ARRAY
            || e->element[2]->elements < 2
            || e->element[2]->element[0]->type != REDIS_REPLY_STRING
            || e->element[2]->element[1]->type != REDIS_REPLY_INTEGER)
        {
            trl_slot_map_destroy(map);
            return "unexpected answer to CLUSTER SLOTS";
        }

        m = e->element[2];
        host = (u_char *) m->element[0]->str;
        len = m->element[0]->len;
        port = (ngx_int_t) m->element[1]->integer;

        if (len == 0) {
            host = q->servers[q->next % q->nservers].host.data;
            len = ngx_strlen(host);
        }

        if (len >= TRL_CLUSTER_HOST_MAX
            || !ngx_http_trl_redis_numeric(host, len))
        {
            trl_slot_map_destroy(map);
            return "names a node by a name, not a numeric address "
                   "(cluster-preferred-endpoint-type must be ip)";
        }

        if (port < 1 || port > 65535
            || trl_slot_map_add(map, (unsigned) e->element[0]->integer,
                                (unsigned) e->element[1]->integer,
                                (char *) host, len, (unsigned) port)
               < 0)
        {
            trl_slot_map_destroy(map);
            return "unexpected answer to CLUSTER SLOTS";
        }
    }

    trl_slot_map_destroy(cl->next);
    cl->next = map;

    return NULL;
}


static void
ngx_http_trl_cluster_done(ngx_http_trl_asker_t *q, const char *err)
{
    trl_slot_map_t          *map;
    ngx_http_trl_cluster_t  *cl = q->data;

    if (cl->conf == NULL) {
        return;
    }

    if (err) {
        ngx_http_trl_redis_down(cl->conf, cl->log,
                                "no slot map from the cluster", err);
        ngx_http_trl_cluster_refresh_in(cl, cl->again
                                            ? NGX_HTTP_TRL_REFRESH_SOON
                                            : NGX_HTTP_TRL_REFRESH_FAILED);
        return;
    }

    map = cl->next;
    cl->next = NULL;

    ngx_http_trl_cluster_install(cl, map);

    if (cl->again) {
        ngx_http_trl_cluster_refresh_in(cl, NGX_HTTP_TRL_REFRESH_SOON);
        return;
    }

    ngx_http_trl_cluster_refresh_in(cl, ngx_http_trl_cluster_all_ready()
                                        ? NGX_HTTP_TRL_REFRESH_EVERY
                                        : NGX_HTTP_TRL_REFRESH_DOWN);
}


/*
 * A new map: each slot's link, links started for new masters and closed
 * for nodes that serve no slot any more (a master that lost its slots
 * while its link was down has failed over).
 */

static void
ngx_http_trl_cluster_install(ngx_http_trl_cluster_t *cl,
    trl_slot_map_t *map)
{
    int                   n;
    unsigned              port;
    ngx_uint_t            i, slot, moved, failovers, nodes;
    const char           *host;
    ngx_http_trl_link_t  *link, *by_node[TRL_CLUSTER_NODES_MAX];
    ngx_uint_t            had[NGX_HTTP_TRL_LINKS_MAX];

    nodes = trl_slot_map_nodes(map);

    for (i = 0; i < nodes; i++) {
        host = trl_slot_map_host(map, i, &port);
        by_node[i] = host ? ngx_http_trl_cluster_link(cl, host, port) : NULL;
    }

    for (i = 0; i < cl->nlinks; i++) {
        had[i] = cl->links[i]->slots;
        cl->links[i]->slots = 0;
    }

    moved = 0;

    for (slot = 0; slot < TRL_CLUSTER_SLOTS; slot++) {
        n = trl_slot_map_node(map, slot);
        link = n >= 0 ? by_node[n] : NULL;

        if (cl->map && cl->slot_link[slot] && link
            && cl->slot_link[slot] != link)
        {
            moved++;
        }

        cl->slot_link[slot] = link;

        if (link) {
            link->slots++;
        }
    }

    failovers = 0;

    for (i = 0; i < cl->nlinks; i++) {
        link = cl->links[i];

        if (link->slots) {
            if (link->state == NGX_HTTP_TRL_LINK_RETIRED
                || (link->ac == NULL && !link->retry.timer_set
                    && link->state == NGX_HTTP_TRL_LINK_DOWN))
            {
                ngx_http_trl_link_start(link);
            }

            continue;
        }

        if (had[i] && link->state != NGX_HTTP_TRL_LINK_RETIRED)
        {
            if (link->state != NGX_HTTP_TRL_LINK_READY) {
                failovers++;
            }

            ngx_log_error(NGX_LOG_NOTICE, cl->log, 0,
                          "token_ratelimit: redis cluster: %V serves no "
                          "slot any more%s", &link->name,
                          link->state != NGX_HTTP_TRL_LINK_READY
                          ? " (failed over)" : "");

            ngx_http_trl_link_close(link);
        }
    }

    cl->unserved = trl_slot_map_unserved(map);

    trl_slot_map_destroy(cl->map);
    cl->map = map;

    ngx_log_debug4(NGX_LOG_DEBUG_EVENT, cl->log, 0,
                   "token_ratelimit: redis cluster: a map of %ui masters, "
                   "%ui slots moved, %ui unserved, %ui failed over",
                   nodes, moved, cl->unserved, failovers);

    ngx_http_trl_cluster_show(cl, moved, failovers);

    if (cl->unserved) {
        ngx_http_trl_redis_down(cl->conf, cl->log, "cluster",
                                "some slots have no master");
        return;
    }

    /* every master ready already: the node is up (after an unserved map) */

    if (!ngx_http_trl_cluster_all_ready()) {
        return;
    }

    for (i = 0; i < cl->nlinks; i++) {
        if (cl->links[i]->slots
            && cl->links[i]->state == NGX_HTTP_TRL_LINK_READY)
        {
            ngx_http_trl_redis_link_up(cl->links[i]);
            break;
        }
    }
}


/* the node's view of the map, for the API and the metrics */

static void
ngx_http_trl_cluster_show(ngx_http_trl_cluster_t *cl, ngx_uint_t moved,
    ngx_uint_t failovers)
{
    ngx_uint_t                    i, n;
    ngx_http_trl_link_t          *link;
    ngx_http_trl_master_seen_t   *m;
    ngx_http_trl_redis_shared_t  *sh;

    sh = ngx_http_trl_redis_shared(cl->conf);

    ngx_spinlock(&sh->lock, ngx_pid, 1024);

    n = 0;

    for (i = 0; i < cl->nlinks && n < NGX_HTTP_TRL_MASTERS_SHOWN; i++) {
        link = cl->links[i];

        if (link->slots == 0) {
            continue;
        }

        m = &sh->masters[n++];
        m->addr_len = ngx_min(link->name.len, NGX_HTTP_TRL_MASTER_LEN);
        ngx_memcpy(m->addr, link->name.data, m->addr_len);
        m->slots = link->slots;
        m->up = (link->state == NGX_HTTP_TRL_LINK_READY);
    }

    sh->nmasters = n;
    sh->unserved = cl->unserved;

    ngx_unlock(&sh->lock);

    (void) ngx_atomic_fetch_add(&sh->map_version, 1);
    (void) ngx_atomic_fetch_add(&sh->slots_moved, moved);
    (void) ngx_atomic_fetch_add(&sh->failovers, failovers);
}


static ngx_http_trl_link_t *
ngx_http_trl_cluster_link(ngx_http_trl_cluster_t *cl, const char *host,
    ngx_uint_t port)
{
    ngx_uint_t            i;
    ngx_http_trl_link_t  *link;

    for (i = 0; i < cl->nlinks; i++) {
        link = cl->links[i];

        if ((ngx_uint_t) link->port == port
            && ngx_strcmp(link->host, host) == 0)
        {
            return link;
        }
    }

    if (cl->nlinks == NGX_HTTP_TRL_LINKS_MAX) {
        return NULL;
    }

    link = ngx_http_trl_link_create(cl->conf, cl->log, (u_char *) host,
                                    (ngx_int_t) port);
    if (link == NULL) {
        return NULL;
    }

    link->state = NGX_HTTP_TRL_LINK_RETIRED;    /* until it serves */
    link->hooks = &ngx_http_trl_cluster_hooks;

    cl->links[cl->nlinks++] = link;

    return link;
}


static void
ngx_http_trl_cluster_mark(ngx_http_trl_link_t *link, ngx_uint_t up)
{
    ngx_uint_t                    i;
    ngx_http_trl_redis_shared_t  *sh;

    sh = ngx_http_trl_redis_shared(link->conf);

    for (i = 0; i < sh->nmasters && i < NGX_HTTP_TRL_MASTERS_SHOWN; i++) {
        if (sh->masters[i].addr_len == link->name.len
            && ngx_memcmp(sh->masters[i].addr, link->name.data,
                          link->name.len) == 0)
        {
            sh->masters[i].up = up;
            return;
        }
    }
}


static void
ngx_http_trl_cluster_answer(ngx_http_trl_cmd_t *cmd)
{
    cmd->handler(NULL, cmd->data);
    ngx_free(cmd);
}
