/* test_decisions.c - CrowdSec decisions: durations, never-banned ranges,
 * penalty ids, and the stream's memory of what each bouncer was sent. */

#include "unit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trl_decisions.h"


#define NOW  UINT64_C(1800000000000)        /* Unix ms */


static trl_decision_t
v4(uint64_t id, uint8_t a, uint8_t b, uint8_t c, uint8_t d, uint8_t prefix,
    uint64_t expires_ms)
{
    trl_decision_t  x;

    memset(&x, 0, sizeof(x));
    x.id = id;
    x.family = 4;
    x.prefix = prefix;
    x.addr[0] = a;
    x.addr[1] = b;
    x.addr[2] = c;
    x.addr[3] = d;
    x.expires_ms = expires_ms;
    strcpy(x.scenario, "login");
    return x;
}


/* the stream lives at the start of its memory: free(s) releases it */
static trl_stream_t *
stream_new(void)
{
    char           err[128];
    void          *mem;
    trl_stream_t  *s;

    mem = aligned_alloc(64, (trl_stream_size() + 63) / 64 * 64);
    ck_assert_ptr_nonnull(mem);
    s = trl_stream_create(mem, trl_stream_size(), err, sizeof(err));
    ck_assert_msg(s != NULL, "%s", err);
    return s;
}


typedef struct {
    trl_decision_t  fresh[TRL_STREAM_MAX];
    trl_decision_t  gone[TRL_STREAM_MAX];
    size_t          nnew, ndel, held;
} pull_t;


static void
pull(trl_stream_t *s, const char *who, int startup, trl_decision_t *cur,
    size_t n, pull_t *p, uint64_t now)
{
    ck_assert_int_eq(trl_stream_pull(s, who, strlen(who), startup, cur, n,
                                     p->fresh, &p->nnew, p->gone, &p->ndel,
                                     &p->held, now),
                     TRL_OK);
}


START_TEST(decisions_duration_as_go_prints_it)
{
    char  buf[32];

    ck_assert_uint_eq(trl_decision_duration(14398000, buf, sizeof(buf)), 8);
    ck_assert_str_eq(buf, "3h59m58s");
    trl_decision_duration(3540000, buf, sizeof(buf));
    ck_assert_str_eq(buf, "59m0s");
    trl_decision_duration(7999, buf, sizeof(buf));
    ck_assert_str_eq(buf, "7s");
    trl_decision_duration(0, buf, sizeof(buf));
    ck_assert_str_eq(buf, "0s");
    trl_decision_duration(-12500, buf, sizeof(buf));
    ck_assert_str_eq(buf, "-12s");
    trl_decision_duration(INT64_C(315360000000), buf, sizeof(buf));
    ck_assert_str_eq(buf, "87600h0m0s");
    ck_assert_uint_eq(trl_decision_duration(14398000, buf, 8), 0);
}
END_TEST


START_TEST(decisions_trusted_ranges_never_banned)
{
    trl_cidr_t      mine;
    trl_decision_t  d;

    d = v4(1, 203, 0, 113, 7, 32, 0);
    ck_assert_int_eq(trl_decision_trusted(&d, NULL, 0), 0);

    d = v4(1, 127, 0, 0, 1, 32, 0);
    ck_assert_int_eq(trl_decision_trusted(&d, NULL, 0), 1);
    d = v4(1, 10, 9, 8, 7, 32, 0);
    ck_assert_int_eq(trl_decision_trusted(&d, NULL, 0), 1);
    d = v4(1, 192, 168, 3, 0, 24, 0);
    ck_assert_int_eq(trl_decision_trusted(&d, NULL, 0), 1);

    /* a range that covers a trusted one overlaps it */
    d = v4(1, 8, 0, 0, 0, 4, 0);
    ck_assert_int_eq(trl_decision_trusted(&d, NULL, 0), 1);
    d = v4(1, 0, 0, 0, 0, 0, 0);
    ck_assert_int_eq(trl_decision_trusted(&d, NULL, 0), 1);

    /* configured ranges */
    ck_assert_int_eq(trl_cidr_parse("203.0.113.0/25", 14, &mine, NULL, 0),
                     TRL_OK);
    d = v4(1, 203, 0, 113, 7, 32, 0);
    ck_assert_int_eq(trl_decision_trusted(&d, &mine, 1), 1);
    d = v4(1, 203, 0, 113, 200, 32, 0);
    ck_assert_int_eq(trl_decision_trusted(&d, &mine, 1), 0);
    d = v4(1, 203, 0, 112, 0, 23, 0);
    ck_assert_int_eq(trl_decision_trusted(&d, &mine, 1), 1);

    /* the overlap alone (auto-ban's check): no built-in ranges there */
    ck_assert_int_eq(trl_cidr_overlaps(4, 32, d.addr, &mine, 1), 0);
    d = v4(1, 203, 0, 113, 127, 32, 0);
    ck_assert_int_eq(trl_cidr_overlaps(4, 32, d.addr, &mine, 1), 1);
    ck_assert_int_eq(trl_cidr_overlaps(6, 32, d.addr, &mine, 1), 0);
    d = v4(1, 127, 0, 0, 1, 32, 0);
    ck_assert_int_eq(trl_cidr_overlaps(4, 32, d.addr, &mine, 1), 0);
    ck_assert_int_eq(trl_cidr_overlaps(4, 32, d.addr, NULL, 0), 0);

    /* IPv6: loopback and ULA are, documentation space is not */
    memset(&d, 0, sizeof(d));
    d.family = 6;
    d.prefix = 128;
    d.addr[15] = 1;
    ck_assert_int_eq(trl_decision_trusted(&d, NULL, 0), 1);
    d.addr[0] = 0xfd;
    ck_assert_int_eq(trl_decision_trusted(&d, NULL, 0), 1);
    d.addr[0] = 0x20;
    d.addr[1] = 0x01;
    d.addr[2] = 0x0d;
    d.addr[3] = 0xb8;
    ck_assert_int_eq(trl_decision_trusted(&d, NULL, 0), 0);
}
END_TEST


