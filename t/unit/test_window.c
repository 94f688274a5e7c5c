/*
 * test_window.c - the sliding window of one key, through acquire, peek and
 * release with explicit clock times.
 */

#include "unit.h"


#define SEC   1000ULL
#define MIN   (60 * SEC)
#define HOUR  (60 * MIN)
#define DAY   (24 * HOUR)

#define ZONE_SIZE  (1024 * 1024)


static trl_zone_t  *zone;

static void
setup(void)
{
    zone = unit_zone(ZONE_SIZE);
}

static void
teardown(void)
{
    unit_shm_free(zone, ZONE_SIZE);
    zone = NULL;
}


/* Window lengths: shift 0 (exact ms) and coarser units. */
static const uint64_t windows[] = {
    1 * SEC, 10 * SEC, 16 * SEC, 17 * SEC, 30 * SEC, MIN, 15 * MIN, HOUR,
    DAY, 365 * DAY,
};
#define NWINDOWS  (int) (sizeof(windows) / sizeof(windows[0]))


/*
 * N <= 8: an admission at t counts until t+W-1 and its place is back at
 * t+W exactly (times on the unit grid).
 */
START_TEST(exact_boundaries)
{
    uint64_t      w = windows[_i];
    uint64_t      u = unit_time_unit(w);
    uint64_t      t0 = u * 100000;
    trl_hash_t    key;
    trl_limit_t   l;
    trl_result_t  r;
    uint32_t      n, k;

    for (n = 1; n <= 8; n++) {
        uint64_t  t[8];

        key = unit_key_n(zone, "exact", n * 1000 + (unsigned) _i);
        l = unit_limit(n, w);

        for (k = 0; k < n; k++) {
            t[k] = t0 + k * 3 * u;
            ck_assert(unit_acquire(zone, &key, &l, t[k], &r));
            ck_assert_uint_eq(r.remaining, n - 1 - k);
            ck_assert_uint_eq(r.limit, n);
            ck_assert_uint_eq(r.reset_ms, t[k] + w);
            ck_assert_uint_eq(r.now_ms, t[k]);
            ck_assert_uint_eq(r.ticket, t[k]);
        }
        ck_assert(!unit_acquire(zone, &key, &l, t[n - 1], &r));
        ck_assert_uint_eq(r.remaining, 0);
        ck_assert_uint_eq(r.retry_ms, t[0] + w - t[n - 1]);
        ck_assert_uint_eq(r.reset_ms, t[n - 1] + w);

        /* admission k still counts at t[k]+W-1, is gone at t[k]+W */
        for (k = 0; k < n; k++) {
            ck_assert_int_eq(unit_peek(zone, &key, &l, t[k] + w - 1, &r),
                             TRL_OK);
            ck_assert_uint_eq(r.remaining, k);
            ck_assert_uint_eq(r.rejected, k == 0);
            if (k == 0) {
                ck_assert_uint_eq(r.retry_ms, 1);
            }
            ck_assert_int_eq(unit_peek(zone, &key, &l, t[k] + w, &r), TRL_OK);
            ck_assert_uint_eq(r.remaining, k + 1);
            ck_assert_uint_eq(r.rejected, 0);
        }

        /* the first place back is taken at once, then the key is full */
        ck_assert(!unit_acquire(zone, &key, &l, t[0] + w - 1, &r));
        ck_assert_uint_eq(r.retry_ms, 1);
        ck_assert(unit_acquire(zone, &key, &l, t[0] + w, &r));
        ck_assert_uint_eq(r.remaining, 0);
        /* W need not be a whole number of units: rounded up */
        ck_assert_uint_eq(r.ticket, (t[0] + w + u - 1) / u * u);
        k = (uint32_t) (r.ticket - (t[0] + w));
        ck_assert(!unit_acquire(zone, &key, &l, t[0] + w, &r));
        if (n > 1) {
            ck_assert_uint_eq(r.retry_ms, t[1] - t[0]);
        } else {
            ck_assert_uint_eq(r.retry_ms, w + k);
        }
    }
}
END_TEST


/* Times off the unit grid are rounded up: a place comes back late by less
 * than a unit, never early. */
START_TEST(unaligned_times_never_early)
{
    uint64_t      w = windows[_i];
    uint64_t      u = unit_time_unit(w);
    uint64_t      t0 = u * 100000 + (u > 1 ? u / 2 + 1 : 0);
    uint64_t      back = (t0 + u - 1) / u * u + w;
    trl_hash_t    key = unit_key_n(zone, "unaligned", (unsigned) _i);
    trl_limit_t   l = unit_limit(1, w);
    trl_result_t  r;

    ck_assert(unit_acquire(zone, &key, &l, t0, &r));
    ck_assert_uint_ge(r.ticket, t0);
    ck_assert_uint_lt(r.ticket, t0 + u);
    ck_assert_uint_eq(r.reset_ms, r.ticket + w);

    ck_assert(!unit_acquire(zone, &key, &l, t0 + w - 1, &r));
    ck_assert(!unit_acquire(zone, &key, &l, back - 1, &r));
    ck_assert_uint_eq(r.retry_ms, 1);
    ck_assert_uint_le(back, t0 + w + u - 1);
    ck_assert(unit_acquire(zone, &key, &l, back, &r));
}
END_TEST


