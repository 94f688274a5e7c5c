/*
 * test_zone.c - zone layout, attach, capacity, statistics, eviction and
 * logging state, and several processes sharing one zone.
 */

#include "unit.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>


#define SEC   1000ULL
#define MIN   (60 * SEC)
#define HOUR  (60 * MIN)
#define DAY   (24 * HOUR)

#define T0    (1ULL << 30)   /* ms, on the unit grid of every window */


START_TEST(min_size_refused_below)
{
    size_t       m = trl_zone_min_size();
    char         err[256], num[32];
    void        *mem;
    trl_zone_t  *zone;
    trl_hash_t   key;
    trl_limit_t  l = unit_limit(1, MIN);

    ck_assert_uint_gt(m, sizeof(unit_root_t));
    mem = unit_shm(m);

    err[0] = '\0';
    ck_assert_ptr_null(trl_zone_create(mem, m - 1, 0, err, sizeof(err)));
    ck_assert_ptr_nonnull(strstr(err, "too small"));
    snprintf(num, sizeof(num), "%zu", m);
    ck_assert_msg(strstr(err, num) != NULL, "reason \"%s\" lacks %s", err,
                  num);

    err[0] = '\0';
    ck_assert_ptr_null(trl_zone_create(mem, 0, 0, err, sizeof(err)));
    ck_assert_uint_gt(strlen(err), 0);
    err[0] = '\0';
    ck_assert_ptr_null(trl_zone_create(NULL, m, 0, err, sizeof(err)));
    ck_assert_uint_gt(strlen(err), 0);

    /* a tiny errlen: truncated, terminated, nothing past it */
    memset(err, 0x5a, sizeof(err));
    ck_assert_ptr_null(trl_zone_create(mem, m - 1, 0, err, 6));
    ck_assert_uint_eq(strlen(err), 5);
    ck_assert_int_eq(err[6], 0x5a);
    ck_assert_ptr_null(trl_zone_create(mem, m - 1, 0, NULL, 0));

    /* the smallest block works */
    zone = trl_zone_create(mem, m, 0, err, sizeof(err));
    ck_assert_ptr_nonnull(zone);
    ck_assert_uint_ge(trl_zone_capacity(zone), 1);
    key = unit_key(zone, "k");
    ck_assert(unit_acquire(zone, &key, &l, T0, NULL));
    ck_assert(!unit_acquire(zone, &key, &l, T0, NULL));
    unit_shm_free(mem, m);
}
END_TEST


/* Over many sizes: the layout stays inside the block and is usable. */
START_TEST(layout_within_block)
{
    size_t       m = trl_zone_min_size();
    size_t       sizes[64];
    size_t       n = 0, i, guard = 4096, k;
    unit_rng_t   rng = { 5 };
    char         err[256];

    for (i = 0; i < 16; i++) {
        sizes[n++] = m + i * 37;
    }
    for (i = 0; i < 40; i++) {
        sizes[n++] = m + unit_below(&rng, 3 * 1024 * 1024);
    }
    sizes[n++] = 64 * 1024;
    sizes[n++] = 1024 * 1024;
    sizes[n++] = 4 * 1024 * 1024 + 13;

    for (i = 0; i < n; i++) {
        size_t          size = sizes[i];
        unsigned char  *mem = unit_shm(size + guard);
        trl_zone_t     *zone;
        unit_root_t    *r;
        trl_limit_t     l = unit_limit(3, HOUR);
        trl_zone_stats_t  st;
        uint32_t        cap;

        memset(mem + size, 0xc3, guard);
        zone = trl_zone_create(mem, size, 0, err, sizeof(err));
        ck_assert_msg(zone != NULL, "size %zu: %s", size, err);
        r = unit_root(zone);
        cap = trl_zone_capacity(zone);

        ck_assert_uint_eq(r->entry_size, trl_zone_entry_size());
        ck_assert_uint_eq(r->size, size);
        ck_assert_uint_ge(r->nstripes, 1);
        ck_assert_uint_le(r->nstripes, 64);
        ck_assert_uint_eq(r->nstripes & (r->nstripes - 1), 0);
        ck_assert_uint_ge(r->per_stripe, 16);
        ck_assert_uint_eq(cap, r->nstripes * r->per_stripe);
        ck_assert_uint_eq(r->stripes_off % 64, 0);
        ck_assert_uint_eq(unit_stripe_size(zone), UNIT_STRIPE_SIZE);
        ck_assert_uint_ge(r->stripes_off, sizeof(unit_root_t));
        ck_assert_uint_ge(r->entries_off,
                          r->heads_off + 4 * (uint64_t) cap);
        ck_assert_uint_le(r->entries_off + (uint64_t) cap
                          * trl_zone_entry_size(), size);
        /* most of the block holds keys (the top offenders table, some
         * 1.8 KB or 7 KB, aside) */
        ck_assert_uint_gt((uint64_t) cap * (trl_zone_entry_size() + 4),
                          (size - (size >= 256 * 1024 ? 7200 : 1850)) / 2);
        ck_assert_uint_ge(r->offenders_off, r->entries_off
                          + (uint64_t) cap * trl_zone_entry_size());
        ck_assert_uint_le(r->offenders_off + 1850, size);

        /* use it hard: twice its capacity in keys */
        for (k = 0; k < 2 * (size_t) cap; k++) {
            trl_hash_t  key = unit_key_n(zone, "layout", k);

            unit_acquire(zone, &key, &l, T0 + k, NULL);
            unit_acquire(zone, &key, &l, T0 + k, NULL);
        }
        trl_zone_stats(zone, &st);
        ck_assert_uint_le(st.keys, cap);
        ck_assert_uint_eq(st.passed, 4 * (uint64_t) cap);
        ck_assert_uint_eq(st.evicted + st.keys, 2 * (uint64_t) cap);

        for (k = 0; k < guard; k++) {
            ck_assert_msg(mem[size + k] == 0xc3, "size %zu: byte %zu past "
                          "the block written", size, k);
        }
        unit_shm_free(mem, size + guard);
    }
}
END_TEST


