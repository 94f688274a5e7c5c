/*
 * test_grammar.c - what token_ratelimit penalty=, warn= and count=, and
 * token_ratelimit_zone sync= and its size take, parsed by the same core
 * functions as the policy files' penalty:, warn:, count:, sync: and
 * zone_size: (trl_penalty_parse, trl_warn_parse, trl_count_parse,
 * trl_sync_parse, trl_size_parse): accepted texts, defaults, and a reason
 * naming what is accepted for every refusal.
 */

#include "unit.h"

#include <string.h>


#define SEC   1000ULL
#define MIN   (60 * SEC)
#define HOUR  (60 * MIN)
#define DAY   (24 * HOUR)


static const struct {
    const char  *text;
    uint64_t     base, max, forgive;
    double       factor;
} penalties_ok[] = {
    { "30s", 30 * SEC, HOUR, HOUR, 2 },
    { "30s:3", 30 * SEC, HOUR, HOUR, 3 },
    { "500ms:1.5", 500, HOUR, HOUR, 1.5 },
    { "1m:2:1h:1d", MIN, HOUR, DAY, 2 },
    { "2h", 2 * HOUR, 2 * HOUR, 2 * HOUR, 2 },      /* max: base above 1h */
    { "2h:2:3h", 2 * HOUR, 3 * HOUR, 3 * HOUR, 2 },
    { "1m30s:1000:365d:5m", 90 * SEC, 365 * DAY, 5 * MIN, 1000 },
    { "1s:1:1s", SEC, SEC, SEC, 1 },
};

static const struct {
    const char  *text;
    const char  *reason;
} penalties_bad[] = {
    { "", "BASE is empty" },
    { "abc", "BASE \"abc\": expected <N><unit>" },
    { "0s", "BASE \"0s\": expected a duration above 0" },
    { "1w", "BASE \"1w\"" },                /* ms..d, as policy files */
    { "1s:0.5", "FACTOR \"0.5\": the factor must be at least 1" },
    { "1s:1001", "at most 1000" },
    { "1s:2.", "FACTOR \"2.\"" },
    { "1s:.5", "FACTOR \".5\"" },
    { "1s:", "FACTOR is empty" },
    { "1s::1h", "FACTOR is empty" },
    { "10s:2:5s", "MAX is below BASE" },
    { "1s:2:0s", "MAX \"0s\"" },
    { "1s:2:1h:0s", "FORGIVE \"0s\"" },
    { "1s:2:1h:", "FORGIVE is empty" },
    { "1s:2:1h:1h:", "too many parts" },
    { "1s:2:1h:1h:9", "too many parts" },
    { ":2", "BASE is empty" },
};


/* the modes' keywords, in any case; bad: NULL */
static const struct {
    int          sync;          /* 0: count, 1: sync */
    const char  *text;
    uint32_t     mode;
    const char  *bad;
} modes[] = {
    { 0, "all", TRL_COUNT_ALL, NULL },
    { 0, "failed", TRL_COUNT_FAILED, NULL },
    { 0, "succeeded", TRL_COUNT_SUCCEEDED, NULL },
    { 0, "FAILED", TRL_COUNT_FAILED, NULL },
    { 0, "Succeeded", TRL_COUNT_SUCCEEDED, NULL },
    { 0, "", 0, "expected all, failed or succeeded" },
    { 0, "al", 0, "expected all, failed or succeeded" },
    { 0, "all ", 0, "expected all, failed or succeeded" },
    { 0, "failedx", 0, "expected all, failed or succeeded" },
    { 0, "off", 0, "expected all, failed or succeeded" },
    { 1, "off", TRL_SYNC_MODE_OFF, NULL },
    { 1, "async", TRL_SYNC_MODE_ASYNC, NULL },
    { 1, "strict", TRL_SYNC_MODE_STRICT, NULL },
    { 1, "STRICT", TRL_SYNC_MODE_STRICT, NULL },
    { 1, "Async", TRL_SYNC_MODE_ASYNC, NULL },
    { 1, "", 0, "expected off, async or strict" },
    { 1, "on", 0, "expected off, async or strict" },
    { 1, "sync", 0, "expected off, async or strict" },
    { 1, "strictly", 0, "expected off, async or strict" },
    { 1, "all", 0, "expected off, async or strict" },
};


