
/*
 * ngx_http_token_ratelimit_reputation_sync.c - the reputation lists
 * uploaded through the API, shared by the nodes through Redis: the hash
 * <prefix>reputation:<NAME> holds a list's last upload (version = Unix ms
 * of the upload, checksum, body in the core's wire form, at, node; the
 * scripts and their codecs are the core's, trl_scripts.h).
 *
 * An upload is published at once (ngx_http_trl_rep_publish).  One that
 * finds Redis unreachable stays marked unpublished in the table, and the
 * first poll that finds Redis back publishes it.  About once a second one
 * worker of each node (trl_rep_due) reads each API list's version and
 * checksum (trl_rep_seen keeps them for the API); when Redis's version
 * differs from the node's, the worker fetches the body and installs it in
 * a thread (ngx_http_trl_rep_job_post).  Each outcome is logged once, by
 * the worker that had it: a poll that changes nothing logs nothing, and
 * the link logs its own outages.
 */


#include "trl_reputation.h"

#include "ngx_http_token_ratelimit_reputation.h"
#include "ngx_http_token_ratelimit_sync.h"
#include "ngx_http_token_ratelimit_util.h"


#define NGX_HTTP_TRL_REP_EVERY      1000    /* ms between polls */
#define NGX_HTTP_TRL_REP_TICK       250     /* ms between looks at whether
                                               this worker is to poll */
#define NGX_HTTP_TRL_REP_READ_WAIT  1000    /* ms a poll may take */
#define NGX_HTTP_TRL_REP_BODY_WAIT  10000   /* ms a body may take, either
                                               way (a large list) */

#define NGX_HTTP_TRL_REP_FRESH      0       /* publish: an upload */
#define NGX_HTTP_TRL_REP_BACKLOG    1       /* ... made while Redis was
                                               unreachable */
#define NGX_HTTP_TRL_REP_AGAIN      2       /* ... that Redis lost */


/* one call to Redis in flight for a list */
typedef struct {
    ngx_http_trl_rep_list_t    *list;
    uint64_t                    version;    /* publish: what was sent */
    ngx_uint_t                  why;        /* publish: ..._FRESH ... */
    ngx_uint_t                  with_body;  /* read: the body too */
} ngx_http_trl_rep_call_t;


static void ngx_http_trl_rep_timer(ngx_event_t *ev);
static void ngx_http_trl_rep_poll(void);
static ngx_int_t ngx_http_trl_rep_read(ngx_http_trl_rep_list_t *list,
    ngx_uint_t with_body);
static void ngx_http_trl_rep_table(ngx_http_trl_rep_list_t *list,
    uint64_t version, ngx_uint_t why);
static ngx_http_trl_rep_list_t *ngx_http_trl_rep_reply_list(
    redisReply *reply, ngx_http_trl_rep_call_t *call);
static void ngx_http_trl_rep_read_reply(redisReply *reply, void *data);
static void ngx_http_trl_rep_adopt(ngx_http_trl_rep_list_t *list,
    trl_rep_remote_t *remote);
static void ngx_http_trl_rep_adopted(ngx_http_trl_rep_job_t *job);
static ngx_int_t ngx_http_trl_rep_send(ngx_http_trl_rep_list_t *list,
    const trl_rep_build_t *build, uint64_t version, ngx_uint_t why);
static void ngx_http_trl_rep_publish_reply(redisReply *reply, void *data);
static ngx_int_t ngx_http_trl_rep_remote(redisReply *reply, size_t n,
    trl_rep_remote_t *remote);
static ngx_uint_t ngx_http_trl_rep_failed(trl_rep_list_info_t *info,
    uint64_t version);


/* NULL: no Redis, no API list, or exiting */
static ngx_http_trl_rep_conf_t  *ngx_http_trl_rep_sync_rcf;
static ngx_log_t                *ngx_http_trl_rep_sync_log;
static ngx_event_t               ngx_http_trl_rep_sync_ev;

/* by slot: a call or a load of this process is in flight for the list */
static u_char                    ngx_http_trl_rep_busy[TRL_REP_MAX_LISTS];


