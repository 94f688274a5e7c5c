/*
 * test_scripts.c - the Redis scripts' codecs (trl_scripts.h): each
 * encoder's argument vector as its script reads it (sync.cpp), each
 * decoder's round trip from the reply its script writes, and the replies
 * and inputs they refuse.
 */

#include "unit.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "trl_scripts.h"


#define ARGS_MAX  64
#define BUF_MAX   8192

/* a duration or count that does not fit the reply's 32 bits */
#define SAT(x)    ((x) > UINT32_MAX ? UINT32_MAX : (x))


typedef struct {
    trl_argv_t   argv;
    trl_bytes_t  args[ARGS_MAX];
    char         buf[BUF_MAX];
} room_t;


static trl_argv_t *
room(room_t *r, size_t max, size_t size)
{
    memset(r, 0, sizeof(room_t));
    trl_argv_init(&r->argv, r->args, max, r->buf, size);
    return &r->argv;
}


static void
arg_is(trl_argv_t *argv, size_t i, const char *want)
{
    ck_assert_msg(i < argv->n, "argument %zu of %zu", i, argv->n);
    ck_assert_msg(argv->args[i].len == strlen(want)
                  && memcmp(argv->args[i].data, want, strlen(want)) == 0,
                  "argument %zu: \"%.*s\", want \"%s\"", i,
                  (int) argv->args[i].len, argv->args[i].data, want);
}


static trl_bytes_t
bytes(const char *s)
{
    trl_bytes_t  b = { s, strlen(s) };

    return b;
}


static const trl_script_zone_t  zone30 = { 60000, 30, 0xab };


/* --- publish ------------------------------------------------------------ */

START_TEST(publish_encodes_as_the_script_reads)
{
    room_t             r;
    trl_argv_t        *argv = room(&r, ARGS_MAX, BUF_MAX);
    trl_publish_key_t  keys[2] = {
        { { "trl:{z:a}", 9 }, 3, 1, 0, 0, 0 },
        { { "trl:{z:b}", 9 }, 0, 0, 4000, 2, 60000 },
    };

    ck_assert_int_eq(trl_publish_encode(&zone30, keys, 2, argv), TRL_OK);
    ck_assert_uint_eq(argv->n, TRL_PUBLISH_ARGS(2));

    /* KEYS, then ARGV[1..4] and 5 per key from ARGV[5] (a = 4 + 5(i-1)) */
    arg_is(argv, 0, "trl:{z:a}");
    arg_is(argv, 1, "trl:{z:b}");
    ck_assert_ptr_eq(argv->args[0].data, keys[0].name.data);  /* no copy */
    arg_is(argv, 2, "60000");
    arg_is(argv, 3, "3000");                /* ceil(W / 20) */
    arg_is(argv, 4, "30");
    arg_is(argv, 5, "l:00000000000000ab");
    arg_is(argv, 6, "3");
    arg_is(argv, 7, "1");
    arg_is(argv, 8, "0");
    arg_is(argv, 9, "0");
    arg_is(argv, 10, "0");
    arg_is(argv, 11, "0");
    arg_is(argv, 12, "0");
    arg_is(argv, 13, "4000");
    arg_is(argv, 14, "2");
    arg_is(argv, 15, "60000");

    /* the script indexes ARGV as encoded */
    ck_assert_ptr_nonnull(strstr(trl_redis_script(TRL_SCRIPT_PUBLISH),
                                 "local a = 4 + (i - 1) * 5"));
}
END_TEST


START_TEST(publish_encode_refuses)
{
    room_t             r;
    trl_argv_t        *argv;
    trl_publish_key_t  key = { { "k", 1 }, 1, 2, 0, 0, 0 };
    trl_script_zone_t  bad = { 0, 30, 1 };

    argv = room(&r, ARGS_MAX, BUF_MAX);
    ck_assert_int_eq(trl_publish_encode(&zone30, &key, 1, argv), TRL_ERROR);
    ck_assert_uint_eq(argv->n, 0);          /* leased > delta */

    key.leased = 1;
    ck_assert_int_eq(trl_publish_encode(&zone30, &key, 0, argv), TRL_ERROR);
    ck_assert_int_eq(trl_publish_encode(&bad, &key, 1, argv), TRL_ERROR);
    ck_assert_int_eq(trl_publish_encode(NULL, &key, 1, argv), TRL_ERROR);
    ck_assert_int_eq(trl_publish_encode(&zone30, NULL, 1, argv), TRL_ERROR);
    ck_assert_int_eq(trl_publish_encode(&zone30, &key, 1, NULL), TRL_ERROR);

    /* exactly the room the macros give is enough, one less is not */
    argv = room(&r, TRL_PUBLISH_ARGS(1), TRL_PUBLISH_BUF(1));
    ck_assert_int_eq(trl_publish_encode(&zone30, &key, 1, argv), TRL_OK);
    argv = room(&r, TRL_PUBLISH_ARGS(1) - 1, BUF_MAX);
    ck_assert_int_eq(trl_publish_encode(&zone30, &key, 1, argv), TRL_ERROR);
    ck_assert_uint_eq(argv->n, 0);
    argv = room(&r, ARGS_MAX, 30);
    ck_assert_int_eq(trl_publish_encode(&zone30, &key, 1, argv), TRL_ERROR);
    ck_assert_uint_eq(argv->used, 0);
}
END_TEST


