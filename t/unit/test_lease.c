/*
 * test_lease.c - async zones with Redis at hand (TRL_LIMIT_LEASE, SPEC 8):
 * a node admits only from the places Redis reserved for it (its lease),
 * rejects on a read younger than TRL_LEASE_MS that said "full", and else
 * asks Redis (res.ask, nothing recorded); trl_zone_async_apply() takes the
 * answer (the read, the lease, a penalty, the decision); a Redis total
 * below the node's own published count drops the node's window (a DEL);
 * a lease admission given back returns to the lease.
 */

#include "unit.h"

#include <string.h>


#define SEC   1000ULL
#define MIN   (60 * SEC)

#define T0    (1ULL << 30)


static trl_limit_t
lease_limit(uint32_t n, uint64_t window_ms)
{
    trl_limit_t  l = unit_limit(n, window_ms);

    l.flags = TRL_LIMIT_SYNC | TRL_LIMIT_LEASE;
    l.refresh_ms = 50;
    return l;
}


/* One acquire: 1 admitted, 0 rejected, -1 "ask Redis" (nothing decided). */
static int
decide(trl_zone_t *zone, const trl_hash_t *key, const trl_limit_t *l,
    uint64_t now_ms, trl_result_t *res)
{
    trl_result_t  r;

    ck_assert_int_eq(trl_zone_acquire(zone, key, l, now_ms, &r), TRL_OK);
    if (res != NULL) {
        *res = r;
    }
    if (r.ask) {
        ck_assert_int_eq(r.rejected, 0);
        return -1;
    }
    return !r.rejected;
}


/* Redis's answer to an ask. */
static int
answer(trl_zone_t *zone, const trl_hash_t *key, const trl_limit_t *l,
    int admitted, uint32_t total, uint32_t lease, uint32_t free_in,
    uint32_t penalty_in, uint32_t violations, uint64_t now_ms,
    trl_result_t *res)
{
    trl_ask_reply_t  rp;
    trl_result_t     r;

    memset(&rp, 0, sizeof(rp));
    rp.stamp_ms = now_ms;
    rp.admitted = (uint8_t) admitted;
    rp.total = total;
    rp.lease = lease;
    rp.lease_ms = TRL_LEASE_MS;
    rp.free_in_ms = free_in;
    rp.reset_in_ms = free_in > 0 ? free_in : 60 * SEC;
    rp.penalty_in_ms = penalty_in;
    rp.violations = violations;

    ck_assert_int_eq(trl_zone_async_apply(zone, key, l, &rp, now_ms, &r),
                     TRL_OK);
    ck_assert_int_eq(r.rejected, !admitted);
    if (res != NULL) {
        *res = r;
    }
    return !r.rejected;
}


/* A key the node has not seen: it asks, and records nothing meanwhile. */
START_TEST(lease_cold_key_asks)
{
    size_t           size = 64 * 1024;
    trl_zone_t      *zone = unit_zone_flags(size, TRL_ZONE_SYNC);
    trl_limit_t      l = lease_limit(30, MIN);
    trl_hash_t       key = unit_key(zone, "cold");
    trl_result_t     res;
    trl_zone_stats_t st;
    int              k;

    for (k = 0; k < 5; k++) {
        ck_assert_int_eq(decide(zone, &key, &l, T0 + k, &res), -1);
    }
    trl_zone_stats(zone, &st);
    ck_assert_uint_eq(st.passed, 0);
    ck_assert_uint_eq(st.rejected, 0);

    /* a plain zone (no sync state) never asks */
    {
        trl_zone_t  *plain = unit_zone(size);
        trl_hash_t   k2 = unit_key(plain, "cold");

        ck_assert_int_eq(decide(plain, &k2, &l, T0, &res), 1);
        ck_assert_uint_eq(res.ask, 0);
        unit_shm_free(plain, size);
    }
    unit_shm_free(zone, size);
}
END_TEST


/* Redis admits and reserves 3: the node admits 3 more without asking,
 * then asks again; the remaining it shows counts its unused places as
 * its own. */
