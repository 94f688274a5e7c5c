
/*
 * ngx_http_token_ratelimit_waf.c - the limiter's view of a request, for a
 * WAF in the same nginx (issue 14, "into the WAF"):
 * token_ratelimit_waf_header NAME | off.
 *
 * ModSecurity-nginx copies the request's header fields into its
 * transaction in its REWRITE phase handler.  A handler of ours, moved to
 * the start of that phase when the modules are initialised (whatever the
 * load_module order), sets the field NAME there:
 *
 *     status=near; zone=login; remaining=1; limit=5; penalized=0;
 *     score=80; distinct=over
 *
 * after removing every field of that name the client sent.  The zones
 * are only peeked at, never counted.  A preaccess handler removes the
 * field again, once ModSecurity has read it, so that no upstream sees it.
 */


#include "ngx_http_token_ratelimit.h"


/* the header's value: status=penalized; zone=<63>; ... */
#define NGX_HTTP_TRL_WAF_VALUE_LEN                                            \
    (sizeof("status=penalized; zone=; remaining=; limit=; penalized=1; "      \
            "score=; distinct=penalized") - 1                                 \
     + NGX_HTTP_TRL_ZONE_NAME_MAX + 3 * NGX_INT32_LEN)

/* the zones' states, in increasing severity */
#define NGX_HTTP_TRL_WAF_NONE       0
#define NGX_HTTP_TRL_WAF_OK         1
#define NGX_HTTP_TRL_WAF_NEAR       2
#define NGX_HTTP_TRL_WAF_LIMIT      3
#define NGX_HTTP_TRL_WAF_PENALIZED  4


/* token_ratelimit_waf_header NAME: tlcf->waf */
struct ngx_http_trl_waf_conf_s {
    ngx_str_t                   name;
    u_char                     *lowcase;
    ngx_uint_t                  hash;
};


/* one zone's state for the request */
typedef struct {
    ngx_http_trl_zone_t        *zone;
    ngx_uint_t                  state;
    uint32_t                    remaining;
    uint32_t                    limit;
} ngx_http_trl_waf_view_t;


static ngx_int_t ngx_http_trl_waf_rewrite_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_trl_waf_hide_handler(ngx_http_request_t *r);
static u_char *ngx_http_trl_waf_value(ngx_http_request_t *r,
    ngx_http_trl_loc_conf_t *tlcf, u_char *p);
static void ngx_http_trl_waf_peek(ngx_http_request_t *r,
    ngx_http_trl_loc_conf_t *tlcf, ngx_http_trl_limit_t *limit,
    ngx_http_trl_waf_view_t *view);
static void ngx_http_trl_waf_remove(ngx_http_request_t *r,
    ngx_http_trl_waf_conf_t *waf);
static ngx_int_t ngx_http_trl_waf_unlink(ngx_list_t *l,
    ngx_list_part_t *prev,
    ngx_list_part_t *part, ngx_uint_t i);


static ngx_str_t  ngx_http_trl_waf_states[] = {
    ngx_string("none"),
    ngx_string("ok"),
    ngx_string("near"),
    ngx_string("limit"),
    ngx_string("penalized")
};

static ngx_str_t  ngx_http_trl_waf_distinct[] = {
    ngx_null_string,
    ngx_string("ok"),
    ngx_string("near"),
    ngx_string("over"),
    ngx_string("penalized")
};

static ngx_str_t  ngx_http_trl_waf_score_var =
    ngx_string("token_ratelimit_reputation_score");


/* token_ratelimit_waf_header NAME | off; */

