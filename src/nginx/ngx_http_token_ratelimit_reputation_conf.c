
/*
 * ngx_http_token_ratelimit_reputation_conf.c - the reputation table's
 * configuration: token_ratelimit_reputation (its shared memory and the
 * rules a list must keep to) and token_ratelimit_reputation_list (a named
 * list, from a file or filled through the API); once the http block is
 * read, the trusted ranges (trusted= and every set_real_ip_from of the http
 * and server levels) and the shared memory zone; when the zone is ready
 * (at start and at each reload, in the master), the lists declared and the
 * files loaded.
 */


#include "ngx_http_token_ratelimit.h"
#include "ngx_http_token_ratelimit_util.h"
#include "ngx_http_token_ratelimit_reputation.h"

#if (NGX_THREADS)
#include <ngx_thread_pool.h>
#endif


#define NGX_HTTP_TRL_REP_MIN_SIZE   (64 * 1024)
#define NGX_HTTP_TRL_REP_CHECK      5000        /* check=, ms */
#define NGX_HTTP_TRL_REP_MIN_CHECK  100


static ngx_http_trl_rep_conf_t *ngx_http_trl_rep_conf(ngx_conf_t *cf);
static char *ngx_http_trl_rep_trusted(ngx_conf_t *cf, ngx_command_t *cmd,
    ngx_http_trl_rep_conf_t *rcf, ngx_str_t *value);
static char *ngx_http_trl_rep_widest(ngx_conf_t *cf, ngx_command_t *cmd,
    ngx_str_t *value, size_t skip, ngx_uint_t max, uint8_t *out);
static ngx_int_t ngx_http_trl_rep_realip(ngx_conf_t *cf,
    ngx_http_trl_rep_conf_t *rcf);
static ngx_int_t ngx_http_trl_rep_realip_add(ngx_http_trl_rep_conf_t *rcf,
    ngx_array_t *from);
static ngx_int_t ngx_http_trl_rep_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);


static ngx_str_t  ngx_http_trl_rep_zone_name =
    ngx_string("token_ratelimit_reputation");

static ngx_str_t  ngx_http_trl_rep_default_pool = ngx_string("default");


/* Both directives share one conf: either may come first. */

static ngx_http_trl_rep_conf_t *
ngx_http_trl_rep_conf(ngx_conf_t *cf)
{
    ngx_http_trl_rep_conf_t   *rcf;
    ngx_http_trl_main_conf_t  *tmcf;

    tmcf = ngx_http_conf_get_module_main_conf(cf,
                                              ngx_http_token_ratelimit_module);

    if (tmcf->rep) {
        return tmcf->rep;
    }

    rcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_trl_rep_conf_t));
    if (rcf == NULL) {
        return NULL;
    }

    if (ngx_array_init(&rcf->lists, cf->pool, 4,
                       sizeof(ngx_http_trl_rep_list_t))
        != NGX_OK
        || ngx_array_init(&rcf->trusted, cf->pool, 4, sizeof(trl_cidr_t))
           != NGX_OK)
    {
        return NULL;
    }

    rcf->rules.widest4 = 8;
    rcf->rules.widest6 = 32;
    rcf->check = NGX_HTTP_TRL_REP_CHECK;
    rcf->thread_pool_name = ngx_http_trl_rep_default_pool;
    rcf->conf_file = cf->conf_file->file.name;
    rcf->conf_line = cf->conf_file->line;

    tmcf->rep = rcf;

    return rcf;
}


/*
 * token_ratelimit_reputation size=16m [trusted=CIDR[,CIDR...]]
 *     [widest=/8] [widest6=/32] [check=5s] [thread_pool=default];
 */

