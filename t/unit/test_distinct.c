/* test_distinct.c - distinct-value zones (trl_distinct.h): the window at
 * its boundaries, repeats, provisional slots, collisions, eviction, the
 * memory bound, the Redis codec, and never-over against a reference. */

#include "unit.h"

#include <stdio.h>
#include <stdlib.h>

#include "trl_distinct.h"


static trl_zone_t *
dzone(size_t size, uint32_t n)
{
    char         err[256];
    void        *mem;
    trl_zone_t  *zone;

    mem = unit_shm(size);
    memset(mem, 0xa5, size);            /* create must not rely on zeros */
    err[0] = '\0';
    zone = trl_distinct_zone_create(mem, size, 0, n, err, sizeof(err));
    ck_assert_msg(zone != NULL, "create(%zu, N=%u): %s", size, n, err);
    return zone;
}


/* 1 admitted, 0 rejected */
static int
dacq(trl_zone_t *zone, const trl_hash_t *key, const trl_limit_t *limit,
    uint32_t fp, uint64_t now, trl_result_t *out)
{
    trl_result_t  res;

    unit_eq(trl_distinct_acquire(zone, key, limit, fp, now, &res), TRL_OK);
    if (out) {
        *out = res;
    }
    return !res.rejected;
}


START_TEST(distinct_window_boundaries)
{
    trl_zone_t    *zone = dzone(64 * 1024, 3);
    trl_limit_t    l = unit_limit(3, 10000);
    trl_hash_t     k = unit_key(zone, "203.0.113.7");
    trl_result_t   r;

    ck_assert_uint_eq(trl_distinct_zone_limit(zone), 3);
    ck_assert(dacq(zone, &k, &l, 101, 1000, &r));
    ck_assert_uint_eq(r.remaining, 2);
    ck_assert(dacq(zone, &k, &l, 102, 2000, &r));
    ck_assert(dacq(zone, &k, &l, 103, 3000, &r));
    ck_assert_uint_eq(r.remaining, 0);
    ck_assert_uint_eq(r.reset_ms, 13000);

    /* the 4th distinct value: rejected until the oldest leaves at 11000 */
    ck_assert(!dacq(zone, &k, &l, 104, 3500, &r));
    ck_assert_uint_eq(r.retry_ms, 7500);
    ck_assert(r.log_first);
    ck_assert(!dacq(zone, &k, &l, 104, 10999, &r));
    ck_assert_uint_eq(r.retry_ms, 1);
    ck_assert(dacq(zone, &k, &l, 104, 11000, &r));
    ck_assert_uint_eq(r.remaining, 0);

    /* rejected values were not recorded: 102, 103, 104 live, so 105 waits
     * for 102 (12000) */
    ck_assert(!dacq(zone, &k, &l, 105, 11500, &r));
    ck_assert_uint_eq(r.retry_ms, 500);
    ck_assert(dacq(zone, &k, &l, 105, 12000, NULL));

    /* another key is not touched */
    trl_hash_t  k2 = unit_key(zone, "198.51.100.1");
    ck_assert(dacq(zone, &k2, &l, 101, 12000, &r));
    ck_assert_uint_eq(r.remaining, 2);
}
END_TEST


START_TEST(distinct_repeats_are_not_new)
{
    trl_zone_t    *zone = dzone(64 * 1024, 2);
    trl_limit_t    l = unit_limit(2, 10000);
    trl_hash_t     k = unit_key(zone, "k");
    trl_result_t   r;
    int            i;

    ck_assert(dacq(zone, &k, &l, 1, 1000, NULL));
    ck_assert(dacq(zone, &k, &l, 2, 2000, &r));
    ck_assert_uint_eq(r.remaining, 0);

    /* at the limit, the values already counted still pass */
    for (i = 0; i < 50; i++) {
        ck_assert(dacq(zone, &k, &l, (uint32_t) (1 + i % 2), 2000 + i, &r));
        ck_assert_uint_eq(r.remaining, 0);
    }
    ck_assert(!dacq(zone, &k, &l, 3, 3000, NULL));

    /* a repeat refreshes its value: 1 (seen at 9000) outlives 2 */
    ck_assert(dacq(zone, &k, &l, 1, 9000, NULL));
    ck_assert(dacq(zone, &k, &l, 3, 12049, NULL));      /* 2 left */
    ck_assert(!dacq(zone, &k, &l, 4, 18999, &r));       /* 1 and 3 live */
    ck_assert_uint_eq(r.retry_ms, 1);
    ck_assert(dacq(zone, &k, &l, 4, 19000, NULL));
}
END_TEST


