// siphash.cpp - SipHash-2-4-128 (Aumasson & Bernstein), written from the
// published algorithm description.
#include "siphash.hpp"

#include <cstring>

namespace trl {
namespace {

inline uint64_t rotl(uint64_t x, int b) {
    return (x << b) | (x >> (64 - b));
}

inline uint64_t load_le64(const uint8_t *p) {
    uint64_t v;
    std::memcpy(&v, p, sizeof(v));
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    v = __builtin_bswap64(v);
#endif
    return v;
}

struct State {
    uint64_t v0, v1, v2, v3;

    void round() {
        v0 += v1; v1 = rotl(v1, 13); v1 ^= v0; v0 = rotl(v0, 32);
        v2 += v3; v3 = rotl(v3, 16); v3 ^= v2;
        v0 += v3; v3 = rotl(v3, 21); v3 ^= v0;
        v2 += v1; v1 = rotl(v1, 17); v1 ^= v2; v2 = rotl(v2, 32);
    }

    void compress(uint64_t m) {
        v3 ^= m;
        round();
        round();
        v0 ^= m;
    }

    uint64_t finish_half(uint8_t marker) {
        v2 ^= marker;
        round();
        round();
        round();
        round();
        return v0 ^ v1 ^ v2 ^ v3;
    }
};

}  // namespace

trl_hash_t siphash128(const uint8_t seed[16], const void *data,
                      std::size_t len) {
    const uint8_t *in = static_cast<const uint8_t *>(data);
    uint64_t k0 = load_le64(seed);
    uint64_t k1 = load_le64(seed + 8);

    State s{UINT64_C(0x736f6d6570736575) ^ k0,
            UINT64_C(0x646f72616e646f6d) ^ k1 ^ 0xee,
            UINT64_C(0x6c7967656e657261) ^ k0,
            UINT64_C(0x7465646279746573) ^ k1};

    std::size_t full = len - len % 8;
    for (std::size_t i = 0; i < full; i += 8) {
        s.compress(load_le64(in + i));
    }

    uint8_t tail[8] = {0};
    if (len % 8 != 0) {
        std::memcpy(tail, in + full, len % 8);
    }
    tail[7] = static_cast<uint8_t>(len);
    s.compress(load_le64(tail));

    trl_hash_t out;
    out.lo = s.finish_half(0xee);
    s.v1 ^= 0xdd;
    out.hi = s.finish_half(0x00);
    return out;
}

}  // namespace trl
