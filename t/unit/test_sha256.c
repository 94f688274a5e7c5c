/* test_sha256.c - SHA-256, the hash in the Redis names of long keys. */

#include "unit.h"

#include <stdlib.h>
#include <string.h>


static void
hex(const uint8_t *d, size_t n, char *out)
{
    static const char  digits[] = "0123456789abcdef";
    size_t             i;

    for (i = 0; i < n; i++) {
        out[2 * i] = digits[d[i] >> 4];
        out[2 * i + 1] = digits[d[i] & 0xf];
    }
    out[2 * n] = '\0';
}


static void
check_digest(const void *msg, size_t len, const char *want)
{
    uint8_t  d[32];
    char     got[65];

    trl_sha256(msg, len, d);
    hex(d, 32, got);
    ck_assert_msg(strcmp(got, want) == 0, "len %zu: %s, want %s", len, got,
                  want);
}


/* FIPS 180-2 appendix B (and the NIST CAVS examples) */
START_TEST(sha256_published_vectors)
{
    char  *million;

    check_digest("abc", 3, "ba7816bf8f01cfea414140de5dae2223"
                           "b00361a396177a9cb410ff61f20015ad");
    check_digest("", 0, "e3b0c44298fc1c149afbf4c8996fb924"
                        "27ae41e4649b934ca495991b7852b855");
    check_digest("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
                 56, "248d6a61d20638b8e5c026930c3e6039"
                     "a33ce45964ff2167f6ecedd419db06c1");
    check_digest("abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmn"
                 "hijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu",
                 112, "cf5b16a778af8380036ce59e7b049237"
                      "0b249b11e8f07a51afac45037afee9d1");

    million = malloc(1000000);
    ck_assert_ptr_nonnull(million);
    memset(million, 'a', 1000000);
    check_digest(million, 1000000, "cdc76e5c9914fb9281a1c7e284d73e67"
                                   "f1809a48a497200e046d39ccc7112cd0");
    free(million);
}
END_TEST


/* The padding's edge cases: "a" repeated, around one and two blocks (the
 * digests are sha256sum's). */
START_TEST(sha256_block_edges)
{
    static const struct {
        size_t       len;
        const char  *digest;
    } cases[] = {
        { 55, "9f4390f8d30c2dd92ec9f095b65e2b9a"
              "e9b0a925a5258e241c9f1e910f734318" },
        { 56, "b35439a4ac6f0948b6d6f9e3c6af0f5f"
              "590ce20f1bde7090ef7970686ec6738a" },
        { 63, "7d3e74a05d7db15bce4ad9ec0658ea98"
              "e3f06eeecf16b4c6fff2da457ddc2f34" },
        { 64, "ffe054fe7ae0cb6dc65c3af9b61d5209"
              "f439851db43d0ba5997337df154668eb" },
        { 65, "635361c48bb9eab14198e76ea8ab7f1a"
              "41685d6ad62aa9146d301d4f17eb0ae0" },
        { 119, "31eba51c313a5c08226adf18d4a359cf"
               "dfd8d2e816b13f4af952f7ea6584dcfb" },
        { 120, "2f3d335432c70b580af0e8e1b3674a7c"
               "020d683aa5f73aaaedfdc55af904c21c" },
        { 127, "c57e9278af78fa3cab38667bef4ce29d"
               "783787a2f731d4e12200270f0c32320a" },
        { 128, "6836cf13bac400e9105071cd6af47084"
               "dfacad4e5e302c94bfed24e013afb73e" },
    };
    char    msg[128];
    size_t  i;

    memset(msg, 'a', sizeof(msg));

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        check_digest(msg, cases[i].len, cases[i].digest);
    }
}
END_TEST


Suite *
sha256_suite(void)
{
    Suite  *s = suite_create("sha256");
    TCase  *tc;

    tc = unit_tcase(s, "vectors", 10);
    tcase_add_test(tc, sha256_published_vectors);
    tcase_add_test(tc, sha256_block_edges);

    return s;
}
