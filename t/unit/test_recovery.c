/*
 * test_recovery.c - a stripe lock left held by a process that died (or by
 * an earlier process with this very pid) is taken over, and the stripe is
 * rebuilt from its entries with every count kept.
 *
 * No ABI call holds a lock, so a dead holder is simulated: a forked child
 * writes its pid into the lock words (the first uint32_t of each stripe,
 * found through the root) and exits.
 */

#include "unit.h"

#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>


#define SEC   1000ULL
#define MIN   (60 * SEC)
#define HOUR  (60 * MIN)

#define T0    (1ULL << 30)
#define ZONE_SIZE  (1024 * 1024)


static void
store_owner(unit_stripe_t *s, uint32_t pid)
{
    __atomic_store_n(&s->owner, pid, __ATOMIC_RELEASE);
}


/* In a child: take every stripe's lock word (or one), maybe scribble the
 * stripe's lists, and die. */
static void
die_holding(trl_zone_t *zone, int only, int scribble)
{
    pid_t  pid;
    int    status;

    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        unit_root_t  *r = unit_root(zone);
        uint32_t      i, b;

        trl_set_pid(getpid());
        for (i = 0; i < r->nstripes; i++) {
            unit_stripe_t  *s = unit_stripe(zone, i);

            if (only >= 0 && i != (uint32_t) only) {
                continue;
            }
            store_owner(s, (uint32_t) getpid());
            if (scribble) {
                /* an update cut short: lists and chains half-written */
                uint32_t  *heads = (uint32_t *) (void *) ((char *) zone
                                    + r->heads_off)
                                   + (size_t) i * r->per_stripe;

                s->free_head = 0x12345678;
                s->lru_head[0] = 0x0badf00d;
                s->lru_tail[0] = 7;
                s->lru_head[1] = 3;
                s->lru_tail[1] = 0xfffffff0;
                s->used = 999999;
                for (b = 0; b < r->per_stripe; b += 2) {
                    heads[b] = (b * 7919) % (r->nstripes * r->per_stripe);
                }
            }
        }
        _exit(0);
    }
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}


START_TEST(stripe_mirror_matches)
{
    trl_zone_t   *zone = unit_zone(ZONE_SIZE);
    unit_root_t  *r = unit_root(zone);
    uint32_t      i;

    ck_assert_uint_eq(unit_stripe_size(zone), UNIT_STRIPE_SIZE);
    ck_assert_uint_eq(r->stripes_off % 64, 0);
    for (i = 0; i < r->nstripes; i++) {
        unit_stripe_t  *s = unit_stripe(zone, i);

        ck_assert_uint_eq(s->owner, 0);              /* no lock held */
        ck_assert_uint_eq(s->used, 0);
    }
    /* a key in stripe i is counted in stripe i */
    for (i = 0; i < r->nstripes; i++) {
        trl_hash_t   key = unit_key_in_stripe(zone, i, 1);
        trl_limit_t  l = unit_limit(1, MIN);

        ck_assert(unit_acquire(zone, &key, &l, T0, NULL));
        ck_assert_uint_eq(unit_stripe(zone, i)->used, 1);
        ck_assert_uint_eq(unit_stripe(zone, i)->owner, 0);
    }
    unit_shm_free(zone, ZONE_SIZE);
}
END_TEST