static const uint32_t limits[] = {
    1, 2, 3, 7, 8, 9, 10, 20, 100, 1000, 65535,
};
#define NLIMITS  (int) (sizeof(limits) / sizeof(limits[0]))

START_TEST(n_admitted_then_rejected)
{
    uint32_t      n = limits[_i];
    uint64_t      t = 5 * DAY;
    trl_hash_t    key = unit_key_n(zone, "burst", n);
    trl_limit_t   l = unit_limit(n, MIN);
    trl_result_t  r;
    uint32_t      k;

    for (k = 0; k < n; k++) {
        ck_assert_msg(unit_acquire(zone, &key, &l, t + (k % 3), &r),
                      "N=%u: request %u rejected", n, k + 1);
        ck_assert_uint_eq(r.remaining, n - 1 - k);
        ck_assert_uint_eq(r.rejected, 0);
        ck_assert_uint_eq(r.retry_ms, 0);
    }
    for (k = 0; k < 5; k++) {
        ck_assert_msg(!unit_acquire(zone, &key, &l, t + 2, &r),
                      "N=%u: request N+%u admitted", n, k + 1);
        ck_assert_uint_eq(r.remaining, 0);
        ck_assert_uint_eq(r.limit, n);
        ck_assert_uint_ge(r.retry_ms, 1);
        ck_assert_uint_eq(r.ticket, 0);
    }

    /* a full window later everything is back */
    for (k = 0; k < n; k++) {
        ck_assert(unit_acquire(zone, &key, &l, t + 2 * MIN + (k % 3), &r));
    }
    ck_assert(!unit_acquire(zone, &key, &l, t + 2 * MIN + 2, &r));
}
END_TEST


/* Rejected requests are never counted. */
START_TEST(rejected_not_counted)
{
    static const struct { uint32_t n; uint64_t w; } c[] = {
        { 1, 10 * SEC }, { 5, MIN }, { 8, HOUR }, { 20, 70 * SEC },
        { 100, DAY },
    };
    unsigned      i, k;
    trl_result_t  r;

    for (i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
        uint64_t     u = unit_time_unit(c[i].w);
        uint64_t     t0 = u * 1000000;
        trl_hash_t   key = unit_key_n(zone, "hammer", i);
        trl_limit_t  l = unit_limit(c[i].n, c[i].w);
        trl_zone_stats_t  st;

        for (k = 0; k < c[i].n; k++) {
            ck_assert(unit_acquire(zone, &key, &l, t0, &r));
        }
        /* hammer the whole window long */
        for (k = 0; k < 20000; k++) {
            uint64_t  now = t0 + (c[i].w - 1) * k / 19999;

            ck_assert_msg(!unit_acquire(zone, &key, &l, now, &r),
                          "case %u: admitted at +%llu", i,
                          (unsigned long long) (now - t0));
        }
        /* exactly N again after W */
        for (k = 0; k < c[i].n; k++) {
            ck_assert_msg(unit_acquire(zone, &key, &l, t0 + c[i].w, &r),
                          "case %u: only %u admitted after W", i, k);
        }
        ck_assert(!unit_acquire(zone, &key, &l, t0 + c[i].w, &r));

        trl_zone_stats(zone, &st);
        ck_assert_uint_ge(st.rejected, 20001);
    }
}
END_TEST


/*
 * N <= 8: retry_ms is the truth, to the millisecond: rejected at
 * now+retry_ms-1, admitted at now+retry_ms.
 */
