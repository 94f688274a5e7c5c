/* test_active.c - active zones (trl_active.h): places held for their own
 * lifetime, the soonest expiry as Retry-After, settle, release (by id and
 * soonest first, never a place in flight, never below zero, never a
 * penalty), nonces that never merge, and an exact count against a
 * reference under random operations (seed printed). */

#include "unit.h"

#include <stdio.h>
#include <string.h>

#include "trl_active.h"


#define MAX_MS  60000               /* MAX: one unit is 1 ms */


static trl_zone_t *
azone(uint32_t n)
{
    char         err[256];
    size_t       size = 64 * 1024;
    void        *mem;
    trl_zone_t  *zone;

    mem = unit_shm(size);
    zone = trl_active_zone_create(mem, size, n, MAX_MS, err, sizeof(err));
    ck_assert(zone != NULL && trl_active_zone_max(zone) == MAX_MS);
    ck_assert_msg(zone != NULL, "create: %s", err);
    return zone;
}


static trl_limit_t
alimit(uint32_t n)
{
    trl_limit_t  l = unit_limit(n, MAX_MS);

    l.flags = TRL_DISTINCT_PROVISIONAL | TRL_DISTINCT_UNIQUE;
    return l;
}


/* an issuance at now: 1 admitted (its ticket in *ticket), 0 rejected */
static int
issue(trl_zone_t *zone, const trl_hash_t *k, const trl_limit_t *l,
    uint32_t nonce, uint64_t now, uint64_t *ticket, trl_result_t *out)
{
    trl_result_t  r;

    unit_eq(trl_distinct_acquire(zone, k, l, trl_active_nonce(nonce), now,
                                 &r), TRL_OK);
    if (ticket) {
        *ticket = r.ticket;
    }
    if (out) {
        *out = r;
    }
    return !r.rejected;
}


START_TEST(active_lifetimes_and_retry)
{
    trl_zone_t    *zone = azone(3);
    trl_limit_t    l = alimit(3);
    trl_hash_t     k = unit_key(zone, "alice");
    trl_result_t   r;
    uint64_t       t1, t2, t3;
    uint32_t       held;

    ck_assert(issue(zone, &k, &l, 1, 1000, &t1, NULL));
    ck_assert(issue(zone, &k, &l, 2, 1000, &t2, NULL));
    ck_assert(issue(zone, &k, &l, 3, 1000, &t3, &r));
    ck_assert_uint_eq(r.remaining, 0);

    /* in flight: held until admission + MAX */
    ck_assert(!issue(zone, &k, &l, 4, 2000, NULL, &r));
    ck_assert_uint_eq(r.retry_ms, 1000 + MAX_MS - 2000);

    unit_eq(trl_active_settle(zone, &k, &l, t1, 30000, 0, 1100, &held),
            TRL_OK);
    unit_eq(trl_active_settle(zone, &k, &l, t2, 2000, 0, 1100, &held),
            TRL_OK);
    unit_eq(trl_active_settle(zone, &k, &l, t3, 90000, 7, 1100, &held),
            TRL_OK);                        /* capped at MAX */
    ck_assert_uint_eq(held, 3);

    /* the soonest (t2, 1100 + 2000) is when the next one gets in */
    ck_assert(!issue(zone, &k, &l, 5, 2000, NULL, &r));
    ck_assert_uint_eq(r.retry_ms, 1100);
    ck_assert_uint_eq(r.reset_ms, 1100 + MAX_MS);
    ck_assert(!issue(zone, &k, &l, 5, 3099, NULL, &r));
    ck_assert_uint_eq(r.retry_ms, 1);
    ck_assert(issue(zone, &k, &l, 5, 3100, NULL, &r));

    /* a second settle of one ticket changes nothing */
    unit_eq(trl_active_settle(zone, &k, &l, t2, 50000, 0, 3200, &held),
            TRL_OK);
    ck_assert_uint_eq(held, 3);
}
END_TEST


