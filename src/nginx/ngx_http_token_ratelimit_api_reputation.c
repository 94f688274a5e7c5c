
/*
 * ngx_http_token_ratelimit_api_reputation.c - token_ratelimit_api: the
 * reputation lists (token_ratelimit_reputation_list).
 *
 *   GET    {loc}/reputation                    the table and every list
 *   GET    {loc}/reputation/NAME               one list
 *   PUT    {loc}/reputation/NAME               the body replaces the list
 *   POST   {loc}/reputation/NAME               the body's entries are added
 *   DELETE {loc}/reputation/NAME               the list is emptied
 *   GET    {loc}/reputation/lookup?address=IP  the lists that hold IP
 *
 * Only lists without file= take PUT, POST and DELETE.  A body (in memory,
 * or in the temporary file nginx wrote) is parsed and installed in a
 * thread of the pool (ngx_http_trl_rep_job_post): the request waits,
 * blocked, and is answered once the job is done, with the list as it is
 * now, or why it was refused (the list keeps what it had).  With
 * token_ratelimit_redis the upload goes to Redis for the other nodes
 * (reputation_sync.c), whether or not the client is still there.
 */


#include "trl_reputation.h"

#include "ngx_http_token_ratelimit.h"
#include "ngx_http_token_ratelimit_api.h"
#include "ngx_http_token_ratelimit_reputation.h"
#include "ngx_http_token_ratelimit_util.h"


static ngx_int_t ngx_http_trl_api_rep_all(ngx_http_request_t *r,
    ngx_http_trl_rep_conf_t *rcf);
static ngx_int_t ngx_http_trl_api_rep_upload(ngx_http_request_t *r);
static void ngx_http_trl_api_rep_body(ngx_http_request_t *r);
static void ngx_http_trl_api_rep_done(ngx_http_trl_rep_job_t *job);
static ngx_int_t ngx_http_trl_api_rep_answer(ngx_http_request_t *r,
    ngx_http_trl_rep_job_t *job);
static ngx_int_t ngx_http_trl_api_rep_lookup(ngx_http_request_t *r,
    ngx_http_trl_rep_conf_t *rcf);
static ngx_int_t ngx_http_trl_api_rep_one(ngx_http_request_t *r,
    ngx_http_trl_rep_conf_t *rcf, ngx_http_trl_rep_list_t *list,
    ngx_uint_t status);
static ngx_http_trl_rep_list_t *ngx_http_trl_api_rep_target(
    ngx_http_request_t *r, ngx_http_trl_rep_conf_t *rcf, ngx_str_t *name);
static void ngx_http_trl_api_rep_list(ngx_http_trl_out_t *out,
    ngx_http_trl_rep_conf_t *rcf, ngx_http_trl_rep_list_t *list);
static void ngx_http_trl_api_rep_names(ngx_http_trl_out_t *out,
    trl_rep_t *rep, uint64_t mask);


/*
 * {loc}/reputation and below: rest is what follows "reputation/".  The
 * router left the body unread: it is read for an upload to an API list,
 * and discarded on every other way.
 */

ngx_int_t
ngx_http_trl_api_reputation(ngx_http_request_t *r,
    ngx_http_trl_main_conf_t *tmcf, ngx_str_t *rest)
{
    ngx_int_t                 rc;
    ngx_http_trl_rep_conf_t  *rcf;
    ngx_http_trl_rep_list_t  *list;

    rcf = tmcf->rep;
    list = NULL;

    if (rcf && rcf->rep && rest->len) {
        list = ngx_http_trl_rep_find(rcf, rest->data, rest->len);
    }

    if (list && list->file.len == 0
        && (r->method & (NGX_HTTP_PUT|NGX_HTTP_POST)))
    {
        return ngx_http_trl_api_rep_upload(r);
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    if (rcf == NULL || rcf->rep == NULL) {
        return ngx_http_trl_out_error(r, NGX_HTTP_NOT_FOUND, "not_found",
                                      "no token_ratelimit_reputation");
    }

    if (rest->len == 0) {
        if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
            return ngx_http_trl_out_not_allowed(r, "GET, HEAD");
        }

        return ngx_http_trl_api_rep_all(r, rcf);
    }

    if (rest->len == 6 && ngx_strncmp(rest->data, "lookup", 6) == 0
        && (r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD)))
    {
        return ngx_http_trl_api_rep_lookup(r, rcf);
    }

    if (list == NULL) {
        return ngx_http_trl_out_error(r, NGX_HTTP_NOT_FOUND,
                                      "list_not_found",
                                      "no such reputation list");
    }

    if (r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD)) {
        return ngx_http_trl_api_rep_one(r, rcf, list, NGX_HTTP_OK);
    }

    if (!(r->method & (NGX_HTTP_PUT|NGX_HTTP_POST|NGX_HTTP_DELETE))) {
        return ngx_http_trl_out_not_allowed(r, "GET, HEAD, PUT, POST, "
                                               "DELETE");
    }

    if (list->file.len) {
        return ngx_http_trl_out_error(r, NGX_HTTP_CONFLICT, "list_from_file",
                                      "the list is loaded from its file: "
                                      "change the file instead");
    }

    /* DELETE: the list emptied, as by a PUT of nothing */

    r->main->count++;                   /* as reading a body does */
    ngx_http_trl_api_rep_body(r);

    return NGX_DONE;
}


