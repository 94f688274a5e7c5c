// stream.cpp - the decisions stream's memory of what each bouncer was sent
// (trl_decisions.h), in shared memory under one process-shared lock.
#include <algorithm>
#include <atomic>
#include <cstring>
#include <new>
#include <vector>

#include "guard.hpp"
#include "spinlock.hpp"
#include "trl_decisions.h"

namespace {

constexpr uint32_t kStreamMagic = 0x54524c53;  // "TRLS"
constexpr uint32_t kStreamVersion = 1;

struct Slot {
    uint64_t who;                    // 0: free
    uint64_t first_ms;
    uint64_t last_ms;
    uint64_t pulls;
    uint32_t count;
    uint32_t held_back;
    trl_decision_t sent[TRL_STREAM_MAX];  // sorted by id
};

struct Root {
    uint32_t magic;
    uint32_t version;
    uint32_t size;
    std::atomic<uint32_t> lock;
    Slot slots[TRL_STREAM_BOUNCERS];
};

class Held {
  public:
    explicit Held(Root &r) : r_(r) {
        if (trl::lock_owned(r_.lock)) {
            // its owner died mid-pull: what it was writing is unknown, so
            // every bouncer starts again (its next pull sends all as new)
            for (Slot &s : r_.slots) {
                s.who = 0;
                s.count = 0;
            }
        }
    }
    ~Held() { trl::unlock_owned(r_.lock); }
    Held(const Held &) = delete;
    Held &operator=(const Held &) = delete;

  private:
    Root &r_;
};

uint64_t fnv(const void *p, size_t n) {
    uint64_t h = 14695981039346656037ULL;
    const unsigned char *b = static_cast<const unsigned char *>(p);
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 1099511628211ULL;
    }
    return h ? h : 1;
}

bool by_id(const trl_decision_t &a, const trl_decision_t &b) {
    return a.id < b.id;
}

// The bouncer's slot: its own, a free one, or the least recently pulled
// (then forgotten: *fresh).
Slot &slot_of(Root &r, uint64_t who, uint64_t now_ms, bool *fresh) {
    Slot *take = nullptr;
    for (Slot &s : r.slots) {
        if (s.who == who) {
            *fresh = false;
            return s;
        }
        if (take == nullptr
            || (take->who != 0 && (s.who == 0 || s.last_ms < take->last_ms)))
        {
            take = &s;
        }
    }
    *fresh = true;
    take->who = who;
    take->first_ms = now_ms;
    take->pulls = 0;
    take->count = 0;
    return *take;
}

bool usable(const Root *r, size_t size) {
    return r != nullptr && size >= sizeof(Root) && r->magic == kStreamMagic
           && r->version == kStreamVersion && r->size == sizeof(Root);
}

}  // namespace

