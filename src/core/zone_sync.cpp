// zone_sync.cpp - the cluster side of a zone: what a node knows of the
// cluster-wide count of each key (async zones) and of keys Redis rejected
// (strict zones), kept beside the entries (see zone.hpp: SyncState).
#include <algorithm>
#include <cstring>

#include "siphash.hpp"
#include "zone.hpp"

namespace trl {

namespace {

// A cluster total read within this many refresh intervals is current.
constexpr uint64_t kFreshReads = 4;

}  // namespace

// Places of the node's lease still to use (0 once it ran out).
uint32_t Zone::lease_left(const SyncState *ss, uint64_t now_ms) const {
    uint32_t i = static_cast<uint32_t>(ss - sync_of(0));
    return now_ms < ss->lease_until_ms ? entry(i).sync_lease : 0;
}

SyncState *Zone::sync_of(uint32_t i) const {
    if (r_->sync_off == 0) {
        return nullptr;
    }
    char *base = reinterpret_cast<char *>(r_) + r_->sync_off;
    return reinterpret_cast<SyncState *>(base) + i;
}

// The count a sync zone decides on: the cluster total last read, while it
// can still hold admissions, plus the node's own admissions not in it yet.
// A total read within the last few intervals is the truth (a DEL in Redis
// resets the key on every node); an older one, or none, is never taken for
// less than the node's own count.  Once the read said the total would have
// dropped below N, it is taken as N - 1 until the next read.
Estimate Zone::estimate(const SyncState *ss, uint32_t local,
                        const trl_limit_t &limit, uint64_t now_ms) const {
    Estimate est{local, 0, 0, false};
    if (ss == nullptr) {
        return est;
    }

    uint32_t remote = 0;
    if (ss->seen_ms != 0 && now_ms < ss->seen_ms + ss->reset_in_ms) {
        // places reserved for this node and not used yet are no one's
        uint32_t lease = lease_left(ss, now_ms);
        remote = ss->remote - std::min<uint32_t>(ss->remote, lease);
        est.free_at = ss->seen_ms + ss->free_in_ms;
        est.reset_at = ss->seen_ms + ss->reset_in_ms;
        if (now_ms >= est.free_at && remote >= limit.rate.limit) {
            remote = limit.rate.limit - 1;
        }
    }

    uint32_t cluster = remote + std::min<uint32_t>(ss->pending, local);
    bool fresh = ss->seen_ms != 0
                 && now_ms < ss->seen_ms + kFreshReads * limit.refresh_ms;
    est.count = fresh ? cluster : std::max(local, cluster);
    est.read_due = ss->seen_ms == 0 || now_ms >= ss->seen_ms + limit.refresh_ms;
    return est;
}

int Zone::sync_apply(const trl_hash_t &key, const trl_limit_t &limit,
                     const trl_sync_read_t &read, uint64_t now_ms) {
    Stripe &s = stripe_of(key);
    Locked lock(*this, s);
    if (now_ms == TRL_CLOCK_NOW) {
        now_ms = trl_clock_ms();
    }

    uint32_t i = find(s, key);
    SyncState *ss = i == kNil ? nullptr : sync_of(i);
    if (ss == nullptr) {
        return TRL_OK;                      // evicted meanwhile
    }

    // Published admissions are in this read and any later one; a read that
    // arrives after a later one (another worker's) only settles those.
    ss->pending -= std::min<uint32_t>(ss->pending, read.published);

    if (read.penalty_in_ms > 0) {
        adopt_penalty(entry(i), now_ms + read.penalty_in_ms, read.violations,
                      now_ms);
    }

    uint32_t stamp = static_cast<uint32_t>(read.stamp_ms);
    if (ss->seen_ms == 0 || static_cast<int32_t>(stamp - ss->stamp) >= 0) {
        ss->stamp = stamp;
        ss->seen_ms = now_ms;
        ss->remote = static_cast<uint16_t>(std::min<uint32_t>(read.total,
                                                              0xffff));
        ss->free_in_ms = read.free_in_ms;
        ss->reset_in_ms = read.reset_in_ms;
        sync_settle(entry(i), ss, limit, read.total, now_ms);
    }
    return TRL_OK;
}

int Zone::sync_unpend(const trl_hash_t &key, uint32_t n) {
    Stripe &s = stripe_of(key);
    Locked lock(*this, s);

    uint32_t i = find(s, key);
    SyncState *ss = i == kNil ? nullptr : sync_of(i);
    if (ss != nullptr) {
        ss->pending -= std::min<uint32_t>(ss->pending, n);
    }
    return TRL_OK;
}

// A signal zone's key, checked on a node that never counted it, is held so
// that the reads of its cluster total land (sync_apply drops reads of keys
// the zone does not hold).
int Zone::sync_watch(const trl_hash_t &key, const trl_limit_t &limit,
                     uint64_t now_ms) {
    Stripe &s = stripe_of(key);
    Locked lock(*this, s);
    trl_result_t res;
    now_ms = begin_result(lock, limit.rate.limit, now_ms, res);

    if (find(s, key) != kNil) {
        return 0;
    }
    take(s, key, limit, now_ms, res.evicted);
    return 1;
}

int Zone::strict_cached(const trl_hash_t &key, const trl_limit_t &limit,
                        uint64_t now_ms, trl_result_t &res) {
    Stripe &s = stripe_of(key);

    Locked lock(*this, s);
    now_ms = begin_result(lock, limit.rate.limit, now_ms, res);

    uint32_t i = find(s, key);
    SyncState *ss = i == kNil ? nullptr : sync_of(i);
    if (ss == nullptr) {
        return 0;
    }

    Entry &e = entry(i);
    if (serving_penalty(e, now_ms, res)) {
        strict_wait(ss, now_ms, res);
        lru_unlink(s, i);
        note_reject(s, e, limit, res);
        s.stat[kPenalized]++;
        e.flags |= kAtLimit;
        lru_push(s, i);
        return 1;
    }
    if (ss->block_until_ms <= now_ms) {
        return 0;
    }

    lru_unlink(s, i);
    res.retry_ms = ss->block_until_ms - now_ms;
    strict_wait(ss, now_ms, res);
    note_reject(s, e, limit, res);
    e.flags |= kAtLimit;
    lru_push(s, i);
    sync_add(TRL_SYNC_CACHED, 1);
    return 1;
}

// A block is trusted here for a second at most, but the wait a client is
// told is what Redis last said: until a place is free (and the block, if
// any, is over).
void Zone::strict_wait(const SyncState *ss, uint64_t now_ms,
                       trl_result_t &res) const {
    uint64_t free_at = ss->seen_ms + ss->free_in_ms;
    if (free_at > now_ms) {
        res.retry_ms = std::max(res.retry_ms, free_at - now_ms);
    }
    res.reset_ms = std::max(res.reset_ms,
                            std::max(ss->block_until_ms,
                                     ss->seen_ms + ss->reset_in_ms));
}

int Zone::strict_apply(const trl_hash_t &key, const trl_limit_t &limit,
                       const trl_strict_reply_t &reply, uint64_t now_ms,
                       trl_result_t &res) {
    uint32_t n = limit.rate.limit;
    Stripe &s = stripe_of(key);

    Locked lock(*this, s);
    now_ms = begin_result(lock, n, now_ms, res);

    uint32_t i = find_or_take(s, key, limit, now_ms, res);
    Entry &e = entry(i);
    lru_unlink(s, i);

    SyncState *ss = sync_of(i);
    if (ss != nullptr) {
        ss->seen_ms = now_ms;
        ss->remote = static_cast<uint16_t>(std::min<uint32_t>(reply.total,
                                                              0xffff));
        ss->free_in_ms = reply.free_in_ms;
        ss->reset_in_ms = reply.reset_in_ms;
        // refresh_ms bounds how long a rejection is trusted: places held
        // for count=failed/succeeded may be given back before free_in.
        uint64_t hold = reply.free_in_ms;
        if (limit.refresh_ms != 0 && limit.refresh_ms < hold) {
            hold = limit.refresh_ms;
        }
        ss->block_until_ms = reply.admitted ? 0 : now_ms + hold;
    }

    res.reset_ms = now_ms + reply.reset_in_ms;

    if (reply.admitted) {
        // Recorded here too: the node's own count is what it falls back
        // on when Redis cannot be reached.
        Span span;
        load(e, limit, now_ms, span);
        res.ticket = admit(span, n, limit.rate.window_ms, now_ms);
        store(e, span, now_ms);
        res.remaining = reply.total >= n ? 0 : n - reply.total;
        note_admit(s, e, limit, reply.total, res);
    } else {
        // Redis keeps the penalties of strict zones: the zone mirrors them
        // (free_in is the later of the block's end and a free place)
        res.retry_ms = std::max<uint64_t>(reply.free_in_ms, 1);
        note_reject(s, e, limit, res);
        if (reply.penalty != 0) {
            adopt_penalty(e, now_ms + reply.block_in_ms, reply.violations,
                          now_ms);
            res.violations = reply.violations;
            res.penalty_ms = reply.block_in_ms;
            if (reply.penalty == TRL_STRICT_PENALTY_STARTED) {
                res.penalty_start = 1;
                s.stat[kPenalties]++;
            } else {
                res.penalized = 1;
                s.stat[kPenalized]++;
            }
        }
    }

    e.flags = res.remaining == 0 ? (e.flags | kAtLimit)
                                 : (e.flags & ~kAtLimit);
    lru_push(s, i);
    return TRL_OK;
}

void Zone::sync_add(int stat, uint64_t n) {
    r_->sync_stats[stat].fetch_add(n, std::memory_order_relaxed);
}

void Zone::sync_put(int stat, uint64_t value) {
    r_->sync_stats[stat].store(value, std::memory_order_relaxed);
}

void Zone::sync_stats(uint64_t out[TRL_SYNC_STATS]) const {
    for (int i = 0; i < TRL_SYNC_STATS; i++) {
        out[i] = r_->sync_stats[i].load(std::memory_order_relaxed);
    }
}

}  // namespace trl

