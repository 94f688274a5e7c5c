// reputation_table.hpp - the reputation table's layout in shared memory:
// a root with one slot per list, then a heap of generations (see
// reputation_gen.cpp) managed by a first-fit allocator.
//
// Readers never lock.  A slot's current generation is an offset read with
// acquire; a writer (under the root's lock) writes a new generation into
// free memory, publishes its offset with release, and retires the old one:
// its memory is freed only after kGraceMs, and every free first bumps the
// root's reuse sequence.  A reader reads the sequence before and after a
// lookup and looks again when it changed (its generation may have been
// overwritten meanwhile); whatever it read, the lookup stays inside the
// block.  A table-wide sequence, not one in each generation: a freed
// generation's memory may be reused from any offset, its own header
// included, so no word of it stays put.
#ifndef TRL_REPUTATION_TABLE_HPP
#define TRL_REPUTATION_TABLE_HPP

#include <atomic>
#include <cstdint>
#include <string>

#include "reputation.hpp"

namespace trl {

constexpr uint64_t kRepGraceMs = 2000;
constexpr uint32_t kRepMaxRetired = 128;
constexpr uint64_t kRepAlign = 64;
constexpr uint32_t kRepMaxPending = 8;     // tables being written at once

struct RepSlot {
    std::atomic<uint64_t> gen;      // offset of the current generation (0)
    std::atomic<uint64_t> matched;  // trl_rep_count
    std::atomic<uint32_t> score;
    std::atomic<uint32_t> flags;    // TRL_REP_DRY_RUN, TRL_REP_FILE
    // the rest under the lock
    uint32_t in_use;
    uint32_t unpublished;
    uint64_t gen_size;              // bytes allocated to gen
    char name[TRL_REP_NAME_LEN];
    uint64_t version;
    uint64_t checksum;
    uint64_t ranges4;
    uint64_t ranges6;
    uint64_t entries;
    uint64_t bytes;
    uint64_t dropped_trusted;
    uint64_t dropped_wide;
    char example[128];
    uint64_t loaded_ms;
    uint64_t load_ms;
    char origin[8];
    char error[256];
    uint64_t error_ms;
    uint64_t redis_version;
    uint64_t redis_checksum;
    trl_rep_file_id_t file;
    uint32_t file_known;
    uint32_t reserved;
};

struct RepRetired {
    uint64_t off;
    uint64_t size;
    uint64_t at_ms;
};

// A table allocated and being written outside the lock (rep_install): the
// heap keeps it while its writer lives; a writer that died leaves it to
// reclaim.
struct RepPending {
    uint64_t off;                   // 0: a free entry
    uint64_t size;
    uint32_t tid;                   // the writer
    uint32_t reserved;
};

struct RepRoot {
    uint64_t magic;
    uint32_t version;
    uint32_t nlists;                // declared
    uint64_t size;                  // of the block
    std::atomic<uint32_t> lock;     // owner's pid, 0 when free
    uint32_t nretired;
    std::atomic<uint64_t> populated;  // slots with a generation
    std::atomic<uint64_t> reuse;    // bumped before freed memory is reused
    uint64_t heap_off;              // the heap: [heap_off, size)
    uint64_t free_head;             // first free piece (by offset), 0: none
    uint64_t used;                  // bytes allocated
    uint64_t retired_bytes;
    uint64_t due_ms[2];             // trl_rep_due's channels
    RepRetired retired[kRepMaxRetired];
    RepPending pending[kRepMaxPending];
    RepSlot slot[TRL_REP_MAX_LISTS];
};

inline uint8_t *rep_base(RepRoot &r) { return reinterpret_cast<uint8_t *>(&r); }
inline const uint8_t *rep_base(const RepRoot &r) {
    return reinterpret_cast<const uint8_t *>(&r);
}

// The lock; a take-over from a dead owner rebuilds the allocator's state
// from the slots (what it may have left half-written).
class RepHeld {
  public:
    explicit RepHeld(RepRoot &r);
    ~RepHeld();
    RepHeld(const RepHeld &) = delete;
    RepHeld &operator=(const RepHeld &) = delete;

  private:
    RepRoot &r_;
};

// reputation_alloc.cpp, under the lock.  alloc returns an offset and sets
// size to what was taken (>= size asked), or 0 when nothing fits.
uint64_t heap_alloc(RepRoot &r, uint64_t &size);
void heap_free(RepRoot &r, uint64_t off, uint64_t size);
uint64_t heap_largest(const RepRoot &r);
void heap_repair(RepRoot &r);
void retire(RepRoot &r, uint64_t off, uint64_t size, uint64_t now_ms);
void reclaim(RepRoot &r, uint64_t now_ms);

// reputation_table.cpp
RepRoot *rep_create(void *mem, size_t size, std::string &why);
RepRoot *rep_attach(void *mem, size_t size, std::string &why);
bool rep_configure(RepRoot &r, const trl_rep_decl_t *decl, size_t n,
                   int *slots, uint64_t now_ms, std::string &why);
bool rep_install(RepRoot &r, int slot, const Build &b, uint64_t version,
                 const char *origin, unsigned flags, uint64_t now_ms,
                 std::string &why);
bool rep_extract(RepRoot &r, int slot, Build &b);

// reputation_lookup.cpp
int rep_lookup(const RepRoot &r, uint64_t want, int family,
               const uint8_t *addr, trl_rep_match_t &m);

}  // namespace trl

#endif