START_TEST(dead_holder_taken_over)
{
    trl_zone_t       *zone = unit_zone(ZONE_SIZE);
    unit_root_t      *r = unit_root(zone);
    trl_limit_t       l = unit_limit(3, HOUR);
    trl_hash_t        full = unit_key(zone, "at-limit");
    trl_hash_t        some = unit_key(zone, "one-used");
    trl_zone_stats_t  st;
    trl_result_t      res;
    uint32_t          i, recovered = 0;
    int               k;

    for (k = 0; k < 3; k++) {
        ck_assert(unit_acquire(zone, &full, &l, T0, NULL));
    }
    ck_assert(unit_acquire(zone, &some, &l, T0, NULL));

    die_holding(zone, -1, 0);
    for (i = 0; i < r->nstripes; i++) {
        ck_assert_uint_ne(unit_stripe(zone, i)->owner, 0);
    }

    /* taken over, counts kept: the key at its limit stays rejected */
    ck_assert(!unit_acquire(zone, &full, &l, T0 + SEC, &res));
    ck_assert_uint_eq(res.recovered, 1);
    ck_assert_uint_eq(res.retry_ms, HOUR - SEC);
    recovered++;
    ck_assert(!unit_acquire(zone, &full, &l, T0 + SEC, &res));
    ck_assert_uint_eq(res.recovered, 0);

    ck_assert_int_eq(unit_peek(zone, &some, &l, T0 + SEC, &res), TRL_OK);
    recovered += res.recovered;
    ck_assert_uint_eq(res.remaining, 2);

    trl_zone_stats(zone, &st);
    ck_assert_uint_eq(st.recovered, recovered);
    ck_assert_uint_ge(st.recovered, 1);
    ck_assert_uint_eq(st.keys, 2);
    ck_assert_uint_eq(st.passed, 4);

    /* every other stripe is taken over once, on its first use */
    for (i = 0; i < r->nstripes; i++) {
        trl_hash_t  key = unit_key_in_stripe(zone, i, 42);
        int         first = unit_stripe(zone, i)->owner != 0;

        ck_assert(unit_acquire(zone, &key, &l, T0 + SEC, &res));
        ck_assert_uint_eq(res.recovered, first);
        ck_assert_uint_eq(unit_stripe(zone, i)->owner, 0);
        ck_assert(unit_acquire(zone, &key, &l, T0 + SEC, &res));
        ck_assert_uint_eq(res.recovered, 0);
    }
    trl_zone_stats(zone, &st);
    ck_assert_uint_eq(st.recovered, r->nstripes);
    ck_assert_uint_eq(st.keys, 2 + r->nstripes);

    /* and everything still works */
    ck_assert(!unit_acquire(zone, &full, &l, T0 + HOUR - 1, NULL));
    ck_assert(unit_acquire(zone, &full, &l, T0 + HOUR, NULL));
    unit_shm_free(zone, ZONE_SIZE);
}
END_TEST


/*
 * The holder died in the middle of an update: the stripe's lists, free
 * list and chain heads are garbage.  The rebuild trusts the entries only.
 */
START_TEST(dead_holder_mid_update)
{
    trl_zone_t       *zone = unit_zone(ZONE_SIZE);
    unit_root_t      *r = unit_root(zone);
    uint32_t          per = r->per_stripe, k;
    trl_limit_t       l = unit_limit(2, HOUR);
    trl_hash_t        blocked = unit_key_in_stripe(zone, 5, 0);
    trl_zone_stats_t  st;
    trl_result_t      res;

    ck_assert(unit_acquire(zone, &blocked, &l, T0, NULL));
    ck_assert(unit_acquire(zone, &blocked, &l, T0, NULL));
    for (k = 1; k < per / 2; k++) {
        trl_hash_t  key = unit_key_in_stripe(zone, 5, k);

        ck_assert(unit_acquire(zone, &key, &l, T0 + k, NULL));
    }

    die_holding(zone, 5, 1);

    ck_assert(!unit_acquire(zone, &blocked, &l, T0 + MIN, &res));
    ck_assert_uint_eq(res.recovered, 1);
    trl_zone_stats(zone, &st);
    ck_assert_uint_eq(st.keys, per / 2);
    ck_assert_uint_eq(st.recovered, 1);

    /* every key is found again with its count */
    for (k = 1; k < per / 2; k++) {
        trl_hash_t  key = unit_key_in_stripe(zone, 5, k);

        ck_assert_int_eq(unit_peek(zone, &key, &l, T0 + MIN, &res), TRL_OK);
        ck_assert_uint_eq(res.remaining, 1);
    }

    /* the free list and the LRU lists work: fill, overflow, evict; the
     * blocked key outlives the flood */
    for (k = 0; k < 5 * per; k++) {
        trl_hash_t  key = unit_key_in_stripe(zone, 5, 1000 + k);

        unit_check(unit_acquire(zone, &key, &l, T0 + MIN + k, &res));
        unit_check(res.recovered == 0);
    }
    trl_zone_stats(zone, &st);
    ck_assert_uint_eq(st.keys, per);
    ck_assert_uint_eq(st.evicted, 5 * per - (per - per / 2));
    ck_assert(!unit_acquire(zone, &blocked, &l, T0 + 2 * MIN, &res));
    ck_assert_int_eq(unit_peek(zone, &blocked, &l, T0 + 2 * MIN, &res),
                     TRL_OK);
    unit_shm_free(zone, ZONE_SIZE);
}
END_TEST


