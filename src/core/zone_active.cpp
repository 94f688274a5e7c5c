// zone_active.cpp - active zones (trl_active.h): distinct zones whose slot
// times are "expiry - MAX", so that a slot leaves the window when its
// token expires.  Settling moves a provisional place's time to the
// token's expiry; releasing removes a settled place.  Everything runs
// under the stripe's lock, as the distinct zone's own decisions.
#include <algorithm>
#include <cstring>

#include "distinct.hpp"
#include "trl_active.h"
#include "zone.hpp"

namespace trl {
namespace {

// The time a slot is stored with for a place held until expires_ms, in
// the unit of MAX, rounded up (distinct_store rounds up again: never
// earlier).
uint64_t slot_time(uint64_t expires_ms, uint64_t max_ms) {
    return expires_ms > max_ms ? expires_ms - max_ms : 0;
}

}  // namespace

int Zone::active_settle(const trl_hash_t &key, const trl_limit_t &limit,
                        uint64_t ticket, uint64_t lifetime_ms, uint32_t id,
                        uint64_t now_ms, uint32_t &held) {
    uint32_t slots = r_->distinct_slots;
    held = 0;
    if (slots == 0) {
        return TRL_ERROR;
    }
    uint64_t max = limit.rate.window_ms;
    Stripe &s = stripe_of(key);
    Locked lock(*this, s);
    if (now_ms == TRL_CLOCK_NOW) {
        now_ms = trl_clock_ms();
    }

    uint32_t i = find(s, key);
    if (i == kNil) {
        return TRL_OK;                      // evicted
    }
    HeldSet set;
    distinct_load(distinct_block(i), slots, now_ms, max, set);
    TicketInfo t = distinct_ticket_info(ticket, now_ms);
    int k = set.find(t.fp);
    if (k < 0 || !set.v[k].sole || set.v[k].at_ms != t.at_ms) {
        held = set.n;
        return TRL_OK;                      // gone, or settled already
    }

    if (lifetime_ms == 0) {
        set.remove(static_cast<uint32_t>(k));   // expired on arrival
    } else {
        Held &h = set.v[k];
        h.at_ms = slot_time(now_ms + std::min(lifetime_ms, max), max);
        h.sole = false;
        if (id != 0 && !(id & TRL_ACTIVE_NONCE)) {
            h.fp = id;
        }
        if (h.at_ms + max <= now_ms) {          // cannot happen: lifetime > 0
            set.remove(static_cast<uint32_t>(k));
        }
    }
    distinct_store(set, slots, now_ms, max, distinct_block(i));
    held = set.n;

    Entry &e = entry(i);
    uint32_t n = std::min(limit.rate.limit, slots - 1);
    if ((e.flags & kAtLimit) && set.n < n) {
        lru_unlink(s, i);
        e.flags &= ~kAtLimit;
        lru_push(s, i);
    }
    return TRL_OK;
}

int Zone::active_release(const trl_hash_t &key, const trl_limit_t &limit,
                         uint32_t id, uint64_t now_ms, uint32_t &held) {
    uint32_t slots = r_->distinct_slots;
    held = 0;
    if (slots == 0) {
        return TRL_ERROR;
    }
    uint64_t max = limit.rate.window_ms;
    Stripe &s = stripe_of(key);
    Locked lock(*this, s);
    if (now_ms == TRL_CLOCK_NOW) {
        now_ms = trl_clock_ms();
    }

    uint32_t i = find(s, key);
    if (i == kNil) {
        return 0;                           // nothing held: never below 0
    }
    HeldSet set;
    distinct_load(distinct_block(i), slots, now_ms, max, set);

    // the settled place named by id, or the settled one expiring first;
    // provisional places belong to requests in flight
    int k = -1;
    for (uint32_t j = 0; j < set.n; j++) {
        const Held &h = set.v[j];
        if (h.sole) {
            continue;
        }
        if (id != 0 ? h.fp == id
                    : (k < 0 || h.at_ms < set.v[k].at_ms)) {
            k = static_cast<int>(j);
            if (id != 0) {
                break;
            }
        }
    }
    if (k < 0) {
        held = set.n;
        return 0;
    }
    set.remove(static_cast<uint32_t>(k));
    distinct_store(set, slots, now_ms, max, distinct_block(i));
    held = set.n;

    Entry &e = entry(i);
    uint32_t n = std::min(limit.rate.limit, slots - 1);
    if ((e.flags & kAtLimit) && set.n < n) {
        lru_unlink(s, i);
        e.flags &= ~kAtLimit;               // a penalty still keeps it last
        lru_push(s, i);
    }
    return 1;
}

size_t Zone::active_places(const trl_hash_t &key, const trl_limit_t &limit,
                           uint64_t now_ms, trl_active_place_t *out,
                           size_t max_out) {
    uint32_t slots = r_->distinct_slots;
    if (slots == 0) {
        return 0;
    }
    uint64_t max = limit.rate.window_ms;
    Stripe &s = stripe_of(key);
    Locked lock(*this, s);
    if (now_ms == TRL_CLOCK_NOW) {
        now_ms = trl_clock_ms();
    }

    uint32_t i = find(s, key);
    if (i == kNil) {
        return 0;
    }
    HeldSet set;
    distinct_load(distinct_block(i), slots, now_ms, max, set);
    std::sort(set.v, set.v + set.n, [](const Held &a, const Held &b) {
        return a.at_ms < b.at_ms;
    });
    size_t n = std::min<size_t>(set.n, max_out);
    for (size_t j = 0; j < n; j++) {
        out[j].expires_ms = set.v[j].at_ms + max;
        out[j].id = (set.v[j].fp & TRL_ACTIVE_NONCE) ? 0 : set.v[j].fp;
        out[j].pending = set.v[j].sole ? 1 : 0;
    }
    return n;
}

}  // namespace trl
