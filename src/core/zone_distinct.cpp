// zone_distinct.cpp - distinct-value zones: a key's entry (penalty, LRU
// list, statistics, episode of rejections) as in any zone, and beside it a
// block of slots, its distinct values in the window (distinct.hpp).  The
// block is an array beside the entries, same index, written under the
// stripe's lock like the entry.
#include <algorithm>
#include <cstring>

#include "distinct.hpp"
#include "trl_active.h"
#include "trl_distinct.h"
#include "zone.hpp"

namespace trl {
namespace {

// The N decided on: the limit's, never more than the slots allow.
uint32_t distinct_limit(const trl_limit_t &limit, uint32_t slots) {
    return std::min(limit.rate.limit, slots - 1);
}

}  // namespace

void *Zone::distinct_block(uint32_t i) const {
    if (r_->distinct_slots == 0) {
        return nullptr;
    }
    return reinterpret_cast<char *>(r_) + r_->distinct_off
           + distinct_block_bytes(r_->distinct_slots) * i;
}

// at_limit() of a distinct zone: a penalty, or N live values.
bool Zone::distinct_full(uint32_t i, const trl_limit_t &limit,
                         uint64_t now_ms) const {
    trl_result_t ignored;
    std::memset(&ignored, 0, sizeof(ignored));
    if (serving_penalty(entry(i), now_ms, ignored)) {
        return true;
    }
    return distinct_count(distinct_block(i), r_->distinct_slots, now_ms,
                          limit.rate.window_ms)
           >= distinct_limit(limit, r_->distinct_slots);
}

bool Zone::distinct_live(uint32_t i, const trl_limit_t &limit,
                         uint64_t now_ms) const {
    void *block = distinct_block(i);
    return block != nullptr
           && distinct_count(block, r_->distinct_slots, now_ms,
                             limit.rate.window_ms) > 0;
}

int Zone::distinct_acquire(const trl_hash_t &key, const trl_limit_t &limit,
                           uint32_t fp, uint64_t now_ms, trl_result_t &res) {
    uint32_t slots = r_->distinct_slots;
    if (slots == 0) {
        return TRL_ERROR;
    }
    uint32_t n = distinct_limit(limit, slots);
    uint64_t w = limit.rate.window_ms;
    fp &= kFingerprintMask;
    Stripe &s = stripe_of(key);

    Locked lock(*this, s);
    now_ms = begin_result(lock, n, now_ms, res);

    // TRL_DISTINCT_HELD (sync=async): only a value held here and settled
    // is decided; anything else is asked of Redis, nothing recorded.
    bool held = limit.flags & TRL_DISTINCT_HELD;
    uint32_t i = held ? find(s, key) : find_or_take(s, key, limit, now_ms, res);
    if (i == kNil) {
        res.ask = 1;
        return TRL_OK;
    }
    Entry &e = entry(i);
    lru_unlink(s, i);

    HeldSet set;
    distinct_load(distinct_block(i), slots, now_ms, w, set);
    res.reset_ms = set.n ? set.newest_ms() + w : now_ms;

    if (serving_penalty(e, now_ms, res)) {
        note_reject(s, e, limit, res);      // not recorded, not extended
        s.stat[kPenalized]++;
        e.flags |= kAtLimit;
        lru_push(s, i);
        return TRL_OK;
    }

    bool provisional = limit.flags & TRL_DISTINCT_PROVISIONAL;
    bool force = limit.flags & TRL_LIMIT_FORCE;
    uint64_t at = distinct_stamp(now_ms, w);

    // TRL_DISTINCT_UNIQUE (active zones): a nonce met again is changed,
    // never taken for a repeat (which would admit without a place)
    while ((limit.flags & TRL_DISTINCT_UNIQUE) && !force
           && set.find(fp) >= 0) {
        fp = ((fp + 1) & (TRL_ACTIVE_NONCE - 1)) | TRL_ACTIVE_NONCE;
    }
    int k = set.find(fp);

    if (held && (k < 0 || set.v[k].sole)) {
        res.ask = 1;                        // Redis decides it
        lru_push(s, i);
        return TRL_OK;
    }

    if (k < 0 && set.n >= n && !force) {
        uint64_t free_at = set.free_at(n, w);
        res.retry_ms = free_at > now_ms ? free_at - now_ms : 1;
        note_reject(s, e, limit, res);
        if (limit.penalty.base_ms != 0 && !(limit.flags & TRL_LIMIT_DRY_RUN)) {
            start_penalty(s, e, limit, now_ms, res);
        }
    } else {
        bool made = k < 0;
        if (made) {
            if (set.n >= slots) {           // forced with no slot free:
                uint32_t oldest = 0;        // the oldest value makes room
                for (uint32_t j = 1; j < set.n; j++) {
                    if (set.v[j].at_ms < set.v[oldest].at_ms) {
                        oldest = j;
                    }
                }
                set.remove(oldest);
            }
            set.v[set.n++] = {at, fp, provisional};
        } else if (!held) {
            Held &h = set.v[k];
            h.at_ms = std::max(h.at_ms, at);
            h.sole = false;                 // another request relies on it
        } else {
            at = set.v[k].at_ms;    // as Redis last saw it: not extended
        }
        res.ticket = distinct_ticket(fp, made, at, w);
        res.remaining = set.n >= n ? 0 : n - set.n;
        res.reset_ms = set.newest_ms() + w;
        note_admit(s, e, limit, set.n, res);
        distinct_store(set, slots, now_ms, w, distinct_block(i));
    }

    e.touched_s = static_cast<uint32_t>(now_ms / 1000);
    e.flags = res.remaining == 0 ? (e.flags | kAtLimit)
                                 : (e.flags & ~kAtLimit);
    lru_push(s, i);
    return TRL_OK;
}

int Zone::distinct_settle(const trl_hash_t &key, const trl_limit_t &limit,
                          uint64_t ticket, bool confirm, uint64_t now_ms) {
    uint32_t slots = r_->distinct_slots;
    if (slots == 0) {
        return TRL_ERROR;
    }
    uint64_t w = limit.rate.window_ms;
    Stripe &s = stripe_of(key);
    Locked lock(*this, s);
    if (now_ms == TRL_CLOCK_NOW) {
        now_ms = trl_clock_ms();
    }

    uint32_t i = find(s, key);
    TicketInfo t = distinct_ticket_info(ticket, now_ms);
    if (i == kNil || t.at_ms + w <= now_ms) {
        return TRL_OK;                      // evicted, or out of the window
    }

    HeldSet set;
    distinct_load(distinct_block(i), slots, now_ms, w, set);
    int k = set.find(t.fp);
    if (k < 0 || !set.v[k].sole || set.v[k].at_ms != t.at_ms) {
        return TRL_OK;          // another request touched it: it stays
    }
    if (confirm) {
        set.v[k].sole = false;
    } else if (t.made) {
        set.remove(static_cast<uint32_t>(k));
    } else {
        return TRL_OK;
    }
    distinct_put(s, i, limit, set, now_ms);
    return TRL_OK;
}

void Zone::distinct_put(Stripe &s, uint32_t i, const trl_limit_t &limit,
                        const HeldSet &set, uint64_t now_ms) {
    uint32_t slots = r_->distinct_slots;
    distinct_store(set, slots, now_ms, limit.rate.window_ms,
                   distinct_block(i));

    Entry &e = entry(i);
    if ((e.flags & kAtLimit) && set.n < distinct_limit(limit, slots)) {
        lru_unlink(s, i);
        e.flags &= ~kAtLimit;               // a penalty still keeps it last
        lru_push(s, i);
    }
}

int Zone::distinct_peek(const trl_hash_t &key, const trl_limit_t &limit,
                        uint64_t now_ms, trl_result_t &res) {
    uint32_t slots = r_->distinct_slots;
    if (slots == 0) {
        return TRL_ERROR;
    }
    uint32_t n = distinct_limit(limit, slots);
    uint64_t w = limit.rate.window_ms;
    Stripe &s = stripe_of(key);

    Locked lock(*this, s);
    now_ms = begin_result(lock, n, now_ms, res);

    uint32_t i = find(s, key);
    if (i == kNil) {
        res.remaining = n;
        res.reset_ms = now_ms;
        return 1;
    }

    HeldSet set;
    distinct_load(distinct_block(i), slots, now_ms, w, set);
    res.remaining = set.n >= n ? 0 : n - set.n;
    res.reset_ms = set.n ? set.newest_ms() + w : now_ms;
    res.violations = entry(i).violations & kViolationMask;
    if (set.n >= n) {
        res.rejected = 1;
        uint64_t free_at = set.free_at(n, w);
        res.retry_ms = free_at > now_ms ? free_at - now_ms : 1;
    }
    if (serving_penalty(entry(i), now_ms, res)) {
        res.rejected = 1;
    }
    return TRL_OK;
}

// Redis decided: an admission is recorded (forced: the cluster may hold
// values this node never saw), a rejection is counted and may start the
// key's penalty; the numbers shown are the cluster's.
int Zone::distinct_strict_apply(const trl_hash_t &key,
                                const trl_limit_t &limit, uint32_t fp,
                                bool admitted, uint32_t count,
                                uint32_t free_in_ms, uint32_t reset_in_ms,
                                uint64_t now_ms, trl_result_t &res) {
    uint32_t slots = r_->distinct_slots;
    if (slots == 0) {
        return TRL_ERROR;
    }
    uint32_t n = distinct_limit(limit, slots);

    if (admitted) {
        trl_limit_t forced = limit;
        forced.flags |= TRL_LIMIT_FORCE;
        if (distinct_acquire(key, forced, fp, now_ms, res) != TRL_OK) {
            return TRL_ERROR;
        }
        res.remaining = count >= n ? 0 : n - count;
        res.reset_ms = std::max(res.reset_ms, res.now_ms + reset_in_ms);
        return TRL_OK;
    }

    Stripe &s = stripe_of(key);
    Locked lock(*this, s);
    now_ms = begin_result(lock, n, now_ms, res);
    uint32_t i = find_or_take(s, key, limit, now_ms, res);
    Entry &e = entry(i);
    lru_unlink(s, i);
    res.retry_ms = free_in_ms ? free_in_ms : 1;
    res.reset_ms = now_ms + reset_in_ms;
    if (serving_penalty(e, now_ms, res)) {
        s.stat[kPenalized]++;
        note_reject(s, e, limit, res);
    } else {
        note_reject(s, e, limit, res);
        if (limit.penalty.base_ms != 0 && !(limit.flags & TRL_LIMIT_DRY_RUN)) {
            start_penalty(s, e, limit, now_ms, res);
        }
    }
    e.touched_s = static_cast<uint32_t>(now_ms / 1000);
    e.flags |= kAtLimit;
    lru_push(s, i);
    return TRL_OK;
}

}  // namespace trl
