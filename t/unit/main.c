/*
 * main.c - runs every suite of the core's unit tests.
 *
 * Each test runs in a child process of its own (Check's default), so a
 * crash fails one test, not the run; CK_FORK=no in the environment runs
 * them in-process for a debugger.
 */

#include "unit.h"

#include <stdlib.h>


int
main(void)
{
    SRunner  *sr;
    int       failed;

    sr = srunner_create(rate_suite());
    srunner_add_suite(sr, siphash_suite());
    srunner_add_suite(sr, sha256_suite());
    srunner_add_suite(sr, window_suite());
    srunner_add_suite(sr, property_suite());
    srunner_add_suite(sr, zone_suite());
    srunner_add_suite(sr, recovery_suite());
    srunner_add_suite(sr, policy_suite());
    srunner_add_suite(sr, sync_suite());
    srunner_add_suite(sr, lease_suite());
    srunner_add_suite(sr, lists_suite());
    srunner_add_suite(sr, events_suite());
    srunner_add_suite(sr, retry_suite());
    srunner_add_suite(sr, cluster_suite());
    srunner_add_suite(sr, grammar_suite());
    srunner_add_suite(sr, scripts_suite());
    srunner_add_suite(sr, distinct_suite());
    srunner_add_suite(sr, active_suite());
    srunner_add_suite(sr, subject_suite());
    srunner_add_suite(sr, reputation_suite());
    srunner_add_suite(sr, reputation_parse_suite());
    srunner_add_suite(sr, reputation_level_suite());
    srunner_add_suite(sr, reputation_policy_suite());
    srunner_add_suite(sr, ban_suite());
    srunner_add_suite(sr, decisions_suite());

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);

    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