START_TEST(publish_decode_round_trip)
{
    int                i, k, n;
    char               reply[4096], *p;
    uint64_t           v[1 + 5 * 8];
    trl_sync_read_t    reads[8];
    trl_publish_key_t  keys[8];

    srandom(17);

    for (i = 0; i < 200; i++) {
        n = 1 + random() % 8;
        v[0] = 1700000000000ULL + random();
        p = reply + sprintf(reply, "%" PRIu64, v[0]);

        for (k = 0; k < 5 * n; k++) {
            v[1 + k] = random() % 4 == 0 ? (uint64_t) random() << 8
                                         : (uint64_t) random() % 100000;
            p += sprintf(p, " %" PRIu64, v[1 + k]);
        }

        for (k = 0; k < n; k++) {
            keys[k].delta = random() % 50;
            keys[k].leased = keys[k].delta ? random() % keys[k].delta : 0;
        }

        memset(reads, 0xee, sizeof(reads));
        unit_eq(trl_publish_decode(reply, p - reply, keys, n, reads),
                TRL_OK);

        for (k = 0; k < n; k++) {
            unit_eq(reads[k].stamp_ms, v[0]);
            unit_eq(reads[k].total, SAT(v[1 + 5 * k]));
            unit_eq(reads[k].free_in_ms, SAT(v[2 + 5 * k]));
            unit_eq(reads[k].reset_in_ms, SAT(v[3 + 5 * k]));
            unit_eq(reads[k].penalty_in_ms, SAT(v[4 + 5 * k]));
            unit_eq(reads[k].violations, SAT(v[5 + 5 * k]));
            unit_eq(reads[k].published, keys[k].delta - keys[k].leased);
        }

        /* one key fewer or more than the reply holds: refused */
        if (n > 1) {
            unit_eq(trl_publish_decode(reply, p - reply, keys, n - 1, reads),
                    TRL_ERROR);
        }

        if (n < 8) {
            unit_eq(trl_publish_decode(reply, p - reply, keys, n + 1, reads),
                    TRL_ERROR);
        }
    }
}
END_TEST


/* malformed replies of one key (publish: 6 integers) */
static const char  *bad_replies[] = {
    "",
    "1",
    "1 2 3 4 5",                            /* too few */
    "1 2 3 4 5 6 7",                        /* too many */
    " 1 2 3 4 5 6",                         /* a leading space */
    "1 2 3 4 5 6 ",                         /* a trailing one */
    "1  2 3 4 5 6",                         /* two */
    "1 2 3 -4 5 6",                         /* negative */
    "1 2 3 +4 5 6",
    "1 2 3 4x 5 6",
    "1 2 3 4.5 5 6",
    "1 2 3 1e+15 5 6",
    "1 2 3 4 5 18446744073709551616",       /* 2^64 */
    "1\t2 3 4 5 6",
    "ERR 2 3 4 5 6",
};


START_TEST(publish_decode_refuses)
{
    trl_sync_read_t    read, before;
    trl_publish_key_t  key = { { "k", 1 }, 0, 0, 0, 0, 0 };
    const char        *s = bad_replies[_i];

    memset(&read, 0x5a, sizeof(read));
    before = read;

    ck_assert_msg(trl_publish_decode(s, strlen(s), &key, 1, &read)
                  == TRL_ERROR, "\"%s\" taken", s);
    ck_assert_msg(memcmp(&read, &before, sizeof(read)) == 0,
                  "\"%s\": filled although refused", s);
}
END_TEST


