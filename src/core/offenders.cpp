// offenders.cpp - the top offenders table (see offenders.hpp).
#include "offenders.hpp"

#include <algorithm>
#include <cstring>
#include <new>

#include "spinlock.hpp"

namespace trl {
namespace {

constexpr uint64_t kDecayMs = 60000;

Offender *slots(OffenderTable &t) {
    return reinterpret_cast<Offender *>(&t + 1);
}

// The lock word holds the owner's pid, as a stripe lock does: a reader
// takes over a lock left by a dead process.
bool try_lock(OffenderTable &t) {
    uint32_t free = 0;
    return t.lock.compare_exchange_strong(free, current_pid(),
                                          std::memory_order_acquire);
}

// Waits: only readers (the API) do, never the request path.
void lock(OffenderTable &t) {
    (void) lock_owned(t.lock);              // a table of statistics: no repair
}

void unlock(OffenderTable &t) {
    unlock_owned(t.lock);
}

void decay(OffenderTable &t, uint64_t now_ms) {
    if (now_ms < t.decayed_ms + kDecayMs) {
        return;
    }
    uint64_t halvings = (now_ms - t.decayed_ms) / kDecayMs;
    Offender *s = slots(t);
    for (uint32_t i = 0; i < t.capacity; i++) {
        s[i].score = halvings >= 64 ? 0 : s[i].score >> halvings;
    }
    t.decayed_ms += halvings * kDecayMs;
}

void copy_out(const Offender &o, trl_offender_t &out) {
    out.key.lo = o.h_lo;
    out.key.hi = o.h_hi;
    std::memcpy(out.text, o.text, o.len);
    out.len = o.len;
    out.truncated = o.truncated;
    out.score = o.score;
    out.total = o.total;
    out.first_ms = o.first_ms;
    out.last_ms = o.last_ms;
}

}  // namespace

size_t offenders_size(uint32_t capacity) {
    return sizeof(OffenderTable) + capacity * sizeof(Offender);
}

void offenders_init(OffenderTable &t, uint32_t capacity) {
    new (&t.lock) std::atomic<uint32_t>(0);
    t.capacity = capacity;
    t.decayed_ms = 0;
    std::memset(slots(t), 0, capacity * sizeof(Offender));
}

void offenders_note(OffenderTable &t, const trl_hash_t &key, const void *text,
                    size_t len, uint64_t now_ms) {
    if (t.capacity == 0 || !try_lock(t)) {
        return;
    }
    if (t.decayed_ms == 0) {
        t.decayed_ms = now_ms;
    }
    decay(t, now_ms);

    Offender *s = slots(t);
    Offender *low = nullptr;
    for (uint32_t i = 0; i < t.capacity; i++) {
        Offender &o = s[i];
        if (o.len != 0 && o.h_lo == key.lo && o.h_hi == key.hi) {
            o.score++;
            o.total++;
            o.last_ms = now_ms;
            unlock(t);
            return;
        }
        if (low == nullptr || o.len == 0
            || (low->len != 0 && o.score < low->score)) {
            low = &o;
        }
    }

    // A new key replaces the lowest: it starts one above it, so a key
    // that keeps coming back climbs even in a full table.
    uint64_t floor = low->len != 0 ? low->score : 0;
    size_t n = std::min(len, kOffenderText);
    if (n == 0) {
        n = 1;                              // an empty key never comes here
    }
    low->h_lo = key.lo;
    low->h_hi = key.hi;
    low->score = floor + 1;
    low->total = 1;
    low->first_ms = now_ms;
    low->last_ms = now_ms;
    std::memcpy(low->text, text, std::min(len, kOffenderText));
    low->len = static_cast<uint8_t>(n);
    low->truncated = len > kOffenderText;
    unlock(t);
}

size_t offenders_top(OffenderTable &t, trl_offender_t *out, size_t max,
                     uint64_t now_ms) {
    if (t.capacity == 0) {
        return 0;
    }

    lock(t);
    decay(t, now_ms);
    Offender *s = slots(t);
    uint32_t order[256];
    uint32_t n = 0;
    for (uint32_t i = 0; i < t.capacity && n < 256; i++) {
        if (s[i].len != 0 && s[i].score > 0) {
            order[n++] = i;
        }
    }
    std::sort(order, order + n, [s](uint32_t a, uint32_t b) {
        return s[a].score != s[b].score ? s[a].score > s[b].score
                                        : s[a].last_ms > s[b].last_ms;
    });
    size_t copied = std::min<size_t>(n, max);
    for (size_t i = 0; i < copied; i++) {
        copy_out(s[order[i]], out[i]);
    }
    unlock(t);
    return copied;
}

size_t offenders_all(OffenderTable &t, trl_offender_t *out, size_t max) {
    if (t.capacity == 0) {
        return 0;
    }
    lock(t);
    Offender *s = slots(t);
    size_t n = 0;
    for (uint32_t i = 0; i < t.capacity && n < max; i++) {
        if (s[i].len != 0) {
            copy_out(s[i], out[n++]);
        }
    }
    unlock(t);
    return n;
}

bool offenders_text(OffenderTable &t, const trl_hash_t &key,
                    trl_offender_t &out) {
    if (t.capacity == 0) {
        return false;
    }
    lock(t);
    Offender *s = slots(t);
    for (uint32_t i = 0; i < t.capacity; i++) {
        if (s[i].len != 0 && s[i].h_lo == key.lo && s[i].h_hi == key.hi) {
            copy_out(s[i], out);
            unlock(t);
            return true;
        }
    }
    unlock(t);
    return false;
}

void offenders_forget(OffenderTable &t, const trl_hash_t &key) {
    if (t.capacity == 0) {
        return;
    }
    lock(t);
    Offender *s = slots(t);
    for (uint32_t i = 0; i < t.capacity; i++) {
        if (s[i].len != 0 && s[i].h_lo == key.lo && s[i].h_hi == key.hi) {
            std::memset(&s[i], 0, sizeof(Offender));
        }
    }
    unlock(t);
}

}  // namespace trl
