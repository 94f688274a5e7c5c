/*
 * test_retry.c - Retry-After is truthful: a client that waits exactly what
 * a rejection told it (rounded up to whole seconds, as the header says) is
 * admitted at once, with no other traffic, and is never told a whole second
 * more than it had to wait.  Cases from the issue and a randomized test over
 * rates and penalties (fixed seeds, printed on failure).
 */

#include "unit.h"

#include <stdio.h>
#include <string.h>


#define SEC   1000ULL
#define MIN   (60 * SEC)
#define HOUR  (60 * MIN)

#define T0    (1ULL << 30)


static trl_limit_t
penalized(uint32_t n, uint64_t w, uint64_t base, double factor, uint64_t max,
    uint64_t forgive)
{
    trl_limit_t  l = unit_limit(n, w);

    l.penalty.base_ms = base;
    l.penalty.factor = factor;
    l.penalty.max_ms = max;
    l.penalty.forgive_ms = forgive;
    return l;
}


/* The header's value: whole seconds, rounded up, at least 1. */
static uint64_t
header_seconds(uint64_t retry_ms)
{
    uint64_t  s = (retry_ms + 999) / 1000;

    return s ? s : 1;
}


/*
 * 3r/5s with penalty=3s:2:30s:1m: 3 admitted, then told 5 (the window),
 * then 5 again although the block is 3 s long (the window is still full);
 * a client that waits that long is admitted, no second violation.
 */
START_TEST(window_outlasts_block)
{
    trl_zone_t    *zone = unit_zone(1 << 20);
    trl_hash_t     key = unit_key(zone, "k");
    trl_limit_t    l = penalized(3, 5 * SEC, 3 * SEC, 2, 30 * SEC, MIN);
    trl_result_t   res;
    uint64_t       t = T0 + 7;
    int            i;

    for (i = 0; i < 3; i++) {
        ck_assert(unit_acquire(zone, &key, &l, t + i, NULL));
    }

    ck_assert(!unit_acquire(zone, &key, &l, t + 10, &res));
    ck_assert(res.penalty_start);
    ck_assert_uint_eq(res.violations, 1);
    ck_assert_uint_eq(header_seconds(res.retry_ms), 5);

    ck_assert(!unit_acquire(zone, &key, &l, t + 20, &res));
    ck_assert(res.penalized);
    ck_assert_uint_eq(header_seconds(res.retry_ms), 5);

    /* one second into it: 4 more */
    ck_assert(!unit_acquire(zone, &key, &l, t + 1000, &res));
    ck_assert_uint_eq(header_seconds(res.retry_ms), 4);

    /* the block is over (3 s), the window is not: still 2 s, no new
     * violation is what the obedient client gets below */
    ck_assert(unit_peek(zone, &key, &l, t + 3500, &res) == TRL_OK);
    ck_assert(res.rejected);

    ck_assert(unit_acquire(zone, &key, &l, t + 1000 + 4 * SEC, &res));
    ck_assert_uint_eq(res.violations, 0);
}
END_TEST


/* 2r/1h with penalty=2s: every rejection tells the window's wait (about an
 * hour), never the 2 s block. */
START_TEST(long_window_short_block)
{
    trl_zone_t    *zone = unit_zone(1 << 20);
    trl_hash_t     key = unit_key(zone, "k");
    trl_limit_t    l = penalized(2, HOUR, 2 * SEC, 2, 30 * SEC, MIN);
    trl_result_t   res;
    uint64_t       t = T0, s;
    int            i;

    ck_assert(unit_acquire(zone, &key, &l, t, NULL));
    ck_assert(unit_acquire(zone, &key, &l, t + 1, NULL));

    for (i = 0; i < 20; i++) {
        uint64_t  now = t + 10 + (uint64_t) i * 500;

        ck_assert(!unit_acquire(zone, &key, &l, now, &res));
        s = header_seconds(res.retry_ms);
        ck_assert_msg(s == header_seconds(t + HOUR - now),
                      "request %d told %llu s", i, (unsigned long long) s);
    }
}
END_TEST


/* A block alone: told exactly its length, not a second more. */
START_TEST(block_not_a_second_long)
{
    trl_limit_t    l = penalized(1, SEC, 3 * SEC, 1, 3 * SEC, MIN);
    trl_result_t   res;
    uint64_t       t;

    for (t = T0 + 1; t < T0 + 40; t += 3) {     /* every phase of 16 ms */
        trl_zone_t  *z = unit_zone(1 << 16);
        trl_hash_t   k = unit_key(z, "k");

        ck_assert(unit_acquire(z, &k, &l, t, NULL));
        ck_assert(!unit_acquire(z, &k, &l, t + 1, &res));
        ck_assert(res.penalty_start);
        ck_assert_uint_eq(header_seconds(res.retry_ms), 3);
        ck_assert(!unit_acquire(z, &k, &l, t + 2, &res));
        ck_assert(res.penalized);
        ck_assert_uint_eq(header_seconds(res.retry_ms), 3);
    }
}
END_TEST


/*
 * Random rates, penalties and bursts.  After every rejection: a peek one
 * millisecond before the wait is over still finds the key blocked (the
 * wait is not longer than needed), and the request sent when the header's
 * whole seconds are over is admitted (the wait is long enough) without a
 * new violation.
 */
