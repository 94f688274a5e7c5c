// zone.hpp - the keys of one zone in a block of shared memory.
//
// Layout: a root, then nstripes stripes, then per stripe a table of chain
// heads and a fixed run of entries.  A key belongs to one stripe (by its
// hash); each stripe has its own lock, free list, hash chains and two LRU
// lists, so workers touching different keys never wait on each other and
// nothing is allocated while a lock is held.
//
// Eviction: a stripe with no free entry reuses the least recently used
// entry of its lowest non-empty LRU list: "open" keys (below their limit)
// first, then keys that reached their limit, and keys that were rejected
// (actively blocked) last, so that neither a flood of fresh keys nor one of
// keys that each reached a limit of 1 can free a blocked key.  Lists are
// kept at each request of a key; tails are re-checked against the current
// rate before they are reused, since a reload may have changed it.
#ifndef TRL_ZONE_HPP
#define TRL_ZONE_HPP

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

#include "distinct.hpp"
#include "offenders.hpp"
#include "spinlock.hpp"
#include "trl_active.h"
#include "trl_core.h"
#include "window.hpp"

namespace trl {

constexpr uint32_t kNil = 0xffffffff;

enum EntryFlag : uint8_t {
    kShiftMask = 0x1f,      // unit shift the window was stored with
    kInUse = 0x20,
    kAtLimit = 0x40,        // at its limit when last seen
    kLogged = 0x80,         // rejected since its last admission (and logged)
};

// The LRU lists, in eviction order; an entry's list follows from its flags.
enum LruList { kListOpen = 0, kListReached = 1, kListRejected = 2, kLists = 3 };

struct Entry {                  // 80 bytes per key
    uint64_t h_lo, h_hi;        // keyed hash of the key
    uint32_t lru_prev, lru_next;
    uint32_t chain_next;
    uint32_t touched_s;         // clock seconds of the last write
    Window win;
    uint32_t penalty_until;     // end of the penalty, clock ms / 16
    uint8_t violations;         // penalty violations in a row; kWarnedFlag
    uint8_t flags;
    uint16_t suppressed;        // rejections not logged in this episode
    uint32_t sync_lease;        // async: places Redis reserved for this
                                // node, not used yet (see lease_until_ms)
};
static_assert(sizeof(Entry) == 80, "entry layout");

// Per key, in zones created with TRL_ZONE_SYNC (an array beside the
// entries, same index): the cluster side of the key.
struct SyncState {                  // 32 bytes per key
    uint64_t seen_ms;               // when the cluster total was read; 0: never
    union {
        uint64_t block_until_ms;    // strict: known blocked until then
        uint64_t lease_until_ms;    // async: Entry::sync_lease holds until
    };
    uint32_t stamp;                 // Redis's clock (ms, low bits) at the read
    uint32_t free_in_ms;            // the total drops below N this long after
    uint32_t reset_in_ms;           // ... and is back to 0 this long after
    uint16_t remote;                // the cluster total, as read
    uint16_t pending;               // own admissions not in it yet
};
static_assert(sizeof(SyncState) == 32, "sync state layout");

// A sync zone's view of a key: what it decides on.
struct Estimate {
    uint32_t count;                 // max(own, cluster + own pending)
    uint64_t free_at;               // when the cluster part drops below N
    uint64_t reset_at;              // when the cluster part is back to 0
    bool read_due;                  // the cluster total wants a new read
};

enum Stat { kPassed, kRejected, kRejectedDryRun, kEvicted, kRecovered,
            kWarned, kPenalized, kPenalties, kOffenses, kStats };

// Entry::violations: the count in the low bits, and a flag.
constexpr uint8_t kViolationMask = 0x3f;
constexpr uint8_t kWarnedFlag = 0x40;   // past the warning threshold (logged)

struct alignas(64) Stripe {
    std::atomic<uint32_t> owner;    // pid holding the lock, 0 when free
    uint32_t free_head;
    uint32_t lru_head[kLists];
    uint32_t lru_tail[kLists];
    uint32_t used;
    uint64_t stat[kStats];          // written under the lock
};

struct LineBudget {
    std::atomic<uint64_t> window;   // second << 24 | lines permitted in it
    std::atomic<uint64_t> pending;  // refused since the last permitted one
};

struct Root {
    uint64_t magic;
    uint32_t version;
    uint32_t entry_size;
    uint64_t size;
    uint32_t nstripes;              // a power of two
    uint32_t per_stripe;            // entries (and chain heads) per stripe
    uint64_t stripes_off;
    uint64_t heads_off;
    uint64_t entries_off;
    uint8_t seed[16];
    std::atomic<uint64_t> evict_report_ms;
    std::atomic<uint64_t> evict_reported;
    uint32_t flags;                 // TRL_ZONE_SYNC
    // zone_distinct.cpp: slots per key of a distinct zone (0: none); was
    // reserved, zero in zones made before it
    uint32_t distinct_slots;
    uint64_t sync_off;              // SyncState array (TRL_ZONE_SYNC)
    std::atomic<uint64_t> sync_stats[TRL_SYNC_STATS];
    std::atomic<uint64_t> outcomes[2];  // TRL_OUTCOME_*
    uint64_t offenders_off;         // OffenderTable
    // zone_events.cpp: the line budgets of the event log (TRL_LINES_EVENTS)
    // and of the error log (TRL_LINES_ERRORS), each second << 24 | lines
    // written in it, and the lines refused since the last one written;
    // then the lines refused in all, per log.  Zeros in zones made before
    // them (they were reserved words): no layout version change.
    LineBudget lines[TRL_LINES_LOGS];
    std::atomic<uint64_t> lines_refused[TRL_LINES_LOGS];
    // zone_active.cpp: an active zone's MAX, 0 for others; was reserved,
    // zero in older zones.  An active zone keeps its times on a clock MAX
    // ahead of the core's, so that a slot's time (expiry - MAX) is never
    // before 0 (clock_ahead(), the ABI moves times on and off it)
    uint64_t active_max_ms;
    uint64_t distinct_off;          // slot blocks (distinct_slots > 0); was
                                    // reserved, zero in older zones
};
static_assert(sizeof(std::atomic<uint64_t>) == sizeof(uint64_t),
              "atomic words in the root");
static_assert(sizeof(Root) == 264, "root layout");

// Accessors over a root; all offsets are from the root itself.
class Zone {
  public:
    explicit Zone(Root *root) : r_(root) {}

