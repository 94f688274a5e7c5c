/* test_subject.c - subjects as the application sees them, and fields of
 * request bodies (trl_distinct.h). */

#include "unit.h"

#include <stdio.h>

#include "trl_distinct.h"


typedef struct {
    const char  *in;
    unsigned     flags;
    int          rc;
    const char  *out;
} norm_case_t;

#define D   TRL_SUBJECT_DECODE
#define P   TRL_SUBJECT_PLUS
#define T   TRL_SUBJECT_TRIM
#define L   TRL_SUBJECT_LOWER
#define LD  TRL_SUBJECT_LOWER_DOMAIN

static const norm_case_t  norm_cases[] = {
    /* one account, however it is written */
    { "alice", D|P|T|L, TRL_SUBJECT_OK, "alice" },
    { "%61lice", D|P|T|L, TRL_SUBJECT_OK, "alice" },
    { " Alice ", D|P|T|L, TRL_SUBJECT_OK, "alice" },
    { "%20ALICE%09", D|P|T|L, TRL_SUBJECT_OK, "alice" },
    { "+alice+", D|P|T|L, TRL_SUBJECT_OK, "alice" },
    { "%41%4c%49%43%45", D|T|L, TRL_SUBJECT_OK, "alice" },
    /* each step only when asked */
    { "%61lice", T|L, TRL_SUBJECT_OK, "%61lice" },
    { " Alice ", D, TRL_SUBJECT_OK, " Alice " },
    { "a+b", D, TRL_SUBJECT_OK, "a+b" },
    { "a+b", D|P, TRL_SUBJECT_OK, "a b" },
    { "a%2Bb", D|P, TRL_SUBJECT_OK, "a+b" },
    { "Alice", D|T, TRL_SUBJECT_OK, "Alice" },
    /* invalid escapes are kept as they are */
    { "al%zzice", D|T|L, TRL_SUBJECT_OK, "al%zzice" },
    { "alice%", D|T|L, TRL_SUBJECT_OK, "alice%" },
    { "alice%6", D|T|L, TRL_SUBJECT_OK, "alice%6" },
    { "%%61", D, TRL_SUBJECT_OK, "%a" },
    { "%g1", D, TRL_SUBJECT_OK, "%g1" },
    /* decoded bytes are data: NUL and UTF-8 kept, only ASCII folded */
    { "a%00b", D, TRL_SUBJECT_OK, "a\0b" },
    { "%C3%89mile", D|L, TRL_SUBJECT_OK, "\xc3\x89mile" },
    /* e-mail: the whole address, or its domain only */
    { "Alice@Example.COM", D|T|L, TRL_SUBJECT_OK, "alice@example.com" },
    { "Alice@Example.COM", D|T|LD, TRL_SUBJECT_OK, "Alice@example.com" },
    { "\"A@B\"@Example.COM", LD, TRL_SUBJECT_OK, "\"A@B\"@example.com" },
    { "NoDomain", LD, TRL_SUBJECT_OK, "NoDomain" },
    /* nothing left */
    { "", D|T, TRL_SUBJECT_EMPTY, "" },
    { " %20\t+", D|P|T, TRL_SUBJECT_EMPTY, "" },
};


START_TEST(subject_normalize_table)
{
    const norm_case_t  *c = &norm_cases[_i];
    char                out[TRL_SUBJECT_MAX];
    size_t              n = 99, want = strlen(c->out);
    int                 rc;

    if (c->flags == D && strcmp(c->in, "a%00b") == 0) {
        want = 3;
    }
    rc = trl_subject_normalize(c->in, strlen(c->in), c->flags, out,
                               sizeof(out), &n);
    ck_assert_msg(rc == c->rc && n == want && memcmp(out, c->out, n) == 0,
                  "\"%s\" %#x: rc %d, \"%.*s\" (%zu)", c->in, c->flags, rc,
                  (int) n, out, n);
}
END_TEST


START_TEST(subject_normalize_bounded)
{
    char    in[600], out[TRL_SUBJECT_MAX + 8];
    size_t  n;
    int     i;

    for (i = 0; i < 200; i++) {
        memcpy(in + 3 * i, "%41", 3);
    }
    /* 200 bytes decoded: fits */
    ck_assert_int_eq(trl_subject_normalize(in, 600, D|L, out,
                                           TRL_SUBJECT_MAX, &n),
                     TRL_SUBJECT_OK);
    ck_assert_uint_eq(n, 200);
    ck_assert(out[0] == 'a' && out[199] == 'a');

    /* 300 bytes: cut at the bound, nothing written past it */
    memset(in, 'b', 300);
    memset(out, 'z', sizeof(out));
    ck_assert_int_eq(trl_subject_normalize(in, 300, T, out, TRL_SUBJECT_MAX,
                                           &n),
                     TRL_SUBJECT_LONG);
    ck_assert_uint_eq(n, TRL_SUBJECT_MAX);
    ck_assert(out[TRL_SUBJECT_MAX] == 'z');

    /* leading whitespace does not use up the bound; a cut is trimmed */
    memset(in, ' ', 300);
    memcpy(in + 300, "carol", 5);
    ck_assert_int_eq(trl_subject_normalize(in, 305, T, out, 8, &n),
                     TRL_SUBJECT_OK);
    ck_assert(n == 5 && memcmp(out, "carol", 5) == 0);
    ck_assert_int_eq(trl_subject_normalize("ab   cdef", 9, T, out, 4, &n),
                     TRL_SUBJECT_LONG);
    ck_assert(n == 2 && memcmp(out, "ab", 2) == 0);
    ck_assert_int_eq(trl_subject_normalize("abc", 3, 0, out, 0, &n),
                     TRL_SUBJECT_EMPTY);
}
END_TEST