char *
ngx_http_trl_waf_header_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_trl_loc_conf_t  *tlcf = conf;

    ngx_str_t                 *value;
    ngx_uint_t                 i;
    ngx_http_header_t         *known;
    ngx_http_trl_waf_conf_t   *waf;
    ngx_http_trl_main_conf_t  *tmcf;

    if (tlcf->waf != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "off") == 0) {
        tlcf->waf = NULL;
        return NGX_CONF_OK;
    }

    for (i = 0; i < value[1].len; i++) {
        if (!(isalnum(value[1].data[i]) || value[1].data[i] == '-'
              || value[1].data[i] == '_'))
        {
            break;
        }
    }

    if (value[1].len == 0 || i < value[1].len) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid header name \"%V\" in \"%V\" "
                           "directive, expected letters, digits, \"-\" and "
                           "\"_\" (such as X-Token-Ratelimit) or \"off\"",
                           &value[1], &cmd->name);
        return NGX_CONF_ERROR;
    }

    /* nginx keeps pointers to the fields it knows: never one of those */

    for (known = ngx_http_headers_in; known->name.len; known++) {
        if (known->name.len == value[1].len
            && ngx_strncasecmp(known->name.data, value[1].data,
                               value[1].len) == 0)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "header name \"%V\" in \"%V\" directive is "
                               "a standard request header field, expected "
                               "a name of its own such as "
                               "X-Token-Ratelimit", &value[1], &cmd->name);
            return NGX_CONF_ERROR;
        }
    }

    waf = ngx_pcalloc(cf->pool, sizeof(ngx_http_trl_waf_conf_t));
    if (waf == NULL) {
        return NGX_CONF_ERROR;
    }

    waf->name = value[1];

    waf->lowcase = ngx_pnalloc(cf->pool, value[1].len);
    if (waf->lowcase == NULL) {
        return NGX_CONF_ERROR;
    }

    waf->hash = ngx_hash_strlow(waf->lowcase, value[1].data, value[1].len);

    tlcf->waf = waf;

    tmcf = ngx_http_conf_get_module_main_conf(cf,
                                              ngx_http_token_ratelimit_module);

    if (!tmcf->waf_header) {
        tmcf->waf_header = 1;
        tmcf->waf_score = ngx_http_get_variable_index(cf,
                                                &ngx_http_trl_waf_score_var);
        if (tmcf->waf_score == NGX_ERROR) {
            return NGX_CONF_ERROR;
        }
    }

    return NGX_CONF_OK;
}


/*
 * postconfiguration: the handlers, only where the directive is used.
 *
 * Where the REWRITE handler lands depends on the modules' order in the
 * cycle, which load_module order and each module's ngx_module_order set.
 * It is put where it would run last, and moved to run first once every
 * module has added its own (init_module): one path in every build, the
 * one the tests take.
 */

