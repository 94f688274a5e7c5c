
/*
 * ngx_http_token_ratelimit_attack.c - attack mode (issue 14):
 *
 *   token_ratelimit_attack zone=NAME [rejected=P%|off] [offenders=N/s|off]
 *                          [min=N/s] [hold=TIME] [scale=F] [status=CODE]
 *                          [log=full|summary];
 *
 * One worker's timer looks at each such zone once a second: over the last
 * second, a rejected share of at least P% of at least min= requests, or at
 * least N keys newly over their limit (offenses), puts the zone in attack
 * mode; so does the API ({loc}/attack/ZONE, api_attack.c) with a ttl, or
 * another node through Redis (attack_sync.c).  It is left once the signal
 * stayed low for hold=, the API's ttl is over and no node keeps it.
 * While on: N is scaled by scale=, a rejection answers status= instead of
 * token_ratelimit_status (444 closes the connection), and log=summary
 * writes one error log line a second instead of the zone's per-request
 * lines (error log and event log).  The request path reads one atomic
 * word of the zone (ngx_http_trl_defense_t.attack).
 */


#include "ngx_http_token_ratelimit.h"
#include "ngx_http_token_ratelimit_util.h"


#define NGX_HTTP_TRL_ATTACK_EVERY  1000     /* ms */


/* the zone's counts at the last look (the timer's worker only) */
typedef struct {
    uint64_t                    requests;
    uint64_t                    rejected;
    uint64_t                    offenses;
    ngx_uint_t                  valid;
} ngx_http_trl_attack_seen_t;


static void ngx_http_trl_attack_tick(ngx_event_t *ev);
static void ngx_http_trl_attack_look(ngx_http_trl_main_conf_t *tmcf,
    ngx_uint_t i, uint64_t now_ms);


static ngx_event_t                  ngx_http_trl_attack_ev;
static ngx_http_trl_attack_seen_t  *ngx_http_trl_attack_seen;


char *
ngx_http_trl_attack_directive(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_trl_main_conf_t  *tmcf = conf;

    int                          rc;
    char                         err[NGX_MAX_ERROR_STR];
    ngx_str_t                   *value;
    ngx_uint_t                   i;
    ngx_http_trl_attack_conf_t  *ac, *other;

    value = cf->args->elts;

    if (tmcf->attacks == NULL) {
        tmcf->attacks = ngx_array_create(cf->pool, 2,
                                         sizeof(ngx_http_trl_attack_conf_t));
        if (tmcf->attacks == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    if (tmcf->attacks->nelts == NGX_HTTP_TRL_ATTACK_MAX) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "too many \"%V\" directives, at most %d",
                           &cmd->name, NGX_HTTP_TRL_ATTACK_MAX);
        return NGX_CONF_ERROR;
    }

    ac = ngx_array_push(tmcf->attacks);
    if (ac == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(ac, sizeof(ngx_http_trl_attack_conf_t));
    trl_attack_defaults(&ac->p);
    ac->conf_file = cf->conf_file->file.name;
    ac->conf_line = cf->conf_file->line;

    for (i = 1; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "zone=", 5) == 0) {
            ac->zone_name.data = value[i].data + 5;
            ac->zone_name.len = value[i].len - 5;
            continue;
        }

        /* the rest: the core's grammar */

        rc = trl_attack_param((char *) value[i].data, value[i].len, &ac->p,
                              err, sizeof(err));

        if (rc == TRL_OK) {
            continue;
        }

        if (rc == TRL_ERROR) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid value \"%V\" in \"%V\" directive, "
                               "%s", &value[i], &cmd->name, err);
            return NGX_CONF_ERROR;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter \"%V\" in \"%V\" directive, "
                           "expected \"zone=name\" and optionally "
                           "\"rejected=P%%|off\", \"offenders=N/s|off\", "
                           "\"min=N/s\", \"hold=time\", \"scale=F\", "
                           "\"status=code\" and \"log=full|summary\"",
                           &value[i], &cmd->name);
        return NGX_CONF_ERROR;
    }

    if (ac->zone_name.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" directive must have a \"zone=name\" "
                           "parameter", &cmd->name);
        return NGX_CONF_ERROR;
    }

    if (ac->p.rejected == 0 && ac->p.offenders == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" directive of zone \"%V\" has neither "
                           "\"rejected=\" nor \"offenders=\": it could only "
                           "be entered through the API; give one (or "
                           "\"rejected=100%%\")", &cmd->name,
                           &ac->zone_name);
        return NGX_CONF_ERROR;
    }

    other = tmcf->attacks->elts;

    for (i = 0; i + 1 < tmcf->attacks->nelts; i++) {
        if (other[i].zone_name.len == ac->zone_name.len
            && ngx_strncmp(other[i].zone_name.data, ac->zone_name.data,
                           ac->zone_name.len) == 0)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "zone \"%V\" has a \"%V\" directive already "
                               "in %V:%ui", &ac->zone_name, &cmd->name,
                               &other[i].conf_file, other[i].conf_line);
            return NGX_CONF_ERROR;
        }
    }

    return NGX_CONF_OK;
}