START_TEST(decisions_cover_addresses_and_ranges)
{
    trl_cidr_t      c;
    trl_decision_t  d;

    d = v4(1, 198, 51, 100, 0, 24, 0);

    ck_assert_int_eq(trl_cidr_parse("198.51.100.9", 12, &c, NULL, 0),
                     TRL_OK);
    ck_assert_int_eq(trl_decision_covers(&d, &c), 1);
    ck_assert_int_eq(trl_cidr_parse("198.51.101.9", 12, &c, NULL, 0),
                     TRL_OK);
    ck_assert_int_eq(trl_decision_covers(&d, &c), 0);
    ck_assert_int_eq(trl_cidr_parse("198.51.100.128/25", 17, &c, NULL, 0),
                     TRL_OK);
    ck_assert_int_eq(trl_decision_covers(&d, &c), 1);

    /* a wider range is not held by a narrower decision */
    ck_assert_int_eq(trl_cidr_parse("198.51.0.0/16", 13, &c, NULL, 0),
                     TRL_OK);
    ck_assert_int_eq(trl_decision_covers(&d, &c), 0);

    d = v4(1, 203, 0, 113, 7, 32, 0);
    ck_assert_int_eq(trl_cidr_parse("203.0.113.7", 11, &c, NULL, 0),
                     TRL_OK);
    ck_assert_int_eq(trl_decision_covers(&d, &c), 1);
    ck_assert_int_eq(trl_cidr_parse("::1", 3, &c, NULL, 0), TRL_OK);
    ck_assert_int_eq(trl_decision_covers(&d, &c), 0);
}
END_TEST


START_TEST(decisions_penalty_ids_stable_and_js_safe)
{
    uint64_t  a, b, c;

    a = trl_decision_penalty_id("login", 5, "\xcb\x00\x71\x07", 4);
    b = trl_decision_penalty_id("login", 5, "\xcb\x00\x71\x07", 4);
    c = trl_decision_penalty_id("login", 5, "\xcb\x00\x71\x08", 4);

    ck_assert_uint_eq(a, b);
    ck_assert_uint_ne(a, c);
    ck_assert_uint_ne(a, trl_decision_penalty_id("logi", 4, "n\xcb\x00\x71"
                                                 "\x07", 5));
    ck_assert(a >= (UINT64_C(1) << 52) && a < (UINT64_C(1) << 53));
}
END_TEST


START_TEST(stream_new_then_nothing_then_deleted)
{
    pull_t          *p;
    trl_stream_t    *s;
    trl_decision_t   cur[3];

    s = stream_new();
    p = malloc(sizeof(pull_t));

    cur[0] = v4(30, 203, 0, 113, 7, 32, NOW + 3600000);
    cur[1] = v4(10, 198, 51, 100, 0, 24, 0);
    cur[2] = v4(20, 203, 0, 113, 50, 32, NOW + 600000);

    /* startup: everything, by id */
    pull(s, "key|ua-1", 1, cur, 3, p, NOW);
    ck_assert_uint_eq(p->nnew, 3);
    ck_assert_uint_eq(p->ndel, 0);
    ck_assert_uint_eq(p->fresh[0].id, 10);
    ck_assert_uint_eq(p->fresh[2].id, 30);

    /* the same again: nothing */
    pull(s, "key|ua-1", 0, cur, 3, p, NOW + 1000);
    ck_assert_uint_eq(p->nnew, 0);
    ck_assert_uint_eq(p->ndel, 0);

    /* 20 gone, 40 new */
    cur[0] = v4(30, 203, 0, 113, 7, 32, NOW + 3600000);
    cur[1] = v4(10, 198, 51, 100, 0, 24, 0);
    cur[2] = v4(40, 192, 0, 2, 1, 32, NOW + 60000);
    pull(s, "key|ua-1", 0, cur, 3, p, NOW + 2000);
    ck_assert_uint_eq(p->nnew, 1);
    ck_assert_uint_eq(p->fresh[0].id, 40);
    ck_assert_uint_eq(p->ndel, 1);
    ck_assert_uint_eq(p->gone[0].id, 20);
    ck_assert_uint_eq(p->gone[0].addr[3], 50);

    /* another bouncer starts from scratch; the first one is untouched */
    pull(s, "key|ua-2", 0, cur, 2, p, NOW + 3000);
    ck_assert_uint_eq(p->nnew, 2);
    pull(s, "key|ua-1", 0, cur, 3, p, NOW + 4000);
    ck_assert_uint_eq(p->nnew, 0);
    ck_assert_uint_eq(p->ndel, 0);

    free(p);
    free(s);
}
END_TEST


