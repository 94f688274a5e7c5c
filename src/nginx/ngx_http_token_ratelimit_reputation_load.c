
/*
 * ngx_http_token_ratelimit_reputation_load.c - a list loaded off the event
 * loop: the file read (or the text or wire form given), parsed, merged with
 * the current ranges when asked, and installed, in a thread of the pool
 * named by token_ratelimit_reputation thread_pool=; the job's done handler
 * then runs on the event loop.  Without threads the work is done inline.
 * The master runs the same work at start and at reload.
 */


#include "ngx_http_token_ratelimit.h"
#include "ngx_http_token_ratelimit_reputation.h"

#if (NGX_THREADS)
#include <ngx_thread_pool.h>
#endif


/* A list file larger than this is refused (1M ranges take ~20 MB). */
#define NGX_HTTP_TRL_REP_FILE_MAX  (512 * 1024 * 1024)


typedef struct {
#if (NGX_THREADS)
    ngx_thread_task_t           task;
#endif
    ngx_http_trl_rep_job_t     *job;
} ngx_http_trl_rep_task_t;


static ngx_int_t ngx_http_trl_rep_read(ngx_http_trl_rep_job_t *job,
    u_char **text, size_t *len);
static void ngx_http_trl_rep_file_id(ngx_file_info_t *fi,
    trl_rep_file_id_t *id);
static uint64_t ngx_http_trl_rep_now_ms(void);
static uint64_t ngx_http_trl_rep_mono_ms(void);
#if (NGX_THREADS)
static void ngx_http_trl_rep_thread(void *data, ngx_log_t *log);
static void ngx_http_trl_rep_thread_done(ngx_event_t *ev);
#endif


ngx_int_t
ngx_http_trl_rep_job_post(ngx_http_trl_rep_job_t *job, ngx_log_t *log)
{
#if (NGX_THREADS)
    ngx_http_trl_rep_task_t  *t;

    if (job->rcf->thread_pool) {
        t = ngx_calloc(sizeof(ngx_http_trl_rep_task_t), log);
        if (t == NULL) {
            return NGX_ERROR;
        }

        t->job = job;
        t->task.ctx = t;
        t->task.handler = ngx_http_trl_rep_thread;
        t->task.event.data = t;
        t->task.event.handler = ngx_http_trl_rep_thread_done;
        t->task.event.log = log;

        if (ngx_thread_task_post(job->rcf->thread_pool, &t->task) != NGX_OK)
        {
            ngx_free(t);
            return NGX_ERROR;
        }

        return NGX_OK;
    }
#endif

    ngx_http_trl_rep_job_run(job);
    job->done(job);

    return NGX_OK;
}


#if (NGX_THREADS)

static void
ngx_http_trl_rep_thread(void *data, ngx_log_t *log)
{
    ngx_http_trl_rep_task_t *t = data;

    ngx_http_trl_rep_job_run(t->job);
}


static void
ngx_http_trl_rep_thread_done(ngx_event_t *ev)
{
    ngx_http_trl_rep_task_t *t = ev->data;

    ngx_http_trl_rep_job_t  *job;

    job = t->job;
    ngx_free(t);

    job->done(job);
}

#endif


/*
 * The work: no nginx pool, no log (threads may not use them): the outcome
 * is in job->rc, err, info, version and took.
 */

void
ngx_http_trl_rep_job_run(ngx_http_trl_rep_job_t *job)
{
    int                   slot;
    u_char               *text;
    size_t                len;
    uint64_t              start;
    const char           *source;
    trl_rep_t            *rep;
    trl_rep_build_t      *b, *cur, *merged;
    trl_rep_list_info_t   li;

    start = ngx_http_trl_rep_mono_ms();
    rep = job->rcf->rep;
    slot = (int) job->list->slot;
    text = job->text;
    len = job->len;
    b = NULL;

    job->rc = NGX_DECLINED;
    job->err[0] = '\0';

    if (text == NULL && job->path.len) {
        if (ngx_http_trl_rep_read(job, &text, &len) != NGX_OK) {
            goto failed;
        }
    }

    if (job->wire) {
        b = trl_rep_wire_decode(text, len, job->err, sizeof(job->err));

    } else {
        source = job->path.len ? (const char *) job->path.data : "body";
        b = trl_rep_parse((const char *) text, len, source,
                          &job->rcf->rules, job->err, sizeof(job->err));
    }

    if (text != job->text) {
        free(text);
    }

    if (b == NULL) {
        goto failed;
    }

    if (job->merge) {
        cur = trl_rep_extract(rep, slot);

        if (cur) {
            merged = trl_rep_merge(cur, b);
            trl_rep_build_free(cur);

            if (merged == NULL) {
                job->rc = NGX_ERROR;
                ngx_cpystrn((u_char *) job->err, (u_char *) "no memory",
                            sizeof(job->err));
                goto failed;
            }

            trl_rep_build_free(b);
            b = merged;
        }
    }

    trl_rep_build_info(b, &job->info);

    if (trl_rep_install(rep, slot, b, job->version, job->origin,
                        job->unpublished ? TRL_REP_UNPUBLISHED : 0,
                        ngx_http_trl_rep_now_ms(), job->err,
                        sizeof(job->err))
        != TRL_OK)
    {
        job->rc = NGX_ERROR;
        goto failed;
    }

    job->rc = NGX_OK;
    job->took = (ngx_msec_t) (ngx_http_trl_rep_mono_ms() - start);

    trl_rep_set_load_ms(rep, slot, job->took);
    trl_rep_set_error(rep, slot, "", ngx_http_trl_rep_now_ms());

    if (trl_rep_info(rep, slot, &li) == TRL_OK) {
        job->version = li.version;
    }

    if (job->keep_build) {
        job->build = b;

    } else {
        trl_rep_build_free(b);
    }

    return;

failed:

    trl_rep_build_free(b);

    job->took = (ngx_msec_t) (ngx_http_trl_rep_mono_ms() - start);

    trl_rep_set_error(rep, slot, job->err, ngx_http_trl_rep_now_ms());

    if (trl_rep_info(rep, slot, &li) == TRL_OK) {
        job->version = li.version;          /* the version kept */
    }
}


