// reputation_build.cpp - a list's ranges in their one normal form (sorted,
// overlapping and adjacent ranges merged), its checksum, and the union of
// two lists.
#include <algorithm>

#include "reputation.hpp"

namespace trl {

namespace {

template <typename R>
bool by_start(const R &a, const R &b) {
    return a.s < b.s;
}

// FNV-1a, 64 bits: the same ranges give the same checksum on every node.
struct Fnv {
    uint64_t h = UINT64_C(0xcbf29ce484222325);
    void byte(uint8_t c) {
        h ^= c;
        h *= UINT64_C(0x100000001b3);
    }
    void u32(uint32_t v) {
        for (int i = 24; i >= 0; i -= 8) {
            byte(static_cast<uint8_t>(v >> i));
        }
    }
    void u64(uint64_t v) {
        for (int i = 56; i >= 0; i -= 8) {
            byte(static_cast<uint8_t>(v >> i));
        }
    }
};

}  // namespace

void normalise(Build &b) {
    std::sort(b.v4.begin(), b.v4.end(), by_start<Range4>);
    size_t out = 0;
    for (size_t i = 0; i < b.v4.size(); i++) {
        const Range4 &r = b.v4[i];
        if (out > 0 && (b.v4[out - 1].e == UINT32_MAX
                        || r.s <= b.v4[out - 1].e + 1)) {
            b.v4[out - 1].e = std::max(b.v4[out - 1].e, r.e);
        } else {
            b.v4[out++] = r;
        }
    }
    b.v4.resize(out);

    std::sort(b.v6.begin(), b.v6.end(), by_start<Range6>);
    out = 0;
    for (size_t i = 0; i < b.v6.size(); i++) {
        const Range6 &r = b.v6[i];
        if (out > 0 && (u128_is_max(b.v6[out - 1].e)
                        || r.s <= u128_add1(b.v6[out - 1].e))) {
            if (b.v6[out - 1].e < r.e) {
                b.v6[out - 1].e = r.e;
            }
        } else {
            b.v6[out++] = r;
        }
    }
    b.v6.resize(out);
    b.checksum = build_checksum(b);
}

uint64_t build_checksum(const Build &b) {
    Fnv f;
    f.u64(b.v4.size());
    for (const Range4 &r : b.v4) {
        f.u32(r.s);
        f.u32(r.e);
    }
    f.u64(b.v6.size());
    for (const Range6 &r : b.v6) {
        f.u64(r.s.hi);
        f.u64(r.s.lo);
        f.u64(r.e.hi);
        f.u64(r.e.lo);
    }
    return f.h;
}

void build_merge(const Build &a, const Build &b, Build &out) {
    out.v4.reserve(a.v4.size() + b.v4.size());
    out.v4 = a.v4;
    out.v4.insert(out.v4.end(), b.v4.begin(), b.v4.end());
    out.v6 = a.v6;
    out.v6.insert(out.v6.end(), b.v6.begin(), b.v6.end());
    out.lines = a.lines + b.lines;
    out.entries = a.entries + b.entries;
    out.dropped_trusted = a.dropped_trusted + b.dropped_trusted;
    out.dropped_wide = a.dropped_wide + b.dropped_wide;
    out.example = a.example.empty() ? b.example : a.example;
    normalise(out);
}

bool build_ranges(const trl_rep_range_t *r, size_t n, Build &b,
                  std::string &why) {
    for (size_t i = 0; i < n; i++) {
        if (r[i].family == 4) {
            uint32_t s = 0, e = 0;
            for (int j = 0; j < 4; j++) {
                s = s << 8 | r[i].first[j];
                e = e << 8 | r[i].last[j];
            }
            if (e < s) {
                why = "range " + std::to_string(i)
                      + " ends before it starts";
                return false;
            }
            b.v4.push_back(Range4{s, e});
        } else if (r[i].family == 6) {
            Range6 x{u128_from_bytes(r[i].first), u128_from_bytes(r[i].last)};
            if (x.e < x.s) {
                why = "range " + std::to_string(i)
                      + " ends before it starts";
                return false;
            }
            b.v6.push_back(x);
        } else {
            why = "range " + std::to_string(i) + " has no family (4 or 6)";
            return false;
        }
    }
    b.entries = n;
    normalise(b);
    return true;
}

}  // namespace trl
