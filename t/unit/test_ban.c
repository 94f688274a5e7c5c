/*
 * test_ban.c - auto-ban and attack mode (issue 14): ban=COUNT:DURATION and
 * its policy-file twin ban: (one parser), the runtime lists' add of a ban
 * (never over an allow entry, never twice), token_ratelimit_attack's
 * parameters.
 */

#include "unit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>


#define LISTS_SIZE  (64 * 1024)
#define NOW         UINT64_C(1800000000000)


START_TEST(ban_values)
{
    trl_ban_t  b;
    char       err[512];

    ck_assert_int_eq(trl_ban_parse("3:24h", 5, &b, err, sizeof(err)), TRL_OK);
    ck_assert_uint_eq(b.count, 3);
    ck_assert_uint_eq(b.duration_ms, UINT64_C(86400000));
    ck_assert_int_eq(trl_ban_parse("1:1h30m", 7, &b, err, sizeof(err)),
                     TRL_OK);
    ck_assert_uint_eq(b.count, 1);
    ck_assert_uint_eq(b.duration_ms, UINT64_C(5400000));
    ck_assert_int_eq(trl_ban_parse("1000:2s", 7, &b, err, sizeof(err)),
                     TRL_OK);
    ck_assert_uint_eq(b.count, 1000);
    ck_assert_int_eq(trl_ban_parse("off", 3, &b, err, sizeof(err)), TRL_OK);
    ck_assert_uint_eq(b.count, 0);
    ck_assert_uint_eq(b.duration_ms, 0);

    ck_assert_int_eq(trl_ban_parse("0:1h", 4, &b, err, sizeof(err)),
                     TRL_ERROR);
    ck_assert_msg(strstr(err, "COUNT \"0\" is not a number of 1 to 1000")
                  != NULL, "%s", err);
    ck_assert_msg(strstr(err, "such as 3:24h") != NULL, "%s", err);
    ck_assert_int_eq(trl_ban_parse("1001:1h", 7, &b, err, sizeof(err)),
                     TRL_ERROR);
    ck_assert_int_eq(trl_ban_parse("99999999999999999999:1h", 23, &b, err,
                                   sizeof(err)), TRL_ERROR);
    ck_assert_int_eq(trl_ban_parse("x:1h", 4, &b, err, sizeof(err)),
                     TRL_ERROR);
    ck_assert_int_eq(trl_ban_parse("3:0s", 4, &b, err, sizeof(err)),
                     TRL_ERROR);
    ck_assert_msg(strstr(err, "DURATION \"0s\": expected a duration above 0")
                  != NULL, "%s", err);
    ck_assert_int_eq(trl_ban_parse("3:", 2, &b, err, sizeof(err)),
                     TRL_ERROR);
    ck_assert_int_eq(trl_ban_parse("3", 1, &b, err, sizeof(err)), TRL_ERROR);
    ck_assert_int_eq(trl_ban_parse(":1h", 3, &b, err, sizeof(err)),
                     TRL_ERROR);
    ck_assert_int_eq(trl_ban_parse("3:400d", 6, &b, err, sizeof(err)),
                     TRL_ERROR);
    ck_assert_int_eq(trl_ban_parse(NULL, 0, &b, err, sizeof(err)), TRL_ERROR);
}
END_TEST


static char *
yaml_file(const char *text)
{
    char  *path = strdup("/tmp/trl_ban_policy_XXXXXX.yaml");
    int    fd;

    ck_assert_ptr_nonnull(path);
    fd = mkstemps(path, 5);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t) strlen(text));
    close(fd);
    return path;
}


START_TEST(ban_policy)
{
    char              *path, err[1024];
    trl_policy_t       p;
    trl_policy_set_t  *set;

    path = yaml_file("defaults:\n"
                     "  key: $binary_remote_addr\n"
                     "  ban: 5:1h\n"
                     "environments:\n"
                     "  e:\n"
                     "    login: { rate: 10r/m, penalty: {base: 1m},"
                     " ban: \"3:24h\" }\n"
                     "    api: { rate: 10r/m }\n"
                     "    off: { rate: 10r/m, ban: off }\n");
    set = trl_policy_load(path, NULL, NULL, NULL, err, sizeof(err));
    unlink(path);
    free(path);
    ck_assert_msg(set != NULL, "%s", err);
    ck_assert_int_eq(trl_policy_find(set, "login", 5, &p), TRL_OK);
    ck_assert_uint_eq(p.ban.count, 3);
    ck_assert_uint_eq(p.ban.duration_ms, UINT64_C(86400000));
    ck_assert_int_eq(trl_policy_find(set, "api", 3, &p), TRL_OK);
    ck_assert_uint_eq(p.ban.count, 5);                  /* defaults */
    ck_assert_int_eq(trl_policy_find(set, "off", 3, &p), TRL_OK);
    ck_assert_uint_eq(p.ban.count, 0);
    trl_policy_free(set);

    /* the directive's parser, with the file's position */
    path = yaml_file("environments:\n"
                     "  e:\n"
                     "    login:\n"
                     "      rate: 10r/m\n"
                     "      key: $binary_remote_addr\n"
                     "      ban: 3:0s\n");
    set = trl_policy_load(path, NULL, NULL, NULL, err, sizeof(err));
    unlink(path);
    free(path);
    ck_assert_ptr_null(set);
    ck_assert_msg(strstr(err, ":6:12: ") != NULL
                  && strstr(err, "DURATION \"0s\"") != NULL, "%s", err);
}
END_TEST


