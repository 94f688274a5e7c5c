// abi_lists.cpp - the C ABI of the runtime allow/deny lists.
#include "lists.hpp"
#include "trl_core.h"

namespace {

trl::ListsRoot &root(trl_lists_t *lists) {
    return *reinterpret_cast<trl::ListsRoot *>(lists);
}

const trl::ListsRoot &root(const trl_lists_t *lists) {
    return *reinterpret_cast<const trl::ListsRoot *>(lists);
}

}  // namespace

extern "C" {

trl_lists_t *trl_lists_create(void *mem, size_t size) {
    return reinterpret_cast<trl_lists_t *>(trl::lists_create(mem, size));
}

trl_lists_t *trl_lists_attach(void *mem, size_t size) {
    return reinterpret_cast<trl_lists_t *>(trl::lists_attach(mem, size));
}

uint32_t trl_lists_capacity(const trl_lists_t *lists) {
    return root(lists).capacity;
}

uint64_t trl_lists_changes(const trl_lists_t *lists) {
    return root(lists).changes.load(std::memory_order_relaxed);
}

int trl_lists_add(trl_lists_t *lists, trl_list_entry_t *entry,
                  uint64_t now_ms) {
    try {
        return trl::lists_add(root(lists), *entry, now_ms);
    } catch (...) {
        return TRL_ERROR;
    }
}

int trl_lists_remove(trl_lists_t *lists, uint64_t id) {
    return trl::lists_remove(root(lists), id);
}

size_t trl_lists_get(trl_lists_t *lists, trl_list_entry_t *out, size_t max,
                     uint64_t now_ms) {
    return trl::lists_get(root(lists), out, max, now_ms);
}

int trl_lists_match_addr(trl_lists_t *lists, int family, const uint8_t *addr,
                         uint64_t now_ms) {
    return trl::lists_match_addr(root(lists), family, addr, now_ms);
}

int trl_lists_match_key(trl_lists_t *lists, const char *zone,
                        size_t zone_len, const void *key, size_t key_len,
                        uint64_t now_ms) {
    return trl::lists_match_key(root(lists), zone, zone_len, key, key_len,
                                now_ms);
}

}  // extern "C"
