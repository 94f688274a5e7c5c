// window.hpp - the sliding window of one key: at most N admissions in any
// interval of length W, never more.
//
// A window keeps up to kBuckets buckets, each the number of admissions it
// holds and the time of the latest of them.  A bucket's places are given
// back together, W after that latest admission, so the count a window
// reports is never below the true number of admissions in the last W.
//
// - N <= kBuckets: every admission gets a bucket of its own; the window is
//   an exact log and a place comes back exactly W after its admission.
// - N > kBuckets: admissions that fall into the same cell of a grid of
//   width W/(kBuckets-1), rounded up to a whole unit, share a bucket.  A
//   place may then come back up to one cell later than it would with an
//   exact log (never earlier), and kBuckets buckets always suffice, since
//   the live buckets (stored times on the unit grid, like the cell edges)
//   span at most kBuckets cells.
//
// Times are stored as 16-bit offsets in units of 2^shift ms (shift chosen
// so that W spans at most 65000 units: windows up to a minute keep whole
// milliseconds) from a 32-bit base, rounded up: a stored time is never
// earlier than the admission it stands for.  The live buckets span at most
// W (plus a clock lag), so their offsets fit.
#ifndef TRL_WINDOW_HPP
#define TRL_WINDOW_HPP

#include <cstdint>

namespace trl {

constexpr int kBuckets = 8;

struct Window {                 // as stored in a zone entry: 36 bytes
    uint32_t base;              // units, low 32 bits
    uint16_t off[kBuckets];     // bucket time - base, in units; kEmpty: none
    uint16_t cnt[kBuckets];     // admissions in the bucket
};

constexpr uint16_t kEmpty = 0xffff;

// A window unpacked: its live buckets, oldest first, with times in units of
// 2^shift ms, the unit the window will be stored with.
struct Span {
    uint64_t t[kBuckets];       // units, latest admission of the bucket
    uint32_t n[kBuckets];       // admissions in the bucket
    int size = 0;
    unsigned shift = 0;

    uint32_t total() const;
    uint64_t newest_ms() const { return t[size - 1] << shift; }
};

// The unit for a window length: 2^shift ms.
unsigned unit_shift(uint64_t window_ms);

// Oldest age, in ms, that a window stored with this shift can represent
// unambiguously: an entry untouched for longer is treated as empty.
uint64_t horizon_ms(unsigned shift);

void clear(Window &w);

// The buckets of w (stored with stored_shift) still live at now_ms for
// window_ms, in units of 2^shift ms (shift = unit_shift(window_ms)).
void unpack(const Window &w, unsigned stored_shift, uint64_t now_ms,
            uint64_t window_ms, unsigned shift, Span &span);

// Stores span into w (with span.shift).
void pack(const Span &span, Window &w);

// When, in ms, the count of span drops below limit (span.total() >= limit).
uint64_t retry_at(const Span &span, uint32_t limit, uint64_t window_ms);

// Records one admission at now_ms (span.total() < limit); returns its
// ticket, the time in ms it was recorded at.
uint64_t admit(Span &span, uint32_t limit, uint64_t window_ms,
               uint64_t now_ms);

// The common case under load, without unpacking: when N > kBuckets and the
// admission falls into the cell of the newest live bucket, records it there
// and returns true with the count before it and its ticket.  Returns false,
// touching nothing, whenever the full path is needed (a new bucket, a
// rejection, a changed unit).
bool admit_in_place(Window &w, unsigned stored_shift, uint32_t limit,
                    uint64_t window_ms, uint64_t now_ms, unsigned shift,
                    uint32_t &total, uint64_t &ticket);

// Removes the admission named by ticket if it is still in span.
bool give_back(Span &span, uint32_t limit, uint64_t window_ms,
               uint64_t ticket);

}  // namespace trl

#endif