START_TEST(lease_admits_share_then_asks)
{
    size_t        size = 64 * 1024;
    trl_zone_t   *zone = unit_zone_flags(size, TRL_ZONE_SYNC);
    trl_limit_t   l = lease_limit(30, MIN);
    trl_hash_t    key = unit_key(zone, "share");
    trl_result_t  res;
    int           k;

    ck_assert_int_eq(decide(zone, &key, &l, T0, NULL), -1);
    ck_assert(answer(zone, &key, &l, 1, 4, 3, 0, 0, 0, T0 + 1, &res));
    ck_assert_uint_eq(res.remaining, 29);
    ck_assert_uint_eq(res.leased, 0);

    for (k = 0; k < 3; k++) {
        ck_assert_int_eq(decide(zone, &key, &l, T0 + 10 + k, &res), 1);
        ck_assert_uint_eq(res.leased, 1);
        ck_assert_uint_eq(res.remaining, 28 - k);
    }
    ck_assert_int_eq(decide(zone, &key, &l, T0 + 20, NULL), -1);

    /* leased admissions are in Redis already: nothing pending */
    {
        trl_result_t  p;

        l.flags = TRL_LIMIT_SYNC;
        ck_assert_int_eq(unit_peek(zone, &key, &l, T0 + 21, &p), TRL_OK);
        ck_assert_uint_eq(p.remaining, 26);
    }
    unit_shm_free(zone, size);
}
END_TEST


/* A lease lasts TRL_LEASE_MS: places left after it are not used. */
START_TEST(lease_expires)
{
    size_t        size = 64 * 1024;
    trl_zone_t   *zone = unit_zone_flags(size, TRL_ZONE_SYNC);
    trl_limit_t   l = lease_limit(30, MIN);
    trl_hash_t    key = unit_key(zone, "expires");

    ck_assert(answer(zone, &key, &l, 1, 4, 3, 0, 0, 0, T0, NULL));
    ck_assert_int_eq(decide(zone, &key, &l, T0 + TRL_LEASE_MS - 1, NULL), 1);
    ck_assert_int_eq(decide(zone, &key, &l, T0 + TRL_LEASE_MS, NULL), -1);

    /* a new grant is added to what is left of a running lease */
    ck_assert(answer(zone, &key, &l, 1, 8, 2, 0, 0, 0, T0 + 2000, NULL));
    ck_assert(answer(zone, &key, &l, 1, 11, 2, 0, 0, 0, T0 + 2001, NULL));
    ck_assert_int_eq(decide(zone, &key, &l, T0 + 2002, NULL), 1);
    ck_assert_int_eq(decide(zone, &key, &l, T0 + 2003, NULL), 1);
    ck_assert_int_eq(decide(zone, &key, &l, T0 + 2004, NULL), 1);
    ck_assert_int_eq(decide(zone, &key, &l, T0 + 2005, NULL), 1);
    ck_assert_int_eq(decide(zone, &key, &l, T0 + 2006, NULL), -1);

    ck_assert_uint_eq(trl_lease_ms(MIN), TRL_LEASE_MS);
    ck_assert_uint_eq(trl_lease_ms(2 * SEC), 500);
    unit_shm_free(zone, size);
}
END_TEST


/* Redis said "full": the node rejects on its own until the first place
 * is free, but for TRL_LEASE_MS at most (a DEL must be seen). */
START_TEST(lease_full_trusted_a_second)
{
    size_t        size = 64 * 1024;
    trl_zone_t   *zone = unit_zone_flags(size, TRL_ZONE_SYNC);
    trl_limit_t   l = lease_limit(5, MIN);
    trl_hash_t    key = unit_key(zone, "full");
    trl_hash_t    k2 = unit_key(zone, "full-soon");
    trl_result_t  res;

    ck_assert(!answer(zone, &key, &l, 0, 5, 0, 40 * SEC, 0, 0, T0, &res));
    ck_assert_uint_eq(res.retry_ms, 40 * SEC);

    ck_assert_int_eq(decide(zone, &key, &l, T0 + 500, &res), 0);
    ck_assert_uint_eq(res.retry_ms, 40 * SEC - 500);
    ck_assert_int_eq(decide(zone, &key, &l, T0 + TRL_LEASE_MS - 1, NULL), 0);
    ck_assert_int_eq(decide(zone, &key, &l, T0 + TRL_LEASE_MS, NULL), -1);

    /* a place frees before the second is over: ask from then on */
    ck_assert(!answer(zone, &k2, &l, 0, 5, 0, 300, 0, 0, T0, NULL));
    ck_assert_int_eq(decide(zone, &k2, &l, T0 + 299, NULL), 0);
    ck_assert_int_eq(decide(zone, &k2, &l, T0 + 300, NULL), -1);

    /* a read below N (a publish reply) ends it at once */
    {
        trl_sync_read_t  rd;

        memset(&rd, 0, sizeof(rd));
        rd.stamp_ms = T0 + 2;
        rd.total = 0;
        ck_assert_int_eq(decide(zone, &key, &l, T0 + 2, NULL), 0);
        ck_assert_int_eq(trl_zone_sync_apply(zone, &key, &l, &rd, T0 + 3),
                         TRL_OK);
        ck_assert_int_eq(decide(zone, &key, &l, T0 + 4, NULL), -1);
    }
    unit_shm_free(zone, size);
}
END_TEST


