/*
 * test_reputation_level.c - penalty_level=: a listed source's violations
 * start at a level, in the zone (local and async decisions) and in what
 * the strict script is sent.
 */

#include "unit.h"
#include "trl_scripts.h"

#include <stdio.h>
#include <string.h>


#define SEC  UINT64_C(1000)
#define T0   UINT64_C(5000000)


/* The first rejection of a key with penalty base 1 s, factor f, max 1 h,
 * at level: its block and violations. */
static void
first_block(unsigned level, double factor, uint64_t *block_ms,
    uint32_t *violations)
{
    size_t        size = 64 * 1024;
    trl_zone_t   *zone = unit_zone(size);
    trl_limit_t   l = unit_limit(1, 60 * SEC);
    trl_hash_t    key = unit_key(zone, "listed");
    trl_result_t  res;

    l.penalty.base_ms = SEC;
    l.penalty.factor = factor;
    l.penalty.max_ms = 3600 * SEC;
    l.penalty.forgive_ms = 3600 * SEC;
    l.penalty.level = level;

    ck_assert_int_eq(unit_acquire(zone, &key, &l, T0, &res), 1);
    ck_assert_int_eq(unit_acquire(zone, &key, &l, T0 + 1, &res), 0);
    ck_assert_uint_eq(res.penalty_start, 1);
    *block_ms = res.penalty_ms;
    *violations = res.violations;
    unit_shm_free(zone, size);
}


START_TEST(level_first_violation)
{
    uint64_t  ms;
    uint32_t  v;

    /* 0 and 1: as without a level */
    first_block(0, 2, &ms, &v);
    ck_assert_uint_eq(ms, SEC);
    ck_assert_uint_eq(v, 1);
    first_block(1, 2, &ms, &v);
    ck_assert_uint_eq(ms, SEC);
    ck_assert_uint_eq(v, 1);

    /* level 3: the first violation blocks base * factor^2 */
    first_block(3, 2, &ms, &v);
    ck_assert_uint_eq(ms, 4 * SEC);
    ck_assert_uint_eq(v, 3);
    first_block(3, 3, &ms, &v);
    ck_assert_uint_eq(ms, 9 * SEC);

    /* capped at max */
    first_block(30, 2, &ms, &v);
    ck_assert_uint_eq(ms, 3600 * SEC);
    ck_assert_uint_eq(v, 30);
}
END_TEST


/* Beyond the level, violations go on as usual: the level is a floor, not
 * a reset. */
START_TEST(level_is_a_floor)
{
    size_t        size = 64 * 1024;
    trl_zone_t   *zone = unit_zone(size);
    trl_limit_t   l = unit_limit(1, 60 * SEC);
    trl_hash_t    key = unit_key(zone, "again");
    trl_result_t  res;
    uint64_t      t = T0;

    l.penalty.base_ms = SEC;
    l.penalty.factor = 2;
    l.penalty.max_ms = 3600 * SEC;
    l.penalty.forgive_ms = 3600 * SEC;
    l.penalty.level = 2;

    ck_assert_int_eq(unit_acquire(zone, &key, &l, t, &res), 1);
    ck_assert_int_eq(unit_acquire(zone, &key, &l, t + 1, &res), 0);
    ck_assert_uint_eq(res.violations, 2);
    ck_assert_uint_eq(res.penalty_ms, 2 * SEC);
    /* after the block: the next violation is the third */
    t += 2 * SEC + 100;
    ck_assert_int_eq(unit_acquire(zone, &key, &l, t, &res), 0);
    ck_assert_uint_eq(res.penalty_start, 1);
    ck_assert_uint_eq(res.violations, 3);
    ck_assert_uint_eq(res.penalty_ms, 4 * SEC);
    unit_shm_free(zone, size);
}
END_TEST


START_TEST(level_sent_to_the_strict_script)
{
    static const trl_script_zone_t  zone = { 60000, 30, 0xab };
    trl_bytes_t     args[TRL_STRICT_ARGS];
    char            buf[TRL_STRICT_BUF];
    trl_argv_t      argv;
    trl_bytes_t     name = { "trl:{login:alice}", 17 };
    trl_penalty_t   penalty = { 60000, 3600000, 7200000, 2, 0 };
    const char     *script;

    trl_argv_init(&argv, args, TRL_STRICT_ARGS, buf, sizeof(buf));
    ck_assert_int_eq(trl_strict_encode(&zone, &penalty, 0, &name, &argv),
                     TRL_OK);
    ck_assert_uint_eq(argv.n, 9);
    ck_assert(args[8].len == 1 && memcmp(args[8].data, "1", 1) == 0);

    penalty.level = 30;
    trl_argv_init(&argv, args, TRL_STRICT_ARGS, buf, sizeof(buf));
    ck_assert_int_eq(trl_strict_encode(&zone, &penalty, 0, &name, &argv),
                     TRL_OK);
    ck_assert(args[8].len == 2 && memcmp(args[8].data, "30", 2) == 0);

    /* the script reads it, and floors the violations with it */
    script = trl_redis_script(TRL_SCRIPT_STRICT);
    ck_assert_ptr_nonnull(strstr(script, "local level = tonumber(ARGV[8])"));
    ck_assert_ptr_nonnull(strstr(script, "if pv < level then"));
}
END_TEST


Suite *
reputation_level_suite(void)
{
    Suite  *s = suite_create("reputation_level");
    TCase  *tc = unit_tcase(s, "level", 10);

    tcase_add_test(tc, level_first_violation);
    tcase_add_test(tc, level_is_a_floor);
    tcase_add_test(tc, level_sent_to_the_strict_script);
    return s;
}
