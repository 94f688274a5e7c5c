// zone_events.cpp - line budgets: at most N lines a second per zone, per
// log (the event log, the limiter's error log lines), whatever process
// writes them.
//
// One word holds the second being counted and the lines permitted in it
// (second << 24 | count), changed only by compare-and-swap, so that two
// processes can never both take the last place of a second; a second word
// counts the lines refused since a line was last permitted, and the next
// permitted line takes that count (an exchange with 0), so that every
// refused line is reported exactly once.  A third word counts every line
// refused, for the statistics.
#include <cstddef>

#include "trl_core.h"
#include "guard.hpp"
#include "zone.hpp"

namespace trl {
namespace {

constexpr unsigned kCountBits = 24;
constexpr uint64_t kCountMask = (UINT64_C(1) << kCountBits) - 1;
constexpr uint64_t kSetBack = 2;    // seconds: a clock behind by more was
                                    // set back, not merely late

static_assert(TRL_EVENT_MAX_RATE <= kCountMask, "event count bits");
static_assert(sizeof(LineBudget) == 16, "line budget layout");
static_assert(offsetof(Root, lines) == 200
                  && offsetof(Root, lines_refused) == 232
                  && offsetof(Root, active_max_ms) == 248,
              "the event log's words where they were, the others in the "
              "old reserved words");

}  // namespace

bool Zone::line_permit(int log, uint64_t now_ms, uint32_t per_second,
                       uint64_t &suppressed) {
    LineBudget &b = r_->lines[log];
    uint64_t now_s = now_ms / 1000;
    uint64_t cur = b.window.load(std::memory_order_relaxed);

    suppressed = 0;

    for (;;) {
        uint64_t second = cur >> kCountBits;
        uint64_t count = cur & kCountMask;
        uint64_t next;

        if (now_s > second || second - now_s > kSetBack) {
            if (per_second == 0) {
                break;
            }
            next = (now_s << kCountBits) | 1;          // a new second

        } else if (now_s == second && count < per_second) {
            next = cur + 1;

        } else {
            break;              // this second is spent, or already past
        }

        if (b.window.compare_exchange_weak(cur, next,
                                           std::memory_order_acq_rel,
                                           std::memory_order_relaxed)) {
            suppressed = b.pending.exchange(0, std::memory_order_acq_rel);
            return true;
        }
        // cur was reloaded: another process moved first
    }

    b.pending.fetch_add(1, std::memory_order_acq_rel);
    r_->lines_refused[log].fetch_add(1, std::memory_order_relaxed);
    return false;
}

uint64_t Zone::lines_refused(int log) const {
    return r_->lines_refused[log].load(std::memory_order_relaxed);
}

}  // namespace trl

extern "C" int trl_zone_lines_permit(trl_zone_t *zone, int log,
                                     uint64_t now_ms, uint32_t per_second,
                                     uint64_t *suppressed) noexcept {
    uint64_t ignored = 0;

    if (suppressed) {
        *suppressed = 0;
    }
    return trl::guard(0, [&] {
        if (zone == nullptr || log < 0 || log >= TRL_LINES_LOGS) {
            return 0;
        }
        uint32_t rate = per_second > TRL_EVENT_MAX_RATE ? TRL_EVENT_MAX_RATE
                                                        : per_second;
        trl::Zone z(reinterpret_cast<trl::Root *>(zone));
        bool ok = z.line_permit(log, now_ms, rate,
                                suppressed ? *suppressed : ignored);
        return ok ? 1 : 0;
    });
}

extern "C" int trl_zone_event_permit(trl_zone_t *zone, uint64_t now_ms,
                                     uint32_t per_second,
                                     uint64_t *suppressed) noexcept {
    return trl_zone_lines_permit(zone, TRL_LINES_EVENTS, now_ms, per_second,
                                 suppressed);
}

extern "C" uint64_t trl_zone_lines_suppressed(const trl_zone_t *zone,
                                              int log) noexcept {
    return trl::guard(uint64_t{0}, [&] {
        if (zone == nullptr || log < 0 || log >= TRL_LINES_LOGS) {
            return uint64_t{0};
        }
        trl::Zone z(reinterpret_cast<trl::Root *>(
            const_cast<trl_zone_t *>(zone)));
        return z.lines_refused(log);
    });
}
