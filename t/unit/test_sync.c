/*
 * test_sync.c - the cluster side of zones: TRL_ZONE_SYNC layout, the
 * cluster estimate of async zones (reads, pending admissions, stamps), the
 * block cache of strict zones, sync statistics, clean state of reused
 * entries, and the Redis key names, cell width and scripts.
 *
 * Everything goes through the C ABI with explicit clock values.  Where a
 * test wants a key's pending count itself it reads the SyncState array
 * through the mirrors below (zone.hpp: Entry, SyncState), which
 * sync_mirror_checks verifies against what the ABI reports first.
 *
 * The "regressions" case holds tests of defects found and fixed: a retry
 * hidden by the node's own window, and keys blocked by the cluster (or by
 * Redis, strict) evicted before open ones.
 */

#include "unit.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

#include "trl_distinct.h"


#define SEC   1000ULL
#define MIN   (60 * SEC)
#define HOUR  (60 * MIN)

#define T0    (1ULL << 30)   /* ms, on the unit grid of every window */

#define FRESH_READS  4       /* zone_sync.cpp: kFreshReads */


/* Mirror of trl::Entry (80 bytes). */
typedef struct {
    uint64_t  h_lo;
    uint64_t  h_hi;
    uint32_t  lru_prev;
    uint32_t  lru_next;
    uint32_t  chain_next;
    uint32_t  touched_s;
    uint8_t   win[36];
    uint32_t  penalty_until;
    uint8_t   violations;
    uint8_t   flags;
    uint16_t  suppressed;
    uint32_t  sync_lease;
} unit_entry_t;

#define UNIT_ENTRY_IN_USE  0x20

/* Mirror of trl::SyncState (32 bytes). */
typedef struct {
    uint64_t  seen_ms;
    uint64_t  block_until_ms;
    uint32_t  stamp;
    uint32_t  free_in_ms;
    uint32_t  reset_in_ms;
    uint16_t  remote;
    uint16_t  pending;
} unit_sync_state_t;


static trl_limit_t
sync_limit(uint32_t n, uint64_t window_ms, uint32_t refresh_ms)
{
    trl_limit_t  l = unit_limit(n, window_ms);

    l.flags = TRL_LIMIT_SYNC;
    l.refresh_ms = refresh_ms;
    return l;
}


static void
sync_read(trl_zone_t *zone, const trl_hash_t *key, const trl_limit_t *limit,
    uint64_t stamp, uint32_t total, uint32_t free_in, uint32_t reset_in,
    uint32_t published, uint64_t now_ms)
{
    trl_sync_read_t  rd;
    int              rc;

    memset(&rd, 0, sizeof(rd));
    rd.stamp_ms = stamp;
    rd.total = total;
    rd.free_in_ms = free_in;
    rd.reset_in_ms = reset_in;
    rd.published = published;

    rc = trl_zone_sync_apply(zone, key, limit, &rd, now_ms);
    unit_check_msg(rc == TRL_OK, "trl_zone_sync_apply returned %d", rc);
}


static void
strict_reply(trl_zone_t *zone, const trl_hash_t *key,
    const trl_limit_t *limit, int admitted, uint32_t total, uint32_t free_in,
    uint32_t reset_in, uint64_t now_ms, trl_result_t *res)
{
    trl_strict_reply_t  rp;
    trl_result_t        r;
    int                 rc;

    memset(&rp, 0, sizeof(rp));
    rp.admitted = (uint8_t) admitted;
    rp.total = total;
    rp.free_in_ms = free_in;
    rp.reset_in_ms = reset_in;

    rc = trl_zone_strict_apply(zone, key, limit, &rp, now_ms, &r);
    unit_check_msg(rc == TRL_OK, "trl_zone_strict_apply returned %d", rc);
    unit_eq(r.rejected, !admitted);
    if (res != NULL) {
        *res = r;
    }
}


static int
strict_cached(trl_zone_t *zone, const trl_hash_t *key,
    const trl_limit_t *limit, uint64_t now_ms, trl_result_t *res)
{
    trl_result_t  r;
    int           rc;

    rc = trl_zone_strict_cached(zone, key, limit, now_ms, &r);
    unit_check_msg(rc == 0 || rc == 1, "trl_zone_strict_cached returned %d",
                   rc);
    unit_eq(r.rejected, rc);
    if (res != NULL) {
        *res = r;
    }
    return rc;
}


/* The SyncState of a key (NULL when the key is not in the zone). */
static unit_sync_state_t *
sync_state(trl_zone_t *zone, const trl_hash_t *key)
{
    unit_root_t   *r = unit_root(zone);
    unit_entry_t  *e;
    uint32_t       i, cap = trl_zone_capacity(zone);

    ck_assert_uint_ne(r->sync_off, 0);
    e = (unit_entry_t *) (void *) ((char *) zone + r->entries_off);
    for (i = 0; i < cap; i++) {
        if ((e[i].flags & UNIT_ENTRY_IN_USE) && e[i].h_lo == key->lo
            && e[i].h_hi == key->hi)
        {
            return (unit_sync_state_t *) (void *) ((char *) zone + r->sync_off)
                   + i;
        }
    }
    return NULL;
}


static uint32_t
pending_of(trl_zone_t *zone, const trl_hash_t *key)
{
    unit_sync_state_t  *ss = sync_state(zone, key);

    ck_assert_ptr_nonnull(ss);
    return ss->pending;
}


/*
 * Layout
 */

/* Sync zones: the flag, 32 bytes more per key, everything inside the
 * block, as full as the block allows. */
START_TEST(sync_layout)
{
    size_t  m = trl_zone_min_size();
    size_t  sizes[] = { 0, 0, 64 * 1024, 256 * 1024 + 77, 1024 * 1024,
                        4 * 1024 * 1024 + 13 };
    size_t  guard = 4096, i, k;
    size_t  per_plain = trl_zone_entry_size() + 4;
    size_t  per_sync = per_plain + 32;

    sizes[0] = m;
    sizes[1] = m + 999;

    ck_assert_uint_eq(trl_zone_entry_size(), sizeof(unit_entry_t));
    ck_assert_uint_eq(sizeof(unit_sync_state_t), 32);

    for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        size_t          size = sizes[i];
        unsigned char  *pm = unit_shm(size), *sm = unit_shm(size + guard);
        char            err[256];
        trl_zone_t     *plain, *sync;
        unit_root_t    *pr, *sr;
        uint32_t        pcap, scap;
        trl_limit_t     l = sync_limit(3, MIN, 1000);

        memset(sm, 0xa5, size);
        memset(sm + size, 0xc3, guard);
        plain = trl_zone_create(pm, size, 0, err, sizeof(err));
        ck_assert_msg(plain != NULL, "size %zu: %s", size, err);
        sync = trl_zone_create(sm, size, TRL_ZONE_SYNC, err, sizeof(err));
        ck_assert_msg(sync != NULL, "size %zu: %s", size, err);
        pr = unit_root(plain);
        sr = unit_root(sync);
        pcap = trl_zone_capacity(plain);
        scap = trl_zone_capacity(sync);

        ck_assert_uint_eq(trl_zone_flags(plain), 0);
        ck_assert_uint_eq(trl_zone_flags(sync), TRL_ZONE_SYNC);
        ck_assert_uint_eq(pr->sync_off, 0);

        /* fewer keys, and 32 bytes more each */
        ck_assert_uint_gt(pcap, scap);
        ck_assert_uint_le((uint64_t) scap * per_sync, size);
        ck_assert_uint_ge(sr->sync_off,
                          sr->entries_off + (uint64_t) scap * 80);
        ck_assert_uint_eq(sr->sync_off % 8, 0);
        ck_assert_uint_le(sr->sync_off + (uint64_t) scap * 32, size);
        /* no room left for another key per stripe, but for the top
         * offenders table at the end (16 or 64 entries of 112 bytes) */
        ck_assert_uint_ge(sr->offenders_off,
                          sr->sync_off + (uint64_t) scap * 32);
        ck_assert_uint_lt(size - (sr->sync_off + (uint64_t) scap * 32),
                          (uint64_t) sr->nstripes * per_sync + 256
                          + 16 + 64 * 112 + 64);
        ck_assert_uint_lt(size - (pr->entries_off + (uint64_t) pcap * 80),
                          (uint64_t) pr->nstripes * per_plain + 256
                          + 16 + 64 * 112 + 64);
        if (size >= 1024 * 1024) {
            /* the ratio of the two: 84 / 116 bytes per key, give or take */
            ck_assert_uint_le((uint64_t) scap * per_sync,
                              (uint64_t) pcap * per_plain + 64 * per_sync);
            ck_assert_uint_ge((uint64_t) scap * per_sync + 64 * per_sync,
                              (uint64_t) pcap * per_plain);
        }

        /* the flag survives attach */
        ck_assert_ptr_eq(trl_zone_attach(sm, size, err, sizeof(err)), sync);
        ck_assert_uint_eq(trl_zone_flags(sync), TRL_ZONE_SYNC);

        /* use every part of it hard: twice its capacity in keys */
        for (k = 0; k < 2 * (size_t) scap; k++) {
            trl_hash_t    key = unit_key_n(sync, "layout", k);
            trl_result_t  res;

            unit_acquire(sync, &key, &l, T0 + k, NULL);
            sync_read(sync, &key, &l, T0 + k, 2, 0, 1000, 1, T0 + k);
            strict_reply(sync, &key, &l, 0, 3, 500, 1000, T0 + k, &res);
            unit_acquire(sync, &key, &l, T0 + k, NULL);
            trl_zone_sync_unpend(sync, &key, 1);
        }
        for (k = 0; k < guard; k++) {
            ck_assert_msg(sm[size + k] == 0xc3, "size %zu: byte %zu past "
                          "the block written", size, k);
        }
        unit_shm_free(pm, size);
        unit_shm_free(sm, size + guard);
    }
}
END_TEST


/* Unknown flag bits are not reported; TRL_ZONE_SYNC is. */
START_TEST(sync_flags_only_known)
{
    size_t       size = 64 * 1024;
    trl_zone_t  *a = unit_zone_flags(size, 0xfe);
    trl_zone_t  *b = unit_zone_flags(size, 0xff);

    ck_assert_uint_eq(trl_zone_flags(a), 0);
    ck_assert_uint_eq(unit_root(a)->sync_off, 0);
    ck_assert_uint_eq(trl_zone_flags(b), TRL_ZONE_SYNC);
    ck_assert_uint_ne(unit_root(b)->sync_off, 0);
    unit_shm_free(a, size);
    unit_shm_free(b, size);
}
END_TEST


/* The mirror of SyncState reads what the core wrote. */
START_TEST(sync_mirror_checks)
{
    size_t              size = 64 * 1024;
    trl_zone_t         *zone = unit_zone_flags(size, TRL_ZONE_SYNC);
    trl_limit_t         l = sync_limit(10, MIN, 1000);
    trl_hash_t          key = unit_key(zone, "mirror"), other;
    unit_sync_state_t  *ss;
    trl_result_t        res;

    other = unit_key(zone, "absent");
    ck_assert(unit_acquire(zone, &key, &l, T0, NULL));
    ck_assert(unit_acquire(zone, &key, &l, T0, NULL));
    ss = sync_state(zone, &key);
    ck_assert_ptr_nonnull(ss);
    ck_assert_ptr_null(sync_state(zone, &other));
    ck_assert_uint_eq(ss->pending, 2);
    ck_assert_uint_eq(ss->seen_ms, 0);

    sync_read(zone, &key, &l, 123456789, 7, 11, 22, 1, T0 + 5);
    ck_assert_uint_eq(ss->seen_ms, T0 + 5);
    ck_assert_uint_eq(ss->stamp, 123456789);
    ck_assert_uint_eq(ss->remote, 7);
    ck_assert_uint_eq(ss->free_in_ms, 11);
    ck_assert_uint_eq(ss->reset_in_ms, 22);
    ck_assert_uint_eq(ss->pending, 1);
    ck_assert_uint_eq(ss->block_until_ms, 0);

    strict_reply(zone, &key, &l, 0, 10, 3000, 9000, T0 + 10, &res);
    ck_assert_uint_eq(ss->block_until_ms, T0 + 10 + 1000);   /* refresh */
    unit_shm_free(zone, size);
}
END_TEST


