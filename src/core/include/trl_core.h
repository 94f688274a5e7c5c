/*
 * trl_core.h - the C ABI of the token_ratelimit core.
 *
 * The core is C++17 but nothing C++ crosses this boundary: every function
 * here is noexcept in effect (exceptions are caught inside and reported as
 * an error return), takes and returns plain C types, and includes no nginx
 * header.  The nginx glue (src/nginx) and the Check unit tests (t/unit) are
 * its only callers.
 *
 * Time: the core counts in milliseconds of a monotonic clock shared by all
 * processes of one host (CLOCK_MONOTONIC).  Callers either pass their own
 * "now" (tests) or TRL_CLOCK_NOW, in which case the core reads the clock
 * inside the critical section, so that the time recorded for an admission
 * is never earlier than the moment it was decided.
 */

#ifndef TRL_CORE_H_INCLUDED
#define TRL_CORE_H_INCLUDED

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif


#define TRL_OK      0
#define TRL_ERROR  -1

#define TRL_CLOCK_NOW          UINT64_MAX

/* Rates: N requests per sliding window of W milliseconds. */
#define TRL_RATE_MAX_LIMIT     65535
#define TRL_RATE_MAX_WINDOW_MS (365ULL * 24 * 3600 * 1000)

typedef struct {
    uint32_t  limit;        /* N: requests admitted per window */
    uint64_t  window_ms;    /* W: window length, whole seconds, in ms */
} trl_rate_t;

/*
 * Parses "Nr/s", "Nr/m", "Nr/h", "Nr/d" or "Nr/<count><unit>" ("20r/15m").
 * On error returns TRL_ERROR and writes a NUL-terminated reason to err
 * (what is wrong and what is accepted), never longer than errlen.
 */
int trl_rate_parse(const char *text, size_t len, trl_rate_t *rate,
    char *err, size_t errlen);

/* Writes the canonical form ("10r/m", "20r/15m"); returns its length. */
size_t trl_rate_format(const trl_rate_t *rate, char *buf, size_t len);


/* Keyed 128-bit hash of a key (SipHash-2-4-128). */
typedef struct {
    uint64_t  lo;
    uint64_t  hi;
} trl_hash_t;

void trl_siphash128(const uint8_t seed[16], const void *data, size_t len,
    trl_hash_t *out);


/*
 * A zone: the counters of one token_ratelimit_zone, laid out in a block of
 * shared memory that the caller provides and that is mapped at the same
 * address in every process using it.  The zone holds keyed hashes of keys,
 * never the keys, and a fixed number of entries; it never allocates.
 */
typedef struct trl_zone_s  trl_zone_t;

/* Smallest block trl_zone_create() accepts. */
size_t trl_zone_min_size(void);

/*
 * Lays out a new zone in mem (contents ignored) with a fresh random seed.
 * TRL_ZONE_SYNC adds per-key state for cluster-wide counting (32 bytes more
 * per key).
 */
#define TRL_ZONE_SYNC  0x01

trl_zone_t *trl_zone_create(void *mem, size_t size, unsigned flags,
    char *err, size_t errlen);
unsigned trl_zone_flags(const trl_zone_t *zone);

/*
 * Checks that mem holds a zone laid out by this version of the core (same
 * magic, layout version and, unless size is 0, size), as after
 * "nginx -s reload".  Returns NULL
 * with a reason otherwise: an incompatible zone is never misread.
 */
trl_zone_t *trl_zone_attach(void *mem, size_t size, char *err, size_t errlen);

uint32_t trl_zone_capacity(const trl_zone_t *zone);   /* keys it can hold */
size_t trl_zone_entry_size(void);                     /* bytes per key */

void trl_zone_hash(const trl_zone_t *zone, const void *key, size_t len,
    trl_hash_t *out);

/*
 * The process id the zone locks record as owner.  The glue calls it once per
 * worker (init_process); without it the core asks getpid() itself.
 */
void trl_set_pid(int pid);


/* What one limit asks of a zone for one request. */
#define TRL_LIMIT_DRY_RUN  0x01   /* over the limit: report, do not enforce */
#define TRL_LIMIT_SYNC     0x02   /* decide on the cluster estimate (a zone
                                     created with TRL_ZONE_SYNC) */
#define TRL_LIMIT_FORCE    0x04   /* record the admission whatever the local
                                     count (strict: Redis admitted it) */

typedef struct {
    trl_rate_t  rate;
    uint32_t    flags;
    uint32_t    refresh_ms;       /* async: a cluster total read longer
                                     ago than this is due for a new read;
                                     strict: the longest a rejection is
                                     cached (0: until the unblock time) */
} trl_limit_t;

typedef struct {
    uint64_t  now_ms;        /* the clock time the decision was taken at */
    uint64_t  reset_ms;      /* clock time at which the full quota is back */
    uint64_t  retry_ms;      /* rejected: wait before a request is admitted */
    uint64_t  ticket;        /* admitted: names the admission for release */
    uint32_t  limit;         /* N */
    uint32_t  remaining;     /* places left after this decision */
    uint32_t  evicted;       /* live keys evicted to make room for this one */
    uint32_t  suppressed;    /* admitted: rejections of the key's previous
                                episode that were not logged one by one */
    uint8_t   rejected;      /* over the limit (enforced or dry run) */
    uint8_t   log_first;     /* rejected, and the key's first rejection
                                since it was last admitted: log it */
    uint8_t   recovered;     /* a lock was taken over from a dead process
                                and its stripe rebuilt */
    uint8_t   sync_read;     /* sync: the key's cluster total is due for a
                                read */
} trl_result_t;

