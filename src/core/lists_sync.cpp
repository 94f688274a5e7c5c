// lists_sync.cpp - runtime lists shared by the nodes through Redis: which
// process reconciles, what Redis lacks, and taking its hash in (see the
// cluster-wide section of trl_core.h).
#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <vector>

#include "lists.hpp"

namespace trl {
namespace {

// The slots of the lists, sorted by id, for lookups during a reconcile.
// Made in two steps so that nothing is allocated under the lists' lock:
// the room for every slot is reserved first (the capacity never changes),
// then the slots are collected and sorted with the lock held.
class ById {
  public:
    explicit ById(const ListsRoot &l) { slots_.reserve(l.capacity); }

    // Under the lock.
    void collect(ListsRoot &l) {
        trl_list_entry_t *s = list_slots(l);
        for (uint32_t i = 0; i < l.capacity; i++) {
            if (s[i].id != 0) {
                slots_.push_back(&s[i]);    // within the reserve
            }
        }
        std::sort(slots_.begin(), slots_.end(),
                  [](const trl_list_entry_t *a, const trl_list_entry_t *b) {
                      return a->id < b->id;
                  });
    }

    trl_list_entry_t *find(uint64_t id) const {
        auto it = std::lower_bound(
            slots_.begin(), slots_.end(), id,
            [](const trl_list_entry_t *e, uint64_t v) { return e->id < v; });
        return it != slots_.end() && (*it)->id == id ? *it : nullptr;
    }

    const std::vector<trl_list_entry_t *> &all() const { return slots_; }

  private:
    std::vector<trl_list_entry_t *> slots_;
};

bool has(const std::vector<uint64_t> &sorted, uint64_t id) {
    return std::binary_search(sorted.begin(), sorted.end(), id);
}

void forget(ListsRoot &l, trl_list_entry_t &e) {
    std::memset(&e, 0, sizeof(e));
    l.count.fetch_sub(1, std::memory_order_relaxed);
}

int hex_digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// A decimal number up to ':' (or the end); false when there is none.
bool number(const char *&p, const char *end, uint64_t &out) {
    const char *start = p;
    out = 0;
    while (p < end && *p >= '0' && *p <= '9' && p - start < 19) {
        out = out * 10 + static_cast<uint64_t>(*p++ - '0');
    }
    if (p == start || (p < end && *p != ':')) {
        return false;
    }
    if (p < end) {
        p++;
    }
    return true;
}

}  // namespace

int lists_sync_due(ListsRoot &l, uint64_t now_ms, uint64_t interval_ms,
                   uint64_t busy_ms, bool force) {
    ListsHeld held(l);
    if (l.sync_busy_until_ms > now_ms) {
        if (force) {
            l.sync_again = 1;               // the one in flight goes again
        }
        return 0;
    }
    if (!force && now_ms < l.sync_due_ms) {
        return 0;
    }
    l.sync_busy_until_ms = now_ms + busy_ms;
    l.sync_due_ms = now_ms + interval_ms;
    l.sync_again = 0;
    return 1;
}

bool lists_sync_done(ListsRoot &l) {
    ListsHeld held(l);
    bool again = l.sync_again != 0;
    l.sync_busy_until_ms = 0;
    l.sync_again = 0;
    return again;
}

size_t lists_outgoing(ListsRoot &l, trl_list_entry_t *puts, size_t max_puts,
                      uint64_t *dels, size_t max_dels, size_t &ndels,
                      uint64_t now_ms) {
    ListsHeld held(l);
    trl_list_entry_t *s = list_slots(l);
    size_t nputs = 0;
    ndels = 0;
    for (uint32_t i = 0; i < l.capacity; i++) {
        if (s[i].id != 0 && s[i].action == 0) {
            if (ndels < max_dels) {
                dels[ndels++] = s[i].id;
            }
        } else if (list_live(s[i], now_ms) && !(s[i].flags & TRL_LIST_SYNCED)
                   && nputs < max_puts) {
            puts[nputs++] = s[i];
        }
    }
    return nputs;
}

void lists_incoming(ListsRoot &l, uint64_t epoch,
                    const trl_list_entry_t *remote, size_t nremote,
                    const uint64_t *puts, size_t nputs, const uint64_t *dels,
                    size_t ndels, trl_list_entry_t *resets, size_t max_resets,
                    size_t &nresets, uint64_t now_ms) {
    nresets = 0;

    std::vector<uint64_t> remote_ids;
    remote_ids.reserve(nremote);
    for (size_t i = 0; i < nremote; i++) {
        remote_ids.push_back(remote[i].id);
    }
    std::sort(remote_ids.begin(), remote_ids.end());
    ById local(l);

    // nothing below allocates: the lock is held only for the slots' time
    ListsHeld held(l);
    local.collect(l);
    bool rebuilt = epoch != l.epoch;     // a new hash: nothing was removed
    l.epoch = epoch;

    for (size_t i = 0; i < ndels; i++) {
        trl_list_entry_t *e = local.find(dels[i]);
        if (e != nullptr && e->action == 0) {
            forget(l, *e);                  // Redis has been told
        }
    }
    for (size_t i = 0; i < nputs; i++) {
        trl_list_entry_t *e = local.find(puts[i]);
        if (e != nullptr && e->action != 0) {
            e->flags |= TRL_LIST_SYNCED;
        }
    }

    // local entries against the hash
    for (trl_list_entry_t *e : local.all()) {
        if (e->id == 0 || e->action == 0 || has(remote_ids, e->id)) {
            continue;
        }
        if (rebuilt) {
            e->flags &= static_cast<uint8_t>(~TRL_LIST_SYNCED);  // send again
        } else if (e->flags & TRL_LIST_SYNCED) {
            forget(l, *e);                  // removed (or expired) elsewhere
        }
    }

    // the hash's entries: new ones are added, known ones refreshed
    trl_list_entry_t *s = list_slots(l);
    uint32_t next_free = 0;
    for (size_t i = 0; i < nremote; i++) {
        trl_list_entry_t in = remote[i];
        if (!list_live(in, now_ms)) {
            continue;
        }
        in.flags = TRL_LIST_SYNCED;
        trl_list_entry_t *e = local.find(in.id);
        if (e != nullptr && e->id == in.id) {
            if (e->action != 0) {           // a removal wins until told
                *e = in;
            }
            continue;
        }
        while (next_free < l.capacity && !list_reusable(s[next_free], now_ms)) {
            next_free++;
        }
        if (next_free == l.capacity) {
            break;                          // full: the rest stays remote
        }
        if (in.action == TRL_LIST_RESET) {
            // kept until it expires, so that it is carried out once
            if (nresets == max_resets) {
                continue;                   // next time
            }
            resets[nresets++] = in;
        }
        if (s[next_free].id == 0) {
            l.count.fetch_add(1, std::memory_order_relaxed);
        }
        s[next_free] = in;
    }
    l.changes.fetch_add(1, std::memory_order_relaxed);
}

bool list_origin_valid(const char *text, size_t len) {
    if (len == 0 || len > TRL_LIST_ORIGIN_MAX) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        if (text[i] <= ' ' || text[i] > '~') {
            return false;
        }
    }
    return true;
}