START_TEST(retry_tight_exact_log)
{
    unit_rng_t    rng = { 1000 + (uint64_t) _i };
    uint64_t      w = windows[_i];
    uint32_t      n;
    trl_result_t  r, p;

    for (n = 1; n <= 8; n++) {
        trl_hash_t   key = unit_key_n(zone, "retry", n * 100 + (unsigned) _i);
        trl_limit_t  l = unit_limit(n, w);
        uint64_t     now = 1000 * DAY + unit_below(&rng, DAY);
        int          rejections = 0, k;

        for (k = 0; k < 400 && rejections < 60; k++) {
            now += unit_below(&rng, 3 * w / (2 * n) + 2);
            if (unit_acquire(zone, &key, &l, now, &r)) {
                continue;
            }
            rejections++;
            ck_assert_uint_ge(r.retry_ms, 1);
            ck_assert_uint_le(r.retry_ms, w + unit_time_unit(w));

            ck_assert_int_eq(unit_peek(zone, &key, &l, now, &p), TRL_OK);
            ck_assert_uint_eq(p.rejected, 1);
            ck_assert_uint_eq(p.retry_ms, r.retry_ms);

            ck_assert_int_eq(unit_peek(zone, &key, &l, now + r.retry_ms - 1,
                                       &p), TRL_OK);
            ck_assert_msg(p.rejected == 1, "N=%u W=%llu: free before retry",
                          n, (unsigned long long) w);
            ck_assert_uint_eq(p.retry_ms, 1);

            ck_assert_int_eq(unit_peek(zone, &key, &l, now + r.retry_ms, &p),
                             TRL_OK);
            ck_assert_msg(p.rejected == 0 && p.remaining >= 1,
                          "N=%u W=%llu: not free at retry (remaining %u)", n,
                          (unsigned long long) w, p.remaining);

            /* and truly admitted then, half of the time */
            if (unit_below(&rng, 2)) {
                now += r.retry_ms;
                ck_assert(unit_acquire(zone, &key, &l, now, &r));
            }
        }
        ck_assert_int_gt(rejections, 10);
    }
}
END_TEST


START_TEST(reset_and_remaining)
{
    trl_hash_t    key = unit_key(zone, "reset");
    trl_limit_t   l = unit_limit(4, 10 * SEC);
    uint64_t      t0 = 1000 * SEC;
    trl_result_t  r;

    /* unknown key */
    ck_assert_int_eq(unit_peek(zone, &key, &l, t0, &r), 1);
    ck_assert_uint_eq(r.remaining, 4);
    ck_assert_uint_eq(r.limit, 4);
    ck_assert_uint_eq(r.rejected, 0);
    ck_assert_uint_eq(r.retry_ms, 0);
    ck_assert_uint_eq(r.reset_ms, t0);
    ck_assert_uint_eq(r.now_ms, t0);

    ck_assert(unit_acquire(zone, &key, &l, t0, &r));
    ck_assert_uint_eq(r.remaining, 3);
    ck_assert_uint_eq(r.reset_ms, t0 + 10 * SEC);
    ck_assert(unit_acquire(zone, &key, &l, t0 + 100, &r));
    ck_assert_uint_eq(r.remaining, 2);
    ck_assert_uint_eq(r.reset_ms, t0 + 100 + 10 * SEC);

    /* peek changes nothing */
    ck_assert_int_eq(unit_peek(zone, &key, &l, t0 + 150, &r), TRL_OK);
    ck_assert_uint_eq(r.remaining, 2);
    ck_assert_uint_eq(r.reset_ms, t0 + 100 + 10 * SEC);
    ck_assert_int_eq(unit_peek(zone, &key, &l, t0 + 150, &r), TRL_OK);
    ck_assert_uint_eq(r.remaining, 2);

    ck_assert(unit_acquire(zone, &key, &l, t0 + 200, &r));
    ck_assert_uint_eq(r.remaining, 1);
    ck_assert(unit_acquire(zone, &key, &l, t0 + 300, &r));
    ck_assert_uint_eq(r.remaining, 0);
    ck_assert_uint_eq(r.reset_ms, t0 + 300 + 10 * SEC);

    ck_assert(!unit_acquire(zone, &key, &l, t0 + 400, &r));
    ck_assert_uint_eq(r.remaining, 0);
    ck_assert_uint_eq(r.reset_ms, t0 + 300 + 10 * SEC);
    ck_assert_uint_eq(r.retry_ms, 10 * SEC - 400);
    ck_assert_uint_eq(r.ticket, 0);

    ck_assert_int_eq(unit_peek(zone, &key, &l, t0 + 400, &r), TRL_OK);
    ck_assert_uint_eq(r.rejected, 1);
    ck_assert_uint_eq(r.retry_ms, 10 * SEC - 400);
    ck_assert_uint_eq(r.reset_ms, t0 + 300 + 10 * SEC);

    /* two places back once the first two admissions left */
    ck_assert_int_eq(unit_peek(zone, &key, &l, t0 + 10 * SEC + 150, &r),
                     TRL_OK);
    ck_assert_uint_eq(r.rejected, 0);
    ck_assert_uint_eq(r.remaining, 2);

    /* all back at reset_ms: known key, empty window */
    ck_assert_int_eq(unit_peek(zone, &key, &l, t0 + 300 + 10 * SEC, &r),
                     TRL_OK);
    ck_assert_uint_eq(r.remaining, 4);
    ck_assert_uint_eq(r.rejected, 0);
    ck_assert_uint_eq(r.reset_ms, t0 + 300 + 10 * SEC);
}
END_TEST