START_TEST(mode_keywords)
{
    int        rc;
    char       err[128];
    uint32_t   mode = 99;
    const char  *t = modes[_i].text;

    err[0] = '\0';
    rc = modes[_i].sync
         ? trl_sync_parse(t, strlen(t), &mode, err, sizeof(err))
         : trl_count_parse(t, strlen(t), &mode, err, sizeof(err));

    if (modes[_i].bad == NULL) {
        ck_assert_msg(rc == TRL_OK, "\"%s\" refused: %s", t, err);
        ck_assert_uint_eq(mode, modes[_i].mode);
    } else {
        ck_assert_msg(rc == TRL_ERROR, "\"%s\" accepted", t);
        ck_assert_str_eq(err, modes[_i].bad);
        ck_assert_uint_eq(mode, 99);            /* untouched */
    }
}
END_TEST


/* log_rate= / log_rate: and log_key= / log_key: */
#define LOG_RATE_EXPECTED \
    "expected the error log lines a second per zone, 1 to 100000, or off"

static const struct {
    int          key;           /* 1: log_key, 0: log_rate */
    const char  *text;
    uint32_t     value;
    const char  *bad;
} log_values[] = {
    { 0, "1", 1, NULL },
    { 0, "5", 5, NULL },
    { 0, "100000", 100000, NULL },
    { 0, "off", TRL_LOG_RATE_OFF, NULL },
    { 0, "OFF", TRL_LOG_RATE_OFF, NULL },
    { 0, "0", 0, LOG_RATE_EXPECTED },
    { 0, "100001", 0, LOG_RATE_EXPECTED },
    { 0, "99999999999999999999", 0, LOG_RATE_EXPECTED },
    { 0, "", 0, LOG_RATE_EXPECTED },
    { 0, "-1", 0, LOG_RATE_EXPECTED },
    { 0, "5/s", 0, LOG_RATE_EXPECTED },
    { 0, "on", 0, LOG_RATE_EXPECTED },
    { 1, "on", TRL_LOG_KEY_ON, NULL },
    { 1, "off", TRL_LOG_KEY_OFF, NULL },
    { 1, "hash", TRL_LOG_KEY_HASH, NULL },
    { 1, "Mask", TRL_LOG_KEY_MASK, NULL },
    { 1, "", 0, "expected on, off, hash or mask" },
    { 1, "hashed", 0, "expected on, off, hash or mask" },
    { 1, "yes", 0, "expected on, off, hash or mask" },
};


START_TEST(log_keywords)
{
    int          rc;
    char         err[128];
    uint32_t     v = 99;
    const char  *t = log_values[_i].text;

    err[0] = '\0';
    rc = log_values[_i].key
         ? trl_log_key_parse(t, strlen(t), &v, err, sizeof(err))
         : trl_log_rate_parse(t, strlen(t), &v, err, sizeof(err));

    if (log_values[_i].bad == NULL) {
        ck_assert_msg(rc == TRL_OK, "\"%s\" refused: %s", t, err);
        ck_assert_uint_eq(v, log_values[_i].value);
    } else {
        ck_assert_msg(rc == TRL_ERROR, "\"%s\" accepted", t);
        ck_assert_str_eq(err, log_values[_i].bad);
        ck_assert_uint_eq(v, 99);               /* untouched */
    }
}
END_TEST


