/*
 * trl_sync.h - zones shared through Redis (sync=async|strict): what the
 * Redis side tells a zone, the sync statistics, and the Redis key names
 * and scripts.
 */

#ifndef TRL_SYNC_H_INCLUDED
#define TRL_SYNC_H_INCLUDED

#include "trl_zone.h"

TRL_BEGIN_DECLS


/*
 * Cluster-wide zones.  A node decides on max(its own count, the cluster
 * total it last read + its own admissions not in that total yet); these
 * calls feed the Redis side into the zone.
 */
typedef struct {
    uint64_t  stamp_ms;      /* Redis's clock when the total was read */
    uint32_t  total;         /* admissions in the window, cluster-wide */
    uint32_t  free_in_ms;    /* until the total drops below N (0: it is) */
    uint32_t  reset_in_ms;   /* until it is back to 0 */
    uint32_t  published;     /* own admissions that this read includes */
    uint32_t  penalty_in_ms; /* the key's penalty left, cluster-wide */
    uint32_t  violations;    /* ... and its violations in a row */
} trl_sync_read_t;

int trl_zone_sync_apply(trl_zone_t *zone, const trl_hash_t *key,
    const trl_limit_t *limit, const trl_sync_read_t *read, uint64_t now_ms)
    TRL_NOEXCEPT;

/*
 * Async zones with Redis at hand (TRL_LIMIT_LEASE): a request the node
 * cannot decide (res.ask) is decided by Redis in one script, which admits
 * it and reserves a share of what remains for the node (the lease, places
 * the node admits from without asking for lease_ms), or rejects it.
 * trl_zone_async_apply() takes that answer: the read, the lease, a
 * penalty Redis knows, and the decision (a rejection may start the key's
 * next penalty here, published as usual).  A Redis total below the node's
 * own published count (a DEL) drops the node's window.
 */
typedef struct {
    uint64_t  stamp_ms;      /* Redis's clock */
    uint8_t   admitted;
    uint32_t  total;         /* after the decision, reservations included */
    uint32_t  lease;         /* admitted: places reserved for the node */
    uint32_t  lease_ms;      /* ... to be used within this long */
    uint32_t  free_in_ms;    /* until the total drops below N (0: it is) */
    uint32_t  reset_in_ms;   /* until it is back to 0 */
    uint32_t  penalty_in_ms; /* the key's penalty left, cluster-wide */
    uint32_t  violations;
} trl_ask_reply_t;

int trl_zone_async_apply(trl_zone_t *zone, const trl_hash_t *key,
    const trl_limit_t *limit, const trl_ask_reply_t *reply, uint64_t now_ms,
    trl_result_t *res) TRL_NOEXCEPT;

/* Names this node's reservations in Redis: the same for every process of
 * the zone, and across reloads; another node's zone has another. */
uint64_t trl_zone_node_id(const trl_zone_t *zone) TRL_NOEXCEPT;

/* How long a lease of a window this long lasts: TRL_LEASE_MS, at most a
 * quarter of the window. */
uint32_t trl_lease_ms(uint64_t window_ms) TRL_NOEXCEPT;

/* Own admissions that will never be published (their outcome did not
 * count, or they were lost): no longer pending. */
int trl_zone_sync_unpend(trl_zone_t *zone, const trl_hash_t *key,
    uint32_t n) TRL_NOEXCEPT;

/*
 * Signal zones, whose limits only check (they peek): the key gets an entry
 * without admissions if it has none, taken as a new key's, so that the
 * cluster total read for it (trl_zone_sync_apply) has a place to land.
 * Nothing is counted.  Returns 1 when the entry is new, 0 when the key
 * had one, TRL_ERROR on a fault.
 */
int trl_zone_sync_watch(trl_zone_t *zone, const trl_hash_t *key,
    const trl_limit_t *limit, uint64_t now_ms) TRL_NOEXCEPT;

/*
 * Strict zones decide in Redis.  trl_zone_strict_cached() answers from the
 * zone when the key is known to be blocked (returns 1, res filled as a
 * rejection), else returns 0: ask Redis.  trl_zone_strict_apply() takes
 * Redis's answer: an admission is recorded in the local window too (for
 * headers, and a fall-back when Redis is down), a rejection is cached until
 * the key's unblock time.
 */