    static size_t min_size();
    static Root *create(void *mem, size_t size, unsigned flags,
                        std::string &why, uint32_t distinct_slots = 0);
    static Root *attach(void *mem, size_t size, std::string &why);

    uint32_t capacity() const { return r_->nstripes * r_->per_stripe; }
    trl_hash_t hash(const void *key, size_t len) const;

    int acquire(const trl_hash_t &key, const trl_limit_t &limit,
                uint64_t now_ms, trl_result_t &res);
    int release(const trl_hash_t &key, const trl_limit_t &limit,
                uint64_t ticket, uint64_t now_ms);
    int peek(const trl_hash_t &key, const trl_limit_t &limit, uint64_t now_ms,
             trl_result_t &res);

    void stats(trl_zone_stats_t &out) const;
    uint64_t eviction_report(uint64_t now_ms, uint64_t interval_ms);

    // zone_sync.cpp: the cluster side
    unsigned flags() const { return r_->flags; }
    int sync_apply(const trl_hash_t &key, const trl_limit_t &limit,
                   const trl_sync_read_t &read, uint64_t now_ms);
    int sync_unpend(const trl_hash_t &key, uint32_t n);
    int sync_watch(const trl_hash_t &key, const trl_limit_t &limit,
                   uint64_t now_ms);
    int async_apply(const trl_hash_t &key, const trl_limit_t &limit,
                    const trl_ask_reply_t &reply, uint64_t now_ms,
                    trl_result_t &res);
    uint64_t node_id() const;
    int strict_cached(const trl_hash_t &key, const trl_limit_t &limit,
                      uint64_t now_ms, trl_result_t &res);
    int strict_apply(const trl_hash_t &key, const trl_limit_t &limit,
                     const trl_strict_reply_t &reply, uint64_t now_ms,
                     trl_result_t &res);
    void count(int outcome);

    // zone_inspect.cpp: for token_ratelimit_api
    void offend(const trl_hash_t &key, const void *text, size_t len,
                uint64_t now_ms);
    size_t offenders(trl_offender_t *out, size_t max, uint64_t now_ms);
    bool offender(const trl_hash_t &key, trl_offender_t &out);
    size_t named_penalties(trl_penalty_info_t *out, trl_offender_t *names,
                           size_t max, uint64_t now_ms);
    size_t penalties(trl_penalty_info_t *out, size_t max, uint64_t now_ms,
                     uint64_t *active);
    int reset(const trl_hash_t &key);
    void sync_add(int stat, uint64_t n);
    void sync_put(int stat, uint64_t value);
    void sync_stats(uint64_t out[TRL_SYNC_STATS]) const;

