// reputation_lookup.cpp - the request side of the reputation table: which
// lists hold an address, without a lock (see reputation_table.hpp for why
// a reader may have to look again).
#include <cstring>

#include "reputation_table.hpp"

namespace trl {

namespace {

constexpr int kTries = 3;

}  // namespace

int rep_lookup(const RepRoot &r, uint64_t want, int family,
               const uint8_t *addr, trl_rep_match_t &m) {
    std::memset(&m, 0, sizeof(m));
    uint64_t mask = r.populated.load(std::memory_order_acquire) & want;
    if (mask == 0 || addr == nullptr) {
        return 0;                           // the one load of no lists
    }

    uint32_t v4 = 0;
    U128 v6;
    if (family == 6) {
        v6 = u128_from_bytes(addr);
        if (v6.hi == 0 && (v6.lo >> 32) == 0xffff) {     // ::ffff:a.b.c.d
            family = 4;
            v4 = static_cast<uint32_t>(v6.lo);
        }
    } else if (family == 4) {
        v4 = static_cast<uint32_t>(addr[0]) << 24
             | static_cast<uint32_t>(addr[1]) << 16
             | static_cast<uint32_t>(addr[2]) << 8 | addr[3];
    } else {
        return 0;
    }

    const uint8_t *base = rep_base(r);
    const uint64_t size = r.size;
    for (int attempt = 0; attempt < kTries; attempt++) {
        uint64_t seq = r.reuse.load(std::memory_order_acquire);
        trl_rep_match_t found;
        std::memset(&found, 0, sizeof(found));
        for (uint64_t left = mask; left != 0; left &= left - 1) {
            int i = __builtin_ctzll(left);
            const RepSlot &s = r.slot[i];
            uint64_t off = s.gen.load(std::memory_order_acquire);
            if (off < r.heap_off || off >= size) {
                continue;
            }
            bool hit = family == 4
                           ? gen_contains4(base + off, size - off, v4)
                           : gen_contains6(base + off, size - off, v6);
            if (!hit) {
                continue;
            }
            uint32_t flags = s.flags.load(std::memory_order_relaxed);
            if (flags & TRL_REP_DRY_RUN) {
                found.dry_run |= UINT64_C(1) << i;
            } else {
                found.lists |= UINT64_C(1) << i;
                uint32_t score = s.score.load(std::memory_order_relaxed);
                if (score > found.score) {
                    found.score = score;
                }
            }
        }
        std::atomic_thread_fence(std::memory_order_acquire);
        if (r.reuse.load(std::memory_order_relaxed) == seq) {
            m = found;
            return (m.lists | m.dry_run) != 0 ? 1 : 0;
        }
        mask = r.populated.load(std::memory_order_acquire) & want;
    }
    return 0;                               // no match after kTries
}

}  // namespace trl
