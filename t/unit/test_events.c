/*
 * test_events.c - the event log's rate limit (trl_zone_event_permit): at
 * most N lines a second per zone, whatever process asks, and every refused
 * line reported exactly once by the next permitted one.
 */

#include "unit.h"

#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>


#define SEC        1000ULL
#define T0         (1795382373ULL * SEC)     /* a Unix time, in ms */
#define ZONE_SIZE  (64 * 1024)


static int
permit(trl_zone_t *zone, uint64_t now_ms, uint32_t n, uint64_t *suppressed)
{
    *suppressed = UINT64_MAX;           /* must be written either way */
    return trl_zone_event_permit(zone, now_ms, n, suppressed);
}


START_TEST(events_per_second)
{
    trl_zone_t  *zone = unit_zone(ZONE_SIZE);
    uint64_t     s;
    int          i;

    /* a fresh zone: the first second starts with the first line */
    for (i = 0; i < 3; i++) {
        ck_assert_int_eq(permit(zone, T0 + (uint64_t) i * 100, 3, &s), 1);
        ck_assert_uint_eq(s, 0);
    }

    /* the rest of that second is refused, to its last millisecond */
    ck_assert_int_eq(permit(zone, T0 + 300, 3, &s), 0);
    ck_assert_int_eq(permit(zone, T0 + 999, 3, &s), 0);

    /* the next second: the first line takes the two refused */
    ck_assert_int_eq(permit(zone, T0 + 1000, 3, &s), 1);
    ck_assert_uint_eq(s, 2);
    ck_assert_int_eq(permit(zone, T0 + 1001, 3, &s), 1);
    ck_assert_uint_eq(s, 0);
    ck_assert_int_eq(permit(zone, T0 + 1002, 3, &s), 1);
    ck_assert_uint_eq(s, 0);
    ck_assert_int_eq(permit(zone, T0 + 1003, 3, &s), 0);

    /* seconds later: a full budget again, and the one refused reported */
    ck_assert_int_eq(permit(zone, T0 + 5500, 3, &s), 1);
    ck_assert_uint_eq(s, 1);

    /* rate 1 */
    ck_assert_int_eq(permit(zone, T0 + 9000, 1, &s), 1);
    ck_assert_uint_eq(s, 0);
    ck_assert_int_eq(permit(zone, T0 + 9999, 1, &s), 0);
    ck_assert_int_eq(permit(zone, T0 + 10000, 1, &s), 1);
    ck_assert_uint_eq(s, 1);

    unit_shm_free(zone, ZONE_SIZE);
}
END_TEST


/* The budget is counted at each call's own rate (a reload may change it). */
START_TEST(events_rate_change)
{
    trl_zone_t  *zone = unit_zone(ZONE_SIZE);
    uint64_t     s;
    int          i;

    for (i = 0; i < 5; i++) {
        ck_assert_int_eq(permit(zone, T0, 10, &s), 1);
    }
    /* lowered within the second: already spent */
    ck_assert_int_eq(permit(zone, T0 + 1, 5, &s), 0);
    /* raised: the rest of the new budget */
    for (i = 0; i < 5; i++) {
        ck_assert_int_eq(permit(zone, T0 + 2, 10, &s), 1);
    }
    ck_assert_int_eq(permit(zone, T0 + 3, 10, &s), 0);

    unit_shm_free(zone, ZONE_SIZE);
}
END_TEST


START_TEST(events_zero_and_cap)
{
    trl_zone_t  *zone = unit_zone(ZONE_SIZE);
    uint64_t     s, permitted;
    int          i;

    /* 0 refuses everything, counted as suppressed */
    for (i = 0; i < 7; i++) {
        ck_assert_int_eq(permit(zone, T0 + (uint64_t) i * SEC, 0, &s), 0);
    }
    ck_assert_int_eq(permit(zone, T0 + 10 * SEC, 2, &s), 1);
    ck_assert_uint_eq(s, 7);

    /* more than TRL_EVENT_MAX_RATE is that many */
    permitted = 0;
    for (i = 0; i < TRL_EVENT_MAX_RATE + 50; i++) {
        permitted += (uint64_t) permit(zone, T0 + 20 * SEC, UINT32_MAX, &s);
    }
    ck_assert_uint_eq(permitted, TRL_EVENT_MAX_RATE);
    ck_assert_int_eq(permit(zone, T0 + 21 * SEC, UINT32_MAX, &s), 1);
    ck_assert_uint_eq(s, 50);

    /* NULL suppressed is allowed; NULL zone refuses */
    ck_assert_int_eq(trl_zone_event_permit(zone, T0 + 22 * SEC, 1, NULL), 1);
    ck_assert_int_eq(trl_zone_event_permit(zone, T0 + 22 * SEC, 1, NULL), 0);
    ck_assert_int_eq(permit(zone, T0 + 23 * SEC, 1, &s), 1);
    ck_assert_uint_eq(s, 1);
    ck_assert_int_eq(trl_zone_event_permit(NULL, T0, 1, &s), 0);

    unit_shm_free(zone, ZONE_SIZE);
}
END_TEST



