// lists.cpp - runtime allow/deny entries (see lists.hpp).
#include "lists.hpp"

#include <cstring>
#include <new>
#include <sys/random.h>

#include "lists_view.hpp"
#include "spinlock.hpp"

namespace trl {
namespace {

constexpr uint64_t kListsMagic = UINT64_C(0x544b524c4c495354);  // "TKRLLIST"
// 2: trl_list_entry_t gained origin (a block of layout 1, kept by a reload
// that loads this module, is refused: the old generation's workers still
// use it as it is)
constexpr uint32_t kListsVersion = 2;

bool prefix_match(const uint8_t *net, const uint8_t *addr, unsigned bits) {
    unsigned full = bits / 8;
    if (std::memcmp(net, addr, full) != 0) {
        return false;
    }
    unsigned rest = bits % 8;
    if (rest == 0) {
        return true;
    }
    uint8_t mask = static_cast<uint8_t>(0xff00 >> rest);
    return (net[full] & mask) == (addr[full] & mask);
}

// Deny wins over allow.
int combine(int seen, int action) {
    return seen == TRL_LIST_DENY ? seen : action;
}

}  // namespace

ListsHeld::ListsHeld(ListsRoot &l) : l_(l) { (void) lock_owned(l_.lock); }

ListsHeld::~ListsHeld() { unlock_owned(l_.lock); }

ListsRoot *lists_create(void *mem, size_t size, std::string &why) {
    if (mem == nullptr || size < sizeof(ListsRoot) + sizeof(trl_list_entry_t)) {
        why = "the block of the lists is too small: " + std::to_string(size)
              + " bytes, at least "
              + std::to_string(sizeof(ListsRoot) + sizeof(trl_list_entry_t))
              + " needed";
        return nullptr;
    }
    std::memset(mem, 0, size);
    ListsRoot *l = new (mem) ListsRoot();
    l->version = kListsVersion;
    l->capacity = static_cast<uint32_t>((size - sizeof(ListsRoot))
                                        / sizeof(trl_list_entry_t));
    uint64_t seed = 0;
    if (getrandom(&seed, sizeof(seed), 0) != sizeof(seed)) {
        seed = reinterpret_cast<uintptr_t>(mem) ^ current_pid();
    }
    // ids start at random so that nodes sharing them through Redis do not
    // collide; below 2^53 (exact as JSON numbers), never 0
    l->next_id = (seed & kListIdMask) | 1;
    // the change counter starts anywhere, so that a process's copy of old
    // lists (lists_view.hpp) never passes for new lists made at the same
    // address
    l->changes.store(seed * UINT64_C(0x9e3779b97f4a7c15),
                     std::memory_order_relaxed);
    __atomic_store_n(&l->magic, kListsMagic, __ATOMIC_RELEASE);
    return l;
}

// size 0: the block is known to be the lists' (a reload adopts it).
ListsRoot *lists_attach(void *mem, size_t size, std::string &why) {
    ListsRoot *l = static_cast<ListsRoot *>(mem);
    if (mem == nullptr || (size != 0 && size < sizeof(ListsRoot))) {
        why = "the block of the lists is missing or too small";
        return nullptr;
    }
    if (__atomic_load_n(&l->magic, __ATOMIC_ACQUIRE) != kListsMagic) {
        why = "the block holds no lists";
        return nullptr;
    }
    if (l->version != kListsVersion) {
        why = "the lists were laid out by another version of the module "
              "(layout " + std::to_string(l->version) + ", this one reads "
              + std::to_string(kListsVersion) + ")";
        return nullptr;
    }
    return l;
}

// Adds e (its id given, as from another node, or 0: a new one), or
// replaces the entry of the same id.  TRL_ERROR when full.
int lists_add(ListsRoot &l, trl_list_entry_t &e, uint64_t now_ms) {
    ListsHeld held(l);
    trl_list_entry_t *s = list_slots(l);
    trl_list_entry_t *free_slot = nullptr;

    if (e.id == 0) {
        l.next_id = (l.next_id + 1) & kListIdMask;
        if (l.next_id == 0) {
            l.next_id = 1;
        }
        e.id = l.next_id;
    }
    for (uint32_t i = 0; i < l.capacity; i++) {
        if (s[i].id == e.id) {
            s[i] = e;
            l.changes.fetch_add(1, std::memory_order_relaxed);
            return TRL_OK;
        }
        if (free_slot == nullptr && list_reusable(s[i], now_ms)) {
            free_slot = &s[i];
        }
    }
    if (free_slot == nullptr) {
        return TRL_ERROR;
    }
    if (free_slot->id == 0) {
        l.count.fetch_add(1, std::memory_order_relaxed);
    }
    *free_slot = e;
    l.changes.fetch_add(1, std::memory_order_relaxed);
    return TRL_OK;
}

// With tombstone, the entry stays as a removal (action 0) until Redis has
// been told; else its slot is freed.
int lists_remove(ListsRoot &l, uint64_t id, bool tombstone) {
    ListsHeld held(l);
    trl_list_entry_t *s = list_slots(l);
    for (uint32_t i = 0; i < l.capacity; i++) {
        if (s[i].id == id && id != 0
            && (s[i].action == TRL_LIST_ALLOW
                || s[i].action == TRL_LIST_DENY)) {
            std::memset(&s[i], 0, sizeof(s[i]));
            if (tombstone) {
                s[i].id = id;
            } else {
                l.count.fetch_sub(1, std::memory_order_relaxed);
            }
            l.changes.fetch_add(1, std::memory_order_relaxed);
            return 1;
        }
    }
    return 0;
}

size_t lists_get(ListsRoot &l, trl_list_entry_t *out, size_t max,
                 uint64_t now_ms) {
    ListsHeld held(l);
    trl_list_entry_t *s = list_slots(l);
    size_t n = 0;
    for (uint32_t i = 0; i < l.capacity && n < max; i++) {
        if (list_applies(s[i], now_ms)) {
            out[n++] = s[i];
        } else if (s[i].id != 0 && s[i].action != 0
                   && !list_live(s[i], now_ms)) {
            std::memset(&s[i], 0, sizeof(s[i]));    // expired: gone
            l.count.fetch_sub(1, std::memory_order_relaxed);
        }
    }
    return n;
}

void lists_count(ListsRoot &l, uint64_t now_ms, uint64_t &allow,
                 uint64_t &deny) {
    allow = deny = 0;
    if (l.count.load(std::memory_order_relaxed) == 0) {
        return;
    }
    ListsHeld held(l);
    trl_list_entry_t *s = list_slots(l);
    for (uint32_t i = 0; i < l.capacity; i++) {
        if (list_applies(s[i], now_ms)) {
            (s[i].action == TRL_LIST_ALLOW ? allow : deny)++;
        }
    }
}

int lists_match_addr(ListsRoot &l, int family, const uint8_t *addr,
                     uint64_t now_ms) {
    if (l.count.load(std::memory_order_relaxed) == 0) {
        return 0;
    }
    if (const ListsView *v = lists_view(l)) {
        return v->match_addr(family, addr, now_ms);
    }
    // no memory for the process's copy: the shared slots, under the lock
    ListsHeld held(l);
    trl_list_entry_t *s = list_slots(l);
    int seen = 0;
    for (uint32_t i = 0; i < l.capacity; i++) {
        const trl_list_entry_t &e = s[i];
        if (e.family == family && list_applies(e, now_ms)
            && prefix_match(e.addr, addr, e.prefix)) {
            seen = combine(seen, e.action);
        }
    }
    return seen;
}

int lists_match_key(ListsRoot &l, const char *zone, size_t zone_len,
                    const void *key, size_t key_len, uint64_t now_ms) {
    if (l.count.load(std::memory_order_relaxed) == 0) {
        return 0;
    }
    if (const ListsView *v = lists_view(l)) {
        return v->match_key(zone, zone_len, key, key_len, now_ms);
    }
    ListsHeld held(l);
    trl_list_entry_t *s = list_slots(l);
    int seen = 0;
    for (uint32_t i = 0; i < l.capacity; i++) {
        const trl_list_entry_t &e = s[i];
        size_t zl = strnlen(e.zone, sizeof(e.zone));
        if (e.family == 0 && list_applies(e, now_ms) && e.key_len == key_len
            && std::memcmp(e.key, key, key_len) == 0
            && (zl == 0 || (zl == zone_len
                            && std::memcmp(e.zone, zone, zl) == 0))) {
            seen = combine(seen, e.action);
        }
    }
    return seen;
}

}  // namespace trl
