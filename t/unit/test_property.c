/*
 * test_property.c - randomized checks of the window over many (N, W,
 * arrival pattern) combinations, with a deterministic PRNG:
 *
 * (a) never over: no half-open interval [t, t+W) holds more than N
 *     admitted request times;
 * (b) bounded extra wait: a request rejected at t has at least N
 *     admissions in (t - W - cell - unit, t], cell = ceil(W/7) and unit =
 *     2^shift ms (the coarsening of shared buckets and stored times);
 * (c) N <= 8: decisions, remaining, retry_ms and reset_ms are exactly
 *     those of an exact log of admissions at their (unit-rounded) times,
 *     releases included;
 * (d) retry_ms is truthful and tight: rejected at now+retry_ms-1,
 *     admitted at now+retry_ms.
 */

#include "unit.h"

#include <stdlib.h>


#define SEC   1000ULL
#define MIN   (60 * SEC)
#define HOUR  (60 * MIN)
#define DAY   (24 * HOUR)

#define ZONE_SIZE  (1024 * 1024)
#define MAX_REQ    250000


static const uint32_t limits[] = {
    1, 2, 3, 5, 8, 9, 10, 20, 100, 1000, 65535,
};
#define NLIMITS  (sizeof(limits) / sizeof(limits[0]))

static const uint64_t windows[] = {
    1 * SEC, 7 * SEC, 10 * SEC, 17 * SEC, MIN, 90 * SEC, 15 * MIN, HOUR, DAY,
};
#define NWINDOWS  (sizeof(windows) / sizeof(windows[0]))

enum pattern { P_UNIFORM, P_BURSTS, P_PACED, P_ON_OFF, P_RELEASE, NPATTERNS };

static const char *pattern_names[] = {
    "uniform", "bursts", "paced", "on-off", "release",
};


static trl_zone_t  *zone;
static uint64_t    *adm;          /* admitted request times */
static uint64_t    *rec;          /* their recorded times (tickets) */
static uint8_t     *gone;         /* given back */

static void
setup(void)
{
    zone = unit_zone(ZONE_SIZE);
    adm = malloc(MAX_REQ * sizeof(*adm));
    rec = malloc(MAX_REQ * sizeof(*rec));
    gone = malloc(MAX_REQ);
    ck_assert(adm != NULL && rec != NULL && gone != NULL);
}

static void
teardown(void)
{
    free(adm);
    free(rec);
    free(gone);
    unit_shm_free(zone, ZONE_SIZE);
}


static uint64_t
round_up(uint64_t t, uint64_t unit)
{
    return (t + unit - 1) / unit * unit;
}


/* The exact log of (c): live recorded times at now, sorted. */
static size_t
model_live(size_t na, uint64_t now, uint64_t w, uint64_t *live)
{
    size_t  i, k = 0;

    for (i = 0; i < na; i++) {
        if (!gone[i] && rec[i] + w > now) {
            live[k++] = rec[i];
        }
    }
    /* rec[] is nondecreasing: live[] is sorted */
    return k;
}


typedef struct {
    uint32_t       n;
    uint64_t       w;
    enum pattern   p;
    unit_rng_t     rng;
    uint64_t       now;        /* in 1/1024 ms, so that rates above one
                                  request per ms come out right */
    uint64_t       phase_end;  /* on-off: end of the current phase */
    uint32_t       burst;      /* requests left in this burst */
} gen_t;

#define FP  10