/* GET {loc}/reputation */

static ngx_int_t
ngx_http_trl_api_rep_all(ngx_http_request_t *r, ngx_http_trl_rep_conf_t *rcf)
{
    ngx_uint_t                i;
    ngx_http_trl_out_t        out;
    trl_rep_zone_info_t       zi;
    ngx_http_trl_rep_list_t  *lists;

    trl_rep_zone_info(rcf->rep, &zi);

    ngx_http_trl_out_init(&out, r);
    ngx_http_trl_out_printf(&out,
                            "{\"zone\":{\"size\":%uL,\"used\":%uL,"
                            "\"retired\":%uL},\"lists\":[",
                            zi.size, zi.used, zi.retired);

    lists = rcf->lists.elts;

    for (i = 0; i < rcf->lists.nelts; i++) {
        if (i) {
            ngx_http_trl_out_cat(&out, (u_char *) ",", 1);
        }

        ngx_http_trl_api_rep_list(&out, rcf, &lists[i]);
    }

    ngx_http_trl_out_cat(&out, (u_char *) "]}\n", 3);

    return ngx_http_trl_out_send(&out, NGX_HTTP_OK, "application/json");
}


/* PUT, POST: the body first (nginx answers 413 past client_max_body_size) */

static ngx_int_t
ngx_http_trl_api_rep_upload(ngx_http_request_t *r)
{
    ngx_int_t  rc;

    /* a body over the buffer: a temporary file that the loader can open
     * by its name (not unlinked at once), removed with the request */

    r->request_body_in_persistent_file = 1;
    r->request_body_in_clean_file = 1;

    rc = ngx_http_read_client_request_body(r, ngx_http_trl_api_rep_body);

    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        return rc;
    }

    return NGX_DONE;
}


/* The body is in: it goes to a thread, the request waits for it. */

static void
ngx_http_trl_api_rep_body(ngx_http_request_t *r)
{
    u_char                    *p;
    size_t                     len;
    uint64_t                   now_ms;
    ngx_str_t                  name;
    ngx_buf_t                 *b;
    ngx_chain_t               *cl;
    trl_rep_list_info_t        info;
    ngx_http_trl_rep_job_t    *job;
    ngx_http_trl_rep_conf_t   *rcf;
    ngx_http_trl_rep_list_t   *list;
    ngx_http_request_body_t   *rb;
    ngx_http_trl_main_conf_t  *tmcf;

    tmcf = ngx_http_get_module_main_conf(r, ngx_http_token_ratelimit_module);
    rcf = tmcf->rep;

    list = ngx_http_trl_api_rep_target(r, rcf, &name);

    job = ngx_pcalloc(r->pool, sizeof(ngx_http_trl_rep_job_t));

    if (list == NULL || job == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    job->rcf = rcf;
    job->list = list;
    job->merge = (r->method == NGX_HTTP_POST);
    job->origin = "api";
    job->done = ngx_http_trl_api_rep_done;
    job->data = r;

    /* with Redis, the table says "unpublished" until Redis has it */

    if (tmcf->redis) {
        job->unpublished = 1;
        job->keep_build = 1;
    }

    /* the upload's version: its Unix ms, after the list's current one */

    now_ms = ngx_http_trl_wall_ms();

    if (trl_rep_info(rcf->rep, (int) list->slot, &info) != TRL_OK) {
        info.version = 0;
    }

    job->version = ngx_max(now_ms, info.version + 1);

    rb = r->request_body;

    if (r->method == NGX_HTTP_DELETE || rb == NULL) {
        job->text = (u_char *) "";

    } else if (rb->temp_file) {
        job->path = rb->temp_file->file.name;   /* NUL-terminated */

    } else {
        len = 0;

        for (cl = rb->bufs; cl; cl = cl->next) {
            len += ngx_buf_size(cl->buf);
        }

        job->text = ngx_pnalloc(r->pool, len + 1);
        if (job->text == NULL) {
            ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }

        p = job->text;

        for (cl = rb->bufs; cl; cl = cl->next) {
            b = cl->buf;
            p = ngx_cpymem(p, b->pos, b->last - b->pos);
        }

        *p = '\0';
        job->len = len;
    }

    /* as for a thread task of nginx's own: nothing frees the request
     * until the job is done */

    r->main->blocked++;
    r->aio = 1;

    if (ngx_http_trl_rep_job_post(job, r->connection->log) != NGX_OK) {
        r->main->blocked--;
        r->aio = 0;

        ngx_http_finalize_request(r,
            ngx_http_trl_out_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                   "busy", "the list could not be queued "
                                   "for loading; try again"));
    }
}


