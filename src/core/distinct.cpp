// distinct.cpp - a key's distinct values as a block of slots (see
// distinct.hpp).
#include "distinct.hpp"

#include <algorithm>
#include <cstring>

#include "window.hpp"

namespace trl {
namespace {

constexpr uint64_t kBaseMask = (UINT64_C(1) << 48) - 1;
constexpr unsigned kTicketTimeBits = 27;
constexpr uint64_t kTicketTimeMask = (UINT64_C(1) << kTicketTimeBits) - 1;

DistinctHead *head_of(void *block) {
    return static_cast<DistinctHead *>(block);
}

DistinctSlot *slots_of(void *block) {
    return reinterpret_cast<DistinctSlot *>(static_cast<char *>(block)
                                            + sizeof(DistinctHead));
}

uint64_t base_of(const DistinctHead &h) {
    return h.base_lo | static_cast<uint64_t>(h.base_hi) << 32;
}

uint64_t ceil_units(uint64_t ms, unsigned shift) {
    return (ms + (UINT64_C(1) << shift) - 1) >> shift;
}

}  // namespace

int HeldSet::find(uint32_t fp) const {
    for (uint32_t i = 0; i < n; i++) {
        if (v[i].fp == fp) {
            return static_cast<int>(i);
        }
    }
    return -1;
}

uint64_t HeldSet::newest_ms() const {
    uint64_t newest = 0;
    for (uint32_t i = 0; i < n; i++) {
        newest = std::max(newest, v[i].at_ms);
    }
    return newest;
}

uint64_t HeldSet::free_at(uint32_t limit, uint64_t window_ms) const {
    if (n < limit) {
        return 0;
    }
    uint64_t t[kDistinctMaxSlots];
    for (uint32_t i = 0; i < n; i++) {
        t[i] = v[i].at_ms;
    }
    uint32_t k = n - limit;                 // 0-based: the (k+1)-th oldest
    std::nth_element(t, t + k, t + n);
    return t[k] + window_ms;
}

void distinct_clear(void *block, uint32_t slots) {
    std::memset(block, 0, sizeof(DistinctHead));
    DistinctSlot *s = slots_of(block);
    for (uint32_t i = 0; i < slots; i++) {
        s[i].fp_lo = s[i].fp_hi = 0;
        s[i].off = kSlotEmpty;
    }
}

void distinct_load(const void *block, uint32_t slots, uint64_t now_ms,
                   uint64_t window_ms, HeldSet &set) {
    void *b = const_cast<void *>(block);
    const DistinctHead &h = *head_of(b);
    const DistinctSlot *s = slots_of(b);
    uint64_t base = base_of(h);

    set.n = 0;
    for (uint32_t i = 0; i < slots && set.n < kDistinctMaxSlots; i++) {
        if (s[i].off == kSlotEmpty) {
            continue;
        }
        uint64_t at_ms = (base + s[i].off) << h.shift;
        if (at_ms + window_ms <= now_ms) {
            continue;                       // left the window
        }
        uint32_t word = s[i].fp_lo | static_cast<uint32_t>(s[i].fp_hi) << 16;
        set.v[set.n++] = {at_ms, word & kFingerprintMask,
                          (word & ~kFingerprintMask) != 0};
    }
}

uint32_t distinct_count(const void *block, uint32_t slots, uint64_t now_ms,
                        uint64_t window_ms) {
    void *b = const_cast<void *>(block);
    const DistinctHead &h = *head_of(b);
    const DistinctSlot *s = slots_of(b);
    uint64_t base = base_of(h);
    uint32_t n = 0;

    for (uint32_t i = 0; i < slots; i++) {
        if (s[i].off != kSlotEmpty
            && ((base + s[i].off) << h.shift) + window_ms > now_ms) {
            n++;
        }
    }
    return n;
}

// The base is the unit of now - W, rounded down: a live time (after it,
// at most now rounded up) is at most W/unit + 2 <= 65002 units later.
void distinct_store(const HeldSet &set, uint32_t slots, uint64_t now_ms,
                    uint64_t window_ms, void *block) {
    unsigned shift = unit_shift(window_ms);
    uint64_t base = (now_ms > window_ms ? now_ms - window_ms : 0) >> shift;
    DistinctHead &h = *head_of(block);
    DistinctSlot *s = slots_of(block);

    h.base_lo = static_cast<uint32_t>(base);
    h.base_hi = static_cast<uint16_t>((base & kBaseMask) >> 32);
    h.shift = static_cast<uint8_t>(shift);
    h.spare = 0;
    base &= kBaseMask;

    uint32_t j = 0;
    for (uint32_t i = 0; i < set.n && j < slots; i++) {
        uint64_t u = ceil_units(set.v[i].at_ms, shift);
        if (u < base) {
            continue;                       // cannot be live
        }
        uint64_t off = std::min<uint64_t>(u - base, kSlotEmpty - 1);
        uint32_t word = (set.v[i].fp & kFingerprintMask)
                        | (set.v[i].sole ? ~kFingerprintMask : 0);
        s[j].fp_lo = static_cast<uint16_t>(word);
        s[j].fp_hi = static_cast<uint16_t>(word >> 16);
        s[j].off = static_cast<uint16_t>(off);
        j++;
    }
    for (; j < slots; j++) {
        s[j].fp_lo = s[j].fp_hi = 0;
        s[j].off = kSlotEmpty;
    }
}

uint64_t distinct_stamp(uint64_t now_ms, uint64_t window_ms) {
    unsigned shift = unit_shift(window_ms);
    return ceil_units(now_ms, shift) << shift;
}

uint64_t distinct_ticket(uint32_t fp, bool made, uint64_t at_ms,
                         uint64_t window_ms) {
    unsigned shift = unit_shift(window_ms);
    return (made ? UINT64_C(1) << 63 : 0)
           | static_cast<uint64_t>(fp & kFingerprintMask) << 32
           | static_cast<uint64_t>(shift) << kTicketTimeBits
           | ((at_ms >> shift) & kTicketTimeMask);
}

// The ticket's time is the latest time before now (in the ticket's unit)
// with those low bits.
TicketInfo distinct_ticket_info(uint64_t ticket, uint64_t now_ms) {
    TicketInfo t;
    unsigned shift = static_cast<unsigned>(ticket >> kTicketTimeBits) & 0x1f;
    uint64_t now_u = ceil_units(now_ms, shift);
    uint64_t low = ticket & kTicketTimeMask;
    uint64_t age = (now_u - low) & kTicketTimeMask;
    t.fp = static_cast<uint32_t>(ticket >> 32) & kFingerprintMask;
    t.made = (ticket >> 63) != 0;
    t.at_ms = (now_u >= age ? now_u - age : 0) << shift;
    return t;
}

}  // namespace trl