START_TEST(distinct_provisional_given_back)
{
    trl_zone_t    *zone = dzone(64 * 1024, 2);
    trl_limit_t    l = unit_limit(2, 60000);
    trl_hash_t     k = unit_key(zone, "office-nat");
    trl_result_t   a, b, c;

    l.flags = TRL_DISTINCT_PROVISIONAL;

    /* parallel attempts: two holds in flight, the third value waits */
    ck_assert(dacq(zone, &k, &l, 11, 1000, &a));
    ck_assert(dacq(zone, &k, &l, 12, 1001, &b));
    ck_assert(!dacq(zone, &k, &l, 13, 1002, NULL));

    /* a success gives its slot back at once */
    unit_eq(trl_distinct_cancel(zone, &k, &l, a.ticket, 1500), TRL_OK);
    ck_assert(dacq(zone, &k, &l, 13, 1501, &c));

    /* a failure keeps it: a cancel after the confirm changes nothing */
    unit_eq(trl_distinct_confirm(zone, &k, &l, b.ticket, 1600), TRL_OK);
    unit_eq(trl_distinct_cancel(zone, &k, &l, b.ticket, 1601), TRL_OK);
    unit_eq(trl_distinct_cancel(zone, &k, &l, c.ticket, 1700), TRL_OK);
    ck_assert(dacq(zone, &k, &l, 14, 1800, NULL));      /* 12 and 14 */
    ck_assert(!dacq(zone, &k, &l, 15, 1900, NULL));

    /* 200 successful logins of distinct users, one after another */
    trl_hash_t  nat = unit_key(zone, "nat2");
    uint32_t    u;

    for (u = 0; u < 200; u++) {
        ck_assert_msg(dacq(zone, &nat, &l, 1000 + u, 2000 + u, &a),
                      "user %u", u);
        unit_eq(trl_distinct_cancel(zone, &nat, &l, a.ticket, 2000 + u),
                TRL_OK);
    }
    trl_result_t  p;
    unit_eq(trl_distinct_peek(zone, &nat, &l, 3000, &p), TRL_OK);
    ck_assert_uint_eq(p.remaining, 2);
}
END_TEST


START_TEST(distinct_provisional_shared_value_stays)
{
    trl_zone_t    *zone = dzone(64 * 1024, 1);
    trl_limit_t    l = unit_limit(1, 60000);
    trl_hash_t     k = unit_key(zone, "k");
    trl_result_t   a, b;

    l.flags = TRL_DISTINCT_PROVISIONAL;

    /* the same value twice in flight: one success does not free it */
    ck_assert(dacq(zone, &k, &l, 7, 1000, &a));
    ck_assert(dacq(zone, &k, &l, 7, 1000, &b));
    unit_eq(trl_distinct_cancel(zone, &k, &l, a.ticket, 1100), TRL_OK);
    ck_assert(!dacq(zone, &k, &l, 8, 1200, NULL));
    unit_eq(trl_distinct_cancel(zone, &k, &l, b.ticket, 1300), TRL_OK);
    ck_assert(!dacq(zone, &k, &l, 8, 1400, NULL));      /* held, never less */

    /* a ticket whose time has left the window changes nothing */
    ck_assert(dacq(zone, &k, &l, 9, 61001, &a));
    ck_assert(dacq(zone, &k, &l, 9, 70000, &b));        /* refreshed */
    unit_eq(trl_distinct_cancel(zone, &k, &l, a.ticket, 130000), TRL_OK);
    ck_assert(!dacq(zone, &k, &l, 10, 129999, NULL));
    ck_assert(dacq(zone, &k, &l, 10, 130000, NULL));
}
END_TEST