static void
ngx_http_trl_api_rep_done(ngx_http_trl_rep_job_t *job)
{
    ngx_int_t            rc;
    ngx_connection_t    *c;
    ngx_http_request_t  *r;

    r = job->data;
    c = r->connection;

    ngx_http_set_log_request(c->log, r);

    r->main->blocked--;
    r->aio = 0;

    if (job->rc == NGX_OK) {
        ngx_log_error(NGX_LOG_NOTICE, c->log, 0,
                      "token_ratelimit_reputation_list \"%V\": version %uL "
                      "%s through the API: %uL IPv4 and %uL IPv6 ranges "
                      "in %M ms", &job->list->name, job->version,
                      r->method == NGX_HTTP_PUT ? "uploaded"
                      : r->method == NGX_HTTP_POST ? "appended to"
                      : "emptied", job->info.ranges4, job->info.ranges6,
                      job->took);

        if (job->build) {
            ngx_http_trl_rep_publish(job);  /* the client may be gone */
        }
    }

    if (job->build) {
        trl_rep_build_free(job->build);
        job->build = NULL;
    }

    rc = c->error ? NGX_HTTP_CLIENT_CLOSED_REQUEST
                  : ngx_http_trl_api_rep_answer(r, job);

    ngx_http_finalize_request(r, rc);
    ngx_http_run_posted_requests(c);
}


static ngx_int_t
ngx_http_trl_api_rep_answer(ngx_http_request_t *r,
    ngx_http_trl_rep_job_t *job)
{
    char  *err, *p;

    if (job->rc == NGX_OK) {
        return ngx_http_trl_api_rep_one(r, job->rcf, job->list,
                                        NGX_HTTP_OK);
    }

    err = job->err;

    /* a body read from nginx's temporary file is "body" all the same */

    if (job->path.len
        && ngx_strncmp(err, job->path.data, job->path.len) == 0)
    {
        p = err + job->path.len;
        err = (char *) ngx_pnalloc(r->pool, sizeof("body") + ngx_strlen(p));

        if (err) {
            ngx_sprintf((u_char *) err, "body%s%Z", p);

            /* the table's error too: the temporary file is gone soon */
            trl_rep_set_error(job->rcf->rep, (int) job->list->slot, err,
                              ngx_http_trl_wall_ms());
        } else {
            err = job->err;
        }
    }

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "token_ratelimit_reputation_list \"%V\": an upload "
                  "through the API refused: %s", &job->list->name, err);

    if (job->rc == NGX_DECLINED) {
        return ngx_http_trl_out_error(r, NGX_HTTP_BAD_REQUEST, "bad_list",
                                      err);
    }

    return ngx_http_trl_out_error(r, NGX_HTTP_INSUFFICIENT_STORAGE,
                                  "reputation_full", err);
}


/* GET {loc}/reputation/lookup?address=IP (not counted as a match) */