char *
ngx_http_trl_rep_directive(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ssize_t                   size;
    ngx_str_t                *value, s;
    ngx_int_t                 ms;
    ngx_uint_t                i;
    ngx_http_trl_rep_conf_t  *rcf;

    rcf = ngx_http_trl_rep_conf(cf);
    if (rcf == NULL) {
        return NGX_CONF_ERROR;
    }

    if (rcf->size) {
        return "is duplicate";
    }

    value = cf->args->elts;

    for (i = 1; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "size=", 5) == 0) {
            s.data = value[i].data + 5;
            s.len = value[i].len - 5;

            size = ngx_parse_size(&s);

            if (size == NGX_ERROR || size < NGX_HTTP_TRL_REP_MIN_SIZE) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid value \"%V\" in \"%V\" "
                                   "directive, it must be a size of at "
                                   "least 64k (bytes, or k or m)",
                                   &value[i], &cmd->name);
                return NGX_CONF_ERROR;
            }

            rcf->size = (size_t) size;
            continue;
        }

        if (ngx_strncmp(value[i].data, "trusted=", 8) == 0) {
            if (ngx_http_trl_rep_trusted(cf, cmd, rcf, &value[i])
                != NGX_CONF_OK)
            {
                return NGX_CONF_ERROR;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "widest=", 7) == 0) {
            if (ngx_http_trl_rep_widest(cf, cmd, &value[i], 7, 32,
                                        &rcf->rules.widest4)
                != NGX_CONF_OK)
            {
                return NGX_CONF_ERROR;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "widest6=", 8) == 0) {
            if (ngx_http_trl_rep_widest(cf, cmd, &value[i], 8, 128,
                                        &rcf->rules.widest6)
                != NGX_CONF_OK)
            {
                return NGX_CONF_ERROR;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "check=", 6) == 0) {
            s.data = value[i].data + 6;
            s.len = value[i].len - 6;

            ms = ngx_parse_time(&s, 0);

            if (ms == NGX_ERROR || ms < NGX_HTTP_TRL_REP_MIN_CHECK
                || ms > 86400000)
            {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid value \"%V\" in \"%V\" "
                                   "directive, it must be a time from "
                                   "100ms to 1d (such as 5s)",
                                   &value[i], &cmd->name);
                return NGX_CONF_ERROR;
            }

            rcf->check = (ngx_msec_t) ms;
            continue;
        }

        if (ngx_strncmp(value[i].data, "thread_pool=", 12) == 0
            && value[i].len > 12)
        {
            rcf->thread_pool_name.data = value[i].data + 12;
            rcf->thread_pool_name.len = value[i].len - 12;
            continue;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter \"%V\" in \"%V\" directive, "
                           "expected \"size=\" and optionally "
                           "\"trusted=CIDR[,CIDR...]\", \"widest=/N\", "
                           "\"widest6=/N\", \"check=time\" and "
                           "\"thread_pool=name\"",
                           &value[i], &cmd->name);
        return NGX_CONF_ERROR;
    }

    if (rcf->size == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" directive must have a \"size=\" "
                           "parameter (such as size=16m)", &cmd->name);
        return NGX_CONF_ERROR;
    }

    rcf->conf_file = cf->conf_file->file.name;
    rcf->conf_line = cf->conf_file->line;

    return NGX_CONF_OK;
}


static char *
ngx_http_trl_rep_trusted(ngx_conf_t *cf, ngx_command_t *cmd,
    ngx_http_trl_rep_conf_t *rcf, ngx_str_t *value)
{
    char        err[128];
    u_char     *p, *last, *comma;
    trl_cidr_t  *cidr;

    p = value->data + 8;
    last = value->data + value->len;

    do {
        comma = ngx_strlchr(p, last, ',');
        if (comma == NULL) {
            comma = last;
        }

        cidr = ngx_array_push(&rcf->trusted);
        if (cidr == NULL) {
            return NGX_CONF_ERROR;
        }

        if (trl_cidr_parse((char *) p, comma - p, cidr, err, sizeof(err))
            != TRL_OK)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid value \"%*s\" in \"%V\" of \"%V\" "
                               "directive: %s; expected an address or a "
                               "CIDR (IPv4 or IPv6), comma-separated",
                               (size_t) (comma - p), p, value, &cmd->name,
                               err);
            return NGX_CONF_ERROR;
        }

        p = comma + 1;

    } while (comma < last);

    return NGX_CONF_OK;
}