extern "C" {

size_t trl_stream_size(void) noexcept { return sizeof(Root); }

trl_stream_t *trl_stream_create(void *mem, size_t size, char *err,
                                size_t errlen) noexcept {
    return trl::guard<trl_stream_t *>(nullptr, trl::ErrorOut{err, errlen},
                                      [&]() -> trl_stream_t * {
        if (mem == nullptr || size < sizeof(Root)) {
            trl::put_error(err, errlen, "no room for the decisions stream");
            return nullptr;
        }
        std::memset(mem, 0, sizeof(Root));
        Root *r = new (mem) Root();
        r->magic = kStreamMagic;
        r->version = kStreamVersion;
        r->size = sizeof(Root);
        return reinterpret_cast<trl_stream_t *>(r);
    });
}

trl_stream_t *trl_stream_attach(void *mem, size_t size, char *err,
                                size_t errlen) noexcept {
    return trl::guard<trl_stream_t *>(nullptr, trl::ErrorOut{err, errlen},
                                      [&]() -> trl_stream_t * {
        Root *r = static_cast<Root *>(mem);
        if (!usable(r, size)) {
            trl::put_error(err, errlen,
                           "the decisions stream's memory is of another "
                           "layout");
            return nullptr;
        }
        return reinterpret_cast<trl_stream_t *>(r);
    });
}

int trl_stream_pull(trl_stream_t *s, const void *who, size_t who_len,
                    int startup, trl_decision_t *cur, size_t ncur,
                    trl_decision_t *new_out, size_t *nnew,
                    trl_decision_t *del_out, size_t *ndel, size_t *held_back,
                    uint64_t now_ms) noexcept {
    *nnew = 0;
    *ndel = 0;
    *held_back = 0;
    return trl::guard(TRL_ERROR, [&] {
        Root &r = *reinterpret_cast<Root *>(s);

        std::sort(cur, cur + ncur, by_id);
        ncur = static_cast<size_t>(
            std::unique(cur, cur + ncur,
                        [](const trl_decision_t &a, const trl_decision_t &b) {
                            return a.id == b.id;
                        })
            - cur);

        std::vector<trl_decision_t> kept;
        kept.reserve(TRL_STREAM_MAX);

        Held held(r);
        bool fresh;
        Slot &slot = slot_of(r, fnv(who, who_len), now_ms, &fresh);
        if (startup || fresh) {
            slot.count = 0;
        }

        // what it holds and what is in force, both by id: gone ones are
        // deleted, kept ones stay (sent again if extended), others are new
        size_t i = 0, j = 0, nn = 0, nd = 0;
        std::vector<size_t> candidates;
        while (i < slot.count || j < ncur) {
            if (j == ncur || (i < slot.count && slot.sent[i].id < cur[j].id)) {
                del_out[nd++] = slot.sent[i++];
            } else if (i == slot.count || cur[j].id < slot.sent[i].id) {
                candidates.push_back(j++);
            } else {
                const trl_decision_t &was = slot.sent[i++];
                const trl_decision_t &now = cur[j++];
                bool longer = was.expires_ms != 0
                              && (now.expires_ms == 0
                                  || now.expires_ms > was.expires_ms + 1000);
                if (longer) {
                    new_out[nn++] = now;
                }
                kept.push_back(longer ? now : was);
            }
        }

        size_t room = TRL_STREAM_MAX - kept.size();
        for (size_t k = 0; k < candidates.size(); k++) {
            if (k >= room) {
                *held_back = candidates.size() - room;
                break;
            }
            new_out[nn++] = cur[candidates[k]];
            kept.push_back(cur[candidates[k]]);
        }

        std::sort(kept.begin(), kept.end(), by_id);
        std::copy(kept.begin(), kept.end(), slot.sent);
        slot.count = static_cast<uint32_t>(kept.size());
        slot.held_back = static_cast<uint32_t>(*held_back);
        slot.last_ms = now_ms;
        slot.pulls++;

        *nnew = nn;
        *ndel = nd;
        return TRL_OK;
    });
}

size_t trl_stream_bouncers(trl_stream_t *s, trl_stream_bouncer_t *out,
                           size_t max) noexcept {
    return trl::guard(size_t{0}, [&] {
        Root &r = *reinterpret_cast<Root *>(s);
        std::vector<trl_stream_bouncer_t> all;
        {
            Held held(r);
            for (const Slot &slot : r.slots) {
                if (slot.who == 0) {
                    continue;
                }
                all.push_back(trl_stream_bouncer_t{slot.who, slot.first_ms,
                                                   slot.last_ms, slot.pulls,
                                                   slot.count,
                                                   slot.held_back});
            }
        }
        std::sort(all.begin(), all.end(),
                  [](const trl_stream_bouncer_t &a,
                     const trl_stream_bouncer_t &b) {
                      return a.last_ms > b.last_ms;
                  });
        size_t n = std::min(max, all.size());
        std::copy(all.begin(), all.begin() + n, out);
        return n;
    });
}

}  // extern "C"
