// lists_view.cpp - the request path's copy of the runtime lists (see
// lists_view.hpp).
#include "lists_view.hpp"

#include <algorithm>
#include <cstring>
#include <new>
#include <string_view>

namespace trl {
namespace {

// addr masked to its first prefix bits, the rest zero
std::array<uint8_t, 16> masked(const uint8_t *addr, size_t len,
                               unsigned prefix) {
    std::array<uint8_t, 16> out{};
    unsigned full = std::min<unsigned>(prefix / 8, len);
    std::memcpy(out.data(), addr, full);
    unsigned rest = prefix % 8;
    if (rest != 0 && full < len) {
        out[full] = static_cast<uint8_t>(addr[full] & (0xff00 >> rest));
    }
    return out;
}

bool in_force(uint64_t expires_ms, uint64_t now_ms) {
    return expires_ms == 0 || expires_ms > now_ms;
}

// Deny wins over allow.
int combine(int seen, int action) {
    return seen == TRL_LIST_DENY ? seen : action;
}

}  // namespace

bool ListsView::refresh(ListsRoot &l) {
    if (root_ == &l
        && changes_ == l.changes.load(std::memory_order_acquire)) {
        return true;
    }
    try {
        rebuild(l);
        return true;
    } catch (const std::bad_alloc &) {
        root_ = nullptr;                // half built: never used
        groups_.clear();
        keys_.clear();
        return false;
    }
}

// Writers bump the change counter under the lock, after their writes: the
// counter read here names exactly the entries copied.
//
// Nothing is allocated under the lock, which every worker's requests may
// wait on: the entries in force are copied into room made before, then
// the sorted copy is built from them with the lock released.
void ListsView::rebuild(ListsRoot &l) {
    root_ = nullptr;
    groups_.clear();
    keys_.clear();

    std::vector<trl_list_entry_t> in_force;
    uint64_t changes = 0;
    // the slots in use are l.count; should it grow between the reserve and
    // the lock, make room again (at last for every slot: always enough)
    size_t room = l.count.load(std::memory_order_relaxed);
    for (int tries = 0;; tries++) {
        in_force.clear();
        in_force.reserve(room);
        bool short_of_room = false;
        {
            ListsHeld held(l);
            const trl_list_entry_t *s = list_slots(l);
            for (uint32_t i = 0; i < l.capacity; i++) {
                // expired entries are copied too: lookups check the time,
                // so the copy stays right as time passes
                if (s[i].id == 0 || (s[i].action != TRL_LIST_ALLOW
                                     && s[i].action != TRL_LIST_DENY)) {
                    continue;
                }
                if (in_force.size() == in_force.capacity()) {
                    short_of_room = true;
                    break;
                }
                in_force.push_back(s[i]);       // within the reserve
            }
            changes = l.changes.load(std::memory_order_relaxed);
        }
        if (!short_of_room) {
            break;
        }
        room = tries < 2 ? l.count.load(std::memory_order_relaxed) + 16
                         : l.capacity;
    }

    for (const trl_list_entry_t &e : in_force) {
        Rule rule{e.action, e.expires_ms};
        if (e.family == 0) {
            size_t zl = strnlen(e.zone, sizeof(e.zone));
            keys_.push_back({std::string(e.key, std::min<size_t>(
                                 e.key_len, sizeof(e.key))),
                             std::string(e.zone, zl), rule});
            continue;
        }
        size_t len = e.family == 4 ? 4 : 16;
        unsigned prefix = std::min<unsigned>(e.prefix, len * 8);
        auto g = std::find_if(groups_.begin(), groups_.end(),
                              [&](const NetGroup &x) {
                                  return x.family == e.family
                                         && x.prefix == prefix;
                              });
        if (g == groups_.end()) {
            groups_.push_back({e.family, prefix, {}});
            g = groups_.end() - 1;
        }
        g->nets.push_back({masked(e.addr, len, prefix), rule});
    }

    for (NetGroup &g : groups_) {
        std::sort(g.nets.begin(), g.nets.end(),
                  [](const Net &a, const Net &b) { return a.bits < b.bits; });
    }
    std::sort(keys_.begin(), keys_.end(),
              [](const Key &a, const Key &b) { return a.key < b.key; });

    root_ = &l;
    changes_ = changes;
}

int ListsView::match_addr(int family, const uint8_t *addr,
                          uint64_t now_ms) const {
    size_t len = family == 4 ? 4 : 16;
    int seen = 0;
    for (const NetGroup &g : groups_) {
        if (g.family != family) {
            continue;
        }
        Net probe{masked(addr, len, g.prefix), {}};
        auto range = std::equal_range(
            g.nets.begin(), g.nets.end(), probe,
            [](const Net &a, const Net &b) { return a.bits < b.bits; });
        for (auto it = range.first; it != range.second; ++it) {
            if (in_force(it->rule.expires_ms, now_ms)) {
                seen = combine(seen, it->rule.action);
            }
        }
        if (seen == TRL_LIST_DENY) {
            break;
        }
    }
    return seen;
}

int ListsView::match_key(const char *zone, size_t zone_len, const void *key,
                         size_t key_len, uint64_t now_ms) const {
    std::string_view k(static_cast<const char *>(key), key_len);
    std::string_view z(zone, zone_len);
    auto first = std::lower_bound(
        keys_.begin(), keys_.end(), k,
        [](const Key &a, std::string_view b) { return a.key < b; });
    int seen = 0;
    for (auto it = first; it != keys_.end() && it->key == k; ++it) {
        if (in_force(it->rule.expires_ms, now_ms)
            && (it->zone.empty() || it->zone == z)) {
            seen = combine(seen, it->rule.action);
        }
    }
    return seen;
}

const ListsView *lists_view(ListsRoot &l) {
    // one per process: nginx workers are single-threaded
    static ListsView view;
    return view.refresh(l) ? &view : nullptr;
}

}  // namespace trl