/* A penalty Redis knows holds here from the answer on, without asking;
 * a rejection of the count starts the node's own (published later). */
START_TEST(lease_penalties)
{
    size_t        size = 64 * 1024;
    trl_zone_t   *zone = unit_zone_flags(size, TRL_ZONE_SYNC);
    trl_limit_t   l = lease_limit(5, MIN);
    trl_hash_t    key = unit_key(zone, "pen");
    trl_hash_t    k2 = unit_key(zone, "pen-start");
    trl_result_t  res;

    l.penalty.base_ms = 30 * SEC;
    l.penalty.max_ms = 30 * SEC;
    l.penalty.factor = 2;
    l.penalty.forgive_ms = MIN;

    ck_assert(!answer(zone, &key, &l, 0, 5, 0, 30 * SEC, 30 * SEC, 2, T0,
                      &res));
    ck_assert_uint_eq(res.penalized, 1);
    ck_assert_uint_eq(res.penalty_start, 0);
    ck_assert_uint_eq(res.violations, 2);
    /* after the "full" read is no longer trusted, the penalty still is */
    ck_assert_int_eq(decide(zone, &key, &l, T0 + 5 * SEC, &res), 0);
    ck_assert_uint_eq(res.penalized, 1);
    ck_assert_uint_ge(res.retry_ms, 25 * SEC - 16);
    ck_assert_int_eq(decide(zone, &key, &l, T0 + 31 * SEC, NULL), -1);

    ck_assert(!answer(zone, &k2, &l, 0, 5, 0, 10 * SEC, 0, 0, T0, &res));
    ck_assert_uint_eq(res.penalty_start, 1);
    ck_assert_uint_eq(res.penalty_ms, 30 * SEC);
    unit_shm_free(zone, size);
}
END_TEST


/* A leased admission given back (count=failed, a rollback) returns to
 * the lease; one admitted by Redis itself is released in Redis (the
 * glue), the zone only forgets it locally. */
START_TEST(lease_release_returns_place)
{
    size_t        size = 64 * 1024;
    trl_zone_t   *zone = unit_zone_flags(size, TRL_ZONE_SYNC);
    trl_limit_t   l = lease_limit(30, MIN);
    trl_hash_t    key = unit_key(zone, "release");
    trl_result_t  res;

    ck_assert(answer(zone, &key, &l, 1, 2, 1, 0, 0, 0, T0, NULL));
    ck_assert_int_eq(decide(zone, &key, &l, T0 + 1, &res), 1);
    ck_assert_uint_eq(res.leased, 1);
    ck_assert_int_eq(decide(zone, &key, &l, T0 + 2, NULL), -1);

    ck_assert_int_eq(trl_zone_release(zone, &key, &l, res.ticket, T0 + 3),
                     TRL_OK);
    ck_assert_int_eq(decide(zone, &key, &l, T0 + 4, &res), 1);
    ck_assert_uint_eq(res.leased, 1);
    ck_assert_int_eq(decide(zone, &key, &l, T0 + 5, NULL), -1);

    /* after the lease ended, a place given back is not reused */
    ck_assert_int_eq(trl_zone_release(zone, &key, &l, res.ticket,
                                      T0 + TRL_LEASE_MS), TRL_OK);
    ck_assert_int_eq(decide(zone, &key, &l, T0 + TRL_LEASE_MS + 1, NULL),
                     -1);
    unit_shm_free(zone, size);
}
END_TEST


/* SPEC 8, a reset is a reset: a Redis total below what the node counted
 * and published drops the node's own window, so that it is not held
 * against the key when Redis cannot be reached either. */