START_TEST(stream_extended_sent_again)
{
    pull_t          *p;
    trl_stream_t    *s;
    trl_decision_t   cur[1];

    s = stream_new();
    p = malloc(sizeof(pull_t));

    cur[0] = v4(7, 203, 0, 113, 7, 32, NOW + 60000);
    pull(s, "b", 1, cur, 1, p, NOW);
    ck_assert_uint_eq(p->nnew, 1);

    /* the same expiry give or take a second: not again */
    cur[0].expires_ms = NOW + 60900;
    pull(s, "b", 0, cur, 1, p, NOW + 100);
    ck_assert_uint_eq(p->nnew, 0);

    /* a longer penalty: again, with its new expiry */
    cur[0].expires_ms = NOW + 600000;
    pull(s, "b", 0, cur, 1, p, NOW + 200);
    ck_assert_uint_eq(p->nnew, 1);
    ck_assert_uint_eq(p->fresh[0].expires_ms, NOW + 600000);
    pull(s, "b", 0, cur, 1, p, NOW + 300);
    ck_assert_uint_eq(p->nnew, 0);

    free(p);
    free(s);
}
END_TEST


START_TEST(stream_bounded)
{
    size_t           i;
    pull_t          *p;
    trl_stream_t    *s;
    trl_decision_t  *cur;
    char             who[16];
    trl_stream_bouncer_t  b[TRL_STREAM_BOUNCERS + 1];

    s = stream_new();
    p = malloc(sizeof(pull_t));
    cur = malloc((TRL_STREAM_MAX + 10) * sizeof(trl_decision_t));

    for (i = 0; i < TRL_STREAM_MAX + 10; i++) {
        cur[i] = v4(i + 1, 203, 0, (uint8_t) (i >> 8), (uint8_t) i, 32, 0);
    }

    /* past TRL_STREAM_MAX: held back until room is made */
    pull(s, "b", 1, cur, TRL_STREAM_MAX + 10, p, NOW);
    ck_assert_uint_eq(p->nnew, TRL_STREAM_MAX);
    ck_assert_uint_eq(p->held, 10);

    pull(s, "b", 0, cur + 10, TRL_STREAM_MAX, p, NOW + 1);
    ck_assert_uint_eq(p->ndel, 10);
    ck_assert_uint_eq(p->nnew, 10);
    ck_assert_uint_eq(p->held, 0);

    /* more bouncers than places: the least recent one is forgotten */
    for (i = 0; i < TRL_STREAM_BOUNCERS; i++) {
        snprintf(who, sizeof(who), "other-%zu", i);
        pull(s, who, 1, cur, 1, p, NOW + 10 + i);
    }

    ck_assert_uint_eq(trl_stream_bouncers(s, b, TRL_STREAM_BOUNCERS + 1),
                      TRL_STREAM_BOUNCERS);
    ck_assert_uint_eq(b[0].last_ms, NOW + 10 + TRL_STREAM_BOUNCERS - 1);

    /* "b" was the least recent: it starts again, everything new */
    pull(s, "b", 0, cur, 3, p, NOW + 100);
    ck_assert_uint_eq(p->nnew, 3);
    ck_assert_uint_eq(p->ndel, 0);

    free(cur);
    free(p);
    free(s);
}
END_TEST


START_TEST(stream_attach_checks_layout)
{
    char           err[128];
    void          *mem;

    mem = calloc(1, trl_stream_size());
    ck_assert_ptr_null(trl_stream_attach(mem, trl_stream_size(), err,
                                         sizeof(err)));
    ck_assert_ptr_nonnull(trl_stream_create(mem, trl_stream_size(), err,
                                            sizeof(err)));
    ck_assert_ptr_nonnull(trl_stream_attach(mem, trl_stream_size(), err,
                                            sizeof(err)));
    ck_assert_ptr_null(trl_stream_create(mem, 64, err, sizeof(err)));
    free(mem);
}
END_TEST


Suite *
decisions_suite(void)
{
    Suite  *s;
    TCase  *tc;

    s = suite_create("decisions");

    tc = unit_tcase(s, "decisions", 10);
    tcase_add_test(tc, decisions_duration_as_go_prints_it);
    tcase_add_test(tc, decisions_trusted_ranges_never_banned);
    tcase_add_test(tc, decisions_cover_addresses_and_ranges);
    tcase_add_test(tc, decisions_penalty_ids_stable_and_js_safe);

    tc = unit_tcase(s, "stream", 30);
    tcase_add_test(tc, stream_new_then_nothing_then_deleted);
    tcase_add_test(tc, stream_extended_sent_again);
    tcase_add_test(tc, stream_bounded);
    tcase_add_test(tc, stream_attach_checks_layout);

    return s;
}