static trl_list_entry_t
v4(int action, uint32_t a, int prefix)
{
    trl_list_entry_t  e;

    memset(&e, 0, sizeof(e));
    e.action = (uint8_t) action;
    e.family = 4;
    e.prefix = (uint8_t) prefix;
    e.addr[0] = (uint8_t) (a >> 24);
    e.addr[1] = (uint8_t) (a >> 16);
    e.addr[2] = (uint8_t) (a >> 8);
    e.addr[3] = (uint8_t) a;
    strcpy(e.origin, "auto_ban:login");
    return e;
}


START_TEST(ban_lists_add)
{
    void              *mem = aligned_alloc(64, LISTS_SIZE);
    trl_lists_t       *l = trl_lists_create(mem, LISTS_SIZE, NULL, 0);
    trl_list_entry_t   e, got[8];

    ck_assert_ptr_nonnull(l);

    /* added once, never twice */
    e = v4(TRL_LIST_DENY, 0xc0000207, 32);
    e.expires_ms = NOW + 1000;
    ck_assert_int_eq(trl_lists_add_ban(l, &e, NOW), TRL_OK);
    ck_assert_uint_ne(e.id, 0);
    e = v4(TRL_LIST_DENY, 0xc0000207, 32);
    ck_assert_int_eq(trl_lists_add_ban(l, &e, NOW), TRL_LIST_COVERED);
    ck_assert_uint_eq(trl_lists_get(l, got, 8, NOW), 1);
    ck_assert_str_eq(got[0].origin, "auto_ban:login");

    /* once that one expired: again */
    e = v4(TRL_LIST_DENY, 0xc0000207, 32);
    ck_assert_int_eq(trl_lists_add_ban(l, &e, NOW + 1000), TRL_OK);

    /* a deny of a wider range covers it; a narrower one does not */
    e = v4(TRL_LIST_DENY, 0xc6336400, 24);
    ck_assert_int_eq(trl_lists_add(l, &e, NOW), TRL_OK);
    e = v4(TRL_LIST_DENY, 0xc6336409, 32);
    ck_assert_int_eq(trl_lists_add_ban(l, &e, NOW), TRL_LIST_COVERED);
    e = v4(TRL_LIST_DENY, 0xc6336480, 25);
    ck_assert_int_eq(trl_lists_add_ban(l, &e, NOW), TRL_LIST_COVERED);
    e = v4(TRL_LIST_DENY, 0xc6336000, 20);
    ck_assert_int_eq(trl_lists_add_ban(l, &e, NOW), TRL_OK);

    /* an allow entry that overlaps, wider or narrower: never */
    e = v4(TRL_LIST_ALLOW, 0xcb007100, 24);
    ck_assert_int_eq(trl_lists_add(l, &e, NOW), TRL_OK);
    e = v4(TRL_LIST_DENY, 0xcb007101, 32);
    ck_assert_int_eq(trl_lists_add_ban(l, &e, NOW), TRL_LIST_COVERED);
    e = v4(TRL_LIST_DENY, 0xcb000000, 16);
    ck_assert_int_eq(trl_lists_add_ban(l, &e, NOW), TRL_LIST_COVERED);
    e = v4(TRL_LIST_DENY, 0xcb007201, 32);
    ck_assert_int_eq(trl_lists_add_ban(l, &e, NOW), TRL_OK);

    free(mem);
}
END_TEST


