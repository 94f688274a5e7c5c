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
#define TRL_LIMIT_LEASE    0x08   /* with TRL_LIMIT_SYNC, Redis at hand:
                                     admit only from the node's lease,
                                     reject on a recent "full" read, else
                                     res.ask (see trl_zone_async_apply) */

/* The longest a lease is used, or a read saying "full" trusted (ms). */
#define TRL_LEASE_MS       1000

/* Progressive penalty: the v-th violation (a rejection) in a row blocks the
 * key for min(base * factor^(v-1), max); violations are forgotten once the
 * key stayed out of trouble for forgive after its last block ended. */
typedef struct {
    uint64_t    base_ms;          /* 0: no penalty */
    uint64_t    max_ms;
    uint64_t    forgive_ms;
    double      factor;
} trl_penalty_t;

typedef struct {
    trl_rate_t     rate;
    uint32_t       flags;
    uint32_t       refresh_ms;    /* async: a cluster total read longer
                                     ago than this is due for a new read;
                                     strict: the longest a rejection is
                                     cached (0: until the unblock time) */
    uint32_t       warn;          /* warn once this many are taken (0: no) */
    trl_penalty_t  penalty;
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
    uint8_t   warned;        /* admitted at or past the warning threshold */
    uint8_t   warn_first;    /* ... the first time since it was below it */
    uint8_t   penalized;     /* rejected: the key serves a penalty */
    uint8_t   penalty_start; /* this rejection started a penalty */
    uint32_t  violations;    /* the key's violations in a row */
    uint64_t  penalty_ms;    /* the penalty started, or left to serve */
    uint8_t   ask;           /* TRL_LIMIT_LEASE: nothing decided, Redis is
                                to be asked (trl_zone_async_apply) */
    uint8_t   leased;        /* admitted from the node's lease: Redis
                                counts it already (as a reservation) */
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
 * (rejected = 1 when the next request would be rejected; penalized,
 * penalty_ms and violations when it serves a penalty, violations also
 * when it does not) when the key is known, 1 when it is not, TRL_ERROR on
 * a fault.  With TRL_LIMIT_SYNC it reports the cluster estimate.
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
    uint32_t  penalty_in_ms; /* the key's penalty left, cluster-wide */
    uint32_t  violations;    /* ... and its violations in a row */
} trl_sync_read_t;

int trl_zone_sync_apply(trl_zone_t *zone, const trl_hash_t *key,
    const trl_limit_t *limit, const trl_sync_read_t *read, uint64_t now_ms);

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
    trl_result_t *res);

/* Names this node's reservations in Redis: the same for every process of
 * the zone, and across reloads; another node's zone has another. */
uint64_t trl_zone_node_id(const trl_zone_t *zone);

/* How long a lease of a window this long lasts: TRL_LEASE_MS, at most a
 * quarter of the window. */
uint32_t trl_lease_ms(uint64_t window_ms);

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
 * truncated, and the return value larger than len, when buf is short; 0:
 * no memory).  A key longer than TRL_REDIS_KEY_MAX bytes is named by its
 * first bytes, "~" and 32 hex digits of its SHA-256 (see sync.hpp): the
 * name is at most prefix_len + zone_len + TRL_REDIS_NAME_MAX bytes. */
#define TRL_REDIS_KEY_MAX   64
#define TRL_REDIS_NAME_MAX  (3 + 2 + 2 * TRL_REDIS_KEY_MAX)
size_t trl_redis_key(const char *prefix, size_t prefix_len, const char *zone,
    size_t zone_len, const void *key, size_t key_len, char *buf, size_t len);
/* SHA-256 (FIPS 180-4) of data, the hash of long keys' Redis names. */
void trl_sha256(const void *data, size_t len, uint8_t digest[32]);

#define TRL_SCRIPT_PUBLISH  0
#define TRL_SCRIPT_STRICT   1
#define TRL_SCRIPT_RELEASE  2
#define TRL_SCRIPT_RESET    3
#define TRL_SCRIPT_LISTS    4
#define TRL_SCRIPT_ASK      5
#define TRL_SCRIPTS         6

const char *trl_redis_script(int script);