void
ngx_http_trl_rep_sync_init(ngx_cycle_t *cycle)
{
    ngx_uint_t                 i;
    ngx_http_trl_rep_conf_t   *rcf;
    ngx_http_trl_rep_list_t   *lists;
    ngx_http_trl_main_conf_t  *tmcf;

    tmcf = ngx_http_cycle_get_module_main_conf(cycle,
                                               ngx_http_token_ratelimit_module);

    if (tmcf == NULL || tmcf->redis == NULL || tmcf->rep == NULL
        || tmcf->rep->rep == NULL)
    {
        return;
    }

    rcf = tmcf->rep;
    lists = rcf->lists.elts;

    for (i = 0; i < rcf->lists.nelts; i++) {
        if (lists[i].file.len == 0) {
            break;
        }
    }

    if (i == rcf->lists.nelts) {
        return;                             /* files stay per node */
    }

    ngx_http_trl_rep_sync_rcf = rcf;
    ngx_http_trl_rep_sync_log = cycle->log;
    ngx_memzero(ngx_http_trl_rep_busy, sizeof(ngx_http_trl_rep_busy));

    ngx_http_trl_rep_sync_ev.handler = ngx_http_trl_rep_timer;
    ngx_http_trl_rep_sync_ev.data = &ngx_http_trl_dumb_connection;
    ngx_http_trl_rep_sync_ev.log = cycle->log;
    ngx_http_trl_rep_sync_ev.cancelable = 1;

    /* the workers' timers spread over the second */
    ngx_add_timer(&ngx_http_trl_rep_sync_ev,
                  NGX_HTTP_TRL_REP_TICK
                  + (ngx_msec_t) ngx_random() % NGX_HTTP_TRL_REP_EVERY);
}


void
ngx_http_trl_rep_sync_exit(void)
{
    if (ngx_http_trl_rep_sync_ev.timer_set) {
        ngx_del_timer(&ngx_http_trl_rep_sync_ev);
    }

    ngx_http_trl_rep_sync_rcf = NULL;
}


/*
 * A list was just uploaded through the API and installed (job->build is
 * what was installed, marked unpublished): Redis gets it now, or the
 * first poll that finds Redis back.
 */

void
ngx_http_trl_rep_publish(ngx_http_trl_rep_job_t *job)
{
    if (ngx_http_trl_rep_sync_rcf == NULL || job->build == NULL
        || job->list->slot < 0)
    {
        return;
    }

    if (!ngx_http_trl_redis_ready()
        || ngx_http_trl_rep_send(job->list, job->build, job->version,
                                 NGX_HTTP_TRL_REP_FRESH)
           != NGX_OK)
    {
        ngx_log_error(NGX_LOG_NOTICE, ngx_http_trl_rep_sync_log, 0,
                      "token_ratelimit_reputation_list \"%V\": version %uL "
                      "is kept unpublished until Redis can be reached",
                      &job->list->name, job->version);
    }
}


static void
ngx_http_trl_rep_timer(ngx_event_t *ev)
{
    ngx_http_trl_rep_poll();

    if (!ngx_exiting) {
        ngx_add_timer(ev, NGX_HTTP_TRL_REP_TICK);
    }
}


/* Each API list: an unpublished upload is published, else read. */

static void
ngx_http_trl_rep_poll(void)
{
    ngx_uint_t                i;
    trl_rep_list_info_t       info;
    ngx_http_trl_rep_conf_t  *rcf;
    ngx_http_trl_rep_list_t  *lists, *list;

    rcf = ngx_http_trl_rep_sync_rcf;

    if (rcf == NULL || !ngx_http_trl_redis_ready()
        || !trl_rep_due(rcf->rep, TRL_REP_DUE_REDIS, ngx_http_trl_wall_ms(),
                        NGX_HTTP_TRL_REP_EVERY))
    {
        return;                 /* not due, or another worker's turn */
    }

    lists = rcf->lists.elts;

    for (i = 0; i < rcf->lists.nelts; i++) {
        list = &lists[i];

        if (list->file.len || list->slot < 0
            || list->slot >= TRL_REP_MAX_LISTS
            || ngx_http_trl_rep_busy[list->slot]
            || trl_rep_info(rcf->rep, (int) list->slot, &info) != TRL_OK)
        {
            continue;
        }

        if (info.unpublished) {
            ngx_http_trl_rep_table(list, info.version,
                                   NGX_HTTP_TRL_REP_BACKLOG);
        } else {
            (void) ngx_http_trl_rep_read(list, 0);
        }
    }
}


/* Publishes the list's table as the node has it. */

static void
ngx_http_trl_rep_table(ngx_http_trl_rep_list_t *list, uint64_t version,
    ngx_uint_t why)
{
    trl_rep_build_t  *build;

    build = trl_rep_extract(ngx_http_trl_rep_sync_rcf->rep, (int) list->slot);

    if (build) {
        (void) ngx_http_trl_rep_send(list, build, version, why);
        trl_rep_build_free(build);
    }
}


