// lists.hpp - runtime allow and deny entries (token_ratelimit_api):
// addresses, CIDR ranges, or keys of a zone, each with an expiry, in a
// block of shared memory of their own, so that every worker applies them
// on its next request and they survive reloads.
//
// The request side costs one atomic load while the lists are empty.
#ifndef TRL_LISTS_HPP
#define TRL_LISTS_HPP

#include <atomic>
#include <cstddef>
#include <cstdint>

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
    // trl_list_entry_t slot[capacity] follows (id 0: free)
};

ListsRoot *lists_create(void *mem, size_t size);
ListsRoot *lists_attach(void *mem, size_t size);

int lists_add(ListsRoot &l, trl_list_entry_t &e, uint64_t now_ms);
int lists_remove(ListsRoot &l, uint64_t id);
size_t lists_get(ListsRoot &l, trl_list_entry_t *out, size_t max,
                 uint64_t now_ms);
int lists_match_addr(ListsRoot &l, int family, const uint8_t *addr,
                     uint64_t now_ms);
int lists_match_key(ListsRoot &l, const char *zone, size_t zone_len,
                    const void *key, size_t key_len, uint64_t now_ms);

}  // namespace trl

#endif
