/* test_rate.c - trl_rate_parse() and trl_rate_format(). */

#include "unit.h"

#include <stdio.h>


#define SEC   1000ULL
#define MIN   (60 * SEC)
#define HOUR  (60 * MIN)
#define DAY   (24 * HOUR)


static const struct {
    const char  *text;
    uint32_t     limit;
    uint64_t     window_ms;
} accepted[] = {
    { "10r/s", 10, SEC },
    { "10r/m", 10, MIN },
    { "10r/h", 10, HOUR },
    { "10r/d", 10, DAY },
    { "20r/15m", 20, 15 * MIN },
    { "3r/5m", 3, 5 * MIN },
    { "100r/1h", 100, HOUR },
    { "5r/30s", 5, 30 * SEC },
    { "1r/d", 1, DAY },
    { "1r/s", 1, SEC },
    { "65535r/s", 65535, SEC },
    { "1r/365d", 1, 365 * DAY },
    { "1r/8760h", 1, 365 * DAY },
    { "1r/525600m", 1, 365 * DAY },
    { "1r/31536000s", 1, 365 * DAY },
    { "7r/90m", 7, 90 * MIN },
    { "2r/1s", 2, SEC },
    { "5r/05m", 5, 5 * MIN },
    { "0005r/m", 5, MIN },
    { "65535r/365d", 65535, 365 * DAY },
};


START_TEST(parse_accepts)
{
    trl_rate_t   rate;
    char         err[256];
    const char  *text = accepted[_i].text;

    memset(&rate, 0xff, sizeof(rate));
    err[0] = '\0';
    ck_assert_msg(trl_rate_parse(text, strlen(text), &rate, err, sizeof(err))
                  == TRL_OK, "\"%s\" refused: %s", text, err);
    ck_assert_uint_eq(rate.limit, accepted[_i].limit);
    ck_assert_uint_eq(rate.window_ms, accepted[_i].window_ms);
}
END_TEST


#define SYNTAX  "Nr/s, Nr/m, Nr/h, Nr/d or Nr/<count><unit>"

static const struct {
    const char  *text;
    const char  *reason;     /* a part of the message */
} rejected[] = {
    { "abc", SYNTAX },
    { "", SYNTAX },
    { "0r/s", "at least 1" },
    { "00r/m", "at least 1" },
    { "5r/0m", "at least 1s" },
    { "5r/000s", "at least 1s" },
    { "70000r/s", "at most 65535" },
    { "65536r/s", "at most 65535" },
    { "5r/366d", "at most 365d" },
    { "1r/8761h", "at most 365d" },
    { "1r/31536001s", "at most 365d" },
    { "5r/", SYNTAX },
    { "5r/x", SYNTAX },
    { "5r/5", SYNTAX },
    { "r/s", SYNTAX },
    { "-5r/s", SYNTAX },
    { "+5r/s", SYNTAX },
    { "5r/s ", SYNTAX },
    { " 5r/s", SYNTAX },
    { "5 r/s", SYNTAX },
    { "5r /s", SYNTAX },
    { "5r/ s", SYNTAX },
    { "5R/S", SYNTAX },
    { "5R/s", SYNTAX },
    { "5r/S", SYNTAX },
    { "5r/M", SYNTAX },
    { "5r/ms", SYNTAX },
    { "5r/10ms", SYNTAX },
    { "5r/1.5m", SYNTAX },
    { "5r/-1m", SYNTAX },
    { "5r/m/", SYNTAX },
    { "5r/mm", SYNTAX },
    { "5r//m", SYNTAX },
    { "5/s", SYNTAX },
    { "5rs", SYNTAX },
    { "5r", SYNTAX },
    { "5", SYNTAX },
    { "r", SYNTAX },
    { "5r/w", SYNTAX },
    { "5r/y", SYNTAX },
    { "0x10r/s", SYNTAX },
    { "5r/s\n", SYNTAX },
    { "99999999999999999999999999999999999999r/s", "at most 65535" },
    { "18446744073709551616r/s", "at most 65535" },
    { "4294967297r/s", "at most 65535" },
    { "1r/99999999999999999999999999999999999999s", "at most 365d" },
    { "1r/18446744073709551617d", "at most 365d" },
    { "1r/4294967296d", "at most 365d" },
};


START_TEST(parse_rejects)
{
    trl_rate_t   rate;
    char         err[512];
    const char  *text = rejected[_i].text;

    memset(err, 'x', sizeof(err));
    ck_assert_msg(trl_rate_parse(text, strlen(text), &rate, err, sizeof(err))
                  == TRL_ERROR, "\"%s\" accepted", text);
    ck_assert_msg(memchr(err, '\0', sizeof(err)) != NULL,
                  "\"%s\": reason not NUL-terminated", text);
    ck_assert_msg(strstr(err, rejected[_i].reason) != NULL,
                  "\"%s\": reason \"%s\" lacks \"%s\"", text, err,
                  rejected[_i].reason);
    /* every refusal, not only a syntax error, shows what is accepted:
     * the forms, an example and the bounds */
    ck_assert_msg(strstr(err, SYNTAX) != NULL && strstr(err, "20r/15m")
                  && strstr(err, "1 <= N <= 65535")
                  && strstr(err, "1s <= window <= 365d"),
                  "\"%s\": reason \"%s\" lacks what is accepted", text, err);
}
END_TEST


