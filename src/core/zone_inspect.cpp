// zone_inspect.cpp - what token_ratelimit_api asks of a zone: its top
// offenders, the keys serving a penalty, and resetting a key.
#include <algorithm>
#include <cstring>

#include "zone.hpp"

namespace trl {

OffenderTable &Zone::offender_table() const {
    return *reinterpret_cast<OffenderTable *>(
        reinterpret_cast<char *>(r_) + r_->offenders_off);
}

void Zone::offend(const trl_hash_t &key, const void *text, size_t len,
                  uint64_t now_ms) {
    offenders_note(offender_table(), key, text, len, now_ms);
}

size_t Zone::offenders(trl_offender_t *out, size_t max, uint64_t now_ms) {
    return offenders_top(offender_table(), out, max, now_ms);
}

bool Zone::offender(const trl_hash_t &key, trl_offender_t &out) {
    return offenders_text(offender_table(), key, out);
}

// Scans every stripe (each under its lock, briefly): keys whose block has
// not ended yet, the max longest in out, all of them in *active.
size_t Zone::penalties(trl_penalty_info_t *out, size_t max, uint64_t now_ms,
                       uint64_t *active) {
    size_t n = 0;
    uint64_t found = 0;

    for (uint32_t si = 0; si < r_->nstripes; si++) {
        Stripe &s = stripe(si);
        Locked lock(*this, s);
        uint32_t first = first_entry(s);

        for (uint32_t j = 0; j < r_->per_stripe; j++) {
            const Entry &e = entry(first + j);
            trl_result_t res;
            std::memset(&res, 0, sizeof(res));
            if (!(e.flags & kInUse) || !serving_penalty(e, now_ms, res)) {
                continue;
            }
            found++;
            trl_penalty_info_t info{{e.h_lo, e.h_hi}, res.penalty_ms,
                                    res.violations};
            if (n < max) {
                out[n++] = info;
                continue;
            }
            // full: keep the longest blocks
            size_t low = 0;
            for (size_t k = 1; k < n; k++) {
                if (out[k].left_ms < out[low].left_ms) {
                    low = k;
                }
            }
            if (n > 0 && info.left_ms > out[low].left_ms) {
                out[low] = info;
            }
        }
    }

    std::sort(out, out + n,
              [](const trl_penalty_info_t &a, const trl_penalty_info_t &b) {
                  return a.left_ms > b.left_ms;
              });
    if (active != nullptr) {
        *active = found;
    }
    return n;
}

// The keys of the offender table (it knows their text) that serve a
// penalty, longest first: the table is copied first, so that no stripe
// lock is taken under its lock.
size_t Zone::named_penalties(trl_penalty_info_t *out, trl_offender_t *names,
                             size_t max, uint64_t now_ms) {
    trl_offender_t known[64];           // the table holds 16 or 64
    size_t nknown = offenders_all(offender_table(), known, 64);
    size_t n = 0;

    for (size_t k = 0; k < nknown && n < max; k++) {
        Stripe &s = stripe_of(known[k].key);
        Locked lock(*this, s);
        uint32_t i = find(s, known[k].key);
        trl_result_t res;
        std::memset(&res, 0, sizeof(res));
        if (i == kNil || !serving_penalty(entry(i), now_ms, res)) {
            continue;
        }
        out[n] = {known[k].key, res.penalty_ms, res.violations};
        names[n] = known[k];
        n++;
    }

    // longest first (a few dozen at most: insertion sort)
    for (size_t a = 1; a < n; a++) {
        for (size_t b = a; b > 0 && out[b].left_ms > out[b - 1].left_ms; b--) {
            std::swap(out[b], out[b - 1]);
            std::swap(names[b], names[b - 1]);
        }
    }
    return n;
}

int Zone::reset(const trl_hash_t &key) {
    offenders_forget(offender_table(), key);

    Stripe &s = stripe_of(key);
    Locked lock(*this, s);

    uint32_t i = find(s, key);
    if (i == kNil) {
        return 0;
    }

    chain_unlink(s, i);
    lru_unlink(s, i);
    Entry &e = entry(i);
    std::memset(&e, 0, sizeof(e));
    if (SyncState *ss = sync_of(i)) {
        std::memset(ss, 0, sizeof(*ss));
    }
    e.chain_next = s.free_head;
    s.free_head = i;
    s.used--;
    return 1;
}

}  // namespace trl