/* token_ratelimit_attack's parameters: the core's grammar */
START_TEST(attack_params)
{
    char          err[512];
    trl_attack_t  a;

    trl_attack_defaults(&a);
    ck_assert_uint_eq(a.rejected, 50);
    ck_assert_uint_eq(a.offenders, 0);
    ck_assert_uint_eq(a.min, 100);
    ck_assert_uint_eq(a.hold_ms, UINT64_C(300000));
    ck_assert_uint_eq(a.scale, 1000);
    ck_assert_uint_eq(a.status, 0);
    ck_assert_uint_eq(a.log, TRL_ATTACK_LOG_FULL);

#define P(t)  trl_attack_param(t, strlen(t), &a, err, sizeof(err))
    ck_assert_int_eq(P("rejected=60%"), TRL_OK);
    ck_assert_uint_eq(a.rejected, 60);
    ck_assert_int_eq(P("rejected=off"), TRL_OK);
    ck_assert_uint_eq(a.rejected, 0);
    ck_assert_int_eq(P("offenders=20/s"), TRL_OK);
    ck_assert_uint_eq(a.offenders, 20);
    ck_assert_int_eq(P("min=1/s"), TRL_OK);
    ck_assert_uint_eq(a.min, 1);
    ck_assert_int_eq(P("hold=1h30m"), TRL_OK);
    ck_assert_uint_eq(a.hold_ms, UINT64_C(5400000));
    ck_assert_int_eq(P("scale=0.5"), TRL_OK);
    ck_assert_uint_eq(a.scale, 500);
    ck_assert_int_eq(P("scale=.25"), TRL_OK);
    ck_assert_uint_eq(a.scale, 250);
    ck_assert_int_eq(P("scale=1"), TRL_OK);
    ck_assert_uint_eq(a.scale, 1000);
    ck_assert_int_eq(P("scale=0.001"), TRL_OK);
    ck_assert_uint_eq(a.scale, 1);
    ck_assert_int_eq(P("status=444"), TRL_OK);
    ck_assert_uint_eq(a.status, 444);
    ck_assert_int_eq(P("status=503"), TRL_OK);
    ck_assert_int_eq(P("log=summary"), TRL_OK);
    ck_assert_uint_eq(a.log, TRL_ATTACK_LOG_SUMMARY);

    /* bad values say what is accepted; a was left as it was */
    ck_assert_int_eq(P("rejected=0%"), TRL_ERROR);
    ck_assert_msg(strstr(err, "a share of 1% to 100%") != NULL, "%s", err);
    ck_assert_int_eq(P("rejected=101%"), TRL_ERROR);
    ck_assert_int_eq(P("rejected=50"), TRL_ERROR);
    ck_assert_int_eq(P("offenders=20"), TRL_ERROR);
    ck_assert_int_eq(P("offenders=1000001/s"), TRL_ERROR);
    ck_assert_int_eq(P("min=off"), TRL_ERROR);
    ck_assert_int_eq(P("min=0/s"), TRL_ERROR);
    ck_assert_int_eq(P("hold=0s"), TRL_ERROR);
    ck_assert_int_eq(P("hold=x"), TRL_ERROR);
    ck_assert_int_eq(P("scale=0"), TRL_ERROR);
    ck_assert_int_eq(P("scale=1.5"), TRL_ERROR);
    ck_assert_int_eq(P("scale=2"), TRL_ERROR);
    ck_assert_int_eq(P("scale=0.0001"), TRL_ERROR);
    ck_assert_int_eq(P("scale=."), TRL_ERROR);
    ck_assert_int_eq(P("scale="), TRL_ERROR);
    ck_assert_int_eq(P("status=200"), TRL_ERROR);
    ck_assert_msg(strstr(err, "400 to 599, or 444") != NULL, "%s", err);
    ck_assert_int_eq(P("status=600"), TRL_ERROR);
    ck_assert_int_eq(P("log=some"), TRL_ERROR);
    ck_assert_uint_eq(a.rejected, 0);
    ck_assert_uint_eq(a.scale, 1);
    ck_assert_uint_eq(a.status, 503);

    ck_assert_int_eq(P("speed=1"), TRL_ATTACK_UNKNOWN);
    ck_assert_int_eq(P("rejected"), TRL_ATTACK_UNKNOWN);
    ck_assert_int_eq(trl_attack_param(NULL, 0, &a, err, sizeof(err)),
                     TRL_ERROR);
#undef P
}
END_TEST


Suite *
ban_suite(void)
{
    Suite  *s = suite_create("ban");
    TCase  *tc = tcase_create("ban");

    tcase_add_test(tc, ban_values);
    tcase_add_test(tc, ban_policy);
    tcase_add_test(tc, ban_lists_add);
    tcase_add_test(tc, attack_params);
    suite_add_tcase(s, tc);
    return s;
}