/* Once the http block is read: each directive's zone. */

char *
ngx_http_trl_attack_init_conf(ngx_conf_t *cf, ngx_http_trl_main_conf_t *tmcf)
{
    ngx_uint_t                   i, j;
    ngx_http_trl_zone_t        **zones;
    ngx_http_trl_attack_conf_t  *ac;

    if (tmcf->attacks == NULL) {
        return NGX_CONF_OK;
    }

    ac = tmcf->attacks->elts;
    zones = tmcf->zones.elts;

    for (i = 0; i < tmcf->attacks->nelts; i++) {
        for (j = 0; j < tmcf->zones.nelts; j++) {
            if (zones[j]->name.len == ac[i].zone_name.len
                && ngx_strncmp(zones[j]->name.data, ac[i].zone_name.data,
                               ac[i].zone_name.len) == 0)
            {
                ac[i].zone = zones[j];
                zones[j]->attack = &ac[i];
                break;
            }
        }

        if (ac[i].zone == NULL) {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "\"token_ratelimit_attack\" names zone \"%V\", "
                          "which no \"token_ratelimit_zone\" (or policy) "
                          "defines, in %V:%ui", &ac[i].zone_name,
                          &ac[i].conf_file, ac[i].conf_line);
            return NGX_CONF_ERROR;
        }
    }

    return NGX_CONF_OK;
}


/* The first worker looks at the zones (a single process too). */

ngx_int_t
ngx_http_trl_attack_init_process(ngx_cycle_t *cycle)
{
    ngx_uint_t                 i;
    ngx_http_trl_main_conf_t  *tmcf;

    tmcf = ngx_http_cycle_get_module_main_conf(cycle,
                                               ngx_http_token_ratelimit_module);

    if (tmcf == NULL || tmcf->attacks == NULL || ngx_worker != 0) {
        return NGX_OK;
    }

    ngx_http_trl_attack_seen = ngx_pcalloc(cycle->pool,
                                   tmcf->attacks->nelts
                                   * sizeof(ngx_http_trl_attack_seen_t));
    if (ngx_http_trl_attack_seen == NULL) {
        return NGX_ERROR;
    }

    /* the counts to compare the first tick's with */

    for (i = 0; i < tmcf->attacks->nelts; i++) {
        ngx_http_trl_attack_look(tmcf, i, 0);
    }

    ngx_http_trl_attack_ev.handler = ngx_http_trl_attack_tick;
    ngx_http_trl_attack_ev.log = cycle->log;
    ngx_http_trl_attack_ev.data = tmcf;
    ngx_http_trl_attack_ev.cancelable = 1;

    ngx_add_timer(&ngx_http_trl_attack_ev, NGX_HTTP_TRL_ATTACK_EVERY);

    return NGX_OK;
}


static void
ngx_http_trl_attack_tick(ngx_event_t *ev)
{
    ngx_http_trl_main_conf_t *tmcf = ev->data;

    uint64_t    now_ms;
    ngx_uint_t  i;

    if (ngx_exiting || ngx_quit || ngx_terminate) {
        return;
    }

    now_ms = ngx_http_trl_wall_ms();

    for (i = 0; i < tmcf->attacks->nelts; i++) {
        ngx_http_trl_attack_look(tmcf, i, now_ms);
    }

    ngx_add_timer(ev, NGX_HTTP_TRL_ATTACK_EVERY);
}