/* HMGET version checksum (with_body: body) */

static ngx_int_t
ngx_http_trl_rep_read(ngx_http_trl_rep_list_t *list, ngx_uint_t with_body)
{
    char                       *buf;
    ngx_int_t                   rv;
    ngx_msec_t                  wait;
    trl_argv_t                  argv;
    trl_bytes_t                 args[TRL_REP_READ_ARGS];
    ngx_http_trl_rep_call_t    *call;
    ngx_http_trl_redis_conf_t  *rc;

    rc = ngx_http_trl_redis_conf();

    call = ngx_alloc(sizeof(ngx_http_trl_rep_call_t)
                     + TRL_REP_READ_BUF(rc->prefix.len),
                     ngx_http_trl_rep_sync_log);
    if (call == NULL) {
        return NGX_ERROR;
    }

    call->list = list;
    call->version = 0;
    call->why = 0;
    call->with_body = with_body;

    buf = (char *) (call + 1);

    trl_argv_init(&argv, args, TRL_REP_READ_ARGS, buf,
                  TRL_REP_READ_BUF(rc->prefix.len));

    rv = NGX_ERROR;

    if (trl_rep_read_encode((char *) rc->prefix.data, rc->prefix.len,
                            (char *) list->name.data, list->name.len,
                            (int) with_body, &argv)
        == TRL_OK)
    {
        wait = with_body ? NGX_HTTP_TRL_REP_BODY_WAIT
                         : NGX_HTTP_TRL_REP_READ_WAIT;

        rv = ngx_http_trl_script_eval(TRL_SCRIPT_REP_READ, 1, &argv,
                                      ngx_max(rc->timeout, wait),
                                      ngx_http_trl_rep_read_reply, call);
    }

    if (rv != NGX_OK) {
        ngx_free(call);             /* the link down: the next poll */
        return NGX_ERROR;
    }

    ngx_http_trl_rep_busy[list->slot] = 1;

    return NGX_OK;
}


/*
 * A reply's list, its call no longer in flight; NULL (the call freed) when
 * the worker is exiting, or there is no answer or an error reply: the link
 * logs those, and the next poll tries again (an upload stays unpublished).
 */

static ngx_http_trl_rep_list_t *
ngx_http_trl_rep_reply_list(redisReply *reply, ngx_http_trl_rep_call_t *call)
{
    if (ngx_http_trl_rep_sync_rcf == NULL) {
        ngx_free(call);                     /* exiting */
        return NULL;
    }

    ngx_http_trl_rep_busy[call->list->slot] = 0;

    if (reply == NULL || reply->type == REDIS_REPLY_ERROR) {
        ngx_free(call);
        return NULL;
    }

    return call->list;
}


static void
ngx_http_trl_rep_read_reply(redisReply *reply, void *data)
{
    ngx_http_trl_rep_call_t  *call = data;

    trl_rep_t                *rep;
    trl_rep_remote_t          remote;
    trl_rep_list_info_t       info;
    ngx_http_trl_rep_list_t  *list;

    list = ngx_http_trl_rep_reply_list(reply, call);
    if (list == NULL) {
        return;
    }

    rep = ngx_http_trl_rep_sync_rcf->rep;

    if (ngx_http_trl_rep_remote(reply, call->with_body ? 3 : 2, &remote)
        != NGX_OK)
    {
        ngx_http_trl_redis_unexpected(TRL_SCRIPT_REP_READ);
        ngx_free(call);
        return;
    }

    trl_rep_seen(rep, (int) list->slot, remote.version, remote.checksum);

    if (trl_rep_info(rep, (int) list->slot, &info) != TRL_OK
        || info.unpublished)
    {
        ngx_free(call);         /* an upload meanwhile: it goes to Redis */
        return;
    }

    if (!remote.present) {

        /* Redis lost the list (a restart, a flush): this node has it */

        if (info.version) {
            ngx_http_trl_rep_table(list, info.version,
                                   NGX_HTTP_TRL_REP_AGAIN);
        }

        ngx_free(call);
        return;
    }

    if (remote.version == info.version
        || ngx_http_trl_rep_failed(&info, remote.version))
    {
        ngx_free(call);
        return;
    }

    if (!call->with_body) {
        (void) ngx_http_trl_rep_read(list, 1);
        ngx_free(call);
        return;
    }

    ngx_http_trl_rep_adopt(list, &remote);
    ngx_free(call);
}