namespace trl {

// An async zone with Redis at hand (TRL_LIMIT_LEASE).  A node never admits
// on its own count: it admits from the places Redis reserved for it (its
// lease, TRL_LEASE_MS at most), rejects while a read younger than
// TRL_LEASE_MS says the key is full, and else asks Redis (returns false:
// nothing is recorded).  Penalties are checked by the caller.
bool Zone::lease_decide(Stripe &s, uint32_t i, const trl_limit_t &limit,
                        uint64_t now_ms, trl_result_t &res) {
    uint32_t n = limit.rate.limit;
    uint64_t w = limit.rate.window_ms;
    Entry &e = entry(i);
    SyncState *ss = sync_of(i);

    uint32_t remote = 0;
    uint64_t free_at = 0, reset_at = 0;
    if (ss->seen_ms != 0 && now_ms < ss->seen_ms + ss->reset_in_ms) {
        remote = ss->remote;
        free_at = ss->seen_ms + ss->free_in_ms;
        reset_at = ss->seen_ms + ss->reset_in_ms;
    }

    uint32_t lease = lease_left(ss, now_ms);
    if (lease > 0) {
        Span span;
        load(e, limit, now_ms, span);
        if (span.total() >= n) {
            span.size = 0;                  // stale: Redis holds the count
        }
        e.sync_lease = lease - 1;
        res.ticket = admit(span, n, w, now_ms);
        res.leased = 1;
        uint32_t used = remote - std::min(remote, lease - 1) + ss->pending;
        res.remaining = used >= n ? 0 : n - used;
        res.reset_ms = std::max(span.newest_ms() + w, reset_at);
        note_admit(s, e, limit, used, res);
        store(e, span, now_ms);
        e.flags = res.remaining == 0 ? (e.flags | kAtLimit)
                                     : (e.flags & ~kAtLimit);
        return true;
    }

    bool recent = ss->seen_ms != 0 && now_ms < ss->seen_ms + TRL_LEASE_MS;
    if (recent && remote + ss->pending >= n && now_ms < free_at) {
        res.retry_ms = free_at - now_ms;
        res.reset_ms = std::max(reset_at, free_at);
        note_reject(s, e, limit, res);
        if (limit.penalty.base_ms != 0 && !(limit.flags & TRL_LIMIT_DRY_RUN)) {
            start_penalty(s, e, limit, now_ms, res);
        }
        e.flags |= kAtLimit;
        return true;
    }
    return false;
}

// What Redis answered (a read or an ask) tells of the node's own count: a
// total below what the node counted and published means the key was reset
// in Redis (DEL): the node's window goes too, so that it never holds the
// node's old admissions against the fresh total.
void Zone::sync_settle(Entry &e, SyncState *ss, const trl_limit_t &limit,
                       uint32_t total, uint64_t now_ms) {
    Span span;
    load(e, limit, now_ms, span);
    uint32_t local = span.total();
    if (local > ss->pending && total < local - ss->pending) {
        clear(e.win);
    }
}

int Zone::async_apply(const trl_hash_t &key, const trl_limit_t &limit,
                      const trl_ask_reply_t &reply, uint64_t now_ms,
                      trl_result_t &res) {
    uint32_t n = limit.rate.limit;
    uint64_t w = limit.rate.window_ms;
    Stripe &s = stripe_of(key);

    Locked lock(*this, s);
    now_ms = begin_result(lock, n, now_ms, res);

    uint32_t i = find_or_take(s, key, limit, now_ms, res);
    Entry &e = entry(i);
    SyncState *ss = sync_of(i);
    if (ss == nullptr) {
        return TRL_ERROR;
    }
    lru_unlink(s, i);

    ss->stamp = static_cast<uint32_t>(reply.stamp_ms);
    ss->seen_ms = now_ms;
    ss->remote = static_cast<uint16_t>(std::min<uint32_t>(reply.total,
                                                          0xffff));
    ss->free_in_ms = reply.free_in_ms;
    ss->reset_in_ms = reply.reset_in_ms;
    if (reply.lease > 0) {
        uint32_t left = lease_left(ss, now_ms);
        e.sync_lease = std::min<uint32_t>(left + reply.lease, 0xffff);
        ss->lease_until_ms = now_ms + reply.lease_ms;
    }
    if (reply.penalty_in_ms > 0) {
        adopt_penalty(e, now_ms + reply.penalty_in_ms, reply.violations,
                      now_ms);
    }

    uint32_t before = reply.total;
    if (reply.admitted) {
        before -= std::min(before, 1 + reply.lease);
    }
    sync_settle(e, ss, limit, before, now_ms);

    if (reply.admitted) {
        Span span;
        load(e, limit, now_ms, span);
        if (span.total() >= n) {
            span.size = 0;                  // stale: Redis holds the count
        }
        res.ticket = admit(span, n, w, now_ms);
        uint32_t used = reply.total - std::min(reply.total,
                                               lease_left(ss, now_ms))
                        + ss->pending;
        res.remaining = used >= n ? 0 : n - used;
        res.reset_ms = std::max(span.newest_ms() + w,
                                now_ms + reply.reset_in_ms);
        note_admit(s, e, limit, used, res);
        store(e, span, now_ms);
    } else if (serving_penalty(e, now_ms, res)) {
        res.retry_ms = std::max<uint64_t>(res.retry_ms, reply.free_in_ms);
        res.reset_ms = std::max(res.reset_ms, now_ms + reply.reset_in_ms);
        note_reject(s, e, limit, res);
        s.stat[kPenalized]++;
    } else {
        res.retry_ms = std::max<uint64_t>(reply.free_in_ms, 1);
        res.reset_ms = now_ms + std::max(reply.reset_in_ms,
                                         reply.free_in_ms);
        note_reject(s, e, limit, res);
        if (limit.penalty.base_ms != 0 && !(limit.flags & TRL_LIMIT_DRY_RUN)) {
            start_penalty(s, e, limit, now_ms, res);
        }
    }

    e.flags = res.remaining == 0 ? (e.flags | kAtLimit)
                                 : (e.flags & ~kAtLimit);
    lru_push(s, i);
    return TRL_OK;
}

uint64_t Zone::node_id() const {
    static const char what[] = "trl node";
    return siphash128(r_->seed, what, sizeof(what) - 1).lo;
}

}  // namespace trl
