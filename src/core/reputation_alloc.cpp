// reputation_alloc.cpp - the heap of the reputation table: a first-fit
// allocator whose free pieces form a list sorted by offset (each piece's
// header in the piece itself), coalesced on free; retired generations
// waiting out their grace; the tables being written outside the lock; and
// the repair after a writer died holding the lock.  Everything here runs
// under the table's lock.
#include <algorithm>
#include <cstring>
#include <vector>

#include "reputation_table.hpp"
#include "spinlock.hpp"

namespace trl {

namespace {

struct FreePiece {
    uint64_t size;
    uint64_t next;                  // offset of the next piece, 0: none
};

inline FreePiece *piece(RepRoot &r, uint64_t off) {
    return reinterpret_cast<FreePiece *>(rep_base(r) + off);
}

inline const FreePiece *piece(const RepRoot &r, uint64_t off) {
    return reinterpret_cast<const FreePiece *>(rep_base(r) + off);
}

// Readers holding memory about to be overwritten must look again.
void will_reuse(RepRoot &r) {
    r.reuse.fetch_add(1, std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_release);
}

}  // namespace

// Owned by a thread, not a process: installs run in a worker's threads.
RepHeld::RepHeld(RepRoot &r) : r_(r) {
    if (lock_owned_as(r_.lock, current_tid())) {
        heap_repair(r_);
    }
}

RepHeld::~RepHeld() { unlock_owned(r_.lock); }

uint64_t heap_alloc(RepRoot &r, uint64_t &size) {
    size = (size + kRepAlign - 1) & ~(kRepAlign - 1);
    uint64_t *link = &r.free_head;
    while (*link != 0) {
        FreePiece *p = piece(r, *link);
        if (p->size >= size) {
            uint64_t off = *link;
            if (p->size - size >= kRepAlign) {
                // the rest stays free, in the same place in the list
                uint64_t rest = off + size;
                FreePiece *q = piece(r, rest);
                q->size = p->size - size;
                q->next = p->next;
                *link = rest;
            } else {
                size = p->size;
                *link = p->next;
            }
            r.used += size;
            return off;
        }
        link = &p->next;
    }
    return 0;
}

void heap_free(RepRoot &r, uint64_t off, uint64_t size) {
    if (off == 0 || size == 0) {
        return;
    }
    will_reuse(r);
    uint64_t prev = 0, next = r.free_head;
    while (next != 0 && next < off) {
        prev = next;
        next = piece(r, next)->next;
    }
    FreePiece *p = piece(r, off);
    p->size = size;
    p->next = next;
    if (next != 0 && off + size == next) {
        p->size += piece(r, next)->size;
        p->next = piece(r, next)->next;
    }
    if (prev == 0) {
        r.free_head = off;
    } else if (prev + piece(r, prev)->size == off) {
        piece(r, prev)->size += p->size;
        piece(r, prev)->next = p->next;
    } else {
        piece(r, prev)->next = off;
    }
    r.used -= std::min(r.used, size);
}

uint64_t heap_largest(const RepRoot &r) {
    uint64_t largest = 0;
    for (uint64_t off = r.free_head; off != 0; off = piece(r, off)->next) {
        largest = std::max(largest, piece(r, off)->size);
    }
    return largest;
}

// The free list again from what is in use: the slots' generations and the
// retired ones (a generation being written when its writer died is lost,
// which is what is wanted).
void heap_repair(RepRoot &r) {
    struct Extent {
        uint64_t off, size;
    };
    std::vector<Extent> inuse;
    try {
        inuse.reserve(TRL_REP_MAX_LISTS + kRepMaxRetired);
    } catch (...) {
        return;                     // keep the list as it is
    }
    auto sane = [&](uint64_t off, uint64_t size) {
        return off >= r.heap_off && off < r.size && size != 0
               && size <= r.size - off;
    };
    for (RepSlot &s : r.slot) {
        uint64_t off = s.gen.load(std::memory_order_relaxed);
        if (off != 0 && sane(off, s.gen_size)) {
            inuse.push_back(Extent{off, s.gen_size});
        } else if (off != 0) {
            s.gen.store(0, std::memory_order_release);
            s.gen_size = 0;
        }
    }
    uint32_t kept = 0;
    r.retired_bytes = 0;
    for (uint32_t i = 0; i < r.nretired && i < kRepMaxRetired; i++) {
        RepRetired &t = r.retired[i];
        bool current = false;
        for (const Extent &e : inuse) {
            current = current || (t.off < e.off + e.size
                                  && e.off < t.off + t.size);
        }
        if (!current && sane(t.off, t.size)) {
            r.retired[kept++] = t;
            r.retired_bytes += t.size;
            inuse.push_back(Extent{t.off, t.size});
        }
    }
    r.nretired = kept;
    // tables still being written by a live writer stay theirs
    for (RepPending &w : r.pending) {
        if (w.off != 0 && sane(w.off, w.size) && !owner_gone(w.tid)) {
            inuse.push_back(Extent{w.off, w.size});
        } else {
            w = RepPending{};
        }
    }
    std::sort(inuse.begin(), inuse.end(),
              [](const Extent &a, const Extent &b) { return a.off < b.off; });

    will_reuse(r);
    r.free_head = 0;
    r.used = 0;
    uint64_t at = r.heap_off, *link = &r.free_head;
    auto gap = [&](uint64_t end) {
        if (end > at && end - at >= kRepAlign) {
            FreePiece *p = piece(r, at);
            p->size = end - at;
            p->next = 0;
            *link = at;
            link = &p->next;
        }
    };
    for (const Extent &e : inuse) {
        gap(e.off);
        at = std::max(at, e.off + e.size);
    }
    gap(r.size & ~(kRepAlign - 1));
    uint64_t free_bytes = 0;
    for (uint64_t off = r.free_head; off != 0; off = piece(r, off)->next) {
        free_bytes += piece(r, off)->size;
    }
    r.used = (r.size - r.heap_off) - std::min(r.size - r.heap_off,
                                              free_bytes);
}

void retire(RepRoot &r, uint64_t off, uint64_t size, uint64_t now_ms) {
    if (off == 0) {
        return;
    }
    if (r.nretired == kRepMaxRetired) {
        // no room to wait: the oldest is freed now (its readers, if any,
        // see the sequence move and look again)
        heap_free(r, r.retired[0].off, r.retired[0].size);
        r.retired_bytes -= std::min(r.retired_bytes, r.retired[0].size);
        std::memmove(&r.retired[0], &r.retired[1],
                     sizeof(RepRetired) * (kRepMaxRetired - 1));
        r.nretired--;
    }
    r.retired[r.nretired++] = RepRetired{off, size, now_ms};
    r.retired_bytes += size;
}

void reclaim(RepRoot &r, uint64_t now_ms) {
    uint32_t kept = 0;
    for (uint32_t i = 0; i < r.nretired; i++) {
        const RepRetired t = r.retired[i];
        // a clock set back by more than a minute does not hold memory
        bool due = now_ms >= t.at_ms + kRepGraceMs
                   || now_ms + 60000 < t.at_ms;
        if (due) {
            heap_free(r, t.off, t.size);
            r.retired_bytes -= std::min(r.retired_bytes, t.size);
        } else {
            r.retired[kept++] = t;
        }
    }
    r.nretired = kept;

    // the tables a dead writer was writing
    for (RepPending &w : r.pending) {
        if (w.off != 0 && owner_gone(w.tid)) {
            heap_free(r, w.off, w.size);
            w = RepPending{};
        }
    }
}

}  // namespace trl