/*
 * The error log's budget (log_rate=) and the event log's are apart: one
 * spent leaves the other whole; each counts its refused lines in all,
 * across the exchanges that report them, and a zone laid out afresh
 * starts at 0.
 */

START_TEST(events_error_log_budget)
{
    trl_zone_t  *zone = unit_zone(ZONE_SIZE);
    uint64_t     s;
    int          i;

    ck_assert_uint_eq(trl_zone_lines_suppressed(zone, TRL_LINES_ERRORS), 0);
    ck_assert_uint_eq(trl_zone_lines_suppressed(zone, TRL_LINES_EVENTS), 0);

    for (i = 0; i < 5; i++) {
        ck_assert_int_eq(trl_zone_lines_permit(zone, TRL_LINES_ERRORS,
                                               T0 + 10, 5, &s), 1);
        ck_assert_uint_eq(s, 0);
    }

    for (i = 0; i < 812; i++) {
        ck_assert_int_eq(trl_zone_lines_permit(zone, TRL_LINES_ERRORS,
                                               T0 + 20, 5, &s), 0);
    }

    /* the event log's budget of that second is untouched */
    ck_assert_int_eq(permit(zone, T0 + 30, 1, &s), 1);
    ck_assert_uint_eq(s, 0);
    ck_assert_int_eq(permit(zone, T0 + 40, 1, &s), 0);

    ck_assert_uint_eq(trl_zone_lines_suppressed(zone, TRL_LINES_ERRORS),
                      812);
    ck_assert_uint_eq(trl_zone_lines_suppressed(zone, TRL_LINES_EVENTS), 1);

    /* the next second's first line reports the 812; the total stays */
    ck_assert_int_eq(trl_zone_lines_permit(zone, TRL_LINES_ERRORS,
                                           T0 + SEC, 5, &s), 1);
    ck_assert_uint_eq(s, 812);
    ck_assert_int_eq(trl_zone_lines_permit(zone, TRL_LINES_ERRORS,
                                           T0 + SEC, 5, &s), 1);
    ck_assert_uint_eq(s, 0);
    ck_assert_uint_eq(trl_zone_lines_suppressed(zone, TRL_LINES_ERRORS),
                      812);

    /* a log that does not exist refuses and counts nothing */
    ck_assert_int_eq(trl_zone_lines_permit(zone, TRL_LINES_LOGS, T0, 5, &s),
                     0);
    ck_assert_uint_eq(s, 0);
    ck_assert_int_eq(trl_zone_lines_permit(zone, -1, T0, 5, &s), 0);
    ck_assert_uint_eq(trl_zone_lines_suppressed(zone, TRL_LINES_LOGS), 0);
    ck_assert_uint_eq(trl_zone_lines_suppressed(NULL, TRL_LINES_ERRORS), 0);

    unit_shm_free(zone, ZONE_SIZE);

    /* a new zone in the same memory starts over */
    zone = unit_zone(ZONE_SIZE);
    ck_assert_uint_eq(trl_zone_lines_suppressed(zone, TRL_LINES_ERRORS), 0);
    unit_shm_free(zone, ZONE_SIZE);
}
END_TEST


/*
 * Workers' clocks differ by a little: a second before the one counted is
 * refused (its budget may be spent); a clock set back by more than 2 s
 * starts over instead of refusing until it has caught up.
 */
START_TEST(events_clock_behind)
{
    trl_zone_t  *zone = unit_zone(ZONE_SIZE);
    uint64_t     s;

    ck_assert_int_eq(permit(zone, T0 + 10 * SEC, 5, &s), 1);
    ck_assert_int_eq(permit(zone, T0 + 9 * SEC + 999, 5, &s), 0);
    ck_assert_int_eq(permit(zone, T0 + 8 * SEC, 5, &s), 0);
    ck_assert_int_eq(permit(zone, T0 + 10 * SEC + 1, 5, &s), 1);
    ck_assert_uint_eq(s, 2);

    /* set back by an hour */
    ck_assert_int_eq(permit(zone, T0 - 3600 * SEC, 5, &s), 1);
    ck_assert_uint_eq(s, 0);
    ck_assert_int_eq(permit(zone, T0 - 3600 * SEC + 1, 5, &s), 1);

    /* a tiny clock (tests): second 0 */
    unit_shm_free(zone, ZONE_SIZE);
    zone = unit_zone(ZONE_SIZE);
    ck_assert_int_eq(permit(zone, 0, 1, &s), 1);
    ck_assert_int_eq(permit(zone, 999, 1, &s), 0);
    ck_assert_int_eq(permit(zone, 1000, 1, &s), 1);
    ck_assert_uint_eq(s, 1);

    unit_shm_free(zone, ZONE_SIZE);
}
END_TEST


