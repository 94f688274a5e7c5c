/* test_siphash.c - SipHash-2-4-128 and the zones' keyed hashes. */

#include "unit.h"

#include <stdlib.h>


/* Reference vectors (key 00..0f, message 00..len-1) of the SipHash paper's
 * reference implementation, 128-bit output, as bytes. */
static const uint8_t vectors[5][16] = {
    { 0xa3, 0x81, 0x7f, 0x04, 0xba, 0x25, 0xa8, 0xe6,
      0x6d, 0xf6, 0x72, 0x14, 0xc7, 0x55, 0x02, 0x93 },
    { 0xda, 0x87, 0xc1, 0xd8, 0x6b, 0x99, 0xaf, 0x44,
      0x34, 0x76, 0x59, 0x11, 0x9b, 0x22, 0xfc, 0x45 },
    { 0x81, 0x77, 0x22, 0x8d, 0xa4, 0xa4, 0x5d, 0xc7,
      0xfc, 0xa3, 0x8b, 0xde, 0xf6, 0x0a, 0xff, 0xe4 },
    { 0x9c, 0x70, 0xb6, 0x0c, 0x52, 0x67, 0xa9, 0x4e,
      0x5f, 0x33, 0xb6, 0xb0, 0x29, 0x85, 0xed, 0x51 },
    { 0xf8, 0x81, 0x64, 0xc1, 0x2d, 0x9c, 0x8f, 0xaf,
      0x7d, 0x0f, 0x6e, 0x7c, 0x7b, 0xcd, 0x55, 0x79 },
};


static uint64_t
le64(const uint8_t *p)
{
    uint64_t  v = 0;
    int       i;

    for (i = 0; i < 8; i++) {
        v |= (uint64_t) p[i] << (8 * i);
    }
    return v;
}


START_TEST(siphash_reference_vectors)
{
    uint8_t     key[16], msg[16];
    trl_hash_t  h;
    int         i;

    for (i = 0; i < 16; i++) {
        key[i] = (uint8_t) i;
        msg[i] = (uint8_t) i;
    }

    trl_siphash128(key, msg, (size_t) _i, &h);
    ck_assert_msg(h.lo == le64(vectors[_i]) && h.hi == le64(vectors[_i] + 8),
                  "len %d: got %016llx %016llx, want %016llx %016llx", _i,
                  (unsigned long long) h.lo, (unsigned long long) h.hi,
                  (unsigned long long) le64(vectors[_i]),
                  (unsigned long long) le64(vectors[_i] + 8));
}
END_TEST


/*
 * A second, independent SipHash-2-4-128, fed one byte at a time, to check
 * the core on every length class (0..7 mod 8, several blocks) beyond the
 * five published vectors above.
 */
#define ROTL(x, b)  (((x) << (b)) | ((x) >> (64 - (b))))

#define SIPROUND                                                        \
    do {                                                                \
        v0 += v1; v1 = ROTL(v1, 13); v1 ^= v0; v0 = ROTL(v0, 32);       \
        v2 += v3; v3 = ROTL(v3, 16); v3 ^= v2;                          \
        v0 += v3; v3 = ROTL(v3, 21); v3 ^= v0;                          \
        v2 += v1; v1 = ROTL(v1, 17); v1 ^= v2; v2 = ROTL(v2, 32);       \
    } while (0)

static void
ref_siphash128(const uint8_t k[16], const uint8_t *in, size_t len,
    uint64_t out[2])
{
    uint64_t  k0 = le64(k), k1 = le64(k + 8);
    uint64_t  v0 = 0x736f6d6570736575ULL ^ k0;
    uint64_t  v1 = 0x646f72616e646f6dULL ^ k1;
    uint64_t  v2 = 0x6c7967656e657261ULL ^ k0;
    uint64_t  v3 = 0x7465646279746573ULL ^ k1;
    uint64_t  m = 0;
    size_t    i;

    v1 ^= 0xee;

    for (i = 0; i < len; i++) {
        m |= (uint64_t) in[i] << (8 * (i % 8));
        if (i % 8 == 7) {
            v3 ^= m; SIPROUND; SIPROUND; v0 ^= m;
            m = 0;
        }
    }
    m |= (uint64_t) (len & 0xff) << 56;
    v3 ^= m; SIPROUND; SIPROUND; v0 ^= m;

    v2 ^= 0xee;
    SIPROUND; SIPROUND; SIPROUND; SIPROUND;
    out[0] = v0 ^ v1 ^ v2 ^ v3;

    v1 ^= 0xdd;
    SIPROUND; SIPROUND; SIPROUND; SIPROUND;
    out[1] = v0 ^ v1 ^ v2 ^ v3;
}


