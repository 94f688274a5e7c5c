// zone.cpp - striped hash table of keys with two-list LRU eviction.
#include "zone.hpp"

#include <algorithm>
#include <cstring>
#include <new>
#include <sys/random.h>
#include <time.h>

#include "distinct.hpp"
#include "siphash.hpp"
#include "spinlock.hpp"

namespace trl {
namespace {

constexpr uint64_t kMagic = UINT64_C(0x544b524c5a4f4e45);   // "TKRLZONE"
constexpr uint32_t kLayoutVersion = 3;
constexpr uint32_t kMaxStripes = 64;
constexpr uint32_t kMinPerStripe = 32;
constexpr uint32_t kScanLimit = 1024;       // entries one eviction checks

inline size_t align64(size_t n) { return (n + 63) & ~static_cast<size_t>(63); }

constexpr size_t kPerKey = sizeof(Entry) + sizeof(uint32_t);

void random_seed(uint8_t seed[16]) {
    size_t got = 0;
    while (got < 16) {
        ssize_t n = getrandom(seed + got, 16 - got, 0);
        if (n <= 0) {
            break;
        }
        got += static_cast<size_t>(n);
    }
    if (got < 16) {
        // No entropy source: still distinct per zone and per boot.
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t mix[2] = {static_cast<uint64_t>(ts.tv_nsec) ^ current_pid(),
                           static_cast<uint64_t>(ts.tv_sec)};
        std::memcpy(seed, mix, 16);
    }
}

inline uint64_t load_relaxed(const uint64_t &v) {
    return __atomic_load_n(&v, __ATOMIC_RELAXED);
}

}  // namespace


size_t Zone::min_size() {
    return align64(sizeof(Root)) + sizeof(Stripe) + 192
           + align64(offenders_size(16)) + 16 * (kPerKey + sizeof(SyncState));
}

Root *Zone::create(void *mem, size_t size, unsigned flags,
                   std::string &why, uint32_t distinct_slots) {
    if (mem == nullptr || size < min_size()) {
        why = "zone memory is too small: at least " +
              std::to_string(min_size()) + " bytes needed";
        return nullptr;
    }

    bool sync = flags & TRL_ZONE_SYNC;
    // distinct zones (zone_distinct.cpp): a slot block per key
    size_t distinct_bytes = distinct_block_bytes(distinct_slots);
    size_t per_key = kPerKey + (sync ? sizeof(SyncState) : 0)
                     + distinct_bytes;
    size_t head = align64(sizeof(Root));
    uint32_t nstripes = 1;
    while (nstripes < kMaxStripes) {
        size_t stripes_bytes = nstripes * 2 * sizeof(Stripe) + 128;
        size_t room = size - head;
        if (room < stripes_bytes
            || (room - stripes_bytes) / per_key / (nstripes * 2)
                   < kMinPerStripe) {
            break;
        }
        nstripes *= 2;
    }

    // the top offenders table: 64 keys, 16 in zones too small for 2048
    uint32_t offenders = (size - head) / per_key >= 2048 ? 64 : 16;
    size_t offenders_bytes = align64(offenders_size(offenders));

    size_t stripes_bytes = nstripes * sizeof(Stripe);
    size_t room = size - head - stripes_bytes - offenders_bytes - 192
                  - (distinct_slots != 0 ? 64 : 0);   // one more alignment
    uint32_t per_stripe = static_cast<uint32_t>(room / (nstripes * per_key));
    size_t capacity = static_cast<size_t>(nstripes) * per_stripe;

    uint64_t heads_off = head + stripes_bytes;
    uint64_t entries_off =
        align64(heads_off + sizeof(uint32_t) * capacity);
    uint64_t sync_off = align64(entries_off + sizeof(Entry) * capacity);
    uint64_t distinct_off =
        align64(sync_off + (sync ? sizeof(SyncState) * capacity : 0));
    uint64_t offenders_off = align64(distinct_off + distinct_bytes * capacity);
    if (distinct_slots != 0 && capacity < kMinPerStripe) {
        why = "zone memory is too small for " +
              std::to_string(distinct_slots) + " distinct slots per key: "
              "it would hold " + std::to_string(capacity) + " keys";
        return nullptr;
    }

    Root *r = static_cast<Root *>(mem);
    std::memset(mem, 0, head);
    r->version = kLayoutVersion;
    r->entry_size = sizeof(Entry);
    r->size = size;
    r->nstripes = nstripes;
    r->per_stripe = per_stripe;
    r->stripes_off = head;
    r->heads_off = heads_off;
    r->entries_off = entries_off;
    r->flags = sync ? TRL_ZONE_SYNC : 0;
    r->sync_off = sync ? sync_off : 0;
    r->offenders_off = offenders_off;
    r->distinct_slots = distinct_slots;
    r->distinct_off = distinct_slots != 0 ? distinct_off : 0;
    offenders_init(*reinterpret_cast<OffenderTable *>(
                       static_cast<char *>(mem) + offenders_off),
                   offenders);
    random_seed(r->seed);

    Zone zone(r);
    std::memset(static_cast<char *>(mem) + entries_off, 0,
                sizeof(Entry) * capacity);
    if (sync) {
        std::memset(static_cast<char *>(mem) + sync_off, 0,
                    sizeof(SyncState) * capacity);
    }
    for (uint32_t i = 0; i < capacity && distinct_slots != 0; i++) {
        distinct_clear(static_cast<char *>(mem) + distinct_off
                       + distinct_bytes * i, distinct_slots);
    }
    for (uint32_t i = 0; i < nstripes; i++) {
        Stripe *s = new (&zone.stripe(i)) Stripe();
        s->owner.store(0);
        zone.init_stripe(*s);
    }

    // Written last: a half-made zone is never attached.
    __atomic_store_n(&r->magic, kMagic, __ATOMIC_RELEASE);
    return r;
}

Root *Zone::attach(void *mem, size_t size, std::string &why) {
    Root *r = static_cast<Root *>(mem);
    if (mem == nullptr || (size != 0 && size < min_size())
        || __atomic_load_n(&r->magic, __ATOMIC_ACQUIRE) != kMagic) {
        why = "the shared memory holds no token_ratelimit zone";
        return nullptr;
    }
    if (r->version != kLayoutVersion || r->entry_size != sizeof(Entry)) {
        why = "the zone was laid out by another version of the module "
              "(layout " + std::to_string(r->version) + ", this is " +
              std::to_string(kLayoutVersion) + ")";
        return nullptr;
    }
    if (size != 0 && r->size != size) {
        why = "the zone's size changed";
        return nullptr;
    }
    return r;
}


Stripe &Zone::stripe(uint32_t i) const {
    char *base = reinterpret_cast<char *>(r_) + r_->stripes_off;
    return reinterpret_cast<Stripe *>(base)[i];
}

Stripe &Zone::stripe_of(const trl_hash_t &key) const {
    return stripe(static_cast<uint32_t>(key.lo) & (r_->nstripes - 1));
}

uint32_t Zone::stripe_index(const Stripe &s) const {
    return static_cast<uint32_t>(&s - &stripe(0));
}

uint32_t *Zone::heads(const Stripe &s) const {
    char *base = reinterpret_cast<char *>(r_) + r_->heads_off;
    return reinterpret_cast<uint32_t *>(base) +
           static_cast<size_t>(stripe_index(s)) * r_->per_stripe;
}

Entry &Zone::entry(uint32_t i) const {
    char *base = reinterpret_cast<char *>(r_) + r_->entries_off;
    return reinterpret_cast<Entry *>(base)[i];
}

uint32_t Zone::first_entry(const Stripe &s) const {
    return stripe_index(s) * r_->per_stripe;
}

uint32_t Zone::bucket(const trl_hash_t &key) const {
    return static_cast<uint32_t>(((key.hi >> 32) * r_->per_stripe) >> 32);
}

trl_hash_t Zone::hash(const void *key, size_t len) const {
    return siphash128(r_->seed, key, len);
}


uint32_t Zone::find(Stripe &s, const trl_hash_t &key) const {
    uint32_t i = heads(s)[bucket(key)];
    while (i != kNil) {
        const Entry &e = entry(i);
        if (e.h_lo == key.lo && e.h_hi == key.hi) {
            return i;
        }
        i = e.chain_next;
    }
    return kNil;
}

void Zone::chain_unlink(Stripe &s, uint32_t i) {
    Entry &e = entry(i);
    uint32_t *link = &heads(s)[bucket({e.h_lo, e.h_hi})];
    while (*link != kNil) {
        if (*link == i) {
            *link = e.chain_next;
            return;
        }
        link = &entry(*link).chain_next;
    }
}

namespace {

LruList list_of(const Entry &e) {
    if (!(e.flags & kAtLimit)) {
        return kListOpen;
    }
    return (e.flags & kLogged) ? kListRejected : kListReached;
}

}  // namespace

void Zone::lru_unlink(Stripe &s, uint32_t i) {
    Entry &e = entry(i);
    LruList list = list_of(e);
    if (e.lru_prev != kNil) {
        entry(e.lru_prev).lru_next = e.lru_next;
    } else {
        s.lru_head[list] = e.lru_next;
    }
    if (e.lru_next != kNil) {
        entry(e.lru_next).lru_prev = e.lru_prev;
    } else {
        s.lru_tail[list] = e.lru_prev;
    }
    e.lru_prev = e.lru_next = kNil;
}

// Puts an unlinked entry at the head of the list its flags name.
void Zone::lru_push(Stripe &s, uint32_t i) {
    Entry &e = entry(i);
    LruList list = list_of(e);
    e.lru_prev = kNil;
    e.lru_next = s.lru_head[list];
    if (e.lru_next != kNil) {
        entry(e.lru_next).lru_prev = i;
    } else {
        s.lru_tail[list] = i;
    }
    s.lru_head[list] = i;
}

void Zone::init_stripe(Stripe &s) {
    rebuild(s);
}

// Relinks a stripe from its entries alone: what an entry says of itself
// (in use, hash, list) is all that survives a writer dying mid-update.
void Zone::rebuild(Stripe &s) {
    uint32_t *h = heads(s);
    for (uint32_t b = 0; b < r_->per_stripe; b++) {
        h[b] = kNil;
    }
    s.free_head = kNil;
    for (int list = 0; list < kLists; list++) {
        s.lru_head[list] = s.lru_tail[list] = kNil;
    }
    s.used = 0;

    uint32_t first = first_entry(s);
    for (uint32_t j = r_->per_stripe; j-- > 0;) {
        uint32_t i = first + j;
        Entry &e = entry(i);
        trl_hash_t key{e.h_lo, e.h_hi};
        if ((e.flags & kInUse) && &stripe_of(key) == &s
            && find(s, key) == kNil) {
            uint32_t *head = &h[bucket(key)];
            e.chain_next = *head;
            *head = i;
            s.used++;
            lru_push(s, i);
        } else {
            e.flags = 0;
            e.chain_next = s.free_head;
            s.free_head = i;
        }
    }
}

// Whether an entry blocks its key now: its own window, a penalty, or
// (sync zones) what it knows of the cluster.
bool Zone::at_limit(const Entry &e, const trl_limit_t &limit,
                    uint64_t now_ms) const {
    trl_result_t ignored;
    std::memset(&ignored, 0, sizeof(ignored));
    if (serving_penalty(e, now_ms, ignored)) {
        return true;
    }
    Span span;
    load(e, limit, now_ms, span);
    uint32_t local = span.total();

    uint32_t i = static_cast<uint32_t>(&e - &entry(0));
    if (r_->distinct_slots != 0) {
        return distinct_full(i, limit, now_ms);     // zone_distinct.cpp
    }
    const SyncState *ss = sync_of(i);
    bool strict = !(limit.flags & TRL_LIMIT_SYNC);
    if (ss != nullptr && ((strict && ss->block_until_ms > now_ms)
                          || estimate(ss, local, limit, now_ms).count
                                 >= limit.rate.limit)) {
        return true;
    }
    return local >= limit.rate.limit;
}

// The entry to reuse when a stripe is full: an entry of a blocking list
// whose window has emptied is as good as an open one; an open entry that
// the current rate puts at its limit is moved where it belongs first.
// Only when no key is open are the blocking lists searched from their
// tails for one that no longer blocks, still-blocked entries going to the
// front as they are passed (so that repeated searches cover the list; a
// search looks at kScanLimit entries at most).
uint32_t Zone::victim(Stripe &s, const trl_limit_t &limit, uint64_t now_ms) {
    for (int list = kListReached; list < kLists; list++) {
        uint32_t i = s.lru_tail[list];
        if (i != kNil && !at_limit(entry(i), limit, now_ms)) {
            return i;
        }
    }

    for (;;) {
        uint32_t i = s.lru_tail[kListOpen];
        if (i == kNil) {
            break;
        }
        Entry &e = entry(i);
        if (!at_limit(e, limit, now_ms)) {
            return i;
        }
        lru_unlink(s, i);
        e.flags |= kAtLimit;
        lru_push(s, i);
    }

    for (int list = kListReached; list < kLists; list++) {
        uint32_t first = kNil;
        for (uint32_t n = 0; n < kScanLimit; n++) {
            uint32_t i = s.lru_tail[list];
            if (i == kNil || i == first) {
                break;                      // a full pass: order restored
            }
            if (!at_limit(entry(i), limit, now_ms)) {
                return i;
            }
            if (first == kNil) {
                first = i;
            }
            lru_unlink(s, i);
            lru_push(s, i);
        }
    }

    uint32_t i = s.lru_tail[kListReached];
    return i != kNil ? i : s.lru_tail[kListRejected];
}

// An entry for a new key: a free one, else a victim's.
uint32_t Zone::take(Stripe &s, const trl_hash_t &key, const trl_limit_t &limit,
                    uint64_t now_ms, uint32_t &evicted) {
    uint32_t i = s.free_head;
    if (i != kNil) {
        s.free_head = entry(i).chain_next;
        s.used++;
    } else {
        i = victim(s, limit, now_ms);
        Span span;
        load(entry(i), limit, now_ms, span);
        if (span.size > 0 || distinct_live(i, limit, now_ms)) {
            evicted++;
            s.stat[kEvicted]++;
        }
        chain_unlink(s, i);
        lru_unlink(s, i);
    }

    Entry &e = entry(i);
    e.h_lo = key.lo;
    e.h_hi = key.hi;
    e.flags = kInUse;
    e.touched_s = static_cast<uint32_t>(now_ms / 1000);
    clear(e.win);
    e.penalty_until = 0;
    e.violations = 0;
    e.suppressed = 0;
    e.sync_lease = 0;
    if (SyncState *ss = sync_of(i)) {
        std::memset(ss, 0, sizeof(*ss));
    }
    if (void *block = distinct_block(i)) {
        distinct_clear(block, r_->distinct_slots);
    }

    uint32_t *head = &heads(s)[bucket(key)];
    e.chain_next = *head;
    *head = i;
    lru_push(s, i);
    return i;
}


void Zone::load(const Entry &e, const trl_limit_t &limit, uint64_t now_ms,
                Span &span) const {
    unsigned stored = e.flags & kShiftMask;
    unsigned shift = unit_shift(limit.rate.window_ms);
    uint64_t touched_ms = static_cast<uint64_t>(e.touched_s) * 1000;
    if (now_ms > touched_ms + horizon_ms(stored)) {
        span.size = 0;                      // older than any window
        span.shift = shift;
        return;
    }
    unpack(e.win, stored, now_ms, limit.rate.window_ms, shift, span);
}

void Zone::store(Entry &e, const Span &span, uint64_t now_ms) {
    pack(span, e.win);
    e.flags = static_cast<uint8_t>((e.flags & ~kShiftMask) | span.shift);
    e.touched_s = static_cast<uint32_t>(now_ms / 1000);
}


int Zone::acquire(const trl_hash_t &key, const trl_limit_t &limit,
                  uint64_t now_ms, trl_result_t &res) {
    uint32_t n = limit.rate.limit;
    uint64_t w = limit.rate.window_ms;
    Stripe &s = stripe_of(key);

    Locked lock(*this, s);
    now_ms = begin_result(lock, n, now_ms, res);

    uint32_t i = find_or_take(s, key, limit, now_ms, res);
    Entry &e = entry(i);
    lru_unlink(s, i);

    SyncState *ss = (limit.flags & TRL_LIMIT_SYNC) ? sync_of(i) : nullptr;

    if (serving_penalty(e, now_ms, res)) {
        window_wait(e, ss, limit, now_ms, res);
        note_reject(s, e, limit, res);      // not counted, not extended
        s.stat[kPenalized]++;
        e.flags |= kAtLimit;
        lru_push(s, i);
        return TRL_OK;
    }

    if (ss != nullptr && (limit.flags & TRL_LIMIT_LEASE)) {
        res.ask = !lease_decide(s, i, limit, now_ms, res);
        lru_push(s, i);
        return TRL_OK;
    }

    if (ss == nullptr && admit_fast(e, limit, now_ms, res)) {
        note_admit(s, e, limit, n - res.remaining, res);
        lru_push(s, i);
        return TRL_OK;
    }

    Span span;
    load(e, limit, now_ms, span);
    uint32_t local = span.total();
    Estimate est = estimate(ss, local, limit, now_ms);
    res.sync_read = est.read_due;

    if (est.count >= n && !(limit.flags & TRL_LIMIT_FORCE)) {
        // both the own window and the cluster part may block: the later
        uint64_t free_at = std::max(local >= n ? retry_at(span, n, w) : 0,
                                    est.free_at);
        res.retry_ms = free_at > now_ms ? free_at - now_ms : 1;
        res.reset_ms = std::max(span.size ? span.newest_ms() + w : now_ms,
                                est.reset_at);
        note_reject(s, e, limit, res);
        if (limit.penalty.base_ms != 0 && !(limit.flags & TRL_LIMIT_DRY_RUN)) {
            start_penalty(s, e, limit, now_ms, res);
        }
    } else {
        res.ticket = admit(span, n, w, now_ms);
        res.remaining = est.count + 1 >= n ? 0 : n - est.count - 1;
        res.reset_ms = std::max(span.newest_ms() + w, est.reset_at);
        if (ss != nullptr && ss->pending < 0xffff) {
            ss->pending++;
        }
        note_admit(s, e, limit, est.count + 1, res);
    }

    store(e, span, now_ms);
    e.flags = res.remaining == 0 ? (e.flags | kAtLimit)
                                 : (e.flags & ~kAtLimit);
    lru_push(s, i);
    return TRL_OK;
}

// The episode bookkeeping of a rejection: only the first rejection of a key
// since its last admission is to be logged; the others are counted.
void Zone::note_reject(Stripe &s, Entry &e, const trl_limit_t &limit,
                       trl_result_t &res) {
    res.rejected = 1;
    res.remaining = 0;
    if (!(e.flags & kLogged)) {
        res.log_first = 1;
        e.flags |= kLogged;
        s.stat[kOffenses]++;
    } else if (e.suppressed < 0xffff) {
        e.suppressed++;
    }
    s.stat[(limit.flags & TRL_LIMIT_DRY_RUN) ? kRejectedDryRun
                                             : kRejected]++;
}


// An admission that joins the key's newest bucket, decided on the stored
// window itself (see admit_in_place); false when the full path is needed.
bool Zone::admit_fast(Entry &e, const trl_limit_t &limit, uint64_t now_ms,
                      trl_result_t &res) {
    unsigned stored = e.flags & kShiftMask;
    uint64_t touched_ms = static_cast<uint64_t>(e.touched_s) * 1000;
    uint32_t total;
    uint64_t ticket;

    if ((e.flags & kLogged) || now_ms > touched_ms + horizon_ms(stored)
        || !admit_in_place(e.win, stored, limit.rate.limit,
                           limit.rate.window_ms, now_ms,
                           unit_shift(limit.rate.window_ms), total, ticket)) {
        return false;
    }

    res.ticket = ticket;
    res.remaining = limit.rate.limit - total - 1;
    res.reset_ms = ticket + limit.rate.window_ms;
    e.touched_s = static_cast<uint32_t>(now_ms / 1000);
    e.flags = res.remaining == 0 ? (e.flags | kAtLimit)
                                 : (e.flags & ~kAtLimit);
    return true;
}

int Zone::release(const trl_hash_t &key, const trl_limit_t &limit,
                  uint64_t ticket, uint64_t now_ms) {
    Stripe &s = stripe_of(key);
    Locked lock(*this, s);
    if (now_ms == TRL_CLOCK_NOW) {
        now_ms = trl_clock_ms();
    }

    uint32_t i = find(s, key);
    if (i == kNil) {
        return TRL_OK;
    }
    Entry &e = entry(i);
    SyncState *ss = (limit.flags & TRL_LIMIT_SYNC) ? sync_of(i) : nullptr;
    if (ss != nullptr && (limit.flags & TRL_LIMIT_LEASE)) {
        if (now_ms < ss->lease_until_ms && e.sync_lease < 0xffff) {
            e.sync_lease++;                 // back into the node's lease
        }
    } else if (ss != nullptr && ss->pending > 0) {
        ss->pending--;                      // it will not be published
    }
    Span span;
    load(e, limit, now_ms, span);
    if (give_back(span, limit.rate.limit, limit.rate.window_ms, ticket)) {
        store(e, span, now_ms);
        if ((e.flags & kAtLimit) && span.total() < limit.rate.limit) {
            lru_unlink(s, i);
            e.flags &= ~kAtLimit;
            lru_push(s, i);
        }
    }
    return TRL_OK;
}

int Zone::peek(const trl_hash_t &key, const trl_limit_t &limit,
               uint64_t now_ms, trl_result_t &res) {
    uint32_t n = limit.rate.limit;
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

    const Entry &e = entry(i);
    Span span;
    load(e, limit, now_ms, span);
    uint32_t local = span.total();
    SyncState *ss = (limit.flags & TRL_LIMIT_SYNC) ? sync_of(i) : nullptr;
    Estimate est = estimate(ss, local, limit, now_ms);

    res.remaining = est.count >= n ? 0 : n - est.count;
    res.reset_ms = std::max(span.size > 0 ? span.newest_ms() + w : now_ms,
                            est.reset_at);
    res.violations = e.violations & kViolationMask;
    if (est.count >= n) {
        res.rejected = 1;
        uint64_t free_at = std::max(local >= n ? retry_at(span, n, w) : 0,
                                    est.free_at);
        res.retry_ms = free_at > now_ms ? free_at - now_ms : 1;
    }
    if (serving_penalty(e, now_ms, res)) {
        res.rejected = 1;
    }
    return TRL_OK;
}

// A key serving a penalty is admitted once the block is over AND its
// window has a free place: the wait it is told (res.retry_ms, set to the
// block left) and the reset are the later of the two, so that a client
// that waits as told is not rejected by the window it still fills (a
// second violation).
void Zone::window_wait(const Entry &e, const SyncState *ss,
                       const trl_limit_t &limit, uint64_t now_ms,
                       trl_result_t &res) const {
    uint32_t n = limit.rate.limit;
    uint64_t w = limit.rate.window_ms;
    Span span;
    load(e, limit, now_ms, span);
    uint32_t local = span.total();
    Estimate est = estimate(ss, local, limit, now_ms);

    if (est.count >= n) {
        uint64_t free_at = std::max(local >= n ? retry_at(span, n, w) : 0,
                                    est.free_at);
        if (free_at > now_ms) {
            res.retry_ms = std::max(res.retry_ms, free_at - now_ms);
        }
    }
    res.reset_ms = std::max(res.reset_ms,
                            std::max(span.size ? span.newest_ms() + w : 0,
                                     est.reset_at));
}


void Zone::stats(trl_zone_stats_t &out) const {
    std::memset(&out, 0, sizeof(out));
    for (uint32_t i = 0; i < r_->nstripes; i++) {
        const Stripe &s = stripe(i);
        out.passed += load_relaxed(s.stat[kPassed])
                      + load_relaxed(s.stat[kWarned]);
        out.rejected += load_relaxed(s.stat[kRejected]);
        out.rejected_dry_run += load_relaxed(s.stat[kRejectedDryRun]);
        out.evicted += load_relaxed(s.stat[kEvicted]);
        out.recovered += load_relaxed(s.stat[kRecovered]);
        out.warned += load_relaxed(s.stat[kWarned]);
        out.penalized += load_relaxed(s.stat[kPenalized]);
        out.penalties += load_relaxed(s.stat[kPenalties]);
        out.offenses += load_relaxed(s.stat[kOffenses]);
        out.keys += __atomic_load_n(&s.used, __ATOMIC_RELAXED);
    }
    out.capacity = capacity();
    out.bypassed = r_->outcomes[TRL_OUTCOME_BYPASSED].load(
        std::memory_order_relaxed);
    out.denied = r_->outcomes[TRL_OUTCOME_DENIED].load(
        std::memory_order_relaxed);
}

void Zone::count(int outcome) {
    r_->outcomes[outcome].fetch_add(1, std::memory_order_relaxed);
}

uint64_t Zone::eviction_report(uint64_t now_ms, uint64_t interval_ms) {
    uint64_t total = 0;
    for (uint32_t i = 0; i < r_->nstripes; i++) {
        total += load_relaxed(stripe(i).stat[kEvicted]);
    }
    uint64_t reported = r_->evict_reported.load(std::memory_order_relaxed);
    if (total <= reported) {
        return 0;
    }
    uint64_t last = r_->evict_report_ms.load(std::memory_order_relaxed);
    if (last != 0 && now_ms < last + interval_ms) {
        return 0;
    }
    uint64_t stamp = now_ms != 0 ? now_ms : 1;      // 0 means "never"
    if (!r_->evict_report_ms.compare_exchange_strong(last, stamp)) {
        return 0;                           // another process reports it
    }
    r_->evict_reported.store(total, std::memory_order_relaxed);
    return total - reported;
}

}  // namespace trl