/* One zone's last second: enter, stay or leave; Redis is told.  now_ms 0:
 * only the counts are taken (the first tick compares with them). */

static void
ngx_http_trl_attack_look(ngx_http_trl_main_conf_t *tmcf, ngx_uint_t i,
    uint64_t now_ms)
{
    uint64_t                     requests, rejected, offenses;
    ngx_uint_t                   why;
    trl_zone_stats_t             st;
    ngx_http_trl_zone_t         *zone;
    ngx_http_trl_defense_t      *d;
    ngx_http_trl_attack_conf_t  *ac;
    ngx_http_trl_attack_seen_t  *seen;

    ac = &((ngx_http_trl_attack_conf_t *) tmcf->attacks->elts)[i];
    zone = ac->zone;
    d = zone->defense;
    seen = &ngx_http_trl_attack_seen[i];

    if (d == NULL || zone->core == NULL) {
        return;
    }

    trl_zone_stats(zone->core, &st);

    requests = st.passed + st.rejected + st.rejected_dry_run - seen->requests;
    rejected = st.rejected + st.rejected_dry_run - seen->rejected;
    offenses = st.offenses - seen->offenses;

    if (!seen->valid) {
        requests = rejected = offenses = 0;
    }

    seen->requests = st.passed + st.rejected + st.rejected_dry_run;
    seen->rejected = st.rejected + st.rejected_dry_run;
    seen->offenses = st.offenses;
    seen->valid = 1;

    if (now_ms == 0) {
        return;                             /* only those counts */
    }

    why = 0;

    if (ac->p.rejected && requests >= ac->p.min
        && rejected * 100 >= ac->p.rejected * requests)
    {
        why = NGX_HTTP_TRL_ATTACK_REJECTED;

    } else if (ac->p.offenders && offenses >= ac->p.offenders) {
        why = NGX_HTTP_TRL_ATTACK_OFFENDERS;
    }

    if (why) {
        d->attack_held = now_ms;
        ngx_http_trl_attack_enter(zone, why, 0);

    } else if (d->attack_until > now_ms) {
        ngx_http_trl_attack_enter(zone, NGX_HTTP_TRL_ATTACK_API, 0);

    } else if (d->attack_remote) {
        ngx_http_trl_attack_enter(zone, NGX_HTTP_TRL_ATTACK_CLUSTER, 0);

    } else if (d->attack && now_ms >= d->attack_held + ac->p.hold_ms) {
        ngx_http_trl_attack_leave(zone, 0);
    }

    if (d->attack && ac->p.log == TRL_ATTACK_LOG_SUMMARY
        && requests)
    {
        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                      "token_ratelimit zone \"%V\" in attack mode: %uL "
                      "requests, %uL rejected, %uL new offenders in the "
                      "last second", &zone->name, requests, rejected,
                      offenses);
    }

    if (tmcf->redis) {
        ngx_http_trl_attack_sync(tmcf, i,
                                 why || d->attack_until > now_ms, now_ms);
    }
}


const char *
ngx_http_trl_attack_why(ngx_uint_t why)
{
    switch (why) {
    case NGX_HTTP_TRL_ATTACK_API:
        return "api";
    case NGX_HTTP_TRL_ATTACK_REJECTED:
        return "rejected";
    case NGX_HTTP_TRL_ATTACK_OFFENDERS:
        return "offenders";
    case NGX_HTTP_TRL_ATTACK_CLUSTER:
        return "cluster";
    default:
        return "";
    }
}


/* until_ms: the API's ttl (0: none given). */

void
ngx_http_trl_attack_enter(ngx_http_trl_zone_t *zone, ngx_uint_t why,
    uint64_t until_ms)
{
    ngx_http_trl_defense_t  *d = zone->defense;

    if (until_ms) {
        d->attack_until = until_ms;
        d->attack_clear = 0;
    }

    if (!ngx_atomic_cmp_set(&d->attack, 0, 1)) {
        return;                             /* on already */
    }

    d->attack_why = why;
    d->attack_since = ngx_http_trl_wall_ms();
    (void) ngx_atomic_fetch_add(&d->attack_entered, 1);

    for ( ;; ) {                            /* an "on" event to write */
        ngx_atomic_uint_t  ev = d->attack_events;

        if (ngx_atomic_cmp_set(&d->attack_events, ev, ev | 1)) {
            break;
        }
    }

    ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                  "token_ratelimit zone \"%V\": attack mode on (%s)",
                  &zone->name, ngx_http_trl_attack_why(why));
}