/* Each zone has its own budget; the words live where reserved ones were. */
START_TEST(events_per_zone)
{
    trl_zone_t   *a = unit_zone(ZONE_SIZE), *b = unit_zone(ZONE_SIZE);
    unit_root_t  *ra = unit_root(a);
    uint64_t      s;
    int           i;

    for (i = 0; i < 8; i++) {
        ck_assert_uint_eq(ra->reserved[i], 0);      /* a new zone: zeros */
    }

    for (i = 0; i < 4; i++) {
        ck_assert_int_eq(permit(a, T0, 4, &s), 1);
    }
    ck_assert_int_eq(permit(a, T0, 4, &s), 0);

    for (i = 0; i < 4; i++) {
        ck_assert_int_eq(permit(b, T0, 4, &s), 1);
    }
    ck_assert_int_eq(permit(b, T0, 4, &s), 0);
    ck_assert_int_eq(permit(b, T0, 4, &s), 0);

    /* the event log's words: its budget, and its refused total */
    ck_assert_uint_eq(ra->reserved[0], ((T0 / SEC) << 24) | 4);
    ck_assert_uint_eq(ra->reserved[1], 1);
    ck_assert_uint_eq(ra->reserved[4], 1);
    for (i = 2; i < 8; i++) {
        if (i != 4) {
            ck_assert_uint_eq(ra->reserved[i], 0);
        }
    }

    /* the error log's: its own budget and total */
    ck_assert_int_eq(trl_zone_lines_permit(a, TRL_LINES_ERRORS, T0, 1, &s),
                     1);
    ck_assert_int_eq(trl_zone_lines_permit(a, TRL_LINES_ERRORS, T0, 1, &s),
                     0);
    ck_assert_uint_eq(ra->reserved[2], ((T0 / SEC) << 24) | 1);
    ck_assert_uint_eq(ra->reserved[3], 1);
    ck_assert_uint_eq(ra->reserved[5], 1);
    ck_assert_uint_eq(ra->reserved[6], 0);
    ck_assert_uint_eq(ra->reserved[7], 0);

    ck_assert_int_eq(permit(a, T0 + SEC, 4, &s), 1);
    ck_assert_uint_eq(s, 1);
    ck_assert_int_eq(permit(b, T0 + SEC, 4, &s), 1);
    ck_assert_uint_eq(s, 2);

    /* a zone attached again (a reload) keeps its state */
    {
        char         err[128];
        trl_zone_t  *again = trl_zone_attach(a, ZONE_SIZE, err, sizeof(err));

        ck_assert_msg(again != NULL, "attach: %s", err);
        for (i = 0; i < 3; i++) {
            ck_assert_int_eq(permit(again, T0 + SEC, 4, &s), 1);
        }
        ck_assert_int_eq(permit(again, T0 + SEC, 4, &s), 0);
    }

    unit_shm_free(a, ZONE_SIZE);
    unit_shm_free(b, ZONE_SIZE);
}
END_TEST


/*
 * Many processes at the same instant: exactly N lines, and the refused
 * ones all reported, nearly all by the first line of the next second.
 */
START_TEST(events_processes_same_second)
{
    enum { NPROC = 8, PER_PROC = 20000, N = 1000 };
    trl_zone_t  *zone = unit_zone(ZONE_SIZE);
    uint64_t    *got = unit_shm(sizeof(uint64_t) * NPROC * 2);
    uint64_t     permitted = 0, reported = 0, s;
    pid_t        pids[NPROC];
    int          p, k, status;

    memset(got, 0, sizeof(uint64_t) * NPROC * 2);

    for (p = 0; p < NPROC; p++) {
        pids[p] = fork();
        ck_assert_int_ge(pids[p], 0);
        if (pids[p] == 0) {
            uint64_t  mine = 0, sup = 0, one;

            for (k = 0; k < PER_PROC; k++) {
                if (trl_zone_event_permit(zone, T0 + (uint64_t) (k % 1000),
                                          N, &one))
                {
                    mine++;
                    sup += one;
                }
            }
            got[p * 2] = mine;
            got[p * 2 + 1] = sup;
            _exit(0);
        }
    }
    for (p = 0; p < NPROC; p++) {
        ck_assert_int_eq(waitpid(pids[p], &status, 0), pids[p]);
        ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                      "child %d: status %d", p, status);
        permitted += got[p * 2];
        reported += got[p * 2 + 1];
    }

    ck_assert_uint_eq(permitted, N);

    /*
     * A refusal may land between the last permit and its taking of the
     * count (not one atomic step): the last permitted lines may report a
     * few; every refused line is reported exactly once all the same.
     */
    ck_assert_uint_le(reported, NPROC);
    ck_assert_int_eq(permit(zone, T0 + SEC, N, &s), 1);
    ck_assert_uint_eq(reported + s, (uint64_t) NPROC * PER_PROC - N);

    unit_shm_free(got, sizeof(uint64_t) * NPROC * 2);
    unit_shm_free(zone, ZONE_SIZE);
}
END_TEST


