// reputation_gen.cpp - a list's table in the zone (a generation), as
// sorted boundary points.
//
// A range [s, e] is two points, s and e + 1 (none for e + 1 past the last
// address); ranges are merged first, so the points strictly increase, and
// an address is listed iff the number of points <= it is odd.  IPv4 points
// have an index of the k top bits (each bucket's first point): with
// k = 16, a bucket's points share their top half and only the low halves
// are stored (2 bytes a point, 4 a range, plus a 256 KiB index), else all
// 32 bits.  IPv6 points (lists are short) are searched whole.
//
//   GenHeader | index: uint32[2^k + 1] | IPv4 points | IPv6 points (hi, lo)
//
// A reader may hold a generation whose memory was reused (it then looks
// again, see reputation_table.cpp): the lookup trusts nothing it reads,
// and every offset and index is checked against the block's end.
#include <algorithm>
#include <cstring>

#include "reputation.hpp"

namespace trl {

namespace {

constexpr uint32_t kGenMagic = 0x52455047;   // "REPG"

struct GenHeader {
    uint32_t magic;
    uint32_t k;                 // index bits, 0..16
    uint32_t narrow;            // 1: IPv4 points as low halves (k = 16)
    uint32_t reserved;
    uint64_t n4;                // IPv4 points
    uint64_t n6;                // IPv6 points
    uint64_t index_off;         // from the header
    uint64_t points4_off;
    uint64_t points6_off;
    uint64_t size;              // of the whole generation
};

static_assert(sizeof(GenHeader) == 64, "one cache line");

inline size_t align8(size_t n) { return (n + 7) & ~static_cast<size_t>(7); }

uint64_t points4(const Build &b) {
    if (b.v4.empty()) {
        return 0;
    }
    return 2 * b.v4.size() - (b.v4.back().e == UINT32_MAX ? 1 : 0);
}

uint64_t points6(const Build &b) {
    if (b.v6.empty()) {
        return 0;
    }
    return 2 * b.v6.size() - (u128_is_max(b.v6.back().e) ? 1 : 0);
}

// About four points a bucket, at most 2^16 buckets.
uint32_t index_bits(uint64_t n4) {
    uint32_t k = 0;
    while (k < 16 && (n4 >> (k + 3)) != 0) {
        k++;
    }
    return k;
}

GenHeader layout(const Build &b) {
    GenHeader h;
    std::memset(&h, 0, sizeof(h));
    h.magic = kGenMagic;
    h.n4 = points4(b);
    h.n6 = points6(b);
    h.k = index_bits(h.n4);
    h.narrow = h.k == 16 ? 1 : 0;
    h.index_off = sizeof(GenHeader);
    h.points4_off = h.index_off + align8(((size_t{1} << h.k) + 1) * 4);
    h.points6_off = h.points4_off + align8(h.n4 * (h.narrow ? 2 : 4));
    h.size = (h.points6_off + h.n6 * 16 + 63) & ~static_cast<uint64_t>(63);
    return h;
}

inline uint32_t point4(const Build &b, uint64_t i) {
    const Range4 &r = b.v4[i / 2];
    return (i & 1) ? r.e + 1 : r.s;
}

inline U128 point6(const Build &b, uint64_t i) {
    const Range6 &r = b.v6[i / 2];
    return (i & 1) ? u128_add1(r.e) : r.s;
}

}  // namespace

size_t gen_bytes(const Build &b) {
    if (b.v4.empty() && b.v6.empty()) {
        return 0;
    }
    return layout(b).size;
}

void gen_write(const Build &b, void *dest, size_t size) {
    GenHeader h = layout(b);
    uint8_t *base = static_cast<uint8_t *>(dest);
    if (size < h.size) {
        return;
    }
    std::memcpy(base, &h, sizeof(h));

    uint32_t *idx = reinterpret_cast<uint32_t *>(base + h.index_off);
    uint64_t pos = 0;
    unsigned shift = 32 - h.k;
    for (uint64_t bucket = 0; bucket <= (uint64_t{1} << h.k); bucket++) {
        while (pos < h.n4 && (uint64_t{point4(b, pos)} >> shift) < bucket) {
            pos++;
        }
        idx[bucket] = static_cast<uint32_t>(pos);
    }
    idx[uint64_t{1} << h.k] = static_cast<uint32_t>(h.n4);

    if (h.narrow) {
        uint16_t *p = reinterpret_cast<uint16_t *>(base + h.points4_off);
        for (uint64_t i = 0; i < h.n4; i++) {
            p[i] = static_cast<uint16_t>(point4(b, i));
        }
    } else {
        uint32_t *p = reinterpret_cast<uint32_t *>(base + h.points4_off);
        for (uint64_t i = 0; i < h.n4; i++) {
            p[i] = point4(b, i);
        }
    }
    uint64_t *p6 = reinterpret_cast<uint64_t *>(base + h.points6_off);
    for (uint64_t i = 0; i < h.n6; i++) {
        U128 v = point6(b, i);
        p6[2 * i] = v.hi;
        p6[2 * i + 1] = v.lo;
    }
}

void gen_read(const void *gen, size_t size, Build &b) {
    const uint8_t *base = static_cast<const uint8_t *>(gen);
    GenHeader h;
    if (size < sizeof(h)) {
        return;
    }
    std::memcpy(&h, base, sizeof(h));
    if (h.magic != kGenMagic || h.size > size) {
        return;
    }
    std::vector<uint32_t> pts;
    pts.reserve(h.n4);
    const uint32_t *idx =
        reinterpret_cast<const uint32_t *>(base + h.index_off);
    if (h.narrow) {
        const uint16_t *p =
            reinterpret_cast<const uint16_t *>(base + h.points4_off);
        for (uint32_t bucket = 0; bucket < (1u << 16); bucket++) {
            for (uint32_t i = idx[bucket]; i < idx[bucket + 1] && i < h.n4;
                 i++) {
                pts.push_back(bucket << 16 | p[i]);
            }
        }
    } else {
        const uint32_t *p =
            reinterpret_cast<const uint32_t *>(base + h.points4_off);
        pts.assign(p, p + h.n4);
    }
    for (size_t i = 0; i < pts.size(); i += 2) {
        b.v4.push_back(Range4{pts[i], i + 1 < pts.size() ? pts[i + 1] - 1
                                                         : UINT32_MAX});
    }
    const uint64_t *p6 =
        reinterpret_cast<const uint64_t *>(base + h.points6_off);
    for (uint64_t i = 0; i < h.n6; i += 2) {
        Range6 r;
        r.s = U128{p6[2 * i], p6[2 * i + 1]};
        if (i + 1 < h.n6) {
            U128 next{p6[2 * i + 2], p6[2 * i + 3]};
            r.e = u128_sub(next, U128{0, 1});
        } else {
            r.e = U128{UINT64_MAX, UINT64_MAX};
        }
        b.v6.push_back(r);
    }
}

bool gen_contains4(const uint8_t *gen, size_t size, uint32_t addr) {
    GenHeader h;
    if (size < sizeof(h) || (reinterpret_cast<uintptr_t>(gen) & 7) != 0) {
        return false;
    }
    std::memcpy(&h, gen, sizeof(h));
    if (h.n4 == 0 || h.k > 16 || (h.narrow && h.k != 16)
        || (h.index_off & 3) != 0 || (h.points4_off & 3) != 0) {
        return false;
    }
    uint64_t nidx = (uint64_t{1} << h.k) + 1;
    uint64_t width = h.narrow ? 2 : 4;
    if (h.index_off > size || nidx > (size - h.index_off) / 4
        || h.points4_off > size || h.n4 > (size - h.points4_off) / width) {
        return false;
    }
    const uint32_t *idx =
        reinterpret_cast<const uint32_t *>(gen + h.index_off);
    uint64_t bucket = uint64_t{addr} >> (32 - h.k);
    uint64_t lo = idx[bucket], hi = idx[bucket + 1];
    hi = std::min(hi, h.n4);
    lo = std::min(lo, hi);
    uint64_t pos;
    if (h.narrow) {
        const uint16_t *p =
            reinterpret_cast<const uint16_t *>(gen + h.points4_off);
        pos = static_cast<uint64_t>(
            std::upper_bound(p + lo, p + hi, static_cast<uint16_t>(addr))
            - p);
    } else {
        const uint32_t *p =
            reinterpret_cast<const uint32_t *>(gen + h.points4_off);
        pos = static_cast<uint64_t>(std::upper_bound(p + lo, p + hi, addr)
                                    - p);
    }
    return (pos & 1) != 0;
}

bool gen_contains6(const uint8_t *gen, size_t size, const U128 &addr) {
    GenHeader h;
    if (size < sizeof(h) || (reinterpret_cast<uintptr_t>(gen) & 7) != 0) {
        return false;
    }
    std::memcpy(&h, gen, sizeof(h));
    if (h.n6 == 0 || (h.points6_off & 7) != 0 || h.points6_off > size
        || h.n6 > (size - h.points6_off) / 16) {
        return false;
    }
    const uint64_t *p = reinterpret_cast<const uint64_t *>(gen
                                                           + h.points6_off);
    uint64_t lo = 0, n = h.n6;              // first point > addr
    while (n > 0) {
        uint64_t half = n / 2, mid = lo + half;
        U128 v{p[2 * mid], p[2 * mid + 1]};
        if (addr < v) {
            n = half;
        } else {
            lo = mid + 1;
            n -= half + 1;
        }
    }
    return (lo & 1) != 0;
}

}  // namespace trl