/* api: left through the API, which Redis is told of too. */

void
ngx_http_trl_attack_leave(ngx_http_trl_zone_t *zone, ngx_uint_t api)
{
    ngx_http_trl_defense_t  *d = zone->defense;

    if (api) {
        d->attack_until = 0;
        d->attack_held = 0;
        d->attack_remote = 0;
        d->attack_clear = 1;
    }

    if (!ngx_atomic_cmp_set(&d->attack, 1, 0)) {
        return;
    }

    for ( ;; ) {
        ngx_atomic_uint_t  ev = d->attack_events;

        if (ngx_atomic_cmp_set(&d->attack_events, ev, ev | 2)) {
            break;
        }
    }

    ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                  "token_ratelimit zone \"%V\": attack mode off%s",
                  &zone->name, api ? " (api)" : "");
}


/* The request path: N scaled while on (distinct zones keep theirs). */

void
ngx_http_trl_attack_request(ngx_http_trl_applied_t *a)
{
    ngx_http_trl_zone_t  *zone = a->zone;

    if (zone->attack == NULL || zone->defense == NULL
        || !zone->defense->attack || zone->attack->p.scale >= 1000
        || ngx_http_trl_slots(zone))
    {
        return;
    }

    a->n = trl_rep_scale_limit(a->n, (uint32_t) zone->attack->p.scale);
}


ngx_uint_t
ngx_http_trl_attack_quiet(ngx_http_trl_zone_t *zone)
{
    return zone->attack && zone->defense && zone->defense->attack
           && zone->attack->p.log == TRL_ATTACK_LOG_SUMMARY;
}


/* The status of a rejection: status= of the zone answered for, while on. */

ngx_uint_t
ngx_http_trl_attack_status(ngx_http_trl_ctx_t *ctx, ngx_uint_t status)
{
    ngx_http_trl_zone_t  *zone;

    if (ctx->rejected == NULL) {
        return status;
    }

    zone = ctx->rejected->zone;

    if (zone->attack && zone->attack->p.status && zone->defense
        && zone->defense->attack)
    {
        return zone->attack->p.status;
    }

    return status;
}


/* The events of the transitions since the last request of the zone. */

void
ngx_http_trl_attack_events(ngx_http_request_t *r,
    ngx_http_trl_loc_conf_t *tlcf, ngx_http_trl_ctx_t *ctx)
{
    ngx_uint_t               i, k, on;
    ngx_atomic_uint_t        ev;
    ngx_http_trl_zone_t     *zone;
    ngx_http_trl_event_t     e;
    ngx_http_trl_defense_t  *d;

    if (tlcf->event_log == NULL) {
        return;                             /* kept for one that has */
    }

    for (i = 0; i < ctx->napplied; i++) {
        zone = ctx->applied[i].zone;
        d = zone->defense;

        if (d == NULL || d->attack_events == 0) {
            continue;
        }

        ev = d->attack_events;

        if (!ngx_atomic_cmp_set(&d->attack_events, ev, 0)) {
            continue;                       /* another worker writes them */
        }

        /* both: the one that holds now comes last */

        on = d->attack != 0;

        for (k = 0; k < 2; k++) {
            ngx_uint_t  state = (k == 0) ? !on : on;

            if (!(ev & (state ? 1 : 2))) {
                continue;
            }

            ngx_memzero(&e, sizeof(ngx_http_trl_event_t));
            e.event = "attack_mode";
            e.zone = zone;

            if (state) {
                e.reason.data = (u_char *)
                                ngx_http_trl_attack_why(d->attack_why);
                e.reason.len = ngx_strlen(e.reason.data);
                ngx_str_set(&e.state, "on");

            } else {
                ngx_str_set(&e.state, "off");
            }

            ngx_http_trl_event_log_extra(r, tlcf, &e);
        }
    }
}