/* sizes: the zone's (token_ratelimit_zone zone=name:SIZE, zone_size:) */
static const struct {
    const char  *text;
    uint64_t     bytes;         /* 0: refused */
    const char  *bad;
} sizes[] = {
    { "512", 512, NULL },
    { "32k", 32 * 1024, NULL },
    { "32K", 32 * 1024, NULL },
    { "10m", 10 * 1024 * 1024, NULL },
    { "10M", 10 * 1024 * 1024, NULL },
    { "1g", 1024ULL * 1024 * 1024, NULL },
    { "", 0, "expected a size in bytes or with a k, m or g suffix" },
    { "10mb", 0, "expected a size in bytes or with a k, m or g suffix" },
    { "1.5m", 0, "expected a size in bytes or with a k, m or g suffix" },
    { "m", 0, "expected a size in bytes or with a k, m or g suffix" },
    { "-1m", 0, "expected a size in bytes or with a k, m or g suffix" },
    { "99999999999999999999", 0, "the size is too large" },
    { "99999999999999g", 0, "the size is too large" },
};


START_TEST(size_values)
{
    int        rc;
    char       err[128];
    uint64_t   bytes = 0;
    const char  *t = sizes[_i].text;

    rc = trl_size_parse(t, strlen(t), &bytes, err, sizeof(err));

    if (sizes[_i].bad == NULL) {
        ck_assert_msg(rc == TRL_OK, "\"%s\" refused: %s", t, err);
        ck_assert_uint_eq(bytes, sizes[_i].bytes);
    } else {
        ck_assert_msg(rc == TRL_ERROR, "\"%s\" accepted", t);
        ck_assert_msg(strstr(err, sizes[_i].bad) != NULL, "\"%s\": %s", t,
                      err);
    }
}
END_TEST


/* a NULL text is refused by every parser, with a reason */
START_TEST(null_texts)
{
    char           err[512];
    uint32_t       u32, percent;
    uint64_t       u64;
    trl_rate_t     rate;
    trl_penalty_t  penalty;

    ck_assert_int_eq(trl_count_parse(NULL, 0, &u32, err, sizeof(err)),
                     TRL_ERROR);
    ck_assert_str_eq(err, "no count mode");
    ck_assert_int_eq(trl_sync_parse(NULL, 0, &u32, err, sizeof(err)),
                     TRL_ERROR);
    ck_assert_str_eq(err, "no sync mode");
    ck_assert_int_eq(trl_size_parse(NULL, 0, &u64, err, sizeof(err)),
                     TRL_ERROR);
    ck_assert_str_eq(err, "no size");
    ck_assert_int_eq(trl_duration_parse(NULL, 0, &u64, err, sizeof(err)),
                     TRL_ERROR);
    ck_assert_str_eq(err, "no duration");
    ck_assert_int_eq(trl_penalty_parse(NULL, 0, &penalty, err, sizeof(err)),
                     TRL_ERROR);
    ck_assert_str_eq(err, "no penalty");
    ck_assert_int_eq(trl_warn_parse(NULL, 0, &u32, &percent, err,
                                    sizeof(err)), TRL_ERROR);
    ck_assert_str_eq(err, "no threshold");
    ck_assert_int_eq(trl_rate_parse("", 0, &rate, err, sizeof(err)),
                     TRL_ERROR);
    ck_assert_ptr_nonnull(strstr(err, "20r/15m"));

    /* a short err is cut, NUL-terminated */
    ck_assert_int_eq(trl_sync_parse("on", 2, &u32, err, 9), TRL_ERROR);
    ck_assert_str_eq(err, "expected");
}
END_TEST


START_TEST(penalty_accepted)
{
    char           err[256];
    trl_penalty_t  p;
    const char    *t = penalties_ok[_i].text;

    ck_assert_msg(trl_penalty_parse(t, strlen(t), &p, err, sizeof(err))
                  == TRL_OK, "\"%s\" refused: %s", t, err);
    ck_assert_uint_eq(p.base_ms, penalties_ok[_i].base);
    ck_assert_uint_eq(p.max_ms, penalties_ok[_i].max);
    ck_assert_uint_eq(p.forgive_ms, penalties_ok[_i].forgive);
    ck_assert_msg(p.factor == penalties_ok[_i].factor, "\"%s\": factor %g",
                  t, p.factor);
}
END_TEST