START_TEST(publish_decode_whole_or_nothing)
{
    trl_sync_read_t    reads[2], before[2];
    trl_publish_key_t  keys[2] = { { { "a", 1 }, 0, 0, 0, 0, 0 },
                                   { { "b", 1 }, 0, 0, 0, 0, 0 } };
    const char        *s = "9 1 2 3 4 5 1 2 3 4 x";

    memset(reads, 0x5a, sizeof(reads));
    memcpy(before, reads, sizeof(reads));

    /* the first key's part is good, the second's is not */
    ck_assert_int_eq(trl_publish_decode(s, strlen(s), keys, 2, reads),
                     TRL_ERROR);
    ck_assert(memcmp(reads, before, sizeof(reads)) == 0);

    ck_assert_int_eq(trl_publish_decode(NULL, 0, keys, 1, reads), TRL_ERROR);
    ck_assert_int_eq(trl_publish_decode("1 2 3 4 5 6", 11, keys, 0, reads),
                     TRL_ERROR);

    /* bytes past len are not read */
    ck_assert_int_eq(trl_publish_decode("1 2 3 4 5 6 7", 11, keys, 1, reads),
                     TRL_OK);
    ck_assert_uint_eq(reads[0].violations, 6);
    ck_assert_uint_eq(reads[0].stamp_ms, 1);
}
END_TEST


/* --- ask ---------------------------------------------------------------- */

START_TEST(ask_encodes_as_the_script_reads)
{
    room_t              r;
    trl_argv_t         *argv = room(&r, ARGS_MAX, BUF_MAX);
    trl_bytes_t         names[3] = { { "n1", 2 }, { "n2", 2 }, { "n3", 2 } };
    trl_script_zone_t   z = { 3600000, 95, 0x0123456789abcdefULL };

    ck_assert_int_eq(trl_ask_encode(&z, 2500, names, 3, argv), TRL_OK);
    ck_assert_uint_eq(argv->n, TRL_ASK_ARGS(3));

    arg_is(argv, 0, "n1");
    arg_is(argv, 2, "n3");
    arg_is(argv, 3, "3600000");
    arg_is(argv, 4, "180000");
    arg_is(argv, 5, "95");
    arg_is(argv, 6, "l:0123456789abcdef");
    {
        char  lease[32];

        sprintf(lease, "%u", trl_lease_ms(z.window_ms));
        arg_is(argv, 7, lease);
    }
    arg_is(argv, 8, "2500");
    arg_is(argv, 9, "10");                  /* the largest share, N / 10 */

    argv = room(&r, TRL_ASK_ARGS(3), TRL_ASK_BUF);
    ck_assert_int_eq(trl_ask_encode(&z, 2500, names, 3, argv), TRL_OK);
    argv = room(&r, TRL_ASK_ARGS(3), 40);
    ck_assert_int_eq(trl_ask_encode(&z, 2500, names, 3, argv), TRL_ERROR);
    ck_assert_int_eq(trl_ask_encode(&z, 2500, names, 0, argv), TRL_ERROR);
    ck_assert_int_eq(trl_ask_encode(&z, 2500, NULL, 1, argv), TRL_ERROR);
}
END_TEST


START_TEST(ask_decode_round_trip)
{
    int                i, k, j, n;
    char               reply[4096], *p;
    uint64_t           v[4][8], now;
    trl_ask_answer_t   answers[4];

    srandom(23);

    for (i = 0; i < 200; i++) {
        n = 1 + random() % 4;
        now = 1700000001234ULL + i;
        p = reply + sprintf(reply, "%" PRIu64, now);

        for (k = 0; k < n; k++) {
            v[k][0] = random() % 2;
            v[k][1] = random() % 100;
            v[k][2] = random() % 60000;
            v[k][3] = random() % 2 ? (uint64_t) 5 << 32
                                   : (uint64_t) random() % 60000;
            v[k][4] = random() % 5000;
            v[k][5] = random() % 63;
            v[k][6] = 566666667 + random() % 10;
            v[k][7] = random() % 4;

            for (j = 0; j < 8; j++) {
                p += sprintf(p, " %" PRIu64, v[k][j]);
            }
        }

        unit_eq(trl_ask_decode(&zone30, reply, p - reply, n, answers),
                TRL_OK);

        for (k = 0; k < n; k++) {
            unit_eq(answers[k].reply.stamp_ms, now);
            unit_eq(answers[k].reply.admitted, v[k][0]);
            unit_eq(answers[k].reply.total, v[k][1]);
            unit_eq(answers[k].reply.free_in_ms, v[k][2]);
            unit_eq(answers[k].reply.reset_in_ms, SAT(v[k][3]));
            unit_eq(answers[k].reply.penalty_in_ms, v[k][4]);
            unit_eq(answers[k].reply.violations, v[k][5]);
            unit_eq(answers[k].cell, v[k][6]);
            unit_eq(answers[k].reply.lease, v[k][7]);
            unit_eq(answers[k].reply.lease_ms,
                    trl_lease_ms(zone30.window_ms));
        }
    }
}
END_TEST