START_TEST(distinct_dry_run_and_penalty)
{
    trl_zone_t    *zone = dzone(64 * 1024, 1);
    trl_limit_t    l = unit_limit(1, 10000);
    trl_hash_t     k = unit_key(zone, "k");
    trl_result_t   r;

    l.flags = TRL_LIMIT_DRY_RUN;
    ck_assert(dacq(zone, &k, &l, 1, 1000, NULL));
    ck_assert(!dacq(zone, &k, &l, 2, 1001, &r));        /* reported only */
    ck_assert(!dacq(zone, &k, &l, 2, 1002, NULL));      /* not recorded */

    l.flags = 0;
    l.penalty.base_ms = 30000;
    l.penalty.max_ms = 60000;
    l.penalty.forgive_ms = 60000;
    l.penalty.factor = 2;
    ck_assert(!dacq(zone, &k, &l, 2, 2000, &r));
    ck_assert(r.penalty_start);
    /* blocked: even the value it has is refused */
    ck_assert(!dacq(zone, &k, &l, 1, 3000, &r));
    ck_assert(r.penalized);
    ck_assert(dacq(zone, &k, &l, 1, 32000, NULL));
}
END_TEST


/* Fingerprints are keyed 31-bit values; equal fingerprints are one value
 * (a collision merges two subjects: one value more gets through, never
 * more than one per collision). */
START_TEST(distinct_fingerprints_and_collisions)
{
    uint8_t       s1[16], s2[16];
    uint32_t      f1, f2;
    int           same = 0, i;
    char          buf[32];

    trl_distinct_secret("cluster secret", 14, s1);
    trl_distinct_secret("cluster secret", 14, s2);
    ck_assert(memcmp(s1, s2, 16) == 0);                 /* every node alike */
    trl_distinct_secret("another secret", 14, s2);
    ck_assert(memcmp(s1, s2, 16) != 0);

    f1 = trl_distinct_fingerprint(s1, "alice", 5);
    ck_assert_uint_eq(f1, trl_distinct_fingerprint(s1, "alice", 5));
    ck_assert_uint_le(f1, 0x7fffffff);
    for (i = 0; i < 64; i++) {
        snprintf(buf, sizeof(buf), "user%d", i);
        f1 = trl_distinct_fingerprint(s1, buf, strlen(buf));
        f2 = trl_distinct_fingerprint(s2, buf, strlen(buf));
        ck_assert_uint_le(f1 | f2, 0x7fffffff);
        same += f1 == f2;
    }
    ck_assert_int_le(same, 1);                          /* keyed */

    /* two subjects on one fingerprint: the second counts as a repeat */
    trl_zone_t    *zone = dzone(64 * 1024, 2);
    trl_limit_t    l = unit_limit(2, 10000);
    trl_hash_t     k = unit_key(zone, "k");
    trl_result_t   r;

    ck_assert(dacq(zone, &k, &l, 0x1234, 1000, NULL));
    ck_assert(dacq(zone, &k, &l, 0x1234, 1001, &r));    /* "bob" = "alice" */
    ck_assert_uint_eq(r.remaining, 1);
    /* only the 31 bits count: the top bit is not part of a value */
    ck_assert(dacq(zone, &k, &l, 0x80001234u, 1002, &r));
    ck_assert_uint_eq(r.remaining, 1);
    ck_assert(dacq(zone, &k, &l, 0x5678, 1003, NULL));
    ck_assert(!dacq(zone, &k, &l, 0x9abc, 1004, NULL));
}
END_TEST