START_TEST(peek_creates_nothing)
{
    trl_limit_t       l = unit_limit(3, MIN);
    trl_zone_stats_t  st;
    trl_result_t      r;
    unsigned          i;

    for (i = 0; i < 1000; i++) {
        trl_hash_t  key = unit_key_n(zone, "peek", i);

        ck_assert_int_eq(unit_peek(zone, &key, &l, 1000 * SEC, &r), 1);
    }
    trl_zone_stats(zone, &st);
    ck_assert_uint_eq(st.keys, 0);
    ck_assert_uint_eq(st.passed, 0);
    ck_assert_uint_eq(st.rejected, 0);
}
END_TEST


START_TEST(clock_now)
{
    trl_hash_t    key = unit_key(zone, "clock");
    trl_limit_t   l = unit_limit(2, MIN);
    trl_result_t  r;
    uint64_t      before, after;

    before = trl_clock_ms();
    ck_assert(unit_acquire(zone, &key, &l, TRL_CLOCK_NOW, &r));
    after = trl_clock_ms();
    ck_assert_uint_ge(r.now_ms, before);
    ck_assert_uint_le(r.now_ms, after);
    ck_assert_uint_ge(r.ticket, r.now_ms);
    ck_assert_uint_eq(r.reset_ms, r.ticket + MIN);

    ck_assert(unit_acquire(zone, &key, &l, TRL_CLOCK_NOW, &r));
    ck_assert(!unit_acquire(zone, &key, &l, TRL_CLOCK_NOW, &r));
    ck_assert_uint_gt(r.retry_ms, MIN - 10 * SEC);

    ck_assert_int_eq(unit_peek(zone, &key, &l, TRL_CLOCK_NOW, &r), TRL_OK);
    ck_assert_uint_ge(r.now_ms, after);
    ck_assert_uint_eq(r.rejected, 1);

    ck_assert_int_eq(trl_zone_release(zone, &key, &l, r.reset_ms - MIN,
                                      TRL_CLOCK_NOW), TRL_OK);
    ck_assert(unit_acquire(zone, &key, &l, TRL_CLOCK_NOW, &r));
}
END_TEST


START_TEST(release_gives_place_back)
{
    trl_hash_t    key = unit_key(zone, "release");
    trl_limit_t   l = unit_limit(2, 10 * SEC);
    uint64_t      t0 = 1000 * SEC, ta, tb;
    trl_result_t  r;

    ck_assert(unit_acquire(zone, &key, &l, t0, &r));
    ta = r.ticket;
    ck_assert(unit_acquire(zone, &key, &l, t0 + 10, &r));
    tb = r.ticket;
    ck_assert(!unit_acquire(zone, &key, &l, t0 + 20, &r));

    /* giving back the newer one: a place, and the older still counts */
    ck_assert_int_eq(trl_zone_release(zone, &key, &l, tb, t0 + 30), TRL_OK);
    ck_assert(unit_acquire(zone, &key, &l, t0 + 40, &r));
    ck_assert_uint_eq(r.remaining, 0);
    ck_assert(!unit_acquire(zone, &key, &l, t0 + 50, &r));
    ck_assert_uint_eq(r.retry_ms, 10 * SEC - 50);

    /* giving back the older one: its place at once */
    ck_assert_int_eq(trl_zone_release(zone, &key, &l, ta, t0 + 60), TRL_OK);
    ck_assert(unit_acquire(zone, &key, &l, t0 + 70, &r));
    ck_assert(!unit_acquire(zone, &key, &l, t0 + 80, &r));
    /* now at t0+40 and t0+70 */
    ck_assert_uint_eq(r.retry_ms, 40 + 10 * SEC - 80);

    /* a ticket given back twice gives back one place */
    ck_assert_int_eq(trl_zone_release(zone, &key, &l, t0 + 40, t0 + 90),
                     TRL_OK);
    ck_assert_int_eq(trl_zone_release(zone, &key, &l, t0 + 40, t0 + 91),
                     TRL_OK);
    ck_assert_int_eq(unit_peek(zone, &key, &l, t0 + 92, &r), TRL_OK);
    ck_assert_uint_eq(r.remaining, 1);
}
END_TEST


START_TEST(release_same_ms_admissions)
{
    trl_hash_t    key = unit_key(zone, "same-ms");
    trl_limit_t   l = unit_limit(3, 10 * SEC);
    uint64_t      t0 = 1000 * SEC;
    trl_result_t  r;
    int           k;

    for (k = 0; k < 3; k++) {
        ck_assert(unit_acquire(zone, &key, &l, t0, &r));
        ck_assert_uint_eq(r.ticket, t0);
    }
    ck_assert_int_eq(trl_zone_release(zone, &key, &l, t0, t0 + 1), TRL_OK);
    ck_assert_int_eq(unit_peek(zone, &key, &l, t0 + 1, &r), TRL_OK);
    ck_assert_uint_eq(r.remaining, 1);
    ck_assert_int_eq(trl_zone_release(zone, &key, &l, t0, t0 + 2), TRL_OK);
    ck_assert_int_eq(unit_peek(zone, &key, &l, t0 + 2, &r), TRL_OK);
    ck_assert_uint_eq(r.remaining, 2);
}
END_TEST


