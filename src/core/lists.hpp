// lists.hpp - runtime allow and deny entries (token_ratelimit_api):
// addresses, CIDR ranges, or keys of a zone, each with an expiry, in a
// block of shared memory of their own, so that every worker applies them
// on its next request and they survive reloads.
//
// The request side costs one atomic load while the lists are empty, and
// a lookup in a process-local sorted copy otherwise (lists_view.hpp).
#ifndef TRL_LISTS_HPP
#define TRL_LISTS_HPP

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>

#include "trl_core.h"

namespace trl {

struct ListsRoot {
    uint64_t magic;
    uint32_t version;
    uint32_t capacity;
    std::atomic<uint32_t> lock;     // owner's pid, 0 when free
    std::atomic<uint32_t> count;    // entries in use (expired or not)
    std::atomic<uint64_t> changes;  // bumped by every add and remove
    uint64_t next_id;
    // cluster-wide lists, under the lock
    uint64_t epoch;                 // of the Redis hash last seen; 0: none
    uint64_t sync_due_ms;           // the next reconcile
    uint64_t sync_busy_until_ms;    // one in flight until then (or done)
    uint32_t sync_again;            // asked for while one was in flight
    uint32_t reserved;
    // trl_list_entry_t slot[capacity] follows (id 0: free; action 0: a
    // removal Redis is still to be told of)
};

// Null with why set when the block is too small, or holds no lists of
// this version.
ListsRoot *lists_create(void *mem, size_t size, std::string &why);
ListsRoot *lists_attach(void *mem, size_t size, std::string &why);

int lists_add(ListsRoot &l, trl_list_entry_t &e, uint64_t now_ms);
int lists_remove(ListsRoot &l, uint64_t id, bool tombstone);
size_t lists_get(ListsRoot &l, trl_list_entry_t *out, size_t max,
                 uint64_t now_ms);
void lists_count(ListsRoot &l, uint64_t now_ms, uint64_t &allow,
                 uint64_t &deny);
int lists_match_addr(ListsRoot &l, int family, const uint8_t *addr,
                     uint64_t now_ms);
int lists_match_key(ListsRoot &l, const char *zone, size_t zone_len,
                    const void *key, size_t key_len, uint64_t now_ms);

// lists_sync.cpp: the cluster-wide side (see trl_core.h).
int lists_sync_due(ListsRoot &l, uint64_t now_ms, uint64_t interval_ms,
                   uint64_t busy_ms, bool force);
bool lists_sync_done(ListsRoot &l);
size_t lists_outgoing(ListsRoot &l, trl_list_entry_t *puts, size_t max_puts,
                      uint64_t *dels, size_t max_dels, size_t &ndels,
                      uint64_t now_ms);
void lists_incoming(ListsRoot &l, uint64_t epoch,
                    const trl_list_entry_t *remote, size_t nremote,
                    const uint64_t *puts, size_t nputs, const uint64_t *dels,
                    size_t ndels, trl_list_entry_t *resets, size_t max_resets,
                    size_t &nresets, uint64_t now_ms);
bool list_origin_valid(const char *text, size_t len);
size_t list_encode(const trl_list_entry_t &e, char *buf, size_t len);
bool list_decode(uint64_t id, const char *text, size_t len,
                 trl_list_entry_t &e);

// Shared with lists_sync.cpp.
constexpr uint64_t kListIdMask = (UINT64_C(1) << 53) - 1;  // JSON-safe ids

inline trl_list_entry_t *list_slots(ListsRoot &l) {
    return reinterpret_cast<trl_list_entry_t *>(&l + 1);
}

inline bool list_live(const trl_list_entry_t &e, uint64_t now_ms) {
    return e.id != 0 && e.action != 0
           && (e.expires_ms == 0 || e.expires_ms > now_ms);
}

// An allow or deny entry in force (not a reset, nor a removal).
inline bool list_applies(const trl_list_entry_t &e, uint64_t now_ms) {
    return (e.action == TRL_LIST_ALLOW || e.action == TRL_LIST_DENY)
           && list_live(e, now_ms);
}

// A slot a new entry may take: free, or holding an expired entry (never a
// removal Redis is still to be told of).
inline bool list_reusable(const trl_list_entry_t &e, uint64_t now_ms) {
    return e.id == 0 || (e.action != 0 && !list_live(e, now_ms));
}

class ListsHeld {
  public:
    explicit ListsHeld(ListsRoot &l);
    ~ListsHeld();
    ListsHeld(const ListsHeld &) = delete;
    ListsHeld &operator=(const ListsHeld &) = delete;

  private:
    ListsRoot &l_;
};

}  // namespace trl

#endif