/* A flood of fresh keys does not free a key at its distinct limit. */
START_TEST(distinct_eviction_keeps_full_keys)
{
    size_t         size = 64 * 1024;
    trl_zone_t    *zone = dzone(size, 3);
    trl_limit_t    l = unit_limit(3, 600000);
    trl_hash_t     k = unit_key(zone, "stuffer"), f;
    trl_zone_stats_t st;
    uint32_t       cap = trl_zone_capacity(zone), i;

    ck_assert(dacq(zone, &k, &l, 1, 1000, NULL));
    ck_assert(dacq(zone, &k, &l, 2, 1001, NULL));
    ck_assert(dacq(zone, &k, &l, 3, 1002, NULL));
    ck_assert(!dacq(zone, &k, &l, 4, 1003, NULL));

    for (i = 0; i < 20 * cap; i++) {
        f = unit_key_n(zone, "fresh", i);
        ck_assert(dacq(zone, &f, &l, 1, 2000 + i / 64, NULL));
    }
    trl_zone_stats(zone, &st);
    ck_assert_uint_gt(st.evicted, cap);
    ck_assert(!dacq(zone, &k, &l, 5, 5000, NULL));
    ck_assert(dacq(zone, &k, &l, 2, 5001, NULL));
}
END_TEST


START_TEST(distinct_memory_bound)
{
    /* entry 80 + chain head 4 + head 8 + 11 slots of 6 (rounded to 4) */
    ck_assert_uint_eq(trl_distinct_key_bytes(10, 0), 84 + 76);
    ck_assert_uint_eq(trl_distinct_key_bytes(10, TRL_ZONE_SYNC), 116 + 76);
    ck_assert_uint_eq(trl_distinct_key_bytes(1, 0), 84 + 20);
    ck_assert_uint_eq(trl_distinct_key_bytes(0, 0), 0);
    ck_assert_uint_eq(trl_distinct_key_bytes(TRL_DISTINCT_MAX_LIMIT + 1, 0),
                      0);

    /* the estimate is a lower bound, close to the zone made */
    size_t       sizes[] = { 64 * 1024, 1024 * 1024, 10 * 1024 * 1024 };
    uint32_t     ns[] = { 1, 10, 100 };
    size_t       i, j;

    for (i = 0; i < 3; i++) {
        for (j = 0; j < 3; j++) {
            trl_zone_t  *z = dzone(sizes[i], ns[j]);
            uint32_t     est = trl_distinct_zone_keys(sizes[i], ns[j], 0);
            uint32_t     cap = trl_zone_capacity(z);
            ck_assert_msg(est == cap,
                          "size %zu N %u: estimate %u, capacity %u",
                          sizes[i], ns[j], est, cap);
            unit_shm_free(z, sizes[i]);
        }
    }

    /* too small, bad N */
    char   err[256];
    void  *mem = unit_shm(32 * 1024);
    ck_assert(trl_distinct_zone_create(mem, 32 * 1024, 0, 1000, err,
                                       sizeof(err)) == NULL);
    ck_assert(strstr(err, "too small") != NULL);
    ck_assert(trl_distinct_zone_create(mem, 32 * 1024, 0, 0, err,
                                       sizeof(err)) == NULL);
    ck_assert_uint_eq(trl_distinct_zone_keys(32 * 1024, 1000, 0), 0);

    /* a plain zone is no distinct zone */
    trl_zone_t   *plain = unit_zone(64 * 1024);
    trl_limit_t   l = unit_limit(2, 1000);
    trl_hash_t    k = unit_key(plain, "k");
    trl_result_t  r;
    ck_assert_uint_eq(trl_distinct_zone_limit(plain), 0);
    ck_assert_int_eq(trl_distinct_acquire(plain, &k, &l, 1, 1, &r),
                     TRL_ERROR);
}
END_TEST


