/*
 * test_policy.c - YAML policy files (trl_policy_*), trl_duration_parse()
 * and trl_size_parse().  Every fixture is written to a temporary file.
 */

#include "unit.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>


#define SEC   1000ULL
#define MIN   (60 * SEC)
#define HOUR  (60 * MIN)
#define DAY   (24 * HOUR)
#define MB    (1024ULL * 1024)


/* ---- helpers ----------------------------------------------------------- */

typedef struct {
    const char  *name;
    const char  *value;
} var_t;

/* Variables the lookup knows; anything else is unset. */
static const var_t  vars[] = {
    { "ENABLE_RATE_LIMITING", "false" },
    { "LOGIN_N", "50" },
    { "LOGIN_W", "5m" },
    { "EMPTY", "" },
    { "ENV_NAME", "development" },
    { "HDR", "x_api_key" },
    { "DOLLAR", "$remote_addr" },
    { NULL, NULL }
};

static const char *
lookup(void *ctx, const char *name, size_t len)
{
    const var_t  *v;

    for (v = ctx; v->name != NULL; v++) {
        if (strlen(v->name) == len && memcmp(v->name, name, len) == 0) {
            return v->value;
        }
    }
    return NULL;
}


/* Writes text to a new temporary .yaml file; returns its malloc'ed path. */
static char *
fixture(const char *text)
{
    char    *path;
    int      fd;
    size_t   len = strlen(text), off = 0;
    ssize_t  n;

    path = strdup("/tmp/trl_policy_XXXXXX.yaml");
    ck_assert_ptr_nonnull(path);
    fd = mkstemps(path, 5);
    ck_assert_msg(fd >= 0, "mkstemps failed");
    while (off < len) {
        n = write(fd, text + off, len - off);
        ck_assert_msg(n > 0, "write failed");
        off += (size_t) n;
    }
    close(fd);
    return path;
}

static void
fixture_done(char *path)
{
    unlink(path);
    free(path);
}


/* Loads text (which must load) for env with the test lookup. */
static trl_policy_set_t *
load_ok(const char *text, const char *env)
{
    trl_policy_set_t  *set;
    char               err[1024], *path;

    path = fixture(text);
    err[0] = '\0';
    set = trl_policy_load(path, env, lookup, (void *) vars, err, sizeof(err));
    ck_assert_msg(set != NULL, "load failed: %s\n--\n%s", err, text);
    fixture_done(path);
    return set;
}

static trl_policy_t
get(const trl_policy_set_t *set, const char *name)
{
    trl_policy_t  p;

    memset(&p, 0xa5, sizeof(p));
    ck_assert_msg(trl_policy_find(set, name, strlen(name), &p) == TRL_OK,
                  "no policy \"%s\"", name);
    ck_assert_str_eq(p.name, name);
    return p;
}


/* ---- good files -------------------------------------------------------- */

static const char  full_yaml[] =
    "# a complete file\n"                                  /* 1 */
    "enabled: yes\n"                                       /* 2 */
    "environment: production\n"                            /* 3 */
    "defaults:\n"                                          /* 4 */
    "  key: $binary_remote_addr\n"                         /* 5 */
    "  zone_size: 20m\n"                                   /* 6 */
    "environments:\n"                                      /* 7 */
    "  development:\n"                                     /* 8 */
    "    login:    { rate: 100r/15m }\n"                   /* 9 */
    "    register: { rate: 100r/1h, count: all }\n"        /* 10 */
    "  production:\n"                                      /* 11 */
    "    login:\n"                                         /* 12 */
    "      rate: 20r/15m\n"                                /* 13 */
    "      key: $binary_remote_addr$http_x_user\n"         /* 14 */
    "      count: failed\n"                                /* 15 */
    "      warn: 80%\n"                                    /* 16 */
    "      penalty:\n"                                     /* 17 */
    "        base: 30s\n"                                  /* 18 */
    "        factor: 1.5\n"                                /* 19 */
    "        max: 2h\n"                                    /* 20 */
    "        forgive: 24h\n"                               /* 21 */
    "      dry_run: true\n"                                /* 22 */
    "      sync: strict\n"                                 /* 23 */
    "      zone_size: 64k\n"                               /* 24 */
    "    register:\n"                                      /* 25 */
    "      rate: 5r/h\n"                                   /* 26 */
    "      count: succeeded\n"                             /* 27 */
    "      warn: 3\n"                                      /* 28 */
    "      sync: async\n"                                  /* 29 */
    "    api: {rate: 1000r/m, key: \"$http_authorization\", dry_run: off}\n";


START_TEST(every_field)
{
    trl_policy_set_t  *set;
    trl_policy_t       p;

    set = load_ok(full_yaml, NULL);
    ck_assert_int_eq(trl_policy_enabled(set), 1);
    ck_assert_str_eq(trl_policy_environment(set), "production");
    ck_assert_uint_eq(trl_policy_count(set), 3);

    p = get(set, "login");
    ck_assert_str_eq(p.key, "$binary_remote_addr$http_x_user");
    ck_assert_uint_eq(p.rate.limit, 20);
    ck_assert_uint_eq(p.rate.window_ms, 15 * MIN);
    ck_assert_uint_eq(p.count, TRL_COUNT_FAILED);
    ck_assert_uint_eq(p.warn, 16);
    ck_assert_uint_eq(p.penalty.base_ms > 0, 1);
    ck_assert_uint_eq(p.penalty.base_ms, 30 * SEC);
    ck_assert(p.penalty.factor == 1.5);
    ck_assert_uint_eq(p.penalty.max_ms, 2 * HOUR);
    ck_assert_uint_eq(p.penalty.forgive_ms, 24 * HOUR);
    ck_assert_uint_eq(p.dry_run, 1);
    ck_assert_uint_eq(p.sync, TRL_SYNC_MODE_STRICT);
    ck_assert_uint_eq(p.zone_size, 64 * 1024);
    ck_assert_uint_eq(p.line, 12);

    /* defaults for what it leaves out, its own values for the rest */
    p = get(set, "register");
    ck_assert_str_eq(p.key, "$binary_remote_addr");
    ck_assert_uint_eq(p.rate.limit, 5);
    ck_assert_uint_eq(p.rate.window_ms, HOUR);
    ck_assert_uint_eq(p.count, TRL_COUNT_SUCCEEDED);
    ck_assert_uint_eq(p.warn, 3);
    ck_assert_uint_eq(p.penalty.base_ms > 0, 0);
    ck_assert_uint_eq(p.penalty.base_ms, 0);
    ck_assert_uint_eq(p.dry_run, 0);
    ck_assert_uint_eq(p.sync, TRL_SYNC_MODE_ASYNC);
    ck_assert_uint_eq(p.zone_size, 20 * MB);
    ck_assert_uint_eq(p.line, 25);

    p = get(set, "api");
    ck_assert_str_eq(p.key, "$http_authorization");
    ck_assert_uint_eq(p.rate.limit, 1000);
    ck_assert_uint_eq(p.rate.window_ms, MIN);
    ck_assert_uint_eq(p.count, TRL_COUNT_ALL);
    ck_assert_uint_eq(p.warn, 0);
    ck_assert_uint_eq(p.sync, TRL_SYNC_MODE_OFF);
    ck_assert_uint_eq(p.line, 30);

    trl_policy_free(set);
}
END_TEST