/* one field, expected rc and value */
typedef struct {
    const char  *body;
    const char  *name;
    int          rc;
    const char  *value;
} field_case_t;

static const field_case_t  form_cases[] = {
    { "user=%61lice&password=x", "user", TRL_FIELD_FOUND, "%61lice" },
    { "password=x&user=bob", "user", TRL_FIELD_FOUND, "bob" },
    { "us%65r=bob", "user", TRL_FIELD_FOUND, "bob" },
    { "the+user=bob", "the user", TRL_FIELD_FOUND, "bob" },
    { "user=", "user", TRL_FIELD_FOUND, "" },
    { "user", "user", TRL_FIELD_FOUND, "" },
    { "username=bob&users=x", "user", TRL_FIELD_NONE, "" },
    { "", "user", TRL_FIELD_NONE, "" },
    { "&&&=&", "user", TRL_FIELD_NONE, "" },
    { "user=a&user=b", "user", TRL_FIELD_TWICE, "b" },
    { "user=a=b&x", "user", TRL_FIELD_FOUND, "a=b" },
    { "user=0123456789abcdefXYZ", "user", TRL_FIELD_LONG,
      "0123456789abcdef" },
};

static const field_case_t  json_cases[] = {
    { "{\"user\":\"alice\"}", "user", TRL_FIELD_FOUND, "alice" },
    { " { \"password\" : \"x\" , \"user\" : \"al\\u0069ce\" } \n", "user",
      TRL_FIELD_FOUND, "alice" },
    { "{\"user\":\"a\\\"b\\\\c\\/d\\n\"}", "user", TRL_FIELD_FOUND,
      "a\"b\\c/d\n" },
    { "{\"user\":\"\\u00e9\\ud83d\\ude00\"}", "user", TRL_FIELD_FOUND,
      "\xc3\xa9\xf0\x9f\x98\x80" },
    /* only top-level keys count */
    { "{\"a\":{\"user\":\"x\"},\"b\":[{\"user\":\"y\"}],\"user\":\"bob\"}",
      "user", TRL_FIELD_FOUND, "bob" },
    { "{\"a\":{\"user\":\"x\"}}", "user", TRL_FIELD_NONE, "" },
    { "{}", "user", TRL_FIELD_NONE, "" },
    { "{\"n\":-1.5e3,\"t\":true,\"f\":false,\"z\":null,\"e\":[],\"o\":{}}",
      "user", TRL_FIELD_NONE, "" },
    { "{\"user\":\"a\",\"user\":\"b\"}", "user", TRL_FIELD_TWICE, "b" },
    { "{\"user\":\"0123456789abcdefXYZ\"}", "user", TRL_FIELD_LONG,
      "0123456789abcdef" },
    /* malformed, or cut short (an over-size body read in part) */
    { "{\"user\":\"bob\"", "user", TRL_FIELD_MALFORMED, "" },
    { "{\"user\":\"bob\",", "user", TRL_FIELD_MALFORMED, "" },
    { "{\"user\":\"bo", "user", TRL_FIELD_MALFORMED, "" },
    { "{\"user\":\"bob\",\"pad\":\"xxxx", "user", TRL_FIELD_MALFORMED, "" },
    { "{\"user\":\"bob\"} x", "user", TRL_FIELD_MALFORMED, "" },
    { "[\"user\",\"bob\"]", "user", TRL_FIELD_MALFORMED, "" },
    { "\"user\"", "user", TRL_FIELD_MALFORMED, "" },
    { "", "user", TRL_FIELD_MALFORMED, "" },
    { "{\"user\":1}", "user", TRL_FIELD_MALFORMED, "" },
    { "{\"user\":null}", "user", TRL_FIELD_MALFORMED, "" },
    { "{user:\"bob\"}", "user", TRL_FIELD_MALFORMED, "" },
    { "{\"user\":\"b\\xob\"}", "user", TRL_FIELD_MALFORMED, "" },
    { "{\"user\":\"\\ud83d\"}", "user", TRL_FIELD_MALFORMED, "" },
    { "{\"user\":\"\\ude00\"}", "user", TRL_FIELD_MALFORMED, "" },
    { "{\"user\":\"a\tb\"}", "user", TRL_FIELD_MALFORMED, "" },
    { "{\"a\":tru}", "user", TRL_FIELD_MALFORMED, "" },
    { "{\"a\":-}", "user", TRL_FIELD_MALFORMED, "" },
    { "{\"a\":[1,]}", "user", TRL_FIELD_MALFORMED, "" },
    { "{\"a\" \"b\"}", "user", TRL_FIELD_MALFORMED, "" },
};