START_TEST(parse_uses_len_not_nul)
{
    trl_rate_t  rate;
    char        err[256];

    /* the text ends at len, whatever follows */
    ck_assert_int_eq(trl_rate_parse("10r/mXYZ", 5, &rate, err, sizeof(err)),
                     TRL_OK);
    ck_assert_uint_eq(rate.limit, 10);
    ck_assert_uint_eq(rate.window_ms, MIN);

    ck_assert_int_eq(trl_rate_parse("20r/15m;", 7, &rate, err, sizeof(err)),
                     TRL_OK);
    ck_assert_uint_eq(rate.limit, 20);
    ck_assert_uint_eq(rate.window_ms, 15 * MIN);

    /* cut short: "10r/" */
    ck_assert_int_eq(trl_rate_parse("10r/m", 4, &rate, err, sizeof(err)),
                     TRL_ERROR);
    /* cut short: "20r/1" */
    ck_assert_int_eq(trl_rate_parse("20r/15m", 5, &rate, err, sizeof(err)),
                     TRL_ERROR);
    /* nothing at all, NULL text */
    ck_assert_int_eq(trl_rate_parse(NULL, 0, &rate, err, sizeof(err)),
                     TRL_ERROR);
    ck_assert_int_eq(trl_rate_parse("5r/s", 0, &rate, err, sizeof(err)),
                     TRL_ERROR);
}
END_TEST


START_TEST(parse_error_truncation)
{
    static const char  *bad[] = { "abc", "0r/s", "70000r/s", "5r/366d" };
    trl_rate_t          rate;
    char                full[512], buf[64];
    size_t              i, n, errlen;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ck_assert_int_eq(trl_rate_parse(bad[i], strlen(bad[i]), &rate, full,
                                        sizeof(full)), TRL_ERROR);
        n = strlen(full);
        ck_assert_uint_gt(n, 10);

        for (errlen = 1; errlen < 40; errlen++) {
            memset(buf, 0x5a, sizeof(buf));
            ck_assert_int_eq(trl_rate_parse(bad[i], strlen(bad[i]), &rate,
                                            buf, errlen), TRL_ERROR);
            /* NUL-terminated within errlen, a prefix of the full reason */
            ck_assert_uint_eq(strlen(buf), (errlen - 1 < n) ? errlen - 1 : n);
            ck_assert_int_eq(strncmp(buf, full, strlen(buf)), 0);
            /* nothing written past errlen */
            for (size_t j = errlen; j < sizeof(buf); j++) {
                ck_assert_msg(buf[j] == 0x5a, "\"%s\" errlen %zu: byte %zu "
                              "overwritten", bad[i], errlen, j);
            }
        }

        /* errlen 0: the buffer is not touched; NULL err is fine */
        memset(buf, 0x5a, sizeof(buf));
        ck_assert_int_eq(trl_rate_parse(bad[i], strlen(bad[i]), &rate, buf,
                                        0), TRL_ERROR);
        ck_assert_int_eq(buf[0], 0x5a);
        ck_assert_int_eq(trl_rate_parse(bad[i], strlen(bad[i]), &rate, NULL,
                                        0), TRL_ERROR);
    }
}
END_TEST


static const struct {
    uint32_t     limit;
    uint64_t     window_ms;
    const char  *text;
} formats[] = {
    { 10, MIN, "10r/m" },
    { 20, 15 * MIN, "20r/15m" },
    { 5, 30 * SEC, "5r/30s" },
    { 1, DAY, "1r/d" },
    { 7, 90 * MIN, "7r/90m" },
    { 5, SEC, "5r/s" },
    { 100, HOUR, "100r/h" },
    { 3, 2 * HOUR, "3r/2h" },
    { 3, 5 * MIN, "3r/5m" },
    { 1, 2 * DAY, "1r/2d" },
    { 1, 365 * DAY, "1r/365d" },
    { 5, 90 * SEC, "5r/90s" },
    { 65535, SEC, "65535r/s" },
    { 9, 25 * HOUR, "9r/25h" },
    { 2, 3601 * SEC, "2r/3601s" },
};


START_TEST(format_canonical)
{
    trl_rate_t  rate;
    char        buf[64];
    size_t      n;

    rate.limit = formats[_i].limit;
    rate.window_ms = formats[_i].window_ms;
    memset(buf, 0x5a, sizeof(buf));
    n = trl_rate_format(&rate, buf, sizeof(buf));
    ck_assert_str_eq(buf, formats[_i].text);
    ck_assert_uint_eq(n, strlen(formats[_i].text));
}
END_TEST