START_TEST(file_order_get_find)
{
    trl_policy_set_t  *set;
    trl_policy_t       p;
    const char        *names[] = { "login", "register", "api" };
    size_t             i;

    set = load_ok(full_yaml, NULL);
    for (i = 0; i < 3; i++) {
        ck_assert_int_eq(trl_policy_get(set, i, &p), TRL_OK);
        ck_assert_str_eq(p.name, names[i]);
    }
    ck_assert_int_eq(trl_policy_get(set, 3, &p), TRL_ERROR);
    ck_assert_int_eq(trl_policy_get(set, (size_t) -1, &p), TRL_ERROR);
    ck_assert_int_eq(trl_policy_find(set, "logi", 4, &p), 1);
    ck_assert_int_eq(trl_policy_find(set, "loginx", 6, &p), 1);
    /* len counts, not the NUL */
    ck_assert_int_eq(trl_policy_find(set, "loginx", 5, &p), TRL_OK);
    ck_assert_str_eq(p.name, "login");
    ck_assert_int_eq(trl_policy_find(set, "", 0, &p), 1);
    trl_policy_free(set);

    /* NULL sets are harmless */
    trl_policy_free(NULL);
    ck_assert_int_eq(trl_policy_enabled(NULL), 0);
    ck_assert_uint_eq(trl_policy_count(NULL), 0);
    ck_assert_int_eq(trl_policy_get(NULL, 0, &p), TRL_ERROR);
}
END_TEST


START_TEST(builtin_defaults)
{
    trl_policy_set_t  *set;
    trl_policy_t       p;

    set = load_ok("environments:\n"
                  "  only:\n"
                  "    login: {rate: 10r/m, key: $remote_addr}\n", NULL);
    ck_assert_int_eq(trl_policy_enabled(set), 1);
    ck_assert_str_eq(trl_policy_environment(set), "only");
    p = get(set, "login");
    ck_assert_uint_eq(p.zone_size, 10 * MB);
    ck_assert_uint_eq(p.count, TRL_COUNT_ALL);
    ck_assert_uint_eq(p.sync, TRL_SYNC_MODE_OFF);
    ck_assert_uint_eq(p.warn, 0);
    ck_assert_uint_eq(p.dry_run, 0);
    ck_assert_uint_eq(p.penalty.base_ms > 0, 0);
    ck_assert_uint_eq(p.line, 3);
    trl_policy_free(set);
}
END_TEST


START_TEST(defaults_override)
{
    trl_policy_set_t  *set;
    trl_policy_t       p;

    set = load_ok("defaults:\n"
                  "  rate: 10r/m\n"
                  "  key: $remote_addr\n"
                  "  count: failed\n"
                  "  warn: 50%\n"
                  "  dry_run: on\n"
                  "  sync: async\n"
                  "  zone_size: 1M\n"
                  "  penalty: {base: 1m, factor: 3}\n"
                  "environments:\n"
                  "  e:\n"
                  "    inherits:\n"
                  "    overrides:\n"
                  "      rate: 7r/s\n"
                  "      key: $host\n"
                  "      count: ALL\n"
                  "      warn: off\n"
                  "      dry_run: No\n"
                  "      sync: off\n"
                  "      zone_size: 1g\n"
                  "      penalty: off\n"
                  "    merges:\n"
                  "      penalty: {max: 4h}\n", NULL);
    ck_assert_uint_eq(trl_policy_count(set), 3);

    p = get(set, "inherits");
    ck_assert_uint_eq(p.rate.limit, 10);
    ck_assert_uint_eq(p.rate.window_ms, MIN);
    ck_assert_str_eq(p.key, "$remote_addr");
    ck_assert_uint_eq(p.count, TRL_COUNT_FAILED);
    ck_assert_uint_eq(p.warn, 5);
    ck_assert_uint_eq(p.dry_run, 1);
    ck_assert_uint_eq(p.sync, TRL_SYNC_MODE_ASYNC);
    ck_assert_uint_eq(p.zone_size, MB);
    ck_assert_uint_eq(p.penalty.base_ms > 0, 1);
    ck_assert_uint_eq(p.penalty.base_ms, MIN);
    ck_assert(p.penalty.factor == 3);
    ck_assert_uint_eq(p.penalty.max_ms, HOUR);
    ck_assert_uint_eq(p.penalty.forgive_ms, HOUR);

    p = get(set, "overrides");
    ck_assert_uint_eq(p.rate.limit, 7);
    ck_assert_uint_eq(p.rate.window_ms, SEC);
    ck_assert_str_eq(p.key, "$host");
    ck_assert_uint_eq(p.count, TRL_COUNT_ALL);
    ck_assert_uint_eq(p.warn, 0);
    ck_assert_uint_eq(p.dry_run, 0);
    ck_assert_uint_eq(p.sync, TRL_SYNC_MODE_OFF);
    ck_assert_uint_eq(p.zone_size, 1024 * MB);
    ck_assert_uint_eq(p.penalty.base_ms > 0, 0);
    ck_assert_uint_eq(p.penalty.base_ms, 0);

    /* a penalty in both: merged key by key */
    p = get(set, "merges");
    ck_assert_uint_eq(p.penalty.base_ms > 0, 1);
    ck_assert_uint_eq(p.penalty.base_ms, MIN);
    ck_assert(p.penalty.factor == 3);
    ck_assert_uint_eq(p.penalty.max_ms, 4 * HOUR);
    ck_assert_uint_eq(p.penalty.forgive_ms, 4 * HOUR);
    trl_policy_free(set);
}
END_TEST


static const struct {
    const char  *rate;
    const char  *warn;
    uint32_t     expect;
} warns[] = {
    { "20r/15m", "80%", 16 },
    { "3r/m", "50%", 2 },          /* ceil(1.5) */
    { "3r/m", "1%", 1 },           /* ceil(0.03) */
    { "20r/m", "100%", 20 },
    { "7r/m", "99%", 7 },          /* ceil(6.93) */
    { "65535r/s", "1%", 656 },     /* ceil(655.35) */
    { "20r/m", "1", 1 },
    { "20r/m", "15", 15 },
    { "20r/m", "20", 20 },
    { "20r/m", "\"20\"", 20 },
    { "20r/m", "off", 0 },
    { "20r/m", "false", 0 },
};

START_TEST(warn_values)
{
    trl_policy_set_t  *set;
    trl_policy_t       p;
    char               yaml[256];

    snprintf(yaml, sizeof(yaml),
             "environments:\n  e:\n    p:\n      rate: %s\n"
             "      key: $k\n      warn: %s\n", warns[_i].rate,
             warns[_i].warn);
    set = load_ok(yaml, NULL);
    p = get(set, "p");
    ck_assert_msg(p.warn == warns[_i].expect, "%s of %s: %u, not %u",
                  warns[_i].warn, warns[_i].rate, p.warn, warns[_i].expect);
    trl_policy_free(set);
}
END_TEST


static const struct {
    const char  *penalty;
    uint64_t     base, max, forgive;
    double       factor;
} penalties[] = {
    { "{base: 30s}", 30 * SEC, HOUR, HOUR, 2 },
    { "{base: 30s, max: 2h}", 30 * SEC, 2 * HOUR, 2 * HOUR, 2 },
    { "{base: 500ms, max: 500ms}", 500, 500, 500, 2 },
    { "{base: 1h}", HOUR, HOUR, HOUR, 2 },
    { "{base: 1m30s, forgive: 1d}", 90 * SEC, HOUR, DAY, 2 },
    { "{base: 1s, factor: 1}", SEC, HOUR, HOUR, 1 },
    { "{base: 1s, factor: 2.25}", SEC, HOUR, HOUR, 2.25 },
    { "{base: 1s, factor: 1000}", SEC, HOUR, HOUR, 1000 },
    { "{base: 1s, factor: 10.0}", SEC, HOUR, HOUR, 10 },
    { "{base: 1s, max: 365d, forgive: 5m}", SEC, 365 * DAY, 5 * MIN, 2 },
    /* as penalty= in nginx.conf: max defaults to the base above 1h */
    { "{base: 2h}", 2 * HOUR, 2 * HOUR, 2 * HOUR, 2 },
    { "{base: 2h, forgive: 1d}", 2 * HOUR, 2 * HOUR, DAY, 2 },
};