/* widest=/8 or widest=8: the widest entry a list may hold */

static char *
ngx_http_trl_rep_widest(ngx_conf_t *cf, ngx_command_t *cmd, ngx_str_t *value,
    size_t skip, ngx_uint_t max, uint8_t *out)
{
    u_char     *p;
    size_t      len;
    ngx_int_t   n;

    p = value->data + skip;
    len = value->len - skip;

    if (len && *p == '/') {
        p++;
        len--;
    }

    n = ngx_atoi(p, len);

    if (n == NGX_ERROR || (ngx_uint_t) n > max) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid value \"%V\" in \"%V\" directive, it "
                           "must be a prefix length from /0 to /%ui",
                           value, &cmd->name, max);
        return NGX_CONF_ERROR;
    }

    *out = (uint8_t) n;

    return NGX_CONF_OK;
}


/* token_ratelimit_reputation_list NAME [file=PATH] [score=N] [dry_run]; */

char *
ngx_http_trl_rep_list_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    char                      err[128];
    ngx_int_t                 score;
    ngx_str_t                *value;
    ngx_uint_t                i;
    ngx_http_trl_rep_conf_t  *rcf;
    ngx_http_trl_rep_list_t  *list;

    rcf = ngx_http_trl_rep_conf(cf);
    if (rcf == NULL) {
        return NGX_CONF_ERROR;
    }

    value = cf->args->elts;

    if (trl_rep_name_check((char *) value[1].data, value[1].len, err,
                           sizeof(err))
        != TRL_OK)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid list name \"%V\" in \"%V\" directive: "
                           "%s; it must be 1 to 31 letters, digits, "
                           "'_', '-' or '.'", &value[1], &cmd->name, err);
        return NGX_CONF_ERROR;
    }

    /* {loc}/reputation/lookup is the API's lookup, never a list */

    if (value[1].len == 6 && ngx_strncmp(value[1].data, "lookup", 6) == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid list name \"%V\" in \"%V\" directive: "
                           "the name is reserved for the API's "
                           "{location}/reputation/lookup", &value[1],
                           &cmd->name);
        return NGX_CONF_ERROR;
    }

    if (ngx_http_trl_rep_find(rcf, value[1].data, value[1].len)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "duplicate list \"%V\" in \"%V\" directive",
                           &value[1], &cmd->name);
        return NGX_CONF_ERROR;
    }

    if (rcf->lists.nelts >= TRL_REP_MAX_LISTS) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "too many lists in \"%V\" directives: at most %d",
                           &cmd->name, TRL_REP_MAX_LISTS);
        return NGX_CONF_ERROR;
    }

    list = ngx_array_push(&rcf->lists);
    if (list == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(list, sizeof(ngx_http_trl_rep_list_t));

    list->name = value[1];
    list->score = 50;
    list->slot = -1;
    list->conf_file = cf->conf_file->file.name;
    list->conf_line = cf->conf_file->line;

    for (i = 2; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "file=", 5) == 0
            && value[i].len > 5)
        {
            list->file.data = value[i].data + 5;
            list->file.len = value[i].len - 5;

            /* relative to the configuration's prefix, NUL-terminated */

            if (ngx_conf_full_name(cf->cycle, &list->file, 1) != NGX_OK) {
                return NGX_CONF_ERROR;
            }

            list->flags |= TRL_REP_FILE;
            rcf->files++;
            continue;
        }

        if (ngx_strncmp(value[i].data, "score=", 6) == 0) {
            score = ngx_atoi(value[i].data + 6, value[i].len - 6);

            if (score == NGX_ERROR || score > TRL_REP_MAX_SCORE) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid value \"%V\" in \"%V\" "
                                   "directive, it must be a score from 0 "
                                   "to %d", &value[i], &cmd->name,
                                   TRL_REP_MAX_SCORE);
                return NGX_CONF_ERROR;
            }

            list->score = (ngx_uint_t) score;
            continue;
        }

        if (ngx_strcmp(value[i].data, "dry_run") == 0) {
            list->flags |= TRL_REP_DRY_RUN;
            continue;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter \"%V\" in \"%V\" directive, "
                           "expected \"file=path\", \"score=0..100\" or "
                           "\"dry_run\"", &value[i], &cmd->name);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