/* Statistics, summed over the zone's stripes; they live in the zone. */
typedef struct {
    uint64_t  passed;           /* admitted, warned included (>= warned) */
    uint64_t  rejected;
    uint64_t  rejected_dry_run;
    uint64_t  evicted;          /* live keys evicted for want of room */
    uint64_t  recovered;        /* locks taken over from dead processes */
    uint64_t  warned;           /* admitted past a warning threshold */
    uint64_t  penalized;        /* rejected while serving a penalty */
    uint64_t  penalties;        /* penalties started */
    uint64_t  bypassed;         /* requests the zone let through unasked */
    uint64_t  denied;           /* requests denied before the zone was asked */
    uint64_t  offenses;         /* keys going over their limit: a key counts
                                   once until it is admitted again */
    uint32_t  keys;             /* entries in use */
    uint32_t  capacity;
} trl_zone_stats_t;

void trl_zone_stats(const trl_zone_t *zone, trl_zone_stats_t *stats);

/*
 * Inspection (token_ratelimit_api).  Top offenders: the keys rejected most
 * often in the last few minutes (a score that halves every minute), with
 * their text, cut to 62 bytes; the glue tells the zone about every
 * rejection (it never waits for it: a busy table skips the update).
 */
typedef struct {
    trl_hash_t  key;
    char        text[62];
    uint8_t     len;
    uint8_t     truncated;
    uint64_t    score;
    uint64_t    total;
    uint64_t    first_ms;
    uint64_t    last_ms;
} trl_offender_t;

void trl_zone_offend(trl_zone_t *zone, const trl_hash_t *key,
    const void *text, size_t len, uint64_t now_ms);
size_t trl_zone_offenders(trl_zone_t *zone, trl_offender_t *out, size_t max,
    uint64_t now_ms);
/* 1 and out filled when the table knows the key, else 0. */
int trl_zone_offender(trl_zone_t *zone, const trl_hash_t *key,
    trl_offender_t *out);

/* Keys serving a penalty now: the max longest left, longest first; the
 * number of them all in *active (when not NULL). */
typedef struct {
    trl_hash_t  key;
    uint64_t    left_ms;
    uint32_t    violations;
} trl_penalty_info_t;

size_t trl_zone_penalties(trl_zone_t *zone, trl_penalty_info_t *out,
    size_t max, uint64_t now_ms, uint64_t *active);

/* The keys serving a penalty that the offender table knows by name (with
 * their names), up to max, longest first. */
size_t trl_zone_named_penalties(trl_zone_t *zone, trl_penalty_info_t *out,
    trl_offender_t *names, size_t max, uint64_t now_ms);

/* Forgets a key: counts, penalty, sync state.  1 if it was known. */
int trl_zone_reset(trl_zone_t *zone, const trl_hash_t *key);

/*
 * Runtime allow and deny entries (token_ratelimit_api), in a block of shared
 * memory of their own: an address or CIDR range (family 4 or 6, prefix
 * bits), or a key (family 0) of one zone (zone "" for every zone).  Times
 * are Unix ms (wall clock: entries travel between nodes).  Deny wins over
 * allow.  The match calls cost one atomic load while the lists are empty.
 */
#define TRL_LIST_ALLOW  1
#define TRL_LIST_DENY   2
#define TRL_LIST_RESET  3            /* a key reset on its way to the other
                                        nodes: never matches, never listed */

#define TRL_LIST_SYNCED 0x01         /* flags: Redis holds the entry */

typedef struct {
    uint64_t  id;                /* 0: a new entry (add assigns one) */
    uint64_t  created_ms;
    uint64_t  expires_ms;        /* 0: never */
    uint8_t   action;            /* TRL_LIST_ALLOW or TRL_LIST_DENY */
    uint8_t   family;            /* 0 key, 4 IPv4, 6 IPv6 */
    uint8_t   prefix;            /* bits of addr that match */
    uint8_t   key_len;
    uint8_t   flags;             /* TRL_LIST_SYNCED */
    uint8_t   addr[16];
    char      zone[64];          /* NUL-terminated */
    char      key[128];
} trl_list_entry_t;

typedef struct trl_lists_s  trl_lists_t;