/* A plain zone has no sync state: TRL_LIMIT_SYNC decides locally and the
 * sync calls are harmless no-ops. */
START_TEST(plain_zone_ignores_sync)
{
    size_t        size = 64 * 1024;
    trl_zone_t   *zone = unit_zone_flags(size, 0);
    trl_limit_t   l = sync_limit(3, MIN, 1000), force = l;
    trl_limit_t   local = unit_limit(3, MIN);
    trl_hash_t    key = unit_key(zone, "plain"), fresh = unit_key(zone, "f");
    trl_result_t  res;
    uint64_t      t1 = 0;
    int           k;

    force.flags |= TRL_LIMIT_FORCE;

    for (k = 0; k < 3; k++) {
        ck_assert(unit_acquire(zone, &key, &l, T0 + k, &res));
        ck_assert_uint_eq(res.sync_read, 0);
        ck_assert_uint_eq(res.remaining, 2 - k);
        if (k == 0) {
            t1 = res.ticket;
        }
    }
    ck_assert(!unit_acquire(zone, &key, &l, T0 + 10, &res));
    ck_assert_uint_eq(res.sync_read, 0);
    ck_assert_uint_eq(res.retry_ms, MIN - 10);

    /* a read of 0 does not let it admit; a read of N does not stop it */
    sync_read(zone, &key, &l, 1, 0, 0, 0, 3, T0 + 20);
    ck_assert(!unit_acquire(zone, &key, &l, T0 + 21, NULL));
    ck_assert(unit_acquire(zone, &fresh, &l, T0 + 21, NULL));
    sync_read(zone, &fresh, &l, 2, 50, 30000, 60000, 0, T0 + 22);
    ck_assert(unit_acquire(zone, &fresh, &l, T0 + 23, NULL));

    /* unknown keys, unpend, release */
    sync_read(zone, &(trl_hash_t) { 1, 2 }, &l, 3, 9, 9, 9, 9, T0 + 24);
    ck_assert_int_eq(trl_zone_sync_unpend(zone, &key, 5), TRL_OK);
    ck_assert_int_eq(trl_zone_release(zone, &key, &l, t1, T0 + 25), TRL_OK);
    ck_assert(unit_acquire(zone, &key, &l, T0 + 26, NULL));
    ck_assert(!unit_acquire(zone, &key, &l, T0 + 26, NULL));

    /* strict: never cached, admissions recorded locally */
    strict_reply(zone, &fresh, &l, 0, 3, 5000, 9000, T0 + 30, &res);
    ck_assert_uint_eq(res.retry_ms, 5000);
    ck_assert_int_eq(strict_cached(zone, &fresh, &l, T0 + 31, NULL), 0);
    strict_reply(zone, &fresh, &l, 1, 3, 0, 9000, T0 + 32, &res);
    ck_assert(!unit_acquire(zone, &fresh, &local, T0 + 33, NULL));

    /* forced admissions are recorded */
    ck_assert(unit_acquire(zone, &key, &force, T0 + 40, &res));
    ck_assert_uint_eq(res.remaining, 0);
    unit_shm_free(zone, size);
}
END_TEST


/*
 * The estimate of async zones
 */

/* No read yet: the node decides on its own count and every admission is
 * pending; a read is due. */
START_TEST(estimate_no_read_is_local)
{
    size_t        size = 64 * 1024;
    trl_zone_t   *zone = unit_zone_flags(size, TRL_ZONE_SYNC);
    trl_limit_t   l = sync_limit(5, MIN, 1000);
    trl_hash_t    key = unit_key(zone, "local");
    trl_result_t  res;
    uint32_t      k;

    for (k = 0; k < 5; k++) {
        ck_assert(unit_acquire(zone, &key, &l, T0 + 100 * k, &res));
        ck_assert_uint_eq(res.remaining, 4 - k);
        ck_assert_uint_eq(res.sync_read, 1);
        ck_assert_uint_eq(res.reset_ms, T0 + 100 * k + MIN);
        ck_assert_uint_eq(pending_of(zone, &key), k + 1);
    }
    ck_assert(!unit_acquire(zone, &key, &l, T0 + 1000, &res));
    ck_assert_uint_eq(res.sync_read, 1);
    ck_assert_uint_eq(res.retry_ms, MIN - 1000);
    ck_assert_uint_eq(res.reset_ms, T0 + 400 + MIN);
    ck_assert_uint_eq(res.log_first, 1);
    /* rejections are not pending */
    ck_assert_uint_eq(pending_of(zone, &key), 5);

    /* a place comes back W after the first admission */
    ck_assert(unit_acquire(zone, &key, &l, T0 + MIN, &res));
    ck_assert_uint_eq(pending_of(zone, &key), 6);
    unit_shm_free(zone, size);
}
END_TEST


/* N = 10, a fresh read of 8 (none of them pending here): two more. */
START_TEST(estimate_fresh_total)
{
    size_t        size = 64 * 1024;
    trl_zone_t   *zone = unit_zone_flags(size, TRL_ZONE_SYNC);
    trl_limit_t   l = sync_limit(10, MIN, 1000);
    trl_hash_t    key = unit_key(zone, "fresh");
    trl_result_t  res;
    uint64_t      t1 = T0 + 500;

    ck_assert(unit_acquire(zone, &key, &l, T0, &res));
    ck_assert_uint_eq(res.remaining, 9);
    ck_assert_uint_eq(pending_of(zone, &key), 1);

    /* the read includes the one admission published here */
    sync_read(zone, &key, &l, 77777, 8, 0, 40000, 1, t1);
    ck_assert_uint_eq(pending_of(zone, &key), 0);

    ck_assert(unit_acquire(zone, &key, &l, t1 + 10, &res));
    ck_assert_uint_eq(res.remaining, 1);
    ck_assert_uint_eq(res.sync_read, 0);
    ck_assert_uint_eq(res.reset_ms, t1 + 10 + MIN);
    ck_assert_uint_eq(pending_of(zone, &key), 1);

    ck_assert(unit_acquire(zone, &key, &l, t1 + 20, &res));
    ck_assert_uint_eq(res.remaining, 0);
    ck_assert_uint_eq(pending_of(zone, &key), 2);

    ck_assert(!unit_acquire(zone, &key, &l, t1 + 30, &res));
    ck_assert_uint_eq(res.remaining, 0);
    ck_assert_uint_eq(res.log_first, 1);
    ck_assert_uint_ge(res.retry_ms, 1);
    ck_assert_uint_eq(res.sync_read, 0);
    ck_assert_uint_eq(pending_of(zone, &key), 2);

    /* still so for as long as the read is fresh, and a read is due */
    ck_assert(!unit_acquire(zone, &key, &l, t1 + FRESH_READS * 1000 - 1,
                            &res));
    ck_assert_uint_eq(res.sync_read, 1);
    ck_assert_uint_eq(res.log_first, 0);

    /* once stale: the larger of own count (3) and the estimate (10) */
    ck_assert(!unit_acquire(zone, &key, &l, t1 + FRESH_READS * 1000, &res));

    /* the next read: the two published, 9 in all (one left elsewhere) */
    sync_read(zone, &key, &l, 77777 + 5000, 9, 0, 40000, 2, t1 + 5000);
    ck_assert_uint_eq(pending_of(zone, &key), 0);
    ck_assert(unit_acquire(zone, &key, &l, t1 + 5001, &res));
    ck_assert_uint_eq(res.remaining, 0);
    ck_assert_uint_eq(res.suppressed, 2);
    ck_assert(!unit_acquire(zone, &key, &l, t1 + 5002, &res));
    unit_shm_free(zone, size);
}
END_TEST


/* A fresh read of 0 (the key deleted in Redis) admits again although the
 * node's own window holds N admissions. */
START_TEST(estimate_fresh_zero_readmits)
{
    size_t        size = 64 * 1024;
    trl_zone_t   *zone = unit_zone_flags(size, TRL_ZONE_SYNC);
    trl_limit_t   l = sync_limit(3, MIN, 1000);
    trl_hash_t    key = unit_key(zone, "deleted");
    trl_result_t  res;
    uint64_t      t1 = T0 + 2000;
    int           k;

    for (k = 0; k < 3; k++) {
        ck_assert(unit_acquire(zone, &key, &l, T0 + k, NULL));
    }
    ck_assert(!unit_acquire(zone, &key, &l, T0 + 10, NULL));

    /* published, then DEL: the read says 0 */
    sync_read(zone, &key, &l, 5, 0, 0, 0, 3, t1);
    ck_assert_uint_eq(pending_of(zone, &key), 0);

    for (k = 0; k < 3; k++) {
        ck_assert(unit_acquire(zone, &key, &l, t1 + 1 + k, &res));
        ck_assert_uint_eq(res.remaining, 2 - k);
        ck_assert_uint_eq(res.reset_ms, t1 + 1 + k + MIN);
    }
    ck_assert_uint_eq(res.suppressed, 0);
    ck_assert(!unit_acquire(zone, &key, &l, t1 + 10, &res));
    ck_assert_uint_eq(res.log_first, 1);

    /* SPEC 8: the node's old count is gone with the key (a read below
     * what the node published drops its window): once the read is stale
     * the node's own count is what it admitted since */
    sync_read(zone, &key, &l, 6, 0, 0, 0, 3, t1 + 100);
    ck_assert_uint_eq(pending_of(zone, &key), 0);
    ck_assert(unit_acquire(zone, &key, &l, t1 + 101, NULL));
    ck_assert(unit_acquire(zone, &key, &l, t1 + 100 + FRESH_READS * 1000,
                           &res));
    ck_assert_uint_eq(res.remaining, 1);
    ck_assert(unit_acquire(zone, &key, &l, t1 + 101 + FRESH_READS * 1000,
                           NULL));
    ck_assert(!unit_acquire(zone, &key, &l, t1 + 102 + FRESH_READS * 1000,
                            &res));
    ck_assert_uint_eq(res.retry_ms, MIN + 101 - (102 + FRESH_READS * 1000));
    unit_shm_free(zone, size);
}
END_TEST


/* A read younger than 4 R is the truth; a read of 0 after the node
 * published its admissions (a DEL) drops the node's own count, so that
 * not even a stale read is held against the node's old admissions
 * (SPEC 8: a reset is a reset). */