START_TEST(distinct_limit_lowered_on_reload)
{
    trl_zone_t    *zone = dzone(64 * 1024, 4);
    trl_limit_t    l = unit_limit(4, 10000);
    trl_hash_t     k = unit_key(zone, "k");

    ck_assert(dacq(zone, &k, &l, 1, 1000, NULL));
    ck_assert(dacq(zone, &k, &l, 2, 1000, NULL));
    ck_assert(dacq(zone, &k, &l, 3, 1000, NULL));
    l.rate.limit = 2;                   /* kept values, lower N */
    ck_assert(!dacq(zone, &k, &l, 4, 2000, NULL));
    ck_assert(dacq(zone, &k, &l, 3, 2000, NULL));
    l.rate.limit = 9;                   /* above the slots: clamped to 4 */
    ck_assert(dacq(zone, &k, &l, 4, 2000, NULL));
    ck_assert(!dacq(zone, &k, &l, 5, 2000, NULL));
    /* a longer window applies to the kept times */
    l.rate.window_ms = 3600000;
    ck_assert(!dacq(zone, &k, &l, 5, 20000, NULL));
}
END_TEST


/*
 * Never over, against a reference: every admission is logged with its
 * value and time, and given back or kept as the test settles it.  After
 * every step, the distinct values of the admissions not given back in the
 * last W are at most N.  Without provisional admissions the zone is exact:
 * its count equals the reference's, and it rejects only at N.
 */
#define REF_MAX  40000

typedef struct {
    uint64_t  at;
    uint64_t  ticket;
    uint32_t  fp;
    uint8_t   state;        /* 0 pending, 1 kept, 2 given back */
} ref_adm_t;

static uint32_t
ref_distinct(const ref_adm_t *log, size_t n, uint64_t now, uint64_t w)
{
    uint32_t  seen[64], k = 0, j;
    size_t    i;

    /* the log is in time order: the live part is its end */
    for (i = n; i-- > 0 && log[i].at + w > now;) {
        if (log[i].state == 2) {
            continue;
        }
        for (j = 0; j < k && seen[j] != log[i].fp; j++) { }
        if (j == k) {
            seen[k++] = log[i].fp;
        }
    }
    return k;
}

START_TEST(distinct_never_over_random)
{
    static ref_adm_t  log[REF_MAX];
    uint64_t          seed = 0x5eed0000 + (uint64_t) _i;
    unit_rng_t        rng = { seed };
    int               provisional = _i % 2;
    uint32_t          n = 1 + (uint32_t) (_i % 7);
    uint64_t          w = 10000;
    trl_zone_t       *zone = dzone(64 * 1024, n);
    trl_limit_t       l = unit_limit(n, w);
    trl_hash_t        k = unit_key(zone, "k");
    trl_result_t      r;
    uint64_t          now = 1000;
    size_t            nlog = 0, i, step;

    fprintf(stderr, "distinct_never_over_random: seed %#llx N %u %s\n",
            (unsigned long long) seed, n, provisional ? "provisional" : "");
    l.flags = provisional ? TRL_DISTINCT_PROVISIONAL : 0;

    for (step = 0; step < 20000 && nlog < REF_MAX; step++) {
        now += unit_below(&rng, 400);
        uint64_t  op = unit_below(&rng, 10);

        if (provisional && op < 4 && nlog > 0) {
            /* settle one pending admission */
            i = nlog - 1 - unit_below(&rng, nlog < 8 ? nlog : 8);
            if (log[i].state == 0) {
                int keep = unit_below(&rng, 3) == 0;
                if (keep) {
                    trl_distinct_confirm(zone, &k, &l, log[i].ticket, now);
                } else {
                    trl_distinct_cancel(zone, &k, &l, log[i].ticket, now);
                }
                log[i].state = keep ? 1 : 2;
            }
        } else {
            uint32_t  fp = (uint32_t) unit_below(&rng, 2 * n + 3);
            uint32_t  before = ref_distinct(log, nlog, now, w);
            int       ok = dacq(zone, &k, &l, fp, now, &r);

            if (ok) {
                log[nlog].at = now;
                log[nlog].fp = fp;
                log[nlog].ticket = r.ticket;
                log[nlog].state = provisional ? 0 : 1;
                nlog++;
            }
            if (!provisional) {
                /* exact: rejected only at N, and the counts agree */
                unit_check_msg(ok || before >= n,
                               "seed %#llx step %zu: rejected at %u < N",
                               (unsigned long long) seed, step, before);
                unit_eq(n - r.remaining, ref_distinct(log, nlog, now, w));
            }
        }
        unit_check_msg(ref_distinct(log, nlog, now, w) <= n,
                       "seed %#llx step %zu: over N", (unsigned long long) seed,
                       step);
    }
}
END_TEST


