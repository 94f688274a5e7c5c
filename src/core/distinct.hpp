// distinct.hpp - the distinct values of one key in a sliding window: at
// most N distinct values in any interval of length W, never more.
//
// A key's values are kept as slots of a fixed block (slots = N + 1 of the
// N the zone was made for): a 31-bit keyed fingerprint of the value, a
// "sole" bit and the time of the latest admitted request with that value
// (16 bits, in the window's unit, from the block's 48-bit base).  A value
// counts from its latest admission for W; a repeat refreshes its time, so
// the slots live at t are exactly the distinct values admitted in (t-W, t]
// (up to fingerprint collisions).  A new value is admitted only while
// fewer than N slots are live, provisional ones included.
//
// Provisional holds (count=failed/succeeded): a new value's slot is
// "sole" while the request that made it is in flight and no other request
// touched it; cancelling that request (its ticket) frees the slot, while
// any repeat or confirmation makes it permanent until W after its time.
// So a cancel never frees a slot another request relies on: at worst a
// value is held longer than an exact reference would (never shorter).
#ifndef TRL_DISTINCT_HPP
#define TRL_DISTINCT_HPP

#include <cstddef>
#include <cstdint>

namespace trl {

constexpr uint32_t kDistinctMaxLimit = 1000;        // TRL_DISTINCT_MAX_LIMIT
constexpr uint32_t kDistinctMaxSlots = kDistinctMaxLimit + 1;
constexpr uint32_t kFingerprintMask = 0x7fffffff;

struct DistinctHead {           // 8 bytes
    uint32_t base_lo;           // base, in units of 2^shift ms: 48 bits
    uint16_t base_hi;
    uint8_t shift;
    uint8_t spare;
};

struct DistinctSlot {           // 6 bytes
    uint16_t fp_lo;
    uint16_t fp_hi;             // top bit: sole
    uint16_t off;               // time - base, in units; kSlotEmpty: free
};
static_assert(sizeof(DistinctHead) == 8, "distinct head");
static_assert(sizeof(DistinctSlot) == 6, "distinct slot");

constexpr uint16_t kSlotEmpty = 0xffff;

// Bytes of a key's block: the head and the slots, rounded up to 4.
inline size_t distinct_block_bytes(uint32_t slots) {
    if (slots == 0) {
        return 0;
    }
    return (sizeof(DistinctHead) + sizeof(DistinctSlot) * slots + 3)
           & ~static_cast<size_t>(3);
}

// A block unpacked: its live values, times in ms (rounded up to the unit).
struct Held {
    uint64_t at_ms;
    uint32_t fp;
    bool sole;
};

struct HeldSet {
    Held v[kDistinctMaxSlots];
    uint32_t n = 0;

    int find(uint32_t fp) const;
    void remove(uint32_t i) { v[i] = v[--n]; }
    uint64_t newest_ms() const;
    // When the live values drop below limit (n >= limit): the
    // (n - limit + 1)-th oldest time plus W.
    uint64_t free_at(uint32_t limit, uint64_t window_ms) const;
};

void distinct_clear(void *block, uint32_t slots);
void distinct_load(const void *block, uint32_t slots, uint64_t now_ms,
                   uint64_t window_ms, HeldSet &set);
void distinct_store(const HeldSet &set, uint32_t slots, uint64_t now_ms,
                    uint64_t window_ms, void *block);
// The live slots of a block, without unpacking them.
uint32_t distinct_count(const void *block, uint32_t slots, uint64_t now_ms,
                        uint64_t window_ms);

// now in the window's unit, rounded up: an admission's recorded time.
uint64_t distinct_stamp(uint64_t now_ms, uint64_t window_ms);

// Tickets name one admission: new (made the slot), fingerprint, unit and
// time (27 low bits of units: unambiguous for some 2000 windows).
uint64_t distinct_ticket(uint32_t fp, bool made, uint64_t at_ms,
                         uint64_t window_ms);
struct TicketInfo {
    uint32_t fp;
    bool made;
    uint64_t at_ms;
};
TicketInfo distinct_ticket_info(uint64_t ticket, uint64_t now_ms);

}  // namespace trl

#endif
