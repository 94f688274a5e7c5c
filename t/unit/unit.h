/*
 * unit.h - shared helpers of the Check unit tests of the token_ratelimit
 * core.  The tests use the C ABI (trl_core.h) only; where a test has to
 * reach into a zone (its seed, a stripe's lock word) it reads the layout
 * through the mirror of zone.hpp's Root below, and checks the mirror
 * against what the core itself reports before relying on it.
 */

#ifndef TRL_UNIT_H_INCLUDED
#define TRL_UNIT_H_INCLUDED

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <check.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "trl_core.h"
#include "trl_test.h"     /* what only the tests call */


/*
 * Assertions for hot loops.  Check's own ck_assert*() report the location
 * of every assertion that passes to the runner (a write per assertion in
 * fork mode), which makes a loop of a million checks take seconds; these
 * only call into Check when they fail.
 */
#define unit_check(expr)                                                    \
    do {                                                                    \
        if (!(expr)) {                                                      \
            ck_abort_msg("Assertion '%s' failed", #expr);                   \
        }                                                                   \
    } while (0)

#define unit_check_msg(expr, ...)                                           \
    do {                                                                    \
        if (!(expr)) {                                                      \
            ck_abort_msg(__VA_ARGS__);                                      \
        }                                                                   \
    } while (0)

#define unit_eq(x, y)                                                       \
    do {                                                                    \
        unsigned long long  unit_x_ = (x), unit_y_ = (y);                   \
        if (unit_x_ != unit_y_) {                                           \
            ck_abort_msg("Assertion '%s == %s' failed: %llu != %llu",       \
                         #x, #y, unit_x_, unit_y_);                         \
        }                                                                   \
    } while (0)


/* The suites, one per file. */
Suite *rate_suite(void);
Suite *siphash_suite(void);
Suite *sha256_suite(void);
Suite *window_suite(void);
Suite *property_suite(void);
Suite *zone_suite(void);
Suite *recovery_suite(void);
Suite *policy_suite(void);
Suite *sync_suite(void);
Suite *lease_suite(void);
Suite *lists_suite(void);
Suite *events_suite(void);
Suite *retry_suite(void);
Suite *cluster_suite(void);
Suite *grammar_suite(void);
Suite *scripts_suite(void);
Suite *distinct_suite(void);
Suite *active_suite(void);
Suite *subject_suite(void);
Suite *reputation_suite(void);
Suite *reputation_parse_suite(void);
Suite *reputation_level_suite(void);
Suite *reputation_policy_suite(void);
Suite *ban_suite(void);               /* issue 14 (BAN) */
Suite *decisions_suite(void);


/*
 * Mirror of trl::Root (src/core/zone.hpp, layout version 2).  The two
 * std::atomic<uint64_t> members are plain uint64_t here: same size and
 * alignment on every platform the core builds for.
 */
typedef struct {
    uint64_t  magic;
    uint32_t  version;
    uint32_t  entry_size;
    uint64_t  size;
    uint32_t  nstripes;
    uint32_t  per_stripe;
    uint64_t  stripes_off;
    uint64_t  heads_off;
    uint64_t  entries_off;
    uint8_t   seed[16];
    uint64_t  evict_report_ms;
    uint64_t  evict_reported;
    uint32_t  flags;
    uint32_t  reserved32;
    uint64_t  sync_off;
    uint64_t  sync_stats[TRL_SYNC_STATS];
    uint64_t  outcomes[2];
    uint64_t  offenders_off;
    uint64_t  reserved[8];      /* zone_events.cpp's line budgets: [0],
                                   [1] the event log's window and pending
                                   count, [2], [3] the error log's, [4],
                                   [5] their refused totals */
} unit_root_t;

/*
 * Mirror of trl::Stripe's first members (the lock word comes first); the
 * stripe itself is 64-byte aligned and sizeof(Stripe) bytes long, which
 * unit_stripe_size() derives from the root (stripes are followed by the
 * chain heads).
 */
typedef struct {
    uint32_t  owner;            /* pid holding the lock, 0 when free */
    uint32_t  free_head;
    uint32_t  lru_head[3];      /* open, reached limit, rejected */
    uint32_t  lru_tail[3];
    uint32_t  used;
} unit_stripe_t;

#define UNIT_STRIPE_SIZE  128   /* sizeof(trl::Stripe) on LP64 */


/* Memory: shared anonymous mappings, so that forked children see them. */
void *unit_shm(size_t size);
void unit_shm_free(void *mem, size_t size);

/* A zone in a fresh shared mapping of size bytes (asserts success). */
trl_zone_t *unit_zone(size_t size);
/* The same, made with flags (TRL_ZONE_SYNC). */
trl_zone_t *unit_zone_flags(size_t size, unsigned flags);
/* The same, with a fixed seed: key hashes (and so stripes) reproducible. */
trl_zone_t *unit_zone_seeded(size_t size, uint64_t seed);

unit_root_t *unit_root(trl_zone_t *zone);
size_t unit_stripe_size(trl_zone_t *zone);
unit_stripe_t *unit_stripe(trl_zone_t *zone, uint32_t i);

/* Key hashes. */
trl_hash_t unit_key(const trl_zone_t *zone, const char *key);
trl_hash_t unit_key_n(const trl_zone_t *zone, const char *prefix,
    unsigned long n);
/* A made-up hash that lands in stripe s of the zone (n distinguishes). */
trl_hash_t unit_key_in_stripe(trl_zone_t *zone, uint32_t s, uint64_t n);

trl_limit_t unit_limit(uint32_t n, uint64_t window_ms);

/*
 * One acquire that must not fail; returns 1 when admitted, 0 when
 * rejected, and leaves the result in *res when res is not NULL.
 */
int unit_acquire(trl_zone_t *zone, const trl_hash_t *key,
    const trl_limit_t *limit, uint64_t now_ms, trl_result_t *res);

/* Peek that must not fail (TRL_OK or 1); returns what peek returned. */
int unit_peek(trl_zone_t *zone, const trl_hash_t *key,
    const trl_limit_t *limit, uint64_t now_ms, trl_result_t *res);

/* The unit of stored times for a window: 2^shift ms, W <= 65000 units. */
uint64_t unit_time_unit(uint64_t window_ms);
/* Grid cell of shared buckets (N > 8): ceil(W / 7). */
uint64_t unit_cell(uint64_t window_ms);


/* Deterministic PRNG (splitmix64). */
typedef struct {
    uint64_t  s;
} unit_rng_t;

uint64_t unit_rand(unit_rng_t *rng);
/* Uniform in [0, n) (n > 0). */
uint64_t unit_below(unit_rng_t *rng, uint64_t n);


/* Adds a test case with a timeout (seconds) to a suite. */
TCase *unit_tcase(Suite *s, const char *name, double timeout);

#endif /* TRL_UNIT_H_INCLUDED */
