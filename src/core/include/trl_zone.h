/*
 * trl_zone.h - a zone: the sliding-window counters of one
 * token_ratelimit_zone in shared memory, the decisions taken on them, their
 * statistics, the offender and penalty views, and the budgets of the log
 * lines written about them.
 */

#ifndef TRL_ZONE_H_INCLUDED
#define TRL_ZONE_H_INCLUDED

#include "trl_base.h"
#include "trl_grammar.h"

TRL_BEGIN_DECLS


/* Keyed 128-bit hash of a key (SipHash-2-4-128). */
typedef struct {
    uint64_t  lo;
    uint64_t  hi;
} trl_hash_t;


/*
 * A zone: the counters of one token_ratelimit_zone, laid out in a block of
 * shared memory that the caller provides and that is mapped at the same
 * address in every process using it.  The zone holds keyed hashes of keys,
 * never the keys, and a fixed number of entries; it never allocates.
 */
typedef struct trl_zone_s  trl_zone_t;

/*
 * Lays out a new zone in mem (contents ignored) with a fresh random seed.
 * TRL_ZONE_SYNC adds per-key state for cluster-wide counting (32 bytes more
 * per key).
 */
#define TRL_ZONE_SYNC  0x01

trl_zone_t *trl_zone_create(void *mem, size_t size, unsigned flags,
    char *err, size_t errlen) TRL_NOEXCEPT;
unsigned trl_zone_flags(const trl_zone_t *zone) TRL_NOEXCEPT;

/*
 * Checks that mem holds a zone laid out by this version of the core (same
 * magic, layout version and, unless size is 0, size), as after
 * "nginx -s reload".  Returns NULL
 * with a reason otherwise: an incompatible zone is never misread.
 */
trl_zone_t *trl_zone_attach(void *mem, size_t size, char *err, size_t errlen)
    TRL_NOEXCEPT;

void trl_zone_hash(const trl_zone_t *zone, const void *key, size_t len,
    trl_hash_t *out) TRL_NOEXCEPT;


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
    const trl_limit_t *limit, uint64_t now_ms, trl_result_t *res) TRL_NOEXCEPT;

/*
 * Gives back an admission made by trl_zone_acquire() (its ticket), for
 * count=failed/succeeded and for the rollback of a request that another zone
 * rejected.  An admission that already left the window, or whose key was
 * evicted, is not touched.
 */
int trl_zone_release(trl_zone_t *zone, const trl_hash_t *key,
    const trl_limit_t *limit, uint64_t ticket, uint64_t now_ms) TRL_NOEXCEPT;

/*
 * Reads a key's state without changing it.  Returns TRL_OK and fills res
 * (rejected = 1 when the next request would be rejected; penalized,
 * penalty_ms and violations when it serves a penalty, violations also
 * when it does not) when the key is known, 1 when it is not, TRL_ERROR on
 * a fault.  With TRL_LIMIT_SYNC it reports the cluster estimate.
 */
int trl_zone_peek(trl_zone_t *zone, const trl_hash_t *key,
    const trl_limit_t *limit, uint64_t now_ms, trl_result_t *res) TRL_NOEXCEPT;


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

void trl_zone_stats(const trl_zone_t *zone, trl_zone_stats_t *stats)
    TRL_NOEXCEPT;

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
    const void *text, size_t len, uint64_t now_ms) TRL_NOEXCEPT;
size_t trl_zone_offenders(trl_zone_t *zone, trl_offender_t *out, size_t max,
    uint64_t now_ms) TRL_NOEXCEPT;

/* Keys serving a penalty now: the max longest left, longest first; the
 * number of them all in *active (when not NULL). */
typedef struct {
    trl_hash_t  key;
    uint64_t    left_ms;
    uint32_t    violations;
} trl_penalty_info_t;

size_t trl_zone_penalties(trl_zone_t *zone, trl_penalty_info_t *out,
    size_t max, uint64_t now_ms, uint64_t *active) TRL_NOEXCEPT;

/* The keys serving a penalty that the offender table knows by name (with
 * their names), up to max, longest first. */
size_t trl_zone_named_penalties(trl_zone_t *zone, trl_penalty_info_t *out,
    trl_offender_t *names, size_t max, uint64_t now_ms) TRL_NOEXCEPT;

/* Forgets a key: counts, penalty, sync state.  1 if it was known. */
int trl_zone_reset(trl_zone_t *zone, const trl_hash_t *key) TRL_NOEXCEPT;

/* Outcomes decided before any key is looked at (bypass, deny). */
#define TRL_OUTCOME_BYPASSED  0
#define TRL_OUTCOME_DENIED    1

void trl_zone_count(trl_zone_t *zone, int outcome) TRL_NOEXCEPT;

/*
 * Rate-limits the "zone is full" log line: returns the number of live keys
 * evicted since the last report when a report is due (at most one per
 * interval_ms, whichever process asks), else 0.
 */
uint64_t trl_zone_eviction_report(trl_zone_t *zone, uint64_t now_ms,
    uint64_t interval_ms) TRL_NOEXCEPT;


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
    uint32_t per_second, uint64_t *suppressed) TRL_NOEXCEPT;

/* The same for the event log: trl_zone_lines_permit(TRL_LINES_EVENTS). */
int trl_zone_event_permit(trl_zone_t *zone, uint64_t now_ms,
    uint32_t per_second, uint64_t *suppressed) TRL_NOEXCEPT;

/* The lines of a log refused since the zone was made (all processes). */
uint64_t trl_zone_lines_suppressed(const trl_zone_t *zone, int log)
    TRL_NOEXCEPT;


TRL_END_DECLS

#endif /* TRL_ZONE_H_INCLUDED */