START_TEST(ask_decode_refuses)
{
    trl_ask_answer_t  a[2];
    const char       *two = "5 2 1 0 0 0 0 7 0";   /* admitted 2 */
    const char       *one = "5 1 1 0 0 0 0 7 0";
    const char       *short_ = "5 1 1 0 0 0 0 7";

    ck_assert_int_eq(trl_ask_decode(&zone30, two, strlen(two), 1, a),
                     TRL_ERROR);
    ck_assert_int_eq(trl_ask_decode(&zone30, short_, strlen(short_), 1, a),
                     TRL_ERROR);
    ck_assert_int_eq(trl_ask_decode(&zone30, one, strlen(one), 2, a),
                     TRL_ERROR);
    ck_assert_int_eq(trl_ask_decode(NULL, one, strlen(one), 1, a),
                     TRL_ERROR);
    ck_assert_int_eq(trl_ask_decode(&zone30, one, strlen(one), 1, a),
                     TRL_OK);
    ck_assert_uint_eq(a[0].cell, 7);
}
END_TEST


/* --- strict ------------------------------------------------------------- */

START_TEST(strict_encodes_as_the_script_reads)
{
    room_t          r;
    trl_argv_t     *argv = room(&r, ARGS_MAX, BUF_MAX);
    trl_bytes_t     name = bytes("trl:{login:alice}");
    trl_penalty_t   penalty = { 60000, 3600000, 7200000, 1.5, 0 };

    ck_assert_int_eq(trl_strict_encode(&zone30, &penalty, 0, &name, argv),
                     TRL_OK);
    ck_assert_uint_eq(argv->n, TRL_STRICT_ARGS);
    arg_is(argv, 0, "trl:{login:alice}");
    arg_is(argv, 1, "60000");
    arg_is(argv, 2, "3000");
    arg_is(argv, 3, "30");
    arg_is(argv, 4, "60000");
    arg_is(argv, 5, "1.500");
    arg_is(argv, 6, "3600000");
    arg_is(argv, 7, "7200000");

    /* a dry run starts no penalty, but keeps the forgive time */
    penalty.factor = 2;
    ck_assert_int_eq(trl_strict_encode(&zone30, &penalty, 1, &name, argv),
                     TRL_OK);
    arg_is(argv, 4, "0");
    arg_is(argv, 5, "2.000");
    arg_is(argv, 7, "7200000");

    penalty.factor = 1.0005;               /* three decimals, rounded */
    ck_assert_int_eq(trl_strict_encode(&zone30, &penalty, 0, &name, argv),
                     TRL_OK);
    arg_is(argv, 5, "1.001");

    penalty.factor = -1;
    ck_assert_int_eq(trl_strict_encode(&zone30, &penalty, 0, &name, argv),
                     TRL_ERROR);
    penalty.factor = 2;

    argv = room(&r, TRL_STRICT_ARGS, TRL_STRICT_BUF);
    ck_assert_int_eq(trl_strict_encode(&zone30, &penalty, 0, &name, argv),
                     TRL_OK);
    argv = room(&r, TRL_STRICT_ARGS - 1, TRL_STRICT_BUF);
    ck_assert_int_eq(trl_strict_encode(&zone30, &penalty, 0, &name, argv),
                     TRL_ERROR);
    ck_assert_int_eq(trl_strict_encode(&zone30, NULL, 0, &name, argv),
                     TRL_ERROR);
}
END_TEST


START_TEST(strict_decode_round_trip)
{
    int                  i;
    char                 reply[256];
    uint64_t             v[8];
    trl_strict_answer_t  a;

    srandom(29);

    for (i = 0; i < 300; i++) {
        v[0] = random() % 2;
        v[1] = random() % 100;
        v[2] = random() % 2 ? (uint64_t) 1 << 33 : (uint64_t) random() % 60000;
        v[3] = random() % 60000;
        v[4] = random();
        v[5] = random() % 63;
        v[6] = random() % 3;
        v[7] = random() % 100000;
        sprintf(reply, "%" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64
                " %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64,
                v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7]);

        unit_eq(trl_strict_decode(reply, strlen(reply), &a), TRL_OK);
        unit_eq(a.reply.admitted, v[0]);
        unit_eq(a.reply.total, v[1]);
        unit_eq(a.reply.free_in_ms, SAT(v[2]));
        unit_eq(a.reply.reset_in_ms, v[3]);
        unit_eq(a.cell, v[4]);
        unit_eq(a.reply.violations, v[5]);
        unit_eq(a.reply.penalty, v[6]);
        unit_eq(a.reply.block_in_ms, v[7]);
    }
}
END_TEST