START_TEST(estimate_stale_read_not_below_own)
{
    size_t        size = 64 * 1024;
    trl_zone_t   *zone = unit_zone_flags(size, TRL_ZONE_SYNC);
    trl_limit_t   l = sync_limit(5, MIN, 1000);
    trl_hash_t    key = unit_key(zone, "stale");
    trl_result_t  res;
    uint64_t      t1 = T0 + 10;
    int           k;

    for (k = 0; k < 5; k++) {
        ck_assert(unit_acquire(zone, &key, &l, T0, NULL));
    }
    sync_read(zone, &key, &l, 1000, 0, 0, 0, 5, t1);

    ck_assert(unit_acquire(zone, &key, &l, t1 + 10, &res));
    ck_assert_uint_eq(res.remaining, 4);
    ck_assert_uint_eq(res.sync_read, 0);
    /* the last moment the read is fresh: 0 + 1 pending */
    ck_assert(unit_acquire(zone, &key, &l, t1 + FRESH_READS * 1000 - 1,
                           &res));
    ck_assert_uint_eq(res.remaining, 3);
    ck_assert_uint_eq(res.sync_read, 1);
    /* stale: own 2, the 5 before the reset are gone */
    ck_assert(unit_acquire(zone, &key, &l, t1 + FRESH_READS * 1000, &res));
    ck_assert_uint_eq(res.sync_read, 1);
    ck_assert_uint_eq(res.remaining, 2);

    /* refresh_ms = 0: a read is never fresh, always due */
    {
        trl_limit_t  z = sync_limit(5, MIN, 0);
        trl_hash_t   k2 = unit_key(zone, "stale-0");

        for (k = 0; k < 5; k++) {
            ck_assert(unit_acquire(zone, &k2, &z, T0, &res));
        }
        sync_read(zone, &k2, &z, 1000, 0, 0, 0, 5, t1);
        ck_assert(unit_acquire(zone, &k2, &z, t1, &res));
        ck_assert_uint_eq(res.sync_read, 1);
        ck_assert_uint_eq(res.remaining, 4);
    }
    unit_shm_free(zone, size);
}
END_TEST


/* A stale read still counts while it can hold admissions: a node with
 * few admissions of its own is not free of the cluster's. */
START_TEST(estimate_stale_read_still_counts)
{
    size_t        size = 64 * 1024;
    trl_zone_t   *zone = unit_zone_flags(size, TRL_ZONE_SYNC);
    trl_limit_t   l = sync_limit(5, MIN, 1000);
    trl_hash_t    key = unit_key(zone, "stale-total");
    trl_result_t  res;
    uint64_t      t1 = T0 + 10;

    ck_assert(unit_acquire(zone, &key, &l, T0, NULL));
    sync_read(zone, &key, &l, 1000, 7, 30000, 50000, 1, t1);
    ck_assert(!unit_acquire(zone, &key, &l, t1 + 10 * SEC, &res));
    ck_assert_uint_eq(res.sync_read, 1);
    ck_assert_uint_eq(res.retry_ms, 20 * SEC);
    ck_assert_uint_eq(res.reset_ms, T0 + MIN);
    unit_shm_free(zone, size);
}
END_TEST


/* free_in: then the cluster part is at most N - 1; reset_in: then 0.
 * retry_ms and reset_ms follow the read while it decides. */
START_TEST(estimate_free_in_and_reset_in)
{
    size_t        size = 64 * 1024;
    trl_zone_t   *zone = unit_zone_flags(size, TRL_ZONE_SYNC);
    trl_limit_t   l = sync_limit(5, MIN, 30000);      /* fresh 120 s */
    trl_hash_t    key = unit_key(zone, "free");
    trl_result_t  res;
    uint64_t      t1 = T0 + 100;
    uint32_t      F = 5000, Z = 40000;

    ck_assert(unit_acquire(zone, &key, &l, T0, NULL));
    sync_read(zone, &key, &l, 42, 7, F, Z, 1, t1);

    /* the cluster holds 7 >= 5 until free_in */
    ck_assert(!unit_acquire(zone, &key, &l, t1 + 1, &res));
    ck_assert_uint_eq(res.retry_ms, F - 1);
    ck_assert_uint_eq(res.reset_ms, T0 + MIN);          /* own newest + W */
    ck_assert_uint_eq(res.log_first, 1);
    ck_assert(!unit_acquire(zone, &key, &l, t1 + F - 1, &res));
    ck_assert_uint_eq(res.retry_ms, 1);

    /* then N - 1: one more, then full again */
    ck_assert(unit_acquire(zone, &key, &l, t1 + F, &res));
    ck_assert_uint_eq(res.remaining, 0);
    ck_assert_uint_eq(res.suppressed, 1);
    ck_assert_uint_eq(res.reset_ms, t1 + F + MIN);
    ck_assert(!unit_acquire(zone, &key, &l, t1 + F + 1, &res));
    ck_assert_uint_ge(res.retry_ms, 1);

    /* reset_in: the cluster part is 0, pending (1) still counts */
    ck_assert(unit_acquire(zone, &key, &l, t1 + Z, &res));
    ck_assert_uint_eq(res.remaining, 3);
    ck_assert(unit_acquire(zone, &key, &l, t1 + Z, &res));
    ck_assert_uint_eq(res.remaining, 2);
    unit_shm_free(zone, size);
}
END_TEST


/* reset_ms of an admission follows the read when it ends later than the
 * node's own window. */
START_TEST(estimate_reset_from_read)
{
    size_t        size = 64 * 1024;
    trl_zone_t   *zone = unit_zone_flags(size, TRL_ZONE_SYNC);
    trl_limit_t   l = sync_limit(10, 10 * SEC, 5000);
    trl_hash_t    key = unit_key(zone, "reset");
    trl_result_t  res;
    uint64_t      t1 = T0 + 5000;

    ck_assert(unit_acquire(zone, &key, &l, T0, &res));
    ck_assert_uint_eq(res.reset_ms, T0 + 10 * SEC);
    /* another node admitted just before the read: back to 0 in W + 0.5 s */
    sync_read(zone, &key, &l, 1, 4, 0, 10500, 1, t1);
    ck_assert(unit_acquire(zone, &key, &l, t1 + 100, &res));
    ck_assert_uint_eq(res.remaining, 5);
    ck_assert_uint_eq(res.reset_ms, t1 + 10500);
    /* later admissions of its own end later */
    ck_assert(unit_acquire(zone, &key, &l, t1 + 2000, &res));
    ck_assert_uint_eq(res.remaining, 4);
    ck_assert_uint_eq(res.reset_ms, t1 + 2000 + 10 * SEC);
    unit_shm_free(zone, size);
}
END_TEST


/* sync_read: 1 with no read and once the read is R old. */
START_TEST(estimate_read_due)
{
    size_t        size = 64 * 1024;
    trl_zone_t   *zone = unit_zone_flags(size, TRL_ZONE_SYNC);
    trl_limit_t   l = sync_limit(100, MIN, 1000), plain = unit_limit(100, MIN);
    trl_hash_t    key = unit_key(zone, "due");
    trl_result_t  res;
    uint64_t      t1 = T0 + 50;

    ck_assert(unit_acquire(zone, &key, &l, T0, &res));
    ck_assert_uint_eq(res.sync_read, 1);
    ck_assert(unit_acquire(zone, &key, &l, T0 + 10, &res));
    ck_assert_uint_eq(res.sync_read, 1);

    sync_read(zone, &key, &l, 9, 2, 0, 30000, 2, t1);
    ck_assert(unit_acquire(zone, &key, &l, t1, &res));
    ck_assert_uint_eq(res.sync_read, 0);
    ck_assert(unit_acquire(zone, &key, &l, t1 + 999, &res));
    ck_assert_uint_eq(res.sync_read, 0);
    ck_assert(unit_acquire(zone, &key, &l, t1 + 1000, &res));
    ck_assert_uint_eq(res.sync_read, 1);

    /* without TRL_LIMIT_SYNC nothing is due */
    ck_assert(unit_acquire(zone, &key, &plain, t1 + 5000, &res));
    ck_assert_uint_eq(res.sync_read, 0);

    /* a rejection says so too */
    {
        trl_limit_t  one = sync_limit(1, MIN, 1000);
        trl_hash_t   k1 = unit_key(zone, "due-1");

        ck_assert(unit_acquire(zone, &k1, &one, T0, &res));
        ck_assert(!unit_acquire(zone, &k1, &one, T0 + 1, &res));
        ck_assert_uint_eq(res.sync_read, 1);
        sync_read(zone, &k1, &one, 9, 1, 30000, 60000, 1, T0 + 2);
        ck_assert(!unit_acquire(zone, &k1, &one, T0 + 3, &res));
        ck_assert_uint_eq(res.sync_read, 0);
        ck_assert(!unit_acquire(zone, &k1, &one, T0 + 1002, &res));
        ck_assert_uint_eq(res.sync_read, 1);
    }
    unit_shm_free(zone, size);
}
END_TEST


/* A read with an older stamp (a late reply to another worker) does not
 * replace a newer total nor its age, but settles what it published. */
START_TEST(estimate_out_of_order_reads)
{
    size_t        size = 64 * 1024;
    trl_zone_t   *zone = unit_zone_flags(size, TRL_ZONE_SYNC);
    trl_limit_t   l = sync_limit(10, MIN, 1000);
    trl_hash_t    key = unit_key(zone, "order");
    trl_result_t  res;
    uint64_t      t1 = T0 + 100;
    int           k;

    for (k = 0; k < 4; k++) {
        ck_assert(unit_acquire(zone, &key, &l, T0 + k, NULL));
    }
    ck_assert_uint_eq(pending_of(zone, &key), 4);

    /* the newer read first: 6 in all, 1 of them published here */
    sync_read(zone, &key, &l, 50000, 6, 0, 30000, 1, t1);
    ck_assert_uint_eq(pending_of(zone, &key), 3);
    /* the older one: 2 published, its total (9) is out of date */
    sync_read(zone, &key, &l, 49000, 9, 9000, 30000, 2, t1 + 900);
    ck_assert_uint_eq(pending_of(zone, &key), 1);
    ck_assert_uint_eq(sync_state(zone, &key)->remote, 6);
    ck_assert_uint_eq(sync_state(zone, &key)->seen_ms, t1);

    /* 6 + 1 pending: 3 more */
    ck_assert(unit_acquire(zone, &key, &l, t1 + 950, &res));
    ck_assert_uint_eq(res.remaining, 2);
    ck_assert_uint_eq(res.sync_read, 0);
    /* the age is the newer read's: due at t1 + R */
    ck_assert(unit_acquire(zone, &key, &l, t1 + 1000, &res));
    ck_assert_uint_eq(res.remaining, 1);
    ck_assert_uint_eq(res.sync_read, 1);
    ck_assert(unit_acquire(zone, &key, &l, t1 + 1001, &res));
    ck_assert_uint_eq(res.remaining, 0);
    ck_assert(!unit_acquire(zone, &key, &l, t1 + 1002, &res));

    /* the same stamp again is as new */
    sync_read(zone, &key, &l, 50000, 2, 0, 30000, 4, t1 + 1100);
    ck_assert_uint_eq(pending_of(zone, &key), 0);
    ck_assert_uint_eq(sync_state(zone, &key)->remote, 2);
    ck_assert(unit_acquire(zone, &key, &l, t1 + 1101, &res));
    ck_assert_uint_eq(res.remaining, 7);
    unit_shm_free(zone, size);
}
END_TEST