START_TEST(siphash_matches_second_implementation)
{
    static uint8_t  msg[1100];
    uint8_t         key[16];
    uint64_t        want[2];
    trl_hash_t      h;
    unit_rng_t      rng = { 7 };
    size_t          len, i;
    int             round;

    /* the reference implementation agrees with the published vectors */
    for (i = 0; i < 16; i++) {
        key[i] = (uint8_t) i;
        msg[i] = (uint8_t) i;
    }
    for (len = 0; len < 5; len++) {
        ref_siphash128(key, msg, len, want);
        ck_assert(want[0] == le64(vectors[len]));
        ck_assert(want[1] == le64(vectors[len] + 8));
    }

    for (round = 0; round < 4; round++) {
        for (i = 0; i < 16; i++) {
            key[i] = round == 0 ? (uint8_t) i : (uint8_t) unit_rand(&rng);
        }
        for (i = 0; i < sizeof(msg); i++) {
            msg[i] = round == 0 ? (uint8_t) i : (uint8_t) unit_rand(&rng);
        }
        for (len = 0; len <= sizeof(msg); len++) {
            if (len > 80 && len % 97 != 0 && len != sizeof(msg)) {
                continue;
            }
            trl_siphash128(key, msg, len, &h);
            ref_siphash128(key, msg, len, want);
            ck_assert_msg(h.lo == want[0] && h.hi == want[1],
                          "round %d len %zu differs", round, len);
        }
    }

    /* the input need not be aligned */
    for (i = 1; i < 8; i++) {
        trl_siphash128(key, msg + i, 37, &h);
        ref_siphash128(key, msg + i, 37, want);
        ck_assert(h.lo == want[0] && h.hi == want[1]);
    }
}
END_TEST


START_TEST(zone_hash_is_siphash_with_zone_seed)
{
    trl_zone_t  *zone = unit_zone(64 * 1024);
    trl_hash_t   a, b;

    trl_zone_hash(zone, "client-1", 8, &a);
    trl_siphash128(unit_root(zone)->seed, "client-1", 8, &b);
    ck_assert(a.lo == b.lo && a.hi == b.hi);
}
END_TEST


START_TEST(zone_hash_seeded_per_zone)
{
    trl_zone_t  *z1 = unit_zone(64 * 1024);
    trl_zone_t  *z2 = unit_zone(64 * 1024);
    trl_hash_t   a, b, c;
    int          same_seed;

    same_seed = memcmp(unit_root(z1)->seed, unit_root(z2)->seed, 16) == 0;
    ck_assert_msg(!same_seed, "two zones got the same seed");

    trl_zone_hash(z1, "10.0.0.1", 8, &a);
    trl_zone_hash(z2, "10.0.0.1", 8, &b);
    ck_assert(a.lo != b.lo || a.hi != b.hi);

    /* stable within a zone */
    trl_zone_hash(z1, "10.0.0.1", 8, &c);
    ck_assert(a.lo == c.lo && a.hi == c.hi);

    /* and across an attach of the same memory */
    {
        char         err[128];
        trl_zone_t  *again = trl_zone_attach(z1, 0, err, sizeof(err));

        ck_assert_ptr_nonnull(again);
        trl_zone_hash(again, "10.0.0.1", 8, &c);
        ck_assert(a.lo == c.lo && a.hi == c.hi);
    }

    /* a zone created again over the same memory gets a new seed */
    {
        char         err[128];
        uint8_t      old[16];
        trl_zone_t  *z3;

        memcpy(old, unit_root(z1)->seed, 16);
        z3 = trl_zone_create(z1, 64 * 1024, 0, err, sizeof(err));
        ck_assert_ptr_nonnull(z3);
        ck_assert(memcmp(old, unit_root(z3)->seed, 16) != 0);
    }
}
END_TEST