/* The next request time in ms (nondecreasing). */
static uint64_t
next_time(gen_t *g)
{
    uint64_t  mean = (g->w << FP) / g->n;   /* between requests at rate */

    switch (g->p) {
    case P_UNIFORM:
    case P_RELEASE:
        /* 1.5x the rate, spread uniformly */
        g->now += unit_below(&g->rng, 4 * mean / 3 + 2);
        break;

    case P_BURSTS:
        if (g->burst > 0) {
            /* 8x the rate within a burst */
            g->burst--;
            g->now += unit_below(&g->rng, mean / 4 + 1);
            break;
        }
        g->burst = (uint32_t) unit_below(&g->rng, 2 * (uint64_t) g->n + 2);
        g->now += unit_below(&g->rng, (g->w << FP) / 2 + 1);
        break;

    case P_PACED:
        /* exactly at rate, with a little jitter: pounds the boundaries */
        g->now += mean - mean / 64 + unit_below(&g->rng, mean / 32 + 1);
        break;

    case P_ON_OFF:
    default:
        if (g->now >= g->phase_end) {
            /* a pause of up to 2W, then up to 2W at 2x the rate */
            g->now += unit_below(&g->rng, 2 * (g->w << FP) + 1);
            g->phase_end = g->now + unit_below(&g->rng, 2 * (g->w << FP) + 1);
        }
        g->now += unit_below(&g->rng, mean + 1);
        break;
    }
    return g->now >> FP;
}


static void
run_combo(uint32_t n, uint64_t w, enum pattern p, uint64_t seed,
    unsigned tag, unsigned nwindows)
{
    gen_t          g;
    uint64_t       unit = unit_time_unit(w);
    uint64_t       cell = unit_cell(w);
    uint64_t       slack = w + cell + unit;
    trl_hash_t     key = unit_key_n(zone, "prop", tag);
    trl_limit_t    l = unit_limit(n, w);
    trl_result_t   r, q;
    size_t         na = 0, nreq, k, j, live_n, nrej = 0;
    uint64_t      *live = NULL;
    int            exact = n <= 8;
    uint64_t       windows_worth;

    memset(&g, 0, sizeof(g));
    g.n = n;
    g.w = w;
    g.p = p;
    g.rng.s = seed;
    g.now = (400 * DAY + unit_below(&g.rng, DAY)) << FP;
    g.phase_end = g.now;

    /* requests for some nwindows windows, within MAX_REQ */
    windows_worth = (uint64_t) nwindows * 3 / 2 * n + 40;
    nreq = windows_worth < MAX_REQ ? (size_t) windows_worth : MAX_REQ;

    if (exact) {
        live = malloc(MAX_REQ * sizeof(*live));
        ck_assert_ptr_nonnull(live);
    }

    for (k = 0; k < nreq; k++) {
        uint64_t  t = next_time(&g);
        int       ok;

        ok = unit_acquire(zone, &key, &l, t, &r);
        unit_eq(r.limit, n);
        unit_eq(r.now_ms, t);

        if (exact) {
            /* (c) against the exact log */
            live_n = model_live(na, t, w, live);
            unit_check_msg(ok == (live_n < n),
                          "N=%u W=%llu %s #%zu t=%llu: %s, model has %zu "
                          "live", n, (unsigned long long) w, pattern_names[p],
                          k, (unsigned long long) t,
                          ok ? "admitted" : "rejected", live_n);
            if (ok) {
                unit_eq(r.remaining, n - (uint32_t) live_n - 1);
                unit_eq(r.ticket, round_up(t, unit));
                unit_eq(r.reset_ms, round_up(t, unit) + w);
            } else {
                unit_eq(r.retry_ms,
                                  live[live_n - n] + w - t);
                unit_eq(r.reset_ms, live[live_n - 1] + w);
            }
        }

        if (ok) {
            unit_check(r.remaining < n);
            unit_check(r.ticket >= t);
            unit_check(r.ticket < t + unit);
            adm[na] = t;
            rec[na] = r.ticket;
            gone[na] = 0;
            na++;

            if (p == P_RELEASE && unit_below(&g.rng, 3) == 0) {
                /* give back a recent admission, or now and then an old
                 * one (maybe left already), never one twice */
                j = na - 1 - (size_t) unit_below(&g.rng, na < 2 * (size_t) n
                                                         ? na : 2 * n);
                if (unit_below(&g.rng, 8) == 0) {
                    j = (size_t) unit_below(&g.rng, na);
                }
                if (!gone[j]) {
                    unit_eq(trl_zone_release(zone, &key, &l, rec[j],
                                                      t), TRL_OK);
                    if (exact) {
                        /* the model gives back the first live admission
                         * with that very time, if any */
                        size_t  m;

                        for (m = 0; m < na; m++) {
                            if (!gone[m] && rec[m] + w > t
                                && rec[m] == rec[j]) {
                                gone[m] = 1;
                                break;
                            }
                        }
                    } else {
                        gone[j] = 1;
                    }
                }
            }
            continue;
        }

        nrej++;
        unit_eq(r.remaining, 0);
        unit_check(r.retry_ms >= 1);
        unit_check(r.retry_ms <= w + cell + unit);

        /* (b) bounded extra wait (no releases in the count) */
        if (p != P_RELEASE) {
            unit_check_msg(na >= n && adm[na - n] + slack > t,
                          "N=%u W=%llu %s t=%llu: rejected with fewer than "
                          "N admissions in the last W+cell+unit", n,
                          (unsigned long long) w, pattern_names[p],
                          (unsigned long long) t);
        }

        /* (d) retry_ms, on a sample of the rejections */
        if (n <= 100 || nrej % 61 == 1) {
            unit_eq(unit_peek(zone, &key, &l, t + r.retry_ms - 1,
                                       &q), TRL_OK);
            unit_check_msg(q.rejected == 1,
                          "N=%u W=%llu %s: free before retry_ms", n,
                          (unsigned long long) w, pattern_names[p]);
            unit_eq(unit_peek(zone, &key, &l, t + r.retry_ms, &q),
                             TRL_OK);
            unit_check_msg(q.rejected == 0 && q.remaining >= 1,
                          "N=%u W=%llu %s: not free at retry_ms", n,
                          (unsigned long long) w, pattern_names[p]);
        }
    }

    /* (a) never over, on the admissions that were not given back */
    {
        size_t  m = 0;

        for (k = 0; k < na; k++) {
            if (!gone[k]) {
                adm[m++] = adm[k];
            }
        }
        for (k = n; k < m; k++) {
            unit_check_msg(adm[k] - adm[k - n] >= w,
                          "N=%u W=%llu %s: %u admissions within %llu ms "
                          "(from t=%llu)", n, (unsigned long long) w,
                          pattern_names[p], n + 1,
                          (unsigned long long) (adm[k] - adm[k - n]),
                          (unsigned long long) adm[k - n]);
        }
    }

    /* the pattern did reach the limit */
    unit_check_msg(nrej > 0, "N=%u W=%llu %s: never rejected", n,
                  (unsigned long long) w, pattern_names[p]);
    free(live);
}