/*
 * Decides one request for one key: admits it (and records the admission) if
 * fewer than N admissions lie in the last W, else rejects it without
 * counting it.  With TRL_LIMIT_DRY_RUN a rejection is reported the same way
 * and counted as a dry-run rejection in the statistics.
 * Returns TRL_OK, or TRL_ERROR on an internal fault (callers fail open).
 */
int trl_zone_acquire(trl_zone_t *zone, const trl_hash_t *key,
    const trl_limit_t *limit, uint64_t now_ms, trl_result_t *res);

/*
 * Gives back an admission made by trl_zone_acquire() (its ticket), for
 * count=failed/succeeded and for the rollback of a request that another zone
 * rejected.  An admission that already left the window, or whose key was
 * evicted, is not touched.
 */
int trl_zone_release(trl_zone_t *zone, const trl_hash_t *key,
    const trl_limit_t *limit, uint64_t ticket, uint64_t now_ms);

/*
 * Reads a key's state without changing it.  Returns TRL_OK and fills res
 * (rejected = 1 when the next request would be rejected) when the key is
 * known, 1 when it is not, TRL_ERROR on a fault.
 */
int trl_zone_peek(trl_zone_t *zone, const trl_hash_t *key,
    const trl_limit_t *limit, uint64_t now_ms, trl_result_t *res);


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
} trl_sync_read_t;

int trl_zone_sync_apply(trl_zone_t *zone, const trl_hash_t *key,
    const trl_limit_t *limit, const trl_sync_read_t *read, uint64_t now_ms);

/* Own admissions that will never be published (their outcome did not
 * count, or they were lost): no longer pending. */
int trl_zone_sync_unpend(trl_zone_t *zone, const trl_hash_t *key,
    uint32_t n);

/*
 * Strict zones decide in Redis.  trl_zone_strict_cached() answers from the
 * zone when the key is known to be blocked (returns 1, res filled as a
 * rejection), else returns 0: ask Redis.  trl_zone_strict_apply() takes
 * Redis's answer: an admission is recorded in the local window too (for
 * headers, and a fall-back when Redis is down), a rejection is cached until
 * the key's unblock time.
 */
typedef struct {
    uint8_t   admitted;
    uint32_t  total;         /* after the decision */
    uint32_t  free_in_ms;
    uint32_t  reset_in_ms;
} trl_strict_reply_t;

int trl_zone_strict_cached(trl_zone_t *zone, const trl_hash_t *key,
    const trl_limit_t *limit, uint64_t now_ms, trl_result_t *res);
int trl_zone_strict_apply(trl_zone_t *zone, const trl_hash_t *key,
    const trl_limit_t *limit, const trl_strict_reply_t *reply,
    uint64_t now_ms, trl_result_t *res);

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

void trl_zone_sync_add(trl_zone_t *zone, int stat, uint64_t n);
void trl_zone_sync_put(trl_zone_t *zone, int stat, uint64_t value);
void trl_zone_sync_stats(const trl_zone_t *zone,
    uint64_t stats[TRL_SYNC_STATS]);

/* Redis side: key names and scripts (see src/core/sync.hpp). */
uint64_t trl_redis_cell_ms(uint64_t window_ms);
/* Writes <prefix>{<zone>:<key>} to buf; returns its length (it is
 * truncated, and the return value larger than len, when buf is short). */
size_t trl_redis_key(const char *prefix, size_t prefix_len, const char *zone,
    size_t zone_len, const void *key, size_t key_len, char *buf, size_t len);

#define TRL_SCRIPT_PUBLISH  0
#define TRL_SCRIPT_STRICT   1
#define TRL_SCRIPT_RELEASE  2
#define TRL_SCRIPTS         3

const char *trl_redis_script(int script);


/* Statistics, summed over the zone's stripes; they live in the zone. */
typedef struct {
    uint64_t  passed;
    uint64_t  rejected;
    uint64_t  rejected_dry_run;
    uint64_t  evicted;          /* live keys evicted for want of room */
    uint64_t  recovered;        /* locks taken over from dead processes */
    uint32_t  keys;             /* entries in use */
    uint32_t  capacity;
} trl_zone_stats_t;

void trl_zone_stats(const trl_zone_t *zone, trl_zone_stats_t *stats);

/*
 * Rate-limits the "zone is full" log line: returns the number of live keys
 * evicted since the last report when a report is due (at most one per
 * interval_ms, whichever process asks), else 0.
 */
uint64_t trl_zone_eviction_report(trl_zone_t *zone, uint64_t now_ms,
    uint64_t interval_ms);

uint64_t trl_clock_ms(void);   /* the core's monotonic clock */


#ifdef __cplusplus
}
#endif

#endif /* TRL_CORE_H_INCLUDED */