ngx_int_t
ngx_http_trl_waf_init(ngx_conf_t *cf)
{
    ngx_array_t                *handlers;
    ngx_http_handler_pt        *h;
    ngx_http_trl_main_conf_t   *tmcf;
    ngx_http_core_main_conf_t  *cmcf;

    tmcf = ngx_http_conf_get_module_main_conf(cf,
                                              ngx_http_token_ratelimit_module);
    if (!tmcf->waf_header) {
        return NGX_OK;
    }

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    handlers = &cmcf->phases[NGX_HTTP_REWRITE_PHASE].handlers;

    h = ngx_array_push(handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h = handlers->elts;
    ngx_memmove(&h[1], &h[0], (handlers->nelts - 1) * sizeof(*h));
    h[0] = ngx_http_trl_waf_rewrite_handler;

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_PREACCESS_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_trl_waf_hide_handler;

    return NGX_OK;
}


/*
 * init_module: nginx runs a phase's handlers last-registered first, and
 * dynamic modules register in load_module order, so a WAF loaded after
 * us would read the request before our handler ran.  The phase engine is
 * built by now: our handler becomes the first of the REWRITE segment.
 * The segment's entries share their checker and next, so only the
 * handler pointers move, the others keeping their order.
 */

ngx_int_t
ngx_http_trl_waf_init_module(ngx_cycle_t *cycle)
{
    ngx_uint_t                  i, j, first;
    ngx_http_phase_handler_t   *ph;
    ngx_http_trl_main_conf_t   *tmcf;
    ngx_http_core_main_conf_t  *cmcf;

    tmcf = ngx_http_cycle_get_module_main_conf(cycle,
                                               ngx_http_token_ratelimit_module);
    if (tmcf == NULL || !tmcf->waf_header) {
        return NGX_OK;
    }

    cmcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_core_module);
    ph = cmcf->phase_engine.handlers;

    if (ph == NULL) {
        return NGX_OK;
    }

    first = cmcf->phase_engine.location_rewrite_index;

    for (i = first; ph[i].checker == ph[first].checker; i++) {

        if (ph[i].handler != ngx_http_trl_waf_rewrite_handler) {
            continue;
        }

        for (j = i; j > first; j--) {
            ph[j].handler = ph[j - 1].handler;
        }

        ph[first].handler = ngx_http_trl_waf_rewrite_handler;

        ngx_log_debug2(NGX_LOG_DEBUG_HTTP, cycle->log, 0,
                       "token_ratelimit: waf header handler moved from "
                       "%ui to %ui, the first of the rewrite phase", i,
                       first);
        break;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_trl_waf_rewrite_handler(ngx_http_request_t *r)
{
    u_char                   *p, *last;
    ngx_table_elt_t          *h;
    ngx_http_trl_waf_conf_t  *waf;
    ngx_http_trl_loc_conf_t  *tlcf;

    tlcf = ngx_http_get_module_loc_conf(r, ngx_http_token_ratelimit_module);
    waf = tlcf->waf;

    if (waf == NULL || !tlcf->enabled || r != r->main) {
        return NGX_DECLINED;
    }

    /* the client's fields of that name (or ours, after a redirect) go */

    ngx_http_trl_waf_remove(r, waf);

    p = ngx_pnalloc(r->pool, NGX_HTTP_TRL_WAF_VALUE_LEN);
    if (p == NULL) {
        return NGX_DECLINED;                /* never fail a request */
    }

    last = ngx_http_trl_waf_value(r, tlcf, p);

    h = ngx_list_push(&r->headers_in.headers);
    if (h == NULL) {
        return NGX_DECLINED;
    }

    h->hash = waf->hash;
    h->key = waf->name;
    h->lowcase_key = waf->lowcase;
    h->value.data = p;
    h->value.len = last - p;

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "token_ratelimit: waf header \"%V: %V\"",
                   &h->key, &h->value);

    return NGX_DECLINED;
}


/* after ModSecurity's REWRITE handler: no upstream sees the field */

static ngx_int_t
ngx_http_trl_waf_hide_handler(ngx_http_request_t *r)
{
    ngx_http_trl_loc_conf_t  *tlcf;

    tlcf = ngx_http_get_module_loc_conf(r, ngx_http_token_ratelimit_module);

    if (tlcf->waf && tlcf->enabled && r == r->main) {
        ngx_http_trl_waf_remove(r, tlcf->waf);
    }

    return NGX_DECLINED;
}


/*
 * The value: the most severe of the location's request zones (on a tie
 * the one with fewer places left), the reputation score where reputation
 * is configured, and the most severe distinct zone's verdict.
 */

static u_char *
ngx_http_trl_waf_value(ngx_http_request_t *r, ngx_http_trl_loc_conf_t *tlcf,
    u_char *p)
{
    ngx_uint_t                  i, distinct;
    ngx_http_trl_limit_t       *limits;
    ngx_http_trl_waf_view_t     view, best;
    ngx_http_variable_value_t  *v;
    ngx_http_trl_main_conf_t   *tmcf;

    tmcf = ngx_http_get_module_main_conf(r, ngx_http_token_ratelimit_module);

    ngx_memzero(&best, sizeof(ngx_http_trl_waf_view_t));
    distinct = NGX_HTTP_TRL_WAF_NONE;

    limits = tlcf->limits.elts;

    for (i = 0; i < tlcf->limits.nelts; i++) {
        ngx_http_trl_waf_peek(r, tlcf, &limits[i], &view);

        if (view.state == NGX_HTTP_TRL_WAF_NONE) {
            continue;
        }

        if (view.zone->distinct) {
            distinct = ngx_max(distinct, view.state);
            continue;
        }

        if (view.state > best.state
            || (view.state == best.state && view.remaining < best.remaining))
        {
            best = view;
        }
    }

    p = ngx_sprintf(p, "status=%V", &ngx_http_trl_waf_states[best.state]);

    if (best.zone) {
        p = ngx_sprintf(p, "; zone=%V; remaining=%uD; limit=%uD; "
                        "penalized=%ui", &best.zone->name, best.remaining,
                        best.limit,
                        (ngx_uint_t) (best.state
                                      == NGX_HTTP_TRL_WAF_PENALIZED));
    }

    if (tmcf->rep) {
        v = ngx_http_get_indexed_variable(r, tmcf->waf_score);

        if (v && !v->not_found && v->len && v->len <= NGX_INT32_LEN) {
            p = ngx_sprintf(p, "; score=%*s", (size_t) v->len, v->data);
        }
    }

    if (distinct != NGX_HTTP_TRL_WAF_NONE) {
        p = ngx_sprintf(p, "; distinct=%V",
                        &ngx_http_trl_waf_distinct[distinct]);
    }

    return p;
}


/*
 * One limit's zone, peeked at for the request's key: NONE when the key is
 * empty (or, for a distinct zone, the value), as the limit would not
 * apply.  Keys of variables set in the REWRITE phase are not known yet.
 */

static void
ngx_http_trl_waf_peek(ngx_http_request_t *r, ngx_http_trl_loc_conf_t *tlcf,
    ngx_http_trl_limit_t *limit, ngx_http_trl_waf_view_t *view)
{
    int                      rc;
    trl_limit_t              tl;
    trl_result_t             res;
    ngx_http_trl_zone_t     *zone;
    ngx_http_trl_applied_t   a;

    ngx_memzero(view, sizeof(ngx_http_trl_waf_view_t));
    ngx_memzero(&a, sizeof(ngx_http_trl_applied_t));

    zone = limit->shm_zone->data;

    if (zone == NULL || zone->core == NULL
        || ngx_http_complex_value(r, &zone->key, &a.key_text) != NGX_OK
        || a.key_text.len == 0)
    {
        return;
    }

    a.zone = zone;
    a.limit = limit;
    a.n = zone->rate.limit;

    trl_zone_hash(zone->core, a.key_text.data, a.key_text.len, &a.key);

    tl = ngx_http_trl_limit(&a, tlcf);

    ngx_memzero(&res, sizeof(trl_result_t));

    rc = ngx_http_trl_slots(zone) ? trl_distinct_peek(zone->core, &a.key, &tl,
                                            TRL_CLOCK_NOW, &res)
                        : trl_zone_peek(zone->core, &a.key, &tl,
                                        TRL_CLOCK_NOW, &res);

    if (rc == TRL_ERROR) {
        return;
    }

    view->zone = zone;
    view->limit = tl.rate.limit;
    view->remaining = rc == TRL_OK ? res.remaining : tl.rate.limit;

    if (rc == TRL_OK && res.penalized) {
        view->state = NGX_HTTP_TRL_WAF_PENALIZED;

    } else if (rc == TRL_OK && res.rejected) {
        view->state = NGX_HTTP_TRL_WAF_LIMIT;

    } else if (view->remaining <= 1
               || (tl.warn && view->limit - view->remaining >= tl.warn))
    {
        view->state = NGX_HTTP_TRL_WAF_NEAR;

    } else {
        view->state = NGX_HTTP_TRL_WAF_OK;
    }
}


/* --- removing a field from r->headers_in.headers ------------------------ */

/*
 * nginx and other modules keep pointers to fields (r->headers_in.host,
 * ...), so no field is moved: a part loses its first or last element, or
 * is split in two, or leaves the list.  The last part's room must stay at
 * least l->nalloc (ngx_list_push fills it up to that): where it shrank,
 * nalloc does, so that the next push starts a new part.  A part is never
 * left empty, but for the list's own first one when nothing is left.
 */

static void
ngx_http_trl_waf_remove(ngx_http_request_t *r, ngx_http_trl_waf_conf_t *waf)
{
    ngx_uint_t        i;
    ngx_list_t       *l;
    ngx_list_part_t  *part, *prev;
    ngx_table_elt_t  *h;

    l = &r->headers_in.headers;

again:

    prev = NULL;
    part = &l->part;
    h = part->elts;

    for (i = 0; /* void */; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                break;
            }

            prev = part;
            part = part->next;
            h = part->elts;
            i = 0;

            if (part->nelts == 0) {
                continue;
            }
        }

        if (h[i].key.len == waf->name.len
            && ngx_strncasecmp(h[i].key.data, waf->name.data,
                               waf->name.len) == 0)
        {
            ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                           "token_ratelimit: waf header removed: \"%V: %V\"",
                           &h[i].key, &h[i].value);

            if (ngx_http_trl_waf_unlink(l, prev, part, i) != NGX_OK) {
                return;
            }

            goto again;                     /* the parts changed */
        }
    }
}


