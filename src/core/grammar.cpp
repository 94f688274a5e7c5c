// grammar.cpp - values shared by nginx.conf and policy files (see
// grammar.hpp).
#include "grammar.hpp"

#include <cctype>
#include <cstring>

#include "policy.hpp"
#include "trl_zone.h"

namespace trl {
namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }

const char kPenaltyForm[] =
    "a penalty is BASE[:FACTOR[:MAX[:FORGIVE]]] such as 30s:2:1h:24h, "
    "with times of unit ms, s, m, h or d above 0, a factor of 1 to 1000 "
    "(e.g. 2 or 1.5), MAX not below BASE";

struct Keyword {
    const char *word;
    uint32_t value;
};

// One of words, in any case (nginx's own enums compare so).
template <size_t N>
bool parse_keyword(const char *text, size_t len, const Keyword (&words)[N],
                   uint32_t &value, const char *expected, std::string &why) {
    for (const Keyword &k : words) {
        size_t n = std::strlen(k.word);
        bool same = n == len;
        for (size_t i = 0; same && i < n; i++) {
            same = std::tolower(static_cast<unsigned char>(text[i]))
                   == k.word[i];
        }
        if (same) {
            value = k.value;
            return true;
        }
    }
    why = expected;
    return false;
}

}  // namespace

bool parse_count(const char *text, size_t len, uint32_t &mode,
                 std::string &why) {
    static const Keyword kModes[] = {{"all", TRL_COUNT_ALL},
                                     {"failed", TRL_COUNT_FAILED},
                                     {"succeeded", TRL_COUNT_SUCCEEDED}};
    return parse_keyword(text, len, kModes, mode,
                         "expected all, failed or succeeded", why);
}

bool parse_sync(const char *text, size_t len, uint32_t &mode,
                std::string &why) {
    static const Keyword kModes[] = {{"off", TRL_SYNC_MODE_OFF},
                                     {"async", TRL_SYNC_MODE_ASYNC},
                                     {"strict", TRL_SYNC_MODE_STRICT}};
    return parse_keyword(text, len, kModes, mode,
                         "expected off, async or strict", why);
}

bool parse_log_key(const char *text, size_t len, uint32_t &mode,
                   std::string &why) {
    static const Keyword kModes[] = {{"on", TRL_LOG_KEY_ON},
                                     {"off", TRL_LOG_KEY_OFF},
                                     {"hash", TRL_LOG_KEY_HASH},
                                     {"mask", TRL_LOG_KEY_MASK}};
    return parse_keyword(text, len, kModes, mode,
                         "expected on, off, hash or mask", why);
}

bool parse_log_rate(const char *text, size_t len, uint32_t &rate,
                    std::string &why) {
    static const Keyword kOff[] = {{"off", TRL_LOG_RATE_OFF}};
    static const std::string kExpected =
        "expected the error log lines a second per zone, 1 to "
        + std::to_string(TRL_EVENT_MAX_RATE) + ", or off";
    std::string unused;
    if (parse_keyword(text, len, kOff, rate, "", unused)) {
        return true;
    }
    uint64_t n = 0;
    size_t i = 0;
    for (; i < len && is_digit(text[i]) && n <= TRL_EVENT_MAX_RATE; i++) {
        n = n * 10 + static_cast<uint64_t>(text[i] - '0');
    }
    if (len == 0 || i != len || n < 1 || n > TRL_EVENT_MAX_RATE) {
        why = kExpected;
        return false;
    }
    rate = static_cast<uint32_t>(n);
    return true;
}

bool parse_factor(const char *text, size_t len, double &f,
                  std::string &why) {
    const char *p = text;
    const char *end = text + len;
    uint64_t mantissa = 0;
    int digits = 0;
    int fraction = 0;
    bool whole = false;
    bool dot = false;
    bool big = false;
    for (; p < end; p++) {
        if (*p == '.' && !dot && whole) {
            dot = true;
            continue;
        }
        if (!is_digit(*p)) {
            break;
        }
        whole = true;
        if (digits < 18) {
            mantissa = mantissa * 10 + static_cast<uint64_t>(*p - '0');
            digits += mantissa != 0;
            fraction += dot;
        } else if (!dot) {
            big = true;
        }
    }
    if (p != end || !whole || text[len - 1] == '.') {
        why = "expected a number of at least 1 (e.g. 2 or 1.5)";
        return false;
    }
    double v = static_cast<double>(mantissa);
    for (int i = 0; i < fraction; i++) {
        v /= 10;
    }
    if (v < 1) {
        why = "the factor must be at least 1";
        return false;
    }
    if (big || v > kPenaltyFactorMax) {
        why = "the factor must be at most 1000";
        return false;
    }
    f = v;
    return true;
}