START_TEST(zone_hash_odd_keys)
{
    trl_zone_t     *zone = unit_zone(64 * 1024);
    static uint8_t  big[8192];
    trl_hash_t      h0, h1, a, b;
    size_t          i;

    /* empty key: defined, stable, and not the hash of any short key */
    trl_zone_hash(zone, "", 0, &h0);
    trl_zone_hash(zone, NULL, 0, &h1);
    ck_assert(h0.lo == h1.lo && h0.hi == h1.hi);
    trl_zone_hash(zone, "\0", 1, &h1);
    ck_assert(h0.lo != h1.lo || h0.hi != h1.hi);

    /* 8 KB key, and a one-bit change anywhere in it */
    for (i = 0; i < sizeof(big); i++) {
        big[i] = (uint8_t) (i * 31 + 7);
    }
    trl_zone_hash(zone, big, sizeof(big), &a);
    trl_zone_hash(zone, big, sizeof(big), &b);
    ck_assert(a.lo == b.lo && a.hi == b.hi);
    for (i = 0; i < sizeof(big); i += 1021) {
        big[i] ^= 0x10;
        trl_zone_hash(zone, big, sizeof(big), &b);
        ck_assert_msg(a.lo != b.lo || a.hi != b.hi, "flip at %zu", i);
        big[i] ^= 0x10;
    }
    trl_zone_hash(zone, big, sizeof(big) - 1, &b);
    ck_assert(a.lo != b.lo || a.hi != b.hi);

    /* binary keys: NULs are part of the key, length too */
    trl_zone_hash(zone, "a\0b", 3, &a);
    trl_zone_hash(zone, "a\0c", 3, &b);
    ck_assert(a.lo != b.lo || a.hi != b.hi);
    trl_zone_hash(zone, "a", 1, &a);
    trl_zone_hash(zone, "a\0", 2, &b);
    ck_assert(a.lo != b.lo || a.hi != b.hi);
    trl_zone_hash(zone, "\0\0\0\0\0\0\0", 7, &a);
    trl_zone_hash(zone, "\0\0\0\0\0\0\0\0", 8, &b);
    ck_assert(a.lo != b.lo || a.hi != b.hi);

    /* IPv4 and IPv6 $binary_remote_addr */
    trl_zone_hash(zone, "\x7f\x00\x00\x01", 4, &a);
    trl_zone_hash(zone, "\x7f\x00\x00\x02", 4, &b);
    ck_assert(a.lo != b.lo || a.hi != b.hi);
}
END_TEST


static int
cmp_hash(const void *x, const void *y)
{
    const trl_hash_t  *a = x, *b = y;

    if (a->lo != b->lo) {
        return a->lo < b->lo ? -1 : 1;
    }
    if (a->hi != b->hi) {
        return a->hi < b->hi ? -1 : 1;
    }
    return 0;
}


START_TEST(zone_hash_distinct_keys)
{
    enum { N = 50000 };
    trl_zone_t  *zone = unit_zone(64 * 1024);
    trl_hash_t  *h;
    size_t       i;
    uint32_t     in_stripe[64];
    uint32_t     nstripes = unit_root(zone)->nstripes;

    h = malloc(N * sizeof(*h));
    ck_assert_ptr_nonnull(h);
    for (i = 0; i < N; i++) {
        uint32_t  ip = 0x0a000000u + (uint32_t) i;   /* 10.0.0.0 + i */

        trl_zone_hash(zone, &ip, sizeof(ip), &h[i]);
    }

    /* keys spread over the stripes (low bits of lo) */
    memset(in_stripe, 0, sizeof(in_stripe));
    for (i = 0; i < N; i++) {
        in_stripe[h[i].lo & (nstripes - 1)]++;
    }
    for (i = 0; i < nstripes; i++) {
        ck_assert_uint_gt(in_stripe[i], N / nstripes / 2);
    }

    qsort(h, N, sizeof(*h), cmp_hash);
    for (i = 1; i < N; i++) {
        ck_assert_msg(h[i - 1].lo != h[i].lo, "64-bit collision");
    }
    free(h);
}
END_TEST


Suite *
siphash_suite(void)
{
    Suite  *s;
    TCase  *tc;

    s = suite_create("siphash");

    tc = unit_tcase(s, "siphash128", 10);
    tcase_add_loop_test(tc, siphash_reference_vectors, 0, 5);
    tcase_add_test(tc, siphash_matches_second_implementation);

    tc = unit_tcase(s, "zone_hash", 10);
    tcase_add_test(tc, zone_hash_is_siphash_with_zone_seed);
    tcase_add_test(tc, zone_hash_seeded_per_zone);
    tcase_add_test(tc, zone_hash_odd_keys);
    tcase_add_test(tc, zone_hash_distinct_keys);

    return s;
}