START_TEST(release_expired_touches_nothing)
{
    static const uint32_t  ns[] = { 2, 8, 9, 20 };
    unsigned               i;

    for (i = 0; i < sizeof(ns) / sizeof(ns[0]); i++) {
        uint32_t      n = ns[i];
        trl_hash_t    key = unit_key_n(zone, "expired", n);
        trl_limit_t   l = unit_limit(n, 70 * SEC);
        uint64_t      t0 = 1000 * SEC, old;
        trl_result_t  r;
        uint32_t      k;

        ck_assert(unit_acquire(zone, &key, &l, t0, &r));
        old = r.ticket;

        /* the old admission has left the window; fill it anew */
        for (k = 0; k < n; k++) {
            ck_assert(unit_acquire(zone, &key, &l, t0 + 70 * SEC + k, &r));
        }
        ck_assert(!unit_acquire(zone, &key, &l, t0 + 70 * SEC + n, &r));

        ck_assert_int_eq(trl_zone_release(zone, &key, &l, old,
                                          t0 + 70 * SEC + n), TRL_OK);
        ck_assert_msg(!unit_acquire(zone, &key, &l, t0 + 70 * SEC + n, &r),
                      "N=%u: releasing an expired admission freed a newer "
                      "one", n);

        /* a ticket from the future names nothing either */
        ck_assert_int_eq(trl_zone_release(zone, &key, &l, t0 + 200 * SEC,
                                          t0 + 70 * SEC + n), TRL_OK);
        ck_assert(!unit_acquire(zone, &key, &l, t0 + 70 * SEC + n, &r));
    }
}
END_TEST


START_TEST(release_unknown_key)
{
    trl_hash_t        key = unit_key(zone, "nobody");
    trl_limit_t       l = unit_limit(2, 10 * SEC);
    trl_zone_stats_t  st;
    trl_result_t      r;

    ck_assert_int_eq(trl_zone_release(zone, &key, &l, 12345, 20000), TRL_OK);
    trl_zone_stats(zone, &st);
    ck_assert_uint_eq(st.keys, 0);
    ck_assert_int_eq(unit_peek(zone, &key, &l, 20000, &r), 1);
}
END_TEST


START_TEST(release_shared_bucket)
{
    trl_hash_t    key = unit_key(zone, "shared-release");
    trl_limit_t   l = unit_limit(20, 70 * SEC);     /* cell 10 s */
    uint64_t      t0 = 1000 * SEC;
    uint64_t      tickets[20];
    trl_result_t  r;
    int           k;

    for (k = 0; k < 20; k++) {
        ck_assert(unit_acquire(zone, &key, &l, t0 + (uint64_t) k * 300, &r));
        tickets[k] = r.ticket;
    }
    ck_assert(!unit_acquire(zone, &key, &l, t0 + 6000, &r));

    /* every ticket names one admission, even inside a shared bucket */
    for (k = 0; k < 20; k += 4) {
        ck_assert_int_eq(trl_zone_release(zone, &key, &l, tickets[k],
                                          t0 + 6000), TRL_OK);
    }
    ck_assert_int_eq(unit_peek(zone, &key, &l, t0 + 6000, &r), TRL_OK);
    ck_assert_uint_eq(r.remaining, 5);
    for (k = 0; k < 5; k++) {
        ck_assert(unit_acquire(zone, &key, &l, t0 + 6000, &r));
    }
    ck_assert(!unit_acquire(zone, &key, &l, t0 + 6000, &r));
}
END_TEST


