
/*
 * ngx_http_token_ratelimit_reputation.h - IP reputation in the glue: the
 * table's configuration (token_ratelimit_reputation,
 * token_ratelimit_reputation_list), its loads off the event loop, its use
 * by limits, and its sharing of uploaded lists through Redis.
 */


#ifndef _NGX_HTTP_TOKEN_RATELIMIT_REPUTATION_H_INCLUDED_
#define _NGX_HTTP_TOKEN_RATELIMIT_REPUTATION_H_INCLUDED_


#include "ngx_http_token_ratelimit.h"
#include "trl_reputation.h"


/* token_ratelimit_reputation_list */
typedef struct {
    ngx_str_t                   name;
    ngx_str_t                   file;           /* NUL-terminated; empty:
                                                   filled through the API */
    ngx_uint_t                  score;
    ngx_uint_t                  flags;          /* TRL_REP_DRY_RUN, _FILE */
    ngx_int_t                   slot;           /* in the table: set when
                                                   the zone is initialised */
    ngx_str_t                   conf_file;      /* where it was declared */
    ngx_uint_t                  conf_line;
} ngx_http_trl_rep_list_t;


/* token_ratelimit_reputation: the main conf's rep (NULL without it) */
typedef struct ngx_http_trl_rep_conf_s {
    ngx_shm_zone_t             *shm_zone;
    trl_rep_t                  *rep;            /* in the shared memory */
    ngx_array_t                 lists;          /* ngx_http_trl_rep_list_t */
    ngx_array_t                 trusted;        /* trl_cidr_t: trusted= and
                                                   set_real_ip_from */
    trl_rep_rules_t             rules;
    ngx_msec_t                  check;          /* files: how often */
    ngx_str_t                   thread_pool_name;
    void                       *thread_pool;    /* ngx_thread_pool_t */
    size_t                      size;           /* size=; 0: only lists
                                                   were declared */
    ngx_str_t                   conf_file;      /* where the first of the
                                                   two directives is */
    ngx_uint_t                  conf_line;
    ngx_uint_t                  files;          /* lists with file= */
} ngx_http_trl_rep_conf_t;


/* What a limit of token_ratelimit does with the lists (scale=,
 * penalty_level=, deny_score=), names resolved to slots. */
typedef struct {
    ngx_uint_t                  n;
    struct {
        ngx_http_trl_rep_list_t *list;
        uint32_t                 value;
    }                           term[TRL_REP_MAX_TERMS];
} ngx_http_trl_rep_terms_t;

typedef struct ngx_http_trl_rep_use_s {
    ngx_http_trl_rep_terms_t    scale;
    ngx_http_trl_rep_terms_t    level;
    ngx_uint_t                  deny_score;     /* 0: none */
} ngx_http_trl_rep_use_t;


/* A use whose list names are resolved once the http block is read:
 * tmcf->rep_uses. */
typedef struct {
    ngx_http_trl_rep_use_t     *use;
    trl_rep_terms_t             scale;
    trl_rep_terms_t             level;
    ngx_shm_zone_t             *shm_zone;       /* the limit's zone */
    ngx_str_t                   file;           /* where it was given */
    ngx_uint_t                  line;
    ngx_str_t                   where;          /* "in "token_ratelimit"
                                                   directive", "in policy
                                                   "login"" */
} ngx_http_trl_rep_pending_t;


/*
 * A list to load off the event loop (a thread of the pool): the file at
 * path (text NULL), a text (an upload), or a wire form (from Redis);
 * merge adds it to the list's current ranges.  done runs on the event
 * loop with rc NGX_OK (installed), NGX_DECLINED (did not parse: err) or
 * NGX_ERROR (no room, no memory: err).
 */
typedef struct ngx_http_trl_rep_job_s  ngx_http_trl_rep_job_t;

struct ngx_http_trl_rep_job_s {
    ngx_http_trl_rep_conf_t    *rcf;
    ngx_http_trl_rep_list_t    *list;
    ngx_str_t                   path;           /* NUL-terminated */
    u_char                     *text;           /* copied by the caller */
    size_t                      len;
    unsigned                    wire:1;         /* text is a wire form */
    unsigned                    merge:1;
    unsigned                    keep_build:1;   /* leave build to done */
    unsigned                    unpublished:1;  /* TRL_REP_UNPUBLISHED */
    const char                 *origin;         /* "file", "api", "redis" */
    uint64_t                    version;
    trl_rep_file_id_t           file_id;

    ngx_int_t                   rc;
    char                        err[256];
    trl_rep_build_info_t        info;
    trl_rep_build_t            *build;          /* keep_build: done frees */
    ngx_msec_t                  took;           /* ms, parse and install */