/* The Redis script's codec. */
START_TEST(distinct_redis_args)
{
    char                      buf[TRL_DISTINCT_REDIS_BUF];
    trl_distinct_arg_t        argv[TRL_DISTINCT_REDIS_ARGS];
    trl_distinct_redis_req_t  q;
    const char               *want[] = { "a", "600000", "10", "2147483647",
                                         "1", "0", "0", "0" };
    size_t                    i, n;

    memset(&q, 0, sizeof(q));
    q.op = TRL_DISTINCT_OP_ACQUIRE;
    q.window_ms = 600000;
    q.limit = 10;
    q.fp = 0xffffffff;
    q.provisional = 1;
    n = trl_distinct_redis_args(&q, buf, sizeof(buf), argv, 8);
    ck_assert_uint_eq(n, TRL_DISTINCT_REDIS_ARGS);
    for (i = 0; i < n; i++) {
        ck_assert_uint_eq(argv[i].len, strlen(want[i]));
        ck_assert(memcmp(argv[i].data, want[i], argv[i].len) == 0);
    }

    q.op = TRL_DISTINCT_OP_CANCEL;
    q.provisional = 0;
    q.made = 1;
    q.stamp_ms = 1796598475209ULL;
    n = trl_distinct_redis_args(&q, buf, sizeof(buf), argv, 8);
    ck_assert_uint_eq(n, 8);
    ck_assert(argv[0].len == 1 && argv[0].data[0] == 'x');
    ck_assert(argv[4].len == 1 && argv[4].data[0] == '4');
    ck_assert(argv[5].len == 13 && memcmp(argv[5].data, "1796598475209", 13)
              == 0);

    /* a buffer as large as the longest request needs */
    q.window_ms = TRL_RATE_MAX_WINDOW_MS;
    q.limit = TRL_DISTINCT_MAX_LIMIT;
    q.stamp_ms = UINT64_MAX;
    q.lifetime_ms = TRL_RATE_MAX_WINDOW_MS;
    q.id = UINT32_MAX;
    ck_assert_uint_eq(trl_distinct_redis_args(&q, buf, sizeof(buf), argv, 8),
                      8);
    ck_assert_uint_eq(trl_distinct_redis_args(&q, buf, 20, argv, 8), 0);
    ck_assert_uint_eq(trl_distinct_redis_args(&q, buf, sizeof(buf), argv, 7),
                      0);
    q.op = TRL_DISTINCT_OP_RELEASE + 1;
    ck_assert_uint_eq(trl_distinct_redis_args(&q, buf, sizeof(buf), argv, 8),
                      0);
    ck_assert(strstr(trl_distinct_script(), "ZREMRANGEBYSCORE") != NULL);

    /* active zones: settle (lifetime, id), release, unique acquire */
    memset(&q, 0, sizeof(q));
    q.op = TRL_DISTINCT_OP_SETTLE;
    q.window_ms = 3600000;
    q.limit = 5;
    q.fp = 0x40000001;
    q.stamp_ms = 17;
    q.lifetime_ms = 2000;
    q.id = 0x2a;
    n = trl_distinct_redis_args(&q, buf, sizeof(buf), argv, 8);
    ck_assert_uint_eq(n, 8);
    ck_assert(argv[0].len == 1 && argv[0].data[0] == 's');
    ck_assert(argv[6].len == 4 && memcmp(argv[6].data, "2000", 4) == 0);
    ck_assert(argv[7].len == 2 && memcmp(argv[7].data, "42", 2) == 0);
    q.op = TRL_DISTINCT_OP_RELEASE;
    n = trl_distinct_redis_args(&q, buf, sizeof(buf), argv, 8);
    ck_assert(n == 8 && argv[0].data[0] == 'r');
    q.op = TRL_DISTINCT_OP_ACQUIRE;
    q.unique = 1;
    q.provisional = 1;
    n = trl_distinct_redis_args(&q, buf, sizeof(buf), argv, 8);
    ck_assert(n == 8 && argv[4].len == 1 && argv[4].data[0] == '9');
}
END_TEST