/* Stamps compare modulo 2^32 ms. */
START_TEST(estimate_stamp_wraps)
{
    size_t              size = 64 * 1024;
    trl_zone_t         *zone = unit_zone_flags(size, TRL_ZONE_SYNC);
    trl_limit_t         l = sync_limit(10, MIN, 1000);
    trl_hash_t          key = unit_key(zone, "wrap");
    unit_sync_state_t  *ss;
    uint64_t            big = 0xfffffff0ULL;
    trl_result_t        res;
    int                 k;

    for (k = 0; k < 6; k++) {
        ck_assert(unit_acquire(zone, &key, &l, T0, NULL));
    }
    ss = sync_state(zone, &key);

    sync_read(zone, &key, &l, big, 5, 0, 30000, 1, T0 + 10);
    ck_assert_uint_eq(ss->remote, 5);
    /* 0x20 ms later, past 2^32: newer */
    sync_read(zone, &key, &l, big + 0x20, 3, 0, 30000, 1, T0 + 20);
    ck_assert_uint_eq(ss->remote, 3);
    ck_assert_uint_eq(ss->seen_ms, T0 + 20);
    /* between the two: older, settles only */
    sync_read(zone, &key, &l, big + 0x08, 8, 0, 30000, 1, T0 + 30);
    ck_assert_uint_eq(ss->remote, 3);
    ck_assert_uint_eq(ss->seen_ms, T0 + 20);
    ck_assert_uint_eq(ss->pending, 3);
    /* the high bits of stamp_ms do not matter, the low ones do */
    sync_read(zone, &key, &l, (7ULL << 32) | 0x18, 9, 0, 30000, 0, T0 + 40);
    ck_assert_uint_eq(ss->remote, 9);
    sync_read(zone, &key, &l, (9ULL << 32) | 0x17, 1, 0, 30000, 0, T0 + 50);
    ck_assert_uint_eq(ss->remote, 9);
    /* half the circle ahead is still newer; a smaller low part older */
    sync_read(zone, &key, &l, 0x18 + 0x7fffffffULL, 4, 0, 30000, 0, T0 + 60);
    ck_assert_uint_eq(ss->remote, 4);

    /* the decision is on 4 + min(3, 6) = 7 */
    ck_assert(unit_acquire(zone, &key, &l, T0 + 70, &res));
    ck_assert_uint_eq(res.remaining, 2);
    unit_shm_free(zone, size);
}
END_TEST


/* Settling never takes pending below 0: more published than pending, or
 * reads of keys never admitted here. */
START_TEST(estimate_pending_floor)
{
    size_t        size = 64 * 1024;
    trl_zone_t   *zone = unit_zone_flags(size, TRL_ZONE_SYNC);
    trl_limit_t   l = sync_limit(4, MIN, 1000);
    trl_hash_t    key = unit_key(zone, "floor");
    trl_result_t  res;

    ck_assert(unit_acquire(zone, &key, &l, T0, NULL));
    ck_assert(unit_acquire(zone, &key, &l, T0, NULL));
    sync_read(zone, &key, &l, 10, 3, 0, 30000, 7, T0 + 10);
    ck_assert_uint_eq(pending_of(zone, &key), 0);

    /* 3 + min(0, 2): one more; a wrapped pending would count the own 2 */
    ck_assert(unit_acquire(zone, &key, &l, T0 + 20, &res));
    ck_assert_uint_eq(res.remaining, 0);
    ck_assert(!unit_acquire(zone, &key, &l, T0 + 21, NULL));

    /* a read of a key the zone does not hold: nothing made up */
    sync_read(zone, &(trl_hash_t) { 5, 6 }, &l, 11, 4, 0, 30000, 9,
              T0 + 30);
    ck_assert_ptr_null(sync_state(zone, &(trl_hash_t) { 5, 6 }));
    unit_shm_free(zone, size);
}
END_TEST


/* release (with TRL_LIMIT_SYNC) and unpend take admissions out of pending,
 * never below 0; unknown keys are fine. */
START_TEST(estimate_release_and_unpend)
{
    size_t        size = 64 * 1024;
    trl_zone_t   *zone = unit_zone_flags(size, TRL_ZONE_SYNC);
    trl_limit_t   l = sync_limit(4, MIN, 1000);
    trl_hash_t    key = unit_key(zone, "unpend"), nobody = { 99, 98 };
    trl_result_t  res;
    uint64_t      tk[3];
    int           k;

    for (k = 0; k < 3; k++) {
        ck_assert(unit_acquire(zone, &key, &l, T0 + 100 * k, &res));
        tk[k] = res.ticket;
    }
    ck_assert_uint_eq(pending_of(zone, &key), 3);

    ck_assert_int_eq(trl_zone_release(zone, &key, &l, tk[2], T0 + 300),
                     TRL_OK);
    ck_assert_uint_eq(pending_of(zone, &key), 2);
    ck_assert_int_eq(trl_zone_sync_unpend(zone, &key, 1), TRL_OK);
    ck_assert_uint_eq(pending_of(zone, &key), 1);
    ck_assert_int_eq(trl_zone_sync_unpend(zone, &key, 0), TRL_OK);
    ck_assert_uint_eq(pending_of(zone, &key), 1);
    ck_assert_int_eq(trl_zone_sync_unpend(zone, &key, 5), TRL_OK);
    ck_assert_uint_eq(pending_of(zone, &key), 0);
    ck_assert_int_eq(trl_zone_sync_unpend(zone, &key, UINT32_MAX), TRL_OK);
    ck_assert_uint_eq(pending_of(zone, &key), 0);
    /* a release of an admission already given back, with nothing pending */
    ck_assert_int_eq(trl_zone_release(zone, &key, &l, tk[2], T0 + 310),
                     TRL_OK);
    ck_assert_int_eq(trl_zone_release(zone, &key, &l, tk[1], T0 + 320),
                     TRL_OK);
    ck_assert_uint_eq(pending_of(zone, &key), 0);

    /* own count now 1; a fresh read of 3: one more, not zero more */
    sync_read(zone, &key, &l, 1, 3, 0, 30000, 0, T0 + 400);
    ck_assert(unit_acquire(zone, &key, &l, T0 + 401, &res));
    ck_assert_uint_eq(res.remaining, 0);
    ck_assert(!unit_acquire(zone, &key, &l, T0 + 402, NULL));

    /* unknown keys */
    ck_assert_int_eq(trl_zone_sync_unpend(zone, &nobody, 3), TRL_OK);
    ck_assert_int_eq(trl_zone_release(zone, &nobody, &l, T0, T0 + 500),
                     TRL_OK);
    ck_assert_ptr_null(sync_state(zone, &nobody));
    unit_shm_free(zone, size);
}
END_TEST


/* Forced admissions are counted and pending; dry-run rejections are not
 * admissions. */
START_TEST(estimate_force_and_dry_run)
{
    size_t            size = 64 * 1024;
    trl_zone_t       *zone = unit_zone_flags(size, TRL_ZONE_SYNC);
    trl_limit_t       l = sync_limit(3, MIN, 1000), force = l, dry = l;
    trl_hash_t        key = unit_key(zone, "force");
    trl_result_t      res;
    trl_zone_stats_t  st;

    force.flags |= TRL_LIMIT_FORCE;
    dry.flags |= TRL_LIMIT_DRY_RUN;

    ck_assert(unit_acquire(zone, &key, &l, T0, NULL));
    sync_read(zone, &key, &l, 1, 5, 20000, 40000, 1, T0 + 10);
    ck_assert(!unit_acquire(zone, &key, &l, T0 + 11, NULL));
    ck_assert(!unit_acquire(zone, &key, &dry, T0 + 12, &res));
    ck_assert_uint_eq(res.retry_ms, 20000 - 2);
    ck_assert_uint_eq(pending_of(zone, &key), 0);

    ck_assert(unit_acquire(zone, &key, &force, T0 + 13, &res));
    ck_assert_uint_eq(res.remaining, 0);
    ck_assert_uint_ne(res.ticket, 0);
    ck_assert_uint_eq(pending_of(zone, &key), 1);

    trl_zone_stats(zone, &st);
    ck_assert_uint_eq(st.passed, 2);
    ck_assert_uint_eq(st.rejected, 1);
    ck_assert_uint_eq(st.rejected_dry_run, 1);
    unit_shm_free(zone, size);
}
END_TEST


/* The pending count saturates rather than wrapping. */
START_TEST(estimate_pending_saturates)
{
    size_t        size = 64 * 1024;
    trl_zone_t   *zone = unit_zone_flags(size, TRL_ZONE_SYNC);
    trl_limit_t   l = sync_limit(TRL_RATE_MAX_LIMIT, HOUR, 1000);
    trl_hash_t    key = unit_key(zone, "many");
    uint32_t      k;

    l.flags |= TRL_LIMIT_FORCE;
    for (k = 0; k < 65540; k++) {
        unit_check(unit_acquire(zone, &key, &l, T0 + k / 16, NULL));
    }
    ck_assert_uint_eq(pending_of(zone, &key), 0xffff);
    unit_shm_free(zone, size);
}
END_TEST


/*
 * Strict zones: the block cache
 */

START_TEST(strict_cached_unknown_or_open)
{
    size_t        size = 64 * 1024;
    trl_zone_t   *zone = unit_zone_flags(size, TRL_ZONE_SYNC);
    trl_limit_t   l = unit_limit(3, MIN);
    trl_hash_t    key = unit_key(zone, "open");
    trl_result_t  res;
    uint64_t      st[TRL_SYNC_STATS];

    ck_assert_int_eq(strict_cached(zone, &key, &l, T0, &res), 0);
    ck_assert_uint_eq(res.limit, 3);
    ck_assert_uint_eq(res.now_ms, T0);
    /* asking does not make the key known */
    ck_assert_ptr_null(sync_state(zone, &key));

    ck_assert(unit_acquire(zone, &key, &l, T0, NULL));
    ck_assert_int_eq(strict_cached(zone, &key, &l, T0 + 1, &res), 0);
    /* at its local limit, but never rejected by Redis */
    ck_assert(unit_acquire(zone, &key, &l, T0, NULL));
    ck_assert(unit_acquire(zone, &key, &l, T0, NULL));
    ck_assert_int_eq(strict_cached(zone, &key, &l, T0 + 2, &res), 0);
    /* an admitted reply does not block */
    strict_reply(zone, &key, &l, 1, 2, 0, 50000, T0 + 3, &res);
    ck_assert_int_eq(strict_cached(zone, &key, &l, T0 + 4, &res), 0);

    trl_zone_sync_stats(zone, st);
    ck_assert_uint_eq(st[TRL_SYNC_CACHED], 0);
    unit_shm_free(zone, size);
}
END_TEST


/* A rejection is cached until now + free_in; each cached answer says how
 * long is left; only the first rejection of the episode is to be logged. */