trl_lists_t *trl_lists_create(void *mem, size_t size);
trl_lists_t *trl_lists_attach(void *mem, size_t size);
uint32_t trl_lists_capacity(const trl_lists_t *lists);
uint64_t trl_lists_changes(const trl_lists_t *lists);
int trl_lists_add(trl_lists_t *lists, trl_list_entry_t *entry,
    uint64_t now_ms);                    /* TRL_ERROR when full */
/* 1: removed.  With tombstone, the removal is kept (invisible) until Redis
 * has been told (trl_lists_outgoing). */
int trl_lists_remove(trl_lists_t *lists, uint64_t id, int tombstone);
size_t trl_lists_get(trl_lists_t *lists, trl_list_entry_t *out, size_t max,
    uint64_t now_ms);
/* The entries in force now, of each action. */
void trl_lists_count(trl_lists_t *lists, uint64_t now_ms, uint64_t *allow,
    uint64_t *deny);
/* 0, TRL_LIST_ALLOW or TRL_LIST_DENY */
int trl_lists_match_addr(trl_lists_t *lists, int family,
    const uint8_t *addr, uint64_t now_ms);
int trl_lists_match_key(trl_lists_t *lists, const char *zone,
    size_t zone_len, const void *key, size_t key_len, uint64_t now_ms);

/*
 * Cluster-wide lists (token_ratelimit_redis): the entries live in the Redis
 * hash <prefix>lists, one field per id (a decimal number below 2^53) and a
 * field "epoch" that tells a rebuilt hash from the one a node saw before.
 * One process at a time reconciles (trl_lists_sync_due): it sends what
 * Redis lacks (new entries, removals) and takes in the whole hash; an entry
 * that Redis had and lost is removed, unless the hash was rebuilt (new
 * epoch): then every live entry is sent again.
 */
/* 1 when the caller is to reconcile now (then due again interval_ms later;
 * force: whatever the time), and none is in flight (a reconcile that has
 * not said it is done is given up after busy_ms). */
int trl_lists_sync_due(trl_lists_t *lists, uint64_t now_ms,
    uint64_t interval_ms, uint64_t busy_ms, int force);
/* The reconcile is over (answered or failed); 1 when another was asked for
 * meanwhile (force), to be started at once. */
int trl_lists_sync_done(trl_lists_t *lists);
uint64_t trl_lists_epoch(trl_lists_t *lists);    /* 0: none seen yet */
/* What Redis lacks: live entries not synced (up to max_puts) and removed
 * ids (up to max_dels, *ndels set). */
size_t trl_lists_outgoing(trl_lists_t *lists, trl_list_entry_t *puts,
    size_t max_puts, uint64_t *dels, size_t max_dels, size_t *ndels,
    uint64_t now_ms);
/* Redis's answer: its epoch and entries (all of the hash), after the puts
 * and dels sent (which are then marked synced, or forgotten).  The resets
 * of other nodes seen for the first time are copied to resets (up to
 * max_resets, *nresets set; the others wait for the next reconcile): the
 * caller forgets those keys. */
void trl_lists_incoming(trl_lists_t *lists, uint64_t epoch,
    const trl_list_entry_t *remote, size_t nremote,
    const uint64_t *puts, size_t nputs, const uint64_t *dels, size_t ndels,
    trl_list_entry_t *resets, size_t max_resets, size_t *nresets,
    uint64_t now_ms);
/* An entry as the value of its Redis field, and back (TRL_OK or
 * TRL_ERROR); encode returns the length (0 when len is short). */
size_t trl_list_encode(const trl_list_entry_t *e, char *buf, size_t len);
int trl_list_decode(uint64_t id, const char *text, size_t len,
    trl_list_entry_t *e);

/* Outcomes decided before any key is looked at (bypass, deny). */
#define TRL_OUTCOME_BYPASSED  0
#define TRL_OUTCOME_DENIED    1

void trl_zone_count(trl_zone_t *zone, int outcome);

/*
 * Rate-limits the "zone is full" log line: returns the number of live keys
 * evicted since the last report when a report is due (at most one per
 * interval_ms, whichever process asks), else 0.
 */
