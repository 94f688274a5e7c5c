
/*
 * ngx_http_token_ratelimit_redis_cmd.c - the scripts sent over a link:
 * EVALSHA formatted here in Redis' protocol (hiredis' own formatting costs
 * more than the rest of a publish), EVAL once should Redis have lost the
 * script (NOSCRIPT), each command answered exactly once, and a watchdog
 * on the oldest command's deadline.  With cluster=, the link is the one of
 * the master of the first key's slot, and a redirection is followed
 * (redis_cluster.c).
 */


#include "ngx_http_token_ratelimit_redis_link.h"


static ngx_int_t ngx_http_trl_redis_send(ngx_http_trl_link_t *link,
    ngx_http_trl_cmd_t *cmd, u_char *resp, size_t len);
static ngx_int_t ngx_http_trl_redis_send_eval(ngx_http_trl_link_t *link,
    ngx_http_trl_cmd_t *cmd);
static void ngx_http_trl_redis_reply(redisAsyncContext *ac, void *r,
    void *privdata);
static u_char *ngx_http_trl_resp_bulk(u_char *p, u_char *data, size_t len);
static u_char *ngx_http_trl_resp_uint(u_char *p, size_t n);


static ngx_http_trl_link_t   *ngx_http_trl_replying;    /* its handler runs */
static ngx_http_trl_route_pt  ngx_http_trl_route;




/* who routes a script to its link: the topology, once set up */

void
ngx_http_trl_redis_route(ngx_http_trl_route_pt route)
{
    ngx_http_trl_route = route;
}


/*
 * Runs a script: EVALSHA, and EVAL once should Redis have lost it
 * (NOSCRIPT, after a restart or SCRIPT FLUSH).  args are the keys, then
 * the other arguments.  The handler is called exactly once: with the
 * reply (an error reply included), or with NULL when the link failed or
 * the deadline passed.  Returns NGX_DECLINED when the link is not ready
 * (with cluster=, the link to the master of the first key's slot).
 */