    // zone_distinct.cpp: distinct-value zones (trl_distinct.h); the slot
    // blocks are an array beside the entries, same index
    uint32_t distinct_slots() const { return r_->distinct_slots; }
    int distinct_acquire(const trl_hash_t &key, const trl_limit_t &limit,
                         uint32_t fp, uint64_t now_ms, trl_result_t &res);
    int distinct_settle(const trl_hash_t &key, const trl_limit_t &limit,
                        uint64_t ticket, bool confirm, uint64_t now_ms);
    int distinct_peek(const trl_hash_t &key, const trl_limit_t &limit,
                      uint64_t now_ms, trl_result_t &res);
    int distinct_strict_apply(const trl_hash_t &key,
                              const trl_limit_t &limit, uint32_t fp,
                              bool admitted, uint32_t count,
                              uint32_t free_in_ms, uint32_t reset_in_ms,
                              uint64_t now_ms, trl_result_t &res);

    // zone_active.cpp: active zones (trl_active.h), distinct zones whose
    // slot times are expiry - MAX, on a clock MAX ahead
    uint64_t clock_ahead() const { return r_->active_max_ms; }
    void set_clock_ahead(uint64_t max_ms) { r_->active_max_ms = max_ms; }
    int active_settle(const trl_hash_t &key, const trl_limit_t &limit,
                      uint64_t ticket, uint64_t lifetime_ms, uint32_t id,
                      uint64_t now_ms, uint32_t &held);
    int active_release(const trl_hash_t &key, const trl_limit_t &limit,
                       uint32_t id, uint64_t now_ms, uint32_t &held);
    size_t active_places(const trl_hash_t &key, const trl_limit_t &limit,
                         uint64_t now_ms, trl_active_place_t *out,
                         size_t max);

    // zone_events.cpp: the event log's and the error log's rate limits
    bool line_permit(int log, uint64_t now_ms, uint32_t per_second,
                     uint64_t &suppressed);
    uint64_t lines_refused(int log) const;

  private:
    class Locked;

    Stripe &stripe(uint32_t i) const;
    Stripe &stripe_of(const trl_hash_t &key) const;
    uint32_t stripe_index(const Stripe &s) const;
    uint32_t *heads(const Stripe &s) const;
    Entry &entry(uint32_t i) const;
    uint32_t first_entry(const Stripe &s) const;
    uint32_t bucket(const trl_hash_t &key) const;

    uint32_t find(Stripe &s, const trl_hash_t &key) const;
    uint32_t take(Stripe &s, const trl_hash_t &key, const trl_limit_t &limit,
                  uint64_t now_ms, uint32_t &evicted);
    // The key's entry, a new one (counted in res.evicted) if it has none.
    uint32_t find_or_take(Stripe &s, const trl_hash_t &key,
                          const trl_limit_t &limit, uint64_t now_ms,
                          trl_result_t &res) {
        uint32_t i = find(s, key);
        return i != kNil ? i : take(s, key, limit, now_ms, res.evicted);
    }
    uint32_t victim(Stripe &s, const trl_limit_t &limit, uint64_t now_ms);
    bool at_limit(const Entry &e, const trl_limit_t &limit,
                  uint64_t now_ms) const;
    void chain_unlink(Stripe &s, uint32_t i);
    void lru_unlink(Stripe &s, uint32_t i);
    void lru_push(Stripe &s, uint32_t i);
    void rebuild(Stripe &s);
    void init_stripe(Stripe &s);

    void load(const Entry &e, const trl_limit_t &limit, uint64_t now_ms,
              Span &span) const;
    void store(Entry &e, const Span &span, uint64_t now_ms);
    bool admit_fast(Entry &e, const trl_limit_t &limit, uint64_t now_ms,
                    trl_result_t &res);
    void note_reject(Stripe &s, Entry &e, const trl_limit_t &limit,
                     trl_result_t &res);
    void note_admit(Stripe &s, Entry &e, const trl_limit_t &limit,
                    uint32_t count, trl_result_t &res);
    bool serving_penalty(const Entry &e, uint64_t now_ms,
                         trl_result_t &res) const;
    void start_penalty(Stripe &s, Entry &e, const trl_limit_t &limit,
                       uint64_t now_ms, trl_result_t &res);
    void adopt_penalty(Entry &e, uint64_t until_ms, uint32_t violations,
                       uint64_t now_ms);
    void strict_wait(const SyncState *ss, uint64_t now_ms,
                     trl_result_t &res) const;
    void window_wait(const Entry &e, const SyncState *ss,
                     const trl_limit_t &limit, uint64_t now_ms,
                     trl_result_t &res) const;
    static uint64_t begin_result(const Locked &lock, uint32_t limit,
                                 uint64_t now_ms, trl_result_t &res);
    SyncState *sync_of(uint32_t i) const;
    OffenderTable &offender_table() const;
    Estimate estimate(const SyncState *ss, uint32_t local,
                      const trl_limit_t &limit, uint64_t now_ms) const;
    uint32_t lease_left(const SyncState *ss, uint64_t now_ms) const;
    bool lease_decide(Stripe &s, uint32_t i, const trl_limit_t &limit,
                      uint64_t now_ms, trl_result_t &res);
    void sync_settle(Entry &e, SyncState *ss, const trl_limit_t &limit,
                     uint32_t total, uint64_t now_ms);