START_TEST(rate_change_limit)
{
    trl_hash_t    key = unit_key(zone, "n-change");
    trl_limit_t   five = unit_limit(5, MIN), two = unit_limit(2, MIN);
    trl_limit_t   thirty = unit_limit(30, MIN);
    uint64_t      t0 = 1000 * SEC;
    trl_result_t  r;
    int           k;

    /* W = 1 min is stored in units of 4 ms: times on that grid */
    for (k = 0; k < 5; k++) {
        ck_assert(unit_acquire(zone, &key, &five, t0 + 4 * (uint64_t) k,
                               &r));
    }

    /* N 5 -> 2: the five admissions are kept and count against 2 */
    ck_assert(!unit_acquire(zone, &key, &two, t0 + 20, &r));
    ck_assert_uint_eq(r.limit, 2);
    ck_assert_uint_eq(r.remaining, 0);
    /* below 2 once the 4th (t0+12) has left */
    ck_assert_uint_eq(r.retry_ms, MIN + 12 - 20);
    ck_assert_int_eq(unit_peek(zone, &key, &two, t0 + MIN + 11, &r), TRL_OK);
    ck_assert_uint_eq(r.rejected, 1);
    ck_assert_int_eq(unit_peek(zone, &key, &two, t0 + MIN + 12, &r), TRL_OK);
    ck_assert_uint_eq(r.rejected, 0);
    ck_assert_uint_eq(r.remaining, 1);

    /* back to 5: still full */
    ck_assert(!unit_acquire(zone, &key, &five, t0 + 20, &r));

    /* N 5 -> 30 (shared buckets): 25 more */
    for (k = 0; k < 25; k++) {
        ck_assert(unit_acquire(zone, &key, &thirty, t0 + 32, &r));
    }
    ck_assert(!unit_acquire(zone, &key, &thirty, t0 + 32, &r));

    /* 30 -> 2: everything kept */
    ck_assert(!unit_acquire(zone, &key, &two, t0 + 40, &r));
    ck_assert(!unit_acquire(zone, &key, &two, t0 + MIN + 31, &r));
    ck_assert(unit_acquire(zone, &key, &two, t0 + MIN + 32, &r));
}
END_TEST


START_TEST(rate_change_window)
{
    trl_limit_t   w10 = unit_limit(3, 10 * SEC), w60 = unit_limit(3, MIN);
    trl_limit_t   day = unit_limit(3, DAY);
    uint64_t      t0 = 1000 * SEC;
    trl_result_t  r;
    trl_hash_t    a = unit_key(zone, "w-longer");
    trl_hash_t    b = unit_key(zone, "w-short");
    trl_hash_t    c = unit_key(zone, "w-day");
    int           k;

    /* W 10s -> 60s: the kept admissions now count for 60 s */
    for (k = 0; k < 3; k++) {
        ck_assert(unit_acquire(zone, &a, &w10, t0 + (uint64_t) k, &r));
    }
    ck_assert(!unit_acquire(zone, &a, &w60, t0 + 20 * SEC, &r));
    ck_assert_uint_eq(r.retry_ms, MIN - 20 * SEC);
    ck_assert(!unit_acquire(zone, &a, &w60, t0 + MIN - 1, &r));
    ck_assert(unit_acquire(zone, &a, &w60, t0 + MIN, &r));

    /* W 60s -> 10s: they leave after 10 s (60 s is stored in 4 ms units) */
    for (k = 0; k < 3; k++) {
        ck_assert(unit_acquire(zone, &b, &w60, t0 + 4 * (uint64_t) k, &r));
    }
    ck_assert(!unit_acquire(zone, &b, &w10, t0 + 10 * SEC - 1, &r));
    ck_assert(unit_acquire(zone, &b, &w10, t0 + 10 * SEC, &r));
    ck_assert(!unit_acquire(zone, &b, &w10, t0 + 10 * SEC + 3, &r));
    ck_assert(unit_acquire(zone, &b, &w10, t0 + 10 * SEC + 4, &r));
    ck_assert(!unit_acquire(zone, &b, &w10, t0 + 10 * SEC + 4, &r));

    /* W 10s -> 1d (the stored unit changes from 1 ms to 2048 ms) */
    for (k = 0; k < 3; k++) {
        ck_assert(unit_acquire(zone, &c, &w10, t0 + (uint64_t) k * 1000, &r));
    }
    ck_assert(!unit_acquire(zone, &c, &day, t0 + 5 * SEC, &r));
    /* t0 is rounded up to the day's 2048 ms unit: never earlier */
    ck_assert_uint_eq(r.retry_ms, (t0 + 2047) / 2048 * 2048 + DAY
                                  - (t0 + 5 * SEC));
    ck_assert(!unit_acquire(zone, &c, &day, t0 + HOUR, &r));
    ck_assert(!unit_acquire(zone, &c, &day, t0 + DAY - 1, &r));
    ck_assert(unit_acquire(zone, &c, &day, t0 + DAY + 8192, &r));
    /* and back to 10s */
    ck_assert(unit_acquire(zone, &c, &w10, t0 + DAY + 20 * SEC, &r));
}
END_TEST


/*
 * The clock going backwards (another worker's older clock read): an
 * admission is recorded at max(now, newest), so no more than N ever pass.
 */