START_TEST(attach_checks)
{
    size_t        size = 256 * 1024;
    trl_zone_t   *zone = unit_zone(size), *again;
    unit_root_t  *r = unit_root(zone);
    char          err[256];
    trl_hash_t    key = unit_key(zone, "attached");
    trl_limit_t   l = unit_limit(2, MIN);
    trl_result_t  res;
    uint32_t      saved;
    uint64_t      saved64;

    ck_assert(unit_acquire(zone, &key, &l, T0, NULL));
    ck_assert(unit_acquire(zone, &key, &l, T0, NULL));

    /* the same zone, by size or without a size check; counts kept */
    again = trl_zone_attach(zone, size, err, sizeof(err));
    ck_assert_ptr_eq(again, zone);
    again = trl_zone_attach(zone, 0, err, sizeof(err));
    ck_assert_ptr_eq(again, zone);
    ck_assert(!unit_acquire(again, &key, &l, T0 + 1, &res));
    ck_assert_uint_eq(trl_zone_capacity(again), trl_zone_capacity(zone));

    /* another size */
    err[0] = '\0';
    ck_assert_ptr_null(trl_zone_attach(zone, size - 4096, err, sizeof(err)));
    ck_assert_ptr_nonnull(strstr(err, "size"));
    err[0] = '\0';
    ck_assert_ptr_null(trl_zone_attach(zone, size + 4096, err, sizeof(err)));
    ck_assert_ptr_nonnull(strstr(err, "size"));
    ck_assert_ptr_null(trl_zone_attach(zone, 100, err, sizeof(err)));

    /* another layout version */
    saved = r->version;
    r->version = saved + 1;
    err[0] = '\0';
    ck_assert_ptr_null(trl_zone_attach(zone, 0, err, sizeof(err)));
    ck_assert_ptr_nonnull(strstr(err, "version"));
    r->version = 0;
    ck_assert_ptr_null(trl_zone_attach(zone, size, err, sizeof(err)));
    r->version = saved;
    ck_assert_ptr_eq(trl_zone_attach(zone, size, err, sizeof(err)), zone);

    /* another entry layout */
    saved = r->entry_size;
    r->entry_size = saved + 8;
    ck_assert_ptr_null(trl_zone_attach(zone, size, err, sizeof(err)));
    r->entry_size = saved;

    /* no magic */
    saved64 = r->magic;
    r->magic = saved64 ^ 1;
    err[0] = '\0';
    ck_assert_ptr_null(trl_zone_attach(zone, size, err, sizeof(err)));
    ck_assert_ptr_nonnull(strstr(err, "no token_ratelimit zone"));
    r->magic = saved64;
    ck_assert_ptr_eq(trl_zone_attach(zone, size, err, sizeof(err)), zone);

    /* NUL-terminated within a tiny errlen */
    r->version = saved + 7;
    memset(err, 0x5a, sizeof(err));
    ck_assert_ptr_null(trl_zone_attach(zone, size, err, 4));
    ck_assert_uint_eq(strlen(err), 3);
    ck_assert_int_eq(err[4], 0x5a);
    ck_assert_ptr_null(trl_zone_attach(zone, size, NULL, 0));
    r->version = saved;

    ck_assert_ptr_null(trl_zone_attach(NULL, 0, err, sizeof(err)));
    unit_shm_free(zone, size);
}
END_TEST