    // zone_distinct.cpp: hooks of take() and at_limit()
    void *distinct_block(uint32_t i) const;
    // ... a key's slots written back (under the stripe's lock), the entry
    // moved off the "reached" list when it is below N again
    void distinct_put(Stripe &s, uint32_t i, const trl_limit_t &limit,
                      const HeldSet &set, uint64_t now_ms);
    // zone_active.cpp: the key's live places (under the stripe's lock):
    // its entry, or kNil
    uint32_t active_load(Stripe &s, const trl_hash_t &key,
                         const trl_limit_t &limit, uint64_t now_ms,
                         HeldSet &set) const;
    bool distinct_full(uint32_t i, const trl_limit_t &limit,
                       uint64_t now_ms) const;
    bool distinct_live(uint32_t i, const trl_limit_t &limit,
                       uint64_t now_ms) const;

    Root *r_;
};

// Holds a stripe's lock for a scope; repairs the stripe when the lock had
// to be taken over from a dead process.
class Zone::Locked {
  public:
    Locked(Zone &zone, Stripe &s) : s_(s) {
        recovered_ = lock_owned(s.owner);
        if (recovered_) {
            zone.rebuild(s);
            s.stat[kRecovered]++;
        }
    }
    ~Locked() { unlock_owned(s_.owner); }
    Locked(const Locked &) = delete;
    Locked &operator=(const Locked &) = delete;

    bool recovered() const { return recovered_; }

  private:
    Stripe &s_;
    bool recovered_;
};

// A decision's result begun under the stripe's lock: cleared, with the
// limit, whether the lock was recovered, and the time (TRL_CLOCK_NOW: the
// clock, read under the lock so that one stripe's decisions are ordered),
// which it returns.
inline uint64_t Zone::begin_result(const Locked &lock, uint32_t limit,
                                   uint64_t now_ms, trl_result_t &res) {
    std::memset(&res, 0, sizeof(res));
    res.limit = limit;
    res.recovered = lock.recovered();
    res.now_ms = now_ms == TRL_CLOCK_NOW ? trl_clock_ms() : now_ms;
    return res.now_ms;
}

// The ABI's handle of a zone as a Zone, and the limits a zone of slots
// (distinct and active zones) decides with.
inline Zone zone_at(const trl_zone_t *zone) {
    return Zone(reinterpret_cast<Root *>(const_cast<trl_zone_t *>(zone)));
}

inline bool slots_limit_valid(const trl_limit_t *limit) {
    return limit != nullptr && limit->rate.limit >= 1
           && limit->rate.limit <= TRL_DISTINCT_MAX_LIMIT
           && limit->rate.window_ms >= 1
           && limit->rate.window_ms <= TRL_RATE_MAX_WINDOW_MS;
}

// A time given to an active zone (or the clock's, for TRL_CLOCK_NOW) on
// the zone's clock, and a result's times back off it; both nothing for
// other zones.  (An active zone's clock is read before the stripe's lock
// is taken, earlier than the decision by the lock's wait: far less than
// the time between the upstream's issuing a token and the log phase that
// times its place, which so still ends after the token.)
inline uint64_t zone_now(const Zone &z, uint64_t now_ms) {
    uint64_t ahead = z.clock_ahead();
    if (ahead == 0) {
        return now_ms;
    }
    return (now_ms == TRL_CLOCK_NOW ? trl_clock_ms() : now_ms) + ahead;
}

inline void zone_result_back(const Zone &z, trl_result_t &res) {
    uint64_t ahead = z.clock_ahead();
    res.now_ms -= ahead;
    res.reset_ms = res.reset_ms > ahead ? res.reset_ms - ahead : 0;
}

}  // namespace trl

#endif
