// abi_lists.cpp - the C ABI of the runtime allow/deny lists; like abi.cpp,
// every entry point runs in guard().
#include "guard.hpp"
#include "lists.hpp"
#include "trl_core.h"
#include "trl_test.h"

namespace {

using trl::ErrorOut;
using trl::guard;
using trl::guard_void;

trl::ListsRoot &root(trl_lists_t *lists) {
    return *reinterpret_cast<trl::ListsRoot *>(lists);
}

const trl::ListsRoot &root(const trl_lists_t *lists) {
    return *reinterpret_cast<const trl::ListsRoot *>(lists);
}

}  // namespace

extern "C" {

trl_lists_t *trl_lists_create(void *mem, size_t size, char *err,
                              size_t errlen) noexcept {
    return guard<trl_lists_t *>(nullptr, ErrorOut{err, errlen}, [&] {
        std::string why;
        trl::ListsRoot *l = trl::lists_create(mem, size, why);
        if (l == nullptr) {
            trl::put_error(err, errlen, why);
        }
        return reinterpret_cast<trl_lists_t *>(l);
    });
}

trl_lists_t *trl_lists_attach(void *mem, size_t size, char *err,
                              size_t errlen) noexcept {
    return guard<trl_lists_t *>(nullptr, ErrorOut{err, errlen}, [&] {
        std::string why;
        trl::ListsRoot *l = trl::lists_attach(mem, size, why);
        if (l == nullptr) {
            trl::put_error(err, errlen, why);
        }
        return reinterpret_cast<trl_lists_t *>(l);
    });
}

uint32_t trl_lists_capacity(const trl_lists_t *lists) noexcept {
    return guard(uint32_t{0}, [&] { return root(lists).capacity; });
}

uint64_t trl_lists_changes(const trl_lists_t *lists) noexcept {
    return guard(uint64_t{0}, [&] {
        return root(lists).changes.load(std::memory_order_relaxed);
    });
}

int trl_lists_add(trl_lists_t *lists, trl_list_entry_t *entry,
                  uint64_t now_ms) noexcept {
    return guard(TRL_ERROR,
                 [&] { return trl::lists_add(root(lists), *entry, now_ms); });
}

int trl_lists_remove(trl_lists_t *lists, uint64_t id,
                     int tombstone) noexcept {
    return guard(0, [&] {
        return trl::lists_remove(root(lists), id, tombstone != 0);
    });
}

size_t trl_lists_get(trl_lists_t *lists, trl_list_entry_t *out, size_t max,
                     uint64_t now_ms) noexcept {
    return guard(size_t{0}, [&] {
        return trl::lists_get(root(lists), out, max, now_ms);
    });
}

void trl_lists_count(trl_lists_t *lists, uint64_t now_ms, uint64_t *allow,
                     uint64_t *deny) noexcept {
    *allow = *deny = 0;
    guard_void([&] { trl::lists_count(root(lists), now_ms, *allow, *deny); });
}

int trl_lists_match_addr(trl_lists_t *lists, int family, const uint8_t *addr,
                         uint64_t now_ms) noexcept {
    return guard(0, [&] {
        return trl::lists_match_addr(root(lists), family, addr, now_ms);
    });
}

int trl_lists_match_key(trl_lists_t *lists, const char *zone,
                        size_t zone_len, const void *key, size_t key_len,
                        uint64_t now_ms) noexcept {
    return guard(0, [&] {
        return trl::lists_match_key(root(lists), zone, zone_len, key,
                                    key_len, now_ms);
    });
}

int trl_lists_sync_due(trl_lists_t *lists, uint64_t now_ms,
                       uint64_t interval_ms, uint64_t busy_ms,
                       int force) noexcept {
    return guard(0, [&] {
        return trl::lists_sync_due(root(lists), now_ms, interval_ms, busy_ms,
                                   force != 0);
    });
}

int trl_lists_sync_done(trl_lists_t *lists) noexcept {
    return guard(0,
                 [&] { return trl::lists_sync_done(root(lists)) ? 1 : 0; });
}

uint64_t trl_lists_epoch(trl_lists_t *lists) noexcept {
    return guard(uint64_t{0}, [&] {
        trl::ListsHeld held(root(lists));
        return root(lists).epoch;
    });
}

size_t trl_lists_outgoing(trl_lists_t *lists, trl_list_entry_t *puts,
                          size_t max_puts, uint64_t *dels, size_t max_dels,
                          size_t *ndels, uint64_t now_ms) noexcept {
    *ndels = 0;
    return guard(size_t{0}, [&] {
        return trl::lists_outgoing(root(lists), puts, max_puts, dels,
                                   max_dels, *ndels, now_ms);
    });
}

void trl_lists_incoming(trl_lists_t *lists, uint64_t epoch,
                        const trl_list_entry_t *remote, size_t nremote,
                        const uint64_t *puts, size_t nputs,
                        const uint64_t *dels, size_t ndels,
                        trl_list_entry_t *resets, size_t max_resets,
                        size_t *nresets, uint64_t now_ms) noexcept {
    *nresets = 0;
    // out of memory for the sorted ids: the next reconcile tries again
    guard_void([&] {
        trl::lists_incoming(root(lists), epoch, remote, nremote, puts, nputs,
                            dels, ndels, resets, max_resets, *nresets,
                            now_ms);
    });
}

int trl_list_origin_valid(const char *text, size_t len) noexcept {
    return guard(0, [&] {
        return text != nullptr && trl::list_origin_valid(text, len) ? 1 : 0;
    });
}

size_t trl_list_encode(const trl_list_entry_t *e, char *buf,
                       size_t len) noexcept {
    return guard(size_t{0}, [&] { return trl::list_encode(*e, buf, len); });
}

int trl_list_decode(uint64_t id, const char *text, size_t len,
                    trl_list_entry_t *e) noexcept {
    return guard(TRL_ERROR, [&] {
        return trl::list_decode(id, text, len, *e) ? TRL_OK : TRL_ERROR;
    });
}

}  // extern "C"