ngx_http_trl_rep_list_t *
ngx_http_trl_rep_find(ngx_http_trl_rep_conf_t *rcf, u_char *name, size_t len)
{
    ngx_uint_t                i;
    ngx_http_trl_rep_list_t  *lists;

    if (rcf == NULL) {
        return NULL;
    }

    lists = rcf->lists.elts;

    for (i = 0; i < rcf->lists.nelts; i++) {
        if (lists[i].name.len == len
            && ngx_strncmp(lists[i].name.data, name, len) == 0)
        {
            return &lists[i];
        }
    }

    return NULL;
}


/*
 * Once the http block is read: the lists' names in the limits resolved,
 * the trusted ranges complete, the shared memory and the thread pool.
 */

char *
ngx_http_trl_rep_init_conf(ngx_conf_t *cf, ngx_http_trl_main_conf_t *tmcf)
{
    ngx_http_trl_rep_conf_t  *rcf;

    if (ngx_http_trl_rep_resolve(cf, tmcf) != NGX_CONF_OK) {
        return NGX_CONF_ERROR;
    }

    rcf = tmcf->rep;

    if (rcf == NULL) {
        return NGX_CONF_OK;
    }

    if (rcf->size == 0) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"token_ratelimit_reputation_list\" in %V:%ui needs "
                      "a \"token_ratelimit_reputation size=...\" directive "
                      "in the http block (the table's shared memory)",
                      &rcf->conf_file, rcf->conf_line);
        return NGX_CONF_ERROR;
    }

    if (ngx_http_trl_rep_realip(cf, rcf) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    rcf->rules.trusted = rcf->trusted.elts;
    rcf->rules.ntrusted = rcf->trusted.nelts;

    rcf->shm_zone = ngx_shared_memory_add(cf, &ngx_http_trl_rep_zone_name,
                                          rcf->size,
                                          &ngx_http_token_ratelimit_module);
    if (rcf->shm_zone == NULL) {
        return NGX_CONF_ERROR;
    }

    rcf->shm_zone->init = ngx_http_trl_rep_init_zone;
    rcf->shm_zone->data = rcf;

#if (NGX_THREADS)
    /* nginx reports a pool neither "default" nor declared by thread_pool */

    rcf->thread_pool = ngx_thread_pool_add(cf, &rcf->thread_pool_name);
    if (rcf->thread_pool == NULL) {
        return NGX_CONF_ERROR;
    }
#endif

    return NGX_CONF_OK;
}


/*
 * The set_real_ip_from ranges of the http level and of every server: the
 * proxies and load balancers in front of nginx, never to be listed.  The
 * realip module is found by name (it may be absent, or built in: no
 * symbol of it is linked); its location configuration starts with its
 * "from" array (ngx_cidr_t), as it has since nginx 1.3.
 */