START_TEST(strict_decode_refuses)
{
    trl_strict_answer_t  a, before;
    static const char   *bad[] = {
        "2 1 0 0 5 0 0 0",                  /* admitted 2 */
        "1 1 0 0 5 0 3 0",                  /* penalty 3 */
        "1 1 0 0 5 0 0",
        "1 1 0 0 5 0 0 0 0",
        "1 1 0 0 -5 0 0 0",
        "",
    };
    size_t               i;

    memset(&a, 0x77, sizeof(a));
    before = a;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ck_assert_msg(trl_strict_decode(bad[i], strlen(bad[i]), &a)
                      == TRL_ERROR, "\"%s\" taken", bad[i]);
        ck_assert(memcmp(&a, &before, sizeof(a)) == 0);
    }

    ck_assert_int_eq(trl_strict_decode(NULL, 0, &a), TRL_ERROR);
    ck_assert_int_eq(trl_strict_decode("1 1 0 0 5 0 2 9", 15, NULL),
                     TRL_ERROR);
}
END_TEST


/* --- release, reset ----------------------------------------------------- */

START_TEST(release_and_reset_encode)
{
    room_t        r;
    trl_argv_t   *argv = room(&r, ARGS_MAX, BUF_MAX);
    trl_bytes_t   name = bytes("p{z:k}");

    ck_assert_int_eq(trl_release_encode(&name, 566666667, argv), TRL_OK);
    ck_assert_uint_eq(argv->n, TRL_RELEASE_ARGS);
    arg_is(argv, 0, "p{z:k}");
    arg_is(argv, 1, "566666667");

    ck_assert_int_eq(trl_reset_encode(&name, argv), TRL_OK);
    ck_assert_uint_eq(argv->n, TRL_RESET_ARGS);
    arg_is(argv, 0, "p{z:k}");

    argv = room(&r, TRL_RELEASE_ARGS, TRL_RELEASE_BUF);
    ck_assert_int_eq(trl_release_encode(&name, UINT64_MAX, argv), TRL_OK);
    arg_is(argv, 1, "18446744073709551615");
    argv = room(&r, 1, BUF_MAX);
    ck_assert_int_eq(trl_release_encode(&name, 1, argv), TRL_ERROR);
    argv = room(&r, 0, BUF_MAX);
    ck_assert_int_eq(trl_reset_encode(&name, argv), TRL_ERROR);
    ck_assert_int_eq(trl_reset_encode(NULL, argv), TRL_ERROR);
}
END_TEST


/* --- lists -------------------------------------------------------------- */

static void
entry(trl_list_entry_t *e, uint64_t id, const char *zone, const char *key)
{
    memset(e, 0, sizeof(trl_list_entry_t));
    e->id = id;
    e->created_ms = 1700000000000ULL;
    e->expires_ms = 1700000060000ULL;
    e->action = TRL_LIST_DENY;
    e->family = 0;
    e->key_len = (uint8_t) strlen(key);
    memcpy(e->key, key, e->key_len);
    strcpy(e->zone, zone);
}


START_TEST(lists_encodes_as_the_script_reads)
{
    room_t             r;
    uint64_t           dels[2] = { 41, 42 };
    trl_argv_t        *argv;
    trl_list_entry_t   puts[2], back;

    entry(&puts[0], 7, "login", "alice");
    entry(&puts[1], 8, "api", "bob");

    argv = room(&r, TRL_LISTS_ARGS(2, 2), TRL_LISTS_BUF(4, 2, 2));
    ck_assert_int_eq(trl_lists_encode("trl:", 4, 1700000000500ULL, 99, puts,
                                      2, dels, 2, argv),
                     TRL_OK);
    ck_assert_uint_eq(argv->n, TRL_LISTS_ARGS(2, 2));
    arg_is(argv, 0, "trl:lists");
    arg_is(argv, 1, "1700000000500");
    arg_is(argv, 2, "99");
    arg_is(argv, 3, "2");
    arg_is(argv, 4, "7");
    arg_is(argv, 6, "8");
    arg_is(argv, 8, "41");
    arg_is(argv, 9, "42");

    /* the values are the entries, as trl_list_decode reads them back */
    ck_assert_int_eq(trl_list_decode(8, argv->args[7].data,
                                     argv->args[7].len, &back),
                     TRL_OK);
    ck_assert_str_eq(back.zone, "api");
    ck_assert_uint_eq(back.key_len, 3);
    ck_assert_int_eq(memcmp(back.key, "bob", 3), 0);
    ck_assert_uint_eq(back.expires_ms, puts[1].expires_ms);

    /* nothing to send: the key, now, the epoch and 0 */
    argv = room(&r, ARGS_MAX, BUF_MAX);
    ck_assert_int_eq(trl_lists_encode("", 0, 1, 2, NULL, 0, NULL, 0, argv),
                     TRL_OK);
    ck_assert_uint_eq(argv->n, 4);
    arg_is(argv, 0, "lists");
    arg_is(argv, 3, "0");

    /* short room, no epoch */
    argv = room(&r, TRL_LISTS_ARGS(2, 2) - 1, BUF_MAX);
    ck_assert_int_eq(trl_lists_encode("trl:", 4, 1, 99, puts, 2, dels, 2,
                                      argv),
                     TRL_ERROR);
    argv = room(&r, ARGS_MAX, 200);
    ck_assert_int_eq(trl_lists_encode("trl:", 4, 1, 99, puts, 2, dels, 2,
                                      argv),
                     TRL_ERROR);
    ck_assert_uint_eq(argv->n, 0);
    argv = room(&r, ARGS_MAX, BUF_MAX);
    ck_assert_int_eq(trl_lists_encode("trl:", 4, 1, 0, puts, 2, dels, 2,
                                      argv),
                     TRL_ERROR);
}
END_TEST