static ngx_int_t
ngx_http_trl_api_rep_lookup(ngx_http_request_t *r,
    ngx_http_trl_rep_conf_t *rcf)
{
    u_char               *dst, *src, text[NGX_INET6_ADDRSTRLEN];
    size_t                len;
    ngx_str_t             arg, addr;
    trl_cidr_t            cidr;
    trl_rep_match_t       m;
    ngx_http_trl_out_t    out;

    static u_char  v4mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

    if (ngx_http_trl_api_arg(r, "address", &arg) != NGX_OK
        || arg.len == 0 || arg.len > NGX_INET6_ADDRSTRLEN * 3)
    {
        goto bad;
    }

    addr.data = ngx_pnalloc(r->pool, arg.len);
    if (addr.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    dst = addr.data;
    src = arg.data;
    ngx_unescape_uri(&dst, &src, arg.len, 0);
    addr.len = dst - addr.data;

    /* an address, not a range */

    if (ngx_strlchr(addr.data, addr.data + addr.len, '/')
        || trl_cidr_parse((char *) addr.data, addr.len, &cidr, NULL, 0)
           != TRL_OK)
    {
        goto bad;
    }

    /* ::ffff:a.b.c.d is looked up as the client a.b.c.d would be */

    if (cidr.family == 6 && ngx_memcmp(cidr.addr, v4mapped, 12) == 0) {
        ngx_memmove(cidr.addr, cidr.addr + 12, 4);
        cidr.family = 4;
    }

    ngx_memzero(&m, sizeof(trl_rep_match_t));
    (void) trl_rep_lookup(rcf->rep, cidr.family, cidr.addr, &m);

    len = ngx_inet_ntop(cidr.family == 4 ? AF_INET : AF_INET6, cidr.addr,
                        text, sizeof(text));

    ngx_http_trl_out_init(&out, r);
    ngx_http_trl_out_printf(&out, "{\"address\":\"%*s\",\"lists\":", len,
                            text);
    ngx_http_trl_api_rep_names(&out, rcf->rep, m.lists);
    ngx_http_trl_out_cat(&out, (u_char *) ",\"dry_run\":", 11);
    ngx_http_trl_api_rep_names(&out, rcf->rep, m.dry_run);
    ngx_http_trl_out_printf(&out, ",\"score\":%uD}\n", m.score);

    return ngx_http_trl_out_send(&out, NGX_HTTP_OK, "application/json");

bad:

    return ngx_http_trl_out_error(r, NGX_HTTP_BAD_REQUEST, "bad_request",
                                  "address= must be an IPv4 or IPv6 "
                                  "address");
}


static ngx_int_t
ngx_http_trl_api_rep_one(ngx_http_request_t *r, ngx_http_trl_rep_conf_t *rcf,
    ngx_http_trl_rep_list_t *list, ngx_uint_t status)
{
    ngx_http_trl_out_t  out;

    ngx_http_trl_out_init(&out, r);
    ngx_http_trl_api_rep_list(&out, rcf, list);
    ngx_http_trl_out_cat(&out, (u_char *) "\n", 1);

    return ngx_http_trl_out_send(&out, status, "application/json");
}


/* The list a request names: ".../reputation/NAME" at the end of its URI. */

static ngx_http_trl_rep_list_t *
ngx_http_trl_api_rep_target(ngx_http_request_t *r,
    ngx_http_trl_rep_conf_t *rcf, ngx_str_t *name)
{
    u_char  *p, *end;

    end = r->uri.data + r->uri.len;

    while (end > r->uri.data && end[-1] == '/') {
        end--;
    }

    p = end;

    while (p > r->uri.data && p[-1] != '/') {
        p--;
    }

    name->data = p;
    name->len = end - p;

    return ngx_http_trl_rep_find(rcf, name->data, name->len);
}


static void
ngx_http_trl_api_rep_list(ngx_http_trl_out_t *out,
    ngx_http_trl_rep_conf_t *rcf, ngx_http_trl_rep_list_t *list)
{
    trl_rep_list_info_t  info;

    ngx_http_trl_out_cat(out, (u_char *) "{\"name\":", 8);
    ngx_http_trl_out_json(out, list->name.data, list->name.len);

    if (list->slot < 0
        || trl_rep_info(rcf->rep, (int) list->slot, &info) != TRL_OK)
    {
        ngx_memzero(&info, sizeof(trl_rep_list_info_t));
        info.score = (uint32_t) list->score;
        info.flags = (uint32_t) list->flags;
    }

    ngx_http_trl_out_printf(out,
                            ",\"score\":%uD,\"dry_run\":%s,\"source\":\"%s\","
                            "\"file\":",
                            info.score,
                            (info.flags & TRL_REP_DRY_RUN) ? "true" : "false",
                            list->file.len ? "file" : "api");

    if (list->file.len) {
        ngx_http_trl_out_json(out, list->file.data, list->file.len);
    } else {
        ngx_http_trl_out_cat(out, (u_char *) "null", 4);
    }

    ngx_http_trl_out_printf(out, ",\"version\":%uL,\"checksum\":",
                            info.version);

    if (info.version) {
        ngx_http_trl_out_printf(out, "\"%016xL\"", info.checksum);
    } else {
        ngx_http_trl_out_cat(out, (u_char *) "null", 4);
    }

    ngx_http_trl_out_printf(out,
                            ",\"ranges4\":%uL,\"ranges6\":%uL,\"entries\":%uL,"
                            "\"bytes\":%uL,\"dropped\":{\"trusted\":%uL,"
                            "\"wide\":%uL,\"example\":",
                            info.ranges4, info.ranges6, info.entries,
                            info.bytes, info.dropped_trusted,
                            info.dropped_wide);

    if (info.dropped_example[0]) {
        ngx_http_trl_out_json(out, (u_char *) info.dropped_example,
                              ngx_strnlen((u_char *) info.dropped_example,
                                          sizeof(info.dropped_example)));
    } else {
        ngx_http_trl_out_cat(out, (u_char *) "null", 4);
    }

    ngx_http_trl_out_cat(out, (u_char *) "},\"loaded\":", 11);

    if (info.loaded_ms) {
        ngx_http_trl_out_printf(out, "%uL", info.loaded_ms / 1000);
    } else {
        ngx_http_trl_out_cat(out, (u_char *) "null", 4);
    }

    ngx_http_trl_out_printf(out, ",\"load_ms\":%uL,\"matched\":%uL,"
                            "\"origin\":", info.load_ms, info.matched);

    if (info.origin[0]) {
        ngx_http_trl_out_json(out, (u_char *) info.origin,
                              ngx_strnlen((u_char *) info.origin,
                                          sizeof(info.origin)));
    } else {
        ngx_http_trl_out_cat(out, (u_char *) "null", 4);
    }

    ngx_http_trl_out_cat(out, (u_char *) ",\"error\":", 9);

    if (info.error[0]) {
        ngx_http_trl_out_cat(out, (u_char *) "{\"message\":", 11);
        ngx_http_trl_out_json(out, (u_char *) info.error,
                              ngx_strnlen((u_char *) info.error,
                                          sizeof(info.error)));
        ngx_http_trl_out_printf(out, ",\"at\":%uL}", info.error_ms / 1000);
    } else {
        ngx_http_trl_out_cat(out, (u_char *) "null", 4);
    }

    ngx_http_trl_out_printf(out, ",\"unpublished\":%s,\"redis\":",
                            info.unpublished ? "true" : "false");

    /* what Redis held at the last poll (API lists with Redis only) */

    if (info.redis_version) {
        ngx_http_trl_out_printf(out,
                                "{\"version\":%uL,\"checksum\":\"%016xL\"}}",
                                info.redis_version, info.redis_checksum);
    } else {
        ngx_http_trl_out_cat(out, (u_char *) "null}", 5);
    }
}


/* ["a","b"]: the names of the slots of mask */

static void
ngx_http_trl_api_rep_names(ngx_http_trl_out_t *out, trl_rep_t *rep,
    uint64_t mask)
{
    u_char  buf[TRL_REP_MAX_LISTS * TRL_REP_NAME_LEN], *p, *end, *comma;
    size_t  len;

    len = mask ? trl_rep_names(rep, mask, (char *) buf, sizeof(buf)) : 0;
    len = ngx_min(len, sizeof(buf));

    ngx_http_trl_out_cat(out, (u_char *) "[", 1);

    p = buf;
    end = buf + len;

    while (p < end) {
        comma = ngx_strlchr(p, end, ',');

        if (comma == NULL) {
            comma = end;
        }

        if (p != buf) {
            ngx_http_trl_out_cat(out, (u_char *) ",", 1);
        }

        ngx_http_trl_out_json(out, p, comma - p);
        p = comma + 1;
    }

    ngx_http_trl_out_cat(out, (u_char *) "]", 1);
}