uint64_t trl_zone_eviction_report(trl_zone_t *zone, uint64_t now_ms,
    uint64_t interval_ms);

uint64_t trl_clock_ms(void);   /* the core's monotonic clock */


/*
 * Line budgets: at most per_second lines a second per zone and per log,
 * all processes together, counted without a lock in the zone.  log is
 * TRL_LINES_EVENTS (token_ratelimit_event_log) or TRL_LINES_ERRORS (the
 * limiter's error log lines, token_ratelimit_zone log_rate=).  Returns 1
 * when a line may be written now, else 0 (the line is counted as
 * suppressed).  On 1, *suppressed gets the number of lines refused since
 * the previous permitted one, which are then forgotten (0: none).  now_ms
 * is the caller's clock in ms (the glue passes Unix time, so that the
 * seconds counted are those of the lines' timestamps); a second earlier
 * than the one being counted (a clock a little behind another process's)
 * is refused, one more than 2 s earlier (the clock was set back) starts a
 * new second.  per_second is at most TRL_EVENT_MAX_RATE; 0 refuses all.
 */
#define TRL_EVENT_MAX_RATE  100000

#define TRL_LINES_EVENTS    0
#define TRL_LINES_ERRORS    1
#define TRL_LINES_LOGS      2

int trl_zone_lines_permit(trl_zone_t *zone, int log, uint64_t now_ms,
    uint32_t per_second, uint64_t *suppressed);

/* The same for the event log: trl_zone_lines_permit(TRL_LINES_EVENTS). */
int trl_zone_event_permit(trl_zone_t *zone, uint64_t now_ms,
    uint32_t per_second, uint64_t *suppressed);

/* The lines of a log refused since the zone was made (all processes). */
uint64_t trl_zone_lines_suppressed(const trl_zone_t *zone, int log);


/*
 * Policy files (YAML, read with libyaml).
 *
 *   enabled: ${ENABLE_RATE_LIMITING:-true}   # master switch (default true)
 *   environment: production      # the environment used when none is asked
 *   defaults:                    # settings of every policy, overridable
 *     key: $binary_remote_addr
 *     zone_size: 10m
 *   environments:                # required, at least one
 *     development:
 *       login: { rate: 100r/15m }
 *     production:
 *       login:
 *         rate: 20r/15m          # required (here or in defaults)
 *         key: $binary_remote_addr  # nginx string; required (or defaults)
 *         count: failed          # all (default) | failed | succeeded
 *         warn: 80%              # 1%..100% of N (rounded up), 1..N, or off
 *         penalty:               # or "off" (cancels a penalty of defaults)
 *           base: 30s            # required when penalty is given
 *           factor: 2            # 1 to 1000, decimals allowed; default 2
 *           max: 1h              # >= base; default 1h
 *           forgive: 24h         # default: max
 *         dry_run: false
 *         sync: off              # off (default) | async | strict
 *         zone_size: 10m         # bytes or k/m/g; >= 32k; default 10m
 *
 * - Top-level keys, policy keys and penalty keys are the ones above; any
 *   other is an error.  A policy inherits every setting it does not give
 *   from defaults:; a penalty given both in defaults and in a policy is
 *   merged key by key.  An empty value where a mapping is expected (a
 *   policy, an environment, defaults) is an empty mapping.
 * - Environment and policy names: 1 to 63 letters, digits, '_', '-', '.'.
 * - Booleans: true/false, yes/no, on/off, 1/0 (any case); keywords (count,
 *   sync) any case.  Durations: <N><unit> terms, unit ms, s, m, h or d,
 *   summed ("1h30m"), at most 365d; penalty durations above 0.
 * - ${NAME} and ${NAME:-default} are substituted in every scalar value
 *   (not in keys) before it is read, several per value; the default is
 *   used when NAME is unset or empty and is taken literally up to the
 *   first '}' (no nesting).  A '$' not followed by '{' is literal, so
 *   nginx variables stay as written; "$$" is not special.  An unset NAME
 *   without a default is an error.  Values come from lookup (NULL: the
 *   process environment).  Inside a flow mapping ({ ... }) a value with
 *   ${...} must be quoted: YAML ends plain scalars there at '{' and '}'.
 * - Every environment is read and validated, not only the chosen one.
 * - Anchors, aliases, tags and more than one YAML document are refused.
 * - Errors: "FILE:LINE:COLUMN: what is wrong; what was expected", line and
 *   column 1-based, of the offending node (libyaml's problem mark for
 *   syntax errors); "FILE: cannot open the policy file: <reason>" (or
 *   "cannot read") when it cannot be read, as there is no position.
 */