/* peek and release take a dead holder's lock over too. */
START_TEST(dead_holder_peek_release)
{
    trl_zone_t       *zone = unit_zone(ZONE_SIZE);
    trl_limit_t       l = unit_limit(2, HOUR);
    trl_hash_t        a = unit_key_in_stripe(zone, 1, 0);
    trl_hash_t        b = unit_key_in_stripe(zone, 2, 0);
    trl_zone_stats_t  st;
    trl_result_t      res;
    uint64_t          ticket;

    ck_assert(unit_acquire(zone, &a, &l, T0, NULL));
    ck_assert(unit_acquire(zone, &b, &l, T0, &res));
    ticket = res.ticket;
    ck_assert(unit_acquire(zone, &b, &l, T0, NULL));

    die_holding(zone, -1, 0);

    ck_assert_int_eq(unit_peek(zone, &a, &l, T0 + 1, &res), TRL_OK);
    ck_assert_uint_eq(res.recovered, 1);
    ck_assert_uint_eq(res.remaining, 1);

    ck_assert_int_eq(trl_zone_release(zone, &b, &l, ticket, T0 + 1), TRL_OK);
    ck_assert_uint_eq(unit_stripe(zone, 2)->owner, 0);
    ck_assert(unit_acquire(zone, &b, &l, T0 + 2, &res));
    ck_assert_uint_eq(res.recovered, 0);
    ck_assert(!unit_acquire(zone, &b, &l, T0 + 2, &res));

    trl_zone_stats(zone, &st);
    ck_assert_uint_eq(st.recovered, 2);
    unit_shm_free(zone, ZONE_SIZE);
}
END_TEST


/* A lock word holding the caller's own pid is a leftover (there is no
 * recursion): taken over at once. */
START_TEST(own_pid_left_over)
{
    trl_zone_t       *zone = unit_zone(ZONE_SIZE);
    trl_limit_t       l = unit_limit(1, HOUR);
    trl_hash_t        key = unit_key_in_stripe(zone, 3, 0);
    trl_zone_stats_t  st;
    trl_result_t      res;

    trl_set_pid(getpid());
    ck_assert(unit_acquire(zone, &key, &l, T0, NULL));

    store_owner(unit_stripe(zone, 3), (uint32_t) getpid());
    ck_assert(!unit_acquire(zone, &key, &l, T0 + 1, &res));
    ck_assert_uint_eq(res.recovered, 1);
    ck_assert_uint_eq(unit_stripe(zone, 3)->owner, 0);

    /* also under a pid set by trl_set_pid() (what a worker uses) */
    trl_set_pid(4242);
    store_owner(unit_stripe(zone, 3), 4242);
    ck_assert(!unit_acquire(zone, &key, &l, T0 + 2, &res));
    ck_assert_uint_eq(res.recovered, 1);
    trl_set_pid(getpid());

    trl_zone_stats(zone, &st);
    ck_assert_uint_eq(st.recovered, 2);
    ck_assert_uint_eq(st.rejected, 2);
    unit_shm_free(zone, ZONE_SIZE);
}
END_TEST