START_TEST(attach_refuses_garbage)
{
    size_t          size = 64 * 1024;
    unsigned char  *mem = unit_shm(size);
    unit_rng_t      rng = { 77 };
    char            err[256];
    size_t          i;
    int             round;

    /* zeroes, ones, random bytes */
    for (round = 0; round < 12; round++) {
        for (i = 0; i < size; i++) {
            mem[i] = round == 0 ? 0 : round == 1 ? 0xff
                     : (unsigned char) unit_rand(&rng);
        }
        err[0] = '\0';
        ck_assert_ptr_null(trl_zone_attach(mem, size, err, sizeof(err)));
        ck_assert_ptr_nonnull(strstr(err, "no token_ratelimit zone"));
        ck_assert_ptr_null(trl_zone_attach(mem, 0, err, sizeof(err)));
    }
    unit_shm_free(mem, size);
}
END_TEST


START_TEST(capacity_of_1m)
{
    size_t            size = 1024 * 1024;
    trl_zone_t       *zone = unit_zone(size);
    unit_root_t      *r = unit_root(zone);
    trl_limit_t       l = unit_limit(5, HOUR);
    trl_zone_stats_t  st;
    uint32_t          cap = trl_zone_capacity(zone), s, k;

    ck_assert_uint_eq(trl_zone_entry_size(), 80);
    ck_assert_uint_ge(cap, 12000);
    ck_assert_uint_le((uint64_t) cap * 80, size);

    trl_zone_stats(zone, &st);
    ck_assert_uint_eq(st.capacity, cap);
    ck_assert_uint_eq(st.keys, 0);

    /* every entry usable: fill each stripe exactly, nothing evicted */
    for (s = 0; s < r->nstripes; s++) {
        for (k = 0; k < r->per_stripe; k++) {
            trl_hash_t    key = unit_key_in_stripe(zone, s, k);
            trl_result_t  res;

            ck_assert(unit_acquire(zone, &key, &l, T0, &res));
            unit_eq(res.evicted, 0);
        }
    }
    trl_zone_stats(zone, &st);
    ck_assert_uint_eq(st.keys, cap);
    ck_assert_uint_eq(st.evicted, 0);
    ck_assert_uint_eq(st.passed, cap);

    /* and every key still there */
    for (s = 0; s < r->nstripes; s++) {
        for (k = 0; k < r->per_stripe; k++) {
            trl_hash_t    key = unit_key_in_stripe(zone, s, k);
            trl_result_t  res;

            unit_eq(unit_peek(zone, &key, &l, T0 + 1, &res), TRL_OK);
            unit_eq(res.remaining, 4);
        }
    }

    /* one more key in a full stripe evicts one */
    {
        trl_hash_t    key = unit_key_in_stripe(zone, 3, 999999);
        trl_result_t  res;

        ck_assert(unit_acquire(zone, &key, &l, T0 + 2, &res));
        ck_assert_uint_eq(res.evicted, 1);
        trl_zone_stats(zone, &st);
        ck_assert_uint_eq(st.keys, cap);
        ck_assert_uint_eq(st.evicted, 1);
    }
    unit_shm_free(zone, size);
}
END_TEST


