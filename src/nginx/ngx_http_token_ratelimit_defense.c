
/*
 * ngx_http_token_ratelimit_defense.c - the shared memory of auto-ban and
 * attack mode (issue 14): one record per zone (ngx_http_trl_defense_t),
 * found by the zone's name so that counters and attack state survive a
 * reload.  Made only when some limit has ban= or some zone has
 * token_ratelimit_attack.
 */


#include "ngx_http_token_ratelimit.h"


#define NGX_HTTP_TRL_DEFENSE_MAX    512         /* zones */
#define NGX_HTTP_TRL_DEFENSE_MAGIC  0x54524c44454631ULL  /* "TRLDEF1" */


typedef struct {
    uint64_t                    magic;
    uint64_t                    size;           /* of a record: the layout */
    ngx_http_trl_defense_t      rec[NGX_HTTP_TRL_DEFENSE_MAX];
} ngx_http_trl_defense_block_t;


static ngx_int_t ngx_http_trl_defense_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);


static ngx_str_t  ngx_http_trl_defense_name =
    ngx_string("token_ratelimit_defense");


char *
ngx_http_trl_defense_init_conf(ngx_conf_t *cf, ngx_http_trl_main_conf_t *tmcf)
{
    if (!tmcf->ban && tmcf->attacks == NULL) {
        return NGX_CONF_OK;
    }

    tmcf->defense_zone = ngx_shared_memory_add(cf, &ngx_http_trl_defense_name,
                               sizeof(ngx_http_trl_defense_block_t)
                               + 8 * ngx_pagesize,
                               &ngx_http_token_ratelimit_module);
    if (tmcf->defense_zone == NULL) {
        return NGX_CONF_ERROR;
    }

    tmcf->defense_zone->init = ngx_http_trl_defense_init_zone;
    tmcf->defense_zone->data = tmcf;

    return NGX_CONF_OK;
}


/*
 * A reload keeps the records of the zones still configured; those of zones
 * gone are freed (the old workers' last counts of them are lost).
 */

static ngx_int_t
ngx_http_trl_defense_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_http_trl_main_conf_t  *otmcf = data;

    size_t                         len;
    ngx_uint_t                     i, j, keep;
    ngx_slab_pool_t               *shpool;
    ngx_http_trl_zone_t          **zones;
    ngx_http_trl_defense_t        *rec;
    ngx_http_trl_main_conf_t      *tmcf;
    ngx_http_trl_defense_block_t  *b;

    tmcf = shm_zone->data;
    shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;
    zones = tmcf->zones.elts;

    b = NULL;

    if (otmcf || shm_zone->shm.exists) {
        b = shpool->data;

        if (b == NULL || b->magic != NGX_HTTP_TRL_DEFENSE_MAGIC
            || b->size != sizeof(ngx_http_trl_defense_t))
        {
            ngx_log_error(NGX_LOG_EMERG, shm_zone->shm.log, 0,
                          "token_ratelimit: the shared memory \"%V\" was "
                          "laid out by another version of the module; "
                          "restart nginx", &shm_zone->shm.name);
            return NGX_ERROR;
        }

    } else {
        b = ngx_slab_calloc(shpool, sizeof(ngx_http_trl_defense_block_t));
        if (b == NULL) {
            return NGX_ERROR;
        }

        b->magic = NGX_HTTP_TRL_DEFENSE_MAGIC;
        b->size = sizeof(ngx_http_trl_defense_t);
        shpool->data = b;
    }

    /* free the records of zones no longer configured */

    for (j = 0; j < NGX_HTTP_TRL_DEFENSE_MAX; j++) {
        rec = &b->rec[j];

        if (!rec->used) {
            continue;
        }

        keep = 0;

        for (i = 0; i < tmcf->zones.nelts; i++) {
            len = zones[i]->name.len;

            if (ngx_strlen(rec->name) == len
                && ngx_strncmp(rec->name, zones[i]->name.data, len) == 0)
            {
                keep = 1;
                break;
            }
        }

        if (!keep) {
            ngx_memzero(rec, sizeof(ngx_http_trl_defense_t));
        }
    }

    for (i = 0; i < tmcf->zones.nelts; i++) {
        len = zones[i]->name.len;
        rec = NULL;

        for (j = 0; j < NGX_HTTP_TRL_DEFENSE_MAX; j++) {
            if (b->rec[j].used && ngx_strlen(b->rec[j].name) == len
                && ngx_strncmp(b->rec[j].name, zones[i]->name.data, len)
                   == 0)
            {
                rec = &b->rec[j];
                break;
            }
        }

        for (j = 0; rec == NULL && j < NGX_HTTP_TRL_DEFENSE_MAX; j++) {
            if (!b->rec[j].used) {
                rec = &b->rec[j];
                ngx_memcpy(rec->name, zones[i]->name.data, len);
                rec->name[len] = '\0';
                rec->used = 1;
            }
        }

        if (rec == NULL) {
            ngx_log_error(NGX_LOG_EMERG, shm_zone->shm.log, 0,
                          "token_ratelimit: more than %d zones for auto-ban "
                          "and attack mode", NGX_HTTP_TRL_DEFENSE_MAX);
            return NGX_ERROR;
        }

        zones[i]->defense = rec;
    }

    return NGX_OK;
}