/* Redis's upload, to be installed off the event loop. */

static void
ngx_http_trl_rep_adopt(ngx_http_trl_rep_list_t *list,
    trl_rep_remote_t *remote)
{
    uint64_t                *version;
    ngx_http_trl_rep_job_t  *job;

    /* the job, Redis's version (job->version becomes the one kept when
     * the load fails), the body */

    job = ngx_calloc(sizeof(ngx_http_trl_rep_job_t) + sizeof(uint64_t)
                     + remote->body.len + 1, ngx_http_trl_rep_sync_log);
    if (job == NULL) {
        return;                                 /* the next poll */
    }

    version = (uint64_t *) (job + 1);
    *version = remote->version;

    job->rcf = ngx_http_trl_rep_sync_rcf;
    job->list = list;
    job->data = version;
    job->text = (u_char *) (version + 1);
    job->len = remote->body.len;
    ngx_memcpy(job->text, remote->body.data, remote->body.len);
    job->wire = 1;
    job->origin = "redis";
    job->version = remote->version;
    job->done = ngx_http_trl_rep_adopted;

    ngx_http_trl_rep_busy[list->slot] = 1;

    if (ngx_http_trl_rep_job_post(job, ngx_http_trl_rep_sync_log) != NGX_OK) {
        ngx_http_trl_rep_busy[list->slot] = 0;
        ngx_free(job);                          /* the next poll */
    }
}


static void
ngx_http_trl_rep_adopted(ngx_http_trl_rep_job_t *job)
{
    u_char                    why[NGX_MAX_ERROR_STR];
    uint64_t                  remote;
    trl_rep_t                *rep;
    ngx_http_trl_rep_list_t  *list;

    list = job->list;

    if (ngx_http_trl_rep_sync_rcf == NULL) {
        ngx_free(job);                          /* exiting */
        return;
    }

    ngx_http_trl_rep_busy[list->slot] = 0;
    rep = ngx_http_trl_rep_sync_rcf->rep;

    if (job->rc == NGX_OK) {
        ngx_log_error(NGX_LOG_NOTICE, ngx_http_trl_rep_sync_log, 0,
                      "token_ratelimit_reputation_list \"%V\": version %uL "
                      "from Redis installed: %uL IPv4 and %uL IPv6 ranges "
                      "in %M ms", &list->name, job->version,
                      job->info.ranges4, job->info.ranges6, job->took);
        ngx_free(job);
        return;
    }

    /* kept in the table: no worker fetches this version again */

    remote = *(uint64_t *) job->data;

    *ngx_snprintf(why, sizeof(why) - 1, "redis version %uL: %s",
                  remote, job->err) = '\0';

    trl_rep_set_error(rep, (int) list->slot, (char *) why,
                      ngx_http_trl_wall_ms());

    ngx_log_error(NGX_LOG_ERR, ngx_http_trl_rep_sync_log, 0,
                  "token_ratelimit_reputation_list \"%V\": version %uL from "
                  "Redis not installed: %s; keeping version %uL",
                  &list->name, remote, job->err, job->version);

    ngx_free(job);
}


/* A version of Redis that failed here already (the table says why). */

static ngx_uint_t
ngx_http_trl_rep_failed(trl_rep_list_info_t *info, uint64_t version)
{
    u_char  head[64], *p;

    p = ngx_sprintf(head, "redis version %uL:", version);

    return ngx_strncmp(info->error, head, p - head) == 0;
}


/* Sends the publish script: the wire form of build, as version. */

