// reputation_wire.cpp - a list's merged ranges as bytes (the Redis copy of
// an uploaded list), and back with every fault refused.
//
//   "TRLR" | version 1 | 3 zero bytes | entries | dropped trusted |
//   dropped wide | checksum (8 bytes each) | n4 | n6 (4 bytes each) |
//   n4 x (first, last: 4 bytes each) | n6 x (first, last: 16 bytes each)
//
// Numbers big-endian.  Ranges are in normal form: each starts after the
// one before it ends plus one (sorted, neither overlapping nor adjacent).
#include <cstring>

#include "reputation.hpp"

namespace trl {

namespace {

constexpr uint8_t kWireMagic[4] = {'T', 'R', 'L', 'R'};
constexpr uint8_t kWireVersion = 1;
constexpr size_t kWireHeader = 8 + 4 * 8 + 2 * 4;

void put32(uint8_t *&p, uint32_t v) {
    for (int i = 24; i >= 0; i -= 8) {
        *p++ = static_cast<uint8_t>(v >> i);
    }
}

void put64(uint8_t *&p, uint64_t v) {
    for (int i = 56; i >= 0; i -= 8) {
        *p++ = static_cast<uint8_t>(v >> i);
    }
}

uint32_t get32(const uint8_t *&p) {
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        v = v << 8 | *p++;
    }
    return v;
}

uint64_t get64(const uint8_t *&p) {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) {
        v = v << 8 | *p++;
    }
    return v;
}

}  // namespace

size_t wire_size(const Build &b) {
    return kWireHeader + b.v4.size() * 8 + b.v6.size() * 32;
}

size_t wire_encode(const Build &b, uint8_t *buf, size_t len) {
    size_t need = wire_size(b);
    if (buf == nullptr || len < need || b.v4.size() > UINT32_MAX
        || b.v6.size() > UINT32_MAX) {
        return 0;
    }
    uint8_t *p = buf;
    std::memcpy(p, kWireMagic, 4);
    p += 4;
    *p++ = kWireVersion;
    *p++ = 0;
    *p++ = 0;
    *p++ = 0;
    put64(p, b.entries);
    put64(p, b.dropped_trusted);
    put64(p, b.dropped_wide);
    put64(p, b.checksum);
    put32(p, static_cast<uint32_t>(b.v4.size()));
    put32(p, static_cast<uint32_t>(b.v6.size()));
    for (const Range4 &r : b.v4) {
        put32(p, r.s);
        put32(p, r.e);
    }
    for (const Range6 &r : b.v6) {
        u128_to_bytes(r.s, p);
        u128_to_bytes(r.e, p + 16);
        p += 32;
    }
    return need;
}

bool wire_decode(const uint8_t *buf, size_t len, Build &b,
                 std::string &why) {
    if (buf == nullptr || len < kWireHeader
        || std::memcmp(buf, kWireMagic, 4) != 0) {
        why = "not a reputation list (bad magic or short)";
        return false;
    }
    if (buf[4] != kWireVersion || buf[5] != 0 || buf[6] != 0
        || buf[7] != 0) {
        why = "a reputation list of wire version " + std::to_string(buf[4])
              + " (this one reads " + std::to_string(kWireVersion) + ")";
        return false;
    }
    const uint8_t *p = buf + 8;
    b.entries = get64(p);
    b.dropped_trusted = get64(p);
    b.dropped_wide = get64(p);
    uint64_t checksum = get64(p);
    uint64_t n4 = get32(p), n6 = get32(p);
    if (len != kWireHeader + n4 * 8 + n6 * 32) {
        why = "the reputation list is " + std::to_string(len)
              + " bytes, its header says "
              + std::to_string(kWireHeader + n4 * 8 + n6 * 32);
        return false;
    }
    b.v4.reserve(n4);
    for (uint64_t i = 0; i < n4; i++) {
        Range4 r;
        r.s = get32(p);
        r.e = get32(p);
        if (r.e < r.s
            || (i > 0 && (b.v4.back().e == UINT32_MAX
                          || r.s <= b.v4.back().e + 1))) {
            why = "IPv4 range " + std::to_string(i) + " is out of order";
            return false;
        }
        b.v4.push_back(r);
    }
    b.v6.reserve(n6);
    for (uint64_t i = 0; i < n6; i++) {
        Range6 r{u128_from_bytes(p), u128_from_bytes(p + 16)};
        p += 32;
        if (r.e < r.s
            || (i > 0 && (u128_is_max(b.v6.back().e)
                          || r.s <= u128_add1(b.v6.back().e)))) {
            why = "IPv6 range " + std::to_string(i) + " is out of order";
            return false;
        }
        b.v6.push_back(r);
    }
    b.checksum = build_checksum(b);
    if (b.checksum != checksum) {
        why = "the reputation list's checksum does not match its ranges";
        return false;
    }
    return true;
}

}  // namespace trl