#define TRL_STRICT_PENALTY_SERVING  1
#define TRL_STRICT_PENALTY_STARTED  2

typedef struct {
    uint8_t   admitted;
    uint8_t   penalty;       /* 0, or TRL_STRICT_PENALTY_*: block_in_ms is
                                then the block left */
    uint32_t  total;         /* after the decision */
    uint32_t  free_in_ms;    /* rejected: until a request is admitted (the
                                later of the block's end and a free place) */
    uint32_t  reset_in_ms;
    uint32_t  violations;
    uint32_t  block_in_ms;
} trl_strict_reply_t;

int trl_zone_strict_cached(trl_zone_t *zone, const trl_hash_t *key,
    const trl_limit_t *limit, uint64_t now_ms, trl_result_t *res) TRL_NOEXCEPT;
int trl_zone_strict_apply(trl_zone_t *zone, const trl_hash_t *key,
    const trl_limit_t *limit, const trl_strict_reply_t *reply,
    uint64_t now_ms, trl_result_t *res) TRL_NOEXCEPT;

/* Sync statistics, kept in the zone (counters and last values). */
#define TRL_SYNC_PUBLISHED   0   /* admissions published */
#define TRL_SYNC_READS       1   /* key totals read back */
#define TRL_SYNC_ERRORS      2   /* calls that failed or timed out */
#define TRL_SYNC_LAST_OK     3   /* clock ms of the last good reply */
#define TRL_SYNC_LAG         4   /* ms, oldest admission of the last batch */
#define TRL_SYNC_LINK_UP     5   /* 1 while the last attempt reached Redis */
#define TRL_SYNC_STRICT      6   /* strict decisions asked of Redis */
#define TRL_SYNC_CACHED      7   /* strict rejections from the block cache */
#define TRL_SYNC_FALLBACK    8   /* decisions made locally for want of Redis */
#define TRL_SYNC_STATS       9

void trl_zone_sync_add(trl_zone_t *zone, int stat, uint64_t n) TRL_NOEXCEPT;
void trl_zone_sync_put(trl_zone_t *zone, int stat, uint64_t value)
    TRL_NOEXCEPT;
void trl_zone_sync_stats(const trl_zone_t *zone,
    uint64_t stats[TRL_SYNC_STATS]) TRL_NOEXCEPT;

/* Redis side: key names and scripts (see src/core/sync.hpp). */
uint64_t trl_redis_cell_ms(uint64_t window_ms) TRL_NOEXCEPT;
/* Writes <prefix>{<zone>:<key>} to buf; returns its length (it is
 * truncated, and the return value larger than len, when buf is short; 0:
 * no memory).  A key longer than TRL_REDIS_KEY_MAX bytes is named by its
 * first bytes, "~" and 32 hex digits of its SHA-256 (see sync.hpp): the
 * name is at most prefix_len + zone_len + TRL_REDIS_NAME_MAX bytes. */
#define TRL_REDIS_KEY_MAX   64
#define TRL_REDIS_NAME_MAX  (3 + 2 + 2 * TRL_REDIS_KEY_MAX)
size_t trl_redis_key(const char *prefix, size_t prefix_len, const char *zone,
    size_t zone_len, const void *key, size_t key_len, char *buf, size_t len)
    TRL_NOEXCEPT;

#define TRL_SCRIPT_PUBLISH  0
#define TRL_SCRIPT_STRICT   1
#define TRL_SCRIPT_RELEASE  2
#define TRL_SCRIPT_RESET    3
#define TRL_SCRIPT_LISTS    4
#define TRL_SCRIPT_ASK      5
#define TRL_SCRIPT_DISTINCT 6     /* trl_distinct.h: distinct zones */
#define TRL_SCRIPT_REP_READ 7     /* trl_scripts.h: reputation lists */
#define TRL_SCRIPT_REP_PUBLISH 8
#define TRL_SCRIPT_ATTACK   9     /* attack mode's flag (issue 14) */
#define TRL_SCRIPTS         10

const char *trl_redis_script(int script) TRL_NOEXCEPT;


TRL_END_DECLS

#endif /* TRL_SYNC_H_INCLUDED */
