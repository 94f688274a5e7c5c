// window.cpp - sliding window arithmetic (see window.hpp).
#include "window.hpp"

namespace trl {
namespace {

constexpr uint64_t kMaxUnitsPerWindow = 65000;
constexpr uint64_t kMaxOffset = 65534;

inline uint64_t round_up(uint64_t ms, unsigned shift) {
    uint64_t unit = UINT64_C(1) << shift;
    return (ms + unit - 1) & ~(unit - 1);
}

// Width of the grid cells whose admissions share a bucket when N > kBuckets:
// W/(kBuckets-1) rounded up to a whole unit, so that a time rounded up to
// the unit never crosses into the next cell and at most kBuckets cells are
// live at once.
inline uint64_t cell_ms(uint64_t window_ms, unsigned shift) {
    return round_up((window_ms + kBuckets - 2) / (kBuckets - 1), shift);
}

inline bool exact_log(uint32_t limit) {
    return limit <= static_cast<uint32_t>(kBuckets);
}

// The window's base in units of 2^shift ms.  It is kept modulo 2^32 units;
// the caller guarantees it is within 2^31 units of now (see horizon_ms),
// which makes it unambiguous.
inline int64_t unwrapped_base(const Window &w, uint64_t now_ms,
                              unsigned shift) {
    int64_t now_u = static_cast<int64_t>(now_ms >> shift);
    return now_u + static_cast<int32_t>(w.base - static_cast<uint32_t>(now_u));
}

// The oldest live bucket time: a bucket is live while (t << shift) + W >
// now, i.e. t >= live_from.
inline int64_t live_from_of(uint64_t now_ms, uint64_t window_ms,
                            unsigned shift) {
    return now_ms >= window_ms
               ? static_cast<int64_t>(((now_ms - window_ms) >> shift) + 1)
               : 0;
}

// Offsets from base below this are dead (clamped to 0 .. kEmpty).
inline int32_t live_offset(int64_t live_from, int64_t base) {
    int64_t first = live_from - base;
    return first < 0 ? 0
                     : first > kEmpty ? kEmpty : static_cast<int32_t>(first);
}

void remove_at(Span &s, int i) {
    for (int j = i + 1; j < s.size; j++) {
        s.t[j - 1] = s.t[j];
        s.n[j - 1] = s.n[j];
    }
    s.size--;
}

// pack() stores buckets oldest first, so this only runs on a window that a
// crashed writer left out of order.
void sort_span(Span &s) {
    for (int i = 1; i < s.size; i++) {
        uint64_t t = s.t[i];
        uint32_t n = s.n[i];
        int j = i;
        while (j > 0 && s.t[j - 1] > t) {
            s.t[j] = s.t[j - 1];
            s.n[j] = s.n[j - 1];
            j--;
        }
        s.t[j] = t;
        s.n[j] = n;
    }
}

// unpack() of a window stored with another unit (the rate changed on a
// reload): times are rounded up to the new unit, never earlier.
void unpack_rescaled(const Window &w, int64_t base, unsigned stored_shift,
                     int64_t live_from, Span &span) {
    unsigned shift = span.shift;
    bool sorted = true;

    for (int i = 0; i < kBuckets; i++) {
        if (w.off[i] == kEmpty || w.cnt[i] == 0 || base + w.off[i] < 0) {
            continue;
        }
        uint64_t stored = static_cast<uint64_t>(base + w.off[i]);
        uint64_t t = round_up(stored << stored_shift, shift) >> shift;
        if (static_cast<int64_t>(t) < live_from) {
            continue;
        }
        if (span.size > 0 && t < span.t[span.size - 1]) {
            sorted = false;
        }
        span.t[span.size] = t;
        span.n[span.size] = w.cnt[i];
        span.size++;
    }
    if (!sorted) {
        sort_span(span);
    }
}

}  // namespace

uint32_t Span::total() const {
    uint32_t sum = 0;
    for (int i = 0; i < size; i++) {
        sum += n[i];
    }
    return sum;
}

unsigned unit_shift(uint64_t window_ms) {
    unsigned shift = 0;
    while ((window_ms >> shift) > kMaxUnitsPerWindow) {
        shift++;
    }
    return shift;
}

uint64_t horizon_ms(unsigned shift) {
    return (UINT64_C(1) << 30) << shift;
}

void clear(Window &w) {
    w.base = 0;
    for (int i = 0; i < kBuckets; i++) {
        w.off[i] = kEmpty;
        w.cnt[i] = 0;
    }
}

void unpack(const Window &w, unsigned stored_shift, uint64_t now_ms,
            uint64_t window_ms, unsigned shift, Span &span) {
    span.size = 0;
    span.shift = shift;

    int64_t base = unwrapped_base(w, now_ms, stored_shift);
    int64_t live_from = live_from_of(now_ms, window_ms, shift);

    if (stored_shift != shift) {
        unpack_rescaled(w, base, stored_shift, live_from, span);
        return;
    }

    // live_from >= 0, so the times of the live buckets are never negative.
    int32_t live_off = live_offset(live_from, base);

    bool sorted = true;
    int32_t prev = -1;
    for (int i = 0; i < kBuckets; i++) {
        int32_t off = w.off[i];
        if (off == kEmpty || off < live_off || w.cnt[i] == 0) {
            continue;                       // none, or its places are back
        }
        sorted = sorted && off >= prev;
        prev = off;
        span.t[span.size] = static_cast<uint64_t>(base + off);
        span.n[span.size] = w.cnt[i];
        span.size++;
    }
    if (!sorted) {
        sort_span(span);
    }
}

void pack(const Span &span, Window &w) {
    if (span.size == 0) {
        clear(w);
        return;
    }

    // A span covers at most W plus a clock lag, within kMaxOffset units;
    // should it ever cover more, older buckets are moved later, which only
    // delays their places.
    uint64_t first = span.t[0];
    uint64_t last = span.t[span.size - 1];
    uint64_t base = last > first + kMaxOffset ? last - kMaxOffset : first;
    w.base = static_cast<uint32_t>(base);

    for (int i = 0; i < kBuckets; i++) {
        if (i >= span.size) {
            w.off[i] = kEmpty;
            w.cnt[i] = 0;
            continue;
        }
        uint64_t t = span.t[i] < base ? base : span.t[i];
        w.off[i] = static_cast<uint16_t>(t - base);
        w.cnt[i] = static_cast<uint16_t>(span.n[i] > 0xffff ? 0xffff
                                                            : span.n[i]);
    }
}

uint64_t retry_at(const Span &span, uint32_t limit, uint64_t window_ms) {
    uint32_t total = span.total();
    uint32_t must_leave = total >= limit ? total - limit + 1 : 0;
    uint32_t left = 0;

    for (int i = 0; i < span.size; i++) {
        left += span.n[i];
        if (left >= must_leave) {
            return (span.t[i] << span.shift) + window_ms;
        }
    }
    return 0;
}

uint64_t admit(Span &span, uint32_t limit, uint64_t window_ms,
               uint64_t now_ms) {
    unsigned shift = span.shift;

    // A clock read that lags another process's is moved up to the newest
    // admission: times only ever move forward.
    uint64_t t = round_up(now_ms, shift) >> shift;
    if (span.size > 0 && span.t[span.size - 1] > t) {
        t = span.t[span.size - 1];
    }

    if (span.size > 0) {
        int newest = span.size - 1;
        uint64_t cell = cell_ms(window_ms, shift) >> shift;
        bool same_cell = span.t[newest] / cell == t / cell;

        // Sharing a bucket is only allowed above kBuckets; a full span can
        // only happen right after a reload changed the rate, and sharing
        // the newest bucket is then the conservative way out.
        if ((!exact_log(limit) && same_cell) || span.size == kBuckets) {
            span.t[newest] = t;
            span.n[newest]++;
            return t << shift;
        }
    }

    span.t[span.size] = t;
    span.n[span.size] = 1;
    span.size++;
    return t << shift;
}

bool admit_in_place(Window &w, unsigned stored_shift, uint32_t limit,
                    uint64_t window_ms, uint64_t now_ms, unsigned shift,
                    uint32_t &total, uint64_t &ticket) {
    if (stored_shift != shift || exact_log(limit)) {
        return false;
    }

    int64_t base = unwrapped_base(w, now_ms, shift);
    int32_t live_off = live_offset(live_from_of(now_ms, window_ms, shift),
                                   base);

    // Buckets are stored oldest first: the last one is the newest.
    int newest = kBuckets - 1;
    while (newest >= 0 && (w.off[newest] == kEmpty || w.cnt[newest] == 0)) {
        newest--;
    }
    if (newest < 0 || w.off[newest] < live_off || w.cnt[newest] == 0xffff) {
        return false;
    }

    uint64_t newest_t = static_cast<uint64_t>(base + w.off[newest]);
    uint64_t t = round_up(now_ms, shift) >> shift;
    if (newest_t > t) {
        t = newest_t;
    }
    uint64_t cell = cell_ms(window_ms, shift) >> shift;
    if (newest_t / cell != t / cell
        || t - static_cast<uint64_t>(base) > kMaxOffset) {
        return false;
    }

    uint32_t count = 0;
    for (int i = 0; i <= newest; i++) {
        if (w.off[i] != kEmpty && w.off[i] >= live_off) {
            count += w.cnt[i];
        }
    }
    if (count >= limit) {
        return false;
    }

    w.off[newest] = static_cast<uint16_t>(t - static_cast<uint64_t>(base));
    w.cnt[newest]++;
    total = count;
    ticket = t << shift;
    return true;
}

bool give_back(Span &span, uint32_t limit, uint64_t window_ms,
               uint64_t ticket) {
    unsigned shift = span.shift;
    uint64_t t0 = round_up(ticket, shift) >> shift;
    uint64_t cell = cell_ms(window_ms, shift) >> shift;

    for (int i = 0; i < span.size; i++) {
        if (span.t[i] < t0) {
            continue;
        }
        // The first bucket at or after the admission holds it: in an exact
        // log it carries its very time; with shared buckets it is the one
        // bucket of its cell.  Anything else means it has already left.
        bool holds = span.t[i] == t0
                     || (!exact_log(limit) && span.t[i] / cell == t0 / cell);
        if (!holds) {
            return false;
        }
        if (--span.n[i] == 0) {
            remove_at(span, i);
        }
        return true;
    }
    return false;
}

}  // namespace trl