START_TEST(window_properties)
{
    uint32_t  n = limits[(size_t) _i / NWINDOWS];
    uint64_t  w = windows[(size_t) _i % NWINDOWS];
    int       p;

    for (p = 0; p < NPATTERNS; p++) {
        run_combo(n, w, (enum pattern) p,
                  0x5eed0000ULL + (uint64_t) _i * 16 + (uint64_t) p,
                  (unsigned) p, 6);
    }
}
END_TEST


/* A few long runs at small N with windows of any length (not just whole
 * seconds) and shapes. */
START_TEST(window_properties_odd_windows)
{
    unit_rng_t  rng = { 0xabcdef };
    int         i;

    for (i = 0; i < 60; i++) {
        uint32_t  n = 1 + (uint32_t) unit_below(&rng, 40);
        uint64_t  w = 1000 + unit_below(&rng, i < 30 ? 100000 : 3 * DAY);

        run_combo(n, w, (enum pattern) unit_below(&rng, NPATTERNS),
                  unit_rand(&rng), 1000 + (unsigned) i, 6);
    }
}
END_TEST


/*
 * Long runs at the rate limit: a time rounded up to the unit must not push
 * a bucket into a ninth cell (then buckets of two cells would be merged
 * and places held back by more than a cell).
 */
START_TEST(window_properties_paced_long)
{
    static const uint32_t  ns[] = { 9, 20, 100, 1000 };
    static const uint64_t  ws[] = { 17 * SEC, 90 * SEC, 15 * MIN, HOUR, DAY };
    size_t                 i, j;

    for (i = 0; i < sizeof(ns) / sizeof(ns[0]); i++) {
        for (j = 0; j < sizeof(ws) / sizeof(ws[0]); j++) {
            run_combo(ns[i], ws[j], P_PACED, 0x9ace0000ULL + i * 16 + j,
                      2000 + (unsigned) (i * 16 + j),
                      ns[i] >= 100 ? 150 : 1500);
        }
    }
}
END_TEST