START_TEST(penalty_values)
{
    trl_policy_set_t  *set;
    trl_policy_t       p;
    char               yaml[256];

    snprintf(yaml, sizeof(yaml),
             "environments:\n  e:\n    p:\n      rate: 1r/s\n"
             "      key: $k\n      penalty: %s\n", penalties[_i].penalty);
    set = load_ok(yaml, NULL);
    p = get(set, "p");
    ck_assert_uint_eq(p.penalty.base_ms > 0, 1);
    ck_assert_uint_eq(p.penalty.base_ms, penalties[_i].base);
    ck_assert_uint_eq(p.penalty.max_ms, penalties[_i].max);
    ck_assert_uint_eq(p.penalty.forgive_ms, penalties[_i].forgive);
    ck_assert_msg(p.penalty.factor == penalties[_i].factor, "factor %g",
                  p.penalty.factor);
    trl_policy_free(set);
}
END_TEST


static const char  two_envs[] =
    "environment: production\n"
    "environments:\n"
    "  development:\n"
    "    login: {rate: 100r/15m, key: $k}\n"
    "  production:\n"
    "    login: {rate: 20r/15m, key: $k}\n"
    "    signup: {rate: 5r/h, key: $k}\n"
    "  staging: {}\n"
    "  testing:\n";

START_TEST(environment_selection)
{
    trl_policy_set_t  *set;
    trl_policy_t       p;

    /* the file's choice */
    set = load_ok(two_envs, NULL);
    ck_assert_str_eq(trl_policy_environment(set), "production");
    ck_assert_uint_eq(trl_policy_count(set), 2);
    ck_assert_uint_eq(get(set, "login").rate.limit, 20);
    trl_policy_free(set);

    /* "" is no choice either */
    set = load_ok(two_envs, "");
    ck_assert_str_eq(trl_policy_environment(set), "production");
    trl_policy_free(set);

    /* the caller's choice wins */
    set = load_ok(two_envs, "development");
    ck_assert_str_eq(trl_policy_environment(set), "development");
    ck_assert_uint_eq(trl_policy_count(set), 1);
    ck_assert_uint_eq(get(set, "login").rate.limit, 100);
    ck_assert_int_eq(trl_policy_find(set, "signup", 6, &p), 1);
    trl_policy_free(set);

    /* environments without policies: empty sets */
    set = load_ok(two_envs, "staging");
    ck_assert_uint_eq(trl_policy_count(set), 0);
    ck_assert_int_eq(trl_policy_get(set, 0, &p), TRL_ERROR);
    trl_policy_free(set);
    set = load_ok(two_envs, "testing");
    ck_assert_str_eq(trl_policy_environment(set), "testing");
    ck_assert_uint_eq(trl_policy_count(set), 0);
    trl_policy_free(set);

    /* a single environment needs no choice */
    set = load_ok("environments:\n  solo:\n    a: {rate: 1r/s, key: $k}\n",
                  NULL);
    ck_assert_str_eq(trl_policy_environment(set), "solo");
    ck_assert_uint_eq(trl_policy_count(set), 1);
    trl_policy_free(set);

    /* the file's choice through a variable */
    set = load_ok("environment: ${ENV_NAME:-production}\n"
                  "environments:\n  development: {}\n  production: {}\n",
                  NULL);
    ck_assert_str_eq(trl_policy_environment(set), "development");
    trl_policy_free(set);
    set = load_ok("environment: ${TRL_UNSET_ENV:-production}\n"
                  "environments:\n  development: {}\n  production: {}\n",
                  NULL);
    ck_assert_str_eq(trl_policy_environment(set), "production");
    trl_policy_free(set);
}
END_TEST


START_TEST(substitution)
{
    trl_policy_set_t  *set;
    trl_policy_t       p;

    set = load_ok(
        "environments:\n"
        "  e:\n"
        "    set:       {rate: \"${LOGIN_N}r/${LOGIN_W}\", key: $k}\n"
        "    defaulted: {rate: \"${NOPE_N:-20}r/${NOPE_W:-15m}\", key: $k}\n"
        "    mixed:     {rate: \"${LOGIN_N:-1}r/${NOPE_W:-1h}\", key: $k}\n"
        "    empty:     {rate: \"${EMPTY:-3}r/s\", key: \"${EMPTY}$a\"}\n"
        "    literal:\n"
        "      rate: 1r/s\n"
        "      key: $binary_remote_addr:$http_${HDR}:$$:$:${NOPE:-$x}$\n"
        "    value:     {rate: 1r/s, key: \"${DOLLAR}${HDR}\"}\n"
        "    plain:\n"
        "      rate: ${LOGIN_N}r/m\n"
        "      key: ${DOLLAR}\n",
        NULL);

    p = get(set, "set");
    ck_assert_uint_eq(p.rate.limit, 50);
    ck_assert_uint_eq(p.rate.window_ms, 5 * MIN);

    p = get(set, "defaulted");
    ck_assert_uint_eq(p.rate.limit, 20);
    ck_assert_uint_eq(p.rate.window_ms, 15 * MIN);

    p = get(set, "mixed");
    ck_assert_uint_eq(p.rate.limit, 50);
    ck_assert_uint_eq(p.rate.window_ms, HOUR);

    /* set but empty: the default; no default: empty */
    p = get(set, "empty");
    ck_assert_uint_eq(p.rate.limit, 3);
    ck_assert_str_eq(p.key, "$a");

    /* $ without { is literal; substituted text is not read again */
    p = get(set, "literal");
    ck_assert_str_eq(p.key, "$binary_remote_addr:$http_x_api_key:$$:$:$x$");
    p = get(set, "value");
    ck_assert_str_eq(p.key, "$remote_addrx_api_key");
    p = get(set, "plain");
    ck_assert_uint_eq(p.rate.limit, 50);
    ck_assert_str_eq(p.key, "$remote_addr");

    trl_policy_free(set);
}
END_TEST


START_TEST(substitution_process_environment)
{
    trl_policy_set_t  *set;
    trl_policy_t       p;
    char               err[512], *path;

    /* without a lookup the process environment is asked */
    path = fixture("environments:\n"
                   "  e:\n    p: {rate: \"${TRL_TEST_N}r/m\", key: $k}\n");
    setenv("TRL_TEST_N", "42", 1);
    set = trl_policy_load(path, NULL, NULL, NULL, err, sizeof(err));
    ck_assert_msg(set != NULL, "%s", err);
    p = get(set, "p");
    ck_assert_uint_eq(p.rate.limit, 42);
    trl_policy_free(set);

    unsetenv("TRL_TEST_N");
    set = trl_policy_load(path, NULL, NULL, NULL, err, sizeof(err));
    ck_assert_ptr_null(set);
    ck_assert_ptr_nonnull(strstr(err, "variable TRL_TEST_N is not set"));
    fixture_done(path);
}
END_TEST


static const struct {
    const char  *value;
    int          enabled;
} enableds[] = {
    { "${ENABLE_RATE_LIMITING:-true}", 0 },   /* the variable says false */
    { "${TRL_UNSET_SWITCH:-true}", 1 },
    { "${TRL_UNSET_SWITCH:-off}", 0 },
    { "true", 1 }, { "false", 0 }, { "yes", 1 }, { "no", 0 },
    { "on", 1 }, { "off", 0 }, { "1", 1 }, { "0", 0 },
    { "TRUE", 1 }, { "False", 0 }, { "\"on\"", 1 }, { "'no'", 0 },
};