START_TEST(lists_decode_round_trip)
{
    char               values[3][TRL_LIST_VALUE_MAX];
    size_t             n;
    uint64_t           epoch;
    trl_bytes_t        el[9];
    trl_list_entry_t   e[3], got[4];

    entry(&e[0], 7, "login", "alice");
    entry(&e[1], 8, "api", "bob");
    entry(&e[2], 9, "api", "carol");

    el[0] = bytes("123456789");
    el[1] = bytes("7");
    el[2].data = values[0];
    el[2].len = trl_list_encode(&e[0], values[0], sizeof(values[0]));
    el[3].data = NULL;                      /* not a string: skipped */
    el[3].len = 0;
    el[4].data = values[1];
    el[4].len = trl_list_encode(&e[1], values[1], sizeof(values[1]));
    el[5] = bytes("x9");                    /* not an id: skipped */
    el[6].data = values[2];
    el[6].len = trl_list_encode(&e[2], values[2], sizeof(values[2]));
    el[7] = bytes("9");
    el[8].data = values[2];
    el[8].len = el[6].len;

    ck_assert_int_eq(trl_lists_decode(el, 9, &epoch, got, 4, &n), TRL_OK);
    ck_assert_uint_eq(epoch, 123456789);
    ck_assert_uint_eq(n, 2);
    ck_assert_uint_eq(got[0].id, 7);
    ck_assert_str_eq(got[0].zone, "login");
    ck_assert_uint_eq(got[1].id, 9);
    ck_assert_int_eq(memcmp(got[1].key, "carol", 5), 0);

    /* bounded by max */
    ck_assert_int_eq(trl_lists_decode(el, 9, &epoch, got, 1, &n), TRL_OK);
    ck_assert_uint_eq(n, 1);

    /* an odd element at the end is ignored */
    ck_assert_int_eq(trl_lists_decode(el, 2, &epoch, got, 4, &n), TRL_OK);
    ck_assert_uint_eq(n, 0);
}
END_TEST


START_TEST(lists_decode_refuses)
{
    size_t             n = 77;
    uint64_t           epoch = 77;
    trl_bytes_t        el[3];
    trl_list_entry_t   got[2];
    static const char *bad[] = { "0", "", "12a", "-1",
                                 "12345678901234567890" };
    size_t             i;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        el[0] = bytes(bad[i]);
        ck_assert_msg(trl_lists_decode(el, 1, &epoch, got, 2, &n)
                      == TRL_ERROR, "epoch \"%s\" taken", bad[i]);
    }

    el[0].data = NULL;
    el[0].len = 0;
    ck_assert_int_eq(trl_lists_decode(el, 1, &epoch, got, 2, &n), TRL_ERROR);
    ck_assert_int_eq(trl_lists_decode(el, 0, &epoch, got, 2, &n), TRL_ERROR);
    ck_assert_uint_eq(epoch, 77);           /* untouched */
    ck_assert_uint_eq(n, 77);
}
END_TEST


/* --- reputation lists --------------------------------------------------- */