START_TEST(stats_counters)
{
    size_t            size = 256 * 1024;
    trl_zone_t       *zone = unit_zone(size);
    trl_limit_t       l = unit_limit(2, MIN), dry = unit_limit(2, MIN);
    trl_hash_t        a = unit_key(zone, "a"), b = unit_key(zone, "b");
    trl_zone_stats_t  st;
    trl_result_t      r;
    int               k;

    dry.flags = TRL_LIMIT_DRY_RUN;

    for (k = 0; k < 5; k++) {
        unit_acquire(zone, &a, &l, T0, NULL);        /* 2 pass, 3 rejected */
    }
    for (k = 0; k < 6; k++) {
        unit_acquire(zone, &b, &dry, T0, &r);        /* 2 pass, 4 dry-run */
        if (k >= 2) {
            /* a dry-run rejection is reported like any other */
            ck_assert_uint_eq(r.rejected, 1);
            ck_assert_uint_eq(r.remaining, 0);
            ck_assert_uint_ge(r.retry_ms, 1);
            ck_assert_uint_eq(r.ticket, 0);
        }
    }
    trl_zone_stats(zone, &st);
    ck_assert_uint_eq(st.passed, 4);
    ck_assert_uint_eq(st.rejected, 3);
    ck_assert_uint_eq(st.rejected_dry_run, 4);
    ck_assert_uint_eq(st.keys, 2);
    ck_assert_uint_eq(st.evicted, 0);
    ck_assert_uint_eq(st.recovered, 0);
    ck_assert_uint_eq(st.capacity, trl_zone_capacity(zone));

    /* dry-run rejections are not counted in the window either */
    ck_assert(unit_acquire(zone, &b, &dry, T0 + MIN, NULL));
    ck_assert(unit_acquire(zone, &b, &dry, T0 + MIN, NULL));
    ck_assert(!unit_acquire(zone, &b, &dry, T0 + MIN, NULL));

    /* peek and release count nothing */
    unit_peek(zone, &a, &l, T0 + 1, NULL);
    trl_zone_release(zone, &a, &l, T0, T0 + 1);
    trl_zone_stats(zone, &st);
    ck_assert_uint_eq(st.passed, 6);
    ck_assert_uint_eq(st.rejected, 3);
    ck_assert_uint_eq(st.rejected_dry_run, 5);
    ck_assert_uint_eq(st.keys, 2);

    /* summed over stripes: many keys */
    for (k = 0; k < 1000; k++) {
        trl_hash_t  key = unit_key_n(zone, "many", (unsigned long) k);

        unit_acquire(zone, &key, &l, T0, NULL);
    }
    trl_zone_stats(zone, &st);
    ck_assert_uint_eq(st.passed, 1006);
    ck_assert_uint_eq(st.keys, 1002);
    unit_shm_free(zone, size);
}
END_TEST


/*
 * A flood of fresh keys cannot free a blocked key: open keys are evicted
 * first.
 */
START_TEST(eviction_keeps_blocked)
{
    size_t            size = 64 * 1024;
    trl_zone_t       *zone = unit_zone_seeded(size, 1);
    trl_limit_t       l = unit_limit(2, HOUR);
    trl_hash_t        blocked = unit_key(zone, "attacker");
    trl_hash_t        early = unit_key(zone, "early");
    uint32_t          cap = trl_zone_capacity(zone), k;
    trl_zone_stats_t  st;
    trl_result_t      r;
    uint64_t          evicted = 0;

    ck_assert(unit_acquire(zone, &blocked, &l, T0, NULL));
    ck_assert(unit_acquire(zone, &blocked, &l, T0, NULL));
    ck_assert(!unit_acquire(zone, &blocked, &l, T0, NULL));
    ck_assert(unit_acquire(zone, &early, &l, T0, NULL));

    for (k = 0; k < 10 * cap; k++) {
        trl_hash_t  key = unit_key_n(zone, "flood", k);

        unit_check(unit_acquire(zone, &key, &l, T0 + 1 + k / 16, &r));
        evicted += r.evicted;
    }

    ck_assert_int_eq(unit_peek(zone, &blocked, &l, T0 + HOUR - 1, &r),
                     TRL_OK);
    ck_assert_uint_eq(r.rejected, 1);
    ck_assert(!unit_acquire(zone, &blocked, &l, T0 + HOUR - 1, &r));
    ck_assert_uint_eq(r.retry_ms, 1);

    ck_assert_int_eq(unit_peek(zone, &early, &l, T0 + HOUR - 1, &r), 1);

    trl_zone_stats(zone, &st);
    ck_assert_uint_eq(st.evicted, evicted);
    ck_assert_uint_ge(st.evicted, 9 * (uint64_t) cap);
    ck_assert_uint_le(st.keys, cap);
    unit_shm_free(zone, size);
}
END_TEST


/*
 * Eviction order in a full stripe: open keys first, then keys that reached
 * their limit, keys that were rejected last; least recently used first in
 * each list.
 */