/*
 * A reload that changes the rate applies at once to the kept counts: after
 * the change from (N_a, W_a) to (N_b, W_b), no interval (t - W_b, t] holds
 * more than N_b admissions, counting the admissions made under the old
 * rate that the old window still held (those later than the last request
 * under the old rate minus W_a).
 */
START_TEST(rate_change_properties)
{
    static const uint32_t  ns[] = { 1, 2, 5, 8, 9, 12, 30, 100, 1000 };
    static const uint64_t  ws[] = { SEC, 10 * SEC, 17 * SEC, MIN, 15 * MIN,
                                    HOUR, DAY };
    unit_rng_t  rng = { 0xc4a76e };
    int         round;

    for (round = 0; round < 400; round++) {
        uint32_t      na_ = ns[unit_below(&rng, 9)];
        uint32_t      nb = ns[unit_below(&rng, 9)];
        uint64_t      wa = ws[unit_below(&rng, 7)];
        uint64_t      wb = ws[unit_below(&rng, 7)];
        trl_limit_t   la = unit_limit(na_, wa), lb = unit_limit(nb, wb);
        trl_hash_t    key = unit_key_n(zone, "reload", (unsigned) round);
        uint64_t      now = (500 * DAY) + unit_below(&rng, DAY);
        uint64_t      last_a, kept_from;
        size_t        na = 0, first_b, k, j, nreq;
        trl_result_t  r;

        /* under the old rate, at about twice that rate */
        nreq = 3 * (size_t) na_ + 5;
        for (k = 0; k < nreq; k++) {
            now += unit_below(&rng, wa / na_ + 1);
            if (unit_acquire(zone, &key, &la, now, &r)) {
                unit_check(na < MAX_REQ);
                adm[na++] = now;
            }
        }
        last_a = now;
        kept_from = last_a > wa ? last_a - wa : 0;
        first_b = na;

        /* under the new one, from a moment after up to a W_b later */
        now += unit_below(&rng, wa + 1);
        nreq = 3 * (size_t) nb + 5;
        for (k = 0; k < nreq; k++) {
            now += unit_below(&rng, wb / nb + 1);
            if (unit_acquire(zone, &key, &lb, now, &r)) {
                unit_check(na < MAX_REQ);
                adm[na++] = now;
            }
        }

        for (k = first_b; k < na; k++) {
            uint32_t  in = 0;

            for (j = 0; j <= k; j++) {
                if (adm[j] + wb > adm[k]
                    && (j >= first_b || adm[j] > kept_from))
                {
                    in++;
                }
            }
            unit_check_msg(in <= nb, "%u/%llu -> %u/%llu: %u admissions "
                           "within %llu ms", na_, (unsigned long long) wa,
                           nb, (unsigned long long) wb, in,
                           (unsigned long long) wb);
        }
    }
}
END_TEST


Suite *
property_suite(void)
{
    Suite  *s;
    TCase  *tc;

    s = suite_create("property");

    tc = unit_tcase(s, "random", 60);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_loop_test(tc, window_properties, 0,
                        (int) (NLIMITS * NWINDOWS));
    tcase_add_test(tc, window_properties_odd_windows);
    tcase_add_test(tc, window_properties_paced_long);
    tcase_add_test(tc, rate_change_properties);

    return s;
}