static ngx_int_t
ngx_http_trl_rep_realip(ngx_conf_t *cf, ngx_http_trl_rep_conf_t *rcf)
{
    void                       **loc_conf;
    ngx_uint_t                   i, index;
    ngx_module_t                *m;
    ngx_http_conf_ctx_t         *ctx;
    ngx_http_core_srv_conf_t   **cscfp;
    ngx_http_core_main_conf_t   *cmcf;

    m = NULL;

    for (i = 0; cf->cycle->modules[i]; i++) {
        if (ngx_strcmp(cf->cycle->modules[i]->name, "ngx_http_realip_module")
            == 0)
        {
            m = cf->cycle->modules[i];
            break;
        }
    }

    if (m == NULL || m->type != NGX_HTTP_MODULE) {
        return NGX_OK;
    }

    index = m->ctx_index;

    ctx = cf->ctx;
    loc_conf = ctx->loc_conf;

    if (loc_conf[index]
        && ngx_http_trl_rep_realip_add(rcf, *(ngx_array_t **) loc_conf[index])
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);
    cscfp = cmcf->servers.elts;

    for (i = 0; i < cmcf->servers.nelts; i++) {
        loc_conf = cscfp[i]->ctx->loc_conf;

        if (loc_conf[index]
            && ngx_http_trl_rep_realip_add(rcf,
                                       *(ngx_array_t **) loc_conf[index])
               != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_trl_rep_realip_add(ngx_http_trl_rep_conf_t *rcf, ngx_array_t *from)
{
    u_char       *mask;
    uint32_t      m4;
    ngx_uint_t    i, j, bits;
    ngx_cidr_t   *cidr;
    trl_cidr_t   *t;

    if (from == NULL || from == NGX_CONF_UNSET_PTR) {
        return NGX_OK;
    }

    cidr = from->elts;

    for (i = 0; i < from->nelts; i++) {

        if (cidr[i].family != AF_INET
#if (NGX_HAVE_INET6)
            && cidr[i].family != AF_INET6
#endif
           )
        {
            continue;                       /* unix: */
        }

        t = ngx_array_push(&rcf->trusted);
        if (t == NULL) {
            return NGX_ERROR;
        }

        ngx_memzero(t, sizeof(trl_cidr_t));

        if (cidr[i].family == AF_INET) {
            t->family = 4;
            ngx_memcpy(t->addr, &cidr[i].u.in.addr, 4);

            m4 = ntohl(cidr[i].u.in.mask);

            for (bits = 0; bits < 32 && (m4 & (0x80000000u >> bits)); bits++)
            {
                /* void */
            }

            t->prefix = (uint8_t) bits;
            continue;
        }

#if (NGX_HAVE_INET6)
        t->family = 6;
        ngx_memcpy(t->addr, cidr[i].u.in6.addr.s6_addr, 16);

        mask = cidr[i].u.in6.mask.s6_addr;
        bits = 0;

        for (j = 0; j < 128 && (mask[j / 8] & (0x80 >> (j % 8))); j++) {
            bits++;
        }

        t->prefix = (uint8_t) bits;
#else
        (void) mask;
        (void) j;
#endif
    }

    return NGX_OK;
}


/*
 * The table: made at the first start, kept (with the tables of the lists
 * declared again) across reloads; then the lists of this configuration
 * declared, and the file lists loaded.
 */

static ngx_int_t
ngx_http_trl_rep_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_http_trl_rep_conf_t  *orcf = data;

    int                       slots[TRL_REP_MAX_LISTS];
    char                      err[256];
    size_t                    bytes;
    u_char                   *block;
    ngx_uint_t                i;
    trl_rep_decl_t            decl[TRL_REP_MAX_LISTS];
    ngx_slab_pool_t          *shpool;
    ngx_http_trl_rep_conf_t  *rcf;
    ngx_http_trl_rep_list_t  *lists;

    ngx_cpystrn((u_char *) err, (u_char *) "no room for it", sizeof(err));

    rcf = shm_zone->data;
    shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (orcf || shm_zone->shm.exists) {
        block = shpool->data;
        rcf->rep = trl_rep_attach(block, 0, err, sizeof(err));

    } else {
        bytes = (shpool->pfree > 1 ? shpool->pfree - 1 : 0) * ngx_pagesize;
        block = bytes ? ngx_slab_alloc(shpool, bytes) : NULL;

        if (block) {
            shpool->data = block;
            rcf->rep = trl_rep_create(block, bytes, err, sizeof(err));
        }
    }

    if (rcf->rep == NULL) {
        ngx_log_error(NGX_LOG_EMERG, shm_zone->shm.log, 0,
                      "token_ratelimit: the shared memory of the reputation "
                      "table is unusable (%s); restart nginx", err);
        return NGX_ERROR;
    }

    lists = rcf->lists.elts;

    for (i = 0; i < rcf->lists.nelts; i++) {
        ngx_memzero(&decl[i], sizeof(trl_rep_decl_t));
        ngx_memcpy(decl[i].name, lists[i].name.data, lists[i].name.len);
        decl[i].score = (uint32_t) lists[i].score;
        decl[i].flags = (uint32_t) lists[i].flags;
    }

    if (trl_rep_configure(rcf->rep, decl, rcf->lists.nelts, slots,
                          ngx_http_trl_wall_ms(), err, sizeof(err))
        != TRL_OK)
    {
        ngx_log_error(NGX_LOG_EMERG, shm_zone->shm.log, 0,
                      "token_ratelimit_reputation: %s", err);
        return NGX_ERROR;
    }

    for (i = 0; i < rcf->lists.nelts; i++) {
        lists[i].slot = slots[i];
    }

    return ngx_http_trl_rep_load_files(rcf, shm_zone->shm.log, orcf != NULL);
}


/*
 * The master reads every file list (at start, "nginx -t" and at each
 * reload).  A file that cannot be read or parsed fails the start; at a
 * reload, a list that has a table keeps it (logged at error).
 */

ngx_int_t
ngx_http_trl_rep_load_files(ngx_http_trl_rep_conf_t *rcf, ngx_log_t *log,
    ngx_uint_t reload)
{
    ngx_uint_t                i;
    trl_rep_list_info_t       info;
    ngx_http_trl_rep_job_t    job;
    ngx_http_trl_rep_list_t  *lists;

    lists = rcf->lists.elts;

    for (i = 0; i < rcf->lists.nelts; i++) {

        if (lists[i].file.len == 0) {
            continue;
        }

        ngx_memzero(&job, sizeof(ngx_http_trl_rep_job_t));

        job.rcf = rcf;
        job.list = &lists[i];
        job.path = lists[i].file;
        job.origin = "file";

        /* the file tried is recorded: the workers do not try it again */

        (void) ngx_http_trl_rep_file_stat(&lists[i].file, &job.file_id);
        (void) trl_rep_file_changed(rcf->rep, (int) lists[i].slot,
                                    &job.file_id);

        ngx_http_trl_rep_job_run(&job);

        if (job.rc == NGX_OK) {
            ngx_log_error(NGX_LOG_NOTICE, log, 0,
                          "token_ratelimit_reputation_list \"%V\": loaded "
                          "%V: %uL ranges (%uL IPv4, %uL IPv6), %uL "
                          "dropped, %M ms, version %uL",
                          &lists[i].name, &lists[i].file,
                          job.info.ranges4 + job.info.ranges6,
                          job.info.ranges4, job.info.ranges6,
                          job.info.dropped_trusted + job.info.dropped_wide,
                          job.took, job.version);

            if (job.info.dropped_trusted + job.info.dropped_wide) {
                ngx_log_error(NGX_LOG_WARN, log, 0,
                              "token_ratelimit_reputation_list \"%V\": "
                              "dropped %uL entries overlapping trusted "
                              "ranges and %uL wider than allowed, "
                              "first: %s", &lists[i].name,
                              job.info.dropped_trusted,
                              job.info.dropped_wide,
                              job.info.dropped_example);
            }

            continue;
        }

        if (reload
            && trl_rep_info(rcf->rep, (int) lists[i].slot, &info) == TRL_OK
            && info.version != 0)
        {
            ngx_log_error(NGX_LOG_ERR, log, 0,
                          "token_ratelimit_reputation_list \"%V\": %s, "
                          "keeping version %uL", &lists[i].name, job.err,
                          info.version);
            continue;
        }

        ngx_log_error(NGX_LOG_EMERG, log, 0,
                      "token_ratelimit_reputation_list \"%V\": %s",
                      &lists[i].name, job.err);
        return NGX_ERROR;
    }

    return NGX_OK;
}