START_TEST(eviction_blocked_last)
{
    size_t         size = 64 * 1024;
    trl_zone_t    *zone = unit_zone(size);
    uint32_t       per = unit_root(zone)->per_stripe, k;
    uint64_t       t = T0;
    trl_limit_t    two = unit_limit(2, HOUR);
    trl_result_t   r;
    trl_hash_t     open, fresh, k0, k1, k2;

    /* stripe 1: per-1 keys at their limit, then one open key */
    for (k = 0; k < per - 1; k++) {
        trl_hash_t  key = unit_key_in_stripe(zone, 1, k);

        ck_assert(unit_acquire(zone, &key, &two, t++, NULL));
        ck_assert(unit_acquire(zone, &key, &two, t++, NULL));
    }
    open = unit_key_in_stripe(zone, 1, 5000);
    ck_assert(unit_acquire(zone, &open, &two, t++, NULL));

    /* a new key takes the open key's entry, the newest of all */
    fresh = unit_key_in_stripe(zone, 1, 5001);
    ck_assert(unit_acquire(zone, &fresh, &two, t++, &r));
    ck_assert_uint_eq(r.evicted, 1);
    ck_assert_int_eq(unit_peek(zone, &open, &two, t, NULL), 1);
    for (k = 0; k < per - 1; k++) {
        trl_hash_t  key = unit_key_in_stripe(zone, 1, k);

        ck_assert_int_eq(unit_peek(zone, &key, &two, t, &r), TRL_OK);
        ck_assert_uint_eq(r.rejected, 1);
    }

    /* all at their limit: the least recently used one goes */
    ck_assert(unit_acquire(zone, &fresh, &two, t++, NULL));
    fresh = unit_key_in_stripe(zone, 1, 5002);
    ck_assert(unit_acquire(zone, &fresh, &two, t++, &r));
    ck_assert_uint_eq(r.evicted, 1);
    ck_assert(unit_acquire(zone, &fresh, &two, t++, NULL));

    k0 = unit_key_in_stripe(zone, 1, 0);
    k1 = unit_key_in_stripe(zone, 1, 1);
    k2 = unit_key_in_stripe(zone, 1, 2);
    ck_assert_int_eq(unit_peek(zone, &k0, &two, t, NULL), 1);
    ck_assert_int_eq(unit_peek(zone, &k1, &two, t, NULL), TRL_OK);

    /* a rejected key outranks keys that only reached their limit */
    ck_assert(!unit_acquire(zone, &k1, &two, t++, NULL));
    fresh = unit_key_in_stripe(zone, 1, 5003);
    ck_assert(unit_acquire(zone, &fresh, &two, t++, &r));
    ck_assert_uint_eq(r.evicted, 1);
    ck_assert_int_eq(unit_peek(zone, &k1, &two, t, NULL), TRL_OK);
    ck_assert_int_eq(unit_peek(zone, &k2, &two, t, NULL), 1);

    /* other stripes untouched */
    {
        trl_zone_stats_t  st;

        trl_zone_stats(zone, &st);
        ck_assert_uint_eq(st.keys, per);
        ck_assert_uint_eq(st.evicted, 3);
    }
    unit_shm_free(zone, size);
}
END_TEST


/* With N=1 every fresh key reaches its limit: a rejected key still stays. */
START_TEST(eviction_limit_one_flood)
{
    size_t         size = 64 * 1024;
    trl_zone_t    *zone = unit_zone(size);
    uint32_t       cap = trl_zone_capacity(zone), k;
    trl_limit_t    one = unit_limit(1, HOUR);
    trl_result_t   r;
    trl_hash_t     blocked = unit_key_n(zone, "blocked", 0);

    ck_assert(unit_acquire(zone, &blocked, &one, T0, NULL));
    ck_assert(!unit_acquire(zone, &blocked, &one, T0 + 1, NULL));

    for (k = 0; k < 10 * cap; k++) {
        trl_hash_t  key = unit_key_n(zone, "flood", k);

        ck_assert(unit_acquire(zone, &key, &one, T0 + 2 + k / 16, NULL));
    }

    ck_assert_int_eq(unit_peek(zone, &blocked, &one, T0 + MIN, &r), TRL_OK);
    ck_assert_uint_eq(r.rejected, 1);
    unit_shm_free(zone, size);
}
END_TEST


/* An entry whose window emptied is reused before a live open key. */
START_TEST(eviction_stale_blocked_first)
{
    size_t         size = 64 * 1024;
    trl_zone_t    *zone = unit_zone(size);
    uint32_t       per = unit_root(zone)->per_stripe, k;
    trl_limit_t    two = unit_limit(2, MIN);
    trl_result_t   r;
    trl_hash_t     stale = unit_key_in_stripe(zone, 2, 9000), fresh;

    ck_assert(unit_acquire(zone, &stale, &two, T0, NULL));
    ck_assert(unit_acquire(zone, &stale, &two, T0 + 1, NULL));

    for (k = 0; k < per - 1; k++) {
        trl_hash_t  key = unit_key_in_stripe(zone, 2, k);

        ck_assert(unit_acquire(zone, &key, &two, T0 + 2 * MIN + k, NULL));
    }

    fresh = unit_key_in_stripe(zone, 2, 9001);
    ck_assert(unit_acquire(zone, &fresh, &two, T0 + 3 * MIN, &r));
    ck_assert_uint_eq(r.evicted, 0);                    /* nothing live */
    ck_assert_int_eq(unit_peek(zone, &stale, &two, T0 + 3 * MIN, NULL), 1);
    for (k = 0; k < per - 1; k++) {
        trl_hash_t  key = unit_key_in_stripe(zone, 2, k);

        ck_assert_int_eq(unit_peek(zone, &key, &two, T0 + 3 * MIN, NULL),
                         TRL_OK);
    }
    unit_shm_free(zone, size);
}
END_TEST