START_TEST(format_canonicalizes_parsed)
{
    static const struct { const char *in, *out; } c[] = {
        { "5r/60s", "5r/m" }, { "100r/1h", "100r/h" }, { "1r/24h", "1r/d" },
        { "3r/5m", "3r/5m" }, { "2r/1s", "2r/s" }, { "4r/120m", "4r/2h" },
        { "8r/1440m", "8r/d" }, { "6r/7200s", "6r/2h" }, { "0005r/m", "5r/m" },
        { "1r/8760h", "1r/365d" }, { "1r/90s", "1r/90s" },
    };
    trl_rate_t  rate;
    char        buf[64], err[256];
    size_t      i;

    for (i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
        ck_assert_int_eq(trl_rate_parse(c[i].in, strlen(c[i].in), &rate, err,
                                        sizeof(err)), TRL_OK);
        trl_rate_format(&rate, buf, sizeof(buf));
        ck_assert_str_eq(buf, c[i].out);
    }
}
END_TEST


START_TEST(format_round_trip)
{
    static const uint64_t  units[] = { SEC, MIN, HOUR, DAY };
    unit_rng_t             rng = { 42 };
    trl_rate_t             x, y;
    char                   buf[64], err[256];
    size_t                 n;
    int                    i;

    for (i = 0; i < 20000; i++) {
        uint64_t  unit = units[unit_below(&rng, 4)];
        uint64_t  max = 365 * DAY / unit;
        uint64_t  count;

        switch (unit_below(&rng, 3)) {
        case 0: count = 1 + unit_below(&rng, 10); break;
        case 1: count = 1 + unit_below(&rng, max < 1000 ? max : 1000); break;
        default: count = 1 + unit_below(&rng, max); break;
        }
        x.limit = (uint32_t) (i < 100 ? 1 + (uint64_t) i
                              : 1 + unit_below(&rng, TRL_RATE_MAX_LIMIT));
        x.window_ms = count * unit;

        n = trl_rate_format(&x, buf, sizeof(buf));
        ck_assert_uint_eq(n, strlen(buf));
        memset(&y, 0, sizeof(y));
        ck_assert_msg(trl_rate_parse(buf, n, &y, err, sizeof(err)) == TRL_OK,
                      "format gave \"%s\", which parse refuses: %s", buf, err);
        ck_assert_msg(y.limit == x.limit && y.window_ms == x.window_ms,
                      "%u/%llu -> \"%s\" -> %u/%llu", x.limit,
                      (unsigned long long) x.window_ms, buf, y.limit,
                      (unsigned long long) y.window_ms);
    }

    /* the extremes */
    x.limit = TRL_RATE_MAX_LIMIT;
    x.window_ms = TRL_RATE_MAX_WINDOW_MS;
    n = trl_rate_format(&x, buf, sizeof(buf));
    ck_assert_int_eq(trl_rate_parse(buf, n, &y, err, sizeof(err)), TRL_OK);
    ck_assert_uint_eq(y.limit, x.limit);
    ck_assert_uint_eq(y.window_ms, x.window_ms);
}
END_TEST


START_TEST(format_truncation)
{
    trl_rate_t  rate = { 20, 15 * MIN };
    char        buf[16];
    size_t      n;

    memset(buf, 0x5a, sizeof(buf));
    n = trl_rate_format(&rate, buf, 4);
    ck_assert_str_eq(buf, "20r");
    ck_assert_uint_eq(n, 3);
    ck_assert_int_eq(buf[4], 0x5a);

    memset(buf, 0x5a, sizeof(buf));
    n = trl_rate_format(&rate, buf, 1);
    ck_assert_str_eq(buf, "");
    ck_assert_uint_eq(n, 0);
    ck_assert_int_eq(buf[1], 0x5a);

    memset(buf, 0x5a, sizeof(buf));
    n = trl_rate_format(&rate, buf, 0);
    ck_assert_uint_eq(n, 0);
    ck_assert_int_eq(buf[0], 0x5a);

    /* exactly enough room */
    n = trl_rate_format(&rate, buf, 8);
    ck_assert_str_eq(buf, "20r/15m");
    ck_assert_uint_eq(n, 7);
}
END_TEST


Suite *
rate_suite(void)
{
    Suite  *s;
    TCase  *tc;

    s = suite_create("rate");

    tc = unit_tcase(s, "parse", 10);
    tcase_add_loop_test(tc, parse_accepts, 0,
                        (int) (sizeof(accepted) / sizeof(accepted[0])));
    tcase_add_loop_test(tc, parse_rejects, 0,
                        (int) (sizeof(rejected) / sizeof(rejected[0])));
    tcase_add_test(tc, parse_uses_len_not_nul);
    tcase_add_test(tc, parse_error_truncation);

    tc = unit_tcase(s, "format", 10);
    tcase_add_loop_test(tc, format_canonical, 0,
                        (int) (sizeof(formats) / sizeof(formats[0])));
    tcase_add_test(tc, format_canonicalizes_parsed);
    tcase_add_test(tc, format_round_trip);
    tcase_add_test(tc, format_truncation);

    return s;
}