START_TEST(active_release_rules)
{
    trl_zone_t          *zone = azone(3);
    trl_limit_t          l = alimit(3);
    trl_hash_t           k = unit_key(zone, "bob");
    trl_hash_t           nobody = unit_key(zone, "nobody");
    trl_active_place_t   p[4];
    uint64_t             t1, t2, t3;
    uint32_t             held, id = trl_active_id((const uint8_t *)
                                                  "0123456789abcdef",
                                                  "jti-1", 5);

    ck_assert(id != 0 && !(id & TRL_ACTIVE_NONCE));

    /* nothing held: nothing released, never below zero */
    unit_eq(trl_active_release(zone, &nobody, &l, 0, 1000, &held), 0);
    ck_assert_uint_eq(held, 0);

    ck_assert(issue(zone, &k, &l, 1, 1000, &t1, NULL));
    ck_assert(issue(zone, &k, &l, 2, 1000, &t2, NULL));
    ck_assert(issue(zone, &k, &l, 3, 1000, &t3, NULL));
    unit_eq(trl_active_settle(zone, &k, &l, t1, 40000, id, 1000, NULL),
            TRL_OK);
    unit_eq(trl_active_settle(zone, &k, &l, t2, 20000, 0, 1000, NULL),
            TRL_OK);

    /* t3 is in flight: a release never takes it */
    ck_assert_uint_eq(trl_active_places(zone, &k, &l, 1500, p, 4), 3);
    ck_assert(p[0].expires_ms == 21000 && p[0].id == 0 && !p[0].pending);
    ck_assert(p[1].expires_ms == 41000 && p[1].id == id && !p[1].pending);
    ck_assert(p[2].pending && p[2].id == 0);

    /* by id: exactly that token's place; an unknown id: none */
    unit_eq(trl_active_release(zone, &k, &l, id ^ 1, 1500, &held), 0);
    unit_eq(trl_active_release(zone, &k, &l, id, 1500, &held), 1);
    ck_assert_uint_eq(held, 2);
    ck_assert_uint_eq(trl_active_places(zone, &k, &l, 1500, p, 4), 2);
    ck_assert(p[0].expires_ms == 21000);

    /* without id: the settled place that expires first */
    unit_eq(trl_active_release(zone, &k, &l, 0, 1600, &held), 1);
    ck_assert_uint_eq(held, 1);
    unit_eq(trl_active_release(zone, &k, &l, 0, 1700, &held), 0);
    ck_assert_uint_eq(held, 1);             /* only the one in flight */

    /* settled with lifetime 0: given back at once */
    unit_eq(trl_active_settle(zone, &k, &l, t3, 0, 0, 1800, &held), TRL_OK);
    ck_assert_uint_eq(held, 0);
}
END_TEST


START_TEST(active_release_keeps_penalty)
{
    trl_zone_t    *zone = azone(1);
    trl_limit_t    l = alimit(1);
    trl_hash_t     k = unit_key(zone, "carol");
    trl_result_t   r;
    uint64_t       t;

    l.penalty.base_ms = 30000;
    l.penalty.factor = 2;
    l.penalty.max_ms = 60000;
    l.penalty.forgive_ms = 60000;

    ck_assert(issue(zone, &k, &l, 1, 1000, &t, NULL));
    unit_eq(trl_active_settle(zone, &k, &l, t, 50000, 0, 1000, NULL),
            TRL_OK);
    ck_assert(!issue(zone, &k, &l, 2, 2000, NULL, &r));
    ck_assert(r.penalty_start);

    /* the place goes back; the penalty stays */
    unit_eq(trl_active_release(zone, &k, &l, 0, 3000, NULL), 1);
    ck_assert(!issue(zone, &k, &l, 3, 3000, NULL, &r));
    ck_assert(r.penalized);
    ck_assert_uint_eq(r.retry_ms, 29000);
    ck_assert(issue(zone, &k, &l, 4, 32000, NULL, &r));
}
END_TEST


START_TEST(active_nonces_never_merge)
{
    trl_zone_t    *zone = azone(4);
    trl_limit_t    l = alimit(4);
    trl_hash_t     k = unit_key(zone, "dave");
    trl_result_t   r;
    int            i;

    /* one nonce four times: four places, then a rejection */
    for (i = 0; i < 4; i++) {
        ck_assert(issue(zone, &k, &l, 42, 1000 + i, NULL, &r));
        ck_assert_uint_eq(r.remaining, 3 - (uint32_t) i);
    }
    ck_assert(!issue(zone, &k, &l, 42, 1010, NULL, &r));
}
END_TEST


START_TEST(active_grammar)
{
    char      err[256];
    uint64_t  ms;

    unit_eq(trl_active_parse("on", 2, &ms, err, sizeof(err)), TRL_OK);
    ck_assert_uint_eq(ms, 0);
    unit_eq(trl_active_parse("1h30m", 5, &ms, err, sizeof(err)), TRL_OK);
    ck_assert_uint_eq(ms, 5400000);
    unit_eq(trl_active_parse("365d", 4, &ms, err, sizeof(err)), TRL_OK);
    unit_eq(trl_active_parse("366d", 4, &ms, err, sizeof(err)), TRL_ERROR);
    ck_assert(strstr(err, "at most 365d") != NULL);
    unit_eq(trl_active_parse("500ms", 5, &ms, err, sizeof(err)), TRL_ERROR);
    ck_assert(strstr(err, "at least 1s") != NULL);
    unit_eq(trl_active_parse("x", 1, &ms, err, sizeof(err)), TRL_ERROR);
    ck_assert(strstr(err, "expected on") != NULL);

    /* as upstreams answer: seconds, or a duration */
    unit_eq(trl_active_lifetime("3600", 4, &ms), TRL_OK);
    ck_assert_uint_eq(ms, 3600000);
    unit_eq(trl_active_lifetime("0", 1, &ms), TRL_OK);
    ck_assert_uint_eq(ms, 0);
    unit_eq(trl_active_lifetime("90s", 3, &ms), TRL_OK);
    ck_assert_uint_eq(ms, 90000);
    unit_eq(trl_active_lifetime("99999999999999999999", 20, &ms), TRL_OK);
    ck_assert_uint_eq(ms, 365ULL * 86400000);
    unit_eq(trl_active_lifetime("", 0, &ms), TRL_ERROR);
    unit_eq(trl_active_lifetime("abc", 3, &ms), TRL_ERROR);
    unit_eq(trl_active_lifetime("-5", 2, &ms), TRL_ERROR);
    unit_eq(trl_active_lifetime("3600 ", 5, &ms), TRL_ERROR);
}
END_TEST