/* A lowered rate puts open keys at their limit: they are kept as such. */
START_TEST(eviction_rate_lowered)
{
    size_t         size = 64 * 1024;
    trl_zone_t    *zone = unit_zone(size);
    uint32_t       cap = trl_zone_capacity(zone), k;
    trl_limit_t    three = unit_limit(3, HOUR), two = unit_limit(2, HOUR);
    trl_result_t   r;
    trl_hash_t     old = unit_key_n(zone, "old", 0);

    ck_assert(unit_acquire(zone, &old, &three, T0, NULL));
    ck_assert(unit_acquire(zone, &old, &three, T0 + 1, NULL));

    for (k = 0; k < 10 * cap; k++) {
        trl_hash_t  key = unit_key_n(zone, "flood", k);

        ck_assert(unit_acquire(zone, &key, &two, T0 + 2 + k / 16, NULL));
    }

    ck_assert_int_eq(unit_peek(zone, &old, &two, T0 + MIN, &r), TRL_OK);
    ck_assert_uint_eq(r.rejected, 1);
    unit_shm_free(zone, size);
}
END_TEST


/* Evicting a key whose window is empty is not counted as an eviction. */
START_TEST(eviction_of_idle_not_counted)
{
    size_t            size = 64 * 1024;
    trl_zone_t       *zone = unit_zone(size);
    uint32_t          per = unit_root(zone)->per_stripe, k;
    trl_limit_t       l = unit_limit(3, 10 * SEC);
    trl_result_t      r;
    trl_zone_stats_t  st;

    for (k = 0; k < per; k++) {
        trl_hash_t  key = unit_key_in_stripe(zone, 0, k);

        ck_assert(unit_acquire(zone, &key, &l, T0, NULL));
    }
    /* a minute later all those windows are empty */
    for (k = 0; k < per; k++) {
        trl_hash_t  key = unit_key_in_stripe(zone, 0, 1000 + k);

        ck_assert(unit_acquire(zone, &key, &l, T0 + MIN, &r));
        ck_assert_uint_eq(r.evicted, 0);
    }
    trl_zone_stats(zone, &st);
    ck_assert_uint_eq(st.evicted, 0);
    ck_assert_uint_eq(st.keys, per);
    {
        trl_hash_t  old = unit_key_in_stripe(zone, 0, 0);

        ck_assert_int_eq(unit_peek(zone, &old, &l, T0 + MIN, NULL), 1);
    }
    ck_assert_uint_eq(trl_zone_eviction_report(zone, T0 + MIN, MIN), 0);

    /* while live ones are */
    {
        trl_hash_t  key = unit_key_in_stripe(zone, 0, 5000);

        ck_assert(unit_acquire(zone, &key, &l, T0 + MIN + 1, &r));
        ck_assert_uint_eq(r.evicted, 1);
    }
    trl_zone_stats(zone, &st);
    ck_assert_uint_eq(st.evicted, 1);
    unit_shm_free(zone, size);
}
END_TEST


/* A key in steady use survives a flood of one-off keys. */
START_TEST(eviction_lru)
{
    size_t        size = 64 * 1024;
    trl_zone_t   *zone = unit_zone_seeded(size, 2);
    trl_limit_t   l = unit_limit(65535, HOUR);
    trl_hash_t    busy = unit_key(zone, "busy");
    trl_hash_t    idle = unit_key(zone, "idle");
    uint32_t      cap = trl_zone_capacity(zone), k, touches = 0;
    trl_result_t  r;

    ck_assert(unit_acquire(zone, &idle, &l, T0, NULL));
    for (k = 0; k < 10 * cap; k++) {
        trl_hash_t  key = unit_key_n(zone, "oneoff", k);

        if (k % 10 == 0) {
            unit_check(unit_acquire(zone, &busy, &l, T0 + k / 8, NULL));
            touches++;
        }
        unit_check(unit_acquire(zone, &key, &l, T0 + k / 8, NULL));
    }
    ck_assert_int_eq(unit_peek(zone, &busy, &l, T0 + 10 * cap, &r), TRL_OK);
    ck_assert_uint_eq(r.remaining, 65535 - touches);
    ck_assert_int_eq(unit_peek(zone, &idle, &l, T0 + 10 * cap, &r), 1);
    unit_shm_free(zone, size);
}
END_TEST