START_TEST(strict_block_until_free)
{
    size_t            size = 64 * 1024;
    trl_zone_t       *zone = unit_zone_flags(size, TRL_ZONE_SYNC);
    trl_limit_t       l = unit_limit(3, MIN);
    trl_hash_t        key = unit_key(zone, "blocked");
    trl_result_t      res;
    trl_zone_stats_t  zs;
    uint64_t          st[TRL_SYNC_STATS];
    uint64_t          t1 = T0 + 100, F = 5000, Z = 20000;

    strict_reply(zone, &key, &l, 0, 3, (uint32_t) F, (uint32_t) Z, t1, &res);
    ck_assert_uint_eq(res.retry_ms, F);
    ck_assert_uint_eq(res.remaining, 0);
    ck_assert_uint_eq(res.log_first, 1);
    ck_assert_uint_eq(res.reset_ms, t1 + Z);
    ck_assert_uint_eq(res.limit, 3);

    ck_assert_int_eq(strict_cached(zone, &key, &l, t1 + 1, &res), 1);
    ck_assert_uint_eq(res.retry_ms, F - 1);
    ck_assert_uint_eq(res.remaining, 0);
    ck_assert_uint_eq(res.log_first, 0);
    ck_assert_uint_eq(res.reset_ms, t1 + Z);
    ck_assert_uint_eq(res.now_ms, t1 + 1);
    ck_assert_int_eq(strict_cached(zone, &key, &l, t1 + F - 1, &res), 1);
    ck_assert_uint_eq(res.retry_ms, 1);
    ck_assert_uint_eq(res.log_first, 0);
    ck_assert_int_eq(strict_cached(zone, &key, &l, t1 + F, &res), 0);
    ck_assert_int_eq(strict_cached(zone, &key, &l, t1 + 10 * F, &res), 0);

    trl_zone_sync_stats(zone, st);
    ck_assert_uint_eq(st[TRL_SYNC_CACHED], 2);
    trl_zone_stats(zone, &zs);
    ck_assert_uint_eq(zs.rejected, 3);
    ck_assert_uint_eq(zs.passed, 0);

    /* a new episode, first seen in the cache: logged there */
    strict_reply(zone, &key, &l, 1, 1, 0, (uint32_t) Z, t1 + 6000, &res);
    ck_assert_uint_eq(res.suppressed, 2);
    strict_reply(zone, &key, &l, 0, 3, 1000, (uint32_t) Z, t1 + 7000, &res);
    ck_assert_uint_eq(res.log_first, 1);
    ck_assert_int_eq(strict_cached(zone, &key, &l, t1 + 7001, &res), 1);
    ck_assert_uint_eq(res.log_first, 0);
    ck_assert_uint_eq(res.retry_ms, 999);

    /* dry run: counted as such */
    {
        trl_limit_t  dry = l;

        dry.flags = TRL_LIMIT_DRY_RUN;
        ck_assert_int_eq(strict_cached(zone, &key, &dry, t1 + 7002, &res), 1);
        trl_zone_stats(zone, &zs);
        ck_assert_uint_eq(zs.rejected_dry_run, 1);
    }

    /* free_in = 0: nothing to cache, retry is at least 1 ms */
    {
        trl_hash_t  k0 = unit_key(zone, "free-now");

        strict_reply(zone, &k0, &l, 0, 3, 0, (uint32_t) Z, t1, &res);
        ck_assert_uint_eq(res.retry_ms, 1);
        ck_assert_int_eq(strict_cached(zone, &k0, &l, t1, &res), 0);
    }
    trl_zone_sync_stats(zone, st);
    ck_assert_uint_eq(st[TRL_SYNC_CACHED], 4);
    unit_shm_free(zone, size);
}
END_TEST


/* refresh_ms = R > 0 bounds the cache: min(free_in, R). */
START_TEST(strict_block_bounded_by_refresh)
{
    size_t        size = 64 * 1024;
    trl_zone_t   *zone = unit_zone_flags(size, TRL_ZONE_SYNC);
    trl_limit_t   l = unit_limit(3, MIN);
    trl_hash_t    a = unit_key(zone, "a"), b = unit_key(zone, "b");
    trl_result_t  res;
    uint64_t      t1 = T0 + 100;

    l.refresh_ms = 1000;
    strict_reply(zone, &a, &l, 0, 3, 5000, 20000, t1, &res);
    ck_assert_uint_eq(res.retry_ms, 5000);          /* what Redis said */
    ck_assert_int_eq(strict_cached(zone, &a, &l, t1 + 999, &res), 1);
    ck_assert_uint_eq(res.retry_ms, 4001);          /* still Redis's wait,
                                                       not the cache's */
    ck_assert_int_eq(strict_cached(zone, &a, &l, t1 + 1000, &res), 0);

    l.refresh_ms = 8000;
    strict_reply(zone, &b, &l, 0, 3, 5000, 20000, t1, &res);
    ck_assert_int_eq(strict_cached(zone, &b, &l, t1 + 4999, &res), 1);
    ck_assert_int_eq(strict_cached(zone, &b, &l, t1 + 5000, &res), 0);

    /* the bound is taken when the reply arrives */
    l.refresh_ms = 1000;
    strict_reply(zone, &b, &l, 0, 3, 5000, 20000, t1 + 6000, &res);
    l.refresh_ms = 0;
    ck_assert_int_eq(strict_cached(zone, &b, &l, t1 + 6999, &res), 1);
    ck_assert_int_eq(strict_cached(zone, &b, &l, t1 + 7000, &res), 0);
    unit_shm_free(zone, size);
}
END_TEST


/* An admission Redis made is recorded in the local window too and lifts
 * the block; remaining is N - total. */
START_TEST(strict_admitted_recorded)
{
    size_t        size = 64 * 1024;
    trl_zone_t   *zone = unit_zone_flags(size, TRL_ZONE_SYNC);
    trl_limit_t   l = unit_limit(3, MIN);
    trl_hash_t    key = unit_key(zone, "admitted");
    trl_result_t  res;
    uint64_t      t1 = T0 + 100;

    strict_reply(zone, &key, &l, 0, 3, 5000, 20000, t1, &res);
    ck_assert_int_eq(strict_cached(zone, &key, &l, t1 + 1, NULL), 1);

    strict_reply(zone, &key, &l, 1, 2, 0, 30000, t1 + 2, &res);
    ck_assert_uint_eq(res.remaining, 1);
    ck_assert_uint_eq(res.reset_ms, t1 + 2 + 30000);
    ck_assert_uint_eq(res.ticket, t1 + 2);
    ck_assert_uint_eq(res.retry_ms, 0);
    ck_assert_uint_eq(res.suppressed, 1);
    ck_assert_int_eq(strict_cached(zone, &key, &l, t1 + 3, NULL), 0);

    /* the local window holds it: peek and a local acquire see it */
    ck_assert_int_eq(unit_peek(zone, &key, &l, t1 + 4, &res), TRL_OK);
    ck_assert_uint_eq(res.remaining, 2);
    strict_reply(zone, &key, &l, 1, 3, 0, 30000, t1 + 5, &res);
    ck_assert_uint_eq(res.remaining, 0);
    ck_assert(unit_acquire(zone, &key, &l, t1 + 6, &res));
    ck_assert_uint_eq(res.remaining, 0);
    ck_assert(!unit_acquire(zone, &key, &l, t1 + 7, &res));
    ck_assert_uint_eq(res.retry_ms, t1 + 2 + MIN - (t1 + 7));

    /* totals above N: remaining 0, not a wrap */
    strict_reply(zone, &key, &l, 1, 7, 0, 30000, t1 + 8, &res);
    ck_assert_uint_eq(res.remaining, 0);

    /* the ticket of a Redis admission gives its local place back */
    {
        trl_hash_t  k2 = unit_key(zone, "admitted-2");
        uint64_t    tk;

        strict_reply(zone, &k2, &l, 1, 1, 0, 30000, t1, &res);
        tk = res.ticket;
        strict_reply(zone, &k2, &l, 1, 2, 0, 30000, t1, &res);
        strict_reply(zone, &k2, &l, 1, 3, 0, 30000, t1, &res);
        ck_assert_int_eq(unit_peek(zone, &k2, &l, t1, &res), TRL_OK);
        ck_assert_uint_eq(res.rejected, 1);
        ck_assert_int_eq(trl_zone_release(zone, &k2, &l, tk, t1 + 1),
                         TRL_OK);
        ck_assert(unit_acquire(zone, &k2, &l, t1 + 2, NULL));
    }
    unit_shm_free(zone, size);
}
END_TEST


/*
 * Statistics
 */

START_TEST(sync_stats_round_trip)
{
    size_t        size = 64 * 1024;
    trl_zone_t   *zone = unit_zone_flags(size, TRL_ZONE_SYNC);
    trl_zone_t   *plain = unit_zone_flags(size, 0);
    unit_root_t  *r = unit_root(zone);
    uint64_t      st[TRL_SYNC_STATS], reserved[8];
    int           i, bad[] = { -1, -100, TRL_SYNC_STATS, TRL_SYNC_STATS + 1,
                               1000, INT_MAX, INT_MIN };

    trl_zone_sync_stats(zone, st);
    for (i = 0; i < TRL_SYNC_STATS; i++) {
        ck_assert_uint_eq(st[i], 0);
    }
    trl_zone_sync_stats(plain, st);
    for (i = 0; i < TRL_SYNC_STATS; i++) {
        ck_assert_uint_eq(st[i], 0);
    }

    for (i = 0; i < TRL_SYNC_STATS; i++) {
        trl_zone_sync_add(zone, i, (uint64_t) i + 1);
        trl_zone_sync_add(zone, i, 10);
    }
    trl_zone_sync_put(zone, TRL_SYNC_LAST_OK, T0);
    trl_zone_sync_put(zone, TRL_SYNC_LINK_UP, 1);
    trl_zone_sync_put(zone, TRL_SYNC_LAG, UINT64_MAX);

    memcpy(reserved, r->reserved, sizeof(reserved));
    for (i = 0; i < (int) (sizeof(bad) / sizeof(bad[0])); i++) {
        trl_zone_sync_add(zone, bad[i], 12345);
        trl_zone_sync_put(zone, bad[i], 54321);
    }
    ck_assert_int_eq(memcmp(reserved, r->reserved, sizeof(reserved)), 0);

    trl_zone_sync_stats(zone, st);
    for (i = 0; i < TRL_SYNC_STATS; i++) {
        uint64_t  want = (uint64_t) i + 11;

        if (i == TRL_SYNC_LAST_OK) {
            want = T0;
        } else if (i == TRL_SYNC_LINK_UP) {
            want = 1;
        } else if (i == TRL_SYNC_LAG) {
            want = UINT64_MAX;
        }
        ck_assert_msg(st[i] == want, "stat %d: %llu, want %llu", i,
                      (unsigned long long) st[i], (unsigned long long) want);
    }

    /* they live in the zone: another attach sees them */
    {
        char         err[256];
        trl_zone_t  *again = trl_zone_attach(zone, size, err, sizeof(err));
        uint64_t     st2[TRL_SYNC_STATS];

        ck_assert_ptr_eq(again, zone);
        trl_zone_sync_stats(again, st2);
        ck_assert_int_eq(memcmp(st, st2, sizeof(st)), 0);
    }

    /* the plain zone's stats were not touched; they work there too */
    trl_zone_sync_stats(plain, st);
    for (i = 0; i < TRL_SYNC_STATS; i++) {
        ck_assert_uint_eq(st[i], 0);
    }
    trl_zone_sync_add(plain, TRL_SYNC_FALLBACK, 3);
    trl_zone_sync_stats(plain, st);
    ck_assert_uint_eq(st[TRL_SYNC_FALLBACK], 3);
    unit_shm_free(zone, size);
    unit_shm_free(plain, size);
}
END_TEST


/*
 * Reused entries
 */

/* Fill one stripe with keys that carry every kind of sync state, then
 * bring new keys into it: each starts with clean state. */