ngx_int_t
ngx_http_trl_redis_eval(ngx_uint_t script, ngx_uint_t nkeys, ngx_str_t *args,
    ngx_uint_t nargs, ngx_msec_t timeout, ngx_http_trl_reply_pt handler,
    void *data)
{
    u_char               *p, num[2 * NGX_INT_T_LEN];
    size_t                size, head, numlen;
    ngx_uint_t            i;
    ngx_http_trl_cmd_t   *cmd;
    ngx_http_trl_link_t  *link;

    link = ngx_http_trl_route ? ngx_http_trl_route(&args[0]) : NULL;

    if (link == NULL || link->state != NGX_HTTP_TRL_LINK_READY) {
        return NGX_DECLINED;
    }

    /*
     * One allocation: the command, then the request in Redis' protocol,
     * formatted here (hiredis' own formatting costs more than the rest of
     * a publish): "*argc", EVALSHA and the script's SHA1 (head), then
     * numkeys and the arguments (tail), each "$len\r\nbytes\r\n".
     */

    numlen = ngx_http_trl_resp_uint(num, nkeys) - num;

    head = ngx_http_trl_resp_uint(num + numlen, nargs + 3) - (num + numlen)
           + sizeof("*\r\n$7\r\nEVALSHA\r\n$40\r\n\r\n") - 1 + 40;

    size = sizeof(ngx_http_trl_cmd_t) + head
           + (nargs + 1) * (sizeof("$\r\n\r\n") - 1 + NGX_SIZE_T_LEN)
           + numlen;

    for (i = 0; i < nargs; i++) {
        size += args[i].len;
    }

    cmd = ngx_alloc(size, link->log);
    if (cmd == NULL) {
        return NGX_ERROR;
    }

    cmd->handler = handler;
    cmd->data = data;
    cmd->script = script;
    cmd->retried = 0;
    cmd->asking = 0;
    cmd->redirects = 0;
    cmd->argc = nargs + 3;

    p = (u_char *) (cmd + 1);
    cmd->resp = p;

    *p++ = '*';
    p = ngx_http_trl_resp_uint(p, cmd->argc);
    p = ngx_cpymem(p, "\r\n$7\r\nEVALSHA\r\n", sizeof("\r\n$7\r\nEVALSHA\r\n") - 1);
    p = ngx_http_trl_resp_bulk(p, link->sha[script], 40);

    cmd->tail = p;
    p = ngx_http_trl_resp_bulk(p, num, numlen);

    for (i = 0; i < nargs; i++) {
        p = ngx_http_trl_resp_bulk(p, args[i].data, args[i].len);
    }

    cmd->tail_len = p - cmd->tail;
    cmd->resp_len = p - cmd->resp;

    cmd->deadline = ngx_current_msec + timeout;

    ngx_log_debug5(NGX_LOG_DEBUG_EVENT, link->log, 0,
                   "token_ratelimit: redis %V: script %ui, %ui keys, "
                   "%uz bytes, deadline in %M ms", &link->name, script,
                   nkeys, cmd->resp_len, timeout);
    cmd->timeout = timeout;

    if (ngx_http_trl_redis_send(link, cmd, cmd->resp, cmd->resp_len)
        != NGX_OK)
    {
        ngx_free(cmd);
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* "$len\r\ndata\r\n" */

static u_char *
ngx_http_trl_resp_bulk(u_char *p, u_char *data, size_t len)
{
    *p++ = '$';
    p = ngx_http_trl_resp_uint(p, len);
    *p++ = CR; *p++ = LF;
    p = ngx_cpymem(p, data, len);
    *p++ = CR; *p++ = LF;

    return p;
}


/* n in decimal (ngx_sprintf's general path costs several times more) */

static u_char *
ngx_http_trl_resp_uint(u_char *p, size_t n)
{
    u_char  tmp[NGX_SIZE_T_LEN], *t;

    t = tmp + NGX_SIZE_T_LEN;

    do {
        *--t = (u_char) ('0' + n % 10);
        n /= 10;
    } while (n);

    return ngx_cpymem(p, t, tmp + NGX_SIZE_T_LEN - t);
}


/* hiredis copies the request into its output buffer */

static ngx_int_t
ngx_http_trl_redis_send(ngx_http_trl_link_t *link, ngx_http_trl_cmd_t *cmd,
    u_char *resp, size_t len)
{
    if (redisAsyncFormattedCommand(link->ac, ngx_http_trl_redis_reply, cmd,
                                   (char *) resp, len)
        != REDIS_OK)
    {
        return NGX_ERROR;
    }

    ngx_queue_insert_tail(&link->cmds, &cmd->queue);

    if (!link->watchdog.timer_set) {
        ngx_http_trl_redis_arm(link);
    }

    return NGX_OK;
}


/* the script unknown to Redis (NOSCRIPT): the same request as EVAL */

static ngx_int_t
ngx_http_trl_redis_send_eval(ngx_http_trl_link_t *link,
    ngx_http_trl_cmd_t *cmd)
{
    u_char     *p, *resp;
    size_t      len;
    ngx_int_t   rc;
    const char *body;

    body = trl_redis_script((int) cmd->script);
    len = ngx_strlen(body);

    resp = ngx_alloc(sizeof("*\r\n$4\r\nEVAL\r\n$\r\n\r\n") - 1
                     + 2 * NGX_SIZE_T_LEN + len + cmd->tail_len, link->log);
    if (resp == NULL) {
        return NGX_ERROR;
    }

    p = resp;
    *p++ = '*';
    p = ngx_http_trl_resp_uint(p, cmd->argc);
    p = ngx_cpymem(p, "\r\n$4\r\nEVAL\r\n", sizeof("\r\n$4\r\nEVAL\r\n") - 1);
    p = ngx_http_trl_resp_bulk(p, (u_char *) body, len);
    p = ngx_cpymem(p, cmd->tail, cmd->tail_len);

    /* an ASK target takes the EVAL too only right after ASKING */

    if (cmd->asking
        && redisAsyncCommand(link->ac, NULL, NULL, "ASKING") != REDIS_OK)
    {
        ngx_free(resp);
        return NGX_ERROR;
    }

    rc = ngx_http_trl_redis_send(link, cmd, resp, p - resp);

    ngx_free(resp);

    return rc;
}


/*
 * Sends a command that another link gave up (a redirection): ASK wants
 * ASKING right before it.  NOSCRIPT may come again from this node.
 */

ngx_int_t
ngx_http_trl_link_send(ngx_http_trl_link_t *link, ngx_http_trl_cmd_t *cmd,
    ngx_uint_t asking)
{
    if (link->state != NGX_HTTP_TRL_LINK_READY) {
        return NGX_DECLINED;
    }

    if (asking
        && redisAsyncCommand(link->ac, NULL, NULL, "ASKING") != REDIS_OK)
    {
        return NGX_ERROR;
    }

    cmd->retried = 0;
    cmd->asking = asking ? 1 : 0;

    return ngx_http_trl_redis_send(link, cmd, cmd->resp, cmd->resp_len);
}


static void
ngx_http_trl_redis_reply(redisAsyncContext *ac, void *r, void *privdata)
{
    ngx_uint_t            script, error;
    redisReply           *reply = r;
    ngx_http_trl_cmd_t   *cmd = privdata;
    ngx_http_trl_link_t  *link = ac->data;

    static const char  *names[TRL_SCRIPTS] = {
        "publish", "strict decision", "release", "reset", "lists",
        "async decision", "distinct decision", "reputation read",
        "reputation publish", "attack mode"
    };

    ngx_queue_remove(&cmd->queue);
    link->last_reply = ngx_current_msec;

    if (reply && reply->type == REDIS_REPLY_ERROR && !cmd->retried
        && ngx_strncmp(reply->str, "NOSCRIPT", 8) == 0
        && link->state == NGX_HTTP_TRL_LINK_READY)
    {
        cmd->retried = 1;

        if (ngx_http_trl_redis_send_eval(link, cmd) == NGX_OK) {
            return;
        }

        reply = NULL;
    }

    /* cluster=: MOVED and ASK are followed, TRYAGAIN answered with NULL */

    if (reply && reply->type == REDIS_REPLY_ERROR && link->hooks
        && link->state == NGX_HTTP_TRL_LINK_READY
        && link->hooks->redirect(link, cmd, reply))
    {
        return;
    }

    script = cmd->script;

    ngx_log_debug3(NGX_LOG_DEBUG_EVENT, link->log, 0,
                   "token_ratelimit: redis %V: script %ui answered%s",
                   &link->name, script,
                   reply == NULL ? ": none (link down)"
                   : reply->type == REDIS_REPLY_ERROR ? ": an error" : "");
    error = reply && reply->type == REDIS_REPLY_ERROR;

    link->unexpected = 0;
    ngx_http_trl_replying = link;

    cmd->handler(reply, cmd->data);
    ngx_free(cmd);

    ngx_http_trl_replying = NULL;

    /*
     * A refusal takes the link down (the handler has had the error reply;
     * the commands outstanding get NULL): the set-up probes Redis again.
     */

    if (reply == NULL || link->state != NGX_HTTP_TRL_LINK_READY) {
        return;
    }

    if (error) {
        ngx_http_trl_redis_refused(link, names[script], reply->str,
                                   reply->len);
        return;
    }

    if (link->unexpected) {
        ngx_http_trl_redis_refused(link, names[script], "unexpected answer",
                                   sizeof("unexpected answer") - 1);
        return;
    }

    ngx_http_trl_redis_served(link);

    /* the watchdog, if set, looks at the next command when it fires */
}


/*
 * A reply that a handler could not read: a refusal (by script:
 * "unexpected answer"), once the handler returns.
 */

void
ngx_http_trl_redis_unexpected(ngx_uint_t script)
{
    if (ngx_http_trl_replying) {
        ngx_http_trl_replying->unexpected = 1;
    }
}