static uint64_t
evict_some(trl_zone_t *zone, uint32_t stripe, uint64_t *serial, uint32_t n,
    uint64_t now)
{
    trl_limit_t   l = unit_limit(5, DAY);
    trl_result_t  r;
    uint64_t      evicted = 0;
    uint32_t      k;

    for (k = 0; k < n; k++) {
        trl_hash_t  key = unit_key_in_stripe(zone, stripe, (*serial)++);

        unit_acquire(zone, &key, &l, now, &r);
        evicted += r.evicted;
    }
    return evicted;
}


START_TEST(eviction_report_interval)
{
    size_t       size = 64 * 1024;
    trl_zone_t  *zone = unit_zone(size);
    uint32_t     per = unit_root(zone)->per_stripe;
    uint64_t     serial = 0, e1, e2, e3;

    ck_assert_uint_eq(trl_zone_eviction_report(zone, T0, MIN), 0);

    /* fill a stripe, then 7 evictions */
    ck_assert_uint_eq(evict_some(zone, 2, &serial, per, T0), 0);
    e1 = evict_some(zone, 2, &serial, 7, T0);
    ck_assert_uint_eq(e1, 7);

    ck_assert_uint_eq(trl_zone_eviction_report(zone, T0 + 10, MIN), e1);
    ck_assert_uint_eq(trl_zone_eviction_report(zone, T0 + 11, MIN), 0);

    /* more, within the interval: held back */
    e2 = evict_some(zone, 2, &serial, 5, T0 + 20);
    ck_assert_uint_eq(e2, 5);
    e2 += evict_some(zone, 3, &serial, per + 4, T0 + 20);
    ck_assert_uint_eq(e2, 9);
    ck_assert_uint_eq(trl_zone_eviction_report(zone, T0 + 30 * SEC, MIN), 0);
    ck_assert_uint_eq(trl_zone_eviction_report(zone, T0 + 10 + MIN - 1, MIN),
                      0);

    /* due: everything since the last report */
    ck_assert_uint_eq(trl_zone_eviction_report(zone, T0 + 10 + MIN, MIN), e2);
    ck_assert_uint_eq(trl_zone_eviction_report(zone, T0 + 10 + MIN, MIN), 0);

    /* long after, with nothing new: nothing */
    ck_assert_uint_eq(trl_zone_eviction_report(zone, T0 + HOUR, MIN), 0);

    /* new evictions long after the last report: at once */
    e3 = evict_some(zone, 2, &serial, 3, T0 + HOUR);
    ck_assert_uint_eq(trl_zone_eviction_report(zone, T0 + HOUR + 1, MIN), e3);
    ck_assert_uint_eq(e3, 3);
    unit_shm_free(zone, size);
}
END_TEST


START_TEST(log_first_and_suppressed)
{
    size_t        size = 64 * 1024;
    trl_zone_t   *zone = unit_zone(size);
    trl_limit_t   l = unit_limit(1, 10 * SEC);
    trl_hash_t    key = unit_key(zone, "noisy");
    trl_result_t  r;
    uint32_t      k;

    ck_assert(unit_acquire(zone, &key, &l, T0, &r));
    ck_assert_uint_eq(r.log_first, 0);
    ck_assert_uint_eq(r.suppressed, 0);

    ck_assert(!unit_acquire(zone, &key, &l, T0 + 1, &r));
    ck_assert_uint_eq(r.log_first, 1);
    for (k = 0; k < 4; k++) {
        ck_assert(!unit_acquire(zone, &key, &l, T0 + 2 + k, &r));
        ck_assert_uint_eq(r.log_first, 0);
        ck_assert_uint_eq(r.suppressed, 0);
    }
    /* peek changes nothing */
    unit_peek(zone, &key, &l, T0 + 7, &r);
    ck_assert_uint_eq(r.log_first, 0);

    ck_assert(unit_acquire(zone, &key, &l, T0 + 10 * SEC, &r));
    ck_assert_uint_eq(r.suppressed, 4);
    ck_assert_uint_eq(r.log_first, 0);

    /* a new episode: logged again; a single rejection suppresses none */
    ck_assert(!unit_acquire(zone, &key, &l, T0 + 10 * SEC + 1, &r));
    ck_assert_uint_eq(r.log_first, 1);
    ck_assert(unit_acquire(zone, &key, &l, T0 + 20 * SEC, &r));
    ck_assert_uint_eq(r.suppressed, 0);

    /* no rejection at all: nothing to report */
    ck_assert(unit_acquire(zone, &key, &l, T0 + 30 * SEC, &r));
    ck_assert_uint_eq(r.suppressed, 0);
    ck_assert_uint_eq(r.log_first, 0);

    /* dry run: the same */
    l.flags = TRL_LIMIT_DRY_RUN;
    ck_assert(!unit_acquire(zone, &key, &l, T0 + 30 * SEC + 1, &r));
    ck_assert_uint_eq(r.log_first, 1);
    ck_assert(!unit_acquire(zone, &key, &l, T0 + 30 * SEC + 2, &r));
    ck_assert_uint_eq(r.log_first, 0);
    ck_assert(unit_acquire(zone, &key, &l, T0 + 40 * SEC, &r));
    ck_assert_uint_eq(r.suppressed, 1);

    /* the count saturates rather than wrapping */
    l.flags = 0;
    for (k = 0; k < 70000; k++) {
        unit_check(!unit_acquire(zone, &key, &l, T0 + 40 * SEC + 1, &r));
    }
    ck_assert(unit_acquire(zone, &key, &l, T0 + 50 * SEC, &r));
    ck_assert_uint_eq(r.suppressed, 65535);
    unit_shm_free(zone, size);
}
END_TEST