bool parse_warn(const char *text, size_t len, Warn &w, std::string &why) {
    const char kExpected[] =
        "expected a percentage of the rate's N (1% to 100%), a number of "
        "requests (1 to N) or off, such as 80% or 8";
    w = Warn();
    if (len == 3 && text[0] == 'o' && text[1] == 'f' && text[2] == 'f') {
        w.off = true;
        return true;
    }
    bool percent = len > 1 && text[len - 1] == '%';
    size_t digits = percent ? len - 1 : len;
    if (digits == 0) {
        why = kExpected;
        return false;
    }
    uint64_t n = 0;
    for (size_t i = 0; i < digits; i++) {
        if (!is_digit(text[i])) {
            why = kExpected;
            return false;
        }
        n = n > UINT32_MAX ? n : n * 10 + static_cast<uint64_t>(text[i] - '0');
    }
    if (n < 1 || (percent && n > 100)) {
        why = kExpected;
        return false;
    }
    w.percent = percent;
    w.value = n > UINT32_MAX ? UINT32_MAX : static_cast<uint32_t>(n);
    return true;
}

bool parse_penalty_time(const char *text, size_t len, uint64_t &ms,
                        std::string &why) {
    if (!parse_duration(text, len, ms, why)) {
        return false;
    }
    if (ms == 0) {
        why = "expected a duration above 0";
        return false;
    }
    return true;
}

bool parse_ban(const char *text, size_t len, trl_ban_t &b, std::string &why) {
    static const char kForm[] =
        "a ban is COUNT:DURATION such as 3:24h (the COUNT-th penalty in a "
        "row bans the address for DURATION), COUNT 1 to 1000, DURATION of "
        "unit ms, s, m, h or d above 0; or off";
    b = trl_ban_t();
    if (len == 3 && std::strncmp(text, "off", 3) == 0) {
        return true;
    }
    const char *colon =
        static_cast<const char *>(std::memchr(text, ':', len));
    if (colon == nullptr || colon == text) {
        why = kForm;
        return false;
    }
    uint64_t count = 0;
    for (const char *p = text; p < colon; p++) {
        if (!is_digit(*p) || count > TRL_BAN_MAX_COUNT) {
            why = "COUNT \"" + std::string(text, colon) + "\" is not a "
                  "number of 1 to 1000; " + kForm;
            return false;
        }
        count = count * 10 + static_cast<uint64_t>(*p - '0');
    }
    if (count == 0 || count > TRL_BAN_MAX_COUNT) {
        why = "COUNT \"" + std::string(text, colon) + "\" is not a "
              "number of 1 to 1000; " + kForm;
        return false;
    }
    std::string reason;
    size_t dlen = static_cast<size_t>(text + len - colon - 1);
    if (!parse_penalty_time(colon + 1, dlen, b.duration_ms, reason)) {
        why = "DURATION \"" + std::string(colon + 1, dlen) + "\": " + reason
              + "; " + kForm;
        b = trl_ban_t();
        return false;
    }
    b.count = static_cast<uint32_t>(count);
    return true;
}

bool finish_penalty(trl_penalty_t &p, bool factor_given, bool max_given,
                    bool forgive_given, std::string &why) {
    if (!factor_given) {
        p.factor = kPenaltyFactorDefault;
    }
    if (!max_given) {
        p.max_ms = p.base_ms > kPenaltyMaxDefaultMs ? p.base_ms
                                                    : kPenaltyMaxDefaultMs;
    } else if (p.max_ms < p.base_ms) {
        why = "MAX is below BASE; expected MAX >= BASE";
        return false;
    }
    if (!forgive_given) {
        p.forgive_ms = p.max_ms;
    }
    return true;
}

bool parse_penalty(const char *text, size_t len, trl_penalty_t &p,
                   std::string &why) {
    const char *part = text;
    const char *end = text + len;
    bool given[4] = {false, false, false, false};
    p = trl_penalty_t();

    for (int n = 0;; n++) {
        if (n == 4) {
            why = std::string("too many parts; ") + kPenaltyForm;
            return false;
        }
        const char *colon = part;
        while (colon < end && *colon != ':') {
            colon++;
        }
        size_t plen = static_cast<size_t>(colon - part);
        std::string reason;
        static const char *const kPart[] = {"BASE", "FACTOR", "MAX",
                                            "FORGIVE"};
        bool ok;
        if (n == 1) {
            ok = plen > 0 && parse_factor(part, plen, p.factor, reason);
        } else {
            uint64_t ms = 0;
            ok = plen > 0 && parse_penalty_time(part, plen, ms, reason);
            (n == 0 ? p.base_ms : n == 2 ? p.max_ms : p.forgive_ms) = ms;
        }
        if (!ok) {
            why = std::string(kPart[n]) + " "
                  + (plen ? "\"" + std::string(part, plen) + "\": " + reason
                          : std::string("is empty"))
                  + "; " + kPenaltyForm;
            return false;
        }
        given[n] = true;
        if (colon == end) {
            break;
        }
        part = colon + 1;
    }

    if (!finish_penalty(p, given[1], given[2], given[3], why)) {
        why += std::string("; ") + kPenaltyForm;
        return false;
    }
    return true;
}

}  // namespace trl
