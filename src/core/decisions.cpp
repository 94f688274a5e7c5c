// decisions.cpp - CrowdSec decisions: the ranges never handed out, the id
// of a penalty's decision, durations as Go prints them.
#include <cstdio>
#include <cstring>
#include <vector>

#include "guard.hpp"
#include "reputation.hpp"
#include "trl_decisions.h"

namespace {

// Two ranges overlap when they agree on the shorter of the two prefixes.
bool overlaps(uint8_t family, uint8_t prefix, const uint8_t *addr,
              const trl_cidr_t &c) {
    if (c.family != family) {
        return false;
    }
    unsigned bits = prefix < c.prefix ? prefix : c.prefix;
    unsigned max = family == 4 ? 32 : 128;
    bits = bits > max ? max : bits;
    unsigned whole = bits / 8;
    if (std::memcmp(addr, c.addr, whole) != 0) {
        return false;
    }
    unsigned rest = bits % 8;
    if (rest == 0) {
        return true;
    }
    uint8_t mask = static_cast<uint8_t>(0xff << (8 - rest));
    return (addr[whole] & mask) == (c.addr[whole] & mask);
}

}  // namespace

extern "C" {

int trl_cidr_overlaps(uint8_t family, uint8_t prefix, const uint8_t *addr,
                      const trl_cidr_t *ranges, size_t n) noexcept {
    for (size_t i = 0; i < n; i++) {
        if (overlaps(family, prefix, addr, ranges[i])) {
            return 1;
        }
    }
    return 0;
}

int trl_decision_trusted(const trl_decision_t *d, const trl_cidr_t *trusted,
                         size_t ntrusted) noexcept {
    // no bouncer is ever told to drop loopback, private or link-local
    // traffic: the reputation's built-in trusted ranges
    return trl::guard(1, [&] {
        const std::vector<trl_cidr_t> &builtin = trl::builtin_trusted();
        return trl_cidr_overlaps(d->family, d->prefix, d->addr,
                                 builtin.data(), builtin.size())
               || trl_cidr_overlaps(d->family, d->prefix, d->addr, trusted,
                                    ntrusted);
    });
}

int trl_decision_covers(const trl_decision_t *d,
                        const trl_cidr_t *c) noexcept {
    return d->family == c->family && d->prefix <= c->prefix
           && overlaps(d->family, d->prefix, d->addr, *c);
}

uint64_t trl_decision_penalty_id(const char *zone, size_t zone_len,
                                 const void *key, size_t key_len) noexcept {
    // FNV-1a: the id only has to be stable, not secret
    uint64_t h = 14695981039346656037ULL;
    auto mix = [&h](const void *p, size_t n) {
        const unsigned char *b = static_cast<const unsigned char *>(p);
        for (size_t i = 0; i < n; i++) {
            h ^= b[i];
            h *= 1099511628211ULL;
        }
    };
    mix(zone, zone_len);
    mix("", 1);
    mix(key, key_len);
    return (h & ((1ULL << 52) - 1)) | (1ULL << 52);
}

size_t trl_decision_duration(int64_t ms, char *buf, size_t len) noexcept {
    int64_t s = ms / 1000;
    const char *sign = s < 0 ? "-" : "";
    uint64_t a = s < 0 ? static_cast<uint64_t>(-s) : static_cast<uint64_t>(s);
    uint64_t h = a / 3600, m = a / 60 % 60, sec = a % 60;
    int n;
    if (h) {
        n = std::snprintf(buf, len, "%s%lluh%llum%llus", sign,
                          static_cast<unsigned long long>(h),
                          static_cast<unsigned long long>(m),
                          static_cast<unsigned long long>(sec));
    } else if (m) {
        n = std::snprintf(buf, len, "%s%llum%llus", sign,
                          static_cast<unsigned long long>(m),
                          static_cast<unsigned long long>(sec));
    } else {
        n = std::snprintf(buf, len, "%s%llus", sign,
                          static_cast<unsigned long long>(sec));
    }
    return n < 0 || static_cast<size_t>(n) >= len ? 0 : static_cast<size_t>(n);
}

}  // extern "C"