START_TEST(rep_read_encodes_as_the_script_reads)
{
    room_t  r;

    ck_assert_int_eq(trl_rep_read_encode("trl:", 4, "tor", 3, 0,
                                         room(&r, TRL_REP_READ_ARGS,
                                              TRL_REP_READ_BUF(4))),
                     TRL_OK);
    ck_assert_uint_eq(r.argv.n, 2);
    arg_is(&r.argv, 0, "trl:reputation:tor");
    arg_is(&r.argv, 1, "0");

    ck_assert_int_eq(trl_rep_read_encode(NULL, 0, "a.b-c_31", 8, 1,
                                         room(&r, TRL_REP_READ_ARGS,
                                              TRL_REP_READ_BUF(0))),
                     TRL_OK);
    arg_is(&r.argv, 0, "reputation:a.b-c_31");
    arg_is(&r.argv, 1, "1");

    /* a name of 31 bytes fits the room the macros give; 32 is refused */
    ck_assert_int_eq(trl_rep_read_encode("p:", 2,
                                         "0123456789012345678901234567890",
                                         31, 0,
                                         room(&r, TRL_REP_READ_ARGS,
                                              TRL_REP_READ_BUF(2))),
                     TRL_OK);
    ck_assert_int_eq(trl_rep_read_encode("p:", 2,
                                         "01234567890123456789012345678901",
                                         32, 0,
                                         room(&r, ARGS_MAX, BUF_MAX)),
                     TRL_ERROR);
    ck_assert_uint_eq(r.argv.n, 0);
    ck_assert_int_eq(trl_rep_read_encode("p:", 2, "", 0, 0,
                                         room(&r, ARGS_MAX, BUF_MAX)),
                     TRL_ERROR);
    ck_assert_int_eq(trl_rep_read_encode("p:", 2, "tor", 3, 0,
                                         room(&r, 1, BUF_MAX)),
                     TRL_ERROR);
}
END_TEST


START_TEST(rep_publish_encodes_as_the_script_reads)
{
    room_t            r;
    trl_rep_remote_t  up;
    static const char body[] = "\x01\x00wire\xff";

    memset(&up, 0, sizeof(up));
    up.version = 1795384317123ULL;
    up.checksum = 0x0123456789abcdefULL;
    up.body.data = body;
    up.body.len = sizeof(body) - 1;

    ck_assert_int_eq(trl_rep_publish_encode("trl:", 4, "bad", 3, &up,
                                            1795384317, "node-a", 6,
                                            room(&r, TRL_REP_PUBLISH_ARGS,
                                                 TRL_REP_PUBLISH_BUF(4))),
                     TRL_OK);
    ck_assert_uint_eq(r.argv.n, 6);
    arg_is(&r.argv, 0, "trl:reputation:bad");
    arg_is(&r.argv, 1, "1795384317123");
    arg_is(&r.argv, 2, "0123456789abcdef");
    ck_assert_ptr_eq(r.argv.args[3].data, body);    /* not copied */
    ck_assert_uint_eq(r.argv.args[3].len, sizeof(body) - 1);
    arg_is(&r.argv, 4, "1795384317");
    arg_is(&r.argv, 5, "node-a");

    /* an empty list: an empty body is still one */
    up.body.data = NULL;
    up.body.len = 0;
    up.checksum = 7;
    ck_assert_int_eq(trl_rep_publish_encode("", 0, "x", 1, &up, 1, NULL, 0,
                                            room(&r, TRL_REP_PUBLISH_ARGS,
                                                 TRL_REP_PUBLISH_BUF(0))),
                     TRL_OK);
    arg_is(&r.argv, 2, "0000000000000007");
    arg_is(&r.argv, 3, "");
    arg_is(&r.argv, 5, "");

    /* no version, or no room */
    up.version = 0;
    ck_assert_int_eq(trl_rep_publish_encode("", 0, "x", 1, &up, 1, NULL, 0,
                                            room(&r, ARGS_MAX, BUF_MAX)),
                     TRL_ERROR);
    up.version = 5;
    ck_assert_int_eq(trl_rep_publish_encode("", 0, "x", 1, &up, 1, NULL, 0,
                                            room(&r, 5, BUF_MAX)),
                     TRL_ERROR);
    ck_assert_uint_eq(r.argv.n, 0);
    ck_assert_int_eq(trl_rep_publish_encode("", 0, "x", 1, NULL, 1, NULL, 0,
                                            room(&r, ARGS_MAX, BUF_MAX)),
                     TRL_ERROR);
}
END_TEST


START_TEST(rep_remote_decode_round_trip)
{
    trl_bytes_t       el[3];
    trl_rep_remote_t  got;

    el[0] = bytes("1795384317123");
    el[1] = bytes("0123456789ABCDEF");
    el[2] = bytes("wire");

    ck_assert_int_eq(trl_rep_remote_decode(el, 2, &got), TRL_OK);
    ck_assert_int_eq(got.present, 1);
    ck_assert_uint_eq(got.version, 1795384317123ULL);
    ck_assert_uint_eq(got.checksum, 0x0123456789abcdefULL);
    ck_assert_ptr_null(got.body.data);

    ck_assert_int_eq(trl_rep_remote_decode(el, 3, &got), TRL_OK);
    ck_assert_ptr_eq(got.body.data, el[2].data);
    ck_assert_uint_eq(got.body.len, 4);

    /* nothing uploaded: every element nil */
    el[0].data = NULL;
    el[0].len = 0;
    el[1] = el[0];
    el[2] = el[0];
    memset(&got, 0x55, sizeof(got));
    ck_assert_int_eq(trl_rep_remote_decode(el, 3, &got), TRL_OK);
    ck_assert_int_eq(got.present, 0);
    ck_assert_uint_eq(got.version, 0);
    ck_assert_uint_eq(got.checksum, 0);
}
END_TEST