START_TEST(penalty_refused)
{
    char           err[512];
    trl_penalty_t  p;
    const char    *t = penalties_bad[_i].text;

    ck_assert_msg(trl_penalty_parse(t, strlen(t), &p, err, sizeof(err))
                  == TRL_ERROR, "\"%s\" accepted", t);
    ck_assert_msg(strstr(err, penalties_bad[_i].reason) != NULL,
                  "\"%s\": \"%s\" lacks \"%s\"", t, err,
                  penalties_bad[_i].reason);
    /* and says what is accepted */
    ck_assert_msg(strstr(err, "BASE[:FACTOR[:MAX[:FORGIVE]]] such as "
                              "30s:2:1h:24h") != NULL, "\"%s\": %s", t, err);
}
END_TEST


START_TEST(warn_values)
{
    char      err[256];
    uint32_t  count, percent;

#define W(s) s, sizeof(s) - 1

    ck_assert_int_eq(trl_warn_parse(W("8"), &count, &percent, err,
                                    sizeof(err)), TRL_OK);
    ck_assert_uint_eq(count, 8);
    ck_assert_uint_eq(percent, 0);
    ck_assert_int_eq(trl_warn_parse(W("80%"), &count, &percent, err,
                                    sizeof(err)), TRL_OK);
    ck_assert_uint_eq(count, 0);
    ck_assert_uint_eq(percent, 80);
    ck_assert_int_eq(trl_warn_parse(W("100%"), &count, &percent, err,
                                    sizeof(err)), TRL_OK);
    ck_assert_int_eq(trl_warn_parse(W("off"), &count, &percent, err,
                                    sizeof(err)), TRL_OK);
    ck_assert_uint_eq(count + percent, 0);
    /* beyond any N: kept, for the caller to say it is above its N */
    ck_assert_int_eq(trl_warn_parse(W("99999999999"), &count, &percent, err,
                                    sizeof(err)), TRL_OK);
    ck_assert_uint_eq(count, UINT32_MAX);

    static const char *const bad[] = {
        "0", "0%", "101%", "8.5%", "%", "", "-1", "1.5", "80 %", "50%%",
        "x%", "lots", "yes", "Off"
    };
    size_t i;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ck_assert_msg(trl_warn_parse(bad[i], strlen(bad[i]), &count,
                                     &percent, err, sizeof(err))
                      == TRL_ERROR, "\"%s\" accepted", bad[i]);
        ck_assert_msg(strstr(err, "such as 80% or 8") != NULL, "\"%s\": %s",
                      bad[i], err);
    }

#undef W
}
END_TEST


Suite *
grammar_suite(void)
{
    Suite  *s;
    TCase  *tc;

    s = suite_create("grammar");

    tc = unit_tcase(s, "values", 10);
    tcase_add_loop_test(tc, penalty_accepted, 0,
                        (int) (sizeof(penalties_ok) / sizeof(penalties_ok[0])));
    tcase_add_loop_test(tc, penalty_refused, 0,
                        (int) (sizeof(penalties_bad)
                               / sizeof(penalties_bad[0])));
    tcase_add_test(tc, warn_values);
    tcase_add_loop_test(tc, mode_keywords, 0,
                        (int) (sizeof(modes) / sizeof(modes[0])));
    tcase_add_loop_test(tc, size_values, 0,
                        (int) (sizeof(sizes) / sizeof(sizes[0])));
    tcase_add_test(tc, null_texts);
    tcase_add_loop_test(tc, log_keywords, 0,
                        sizeof(log_values) / sizeof(log_values[0]));

    return s;
}