START_TEST(clock_backwards)
{
    trl_hash_t    key = unit_key(zone, "backwards");
    trl_limit_t   l = unit_limit(3, 10 * SEC);
    uint64_t      t0 = 1000 * SEC;
    trl_result_t  r;

    ck_assert(unit_acquire(zone, &key, &l, t0 + 5000, &r));
    ck_assert_uint_eq(r.ticket, t0 + 5000);
    ck_assert(unit_acquire(zone, &key, &l, t0, &r));
    ck_assert_uint_eq(r.ticket, t0 + 5000);      /* moved up to the newest */
    ck_assert_uint_eq(r.reset_ms, t0 + 5000 + 10 * SEC);
    ck_assert(unit_acquire(zone, &key, &l, t0 - 4000, &r));
    ck_assert(!unit_acquire(zone, &key, &l, t0 - 9000, &r));
    ck_assert(!unit_acquire(zone, &key, &l, t0 + 14999, &r));
    ck_assert_uint_eq(r.retry_ms, 1);

    /* the three are back together, W after the newest */
    ck_assert(unit_acquire(zone, &key, &l, t0 + 15000, &r));
    ck_assert(unit_acquire(zone, &key, &l, t0 + 15000, &r));
    ck_assert(unit_acquire(zone, &key, &l, t0 + 15000, &r));
    ck_assert(!unit_acquire(zone, &key, &l, t0 + 15000, &r));

    /* far backwards, then forward: still no more than N per W */
    ck_assert(!unit_acquire(zone, &key, &l, 1, &r));
    ck_assert(!unit_acquire(zone, &key, &l, t0 + 24999, &r));
    ck_assert(unit_acquire(zone, &key, &l, t0 + 25000, &r));
}
END_TEST


START_TEST(clock_backwards_random)
{
    static const struct { uint32_t n; uint64_t w; uint64_t lag; } c[] = {
        { 1, 10 * SEC, 3 * SEC }, { 3, 10 * SEC, 15 * SEC },
        { 8, MIN, 5 * SEC }, { 9, MIN, 2 * MIN }, { 50, HOUR, 10 * MIN },
        { 1000, DAY, HOUR },
    };
    unit_rng_t  rng = { 99 };
    unsigned    i;
    static uint64_t  adm[200000];

    for (i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
        trl_hash_t    key = unit_key_n(zone, "lag", i);
        trl_limit_t   l = unit_limit(c[i].n, c[i].w);
        uint64_t      real = 1000 * DAY, seen = 0, now;
        size_t        na = 0, k, j;
        trl_result_t  r;

        for (k = 0; k < 20 * (size_t) c[i].n + 2000; k++) {
            real += unit_below(&rng, 3 * c[i].w / c[i].n + 1);
            /* a read that lags the real clock by up to lag */
            now = real - unit_below(&rng, c[i].lag + 1);
            if (now > seen) {
                seen = now;
            }
            if (unit_acquire(zone, &key, &l, now, &r)) {
                ck_assert_uint_lt(na, sizeof(adm) / sizeof(adm[0]));
                /* the time the clock had surely reached */
                adm[na++] = seen;
                ck_assert_uint_ge(r.ticket, now);
            }
        }
        /* no half-open window [t, t+W) holds more than N admissions */
        for (j = c[i].n; j < na; j++) {
            ck_assert_msg(adm[j] - adm[j - c[i].n] >= c[i].w,
                          "case %u: %u admissions within %llu ms", i,
                          c[i].n + 1, (unsigned long long)
                          (adm[j] - adm[j - c[i].n]));
        }
        ck_assert_uint_gt(na, c[i].n);
    }
}
END_TEST


/* An entry untouched for a long time is fresh again, whatever its stored
 * times would alias to. */
START_TEST(stale_entry_is_fresh)
{
    static const uint64_t  gaps[] = {
        13 * DAY, 25 * DAY, 30 * DAY + 1, 49 * DAY, (1ULL << 32),
        (1ULL << 32) + 500, (1ULL << 33), 100 * DAY, 3 * 365 * DAY,
    };
    static const uint64_t  ws[] = { SEC, 10 * SEC, 16 * SEC, MIN, HOUR, DAY };
    unsigned               i, j;
    trl_result_t           r;

    for (j = 0; j < sizeof(ws) / sizeof(ws[0]); j++) {
        for (i = 0; i < sizeof(gaps) / sizeof(gaps[0]); i++) {
            trl_hash_t   key = unit_key_n(zone, "stale", j * 100 + i);
            trl_limit_t  l = unit_limit(3, ws[j]);
            uint64_t     t0 = 10 * DAY + 12345;
            int          k;

            for (k = 0; k < 3; k++) {
                ck_assert(unit_acquire(zone, &key, &l, t0, &r));
            }
            ck_assert(!unit_acquire(zone, &key, &l, t0, &r));

            ck_assert_int_eq(unit_peek(zone, &key, &l, t0 + gaps[i], &r),
                             TRL_OK);
            ck_assert_msg(r.remaining == 3 && !r.rejected,
                          "W=%llu gap=%llu: remaining %u",
                          (unsigned long long) ws[j],
                          (unsigned long long) gaps[i], r.remaining);
            for (k = 0; k < 3; k++) {
                ck_assert_msg(unit_acquire(zone, &key, &l, t0 + gaps[i], &r),
                              "W=%llu gap=%llu: rejected",
                              (unsigned long long) ws[j],
                              (unsigned long long) gaps[i]);
                ck_assert_uint_eq(r.remaining, 2 - (uint32_t) k);
            }
            ck_assert(!unit_acquire(zone, &key, &l, t0 + gaps[i], &r));
        }
    }

    /* a 365-day window still holds after 30 days */
    {
        trl_hash_t   key = unit_key(zone, "year");
        trl_limit_t  l = unit_limit(1, 365 * DAY);

        ck_assert(unit_acquire(zone, &key, &l, 10 * DAY, &r));
        ck_assert(!unit_acquire(zone, &key, &l, 40 * DAY, &r));
        ck_assert(!unit_acquire(zone, &key, &l, 374 * DAY, &r));
        ck_assert(unit_acquire(zone, &key, &l, 375 * DAY + 2 * SEC * 1024,
                               &r));
    }
}
END_TEST