/* a place of the reference model */
typedef struct {
    uint64_t  expires;
    uint64_t  ticket;
    uint32_t  id;
    int       pending;
} ref_place_t;

#define REF_PLACES  64


static uint32_t
ref_live(ref_place_t *p, size_t *n, uint64_t now)
{
    size_t  i, j = 0;

    for (i = 0; i < *n; i++) {
        if (p[i].expires > now) {
            p[j++] = p[i];
        }
    }
    *n = j;
    return (uint32_t) j;
}


START_TEST(active_exact_random)
{
    uint64_t      seed = 0xac7100 + (uint64_t) _i;
    unit_rng_t    rng = { seed };
    uint32_t      n = 1 + (uint32_t) (_i % 6), held;
    trl_zone_t   *zone = azone(n);
    trl_limit_t   l = alimit(n);
    trl_hash_t    k = unit_key(zone, "k");
    trl_result_t  r;
    ref_place_t   ref[REF_PLACES];
    size_t        nref = 0, i, step, best;
    uint64_t      now = 1000, ticket, life;
    uint32_t      id;
    int           rc;

    fprintf(stderr, "active_exact_random: seed %#llx N %u\n",
            (unsigned long long) seed, n);

    for (step = 0; step < 20000; step++) {
        now += unit_below(&rng, 300);
        ref_live(ref, &nref, now);
        uint64_t  op = unit_below(&rng, 10);

        if (op < 4) {                       /* an issuance */
            int ok = issue(zone, &k, &l, (uint32_t) unit_below(&rng, 4),
                           now, &ticket, &r);

            unit_check_msg(ok == (nref < n),
                           "seed %#llx step %zu: %s with %zu of %u held",
                           (unsigned long long) seed, step,
                           ok ? "admitted" : "rejected", nref, n);
            if (ok && nref < REF_PLACES) {
                ref[nref].expires = now + MAX_MS;
                ref[nref].ticket = ticket;
                ref[nref].id = 0;
                ref[nref].pending = 1;
                nref++;
            }

        } else if (op < 7) {                /* a request ends */
            for (i = 0; i < nref && !ref[i].pending; i++) { /* first */ }
            if (i == nref) {
                continue;
            }
            life = unit_below(&rng, 4) == 0 ? 0
                   : unit_below(&rng, MAX_MS + 5000);
            id = unit_below(&rng, 2) ? 1 + (uint32_t) unit_below(&rng, 5)
                                     : 0;
            unit_eq(trl_active_settle(zone, &k, &l, ref[i].ticket, life,
                                      id, now, &held), TRL_OK);
            if (life == 0) {
                ref[i] = ref[--nref];
            } else {
                ref[i].expires = now + (life < MAX_MS ? life : MAX_MS);
                ref[i].id = id;
                ref[i].pending = 0;
            }
            unit_eq(held, nref);

        } else {                            /* a revocation */
            id = unit_below(&rng, 2) ? 1 + (uint32_t) unit_below(&rng, 5)
                                     : 0;
            best = nref;
            for (i = 0; i < nref; i++) {
                if (ref[i].pending) {
                    continue;
                }
                if (id ? ref[i].id == id
                       : (best == nref || ref[i].expires < ref[best].expires))
                {
                    if (best == nref || !id) {
                        best = i;
                    }
                }
            }
            rc = trl_active_release(zone, &k, &l, id, now, &held);
            unit_check_msg(rc == (best < nref),
                           "seed %#llx step %zu: release %d, model %d",
                           (unsigned long long) seed, step, rc,
                           best < nref);
            if (best < nref) {
                ref[best] = ref[--nref];
            }
            unit_eq(held, nref);
        }
    }
}
END_TEST


Suite *
active_suite(void)
{
    Suite  *s = suite_create("active");
    TCase  *tc = unit_tcase(s, "places", 30);

    tcase_add_test(tc, active_lifetimes_and_retry);
    tcase_add_test(tc, active_release_rules);
    tcase_add_test(tc, active_release_keeps_penalty);
    tcase_add_test(tc, active_nonces_never_merge);
    tcase_add_test(tc, active_grammar);
    tcase_add_loop_test(tc, active_exact_random, 0, 8);
    return s;
}