size_t list_encode(const trl_list_entry_t &e, char *buf, size_t len) {
    static const char hex[] = "0123456789abcdef";
    const uint8_t *data = e.family == 0
                              ? reinterpret_cast<const uint8_t *>(e.key)
                              : e.addr;
    size_t n = e.family == 0 ? e.key_len : (e.family == 4 ? 4 : 16);
    size_t zone_len = strnlen(e.zone, sizeof(e.zone) - 1);
    size_t origin_len = strnlen(e.origin, sizeof(e.origin) - 1);

    int head = std::snprintf(buf, len, "%u:%u:%u:%" PRIu64 ":%" PRIu64 ":",
                             e.action, e.family, e.prefix, e.created_ms,
                             e.expires_ms);
    if (head < 0
        || static_cast<size_t>(head) + 2 * n + 1 + zone_len
                   + (origin_len ? 1 + origin_len : 0)
               >= len) {
        return 0;
    }
    char *p = buf + head;
    for (size_t i = 0; i < n; i++) {
        *p++ = hex[data[i] >> 4];
        *p++ = hex[data[i] & 0xf];
    }
    *p++ = ':';
    std::memcpy(p, e.zone, zone_len);
    p += zone_len;
    if (origin_len != 0) {              // older nodes wrote none
        *p++ = ' ';
        std::memcpy(p, e.origin, origin_len);
        p += origin_len;
    }
    *p = '\0';
    return static_cast<size_t>(p - buf);
}

bool list_decode(uint64_t id, const char *text, size_t len,
                 trl_list_entry_t &e) {
    const char *p = text, *end = text + len;
    uint64_t action, family, prefix;

    std::memset(&e, 0, sizeof(e));
    if (id == 0 || id > kListIdMask || !number(p, end, action)
        || !number(p, end, family) || !number(p, end, prefix)
        || !number(p, end, e.created_ms) || !number(p, end, e.expires_ms)
        || (action != TRL_LIST_ALLOW && action != TRL_LIST_DENY
            && action != TRL_LIST_RESET)
        || (family != 0 && family != 4 && family != 6)
        || (action == TRL_LIST_RESET && family != 0)) {
        return false;
    }

    const char *colon = static_cast<const char *>(
        std::memchr(p, ':', static_cast<size_t>(end - p)));
    if (colon == nullptr || (colon - p) % 2 != 0) {
        return false;
    }
    size_t n = static_cast<size_t>(colon - p) / 2;
    uint8_t *data = family == 0 ? reinterpret_cast<uint8_t *>(e.key) : e.addr;
    size_t room = family == 0 ? sizeof(e.key) : (family == 4 ? 4 : 16);
    if (n > room || (family != 0 && n != room)
        || prefix > (family == 0 ? 0 : room * 8)) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        int hi = hex_digit(p[2 * i]), lo = hex_digit(p[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            return false;
        }
        data[i] = static_cast<uint8_t>(hi * 16 + lo);
    }

    // zone names have no space (the glue keeps them plain), nor has an
    // origin: what follows one is the origin
    const char *zone = colon + 1;
    const char *zone_end = static_cast<const char *>(
        std::memchr(zone, ' ', static_cast<size_t>(end - zone)));
    size_t zone_len = static_cast<size_t>((zone_end ? zone_end : end) - zone);
    if (zone_len >= sizeof(e.zone) || (family != 0 && zone_len != 0)) {
        return false;
    }
    std::memcpy(e.zone, zone, zone_len);
    if (zone_end != nullptr) {
        size_t origin_len = static_cast<size_t>(end - zone_end - 1);
        if (!list_origin_valid(zone_end + 1, origin_len)) {
            return false;
        }
        std::memcpy(e.origin, zone_end + 1, origin_len);
    }

    e.id = id;
    e.action = static_cast<uint8_t>(action);
    e.family = static_cast<uint8_t>(family);
    e.prefix = static_cast<uint8_t>(prefix);
    e.key_len = family == 0 ? static_cast<uint8_t>(n) : 0;
    return true;
}

}  // namespace trl