static ngx_int_t
ngx_http_trl_rep_send(ngx_http_trl_rep_list_t *list,
    const trl_rep_build_t *build, uint64_t version, ngx_uint_t why)
{
    char                       *buf;
    size_t                      size;
    u_char                     *body;
    ngx_int_t                   rv;
    trl_argv_t                  argv;
    trl_bytes_t                 args[TRL_REP_PUBLISH_ARGS];
    trl_rep_remote_t            upload;
    trl_rep_build_info_t        bi;
    ngx_http_trl_rep_call_t    *call;
    ngx_http_trl_redis_conf_t  *rc;

    rc = ngx_http_trl_redis_conf();

    size = trl_rep_wire_size(build);

    call = ngx_alloc(sizeof(ngx_http_trl_rep_call_t)
                     + TRL_REP_PUBLISH_BUF(rc->prefix.len),
                     ngx_http_trl_rep_sync_log);
    body = ngx_alloc(size ? size : 1, ngx_http_trl_rep_sync_log);

    if (call == NULL || body == NULL) {
        goto failed;
    }

    call->list = list;
    call->version = version;
    call->why = why;
    call->with_body = 0;

    trl_rep_build_info(build, &bi);

    ngx_memzero(&upload, sizeof(trl_rep_remote_t));
    upload.version = version;
    upload.checksum = bi.checksum;
    upload.body.data = (char *) body;
    upload.body.len = trl_rep_wire_encode(build, body, size);

    buf = (char *) (call + 1);

    trl_argv_init(&argv, args, TRL_REP_PUBLISH_ARGS, buf,
                  TRL_REP_PUBLISH_BUF(rc->prefix.len));

    if (size == 0 || upload.body.len != size
        || trl_rep_publish_encode((char *) rc->prefix.data, rc->prefix.len,
                                  (char *) list->name.data, list->name.len,
                                  &upload, (uint64_t) ngx_time(),
                                  (char *) ngx_cycle->hostname.data,
                                  ngx_cycle->hostname.len, &argv)
           != TRL_OK)
    {
        goto failed;
    }

    /* the link copies the command: the body goes now */

    rv = ngx_http_trl_script_eval(TRL_SCRIPT_REP_PUBLISH, 1, &argv,
                                  ngx_max(rc->timeout,
                                          NGX_HTTP_TRL_REP_BODY_WAIT),
                                  ngx_http_trl_rep_publish_reply, call);
    ngx_free(body);

    if (rv != NGX_OK) {
        ngx_free(call);             /* stays unpublished: the next poll */
        return NGX_ERROR;
    }

    ngx_http_trl_rep_busy[list->slot] = 1;

    return NGX_OK;

failed:

    if (call) {
        ngx_free(call);
    }

    if (body) {
        ngx_free(body);
    }

    return NGX_ERROR;
}


static void
ngx_http_trl_rep_publish_reply(redisReply *reply, void *data)
{
    ngx_http_trl_rep_call_t  *call = data;

    trl_rep_t                *rep;
    trl_rep_remote_t          remote;
    ngx_http_trl_rep_list_t  *list;

    list = ngx_http_trl_rep_reply_list(reply, call);
    if (list == NULL) {
        return;
    }

    rep = ngx_http_trl_rep_sync_rcf->rep;

    if (ngx_http_trl_rep_remote(reply, 2, &remote) != NGX_OK
        || !remote.present)
    {
        ngx_http_trl_redis_unexpected(TRL_SCRIPT_REP_PUBLISH);
        ngx_free(call);
        return;
    }

    trl_rep_seen(rep, (int) list->slot, remote.version, remote.checksum);

    /* Redis has it, or a newer upload that the next poll brings here */

    if (remote.version < call->version) {
        ngx_free(call);
        return;
    }

    trl_rep_published(rep, (int) list->slot, call->version);

    if (remote.version > call->version) {
        ngx_log_error(NGX_LOG_NOTICE, ngx_http_trl_rep_sync_log, 0,
                      "token_ratelimit_reputation_list \"%V\": version %uL "
                      "not published: Redis holds the newer version %uL "
                      "(uploaded on another node), taken next",
                      &list->name, call->version, remote.version);

    } else {
        ngx_log_error(NGX_LOG_NOTICE, ngx_http_trl_rep_sync_log, 0,
                      "token_ratelimit_reputation_list \"%V\": version %uL "
                      "published to Redis%s", &list->name, call->version,
                      call->why == NGX_HTTP_TRL_REP_BACKLOG
                      ? " (uploaded while Redis could not be reached)"
                      : call->why == NGX_HTTP_TRL_REP_AGAIN
                      ? " again (Redis had lost it)" : "");
    }

    ngx_free(call);
}


/* The reply of either script: an array of n elements. */

static ngx_int_t
ngx_http_trl_rep_remote(redisReply *reply, size_t n,
    trl_rep_remote_t *remote)
{
    size_t        i;
    redisReply   *el;
    trl_bytes_t   elements[3];

    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != n || n > 3) {
        return NGX_ERROR;
    }

    for (i = 0; i < n; i++) {
        el = reply->element[i];

        elements[i].data = el->type == REDIS_REPLY_STRING ? el->str : NULL;
        elements[i].len = el->type == REDIS_REPLY_STRING ? el->len : 0;
    }

    return trl_rep_remote_decode(elements, n, remote) == TRL_OK
           ? NGX_OK : NGX_ERROR;
}