/* N > 8: admissions in one cell of width ceil(W/7) share a bucket. */
START_TEST(shared_buckets)
{
    trl_hash_t    key = unit_key(zone, "shared");
    trl_limit_t   l = unit_limit(20, 70 * SEC);     /* cell 10 s */
    uint64_t      t0 = 1000 * SEC;                  /* a cell start */
    trl_result_t  r;
    int           k;

    /* 20 in one cell: their places come back together, W after the last
     * (times on the 8 ms grid of a 70 s window) */
    for (k = 0; k < 20; k++) {
        ck_assert(unit_acquire(zone, &key, &l, t0 + (uint64_t) k * 200, &r));
        ck_assert_uint_eq(r.remaining, 19 - (uint32_t) k);
        ck_assert_uint_eq(r.reset_ms, t0 + (uint64_t) k * 200 + 70 * SEC);
    }
    ck_assert(!unit_acquire(zone, &key, &l, t0 + 4000, &r));
    ck_assert_uint_eq(r.retry_ms, 3800 + 70 * SEC - 4000);
    ck_assert(!unit_acquire(zone, &key, &l, t0 + 3800 + 70 * SEC - 1, &r));
    for (k = 0; k < 20; k++) {
        ck_assert(unit_acquire(zone, &key, &l, t0 + 3800 + 70 * SEC, &r));
    }
    ck_assert(!unit_acquire(zone, &key, &l, t0 + 3800 + 70 * SEC, &r));
}
END_TEST


START_TEST(shared_buckets_across_cells)
{
    trl_hash_t    key = unit_key(zone, "cells");
    trl_limit_t   l = unit_limit(10, 70 * SEC);     /* cell 10 s */
    uint64_t      t0 = 1000 * SEC;
    trl_result_t  r;
    int           k;

    /* one per cell, 8 cells: the 1st has left when the 8th is admitted */
    for (k = 0; k < 10; k++) {
        ck_assert(unit_acquire(zone, &key, &l, t0 + (uint64_t) k * 10 * SEC
                               + 5 * SEC, &r));
    }
    ck_assert_int_eq(unit_peek(zone, &key, &l, t0 + 100 * SEC, &r), TRL_OK);
    /* live: t0+35s .. t0+95s = 7 admissions */
    ck_assert_uint_eq(r.remaining, 3);
    ck_assert_uint_eq(r.reset_ms, t0 + 95 * SEC + 70 * SEC);
}
END_TEST


Suite *
window_suite(void)
{
    Suite  *s;
    TCase  *tc;

    s = suite_create("window");

    tc = unit_tcase(s, "limits", 20);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_loop_test(tc, exact_boundaries, 0, NWINDOWS);
    tcase_add_loop_test(tc, unaligned_times_never_early, 0, NWINDOWS);
    tcase_add_loop_test(tc, n_admitted_then_rejected, 0, NLIMITS);
    tcase_add_test(tc, rejected_not_counted);
    tcase_add_loop_test(tc, retry_tight_exact_log, 0, NWINDOWS);
    tcase_add_test(tc, reset_and_remaining);
    tcase_add_test(tc, peek_creates_nothing);
    tcase_add_test(tc, clock_now);

    tc = unit_tcase(s, "release", 10);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, release_gives_place_back);
    tcase_add_test(tc, release_same_ms_admissions);
    tcase_add_test(tc, release_expired_touches_nothing);
    tcase_add_test(tc, release_unknown_key);
    tcase_add_test(tc, release_shared_bucket);

    tc = unit_tcase(s, "change", 10);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, rate_change_limit);
    tcase_add_test(tc, rate_change_window);

    tc = unit_tcase(s, "clock", 20);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, clock_backwards);
    tcase_add_test(tc, clock_backwards_random);
    tcase_add_test(tc, stale_entry_is_fresh);

    tc = unit_tcase(s, "shared", 10);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, shared_buckets);
    tcase_add_test(tc, shared_buckets_across_cells);

    return s;
}