START_TEST(evicted_entry_starts_clean)
{
    size_t        size = 64 * 1024;
    trl_zone_t   *zone = unit_zone_flags(size, TRL_ZONE_SYNC);
    unit_root_t  *r = unit_root(zone);
    trl_limit_t   l = sync_limit(4, MIN, 1000);
    trl_limit_t   strict = unit_limit(4, MIN);
    trl_result_t  res;
    uint32_t      per = r->per_stripe, k, evicted = 0;
    uint64_t      t = T0;

    strict.refresh_ms = 0;

    /* old keys: 3 pending, a fresh read of 4 with long free_in/reset_in,
     * a strict block for a minute */
    for (k = 0; k < per; k++) {
        trl_hash_t  key = unit_key_in_stripe(zone, 0, k);

        unit_acquire(zone, &key, &l, t, NULL);
        unit_acquire(zone, &key, &l, t, NULL);
        unit_acquire(zone, &key, &l, t, NULL);
        sync_read(zone, &key, &l, 100, 4, 50000, 59000, 0, t);
        strict_reply(zone, &key, &strict, 0, 4, 60000, 60000, t, NULL);
        ck_assert_uint_eq(pending_of(zone, &key), 3);
    }

    /* as many new keys: each takes an entry of an old key */
    for (k = 0; k < per; k++) {
        trl_hash_t          key = unit_key_in_stripe(zone, 0, 1000 + k);
        unit_sync_state_t  *ss;
        int                 j;

        ck_assert_int_eq(strict_cached(zone, &key, &strict, t + 1, NULL), 0);
        ck_assert(unit_acquire(zone, &key, &l, t + 1, &res));
        evicted += res.evicted;
        ck_assert_uint_eq(res.sync_read, 1);
        ck_assert_uint_eq(res.remaining, 3);
        ss = sync_state(zone, &key);
        ck_assert_ptr_nonnull(ss);
        ck_assert_uint_eq(ss->pending, 1);
        ck_assert_uint_eq(ss->seen_ms, 0);
        ck_assert_uint_eq(ss->remote, 0);
        ck_assert_uint_eq(ss->block_until_ms, 0);
        ck_assert_uint_eq(ss->free_in_ms, 0);
        ck_assert_uint_eq(ss->reset_in_ms, 0);
        ck_assert_uint_eq(ss->stamp, 0);
        ck_assert_int_eq(strict_cached(zone, &key, &strict, t + 2, NULL), 0);

        /* a read with an old stamp is taken: no stamp to be older than */
        sync_read(zone, &key, &l, 1, 1, 0, 30000, 1, t + 3);
        ck_assert_uint_eq(ss->remote, 1);
        /* and a clean pending: 1 + min(0, 1) = 1, three more */
        for (j = 0; j < 3; j++) {
            ck_assert(unit_acquire(zone, &key, &l, t + 4, NULL));
        }
        ck_assert(!unit_acquire(zone, &key, &l, t + 4, NULL));
    }
    ck_assert_uint_eq(evicted, per);
    unit_shm_free(zone, size);
}
END_TEST


/* Strict replies for keys the zone does not hold take an entry too. */
START_TEST(strict_reply_takes_entry)
{
    size_t        size = trl_zone_min_size();
    trl_zone_t   *zone = unit_zone_flags(size, TRL_ZONE_SYNC);
    unit_root_t  *r = unit_root(zone);
    trl_limit_t   l = unit_limit(2, MIN);
    trl_result_t  res;
    uint32_t      k, evicted = 0;

    for (k = 0; k < 2 * r->per_stripe; k++) {
        trl_hash_t  key = unit_key_in_stripe(zone, 0, k);

        strict_reply(zone, &key, &l, 1, 1, 0, 30000, T0, &res);
        evicted += res.evicted;
        ck_assert_ptr_nonnull(sync_state(zone, &key));
        ck_assert_uint_eq(pending_of(zone, &key), 0);
    }
    ck_assert_uint_eq(evicted, r->per_stripe);
    unit_shm_free(zone, size);
}
END_TEST


/*
 * Redis names, cells and scripts
 */

static size_t
redis_name(const char *prefix, const char *zone, const void *key,
    size_t key_len, char *buf, size_t len)
{
    size_t  n;

    n = trl_redis_key(prefix, strlen(prefix), zone, strlen(zone), key,
                      key_len, buf, len);
    ck_assert_uint_lt(n, len);
    buf[n] = '\0';
    return n;
}


/* The key as the name holds it: verbatim, or "x:" and lowercase hex. */
static size_t
name_key(const char *name, size_t len, size_t at, unsigned char *out)
{
    static const char  hex[] = "0123456789abcdef";
    size_t             i, n = 0;

    unit_check(len >= at + 1 && name[len - 1] == '}');
    len--;
    if (len - at >= 2 && name[at] == 'x' && name[at + 1] == ':') {
        unit_check((len - at) % 2 == 0);
        for (i = at + 2; i < len; i += 2) {
            const char  *hi = strchr(hex, name[i]), *lo = strchr(hex,
                                                                 name[i + 1]);

            unit_check(hi != NULL && lo != NULL && *hi && *lo);
            out[n++] = (unsigned char) (((hi - hex) << 4) | (lo - hex));
        }
        return n;
    }
    memcpy(out, name + at, len - at);
    return len - at;
}


START_TEST(redis_key_verbatim)
{
    char    buf[256], key[128];
    size_t  n, k;
    int     c;

    n = redis_name("trl:", "api", "10.0.0.1", 8, buf, sizeof(buf));
    ck_assert_str_eq(buf, "trl:{api:10.0.0.1}");
    ck_assert_uint_eq(n, strlen(buf));

    n = redis_name("", "z", "user:42", 7, buf, sizeof(buf));
    ck_assert_str_eq(buf, "{z:user:42}");
    n = redis_name("p", "z", "x", 1, buf, sizeof(buf));
    ck_assert_str_eq(buf, "p{z:x}");
    n = redis_name("p", "z", "X:1", 3, buf, sizeof(buf));
    ck_assert_str_eq(buf, "p{z:X:1}");
    n = redis_name("p", "z", "ax:1", 4, buf, sizeof(buf));
    ck_assert_str_eq(buf, "p{z:ax:1}");
    n = redis_name("p", "z", "xx:", 3, buf, sizeof(buf));
    ck_assert_str_eq(buf, "p{z:xx:}");

    /* every printable byte but the braces */
    k = 0;
    for (c = 0x21; c <= 0x7e; c++) {
        if (c != '{' && c != '}') {
            key[k++] = (char) c;
        }
    }
    ck_assert_uint_eq(k, 92);
    for (c = 0; c < 92; c += 46) {          /* keys of up to 64 bytes */
        n = redis_name("P:", "zone", key + c, 46, buf, sizeof(buf));
        ck_assert_uint_eq(n, 2 + 1 + 4 + 1 + 46 + 1);
        ck_assert_int_eq(memcmp(buf, "P:{zone:", 8), 0);
        ck_assert_int_eq(memcmp(buf + 8, key + c, 46), 0);
        ck_assert_str_eq(buf + 8 + 46, "}");
    }

    /* the empty key */
    n = redis_name("trl:", "api", "", 0, buf, sizeof(buf));
    ck_assert_str_eq(buf, "trl:{api:}");
    n = trl_redis_key("", 0, "", 0, "", 0, buf, sizeof(buf));
    ck_assert_uint_eq(n, 3);
    ck_assert_int_eq(memcmp(buf, "{:}", 3), 0);
}
END_TEST


START_TEST(redis_key_hex)
{
    static const struct {
        const char  *key;
        size_t       len;
        const char  *name;
    } cases[] = {
        { "a{b", 3, "p{z:x:617b62}" },
        { "a}b", 3, "p{z:x:617d62}" },
        { "{", 1, "p{z:x:7b}" },
        { "a b", 3, "p{z:x:612062}" },
        { " ", 1, "p{z:x:20}" },
        { "\x7f", 1, "p{z:x:7f}" },
        { "\x80\xff", 2, "p{z:x:80ff}" },
        { "caf\xc3\xa9", 5, "p{z:x:636166c3a9}" },
        { "\x00", 1, "p{z:x:00}" },
        { "a\x00" "b", 3, "p{z:x:610062}" },
        { "\x01\x1f", 2, "p{z:x:011f}" },
        { "\t", 1, "p{z:x:09}" },
        { "line\n", 5, "p{z:x:6c696e650a}" },
        { "x:", 2, "p{z:x:783a}" },
        { "x:1", 3, "p{z:x:783a31}" },
        { "x:AB", 4, "p{z:x:783a4142}" },
        { "x:x:", 4, "p{z:x:783a783a}" },
    };
    char    buf[256];
    size_t  i, n;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        n = redis_name("p", "z", cases[i].key, cases[i].len, buf,
                       sizeof(buf));
        ck_assert_msg(strcmp(buf, cases[i].name) == 0, "case %zu: \"%s\", "
                      "want \"%s\"", i, buf, cases[i].name);
        ck_assert_uint_eq(n, strlen(cases[i].name));
    }
}
END_TEST


/* Every key of up to 2 bytes and random longer ones: the name gives the
 * key back (so no two keys share a name), has exactly one pair of braces
 * (the hash tag is the whole zone:key) and nothing unprintable. */
START_TEST(redis_key_round_trip)
{
    char           buf[256];
    unsigned char  key[64], back[64];
    size_t         len, n, i, m;
    unit_rng_t     rng = { 2024 };
    uint32_t       v, round;

    for (round = 0; round < 65536 + 256 + 1 + 20000; round++) {
        if (round == 0) {
            len = 0;
        } else if (round <= 256) {
            len = 1;
            key[0] = (unsigned char) (round - 1);
        } else if (round <= 256 + 65536) {
            v = round - 257;
            len = 2;
            key[0] = (unsigned char) (v >> 8);
            key[1] = (unsigned char) v;
        } else {
            static const char  alpha[] = "xX:{} ~!a0\x7f\x80";

            len = 1 + unit_below(&rng, 40);
            for (i = 0; i < len; i++) {
                key[i] = unit_below(&rng, 2)
                         ? (unsigned char) alpha[unit_below(&rng,
                                                            sizeof(alpha) - 1)]
                         : (unsigned char) unit_rand(&rng);
            }
        }

        n = trl_redis_key("pre:", 4, "zn", 2, key, len, buf, sizeof(buf));
        unit_check(n < sizeof(buf));
        unit_check(n >= 4 + 1 + 2 + 1 + 1);
        unit_check(memcmp(buf, "pre:{zn:", 8) == 0);
        for (i = 4, m = 0; i < n; i++) {
            unit_check(buf[i] >= 0x21 && buf[i] <= 0x7e);
            m += buf[i] == '{' || buf[i] == '}';
        }
        unit_check_msg(m == 2, "round %u: %zu braces", round, m);
        unit_check(buf[n - 1] == '}');

        unit_check(name_key(buf, n, 8, back) == len);
        unit_check_msg(memcmp(back, key, len) == 0, "round %u: key not "
                       "given back", round);
    }
}
END_TEST


/* Checks a long key's name: <pre>{<zone>:<head>~<32 hex digits of the
 * SHA-256 of the key>}, nothing unprintable, exactly the hash tag's braces,
 * bounded.  head: what the name is to show. */
static void
check_long_name(const char *name, size_t n, const void *key, size_t klen,
    const char *head)
{
    static const char  hex[] = "0123456789abcdef";
    uint8_t            d[32];
    char               want[256];
    size_t             i, m, at;

    trl_sha256(key, klen, d);
    at = (size_t) snprintf(want, sizeof(want), "trl:{big:%s~", head);
    for (i = 0; i < 16; i++) {
        want[at++] = hex[d[i] >> 4];
        want[at++] = hex[d[i] & 0xf];
    }
    want[at++] = '}';
    want[at] = '\0';

    ck_assert_msg(n == at && memcmp(name, want, n) == 0, "name %.*s, want "
                  "%s", (int) n, name, want);
    ck_assert_uint_le(n, 4 + 3 + TRL_REDIS_NAME_MAX);
    for (i = 0, m = 0; i < n; i++) {
        ck_assert(name[i] >= 0x21 && name[i] <= 0x7e);
        m += name[i] == '{' || name[i] == '}';
    }
    ck_assert_uint_eq(m, 2);
}


