// offenders.hpp - a zone's top offenders: the keys rejected most often
// lately, with their text (the zone itself keeps only hashes).
//
// A small table (space-saving): a rejected key already in it scores one
// more; a new one takes the place of the lowest score and starts above
// it.  Scores halve every minute, so "lately" means the last few minutes.
// Updates take a try-lock and are skipped when another process holds it:
// the reject path never waits for statistics.
#ifndef TRL_OFFENDERS_HPP
#define TRL_OFFENDERS_HPP

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "trl_core.h"

namespace trl {

constexpr size_t kOffenderText = 62;

struct Offender {                   // 112 bytes
    uint64_t h_lo, h_hi;
    uint64_t score;                 // rejections, halved every minute
    uint64_t total;                 // rejections since it entered
    uint64_t first_ms, last_ms;
    uint8_t len;                    // of text; 0: slot free
    uint8_t truncated;
    char text[kOffenderText];
};
static_assert(sizeof(Offender) == 112, "offender layout");

struct OffenderTable {
    std::atomic<uint32_t> lock;     // owner's pid, 0 when free
    uint32_t capacity;
    uint64_t decayed_ms;            // when scores were last halved
    // Offender slot[capacity] follows
};

size_t offenders_size(uint32_t capacity);
void offenders_init(OffenderTable &t, uint32_t capacity);

void offenders_note(OffenderTable &t, const trl_hash_t &key, const void *text,
                    size_t len, uint64_t now_ms);

// Copies up to max entries, highest score first; returns how many.
size_t offenders_top(OffenderTable &t, trl_offender_t *out, size_t max,
                     uint64_t now_ms);

// Copies up to max of the keys the table holds, whatever their score.
size_t offenders_all(OffenderTable &t, trl_offender_t *out, size_t max);

// The text of a key if the table holds it.
bool offenders_text(OffenderTable &t, const trl_hash_t &key,
                    trl_offender_t &out);

void offenders_forget(OffenderTable &t, const trl_hash_t &key);

}  // namespace trl

#endif
