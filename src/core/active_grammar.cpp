// active_grammar.cpp - the grammar of active zones (trl_active.h): the
// zone option active[=MAX] and its policy-file twin "active:", and the
// lifetime an upstream answers with (an integer of seconds, as OAuth's
// expires_in, or a duration).
#include <algorithm>
#include <string>

#include "guard.hpp"
#include "policy.hpp"
#include "trl_active.h"

namespace trl {

bool parse_active(const char *text, size_t len, uint64_t &max_ms,
                  std::string &why) {
    const char kForm[] = "expected on (the longest lifetime is the rate's "
                         "window) or the longest lifetime of a token, 1s to "
                         "365d, of unit ms, s, m, h or d (e.g. 24h)";
    std::string s(text, len);
    if (s == "on") {
        max_ms = 0;
        return true;
    }
    std::string reason;
    if (!parse_duration(text, len, max_ms, reason)) {
        why = reason + "; " + kForm;
        return false;
    }
    if (max_ms < 1000) {
        why = std::string("the longest lifetime must be at least 1s; ")
              + kForm;
        return false;
    }
    return true;
}

// Digits only: seconds (more than 365d is 365d: MAX caps it anyway); else
// a duration.
bool parse_lifetime(const char *text, size_t len, uint64_t &ms) {
    constexpr uint64_t kMaxSeconds = kDurationMaxMs / 1000;
    if (len == 0) {
        return false;
    }
    uint64_t s = 0;
    size_t i = 0;
    for (; i < len && text[i] >= '0' && text[i] <= '9'; i++) {
        s = std::min(s * 10 + static_cast<uint64_t>(text[i] - '0'),
                     kMaxSeconds);
    }
    if (i == len) {
        ms = s * 1000;
        return true;
    }
    std::string why;
    return parse_duration(text, len, ms, why);
}

}  // namespace trl

extern "C" {

int trl_active_parse(const char *text, size_t len, uint64_t *max_ms,
                     char *err, size_t errlen) noexcept {
    return trl::guard(TRL_ERROR, trl::ErrorOut{err, errlen, "parsing"}, [&] {
        std::string why;
        if (text == nullptr || max_ms == nullptr
            || !trl::parse_active(text, len, *max_ms, why)) {
            trl::put_error(err, errlen, why);
            return TRL_ERROR;
        }
        return TRL_OK;
    });
}

int trl_active_lifetime(const char *text, size_t len,
                        uint64_t *ms) noexcept {
    return trl::guard(TRL_ERROR, [&] {
        return text != nullptr && ms != nullptr
                       && trl::parse_lifetime(text, len, *ms)
                   ? TRL_OK
                   : TRL_ERROR;
    });
}

}  // extern "C"