/* An 8 KB key, printable or not: its first bytes and a hash of it all. */
START_TEST(redis_key_long)
{
    size_t          klen = 8192, blen = 2 * klen + 64, n, i;
    unsigned char  *key = malloc(klen);
    char           *buf = malloc(blen), head[64];

    ck_assert_ptr_nonnull(key);
    ck_assert_ptr_nonnull(buf);

    memset(key, 'k', klen);
    n = trl_redis_key("trl:", 4, "big", 3, key, klen, buf, blen);
    memset(head, 'k', 32);
    head[32] = '\0';
    check_long_name(buf, n, key, klen, head);
    ck_assert_uint_eq(n, 4 + 1 + 3 + 1 + 32 + 1 + 32 + 1);

    for (i = 0; i < klen; i++) {
        key[i] = (unsigned char) (i * 7);
    }
    n = trl_redis_key("trl:", 4, "big", 3, key, klen, buf, blen);
    check_long_name(buf, n, key, klen, "x:00070e151c232a31383f464d545b6269");

    /* the last byte counts */
    memset(key, 'k', klen);
    n = trl_redis_key("trl:", 4, "big", 3, key, klen, buf, blen);
    key[klen - 1] = 'K';
    ck_assert_uint_eq(trl_redis_key("trl:", 4, "big", 3, key, klen,
                                    buf + n, blen - n), n);
    ck_assert(memcmp(buf, buf + n, n) != 0);
    ck_assert(memcmp(buf, buf + n, n - 34) == 0);

    free(key);
    free(buf);
}
END_TEST


/* Up to 64 bytes: today's names; from 65: head and hash.  The hash is the
 * first 32 hex digits of sha256sum's. */
START_TEST(redis_key_length_edges)
{
    char    key[200], buf[400], want[200];
    size_t  n;

    memset(key, 'a', sizeof(key));

    n = redis_name("p", "z", key, 64, buf, sizeof(buf));
    ck_assert_uint_eq(n, 1 + 3 + 64 + 1);
    ck_assert_int_eq(memcmp(buf + 4, key, 64), 0);

    n = redis_name("p", "z", key, 65, buf, sizeof(buf));
    ck_assert_str_eq(buf, "p{z:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                          "~635361c48bb9eab14198e76ea8ab7f1a}");
    n = redis_name("p", "z", key, 128, buf, sizeof(buf));
    ck_assert_str_eq(buf, "p{z:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                          "~6836cf13bac400e9105071cd6af47084}");

    /* 64 bytes not plain: hex in full, as before */
    key[10] = ' ';
    n = redis_name("p", "z", key, 64, buf, sizeof(buf));
    ck_assert_uint_eq(n, 1 + 3 + 2 + 128 + 1);
    ck_assert_int_eq(memcmp(buf, "p{z:x:6161", 10), 0);

    /* 65 bytes, not plain in the first 32: 16 bytes in hex */
    n = redis_name("p", "z", key, 65, buf, sizeof(buf));
    ck_assert_int_eq(memcmp(buf, "p{z:x:61616161616161616161206161616161~",
                            39), 0);
    ck_assert_uint_eq(n, 39 + 32 + 1);

    /* not plain after the first 32: they are shown */
    key[10] = 'a';
    key[40] = '{';
    key[41] = '\n';
    n = redis_name("p", "z", key, 65, buf, sizeof(buf));
    ck_assert_int_eq(memcmp(buf, "p{z:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa~",
                            37), 0);

    /* a long key beginning "x:" is shown in hex, like a short one */
    memcpy(key, "x:", 2);
    n = redis_name("p", "z", key, 65, buf, sizeof(buf));
    ck_assert_int_eq(memcmp(buf, "p{z:x:783a6161616161616161616161616161~",
                            39), 0);

    /* UTF-8: no character is cut (U+00E9 is c3 a9) */
    key[0] = 'a';
    for (n = 1; n + 1 < 100; n += 2) {
        memcpy(key + n, "\xc3\xa9", 2);
    }
    n = redis_name("p", "z", key, 99, buf, sizeof(buf));
    strcpy(want, "p{z:x:61c3a9c3a9c3a9c3a9c3a9c3a9c3a9~");
    ck_assert_int_eq(memcmp(buf, want, strlen(want)), 0);
    n = redis_name("p", "z", key + 1, 98, buf, sizeof(buf));
    strcpy(want, "p{z:x:c3a9c3a9c3a9c3a9c3a9c3a9c3a9c3a9~");
    ck_assert_int_eq(memcmp(buf, want, strlen(want)), 0);
    /* a 4-byte character across byte 16: 13 bytes */
    memset(key, 'a', 13);
    memcpy(key + 13, "\xf0\x9f\x98\x80", 4);
    n = redis_name("p", "z", key, 99, buf, sizeof(buf));
    strcpy(want, "p{z:x:61616161616161616161616161~");
    ck_assert_int_eq(memcmp(buf, want, strlen(want)), 0);
}
END_TEST


typedef struct {
    char           name[200];
    unsigned char  key[80];
    size_t         len;
} named_key_t;


static int
cmp_names(const void *a, const void *b)
{
    return strcmp(((const named_key_t *) a)->name,
                  ((const named_key_t *) b)->name);
}


/* Keys around the 64-byte line, many sharing their first 58 bytes, with
 * and without the bytes that make a name hex: two keys share a name only
 * when they are the same key; every name is within the bound. */
START_TEST(redis_key_long_distinct)
{
    enum { KEYS = 20000 };
    static const char  alpha[] = "ax:{ ~0123456789abcdef\x80\xc3";
    size_t             i, j, n, same;
    named_key_t       *k;
    unit_rng_t         rng = { 99 };

    k = calloc(KEYS, sizeof(named_key_t));
    ck_assert_ptr_nonnull(k);

    for (i = 0; i < KEYS; i++) {
        k[i].len = 60 + unit_below(&rng, 12);
        for (j = 0; j < k[i].len; j++) {
            k[i].key[j] = (j < 58 && i % 3) ? 'a'
                : (unsigned char) alpha[unit_below(&rng, sizeof(alpha) - 1)];
        }
        if (i % 7 == 0) {
            memcpy(k[i].key, "x:", 2);
        }
        n = trl_redis_key("p", 1, "z", 1, k[i].key, k[i].len, k[i].name,
                          sizeof(k[i].name) - 1);
        unit_check(n <= 1 + 1 + TRL_REDIS_NAME_MAX);
        k[i].name[n] = '\0';
    }

    qsort(k, KEYS, sizeof(named_key_t), cmp_names);

    for (i = 1, same = 0; i < KEYS; i++) {
        if (strcmp(k[i - 1].name, k[i].name) == 0) {
            unit_check_msg(k[i - 1].len == k[i].len
                           && memcmp(k[i - 1].key, k[i].key, k[i].len) == 0,
                           "two keys named %s", k[i].name);
            same++;
        }
    }

    unit_check(same < KEYS / 2);            /* the keys mostly differ */
    free(k);
}
END_TEST


/* A short buffer: the full length comes back, nothing past len is
 * written, what is written is the name's beginning. */
START_TEST(redis_key_short_buffer)
{
    const char     *keys[] = { "10.0.0.1", "a b" };
    char            full[128];
    unsigned char   buf[160];
    size_t          n, len, i, k;

    for (k = 0; k < 2; k++) {
        n = redis_name("trl:", "api", keys[k], strlen(keys[k]), full,
                       sizeof(full));
        for (len = 0; len <= n + 2; len++) {
            memset(buf, 0xee, sizeof(buf));
            ck_assert_uint_eq(trl_redis_key("trl:", 4, "api", 3, keys[k],
                                            strlen(keys[k]), (char *) buf,
                                            len), n);
            for (i = 0; i < sizeof(buf); i++) {
                if (i < len && i < n) {
                    ck_assert_int_eq(buf[i], (unsigned char) full[i]);
                } else {
                    ck_assert_msg(buf[i] == 0xee, "len %zu: byte %zu "
                                  "written", len, i);
                }
            }
        }
    }
}
END_TEST


START_TEST(redis_cell_width)
{
    static const struct {
        uint64_t  w, cell;
    } cases[] = {
        { 0, 0 }, { 1, 1 }, { 19, 1 }, { 20, 1 }, { 21, 2 }, { 40, 2 },
        { 41, 3 }, { 999, 50 }, { 1000, 50 }, { 1001, 51 }, { 60000, 3000 },
        { 15 * 60000, 45000 }, { 3600000, 180000 },
        { TRL_RATE_MAX_WINDOW_MS, TRL_RATE_MAX_WINDOW_MS / 20 },
    };
    size_t    i;
    uint64_t  w;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        ck_assert_msg(trl_redis_cell_ms(cases[i].w) == cases[i].cell,
                      "W %llu: %llu", (unsigned long long) cases[i].w,
                      (unsigned long long) trl_redis_cell_ms(cases[i].w));
    }
    for (w = 1; w <= 100000; w++) {
        uint64_t  c = trl_redis_cell_ms(w);

        unit_check_msg(c * 20 >= w && (c - 1) * 20 < w, "W %llu: %llu",
                       (unsigned long long) w, (unsigned long long) c);
    }
}
END_TEST