static uint64_t
wall_ms(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000;
}


/*
 * Many processes on the real clock for a while, each second crossed by
 * all of them: never more than N lines with a second's timestamp, and
 * permitted + reported == asked once the last refusals are collected.
 */
START_TEST(events_processes_real_clock)
{
    enum { NPROC = 8, N = 50, SECONDS = 8, RUN_MS = 1600 };
    trl_zone_t  *zone = unit_zone(ZONE_SIZE);
    uint64_t    *per_sec = unit_shm(sizeof(uint64_t) * SECONDS);
    uint64_t    *totals = unit_shm(sizeof(uint64_t) * 3);
    uint64_t     start, base, s, sum;
    pid_t        pids[NPROC];
    int          p, i, status;

    memset(per_sec, 0, sizeof(uint64_t) * SECONDS);
    memset(totals, 0, sizeof(uint64_t) * 3);

    start = wall_ms();
    base = start / 1000;

    for (p = 0; p < NPROC; p++) {
        pids[p] = fork();
        ck_assert_int_ge(pids[p], 0);
        if (pids[p] == 0) {
            uint64_t  now, one, asked = 0, ok = 0, sup = 0;

            while ((now = wall_ms()) < start + RUN_MS) {
                asked++;
                if (trl_zone_event_permit(zone, now, N, &one)) {
                    ok++;
                    sup += one;
                    if (now / 1000 - base < SECONDS) {
                        __atomic_add_fetch(&per_sec[now / 1000 - base], 1,
                                           __ATOMIC_RELAXED);
                    }
                }
            }
            __atomic_add_fetch(&totals[0], asked, __ATOMIC_RELAXED);
            __atomic_add_fetch(&totals[1], ok, __ATOMIC_RELAXED);
            __atomic_add_fetch(&totals[2], sup, __ATOMIC_RELAXED);
            _exit(0);
        }
    }
    for (p = 0; p < NPROC; p++) {
        ck_assert_int_eq(waitpid(pids[p], &status, 0), pids[p]);
        ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                      "child %d: status %d", p, status);
    }

    sum = 0;
    for (i = 0; i < SECONDS; i++) {
        ck_assert_msg(per_sec[i] <= N, "second %d: %llu lines", i,
                      (unsigned long long) per_sec[i]);
        sum += per_sec[i];
    }
    ck_assert_uint_eq(sum, totals[1]);
    /* the run spans at least one second boundary: two seconds' worth */
    ck_assert_uint_ge(totals[1], N + 1);
    ck_assert_uint_gt(totals[0], totals[1] * 10);

    /* the next second's first line reports whatever is left */
    ck_assert_int_eq(permit(zone, wall_ms() + 2 * SEC, N, &s), 1);
    ck_assert_uint_eq(totals[1] + totals[2] + s, totals[0]);

    unit_shm_free(per_sec, sizeof(uint64_t) * SECONDS);
    unit_shm_free(totals, sizeof(uint64_t) * 3);
    unit_shm_free(zone, ZONE_SIZE);
}
END_TEST


Suite *
events_suite(void)
{
    Suite  *s;
    TCase  *tc;

    s = suite_create("events");

    tc = unit_tcase(s, "budget", 10);
    tcase_add_test(tc, events_per_second);
    tcase_add_test(tc, events_rate_change);
    tcase_add_test(tc, events_zero_and_cap);
    tcase_add_test(tc, events_clock_behind);
    tcase_add_test(tc, events_per_zone);
    tcase_add_test(tc, events_error_log_budget);

    tc = unit_tcase(s, "processes", 30);
    tcase_add_test(tc, events_processes_same_second);
    tcase_add_test(tc, events_processes_real_clock);

    return s;
}