START_TEST(enabled_values)
{
    trl_policy_set_t  *set;
    char               yaml[256];

    snprintf(yaml, sizeof(yaml), "enabled: %s\nenvironments:\n"
             "  e:\n    p: {rate: 1r/s, key: $k}\n", enableds[_i].value);
    set = load_ok(yaml, NULL);
    ck_assert_msg(trl_policy_enabled(set) == enableds[_i].enabled,
                  "enabled: %s", enableds[_i].value);
    /* a switched-off file still has its policies */
    ck_assert_uint_eq(trl_policy_count(set), 1);
    trl_policy_free(set);
}
END_TEST


START_TEST(yaml_styles)
{
    trl_policy_set_t  *set;
    trl_policy_t       p;

    /* flow at the top, quoted and block scalars, comments, document
     * markers, a BOM-less CRLF file */
    set = load_ok("---\r\n"
                  "{environments: {e: {\r\n"
                  "  'single': {rate: '1r/s', key: '$a'},\r\n"
                  "  \"double\": {rate: \"2r/s\", key: \"$b\\u0021\"},\r\n"
                  "  literal: {rate: 3r/s, key: $c}  # comment\r\n"
                  "}}}\r\n"
                  "...\r\n", NULL);
    ck_assert_uint_eq(trl_policy_count(set), 3);
    p = get(set, "double");
    ck_assert_str_eq(p.key, "$b!");
    ck_assert_uint_eq(p.line, 4);
    trl_policy_free(set);

    set = load_ok("environments:\n"
                  "  e:\n"
                  "    p:\n"
                  "      rate: 1r/s\n"
                  "      key: >-\n"
                  "        $a\n"
                  "        $b\n", NULL);
    ck_assert_str_eq(get(set, "p").key, "$a $b");
    trl_policy_free(set);
}
END_TEST