/*
 * Several processes on one zone (shared memory): the limit holds exactly,
 * and no live lock holder is ever taken for dead.
 */
START_TEST(processes_share_zone)
{
    enum { NPROC = 4, NKEYS = 64, LIMIT = 1000, PER_PROC = 40000 };
    size_t            size = 1024 * 1024;
    trl_zone_t       *zone = unit_zone(size);
    uint64_t         *admitted = unit_shm(sizeof(uint64_t) * NPROC * NKEYS);
    trl_limit_t       l = unit_limit(LIMIT, DAY);
    trl_zone_stats_t  st;
    pid_t             pids[NPROC];
    int               p, k, status;

    memset(admitted, 0, sizeof(uint64_t) * NPROC * NKEYS);

    for (p = 0; p < NPROC; p++) {
        pids[p] = fork();
        ck_assert_int_ge(pids[p], 0);
        if (pids[p] == 0) {
            unit_rng_t  rng = { (uint64_t) p + 1 };
            int         bad = 0;

            trl_set_pid(getpid());
            for (k = 0; k < PER_PROC; k++) {
                int           i = (int) unit_below(&rng, NKEYS);
                trl_hash_t    key = unit_key_n(zone, "shared", (unsigned) i);
                trl_result_t  r;

                if (trl_zone_acquire(zone, &key, &l, TRL_CLOCK_NOW, &r)
                    != TRL_OK || r.recovered)
                {
                    bad = 1;
                }
                if (!r.rejected) {
                    admitted[p * NKEYS + i]++;
                }
            }
            _exit(bad ? 3 : 0);
        }
    }
    for (p = 0; p < NPROC; p++) {
        ck_assert_int_eq(waitpid(pids[p], &status, 0), pids[p]);
        ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                      "child %d: status %d", p, status);
    }

    for (k = 0; k < NKEYS; k++) {
        uint64_t  sum = 0;

        for (p = 0; p < NPROC; p++) {
            sum += admitted[p * NKEYS + k];
        }
        ck_assert_msg(sum == LIMIT, "key %d: %llu admitted", k,
                      (unsigned long long) sum);
    }
    trl_zone_stats(zone, &st);
    ck_assert_uint_eq(st.passed, NKEYS * LIMIT);
    ck_assert_uint_eq(st.passed + st.rejected, NPROC * PER_PROC);
    ck_assert_uint_eq(st.recovered, 0);
    ck_assert_uint_eq(st.keys, NKEYS);

    unit_shm_free(admitted, sizeof(uint64_t) * NPROC * NKEYS);
    unit_shm_free(zone, size);
}
END_TEST


Suite *
zone_suite(void)
{
    Suite  *s;
    TCase  *tc;

    s = suite_create("zone");

    tc = unit_tcase(s, "layout", 20);
    tcase_add_test(tc, min_size_refused_below);
    tcase_add_test(tc, layout_within_block);
    tcase_add_test(tc, attach_checks);
    tcase_add_test(tc, attach_refuses_garbage);
    tcase_add_test(tc, capacity_of_1m);

    tc = unit_tcase(s, "stats", 10);
    tcase_add_test(tc, stats_counters);
    tcase_add_test(tc, log_first_and_suppressed);

    tc = unit_tcase(s, "eviction", 20);
    tcase_add_test(tc, eviction_keeps_blocked);
    tcase_add_test(tc, eviction_blocked_last);
    tcase_add_test(tc, eviction_limit_one_flood);
    tcase_add_test(tc, eviction_stale_blocked_first);
    tcase_add_test(tc, eviction_rate_lowered);
    tcase_add_test(tc, eviction_of_idle_not_counted);
    tcase_add_test(tc, eviction_lru);
    tcase_add_test(tc, eviction_report_interval);

    tc = unit_tcase(s, "processes", 30);
    tcase_add_test(tc, processes_share_zone);

    return s;
}
