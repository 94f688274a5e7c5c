// grammar.hpp - the values that nginx.conf and policy files share, parsed
// once: a penalty's factor, a warning threshold, a penalty's parts and its
// defaults, the count and sync modes.  The directives (token_ratelimit
// penalty=, warn=, count=; token_ratelimit_zone sync=) and the YAML loader
// call these, so they accept the same texts and say the same things about
// the others.  (Rates: rate.hpp; durations and sizes:
// policy.hpp.)
#ifndef TRL_GRAMMAR_HPP
#define TRL_GRAMMAR_HPP

#include <cstddef>
#include <cstdint>
#include <string>

#include "trl_core.h"

namespace trl {

constexpr double kPenaltyFactorDefault = 2.0;
constexpr double kPenaltyFactorMax = 1000;
constexpr uint64_t kPenaltyMaxDefaultMs = 3600 * 1000;

// A factor: digits with an optional fraction ("2", "1.5"), 1 to 1000.
bool parse_factor(const char *text, size_t len, double &f, std::string &why);

// A warning threshold: "P%" (1% to 100% of N), a count N >= 1 (checked
// against the rate by the caller: a count above any N is kept as
// UINT32_MAX), or "off".
struct Warn {
    bool off = false;
    bool percent = false;
    uint32_t value = 0;
};

bool parse_warn(const char *text, size_t len, Warn &w, std::string &why);

// A duration of a penalty's part: parse_duration's grammar, above 0.
bool parse_penalty_time(const char *text, size_t len, uint64_t &ms,
                        std::string &why);

// The defaults and the check of a penalty whose base (and maybe factor,
// max, forgive) is set: factor 2, max 1h or the base if larger, forgive
// the max.  max_given: a max below the base is then an error.
bool finish_penalty(trl_penalty_t &p, bool factor_given, bool max_given,
                    bool forgive_given, std::string &why);

// The directive's compact form: BASE[:FACTOR[:MAX[:FORGIVE]]].
bool parse_penalty(const char *text, size_t len, trl_penalty_t &p,
                   std::string &why);

// An auto-ban: COUNT:DURATION, or off.
bool parse_ban(const char *text, size_t len, trl_ban_t &b, std::string &why);

// The keywords of the modes, any case: all, failed or succeeded
// (TRL_COUNT_*); off, async or strict (TRL_SYNC_MODE_*).
bool parse_count(const char *text, size_t len, uint32_t &mode,
                 std::string &why);
bool parse_sync(const char *text, size_t len, uint32_t &mode,
                std::string &why);

// A zone's error log budget, 1..TRL_EVENT_MAX_RATE or off
// (TRL_LOG_RATE_OFF), and how logs show its keys: on, off, hash, mask
// (TRL_LOG_KEY_*, any case).
bool parse_log_rate(const char *text, size_t len, uint32_t &rate,
                    std::string &why);
bool parse_log_key(const char *text, size_t len, uint32_t &mode,
                   std::string &why);

}  // namespace trl

#endif
