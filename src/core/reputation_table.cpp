// reputation_table.cpp - the reputation table's writers (see
// reputation_table.hpp): laying it out, declaring the lists of a
// configuration, installing a list's new generation, reading one back.
#include <cstdio>
#include <cstring>
#include <new>
#include <vector>

#include "reputation_table.hpp"
#include "spinlock.hpp"
#include "reputation_terms.hpp"

namespace trl {

namespace {

constexpr uint64_t kRepMagic = UINT64_C(0x54524c5245505554);  // "TRLREPUT"
constexpr uint32_t kRepVersion = 2;   // 2: pending tables
constexpr uint64_t kRepMinHeap = 64 * 1024;

uint64_t heap_start() {
    return (sizeof(RepRoot) + kRepAlign - 1) & ~(kRepAlign - 1);
}

void copy_str(char *dst, size_t cap, const char *src, size_t len) {
    size_t n = len < cap - 1 ? len : cap - 1;
    std::memcpy(dst, src, n);
    dst[n] = '\0';
}

void clear_slot(RepSlot &s) {
    s.gen.store(0, std::memory_order_release);
    s.matched.store(0, std::memory_order_relaxed);
    s.score.store(0, std::memory_order_relaxed);
    s.flags.store(0, std::memory_order_relaxed);
    // the plain fields after the atomics
    std::memset(&s.in_use, 0,
                sizeof(RepSlot) - offsetof(RepSlot, in_use));
}

}  // namespace

RepRoot *rep_create(void *mem, size_t size, std::string &why) {
    if (mem == nullptr || (reinterpret_cast<uintptr_t>(mem) & 7) != 0
        || size < heap_start() + kRepMinHeap) {
        why = "the reputation zone is too small: " + std::to_string(size)
              + " bytes, at least "
              + std::to_string(heap_start() + kRepMinHeap) + " needed";
        return nullptr;
    }
    std::memset(mem, 0, heap_start());
    RepRoot *r = new (mem) RepRoot();
    r->version = kRepVersion;
    r->size = size;
    r->heap_off = heap_start();
    heap_repair(*r);                        // the whole heap is free
    __atomic_store_n(&r->magic, kRepMagic, __ATOMIC_RELEASE);
    return r;
}

RepRoot *rep_attach(void *mem, size_t size, std::string &why) {
    RepRoot *r = static_cast<RepRoot *>(mem);
    if (mem == nullptr || (size != 0 && size < sizeof(RepRoot))) {
        why = "the reputation zone is missing or too small";
        return nullptr;
    }
    if (__atomic_load_n(&r->magic, __ATOMIC_ACQUIRE) != kRepMagic) {
        why = "the block holds no reputation table";
        return nullptr;
    }
    if (r->version != kRepVersion) {
        why = "the reputation table was laid out by another version of the "
              "module (layout " + std::to_string(r->version)
              + ", this one reads " + std::to_string(kRepVersion) + ")";
        return nullptr;
    }
    if (size != 0 && r->size != size) {
        why = "the reputation table is " + std::to_string(r->size)
              + " bytes, the block " + std::to_string(size);
        return nullptr;
    }
    return r;
}

bool rep_configure(RepRoot &r, const trl_rep_decl_t *decl, size_t n,
                   int *slots, uint64_t now_ms, std::string &why) {
    if (n > TRL_REP_MAX_LISTS) {
        why = std::to_string(n) + " reputation lists, at most "
              + std::to_string(TRL_REP_MAX_LISTS);
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        size_t len = strnlen(decl[i].name, TRL_REP_NAME_LEN);
        if (!name_check(decl[i].name, len, why)) {
            return false;
        }
        if (decl[i].score > TRL_REP_MAX_SCORE) {
            why = "the score of \"" + std::string(decl[i].name, len)
                  + "\" is " + std::to_string(decl[i].score)
                  + ", at most 100";
            return false;
        }
        for (size_t j = 0; j < i; j++) {
            if (std::strncmp(decl[i].name, decl[j].name, TRL_REP_NAME_LEN)
                == 0) {
                why = "the reputation list \"" + std::string(decl[i].name,
                                                             len)
                      + "\" is declared twice";
                return false;
            }
        }
    }

    RepHeld held(r);
    int kept[TRL_REP_MAX_LISTS];
    for (size_t i = 0; i < n; i++) {
        kept[i] = -1;
        for (int s = 0; s < TRL_REP_MAX_LISTS; s++) {
            if (r.slot[s].in_use
                && std::strncmp(r.slot[s].name, decl[i].name,
                                TRL_REP_NAME_LEN) == 0) {
                kept[i] = s;
            }
        }
    }
    // the lists no longer declared go, their tables retired
    for (int s = 0; s < TRL_REP_MAX_LISTS; s++) {
        bool declared = false;
        for (size_t i = 0; i < n; i++) {
            declared = declared || kept[i] == s;
        }
        RepSlot &slot = r.slot[s];
        if (slot.in_use && !declared) {
            r.populated.fetch_and(~(UINT64_C(1) << s),
                                  std::memory_order_release);
            uint64_t off = slot.gen.exchange(0, std::memory_order_acq_rel);
            retire(r, off, slot.gen_size, now_ms);
            clear_slot(slot);
        }
    }
    for (size_t i = 0; i < n; i++) {
        int s = kept[i];
        if (s < 0) {
            for (s = 0; s < TRL_REP_MAX_LISTS && r.slot[s].in_use; s++) {
            }
            RepSlot &slot = r.slot[s];
            clear_slot(slot);
            slot.in_use = 1;
            copy_str(slot.name, sizeof(slot.name), decl[i].name,
                     strnlen(decl[i].name, TRL_REP_NAME_LEN));
        }
        r.slot[s].score.store(decl[i].score, std::memory_order_relaxed);
        r.slot[s].flags.store(decl[i].flags, std::memory_order_relaxed);
        if (slots != nullptr) {
            slots[i] = s;
        }
    }
    r.nlists = static_cast<uint32_t>(n);
    return true;
}

namespace {

std::string zone_full(const RepRoot &r, const RepSlot &s, uint64_t need) {
    char text[256];
    uint64_t heap = r.size - r.heap_off;
    std::snprintf(text, sizeof(text),
                  "the reputation zone is full: the list \"%s\" "
                  "needs %llu bytes, %llu are free (at most %llu "
                  "in one piece, %llu more once retired tables "
                  "are freed)",
                  s.name, static_cast<unsigned long long>(need),
                  static_cast<unsigned long long>(
                      heap - r.used - r.retired_bytes),
                  static_cast<unsigned long long>(heap_largest(r)),
                  static_cast<unsigned long long>(r.retired_bytes));
    return text;
}

}  // namespace

bool rep_install(RepRoot &r, int slot, const Build &b, uint64_t version,
                 const char *origin, unsigned flags, uint64_t now_ms,
                 std::string &why) {
    if (slot < 0 || slot >= TRL_REP_MAX_LISTS) {
        why = "no reputation list in slot " + std::to_string(slot);
        return false;
    }
    uint64_t need = gen_bytes(b);
    uint64_t off = 0, size = need;
    RepPending *pending = nullptr;

    // The table is allocated under the lock, written outside it (readers
    // cannot reach it yet; 16 ms for 1M ranges, which no worker's event
    // loop asking the table for something else should wait), and swapped
    // in under the lock.  Without a free pending entry it is allocated and
    // written under the lock of the swap.
    if (need != 0) {
        RepHeld held(r);
        if (!r.slot[slot].in_use) {
            why = "no reputation list in slot " + std::to_string(slot);
            return false;
        }
        reclaim(r, now_ms);
        for (RepPending &w : r.pending) {
            if (w.off == 0) {
                pending = &w;
                break;
            }
        }
        if (pending != nullptr) {
            off = heap_alloc(r, size);
            if (off == 0) {
                why = zone_full(r, r.slot[slot], need);
                return false;
            }
            *pending = RepPending{off, size, current_tid(), 0};
        }
    }
    if (pending != nullptr) {
        gen_write(b, rep_base(r) + off, size);
    }

    RepHeld held(r);
    if (pending != nullptr) {
        if (pending->off != off || pending->tid != current_tid()) {
            // taken for a dead writer's: lost
            why = "the reputation table was repaired while the list was "
                  "written; load it again";
            return false;
        }
        *pending = RepPending{};
    }
    RepSlot &s = r.slot[slot];
    if (!s.in_use) {
        if (pending != nullptr) {
            heap_free(r, off, size);
        }
        why = "no reputation list in slot " + std::to_string(slot);
        return false;
    }
    if (pending == nullptr) {
        reclaim(r, now_ms);
        if (need != 0) {
            off = heap_alloc(r, size);
            if (off == 0) {
                why = zone_full(r, s, need);
                return false;
            }
            gen_write(b, rep_base(r) + off, size);
        }
    }

    uint64_t old = s.gen.load(std::memory_order_relaxed);
    uint64_t old_size = s.gen_size;
    s.gen_size = size;
    s.gen.store(off, std::memory_order_release);
    if (off != 0) {
        r.populated.fetch_or(UINT64_C(1) << slot, std::memory_order_release);
    } else {
        r.populated.fetch_and(~(UINT64_C(1) << slot),
                              std::memory_order_release);
    }
    retire(r, old, old_size, now_ms);

    s.version = version != 0 ? version : s.version + 1;
    s.checksum = b.checksum;
    s.ranges4 = b.v4.size();
    s.ranges6 = b.v6.size();
    s.entries = b.entries;
    s.bytes = size;
    s.dropped_trusted = b.dropped_trusted;
    s.dropped_wide = b.dropped_wide;
    copy_str(s.example, sizeof(s.example), b.example.data(),
             b.example.size());
    s.loaded_ms = now_ms;
    const char *o = origin != nullptr ? origin : "";
    copy_str(s.origin, sizeof(s.origin), o, std::strlen(o));
    s.unpublished = (flags & TRL_REP_UNPUBLISHED) ? 1 : 0;
    s.error[0] = '\0';
    s.error_ms = 0;
    return true;
}

bool rep_extract(RepRoot &r, int slot, Build &b) {
    if (slot < 0 || slot >= TRL_REP_MAX_LISTS) {
        return false;
    }

    // The table is copied outside the lock (about 5 ms for 1M ranges,
    // which the event loops asking the table for anything else should not
    // wait): it cannot change, and its memory is reused only after the
    // grace, which the reuse counter tells.  Reused meanwhile: again; the
    // third time, under the lock.
    for (int attempt = 0;; attempt++) {
        std::vector<uint8_t> copy;
        uint64_t off, size, seq;
        {
            RepHeld held(r);
            RepSlot &s = r.slot[slot];
            if (!s.in_use || s.version == 0) {
                return false;
            }
            off = s.gen.load(std::memory_order_relaxed);
            size = s.gen_size;
            // any free from here on moves it
            seq = r.reuse.load(std::memory_order_acquire);
            b.entries = s.entries;
            b.dropped_trusted = s.dropped_trusted;
            b.dropped_wide = s.dropped_wide;
            b.example = s.example;
            if (off != 0 && attempt == 2) {
                gen_read(rep_base(r) + off, size, b);
                break;
            }
        }
        if (off == 0) {
            break;
        }
        if (off < r.heap_off || off >= r.size || size > r.size - off) {
            return false;
        }
        const uint8_t *gen = rep_base(r) + off;
        copy.assign(gen, gen + size);
        std::atomic_thread_fence(std::memory_order_acquire);
        if (r.reuse.load(std::memory_order_relaxed) == seq) {
            gen_read(copy.data(), size, b);
            break;
        }
    }
    b.checksum = build_checksum(b);
    return true;
}

}  // namespace trl