START_TEST(subject_form_field)
{
    const field_case_t  *c = &form_cases[_i];
    char                 out[16];
    size_t               n = 99;
    int                  rc;

    rc = trl_form_field(c->body, strlen(c->body), c->name, strlen(c->name),
                        out, sizeof(out), &n);
    ck_assert_msg(rc == c->rc && n == strlen(c->value)
                  && memcmp(out, c->value, n) == 0,
                  "%s: rc %d, \"%.*s\"", c->body, rc, (int) n, out);
}
END_TEST


START_TEST(subject_json_field)
{
    const field_case_t  *c = &json_cases[_i];
    char                 out[16];
    size_t               n = 99;
    int                  rc;

    rc = trl_json_field(c->body, strlen(c->body), c->name, strlen(c->name),
                        out, sizeof(out), &n);
    ck_assert_msg(rc == c->rc && n == strlen(c->value)
                  && memcmp(out, c->value, n) == 0,
                  "%s: rc %d, \"%.*s\"", c->body, rc, (int) n, out);
}
END_TEST


/* Nesting is bounded (32 levels): deeper is malformed, not a deep stack. */
START_TEST(subject_json_nesting)
{
    char    body[1024], out[8];
    size_t  n, len;
    int     depth, i;

    for (depth = 30; depth <= 34; depth++) {
        len = 0;
        len += (size_t) sprintf(body + len, "{\"a\":");
        for (i = 1; i < depth; i++) {
            body[len++] = '[';
        }
        body[len++] = '1';
        for (i = 1; i < depth; i++) {
            body[len++] = ']';
        }
        len += (size_t) sprintf(body + len, ",\"user\":\"u\"}");
        ck_assert_int_eq(trl_json_field(body, len, "user", 4, out,
                                        sizeof(out), &n),
                         depth <= 32 ? TRL_FIELD_FOUND : TRL_FIELD_MALFORMED);
    }

    /* a megabyte of '[': refused at once, whatever its length */
    static char  deep[1 << 20];
    memset(deep, '[', sizeof(deep));
    deep[0] = '{';
    ck_assert_int_eq(trl_json_field(deep, sizeof(deep), "user", 4, out,
                                    sizeof(out), &n), TRL_FIELD_MALFORMED);
}
END_TEST


/* The pieces together: a form value normalised is one account. */
START_TEST(subject_form_then_normalize)
{
    const char  *bodies[] = { "user=alice&p=1", "p=2&user=%61lice",
                              "user=+Alice+", "user=%20ALICE" };
    uint8_t      secret[16];
    char         raw[TRL_SUBJECT_MAX], norm[TRL_SUBJECT_MAX];
    size_t       rn, nn, i;
    uint32_t     fp[4];

    trl_distinct_secret("s", 1, secret);
    for (i = 0; i < 4; i++) {
        ck_assert_int_eq(trl_form_field(bodies[i], strlen(bodies[i]), "user",
                                        4, raw, sizeof(raw), &rn),
                         TRL_FIELD_FOUND);
        ck_assert_int_eq(trl_subject_normalize(raw, rn, D|P|T|L, norm,
                                               sizeof(norm), &nn),
                         TRL_SUBJECT_OK);
        fp[i] = trl_distinct_fingerprint(secret, norm, nn);
    }
    ck_assert(fp[0] == fp[1] && fp[1] == fp[2] && fp[2] == fp[3]);
}
END_TEST


Suite *
subject_suite(void)
{
    Suite  *s = suite_create("subject");
    TCase  *tc = unit_tcase(s, "subject", 30);

    tcase_add_loop_test(tc, subject_normalize_table, 0,
                        sizeof(norm_cases) / sizeof(norm_cases[0]));
    tcase_add_test(tc, subject_normalize_bounded);
    tcase_add_loop_test(tc, subject_form_field, 0,
                        sizeof(form_cases) / sizeof(form_cases[0]));
    tcase_add_loop_test(tc, subject_json_field, 0,
                        sizeof(json_cases) / sizeof(json_cases[0]));
    tcase_add_test(tc, subject_json_nesting);
    tcase_add_test(tc, subject_form_then_normalize);
    return s;
}
