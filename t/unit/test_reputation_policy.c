/*
 * test_reputation_policy.c - the policy-file twins of scale=,
 * penalty_level= and deny_score=: the same parsers, errors at
 * file:line:column, inherited from defaults:, cancelled by off.
 */

#include "unit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>


static char *
yaml_file(const char *text)
{
    char  *path = strdup("/tmp/trl_rep_policy_XXXXXX.yaml");
    int    fd;

    ck_assert_ptr_nonnull(path);
    fd = mkstemps(path, 5);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t) strlen(text));
    close(fd);
    return path;
}


/* The policy of that name in text (which must load), or the error
 * (which must fail) after its "path:" prefix to err. */
static int
load(const char *text, const char *name, trl_policy_t *p, char *err,
    size_t errlen)
{
    char              *path = yaml_file(text), e[1024];
    trl_policy_set_t  *set;
    size_t             plen = strlen(path);

    set = trl_policy_load(path, NULL, NULL, NULL, e, sizeof(e));
    unlink(path);
    free(path);
    if (set == NULL) {
        snprintf(err, errlen, "%s", e + plen + 1);
        return TRL_ERROR;
    }
    ck_assert_int_eq(trl_policy_find(set, name, strlen(name), p), TRL_OK);
    trl_policy_free(set);
    return TRL_OK;
}


START_TEST(policy_reputation_values)
{
    trl_policy_t  p;
    char          err[1024];

    ck_assert_int_eq(load("environments:\n"
                          "  e:\n"
                          "    login:\n"
                          "      rate: 10r/m\n"
                          "      key: $binary_remote_addr\n"
                          "      scale: \"tor:0.5,bad:0.2\"\n"
                          "      penalty_level: \"bad:3\"\n"
                          "      deny_score: 80\n",
                          "login", &p, err, sizeof(err)), TRL_OK);
    ck_assert_uint_eq(p.scale.n, 2);
    ck_assert_str_eq(p.scale.term[0].name, "tor");
    ck_assert_uint_eq(p.scale.term[0].value, 500);
    ck_assert_str_eq(p.scale.term[1].name, "bad");
    ck_assert_uint_eq(p.scale.term[1].value, 200);
    ck_assert_uint_eq(p.penalty_level.n, 1);
    ck_assert_str_eq(p.penalty_level.term[0].name, "bad");
    ck_assert_uint_eq(p.penalty_level.term[0].value, 3);
    ck_assert_uint_eq(p.deny_score, 80);

    /* none given: none */
    ck_assert_int_eq(load("environments:\n  e:\n    p: {rate: 1r/s, "
                          "key: $k}\n", "p", &p, err, sizeof(err)), TRL_OK);
    ck_assert_uint_eq(p.scale.n, 0);
    ck_assert_uint_eq(p.penalty_level.n, 0);
    ck_assert_uint_eq(p.deny_score, 0);

    /* from defaults, and cancelled by off */
    ck_assert_int_eq(load("defaults:\n"
                          "  scale: tor:0.5\n"
                          "  deny_score: 90\n"
                          "  penalty_level: bad:2\n"
                          "environments:\n"
                          "  e:\n"
                          "    a: {rate: 1r/s, key: $k}\n"
                          "    b: {rate: 1r/s, key: $k, scale: off,\n"
                          "        deny_score: off, penalty_level: off}\n",
                          "a", &p, err, sizeof(err)), TRL_OK);
    ck_assert_uint_eq(p.scale.n, 1);
    ck_assert_uint_eq(p.deny_score, 90);
    ck_assert_uint_eq(p.penalty_level.term[0].value, 2);
    ck_assert_int_eq(load("defaults:\n"
                          "  scale: tor:0.5\n"
                          "  deny_score: 90\n"
                          "  penalty_level: bad:2\n"
                          "environments:\n"
                          "  e:\n"
                          "    b: {rate: 1r/s, key: $k, scale: off,\n"
                          "        deny_score: off, penalty_level: off}\n",
                          "b", &p, err, sizeof(err)), TRL_OK);
    ck_assert_uint_eq(p.scale.n, 0);
    ck_assert_uint_eq(p.deny_score, 0);
    ck_assert_uint_eq(p.penalty_level.n, 0);
}
END_TEST


START_TEST(policy_reputation_errors)
{
    trl_policy_t  p;
    char          err[1024];

    ck_assert_int_eq(load("environments:\n"
                          "  e:\n"
                          "    login:\n"
                          "      rate: 10r/m\n"
                          "      key: $k\n"
                          "      scale: tor:0\n",
                          "login", &p, err, sizeof(err)), TRL_ERROR);
    ck_assert_msg(strncmp(err, "6:14: ", 6) == 0, "%s", err);
    ck_assert_msg(strstr(err, "bad value in the term \"tor:0\"; expected "
                         "LIST:FACTOR[,LIST:FACTOR...], FACTOR 0.001 to 100 "
                         "(e.g. tor:0.5,bad:0.2), or off") != NULL, "%s",
                  err);

    ck_assert_int_eq(load("environments:\n"
                          "  e:\n"
                          "    login: {rate: 10r/m, key: $k,\n"
                          "            penalty_level: \"bad:31\"}\n",
                          "login", &p, err, sizeof(err)), TRL_ERROR);
    ck_assert_msg(strncmp(err, "4:28: ", 6) == 0, "%s", err);
    ck_assert_msg(strstr(err, "LEVEL 1 to 30") != NULL, "%s", err);

    ck_assert_int_eq(load("defaults:\n"
                          "  deny_score: 101\n"
                          "environments:\n"
                          "  e: {}\n",
                          "login", &p, err, sizeof(err)), TRL_ERROR);
    ck_assert_msg(strncmp(err, "2:15: ", 6) == 0, "%s", err);
    ck_assert_msg(strstr(err, "expected a score of 1 to 100, or off")
                  != NULL, "%s", err);

    ck_assert_int_eq(load("environments:\n"
                          "  e:\n"
                          "    login: {rate: 10r/m, key: $k,\n"
                          "            scale: \"tor:0.5,tor:0.2\"}\n",
                          "login", &p, err, sizeof(err)), TRL_ERROR);
    ck_assert_msg(strstr(err, "the list \"tor\" is named twice") != NULL,
                  "%s", err);
}
END_TEST


Suite *
reputation_policy_suite(void)
{
    Suite  *s = suite_create("reputation_policy");
    TCase  *tc = unit_tcase(s, "policy", 10);

    tcase_add_test(tc, policy_reputation_values);
    tcase_add_test(tc, policy_reputation_errors);
    return s;
}