/* The whole file into malloc()ed memory; job->err on failure. */

static ngx_int_t
ngx_http_trl_rep_read(ngx_http_trl_rep_job_t *job, u_char **text,
    size_t *len)
{
    u_char           *buf, errstr[NGX_MAX_ERROR_STR], *p;
    size_t            size, got;
    ssize_t           n;
    ngx_fd_t          fd;
    ngx_err_t         err;
    const char       *what;
    ngx_file_info_t   fi;

    buf = NULL;
    what = "cannot open";

    fd = ngx_open_file(job->path.data, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);
    if (fd == NGX_INVALID_FILE) {
        goto failed;
    }

    what = "cannot read";

    if (ngx_fd_info(fd, &fi) == NGX_FILE_ERROR) {
        goto failed;
    }

    size = (size_t) ngx_file_size(&fi);

    if (size > NGX_HTTP_TRL_REP_FILE_MAX) {
        ngx_snprintf((u_char *) job->err, sizeof(job->err) - 1,
                     "%V: the file is larger than 512m%Z", &job->path);
        (void) ngx_close_file(fd);
        return NGX_ERROR;
    }

    buf = malloc(size + 1);
    if (buf == NULL) {
        goto failed;
    }

    for (got = 0; got < size; got += (size_t) n) {
        n = read(fd, buf + got, size - got);

        if (n == -1) {
            if (ngx_errno == NGX_EINTR) {
                n = 0;
                continue;
            }

            goto failed;
        }

        if (n == 0) {
            break;                          /* cut meanwhile */
        }
    }

    (void) ngx_close_file(fd);

    ngx_http_trl_rep_file_id(&fi, &job->file_id);

    *text = buf;
    *len = got;

    return NGX_OK;

failed:

    err = ngx_errno;

    if (fd != NGX_INVALID_FILE) {
        (void) ngx_close_file(fd);
    }

    free(buf);

    p = ngx_strerror(err, errstr, sizeof(errstr));

    ngx_snprintf((u_char *) job->err, sizeof(job->err) - 1, "%V: %s: %*s%Z",
                 &job->path, what, (size_t) (p - errstr), errstr);

    return NGX_ERROR;
}


ngx_int_t
ngx_http_trl_rep_file_stat(ngx_str_t *path, trl_rep_file_id_t *id)
{
    ngx_file_info_t  fi;

    ngx_memzero(id, sizeof(trl_rep_file_id_t));

    if (ngx_file_info(path->data, &fi) == NGX_FILE_ERROR) {
        return NGX_ERROR;
    }

    ngx_http_trl_rep_file_id(&fi, id);

    return NGX_OK;
}


static void
ngx_http_trl_rep_file_id(ngx_file_info_t *fi, trl_rep_file_id_t *id)
{
    id->dev = (uint64_t) fi->st_dev;
    id->ino = (uint64_t) fi->st_ino;
    id->size = (uint64_t) fi->st_size;
    id->mtime_ns = (int64_t) fi->st_mtim.tv_sec * 1000000000
                   + fi->st_mtim.tv_nsec;
}


/* Threads do not read nginx's cached time. */

static uint64_t
ngx_http_trl_rep_now_ms(void)
{
    struct timeval  tv;

    ngx_gettimeofday(&tv);

    return (uint64_t) tv.tv_sec * 1000 + tv.tv_usec / 1000;
}


static uint64_t
ngx_http_trl_rep_mono_ms(void)
{
    struct timespec  ts;

    (void) clock_gettime(CLOCK_MONOTONIC, &ts);

    return (uint64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
