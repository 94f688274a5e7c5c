
/*
 * ngx_http_token_ratelimit_reputation_watch.c - the file lists, checked
 * without a reload: a timer in every worker, of which one per check=
 * interval (trl_rep_due) stat()s each file; a file whose identity changed
 * (trl_rep_file_changed: device, inode, size, mtime) is loaded in a thread
 * (ngx_http_trl_rep_job_post), and the outcome is logged once, by the
 * worker that loaded it.  The same timer frees the memory of generations
 * retired long enough ago.
 */


#include "ngx_http_token_ratelimit.h"
#include "ngx_http_token_ratelimit_util.h"
#include "ngx_http_token_ratelimit_reputation.h"


static void ngx_http_trl_rep_watch_handler(ngx_event_t *ev);
static void ngx_http_trl_rep_check(ngx_http_trl_rep_conf_t *rcf,
    ngx_log_t *log);
static void ngx_http_trl_rep_file_done(ngx_http_trl_rep_job_t *job);


static ngx_event_t               ngx_http_trl_rep_watch;
static ngx_http_trl_rep_conf_t  *ngx_http_trl_rep_watched;
static ngx_uint_t                ngx_http_trl_rep_exiting;

/* a job in flight per slot: a file is not loaded twice at once */
static u_char                    ngx_http_trl_rep_busy[TRL_REP_MAX_LISTS];


ngx_int_t
ngx_http_trl_rep_init_process(ngx_cycle_t *cycle)
{
    ngx_http_trl_rep_conf_t   *rcf;
    ngx_http_trl_main_conf_t  *tmcf;

    tmcf = ngx_http_cycle_get_module_main_conf(cycle,
                                               ngx_http_token_ratelimit_module);

    if (tmcf == NULL || tmcf->rep == NULL || tmcf->rep->rep == NULL) {
        return NGX_OK;
    }

    rcf = tmcf->rep;

    ngx_http_trl_rep_watched = rcf;
    ngx_http_trl_rep_exiting = 0;

    ngx_http_trl_rep_watch.handler = ngx_http_trl_rep_watch_handler;
    ngx_http_trl_rep_watch.data = &ngx_http_trl_dumb_connection;
    ngx_http_trl_rep_watch.log = cycle->log;
    ngx_http_trl_rep_watch.cancelable = 1;

    /* the workers' timers spread over the interval */

    ngx_add_timer(&ngx_http_trl_rep_watch,
                  rcf->check / 2 + (ngx_msec_t) ngx_random() % rcf->check);

    return NGX_OK;
}


void
ngx_http_trl_rep_exit_process(ngx_cycle_t *cycle)
{
    ngx_http_trl_rep_exiting = 1;

    if (ngx_http_trl_rep_watch.timer_set) {
        ngx_del_timer(&ngx_http_trl_rep_watch);
    }
}


static void
ngx_http_trl_rep_watch_handler(ngx_event_t *ev)
{
    uint64_t                  now;
    ngx_http_trl_rep_conf_t  *rcf;

    rcf = ngx_http_trl_rep_watched;

    if (ngx_exiting || ngx_quit || ngx_terminate
        || ngx_http_trl_rep_exiting)
    {
        return;
    }

    now = ngx_http_trl_wall_ms();

    trl_rep_reclaim(rcf->rep, now);

    if (rcf->files
        && trl_rep_due(rcf->rep, TRL_REP_DUE_FILES, now, rcf->check))
    {
        ngx_http_trl_rep_check(rcf, ev->log);
    }

    ngx_add_timer(ev, rcf->check);
}


/* stat() only: the reading and the parsing are the thread's */

static void
ngx_http_trl_rep_check(ngx_http_trl_rep_conf_t *rcf, ngx_log_t *log)
{
    ngx_uint_t                i;
    trl_rep_file_id_t         id;
    ngx_http_trl_rep_job_t   *job;
    ngx_http_trl_rep_list_t  *lists;

    lists = rcf->lists.elts;

    for (i = 0; i < rcf->lists.nelts; i++) {

        if (lists[i].file.len == 0 || lists[i].slot < 0
            || ngx_http_trl_rep_busy[lists[i].slot])
        {
            continue;
        }

        (void) ngx_http_trl_rep_file_stat(&lists[i].file, &id);

        if (!trl_rep_file_changed(rcf->rep, (int) lists[i].slot, &id)) {
            continue;
        }

        job = ngx_calloc(sizeof(ngx_http_trl_rep_job_t), log);
        if (job == NULL) {
            continue;
        }

        job->rcf = rcf;
        job->list = &lists[i];
        job->path = lists[i].file;
        job->origin = "file";
        job->file_id = id;
        job->done = ngx_http_trl_rep_file_done;

        ngx_http_trl_rep_busy[lists[i].slot] = 1;

        if (ngx_http_trl_rep_job_post(job, log) != NGX_OK) {
            ngx_http_trl_rep_busy[lists[i].slot] = 0;
            ngx_log_error(NGX_LOG_ERR, log, 0,
                          "token_ratelimit_reputation_list \"%V\": %V "
                          "changed but could not be queued for loading",
                          &lists[i].name, &lists[i].file);
            ngx_free(job);
        }
    }
}


/* On the event loop: the outcome, logged once. */

static void
ngx_http_trl_rep_file_done(ngx_http_trl_rep_job_t *job)
{
    ngx_log_t                *log;
    ngx_http_trl_rep_list_t  *list;

    log = ngx_cycle->log;
    list = job->list;

    ngx_http_trl_rep_busy[list->slot] = 0;

    if (job->rc == NGX_OK) {
        ngx_log_error(NGX_LOG_NOTICE, log, 0,
                      "token_ratelimit_reputation_list \"%V\": loaded %V: "
                      "%uL ranges (%uL IPv4, %uL IPv6), %uL dropped, "
                      "%M ms, version %uL",
                      &list->name, &list->file,
                      job->info.ranges4 + job->info.ranges6,
                      job->info.ranges4, job->info.ranges6,
                      job->info.dropped_trusted + job->info.dropped_wide,
                      job->took, job->version);

        if (job->info.dropped_trusted + job->info.dropped_wide) {
            ngx_log_error(NGX_LOG_WARN, log, 0,
                          "token_ratelimit_reputation_list \"%V\": dropped "
                          "%uL entries overlapping trusted ranges and %uL "
                          "wider than allowed, first: %s", &list->name,
                          job->info.dropped_trusted, job->info.dropped_wide,
                          job->info.dropped_example);
        }

    } else {
        ngx_log_error(NGX_LOG_ERR, log, 0,
                      "token_ratelimit_reputation_list \"%V\": %s, "
                      "keeping version %uL", &list->name, job->err,
                      job->version);
    }

    ngx_free(job);
}