START_TEST(obedient_client_random)
{
    unit_rng_t    rng;
    uint64_t      seed = 0x5eed0000ULL + (uint64_t) _i;
    int           round;

    rng.s = seed;

    for (round = 0; round < 40; round++) {
        trl_zone_t    *zone = unit_zone(1 << 16);
        trl_hash_t     key = unit_key(zone, "k");
        uint32_t       n = 1 + (uint32_t) unit_below(&rng, 30);
        uint64_t       w = (1 + unit_below(&rng, 600)) * SEC;
        uint64_t       base = unit_below(&rng, 3) ? (1 + unit_below(&rng,
                                                             120)) * SEC
                                                  : 0;
        trl_limit_t    l = penalized(n, w, base,
                                     1.0 + (double) unit_below(&rng, 3),
                                     base * (1 + unit_below(&rng, 8)),
                                     (1 + unit_below(&rng, 60)) * SEC);
        trl_result_t   res, pk;
        uint64_t       t = T0 + unit_below(&rng, 100000);
        uint32_t       violations;
        int            step;

        for (step = 0; step < 60; step++) {
            if (unit_acquire(zone, &key, &l, t, &res)) {
                /* a burst of traffic, then a pause */
                t += unit_below(&rng, 4) ? unit_below(&rng, 50)
                                         : unit_below(&rng, w);
                continue;
            }

            violations = res.violations;

            unit_check_msg(res.retry_ms >= 1, "seed %llu: no wait",
                           (unsigned long long) seed);

            if (res.retry_ms > 1) {
                unit_check(unit_peek(zone, &key, &l, t + res.retry_ms - 1,
                                     &pk) == TRL_OK);
                unit_check_msg(pk.rejected, "seed %llu round %d: %u/%llu "
                               "base %llu: admitted 1 ms before the %llu ms "
                               "wait was over", (unsigned long long) seed,
                               round, n, (unsigned long long) w,
                               (unsigned long long) base,
                               (unsigned long long) res.retry_ms);
            }

            t += header_seconds(res.retry_ms) * SEC;

            unit_check_msg(unit_acquire(zone, &key, &l, t, &res),
                           "seed %llu round %d: %u/%llu base %llu: "
                           "rejected after waiting as told",
                           (unsigned long long) seed, round, n,
                           (unsigned long long) w,
                           (unsigned long long) base);
            unit_check_msg(res.violations <= violations, "seed %llu: a "
                           "violation was added", (unsigned long long) seed);
            t += unit_below(&rng, 30);
        }

    }
}
END_TEST


/*
 * Strict zones: a block Redis answered is trusted here for a second, but
 * the wait told from the cache is Redis's (until a place is free), and a
 * penalty mirrored from Redis tells the later of its end and that.
 */
START_TEST(strict_cache_tells_redis_wait)
{
    trl_zone_t          *zone = unit_zone_flags(1 << 20, TRL_ZONE_SYNC);
    trl_hash_t           key = unit_key(zone, "k");
    trl_limit_t          l = unit_limit(5, MIN);
    trl_strict_reply_t   rp;
    trl_result_t         res;

    l.flags = TRL_LIMIT_SYNC;
    l.refresh_ms = 1000;

    memset(&rp, 0, sizeof(rp));
    rp.total = 5;
    rp.free_in_ms = 50000;
    rp.reset_in_ms = 58000;
    ck_assert_int_eq(trl_zone_strict_apply(zone, &key, &l, &rp, T0, &res),
                     TRL_OK);
    ck_assert(res.rejected);
    ck_assert_uint_eq(header_seconds(res.retry_ms), 50);

    ck_assert_int_eq(trl_zone_strict_cached(zone, &key, &l, T0 + 300, &res),
                     1);
    ck_assert_uint_eq(header_seconds(res.retry_ms), 50);   /* 49.7 s */

    /* a penalty of 3 s that ends before the window frees (40 s) */
    key = unit_key(zone, "p");
    memset(&rp, 0, sizeof(rp));
    rp.total = 5;
    rp.penalty = TRL_STRICT_PENALTY_STARTED;
    rp.free_in_ms = 40000;
    rp.block_in_ms = 3000;
    rp.reset_in_ms = 58000;
    rp.violations = 1;
    ck_assert_int_eq(trl_zone_strict_apply(zone, &key, &l, &rp, T0, &res),
                     TRL_OK);
    ck_assert(res.penalty_start);
    ck_assert_uint_eq(res.penalty_ms, 3000);
    ck_assert_uint_eq(header_seconds(res.retry_ms), 40);

    ck_assert_int_eq(trl_zone_strict_cached(zone, &key, &l, T0 + 10, &res),
                     1);
    ck_assert(res.penalized);
    ck_assert_uint_eq(header_seconds(res.retry_ms), 40);
}
END_TEST


Suite *
retry_suite(void)
{
    Suite  *s;
    TCase  *tc;

    s = suite_create("retry");

    tc = unit_tcase(s, "truthful", 60);
    tcase_add_test(tc, window_outlasts_block);
    tcase_add_test(tc, long_window_short_block);
    tcase_add_test(tc, block_not_a_second_long);
    tcase_add_test(tc, strict_cache_tells_redis_wait);
    tcase_add_loop_test(tc, obedient_client_random, 0, 8);

    return s;
}