START_TEST(lease_del_drops_own_count)
{
    size_t        size = 64 * 1024;
    trl_zone_t   *zone = unit_zone_flags(size, TRL_ZONE_SYNC);
    trl_limit_t   l = lease_limit(10, MIN);
    trl_limit_t   local = unit_limit(10, MIN);
    trl_hash_t    key = unit_key(zone, "del");
    trl_hash_t    k2 = unit_key(zone, "kept");
    trl_result_t  res;
    int           k;

    for (k = 0; k < 5; k++) {
        ck_assert(answer(zone, &key, &l, 1, 1 + k, 0, 0, 0, 0, T0 + k,
                         NULL));
        ck_assert(answer(zone, &k2, &l, 1, 1 + k, 0, 0, 0, 0, T0 + k,
                         NULL));
    }
    /* Redis's count of k2 matches: its window stays (5 + 5 more) */
    ck_assert(answer(zone, &k2, &l, 1, 6, 0, 0, 0, 0, T0 + 10, NULL));
    for (k = 0; k < 4; k++) {
        ck_assert_int_eq(decide(zone, &k2, &local, T0 + 11 + k, NULL), 1);
    }
    ck_assert_int_eq(decide(zone, &k2, &local, T0 + 20, NULL), 0);

    /* DEL: Redis counts 1 (this one) where the node published 5 */
    ck_assert(answer(zone, &key, &l, 1, 1, 0, 0, 0, 0, T0 + 10, &res));
    ck_assert_uint_eq(res.remaining, 9);
    /* Redis gone: the node's own count is the one admission since */
    for (k = 0; k < 9; k++) {
        ck_assert_int_eq(decide(zone, &key, &local, T0 + 11 + k, NULL), 1);
    }
    ck_assert_int_eq(decide(zone, &key, &local, T0 + 30, NULL), 0);
    unit_shm_free(zone, size);
}
END_TEST


/* The node's name for its reservations: stable, and another zone's
 * differs. */
START_TEST(lease_node_id)
{
    size_t       size = 64 * 1024;
    trl_zone_t  *a = unit_zone_flags(size, TRL_ZONE_SYNC);
    trl_zone_t  *b = unit_zone_flags(size, TRL_ZONE_SYNC);

    ck_assert_uint_eq(trl_zone_node_id(a), trl_zone_node_id(a));
    ck_assert_uint_ne(trl_zone_node_id(a), trl_zone_node_id(b));
    unit_shm_free(a, size);
    unit_shm_free(b, size);
}
END_TEST


/* The ask script's contract, as far as its text shows it. */
START_TEST(lease_ask_script)
{
    const char  *s = trl_redis_script(TRL_SCRIPT_ASK);
    const char  *p = trl_redis_script(TRL_SCRIPT_PUBLISH);

    ck_assert_ptr_nonnull(strstr(s, "for _, key in ipairs(KEYS)"));
    ck_assert_ptr_nonnull(strstr(s, "math.floor((N - total) / 8)"));
    ck_assert_ptr_nonnull(strstr(s, "pu <= now and total < N"));
    ck_assert_ptr_nonnull(strstr(s, "'HINCRBY', key, own .. ':' .. e, share"));
    /* reservations count in every script's total and expire on their own */
    ck_assert_ptr_nonnull(strstr(p, "string.sub(name, 1, 2) == 'l:'"));
    ck_assert_ptr_nonnull(strstr(p, "e > now"));
    ck_assert_ptr_nonnull(strstr(trl_redis_script(TRL_SCRIPT_STRICT),
                                 "string.sub(name, 1, 2) == 'l:'"));
}
END_TEST


Suite *
lease_suite(void)
{
    Suite  *s;
    TCase  *tc;

    s = suite_create("lease");

    tc = unit_tcase(s, "lease", 10);
    tcase_add_test(tc, lease_cold_key_asks);
    tcase_add_test(tc, lease_admits_share_then_asks);
    tcase_add_test(tc, lease_expires);
    tcase_add_test(tc, lease_full_trusted_a_second);
    tcase_add_test(tc, lease_penalties);
    tcase_add_test(tc, lease_release_returns_place);
    tcase_add_test(tc, lease_del_drops_own_count);
    tcase_add_test(tc, lease_node_id);
    tcase_add_test(tc, lease_ask_script);

    return s;
}