START_TEST(distinct_redis_reply)
{
    trl_distinct_reply_t  d;
    const char           *ok = "0 0 10 59827 59931 1796598475438";
    const char           *bad[] = {
        "", "1", "1 1 3 0 60000", "1 1 3 0 60000 1796598475209 7",
        "1 1 3 0 60000 x", "2 0 3 0 60000 1", "1 2 3 0 60000 1",
        "1  1 3 0 60000 1", " 1 1 3 0 60000 1", "1 1 3 0 60000 1 ",
        "1 1 3 0 60000 1.7e+12", "1 1 -3 0 60000 1",
        "1 1 4294967296 0 60000 1", "1 1 3 0 60000 99999999999999999999",
        "ERR wrong number of arguments",
    };
    size_t                i;

    ck_assert_int_eq(trl_distinct_redis_reply(ok, strlen(ok), &d), TRL_OK);
    ck_assert(d.admitted == 0 && d.made == 0 && d.count == 10);
    ck_assert_uint_eq(d.free_in_ms, 59827);
    ck_assert_uint_eq(d.reset_in_ms, 59931);
    ck_assert_uint_eq(d.stamp_ms, 1796598475438ULL);

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ck_assert_msg(trl_distinct_redis_reply(bad[i], strlen(bad[i]), &d)
                      == TRL_ERROR, "accepted \"%s\"", bad[i]);
    }
    /* a reply cut short after a space */
    ck_assert_int_eq(trl_distinct_redis_reply(ok, 19, &d), TRL_ERROR);
}
END_TEST


/* Redis's answer recorded in the zone: an admission mirrored locally
 * (forced, whatever the local count), a rejection counted. */
START_TEST(distinct_strict_apply)
{
    trl_zone_t            *zone = dzone(64 * 1024, 2);
    trl_limit_t            l = unit_limit(2, 10000);
    trl_hash_t             k = unit_key(zone, "k");
    trl_distinct_reply_t   d;
    trl_result_t           r;

    memset(&d, 0, sizeof(d));
    d.admitted = 1;
    d.count = 2;
    d.reset_in_ms = 10000;
    unit_eq(trl_distinct_strict_apply(zone, &k, &l, 5, &d, 1000, &r), TRL_OK);
    ck_assert(!r.rejected);
    ck_assert_uint_eq(r.remaining, 0);      /* the cluster's count */

    d.admitted = 0;
    d.count = 2;
    d.free_in_ms = 4000;
    unit_eq(trl_distinct_strict_apply(zone, &k, &l, 6, &d, 2000, &r), TRL_OK);
    ck_assert(r.rejected);
    ck_assert_uint_eq(r.retry_ms, 4000);

    /* forced past the local limit: the oldest local value makes room */
    d.admitted = 1;
    d.count = 2;
    unit_eq(trl_distinct_strict_apply(zone, &k, &l, 7, &d, 3000, &r), TRL_OK);
    unit_eq(trl_distinct_strict_apply(zone, &k, &l, 8, &d, 3001, &r), TRL_OK);
    unit_eq(trl_distinct_strict_apply(zone, &k, &l, 9, &d, 3002, &r), TRL_OK);
    trl_result_t  p;
    unit_eq(trl_distinct_peek(zone, &k, &l, 3003, &p), TRL_OK);
    ck_assert(p.rejected);
}
END_TEST