START_TEST(large_file)
{
    trl_policy_set_t  *set;
    trl_policy_t       p;
    char              *yaml, name[32];
    size_t             cap = 200 * 256 + 256, len = 0;
    struct timespec    t0, t1;
    double             ms;
    int                i;

    yaml = malloc(cap);
    ck_assert_ptr_nonnull(yaml);
    len += (size_t) snprintf(yaml + len, cap - len,
                             "defaults:\n  key: $binary_remote_addr\n"
                             "environment: prod\nenvironments:\n"
                             "  dev: {}\n  prod:\n");
    for (i = 0; i < 200; i++) {
        len += (size_t) snprintf(yaml + len, cap - len,
                                 "    policy_%03d:\n"
                                 "      rate: %dr/%dm\n"
                                 "      warn: 50%%\n"
                                 "      penalty: {base: %ds, max: 1d}\n"
                                 "      count: %s\n",
                                 i, i + 1, i % 60 + 1, i + 1,
                                 i % 2 ? "failed" : "all");
    }

    clock_gettime(CLOCK_MONOTONIC, &t0);
    set = load_ok(yaml, NULL);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    ms = (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6;
    /* a few ms natively; generous for valgrind and loaded machines */
    ck_assert_msg(ms < 2000, "200 policies took %.1f ms", ms);

    ck_assert_uint_eq(trl_policy_count(set), 200);
    for (i = 0; i < 200; i++) {
        snprintf(name, sizeof(name), "policy_%03d", i);
        ck_assert_int_eq(trl_policy_get(set, (size_t) i, &p), TRL_OK);
        ck_assert_str_eq(p.name, name);
        p = get(set, name);
        ck_assert_uint_eq(p.rate.limit, (uint32_t) i + 1);
        ck_assert_uint_eq(p.rate.window_ms, (uint64_t) (i % 60 + 1) * MIN);
        ck_assert_uint_eq(p.warn, ((uint32_t) i + 2) / 2);
        ck_assert_uint_eq(p.penalty.base_ms, (uint64_t) (i + 1) * SEC);
        ck_assert_uint_eq(p.line, (uint32_t) (7 + 5 * i));
    }
    trl_policy_free(set);
    free(yaml);
}
END_TEST


START_TEST(error_buffer)
{
    char               err[16], *path;
    trl_policy_set_t  *set;

    path = fixture("environments: 1\n");
    memset(err, 'x', sizeof(err));
    set = trl_policy_load(path, NULL, lookup, (void *) vars, err,
                          sizeof(err));
    ck_assert_ptr_null(set);
    ck_assert_uint_eq(strlen(err), sizeof(err) - 1);
    ck_assert_int_eq(strncmp(err, path, sizeof(err) - 1), 0);

    /* no buffer at all */
    ck_assert_ptr_null(trl_policy_load(path, NULL, lookup, (void *) vars,
                                       NULL, 0));
    ck_assert_ptr_null(trl_policy_load(NULL, NULL, NULL, NULL, err,
                                       sizeof(err)));
    fixture_done(path);
}
END_TEST


START_TEST(unreadable)
{
    char               err[512];
    trl_policy_set_t  *set;

    set = trl_policy_load("/nonexistent/trl/policies.yaml", NULL, NULL,
                          NULL, err, sizeof(err));
    ck_assert_ptr_null(set);
    ck_assert_str_eq(err, "/nonexistent/trl/policies.yaml: cannot open the "
                          "policy file: No such file or directory");

    set = trl_policy_load("/tmp", NULL, NULL, NULL, err, sizeof(err));
    ck_assert_ptr_null(set);
    ck_assert_str_eq(err, "/tmp: cannot read the policy file: Is a "
                          "directory");
}
END_TEST


/* ---- errors ------------------------------------------------------------ */

/* A valid policy body to complete fixtures: "rate: 1r/s, key: $k". */
#define OK  "rate: 1r/s, key: $k"

static const struct {
    const char  *yaml;
    const char  *env;        /* requested, NULL: the file's */
    unsigned     line, col;
    const char  *what;       /* a part of the message after the position */
} errors[] = {
    /* active zones (issue 15) */
    { "environments:\n  e:\n    p:\n      rate: 1r/s\n      key: $k\n"
      "      lifetime: $x\n", NULL, 6, 17,
      "lifetime \"$x\" of policy \"p\" of environment \"e\" needs active: on" },
    { "environments:\n  e:\n    p:\n      rate: 1r/m\n      key: $k\n"
      "      active: 30s\n", NULL, 6, 15,
      "is below the rate's window" },
    { "environments:\n  e:\n    p:\n      rate: 1r/m\n      key: $k\n"
      "      active: soon\n", NULL, 6, 15,
      "expected on (the longest lifetime is the rate's window)" },
    { "environments:\n  e:\n    p:\n      rate: 1r/m\n      key: $k\n"
      "      distinct: $u\n      active: on\n", NULL, 7, 15,
      "cannot be combined with distinct" },
    /* syntax (libyaml's problem mark) */
    { "environments:\n  e:\n    p: {rate: 1r/s\n", NULL, 4, 1,
      "bad YAML: did not find expected ',' or '}' (while parsing a flow "
      "mapping at line 3, column 8)" },
    { "a: b: c\n", NULL, 1, 5,
      "bad YAML: mapping values are not allowed in this context" },
    { "environments:\n\te: {}\n", NULL, 2, 1,
      "bad YAML: found character that cannot start any token (while "
      "scanning for the next token at line 2, column 1)" },
    { "environments:\n  e:\n    p: {" OK "}\n   q: {" OK "}\n", NULL, 4, 4,
      "bad YAML: did not find expected key" },
    { "environments:\n  e: {}\nenabled: \"yes\n", NULL, 4, 1,
      "bad YAML: found unexpected end of stream" },
    { "environments:\n  e: {}\nenabled: \xff\n", NULL, 3, 10,
      "bad YAML: invalid leading UTF-8 octet (#FF); expected UTF-8 text" },

    /* top level */
    { "", NULL, 1, 1, "the policy file is empty; expected a mapping" },
    { "# nothing\n\n", NULL, 1, 1, "the policy file is empty" },
    { "---\n", NULL, 2, 1, "the policy file is empty" },
    { "- environments\n", NULL, 1, 1,
      "the top level is a sequence; expected a mapping with environments:" },
    { "\n  environments\n", NULL, 2, 3,
      "the top level is a scalar; expected a mapping" },
    { "environments:\n  e: {}\n---\nenvironments: {}\n", NULL, 3, 1,
      "a second YAML document; expected one document per policy file" },

    /* unknown keys */
    { "enabled: true\nlimits: 1\nenvironments:\n  e: {}\n", NULL, 2, 1,
      "unknown key \"limits\" at the top level; expected one of: enabled, "
      "environment, defaults, environments" },
    { "defaults:\n  ratee: 1r/s\nenvironments:\n  e: {}\n", NULL, 2, 3,
      "unknown key \"ratee\" in defaults; expected one of: rate, key, "
      "count, warn, penalty, dry_run, sync, zone_size" },
    { "environments:\n  e:\n    login:\n      rate: 1r/s\n      rat: 1\n",
      NULL, 5, 7,
      "unknown key \"rat\" in policy \"login\" of environment \"e\"; "
      "expected one of: rate, key, count, warn, penalty, dry_run, sync, "
      "zone_size" },
    { "environments:\n  e:\n    p:\n      penalty:\n        base: 1s\n"
      "        cap: 1h\n", NULL, 6, 9,
      "unknown key \"cap\" in the penalty of policy \"p\" of environment "
      "\"e\"; expected one of: base, factor, max, forgive" },

    /* wrong types */
    { "environments: production\n", NULL, 1, 15,
      "environments is a scalar; expected a mapping of environment names "
      "to policies" },
    { "environments: [a, b]\n", NULL, 1, 15,
      "environments is a sequence; expected a mapping" },
    { "defaults: 10\nenvironments:\n  e: {}\n", NULL, 1, 11,
      "defaults is a scalar; expected a mapping of policy settings" },
    { "environments:\n  e: [p]\n", NULL, 2, 6,
      "environment \"e\" is a sequence; expected a mapping of policy names "
      "to policies" },
    { "environments:\n  e:\n    p: [1r/s]\n", NULL, 3, 8,
      "policy \"p\" of environment \"e\" is a sequence; expected a mapping "
      "of policy settings" },
    { "environments:\n  e:\n    p: 1r/s\n", NULL, 3, 8,
      "policy \"p\" of environment \"e\" is a scalar; expected a mapping" },
    { "environments:\n  e:\n    p:\n      rate: {n: 1}\n", NULL, 4, 13,
      "rate in policy \"p\" of environment \"e\" is a mapping; expected a "
      "scalar value" },
    { "environments:\n  e:\n    p: {rate: [1r/s]}\n", NULL, 3, 15,
      "rate in policy \"p\" of environment \"e\" is a sequence; expected a "
      "scalar value" },
    { "environments:\n  e:\n    p: {" OK ", penalty: [1s]}\n", NULL, 3, 39,
      "penalty in policy \"p\" of environment \"e\" is a sequence; expected "
      "a mapping with base (and factor, max, forgive) or off" },
    { "environments:\n  e:\n    p: {" OK ", penalty: {base: {a: 1}}}\n",
      NULL, 3, 46,
      "penalty.base in policy \"p\" of environment \"e\" is a mapping; "
      "expected a scalar value" },
    { "enabled: {a: 1}\nenvironments:\n  e: {}\n", NULL, 1, 10,
      "enabled is a mapping; expected a scalar value" },
    { "environment: [a]\nenvironments:\n  e: {}\n", NULL, 1, 14,
      "environment is a sequence; expected a scalar value" },
    { "environments:\n  ? [a]\n  : {}\n", NULL, 2, 5,
      "a sequence as a mapping key; expected a name" },
    { "environments:\n  e:\n    {a: 1}: {}\n", NULL, 3, 5,
      "a mapping as a mapping key; expected a name" },

    /* values */
    { "environments:\n  e:\n    p:\n      rate: 20/15m\n      key: $k\n",
      NULL, 4, 13,
      "bad rate \"20/15m\" in policy \"p\" of environment \"e\"; expected "
      "a count, \"r/\" and a window; a rate must be Nr/s, Nr/m, Nr/h, Nr/d "
      "or Nr/<count><unit>" },
    { "environments:\n  e:\n    p: {rate: 0r/s, key: $k}\n", NULL, 3, 15,
      "bad rate \"0r/s\" in policy \"p\" of environment \"e\"; the request "
      "count must be at least 1" },
    { "environments:\n  e:\n    p: {rate: 1r/366d, key: $k}\n", NULL, 3, 15,
      "; the window must be at most 365d" },
    { "environments:\n  e:\n    p:\n      rate:\n      key: $k\n", NULL, 4,
      12, "bad rate \"\" in policy \"p\"" },
    { "defaults:\n  rate: 5x\nenvironments:\n  e: {}\n", NULL, 2, 9,
      "bad rate \"5x\" in defaults; expected a count, \"r/\" and a window; "
      "a rate must be Nr/s" },
    { "environments:\n  e:\n    p: {" OK ", count: some}\n", NULL, 3, 37,
      "bad count \"some\" in policy \"p\" of environment \"e\"; expected all, "
      "failed or succeeded" },
    { "environments:\n  e:\n    p: {" OK ", sync: on}\n", NULL, 3, 36,
      "bad sync \"on\" in policy \"p\" of environment \"e\"; expected off, "
      "async or strict" },
    { "environments:\n  e:\n    p: {" OK ", dry_run: maybe}\n", NULL, 3,
      39, "bad dry_run \"maybe\" in policy \"p\" of environment \"e\"; "
      "expected true or false (also yes/no, on/off, 1/0)" },
    { "enabled: sometimes\nenvironments:\n  e: {}\n", NULL, 1, 10,
      "bad enabled \"sometimes\"; expected true or false" },
    { "enabled: ${TRL_UNSET:-maybe}\nenvironments:\n  e: {}\n", NULL, 1, 10,
      "bad enabled \"maybe\" (from \"${TRL_UNSET:-maybe}\"); expected true "
      "or false" },
    { "environments:\n  e:\n    p: {" OK ", zone_size: 10x}\n", NULL, 3, 41,
      "bad zone_size \"10x\" in policy \"p\" of environment \"e\"; expected "
      "a size in bytes or with a k, m or g suffix" },
    { "environments:\n  e:\n    p: {" OK ", zone_size: 31k}\n", NULL, 3, 41,
      "bad zone_size \"31k\" in policy \"p\" of environment \"e\"; expected "
      "at least 32k" },
    { "environments:\n  e:\n    p: {" OK ", zone_size: 99999999999g}\n",
      NULL, 3, 41, "the size is too large" },
    { "environments:\n  e:\n    p: {rate: 1r/s, key: \"\"}\n", NULL, 3, 26,
      "bad key \"\" in policy \"p\" of environment \"e\"; expected a "
      "non-empty nginx string" },
    { "environments:\n  e:\n    p: {rate: 1r/s, key: \"a\\0b\"}\n", NULL, 3, 26,
      "bad key \"a\\x00b\" in policy \"p\"" },

    /* warn */
    { "environments:\n  e:\n    p: {" OK ", warn: 0}\n", NULL, 3, 36,
      "bad warn \"0\" in policy \"p\" of environment \"e\"; expected a "
      "percentage of the rate's N (1% to 100%), a number of requests (1 to "
      "N) or off, such as 80% or 8" },
    { "environments:\n  e:\n    p: {" OK ", warn: 0%}\n", NULL, 3, 36,
      "bad warn \"0%\"" },
    { "environments:\n  e:\n    p: {" OK ", warn: 101%}\n", NULL, 3, 36,
      "bad warn \"101%\"" },
    { "environments:\n  e:\n    p: {" OK ", warn: 8.5%}\n", NULL, 3, 36,
      "bad warn \"8.5%\"" },
    { "environments:\n  e:\n    p: {" OK ", warn: lots}\n", NULL, 3, 36,
      "bad warn \"lots\"" },
    { "environments:\n  e:\n    p: {" OK ", warn: yes}\n", NULL, 3, 36,
      "bad warn \"yes\"" },
    { "environments:\n  e:\n    p:\n      rate: 20r/m\n      key: $k\n"
      "      warn: 21\n", NULL, 6, 13,
      "warn \"21\" is above the rate's 20 requests for policy \"p\" of "
      "environment \"e\"; expected 1 to 20 or a percentage" },
    { "environments:\n  e:\n    p:\n      rate: 20r/m\n      key: $k\n"
      "      warn: 99999999999\n", NULL, 6, 13,
      "warn \"99999999999\" is above the rate's 20 requests" },
    /* inherited: reported where it is written, for the policy */
    { "defaults:\n  warn: 10\nenvironments:\n  e:\n"
      "    big: {rate: 100r/m, key: $k}\n    small: {rate: 5r/m, key: $k}\n",
      NULL, 2, 9,
      "warn \"10\" is above the rate's 5 requests for policy \"small\" of "
      "environment \"e\"" },

    /* penalties */
    { "environments:\n  e:\n    p: {" OK ", penalty: {base: 30}}\n", NULL, 3,
      46, "bad penalty.base \"30\" in policy \"p\" of environment \"e\"; "
      "expected <N><unit> with unit ms, s, m, h or d (e.g. 500ms, 30s, 15m, "
      "1h30m)" },
    { "environments:\n  e:\n    p: {" OK ", penalty: {base: 0s}}\n", NULL, 3,
      46, "bad penalty.base \"0s\" in policy \"p\" of environment \"e\"; "
      "expected a duration above 0" },
    { "environments:\n  e:\n    p: {" OK ", penalty: {base: 1s, max: 366d}}"
      "\n", NULL, 3, 55, "bad penalty.max \"366d\" in policy \"p\" of "
      "environment \"e\"; the duration must be at most 365d" },
    { "environments:\n  e:\n    p: {" OK ", penalty: {base: 1s, forgive: "
      "1x}}\n", NULL, 3, 59, "bad penalty.forgive \"1x\"" },
    { "environments:\n  e:\n    p: {" OK ", penalty: {base: 1s, factor: "
      "0.5}}\n", NULL, 3, 58, "bad penalty.factor \"0.5\" in policy \"p\" of "
      "environment \"e\"; the factor must be at least 1" },
    { "environments:\n  e:\n    p: {" OK ", penalty: {base: 1s, factor: "
      "two}}\n", NULL, 3, 58, "bad penalty.factor \"two\" in policy \"p\" "
      "of environment \"e\"; expected a number of at least 1 (e.g. 2 or "
      "1.5)" },
    { "environments:\n  e:\n    p: {" OK ", penalty: {base: 1s, factor: "
      "2.}}\n", NULL, 3, 58, "bad penalty.factor \"2.\"" },
    { "environments:\n  e:\n    p: {" OK ", penalty: {base: 1s, factor: "
      "1001}}\n", NULL, 3, 58, "the factor must be at most 1000" },
    { "environments:\n  e:\n    p:\n      rate: 1r/s\n      key: $k\n"
      "      penalty:\n        base: 2h\n        max: 1h\n", NULL, 8, 14,
      "penalty.max \"1h\" is below penalty.base \"2h\" for policy \"p\" of "
      "environment \"e\"; expected max >= base" },
    { "environments:\n  e:\n    p:\n      rate: 1r/s\n      key: $k\n"
      "      penalty:\n        factor: 3\n", NULL, 7, 9,
      "the penalty of policy \"p\" of environment \"e\" has no base; "
      "expected base: <duration>" },
    { "defaults:\n  penalty: {max: 2h}\nenvironments:\n  e:\n"
      "    p: {" OK "}\n", NULL, 2, 12,
      "the penalty of policy \"p\" of environment \"e\" has no base" },
    { "environments:\n  e:\n    p: {" OK ", penalty: on}\n", NULL, 3, 39,
      "bad penalty \"on\" in policy \"p\" of environment \"e\"; expected a "
      "mapping with base (and factor, max, forgive) or off" },
    { "environments:\n  e:\n    p:\n      " OK "\n", NULL, 4, 22,
      "bad YAML: mapping values are not allowed in this context" },
    { "environments:\n  e:\n    p:\n      rate: 1r/s\n      key: $k\n"
      "      penalty:\n", NULL, 6, 15, "bad penalty \"\" in policy \"p\"" },

    /* missing settings (reported at the policy's name) */
    { "environments:\n  e:\n    login:\n      key: $k\n", NULL, 3, 5,
      "policy \"login\" of environment \"e\" has no rate; expected rate: "
      "(e.g. 20r/15m) in the policy or in defaults" },
    { "defaults:\n  rate: 1r/s\nenvironments:\n  e:\n    login:\n", NULL,
      5, 5, "policy \"login\" of environment \"e\" has no key; expected key: "
      "(e.g. $binary_remote_addr) in the policy or in defaults" },

    /* names */
    { "environments:\n  e:\n    log in: {" OK "}\n", NULL, 3, 5,
      "invalid policy name \"log in\"; expected 1 to 63 letters, digits, "
      "'_', '-' or '.'" },
    { "environments:\n  e:\n    \"a/b\": {" OK "}\n", NULL, 3, 5,
      "invalid policy name \"a/b\"" },
    { "environments:\n  e:\n    \"\": {" OK "}\n", NULL, 3, 5,
      "invalid policy name \"\"" },
    { "environments:\n  e:\n    "
      "a123456789012345678901234567890123456789012345678901234567890123: "
      "{" OK "}\n", NULL, 3, 5, "invalid policy name" },
    { "environments:\n  prod env: {}\n", NULL, 2, 3,
      "invalid environment name \"prod env\"" },
    { "environments:\n  \"prod\\u00e9\": {}\n", NULL, 2, 3,
      "invalid environment name \"prod\xc3\xa9\"" },

    /* duplicates */
    { "environments:\n  e:\n    login: {" OK "}\n    login: {" OK "}\n",
      NULL, 4, 5, "duplicate key \"login\" (first at line 3); expected each "
      "key once per mapping" },
    { "environments:\n  e:\n    p:\n      rate: 1r/s\n      key: $k\n"
      "      rate: 2r/s\n", NULL, 6, 7,
      "duplicate key \"rate\" (first at line 4)" },
    { "environments:\n  e: {}\nenabled: true\nenvironments:\n  f: {}\n",
      NULL, 4, 1, "duplicate key \"environments\" (first at line 1)" },
    { "environments:\n  e: {}\n  e: {}\n", NULL, 3, 3,
      "duplicate key \"e\" (first at line 2)" },
    { "environments: {e: {p: {penalty: {base: 1s, base: 2s}}}}\n", NULL, 1,
      44, "duplicate key \"base\" (first at line 1)" },

    /* environments */
    { "enabled: true\n", NULL, 1, 1,
      "no environments: in the policy file; expected environments: with at "
      "least one environment of policies" },
    { "environments: {}\n", NULL, 1, 15,
      "environments: is empty; expected at least one environment" },
    { "environments:\n", NULL, 1, 14, "environments: is empty" },
    { "environments:\n  development: {}\n  production: {}\n", "staging", 1,
      1, "unknown environment \"staging\" (requested by the caller); "
      "expected one of: development, production" },
    { "environment: staging\n"
      "environments:\n  development: {}\n  production: {}\n", NULL, 1, 14,
      "unknown environment \"staging\"; expected one of: development, "
      "production" },
    { "environment: ${TRL_UNSET:-}\n"
      "environments:\n  development: {}\n  production: {}\n", NULL, 1, 14,
      "unknown environment \"\"; expected one of: development, production" },
    { "\nenvironments:\n  development: {}\n  production: {}\n", NULL, 2, 1,
      "no environment chosen among development, production; expected "
      "environment: NAME at the top level or an environment named in "
      "nginx.conf" },
    /* every environment is validated, not only the chosen one */
    { "environments:\n  development:\n    p: {rate: 1r/x, key: $k}\n"
      "  production: {}\n", "production", 3, 15,
      "bad rate \"1r/x\" in policy \"p\" of environment \"development\"" },

    /* variables */
    { "environments:\n  e:\n    p: {rate: \"${RATE}r/m\", key: $k}\n", NULL,
      3, 15, "variable RATE is not set; expected it in the environment (or "
      "an env directive of nginx.conf) or a default: ${RATE:-value} (in "
      "rate in policy \"p\" of environment \"e\")" },
    { "environments:\n  e:\n    p:\n      rate: 1r/s\n"
      "      key: $a${LOGIN_N}${NOT_SET}\n", NULL, 5, 12,
      "variable NOT_SET is not set" },
    { "environment: ${NO_ENV}\nenvironments:\n  e: {}\n", NULL, 1, 14,
      "variable NO_ENV is not set" },
    { "environments:\n  e:\n    p: {rate: \"${1X}r/m\", key: $k}\n", NULL,
      3, 15, "bad variable reference \"${1X}\"; expected ${NAME} or "
      "${NAME:-default}" },
    { "environments:\n  e:\n    p: {rate: \"${}r/m\", key: $k}\n", NULL,
      3, 15, "bad variable reference \"${}\"" },
    { "environments:\n  e:\n    p: {rate: \"${:-1}r/m\", key: $k}\n", NULL,
      3, 15, "bad variable reference \"${:-1}\"" },
    { "environments:\n  e:\n    p: {rate: \"${N-1}r/m\", key: $k}\n", NULL,
      3, 15, "bad variable reference \"${N-1}\"" },
    { "environments:\n  e:\n    p: {rate: \"${N r/m\", key: $k}\n", NULL,
      3, 15, "unterminated variable reference \"${N r/m\"" },
    { "environments:\n  e:\n    p: {rate: \"${A:-${B}}r/m\", key: $k}\n",
      NULL, 3, 15, "nested variable reference in \"${A:-${B}\"" },

    /* what the reader refuses */
    { "defaults: &d\n  key: $k\nenvironments:\n  e: {}\n", NULL, 1, 11,
      "anchor &d is not supported; expected a value without anchors" },
    { "defaults:\n  key: &k $k\nenvironments:\n  e:\n    p: {key: *k}\n",
      NULL, 2, 8, "anchor &k is not supported" },
    { "environments:\n  e:\n    p: {rate: !!str 1r/s, key: $k}\n", NULL, 3,
      15, "tag tag:yaml.org,2002:str is not supported; expected a value "
      "without tags" },
    /* distinct: */
    { "environments:\n  e:\n    p: {" OK ", distinct: user}\n", NULL, 3, 40,
      "bad distinct \"user\" in policy \"p\" of environment \"e\"" },
    { "environments:\n  e:\n    p: {" OK ", distinct: user}\n", NULL, 3, 40,
      "expected an nginx string with variables such as $trl_user, or off" },
    { "environments:\n  e:\n    p: {rate: 1001r/s, key: $k, distinct: $u}\n",
      NULL, 3, 15, "expected at most 1000 per window" },
    { "x: [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["
      "[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]"
      "]]]]\n", NULL, 1, 67, "nesting deeper than 64 levels" },
};

/* distinct: a policy counting distinct values, inherited, cancelled */
START_TEST(distinct_values)
{
    trl_policy_t       p;
    trl_policy_set_t  *set;

    set = load_ok("defaults: { key: $k, distinct: $trl_user }\n"
                  "environments:\n"
                  "  e:\n"
                  "    inherits: { rate: 10r/10m }\n"
                  "    own: { rate: 8r/1h, distinct: $remote_addr, "
                  "sync: strict }\n"
                  "    requests: { rate: 5r/m, distinct: off }\n"
                  "    most: { rate: 1000r/1h }\n", NULL);

    p = get(set, "inherits");
    ck_assert_ptr_nonnull(p.distinct);
    ck_assert_str_eq(p.distinct, "$trl_user");
    ck_assert_uint_eq(p.rate.limit, 10);

    p = get(set, "own");
    ck_assert_ptr_nonnull(p.distinct);
    ck_assert_str_eq(p.distinct, "$remote_addr");
    ck_assert_uint_eq(p.sync, TRL_SYNC_MODE_STRICT);

    p = get(set, "requests");
    ck_assert_ptr_null(p.distinct);

    p = get(set, "most");
    ck_assert_str_eq(p.distinct, "$trl_user");
    ck_assert_uint_eq(p.rate.limit, 1000);

    trl_policy_free(set);

    set = load_ok("environments:\n  e:\n    p: { rate: 2000r/s, key: $k, "
                  "sync: async }\n", NULL);
    p = get(set, "p");
    ck_assert_ptr_null(p.distinct);          /* requests: any N, async */
    trl_policy_free(set);

    set = load_ok("environments:\n  e:\n    p: { rate: 10r/10m, key: $k, "
                  "distinct: $trl_user, sync: async }\n", NULL);
    p = get(set, "p");
    ck_assert_str_eq(p.distinct, "$trl_user");  /* distinct, async */
    ck_assert_uint_eq(p.sync, TRL_SYNC_MODE_ASYNC);
    trl_policy_free(set);
}
END_TEST


START_TEST(active_values)
{
    trl_policy_t       p;
    trl_policy_set_t  *set;

    set = load_ok("defaults: { key: $sub, lifetime: $upstream_http_x_exp }\n"
                  "environments:\n"
                  "  e:\n"
                  "    tokens: { rate: 5r/15m, active: 24h, "
                  "token: $upstream_http_x_id, count: succeeded }\n"
                  "    plain: { rate: 5r/15m, active: on }\n", NULL);
    p = get(set, "tokens");
    ck_assert(p.active && p.active_max_ms == 86400000);
    ck_assert_str_eq(p.lifetime, "$upstream_http_x_exp");
    ck_assert_str_eq(p.token, "$upstream_http_x_id");
    p = get(set, "plain");
    ck_assert(p.active && p.active_max_ms == 0 && p.token == NULL);
    trl_policy_free(set);
}
END_TEST


START_TEST(load_errors)
{
    trl_policy_set_t  *set;
    char               err[1024], prefix[128], *path;

    path = fixture(errors[_i].yaml);
    err[0] = '\0';
    set = trl_policy_load(path, errors[_i].env, lookup, (void *) vars, err,
                          sizeof(err));
    if (set != NULL) {
        trl_policy_free(set);
        ck_abort_msg("case %d loaded:\n%s", _i, errors[_i].yaml);
    }
    snprintf(prefix, sizeof(prefix), "%s:%u:%u: ", path, errors[_i].line,
             errors[_i].col);
    ck_assert_msg(strncmp(err, prefix, strlen(prefix)) == 0,
                  "case %d: expected %s..., got %s", _i, prefix, err);
    ck_assert_msg(strstr(err + strlen(prefix), errors[_i].what) != NULL,
                  "case %d: expected \"%s\" in %s", _i, errors[_i].what,
                  err);
    fixture_done(path);
}
END_TEST


START_TEST(alias_refused)
{
    trl_policy_set_t  *set;
    char               err[1024], prefix[128], *path;

    /* an alias without its anchor's refusal first: anchors come first, so
     * check the alias message on its own through an undefined alias */
    path = fixture("environments:\n  e:\n    p: *undefined\n");
    set = trl_policy_load(path, NULL, NULL, NULL, err, sizeof(err));
    ck_assert_ptr_null(set);
    snprintf(prefix, sizeof(prefix), "%s:3:8: ", path);
    ck_assert_msg(strncmp(err, prefix, strlen(prefix)) == 0, "%s", err);
    ck_assert_ptr_nonnull(strstr(err, "alias *undefined is not supported"));
    fixture_done(path);
}
END_TEST


/* ---- durations and sizes ------------------------------------------------ */

static const struct {
    const char  *text;
    uint64_t     ms;
} durations[] = {
    { "0s", 0 }, { "1ms", 1 }, { "500ms", 500 }, { "1s", SEC },
    { "30s", 30 * SEC }, { "15m", 15 * MIN }, { "1h", HOUR }, { "2d", 2 * DAY },
    { "1h30m", 90 * MIN }, { "1m30s500ms", 90 * SEC + 500 },
    { "365d", 365 * DAY }, { "364d24h", 365 * DAY }, { "007s", 7 * SEC },
};

START_TEST(duration_accepts)
{
    uint64_t  ms = 12345;
    char      err[256];

    err[0] = '\0';
    ck_assert_msg(trl_duration_parse(durations[_i].text,
                                     strlen(durations[_i].text), &ms, err,
                                     sizeof(err)) == TRL_OK,
                  "\"%s\": %s", durations[_i].text, err);
    ck_assert_uint_eq(ms, durations[_i].ms);
}
END_TEST

static const struct {
    const char  *text;
    const char  *reason;
} bad_durations[] = {
    { "", "expected <N><unit>" }, { "30", "expected <N><unit>" },
    { "s", "expected <N><unit>" }, { "1x", "expected <N><unit>" },
    { "1 s", "expected <N><unit>" }, { "1S", "expected <N><unit>" },
    { "1h30", "expected <N><unit>" }, { "-1s", "expected <N><unit>" },
    { "1.5h", "expected <N><unit>" }, { "1mss", "expected <N><unit>" },
    { "366d", "at most 365d" }, { "365d1ms", "at most 365d" },
    { "99999999999999999999999s", "at most 365d" },
};

START_TEST(duration_rejects)
{
    uint64_t  ms = 12345;
    char      err[256];

    err[0] = '\0';
    ck_assert_int_eq(trl_duration_parse(bad_durations[_i].text,
                                        strlen(bad_durations[_i].text), &ms,
                                        err, sizeof(err)), TRL_ERROR);
    ck_assert_uint_eq(ms, 12345);
    ck_assert_msg(strstr(err, bad_durations[_i].reason) != NULL,
                  "\"%s\": %s", bad_durations[_i].text, err);
}
END_TEST

START_TEST(duration_length)
{
    uint64_t  ms;
    char      err[64];

    /* len counts, not the NUL */
    ck_assert_int_eq(trl_duration_parse("30sX", 3, &ms, err, sizeof(err)),
                     TRL_OK);
    ck_assert_uint_eq(ms, 30 * SEC);
    ck_assert_int_eq(trl_duration_parse("30s", 2, &ms, err, sizeof(err)),
                     TRL_ERROR);
}
END_TEST

static const struct {
    const char  *text;
    uint64_t     bytes;
} sizes[] = {
    { "0", 0 }, { "32768", 32768 }, { "32k", 32 * 1024 }, { "32K", 32 * 1024 },
    { "10m", 10 * MB }, { "10M", 10 * MB }, { "1g", 1024 * MB },
    { "2G", 2048 * MB }, { "17179869183g", 17179869183ULL << 30 },
};

START_TEST(size_accepts)
{
    uint64_t  bytes = 12345;
    char      err[256];

    err[0] = '\0';
    ck_assert_msg(trl_size_parse(sizes[_i].text, strlen(sizes[_i].text),
                                 &bytes, err, sizeof(err)) == TRL_OK,
                  "\"%s\": %s", sizes[_i].text, err);
    ck_assert_uint_eq(bytes, sizes[_i].bytes);
}
END_TEST

static const struct {
    const char  *text;
    const char  *reason;
} bad_sizes[] = {
    { "", "expected a size" }, { "k", "expected a size" },
    { "10x", "expected a size" }, { "10mb", "expected a size" },
    { "1.5m", "expected a size" }, { "-1", "expected a size" },
    { "10 m", "expected a size" },
    { "17179869184g", "too large" },
    { "99999999999999999999", "too large" },
};

START_TEST(size_rejects)
{
    uint64_t  bytes = 12345;
    char      err[256];

    err[0] = '\0';
    ck_assert_int_eq(trl_size_parse(bad_sizes[_i].text,
                                    strlen(bad_sizes[_i].text), &bytes, err,
                                    sizeof(err)), TRL_ERROR);
    ck_assert_uint_eq(bytes, 12345);
    ck_assert_msg(strstr(err, bad_sizes[_i].reason) != NULL,
                  "\"%s\": %s", bad_sizes[_i].text, err);
}
END_TEST


#define N_OF(a)  ((int) (sizeof(a) / sizeof((a)[0])))

Suite *
policy_suite(void)
{
    Suite  *s;
    TCase  *tc;

    s = suite_create("policy");

    tc = unit_tcase(s, "good files", 10);
    tcase_add_test(tc, every_field);
    tcase_add_test(tc, file_order_get_find);
    tcase_add_test(tc, builtin_defaults);
    tcase_add_test(tc, defaults_override);
    tcase_add_loop_test(tc, warn_values, 0, N_OF(warns));
    tcase_add_loop_test(tc, penalty_values, 0, N_OF(penalties));
    tcase_add_test(tc, distinct_values);
    tcase_add_test(tc, active_values);
    tcase_add_test(tc, environment_selection);
    tcase_add_test(tc, substitution);
    tcase_add_test(tc, substitution_process_environment);
    tcase_add_loop_test(tc, enabled_values, 0, N_OF(enableds));
    tcase_add_test(tc, yaml_styles);
    tcase_add_test(tc, large_file);

    tc = unit_tcase(s, "errors", 10);
    tcase_add_test(tc, error_buffer);
    tcase_add_test(tc, unreadable);
    tcase_add_loop_test(tc, load_errors, 0, N_OF(errors));
    tcase_add_test(tc, alias_refused);

    tc = unit_tcase(s, "durations and sizes", 10);
    tcase_add_loop_test(tc, duration_accepts, 0, N_OF(durations));
    tcase_add_loop_test(tc, duration_rejects, 0, N_OF(bad_durations));
    tcase_add_test(tc, duration_length);
    tcase_add_loop_test(tc, size_accepts, 0, N_OF(sizes));
    tcase_add_loop_test(tc, size_rejects, 0, N_OF(bad_sizes));

    return s;
}