/* A live holder is waited for, never taken over. */
START_TEST(live_holder_waited_for)
{
    trl_zone_t       *zone = unit_zone(ZONE_SIZE);
    uint32_t         *released = unit_shm(4096);
    trl_limit_t       l = unit_limit(1, HOUR);
    trl_hash_t        key = unit_key_in_stripe(zone, 0, 0);
    trl_zone_stats_t  st;
    trl_result_t      res;
    int               fds[2], status;
    char              c;
    pid_t             pid;

    ck_assert(unit_acquire(zone, &key, &l, T0, NULL));
    ck_assert_int_eq(pipe(fds), 0);
    *released = 0;

    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        struct timespec  ts = { 0, 200 * 1000 * 1000 };

        store_owner(unit_stripe(zone, 0), (uint32_t) getpid());
        if (write(fds[1], "x", 1) != 1) {
            _exit(2);
        }
        nanosleep(&ts, NULL);
        __atomic_store_n(released, 1, __ATOMIC_RELEASE);
        store_owner(unit_stripe(zone, 0), 0);
        _exit(0);
    }
    ck_assert_int_eq(read(fds[0], &c, 1), 1);

    /* returns only once the holder has let go by itself */
    ck_assert(!unit_acquire(zone, &key, &l, T0 + 1, &res));
    ck_assert_uint_eq(__atomic_load_n(released, __ATOMIC_ACQUIRE), 1);
    ck_assert_uint_eq(res.recovered, 0);

    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    trl_zone_stats(zone, &st);
    ck_assert_uint_eq(st.recovered, 0);
    unit_shm_free(released, 4096);
    unit_shm_free(zone, ZONE_SIZE);
}
END_TEST


/* A holder killed by a signal, with the zone in real use. */
START_TEST(killed_holder)
{
    trl_zone_t       *zone = unit_zone(ZONE_SIZE);
    trl_limit_t       l = unit_limit(5, HOUR);
    trl_hash_t        key = unit_key(zone, "victim");
    trl_result_t      res;
    int               status, k;
    pid_t             pid;

    for (k = 0; k < 5; k++) {
        ck_assert(unit_acquire(zone, &key, &l, T0, NULL));
    }

    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        uint32_t  s = (uint32_t) (key.lo & (unit_root(zone)->nstripes - 1));

        trl_set_pid(getpid());
        store_owner(unit_stripe(zone, s), (uint32_t) getpid());
        for (;;) {
            pause();
        }
    }
    /* wait until the child holds it, then kill it */
    for (k = 0; k < 10000; k++) {
        uint32_t  s = (uint32_t) (key.lo & (unit_root(zone)->nstripes - 1));

        if (__atomic_load_n(&unit_stripe(zone, s)->owner, __ATOMIC_ACQUIRE)
            == (uint32_t) pid)
        {
            break;
        }
        usleep(1000);
    }
    ck_assert_int_eq(kill(pid, SIGKILL), 0);
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFSIGNALED(status));

    ck_assert(!unit_acquire(zone, &key, &l, T0 + 1, &res));
    ck_assert_uint_eq(res.recovered, 1);
    ck_assert_uint_eq(res.remaining, 0);
    unit_shm_free(zone, ZONE_SIZE);
}
END_TEST


Suite *
recovery_suite(void)
{
    Suite  *s;
    TCase  *tc;

    s = suite_create("recovery");

    tc = unit_tcase(s, "dead_holder", 20);
    tcase_add_test(tc, stripe_mirror_matches);
    tcase_add_test(tc, dead_holder_taken_over);
    tcase_add_test(tc, dead_holder_mid_update);
    tcase_add_test(tc, dead_holder_peek_release);
    tcase_add_test(tc, own_pid_left_over);
    tcase_add_test(tc, live_holder_waited_for);
    tcase_add_test(tc, killed_holder);

    return s;
}
