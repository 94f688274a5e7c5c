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

uint32_t Zone::active_load(Stripe &s, const trl_hash_t &key,
                           const trl_limit_t &limit, uint64_t now_ms,
                           HeldSet &set) const {
    uint32_t i = find(s, key);
    set.n = 0;
    if (i != kNil) {
        distinct_load(distinct_block(i), r_->distinct_slots, now_ms,
                      limit.rate.window_ms, set);
    }
    return i;
}

int Zone::active_settle(const trl_hash_t &key, const trl_limit_t &limit,
                        uint64_t ticket, uint64_t lifetime_ms, uint32_t id,
                        uint64_t now_ms, uint32_t &held) {
    if (r_->distinct_slots == 0) {
        return TRL_ERROR;
    }
    uint64_t max = limit.rate.window_ms;
    Stripe &s = stripe_of(key);
    Locked lock(*this, s);
    now_ms = now_ms == TRL_CLOCK_NOW ? trl_clock_ms() : now_ms;

    HeldSet set;
    uint32_t i = active_load(s, key, limit, now_ms, set);
    TicketInfo t = distinct_ticket_info(ticket, now_ms);
    int k = set.find(t.fp);
    held = set.n;
    if (i == kNil || k < 0 || !set.v[k].sole || set.v[k].at_ms != t.at_ms) {
        return TRL_OK;                      // evicted, gone, or settled
    }

    if (lifetime_ms == 0) {
        set.remove(static_cast<uint32_t>(k));   // expired on arrival
    } else {
        Held &h = set.v[k];
        // expiry - MAX: now_ms is on the zone's clock, MAX ahead, so the
        // difference is never below 0 (distinct_store rounds it up)
        h.at_ms = now_ms + std::min(lifetime_ms, max) - max;
        h.sole = false;
        if (id != 0 && !(id & TRL_ACTIVE_NONCE)) {
            h.fp = id;
        }
    }
    distinct_put(s, i, limit, set, now_ms);
    held = set.n;
    return TRL_OK;
}

int Zone::active_release(const trl_hash_t &key, const trl_limit_t &limit,
                         uint32_t id, uint64_t now_ms, uint32_t &held) {
    if (r_->distinct_slots == 0) {
        return TRL_ERROR;
    }
    Stripe &s = stripe_of(key);
    Locked lock(*this, s);
    now_ms = now_ms == TRL_CLOCK_NOW ? trl_clock_ms() : now_ms;

    HeldSet set;
    uint32_t i = active_load(s, key, limit, now_ms, set);

    // the settled place named by id, or the settled one expiring first;
    // provisional places belong to requests in flight
    int k = -1;
    for (uint32_t j = 0; j < set.n; j++) {
        const Held &h = set.v[j];
        if (h.sole) {
            continue;
        }
        if (id != 0 ? h.fp == id : (k < 0 || h.at_ms < set.v[k].at_ms)) {
            k = static_cast<int>(j);
            if (id != 0) {
                break;
            }
        }
    }
    held = set.n;
    if (k < 0) {
        return 0;                           // nothing held: never below 0
    }
    set.remove(static_cast<uint32_t>(k));
    distinct_put(s, i, limit, set, now_ms);
    held = set.n;
    return 1;
}

size_t Zone::active_places(const trl_hash_t &key, const trl_limit_t &limit,
                           uint64_t now_ms, trl_active_place_t *out,
                           size_t max_out) {
    if (r_->distinct_slots == 0) {
        return 0;
    }
    Stripe &s = stripe_of(key);
    Locked lock(*this, s);
    now_ms = now_ms == TRL_CLOCK_NOW ? trl_clock_ms() : now_ms;

    HeldSet set;
    active_load(s, key, limit, now_ms, set);
    std::sort(set.v, set.v + set.n, [](const Held &a, const Held &b) {
        return a.at_ms < b.at_ms;
    });
    size_t n = std::min<size_t>(set.n, max_out);
    for (size_t j = 0; j < n; j++) {
        out[j].expires_ms = set.v[j].at_ms + limit.rate.window_ms;
        out[j].id = (set.v[j].fp & TRL_ACTIVE_NONCE) ? 0 : set.v[j].fp;
        out[j].pending = set.v[j].sole ? 1 : 0;
    }
    return n;
}

}  // namespace trl