/* sync=async: only a value held here and settled is decided here, and its
 * time is not extended; anything else asks Redis and records nothing */
START_TEST(distinct_held_only)
{
    trl_zone_t            *zone = dzone(64 * 1024, 2);
    trl_limit_t            l = unit_limit(2, 10000);
    trl_limit_t            h = l;
    trl_hash_t             k = unit_key(zone, "k");
    trl_distinct_reply_t   d;
    trl_result_t           r, p;

    h.flags |= TRL_DISTINCT_HELD;

    /* an unknown key: ask, and the key is not made */
    unit_eq(trl_distinct_acquire(zone, &k, &h, 5, 1000, &r), TRL_OK);
    ck_assert(r.ask && !r.rejected);
    unit_eq(trl_distinct_peek(zone, &k, &l, 1000, &p), 1);

    /* Redis admitted 5 (the cluster holds 1): held here from now on */
    memset(&d, 0, sizeof(d));
    d.admitted = 1;
    d.made = 1;
    d.count = 1;
    d.reset_in_ms = 10000;
    unit_eq(trl_distinct_strict_apply(zone, &k, &l, 5, &d, 1000, &r), TRL_OK);
    unit_eq(trl_distinct_confirm(zone, &k, &l, r.ticket, 1000), TRL_OK);

    unit_eq(trl_distinct_acquire(zone, &k, &h, 5, 5000, &r), TRL_OK);
    ck_assert(!r.ask && !r.rejected);
    ck_assert_uint_eq(r.remaining, 1);
    ck_assert_uint_eq(r.reset_ms, 11000);   /* not extended */

    /* a value not held: ask, nothing recorded */
    unit_eq(trl_distinct_acquire(zone, &k, &h, 6, 5000, &r), TRL_OK);
    ck_assert(r.ask && !r.rejected);
    unit_eq(trl_distinct_peek(zone, &k, &l, 5000, &p), TRL_OK);
    ck_assert_uint_eq(p.remaining, 1);

    /* a provisional hold of a request in flight is Redis's to decide */
    l.flags |= TRL_DISTINCT_PROVISIONAL;
    ck_assert(dacq(zone, &k, &l, 7, 6000, &r));
    unit_eq(trl_distinct_acquire(zone, &k, &h, 7, 6001, &r), TRL_OK);
    ck_assert(r.ask);

    /* 5 leaves the window here when it leaves Redis's set */
    unit_eq(trl_distinct_acquire(zone, &k, &h, 5, 11000, &r), TRL_OK);
    ck_assert(r.ask);
}
END_TEST


Suite *
distinct_suite(void)
{
    Suite  *s = suite_create("distinct");
    TCase  *tc = unit_tcase(s, "window", 30);

    tcase_add_test(tc, distinct_window_boundaries);
    tcase_add_test(tc, distinct_repeats_are_not_new);
    tcase_add_test(tc, distinct_provisional_given_back);
    tcase_add_test(tc, distinct_provisional_shared_value_stays);
    tcase_add_test(tc, distinct_dry_run_and_penalty);
    tcase_add_test(tc, distinct_fingerprints_and_collisions);
    tcase_add_test(tc, distinct_eviction_keeps_full_keys);
    tcase_add_test(tc, distinct_memory_bound);
    tcase_add_test(tc, distinct_limit_lowered_on_reload);
    tcase_add_loop_test(tc, distinct_never_over_random, 0, 8);
    tcase_add_test(tc, distinct_redis_args);
    tcase_add_test(tc, distinct_redis_reply);
    tcase_add_test(tc, distinct_strict_apply);
    tcase_add_test(tc, distinct_held_only);
    return s;
}