START_TEST(redis_scripts)
{
    const char  *names[] = { "publish", "strict", "release", "reset",
                             "lists", "ask", "distinct", "rep read",
                             "rep publish", "attack" };
    int          i, bad[] = { -1, TRL_SCRIPTS, TRL_SCRIPTS + 1, 1000,
                              INT_MIN };

    ck_assert_int_eq(TRL_SCRIPT_PUBLISH, 0);
    ck_assert_int_eq(TRL_SCRIPT_STRICT, 1);
    ck_assert_int_eq(TRL_SCRIPT_RELEASE, 2);
    ck_assert_int_eq(TRL_SCRIPT_RESET, 3);
    ck_assert_int_eq(TRL_SCRIPT_LISTS, 4);
    ck_assert_int_eq(TRL_SCRIPT_ASK, 5);
    ck_assert_int_eq(TRL_SCRIPT_DISTINCT, 6);
    ck_assert_int_eq(TRL_SCRIPT_REP_READ, 7);
    ck_assert_int_eq(TRL_SCRIPT_REP_PUBLISH, 8);
    ck_assert_int_eq(TRL_SCRIPT_ATTACK, 9);
    ck_assert_int_eq(TRL_SCRIPTS, 10);
    ck_assert_str_eq(trl_redis_script(TRL_SCRIPT_DISTINCT),
                     trl_distinct_script());

    for (i = 0; i < TRL_SCRIPTS; i++) {
        const char  *s = trl_redis_script(i);

        ck_assert_ptr_nonnull(s);
        ck_assert_msg(strlen(s) > 20, "%s: \"%s\"", names[i], s);
        ck_assert_ptr_nonnull(strstr(s, "KEYS[") != NULL
                              ? strstr(s, "KEYS[") : strstr(s, "KEYS)"));
        ck_assert_ptr_nonnull(strstr(s, "return"));
    }
    for (i = 0; i < (int) (sizeof(bad) / sizeof(bad[0])); i++) {
        ck_assert_ptr_nonnull(trl_redis_script(bad[i]));
        ck_assert_str_eq(trl_redis_script(bad[i]), "");
    }

    ck_assert_ptr_nonnull(strstr(trl_redis_script(TRL_SCRIPT_RELEASE),
                                 "HINCRBY"));
    ck_assert_ptr_nonnull(strstr(trl_redis_script(TRL_SCRIPT_RELEASE),
                                 "HDEL"));
    ck_assert_ptr_nonnull(strstr(trl_redis_script(TRL_SCRIPT_STRICT),
                                 "TIME"));

    /*
     * publish and strict: the TTL is set in the same step as every write:
     * keep() sets it (PEXPIRE of the key), and every HINCRBY or HSET is
     * followed by keep(key, ...) before the script returns.
     */
    for (i = TRL_SCRIPT_PUBLISH; i <= TRL_SCRIPT_STRICT; i++) {
        const char  *s = trl_redis_script(i), *p, *keep, *ret;
        const char  *ops[] = { "'HINCRBY'", "'HSET'" };
        int          o, writes = 0;

        ck_assert_ptr_nonnull(strstr(s, "HINCRBY"));
        ck_assert_ptr_nonnull(strstr(s, "local function keep(key"));
        ck_assert_ptr_nonnull(strstr(strstr(s, "local function keep(key"),
                                     "redis.call('PEXPIRE', key"));

        for (o = 0; o < 2; o++) {
            for (p = strstr(s, ops[o]); p != NULL;
                 p = strstr(p + 1, ops[o]))
            {
                keep = strstr(p, "keep(key");
                ret = strstr(p, "return");
                ck_assert_msg(keep != NULL && (ret == NULL || keep < ret),
                              "%s: a %s at offset %d without keep() "
                              "before the return", names[i], ops[o],
                              (int) (p - s));
                writes++;
            }
        }
        ck_assert_int_ge(writes, 1);
        ck_assert_ptr_null(strstr(s, "\"HINCRBY\""));
        ck_assert_ptr_null(strstr(s, "hincrby"));
    }
}
END_TEST


/*
 * Findings: these fail against the current core (see the report).
 */


/* Rejected on the cluster count while the node's own window is also full
 * but frees earlier: retry_ms must not send the client back before the
 * cluster part frees (a request at now + retry_ms is still rejected). */
START_TEST(finding_retry_own_window_hides_cluster)
{
    size_t        size = 64 * 1024;
    trl_zone_t   *zone = unit_zone_flags(size, TRL_ZONE_SYNC);
    trl_limit_t   l = sync_limit(2, MIN, 30000);      /* fresh 120 s */
    trl_hash_t    key = unit_key(zone, "retry");
    trl_result_t  res;
    uint64_t      t1 = T0 + 30000, now = T0 + 31000;

    ck_assert(unit_acquire(zone, &key, &l, T0, NULL));
    ck_assert(unit_acquire(zone, &key, &l, T0, NULL));
    /* 5 in the cluster, the 4th oldest leaves in 50 s (others came later) */
    sync_read(zone, &key, &l, 7, 5, 50000, 59000, 2, t1);

    ck_assert(!unit_acquire(zone, &key, &l, now, &res));
    /* the core answers T0 + W - now = 29 s: its own window's time */
    ck_assert_uint_ge(res.retry_ms, t1 + 50000 - now);

    /* coming back at the time it was given, with no new read: rejected */
    ck_assert(unit_acquire(zone, &key, &l, now + res.retry_ms, NULL));
    unit_shm_free(zone, size);
}
END_TEST


/* A key rejected on its cluster count, with few admissions of its own, is
 * the first entry a full stripe gives up, before any open key: its
 * cluster state is lost and it is admitted locally again. */
START_TEST(finding_cluster_blocked_key_evicted_first)
{
    size_t        size = 64 * 1024;
    trl_zone_t   *zone = unit_zone_flags(size, TRL_ZONE_SYNC);
    unit_root_t  *r = unit_root(zone);
    trl_limit_t   l = sync_limit(5, MIN, 10000);
    trl_hash_t    blocked = unit_key_in_stripe(zone, 0, 0);
    trl_hash_t    fresh = unit_key_in_stripe(zone, 0, 99999);
    trl_result_t  res;
    uint32_t      k;

    ck_assert(unit_acquire(zone, &blocked, &l, T0, NULL));
    sync_read(zone, &blocked, &l, 1, 9, 30000, 50000, 1, T0 + 1);
    ck_assert(!unit_acquire(zone, &blocked, &l, T0 + 2, &res));
    ck_assert_uint_eq(res.log_first, 1);

    for (k = 1; k < r->per_stripe; k++) {
        trl_hash_t  key = unit_key_in_stripe(zone, 0, k);

        ck_assert(unit_acquire(zone, &key, &l, T0 + 3, NULL));
    }
    ck_assert(unit_acquire(zone, &fresh, &l, T0 + 4, &res));
    ck_assert_uint_eq(res.evicted, 1);

    /* an open key made room, the blocked one is still blocked */
    ck_assert_ptr_nonnull(sync_state(zone, &blocked));
    ck_assert(!unit_acquire(zone, &blocked, &l, T0 + 5, NULL));
    unit_shm_free(zone, size);
}
END_TEST


/* The same for strict zones: a key Redis blocked goes first. */
START_TEST(finding_strict_blocked_key_evicted_first)
{
    size_t        size = 64 * 1024;
    trl_zone_t   *zone = unit_zone_flags(size, TRL_ZONE_SYNC);
    unit_root_t  *r = unit_root(zone);
    trl_limit_t   l = unit_limit(5, MIN);
    trl_hash_t    blocked = unit_key_in_stripe(zone, 0, 0);
    trl_hash_t    fresh = unit_key_in_stripe(zone, 0, 99999);
    trl_result_t  res;
    uint32_t      k;

    strict_reply(zone, &blocked, &l, 0, 5, 30000, 50000, T0, &res);
    for (k = 1; k < r->per_stripe; k++) {
        trl_hash_t  key = unit_key_in_stripe(zone, 0, k);

        strict_reply(zone, &key, &l, 1, 1, 0, 50000, T0 + 1, &res);
    }
    strict_reply(zone, &fresh, &l, 1, 1, 0, 50000, T0 + 2, &res);

    ck_assert_int_eq(strict_cached(zone, &blocked, &l, T0 + 3, NULL), 1);
    unit_shm_free(zone, size);
}
END_TEST

/*
 * Signal zones (the glue's check-only limits): a key this node never
 * counted gets an entry without admissions, so that a read of its cluster
 * total lands (sync_apply drops reads of keys the zone does not hold), and
 * a peek then sees the cluster's count.  Nothing is counted.
 */
START_TEST(watch_lets_a_read_land)
{
    size_t            size = 64 * 1024;
    trl_zone_t       *zone = unit_zone_flags(size, TRL_ZONE_SYNC);
    trl_limit_t       l = sync_limit(3, MIN, 1000);
    trl_hash_t        key = unit_key(zone, "signal");
    trl_hash_t        other = unit_key(zone, "unwatched");
    trl_result_t      res;
    trl_zone_stats_t  st;

    /* unwatched: the read is dropped, the key stays unknown */
    sync_read(zone, &other, &l, 1000, 3, 0, 50000, 0, T0);
    ck_assert_int_eq(trl_zone_peek(zone, &other, &l, T0 + 1, &res), 1);
    ck_assert_ptr_null(sync_state(zone, &other));

    ck_assert_int_eq(trl_zone_sync_watch(zone, &key, &l, T0), 1);
    ck_assert_int_eq(trl_zone_sync_watch(zone, &key, &l, T0 + 1), 0);
    ck_assert_uint_eq(pending_of(zone, &key), 0);

    /* known now, with nothing counted */
    ck_assert_int_eq(trl_zone_peek(zone, &key, &l, T0 + 2, &res), TRL_OK);
    ck_assert_uint_eq(res.remaining, 3);
    ck_assert_uint_eq(res.rejected, 0);

    /* the cluster's three land: the next request would be rejected */
    sync_read(zone, &key, &l, 2000, 3, 30000, 50000, 0, T0 + 3);
    ck_assert_int_eq(trl_zone_peek(zone, &key, &l, T0 + 4, &res), TRL_OK);
    ck_assert_uint_eq(res.remaining, 0);
    ck_assert_uint_eq(res.rejected, 1);

    trl_zone_stats(zone, &st);
    ck_assert_uint_eq(st.passed, 0);
    ck_assert_uint_eq(st.rejected, 0);
    ck_assert_uint_eq(st.keys, 1);
    unit_shm_free(zone, size);
}
END_TEST



Suite *
sync_suite(void)
{
    Suite  *s;
    TCase  *tc;

    s = suite_create("sync");

    tc = unit_tcase(s, "layout", 20);
    tcase_add_test(tc, sync_layout);
    tcase_add_test(tc, sync_flags_only_known);
    tcase_add_test(tc, sync_mirror_checks);
    tcase_add_test(tc, plain_zone_ignores_sync);

    tc = unit_tcase(s, "estimate", 10);
    tcase_add_test(tc, estimate_no_read_is_local);
    tcase_add_test(tc, estimate_fresh_total);
    tcase_add_test(tc, estimate_fresh_zero_readmits);
    tcase_add_test(tc, estimate_stale_read_not_below_own);
    tcase_add_test(tc, estimate_stale_read_still_counts);
    tcase_add_test(tc, estimate_free_in_and_reset_in);
    tcase_add_test(tc, estimate_reset_from_read);
    tcase_add_test(tc, estimate_read_due);
    tcase_add_test(tc, estimate_out_of_order_reads);
    tcase_add_test(tc, estimate_stamp_wraps);
    tcase_add_test(tc, estimate_pending_floor);
    tcase_add_test(tc, estimate_release_and_unpend);
    tcase_add_test(tc, estimate_force_and_dry_run);
    tcase_add_test(tc, estimate_pending_saturates);
    tcase_add_test(tc, watch_lets_a_read_land);

    tc = unit_tcase(s, "strict", 10);
    tcase_add_test(tc, strict_cached_unknown_or_open);
    tcase_add_test(tc, strict_block_until_free);
    tcase_add_test(tc, strict_block_bounded_by_refresh);
    tcase_add_test(tc, strict_admitted_recorded);
    tcase_add_test(tc, strict_reply_takes_entry);

    tc = unit_tcase(s, "stats", 10);
    tcase_add_test(tc, sync_stats_round_trip);
    tcase_add_test(tc, evicted_entry_starts_clean);

    tc = unit_tcase(s, "redis", 20);
    tcase_add_test(tc, redis_key_verbatim);
    tcase_add_test(tc, redis_key_hex);
    tcase_add_test(tc, redis_key_round_trip);
    tcase_add_test(tc, redis_key_long);
    tcase_add_test(tc, redis_key_length_edges);
    tcase_add_test(tc, redis_key_long_distinct);
    tcase_add_test(tc, redis_key_short_buffer);
    tcase_add_test(tc, redis_cell_width);
    tcase_add_test(tc, redis_scripts);

    tc = unit_tcase(s, "regressions", 10);
    tcase_add_test(tc, finding_retry_own_window_hides_cluster);
    tcase_add_test(tc, finding_cluster_blocked_key_evicted_first);
    tcase_add_test(tc, finding_strict_blocked_key_evicted_first);

    return s;
}