    void                      (*done)(ngx_http_trl_rep_job_t *job);
    void                       *data;
};


/* ngx_http_token_ratelimit_reputation_conf.c */
char *ngx_http_trl_rep_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_trl_rep_list_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
ngx_http_trl_rep_list_t *ngx_http_trl_rep_find(ngx_http_trl_rep_conf_t *rcf,
    u_char *name, size_t len);
/* after the http block: the table, its lists' trust rules and the uses */
char *ngx_http_trl_rep_init_conf(ngx_conf_t *cf,
    ngx_http_trl_main_conf_t *tmcf);
/* the master's load of the file lists (at start, and at reload) */
ngx_int_t ngx_http_trl_rep_load_files(ngx_http_trl_rep_conf_t *rcf,
    ngx_log_t *log, ngx_uint_t reload);

/* ngx_http_token_ratelimit_reputation_use.c: the options of
 * token_ratelimit (value: "scale=...", "penalty_level=...",
 * "deny_score=..."; NGX_CONF_OK, NGX_CONF_ERROR, or NGX_DECLINED as a
 * pointer when value is none of them) and of policy files */
char *ngx_http_trl_rep_option(ngx_conf_t *cf, ngx_command_t *cmd,
    ngx_str_t *value, ngx_http_trl_limit_t *limit);
char *ngx_http_trl_rep_use_add(ngx_conf_t *cf, ngx_http_trl_limit_t *limit,
    const trl_rep_terms_t *scale, const trl_rep_terms_t *level,
    ngx_uint_t deny_score, ngx_str_t *where, ngx_str_t *file,
    ngx_uint_t line);
void ngx_http_trl_rep_use_zone(ngx_conf_t *cf, ngx_http_trl_limit_t *limit,
    ngx_shm_zone_t *shm_zone);
char *ngx_http_trl_rep_resolve(ngx_conf_t *cf,
    ngx_http_trl_main_conf_t *tmcf);

/* ngx_http_token_ratelimit_reputation_load.c */
ngx_int_t ngx_http_trl_rep_job_post(ngx_http_trl_rep_job_t *job,
    ngx_log_t *log);

/* The caller owns job (and text) and frees them in done; NGX_ERROR: not
 * queued, done is not called.  Without threads done runs before
 * ngx_http_trl_rep_job_post returns.  job->version: the installed version
 * (or the one kept on a failure) once done runs. */
/* the work of a job, where it is called (a thread, or the master) */
void ngx_http_trl_rep_job_run(ngx_http_trl_rep_job_t *job);
/* the identity of the file at path (all 0 when it cannot be stat()ed) */
ngx_int_t ngx_http_trl_rep_file_stat(ngx_str_t *path,
    trl_rep_file_id_t *id);

/* ngx_http_token_ratelimit_reputation_watch.c: the file lists, checked
 * by one worker per check= interval */
ngx_int_t ngx_http_trl_rep_init_process(ngx_cycle_t *cycle);
void ngx_http_trl_rep_exit_process(ngx_cycle_t *cycle);

/* ngx_http_token_ratelimit_reputation_match.c: the client's lists, looked
 * up once per request (NULL: no table, or no address) */
trl_rep_match_t *ngx_http_trl_rep_match(ngx_http_request_t *r);
/* ... of the lists of the slots in want (others may be filled in) */
trl_rep_match_t *ngx_http_trl_rep_match_some(ngx_http_request_t *r,
    uint64_t want);
/* the limits' scale=, penalty_level= and deny_score= for the request's
 * zones (ctx->applied[0 .. n - 1]): NGX_HTTP_FORBIDDEN when denied */
uint32_t ngx_http_trl_rep_key_limit(ngx_http_trl_main_conf_t *tmcf,
    ngx_http_trl_zone_t *zone, u_char *key, size_t len);
ngx_int_t ngx_http_trl_rep_request(ngx_http_request_t *r,
    ngx_http_trl_loc_conf_t *tlcf, ngx_http_trl_ctx_t *ctx, ngx_uint_t n);
ngx_int_t ngx_http_trl_rep_add_variables(ngx_conf_t *cf);

/* ngx_http_token_ratelimit_reputation_sync.c: uploaded lists in Redis */
void ngx_http_trl_rep_sync_init(ngx_cycle_t *cycle);
void ngx_http_trl_rep_sync_exit(void);
/* publishes a list just uploaded (job->build kept), or queues it */
void ngx_http_trl_rep_publish(ngx_http_trl_rep_job_t *job);


#endif /* _NGX_HTTP_TOKEN_RATELIMIT_REPUTATION_H_INCLUDED_ */
