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

void remove_at(Span &s, int i) {
    for (int j = i + 1; j < s.size; j++) {
        s.t[j - 1] = s.t[j];
        s.n[j - 1] = s.n[j];
    }
    s.size--;
}

void insert_sorted(Span &s, uint64_t t, uint32_t n) {
    int i = s.size;
    while (i > 0 && s.t[i - 1] > t) {
        s.t[i] = s.t[i - 1];
        s.n[i] = s.n[i - 1];
        i--;
    }
    s.t[i] = t;
    s.n[i] = n;
    s.size++;
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

void unpack(const Window &w, unsigned shift, uint64_t now_ms,
            uint64_t window_ms, Span &span) {
    span.size = 0;

    // The base is kept modulo 2^32 units; the caller guarantees it is within
    // 2^31 units of now (see horizon_ms), which makes it unambiguous.
    int64_t now_u = static_cast<int64_t>(now_ms >> shift);
    int64_t base = now_u + static_cast<int32_t>(
                               w.base - static_cast<uint32_t>(now_u));

    for (int i = 0; i < kBuckets; i++) {
        if (w.off[i] == kEmpty || w.cnt[i] == 0) {
            continue;
        }
        int64_t t_u = base + w.off[i];
        if (t_u < 0) {
            continue;
        }
        uint64_t t = static_cast<uint64_t>(t_u) << shift;
        if (t + window_ms <= now_ms) {
            continue;                       // its places are back
        }
        insert_sorted(span, t, w.cnt[i]);
    }
}

void pack(const Span &span, unsigned shift, Window &w) {
    clear(w);
    if (span.size == 0) {
        return;
    }

    uint64_t first = round_up(span.t[0], shift) >> shift;
    uint64_t last = round_up(span.newest(), shift) >> shift;

    // A span covers at most W plus a clock lag, within kMaxOffset units;
    // should it ever cover more, older buckets are moved later, which only
    // delays their places.
    uint64_t base = last > first + kMaxOffset ? last - kMaxOffset : first;
    w.base = static_cast<uint32_t>(base);

    for (int i = 0; i < span.size; i++) {
        uint64_t t = round_up(span.t[i], shift) >> shift;
        if (t < base) {
            t = base;
        }
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
            return span.t[i] + window_ms;
        }
    }
    return 0;
}

uint64_t admit(Span &span, uint32_t limit, uint64_t window_ms, uint64_t now_ms,
               unsigned shift) {
    // A clock read that lags another process's is moved up to the newest
    // admission: times only ever move forward.
    uint64_t t = now_ms;
    if (span.size > 0 && span.newest() > t) {
        t = span.newest();
    }
    t = round_up(t, shift);

    if (span.size > 0) {
        int newest = span.size - 1;
        uint64_t cell = cell_ms(window_ms, shift);
        bool same_cell = span.t[newest] / cell == t / cell;

        // Sharing a bucket is only allowed above kBuckets; a full span can
        // only happen right after a reload changed the rate, and sharing
        // the newest bucket is then the conservative way out.
        if ((!exact_log(limit) && same_cell) || span.size == kBuckets) {
            span.t[newest] = t;
            span.n[newest]++;
            return t;
        }
    }

    span.t[span.size] = t;
    span.n[span.size] = 1;
    span.size++;
    return t;
}

bool give_back(Span &span, uint32_t limit, uint64_t window_ms, uint64_t ticket,
               unsigned shift) {
    uint64_t t0 = round_up(ticket, shift);
    uint64_t cell = cell_ms(window_ms, shift);

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