static ngx_int_t
ngx_http_trl_waf_unlink(ngx_list_t *l, ngx_list_part_t *prev,
    ngx_list_part_t *part, ngx_uint_t i)
{
    ngx_list_part_t  *next, *tail;
    ngx_table_elt_t  *h;

    h = part->elts;

    if (part->nelts == 1) {

        if (prev) {                         /* the part leaves the list */
            prev->next = part->next;

            if (l->last == part) {
                l->last = prev;
                l->nalloc = ngx_max(1, ngx_min(l->nalloc, prev->nelts));
            }

            return NGX_OK;
        }

        next = part->next;

        if (next) {                         /* the first part: the next one
                                               takes its place */
            part->elts = next->elts;
            part->nelts = next->nelts;
            part->next = next->next;

            if (l->last == next) {
                l->last = part;
            }

            return NGX_OK;
        }

        part->nelts = 0;                    /* the list is empty */
        l->nalloc = 1;
        return NGX_OK;
    }

    if (i == part->nelts - 1) {
        part->nelts--;
        return NGX_OK;
    }

    if (i == 0) {
        part->elts = h + 1;
        part->nelts--;

        if (l->last == part) {
            l->nalloc = ngx_min(l->nalloc, part->nelts);
        }

        return NGX_OK;
    }

    tail = ngx_palloc(l->pool, sizeof(ngx_list_part_t));

    if (tail == NULL) {
        /* no memory: the field stays, emptied */
        h[i].value.len = 0;
        return NGX_ERROR;
    }

    tail->elts = h + i + 1;
    tail->nelts = part->nelts - i - 1;
    tail->next = part->next;

    part->nelts = i;
    part->next = tail;

    if (l->last == part) {
        l->last = tail;
        l->nalloc = ngx_min(l->nalloc, tail->nelts);
    }

    return NGX_OK;
}
