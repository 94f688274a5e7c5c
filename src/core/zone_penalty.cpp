// zone_penalty.cpp - what a zone does besides counting: progressive
// penalties for keys that keep violating a limit, and the warning
// threshold before it.
//
// A penalty is kept in the key's entry: the number of violations in a row
// and the end of the current block (16 ms units of the clock, modulo
// 2^32: some two years, far beyond any block).  While blocked, every
// request of the key is rejected and not counted; the block does not grow
// with them.  The next violation after a block blocks factor times longer,
// up to max; a key that stays out of trouble for forgive after its last
// block ended starts again from base.  A request with a penalty level L
// (its source is on a reputation list) counts its violation as at least
// the L-th.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "zone.hpp"

namespace trl {

namespace {

constexpr unsigned kPenaltyShift = 4;               // 16 ms units

// The end of a block, in units: rounded down (a block may end up to 15 ms
// early, never late), so that the wait a client is told, rounded up to
// whole seconds, is never a second longer than the block.  A block always
// ends after now: at least the unit after now_ms.
inline uint32_t penalty_end(uint64_t now_ms, uint64_t until_ms) {
    uint64_t units = std::max(until_ms >> kPenaltyShift,
                              (now_ms >> kPenaltyShift) + 1);
    uint32_t end = static_cast<uint32_t>(units);
    return end != 0 ? end : 1;              // 0 means "none"
}

// An entry untouched for longer than this cannot say anything about now.
constexpr uint64_t kPenaltyHorizonMs = (UINT64_C(1) << 31) << kPenaltyShift;

// base * factor^(v-1), capped at max.
uint64_t penalty_length(const trl_penalty_t &p, uint32_t violations) {
    double factor = p.factor >= 1.0 ? p.factor : 1.0;
    double ms = static_cast<double>(p.base_ms)
                * std::pow(factor, static_cast<double>(violations - 1));
    double cap = static_cast<double>(std::max(p.max_ms, p.base_ms));
    return static_cast<uint64_t>(ms < cap ? ms : cap);
}

}  // namespace

bool Zone::serving_penalty(const Entry &e, uint64_t now_ms,
                           trl_result_t &res) const {
    uint32_t v = e.violations & kViolationMask;
    uint64_t touched_ms = static_cast<uint64_t>(e.touched_s) * 1000;

    if (v == 0 || e.penalty_until == 0
        || now_ms > touched_ms + kPenaltyHorizonMs) {
        return false;
    }

    int32_t left = static_cast<int32_t>(
        e.penalty_until - static_cast<uint32_t>(now_ms >> kPenaltyShift));
    if (left <= 0) {
        return false;
    }

    uint64_t until_ms = ((now_ms >> kPenaltyShift) + left) << kPenaltyShift;

    res.penalized = 1;
    res.violations = v;
    res.penalty_ms = until_ms - now_ms;
    res.retry_ms = std::max(res.retry_ms, res.penalty_ms);
    res.reset_ms = std::max(res.reset_ms, until_ms);
    return true;
}

// A rejection is a violation: the key is blocked for its next length.
void Zone::start_penalty(Stripe &s, Entry &e, const trl_limit_t &limit,
                         uint64_t now_ms, trl_result_t &res) {
    const trl_penalty_t &p = limit.penalty;
    uint32_t v = e.violations & kViolationMask;

    if (v > 0 && e.penalty_until != 0) {
        int32_t since_end = static_cast<int32_t>(
            static_cast<uint32_t>(now_ms >> kPenaltyShift) - e.penalty_until);
        uint64_t quiet = since_end > 0
                             ? static_cast<uint64_t>(since_end)
                                   << kPenaltyShift
                             : 0;
        if (quiet > p.forgive_ms) {
            v = 0;                          // forgiven
        }
    }
    if (v < kViolationMask) {
        v++;
    }
    if (p.level > v) {                      // a listed source starts higher
        v = p.level < kViolationMask ? p.level : kViolationMask;
    }

    uint64_t length = penalty_length(p, v);
    e.penalty_until = penalty_end(now_ms, now_ms + length);
    e.violations = static_cast<uint8_t>((e.violations & ~kViolationMask) | v);

    // the block really ends at the unit it was rounded down to
    uint64_t left = ((now_ms >> kPenaltyShift)
                     + static_cast<uint32_t>(
                         e.penalty_until
                         - static_cast<uint32_t>(now_ms >> kPenaltyShift)))
                        << kPenaltyShift;
    left = left > now_ms ? left - now_ms : 1;

    res.penalty_start = 1;
    res.violations = v;
    res.penalty_ms = length;
    res.retry_ms = std::max(res.retry_ms, left);
    res.reset_ms = std::max(res.reset_ms, now_ms + left);
    s.stat[kPenalties]++;
}

// A penalty decided elsewhere (Redis, another node): the later end wins.
void Zone::adopt_penalty(Entry &e, uint64_t until_ms, uint32_t violations,
                         uint64_t now_ms) {
    uint32_t until = penalty_end(now_ms, until_ms);
    uint32_t v = e.violations & kViolationMask;
    trl_result_t current;
    std::memset(&current, 0, sizeof(current));

    if (!serving_penalty(e, now_ms, current)
        || static_cast<int32_t>(until - e.penalty_until) > 0) {
        e.penalty_until = until;
    }
    if (violations > v) {
        v = violations < kViolationMask ? violations : kViolationMask;
        e.violations = static_cast<uint8_t>((e.violations & ~kViolationMask)
                                            | v);
    }
}

// An admission ends a rejection episode (its unlogged rejections are
// reported) and is checked against the warning threshold.
void Zone::note_admit(Stripe &s, Entry &e, const trl_limit_t &limit,
                      uint32_t count, trl_result_t &res) {
    if (e.flags & kLogged) {
        res.suppressed = e.suppressed;
        e.suppressed = 0;
        e.flags &= ~kLogged;
    }
    // kPassed and kWarned are exclusive, so that a reader without the
    // lock never sees warned ahead of the admissions (see stats())
    if (limit.warn != 0 && count >= limit.warn) {
        res.warned = 1;
        if (!(e.violations & kWarnedFlag)) {
            res.warn_first = 1;
            e.violations |= kWarnedFlag;
        }
        s.stat[kWarned]++;
    } else {
        e.violations &= ~kWarnedFlag;
        s.stat[kPassed]++;
    }
}

}  // namespace trl
