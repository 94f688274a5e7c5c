// reputation.hpp - what the parts of IP reputation share (see
// trl_reputation.h for the contract): address ranges, a parsed list (a
// build) and the generation a build becomes in the table.
#ifndef TRL_REPUTATION_HPP
#define TRL_REPUTATION_HPP

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "trl_reputation.h"

namespace trl {

// An IPv6 address as a number.
struct U128 {
    uint64_t hi = 0;
    uint64_t lo = 0;
};

inline bool operator<(const U128 &a, const U128 &b) {
    return a.hi != b.hi ? a.hi < b.hi : a.lo < b.lo;
}
inline bool operator==(const U128 &a, const U128 &b) {
    return a.hi == b.hi && a.lo == b.lo;
}
inline bool operator!=(const U128 &a, const U128 &b) { return !(a == b); }
inline bool operator<=(const U128 &a, const U128 &b) { return !(b < a); }

inline U128 u128_add1(U128 v) {
    v.lo++;
    if (v.lo == 0) {
        v.hi++;
    }
    return v;
}

inline U128 u128_sub(U128 a, U128 b) {
    U128 r;
    r.lo = a.lo - b.lo;
    r.hi = a.hi - b.hi - (a.lo < b.lo ? 1 : 0);
    return r;
}

inline bool u128_is_max(const U128 &v) {
    return v.hi == UINT64_MAX && v.lo == UINT64_MAX;
}

U128 u128_from_bytes(const uint8_t *b);
void u128_to_bytes(const U128 &v, uint8_t *b);

// Inclusive ranges.
struct Range4 {
    uint32_t s;
    uint32_t e;
};

struct Range6 {
    U128 s;
    U128 e;
};

}  // namespace trl

// A parsed list: its ranges sorted and merged (normalise()), and what the
// parse counted.
struct trl_rep_build_s {
    std::vector<trl::Range4> v4;
    std::vector<trl::Range6> v6;
    uint64_t lines = 0;
    uint64_t entries = 0;
    uint64_t dropped_trusted = 0;
    uint64_t dropped_wide = 0;
    std::string example;            // the first dropped entry, and why
    uint64_t checksum = 0;
};

namespace trl {

using Build = trl_rep_build_s;

// reputation_parse.cpp
bool cidr_parse(const char *text, size_t len, trl_cidr_t &out,
                std::string &why);
// The ranges always trusted (loopback, private, link-local networks):
// never listed, never handed to a bouncer.  Parsed once.
const std::vector<trl_cidr_t> &builtin_trusted();
// A list's text to b (normalised); false with "<source>:<line>: ..."
bool rep_parse(const char *text, size_t len, const char *source,
               const trl_rep_rules_t *rules, Build &b, std::string &why);

// reputation_build.cpp: sorts and merges b's ranges (overlapping and
// adjacent ones become one), then sets its checksum.
void normalise(Build &b);
uint64_t build_checksum(const Build &b);
void build_merge(const Build &a, const Build &b, Build &out);
// Ranges as given (no trust rules): false with why when one ends before
// it starts or has no family.
bool build_ranges(const trl_rep_range_t *r, size_t n, Build &b,
                  std::string &why);

// reputation_gen.cpp: a build's table (a generation) as laid out in the
// zone, and read back.
size_t gen_bytes(const Build &b);
void gen_write(const Build &b, void *dest, size_t size);
// The ranges of a generation (written by gen_write, read under the lock).
void gen_read(const void *gen, size_t size, Build &b);
// Whether addr is in the generation at gen (size bytes up to the end of
// the block): never reads outside [gen, gen + size), whatever gen holds.
bool gen_contains4(const uint8_t *gen, size_t size, uint32_t addr);
bool gen_contains6(const uint8_t *gen, size_t size, const U128 &addr);

// reputation_wire.cpp
size_t wire_size(const Build &b);
size_t wire_encode(const Build &b, uint8_t *buf, size_t len);
bool wire_decode(const uint8_t *buf, size_t len, Build &b,
                 std::string &why);

}  // namespace trl

#endif