typedef const char *(*trl_env_lookup_pt)(void *ctx, const char *name,
    size_t len);                     /* NUL-terminated value; NULL: unset */

#define TRL_POLICY_COUNT_ALL        0
#define TRL_POLICY_COUNT_FAILED     1
#define TRL_POLICY_COUNT_SUCCEEDED  2

#define TRL_POLICY_SYNC_OFF         0
#define TRL_POLICY_SYNC_ASYNC       1
#define TRL_POLICY_SYNC_STRICT      2

typedef struct {
    char         name[64];           /* policy name, NUL-terminated */
    const char  *key;                /* NUL-terminated nginx string, owned
                                        by the set */
    trl_rate_t   rate;
    uint64_t     zone_size;          /* bytes */
    uint32_t     count;              /* TRL_POLICY_COUNT_* */
    uint32_t     warn;               /* absolute count, 0: none (a percent
                                        p is ceil(N * p / 100)) */
    uint32_t     sync;               /* TRL_POLICY_SYNC_* */
    uint8_t      dry_run;
    uint8_t      has_penalty;
    uint64_t     penalty_base_ms;    /* penalty fields: 0 without one */
    uint64_t     penalty_max_ms;
    uint64_t     penalty_forgive_ms;
    double       penalty_factor;
    uint32_t     line;               /* where the policy's name is */
} trl_policy_t;

typedef struct trl_policy_set_s  trl_policy_set_t;

/*
 * Loads the policies of one environment: environment if not NULL (or ""),
 * else the file's environment:, else the file's only environment; anything
 * else is an error.  Returns NULL with a message in err on error.
 */
trl_policy_set_t *trl_policy_load(const char *path, const char *environment,
    trl_env_lookup_pt lookup, void *lookup_ctx, char *err, size_t errlen);
void trl_policy_free(trl_policy_set_t *set);          /* NULL: nothing */

int trl_policy_enabled(const trl_policy_set_t *set);  /* 1 or 0 */
const char *trl_policy_environment(const trl_policy_set_t *set);
size_t trl_policy_count(const trl_policy_set_t *set);
/* The i-th policy in file order: TRL_OK, or TRL_ERROR on a bad index. */
int trl_policy_get(const trl_policy_set_t *set, size_t i, trl_policy_t *out);
/* TRL_OK, or 1 when the set has no policy of that name. */
int trl_policy_find(const trl_policy_set_t *set, const char *name,
    size_t len, trl_policy_t *out);

/* Durations as in policy files ("500ms", "30s", "1h30m"; 0 allowed). */
int trl_duration_parse(const char *text, size_t len, uint64_t *ms,
    char *err, size_t errlen);
/* Sizes: bytes, or k/m/g (any case) multiples of 1024. */
int trl_size_parse(const char *text, size_t len, uint64_t *bytes,
    char *err, size_t errlen);

/*
 * What "token_ratelimit ... penalty=" and "warn=" take, with the grammar of
 * their YAML twins: BASE[:FACTOR[:MAX[:FORGIVE]]] (durations as above,
 * above 0; FACTOR 1 to 1000, default 2; MAX default 1h or BASE if larger;
 * FORGIVE default MAX); a warning threshold P% (1..100), a count (>= 1,
 * UINT32_MAX when beyond: the caller checks it against N) or off (both
 * 0).  On error, err says what is wrong and what is accepted.
 */
int trl_penalty_parse(const char *text, size_t len, trl_penalty_t *penalty,
    char *err, size_t errlen);
int trl_warn_parse(const char *text, size_t len, uint32_t *count,
    uint32_t *percent, char *err, size_t errlen);


#ifdef __cplusplus
}
#endif

#endif /* TRL_CORE_H_INCLUDED */