START_TEST(rep_remote_decode_refuses)
{
    size_t            i;
    trl_bytes_t       el[3];
    trl_rep_remote_t  got;
    static const char *bad[][2] = {
        { "0", "0123456789abcdef" },
        { "12a", "0123456789abcdef" },
        { "-1", "0123456789abcdef" },
        { "12345678901234567890", "0123456789abcdef" },
        { "5", "0123456789abcde" },
        { "5", "0123456789abcdef0" },
        { "5", "0123456789abcdeg" },
        { "5", "" }
    };

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        el[0] = bytes(bad[i][0]);
        el[1] = bytes(bad[i][1]);
        memset(&got, 0x55, sizeof(got));
        ck_assert_msg(trl_rep_remote_decode(el, 2, &got) == TRL_ERROR,
                      "\"%s\" \"%s\" taken", bad[i][0], bad[i][1]);
        ck_assert_uint_eq(got.version, 0x5555555555555555ULL);  /* as was */
    }

    /* a version without a checksum, a body asked for and missing */
    el[0] = bytes("5");
    el[1].data = NULL;
    el[1].len = 0;
    ck_assert_int_eq(trl_rep_remote_decode(el, 2, &got), TRL_ERROR);
    el[1] = bytes("0123456789abcdef");
    el[2].data = NULL;
    el[2].len = 0;
    ck_assert_int_eq(trl_rep_remote_decode(el, 3, &got), TRL_ERROR);

    /* of another length */
    ck_assert_int_eq(trl_rep_remote_decode(el, 1, &got), TRL_ERROR);
    ck_assert_int_eq(trl_rep_remote_decode(el, 4, &got), TRL_ERROR);
    ck_assert_int_eq(trl_rep_remote_decode(NULL, 2, &got), TRL_ERROR);
}
END_TEST


/* --- any bytes ---------------------------------------------------------- */

START_TEST(decoders_survive_any_bytes)
{
    int                  i, k, len;
    char                 text[64];
    trl_sync_read_t      reads[2];
    trl_ask_answer_t     answers[2];
    trl_strict_answer_t  a;
    trl_publish_key_t    keys[2];
    static const char    alphabet[] = "0123456789 -x";

    memset(keys, 0, sizeof(keys));
    srandom(31);

    for (i = 0; i < 20000; i++) {
        len = random() % (int) sizeof(text);

        for (k = 0; k < len; k++) {
            text[k] = random() % 8 ? alphabet[random() % 13]
                                   : (char) random();
        }

        (void) trl_publish_decode(text, len, keys, 1 + i % 2, reads);
        (void) trl_ask_decode(&zone30, text, len, 1 + i % 2, answers);
        (void) trl_strict_decode(text, len, &a);
    }
}
END_TEST


Suite *
scripts_suite(void)
{
    Suite  *s;
    TCase  *tc;

    s = suite_create("scripts");
    tc = tcase_create("codecs");

    tcase_add_test(tc, publish_encodes_as_the_script_reads);
    tcase_add_test(tc, publish_encode_refuses);
    tcase_add_test(tc, publish_decode_round_trip);
    tcase_add_loop_test(tc, publish_decode_refuses, 0,
                        sizeof(bad_replies) / sizeof(bad_replies[0]));
    tcase_add_test(tc, publish_decode_whole_or_nothing);
    tcase_add_test(tc, ask_encodes_as_the_script_reads);
    tcase_add_test(tc, ask_decode_round_trip);
    tcase_add_test(tc, ask_decode_refuses);
    tcase_add_test(tc, strict_encodes_as_the_script_reads);
    tcase_add_test(tc, strict_decode_round_trip);
    tcase_add_test(tc, strict_decode_refuses);
    tcase_add_test(tc, release_and_reset_encode);
    tcase_add_test(tc, lists_encodes_as_the_script_reads);
    tcase_add_test(tc, lists_decode_round_trip);
    tcase_add_test(tc, lists_decode_refuses);
    tcase_add_test(tc, rep_read_encodes_as_the_script_reads);
    tcase_add_test(tc, rep_publish_encodes_as_the_script_reads);
    tcase_add_test(tc, rep_remote_decode_round_trip);
    tcase_add_test(tc, rep_remote_decode_refuses);
    tcase_add_test(tc, decoders_survive_any_bytes);
    suite_add_tcase(s, tc);

    return s;
}
