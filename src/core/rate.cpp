// rate.cpp - parsing and printing "N requests per window" rates.
#include "rate.hpp"

namespace trl {
namespace {

// Every refusal says what is accepted: the forms and the bounds.
const char kAccepted[] =
    "a rate must be Nr/s, Nr/m, Nr/h, Nr/d or Nr/<count><unit> with unit "
    "s, m, h or d, such as 10r/m or 20r/15m, with 1 <= N <= 65535 and "
    "1s <= window <= 365d";

std::string refused(const char *what) {
    return std::string(what) + "; " + kAccepted;
}

// Reads a run of decimal digits, saturating at kHuge; false on no digit.
const uint64_t kHuge = UINT64_C(1) << 62;

bool read_number(const char *&p, const char *end, uint64_t &value) {
    const char *start = p;
    value = 0;
    while (p < end && *p >= '0' && *p <= '9') {
        uint64_t digit = static_cast<uint64_t>(*p - '0');
        value = value > kHuge / 10 ? kHuge : value * 10 + digit;
        p++;
    }
    return p != start;
}

uint64_t unit_seconds(char unit) {
    switch (unit) {
    case 's': return 1;
    case 'm': return 60;
    case 'h': return 3600;
    case 'd': return 86400;
    default: return 0;
    }
}

}  // namespace

bool parse_rate(const char *text, std::size_t len, trl_rate_t &rate,
                std::string &why) {
    const char *p = text;
    const char *end = text + len;
    uint64_t limit = 0;
    uint64_t count = 1;

    if (!read_number(p, end, limit) || end - p < 3 || p[0] != 'r'
        || p[1] != '/')
    {
        why = refused("expected a count, \"r/\" and a window");
        return false;
    }
    p += 2;
    if (*p >= '0' && *p <= '9') {
        read_number(p, end, count);
    }
    if (end - p != 1 || unit_seconds(*p) == 0) {
        why = refused("expected the window's unit s, m, h or d at its end");
        return false;
    }
    if (limit == 0) {
        why = refused("the request count must be at least 1");
        return false;
    }
    if (limit > TRL_RATE_MAX_LIMIT) {
        why = refused("the request count must be at most 65535");
        static_assert(TRL_RATE_MAX_LIMIT == 65535, "the message says 65535");
        return false;
    }
    if (count == 0) {
        why = refused("the window must be at least 1s");
        return false;
    }
    uint64_t max_seconds = TRL_RATE_MAX_WINDOW_MS / 1000;
    uint64_t unit = unit_seconds(*p);
    if (count > max_seconds / unit) {
        why = refused("the window must be at most 365d");
        static_assert(TRL_RATE_MAX_WINDOW_MS == 365ULL * 86400 * 1000,
                      "the message says 365d");
        return false;
    }
    rate.limit = static_cast<uint32_t>(limit);
    rate.window_ms = count * unit * 1000;
    return true;
}

std::string format_rate(const trl_rate_t &rate) {
    static const struct { char unit; uint64_t seconds; } units[] = {
        {'d', 86400}, {'h', 3600}, {'m', 60}, {'s', 1}};
    uint64_t seconds = rate.window_ms / 1000;
    std::string out = std::to_string(rate.limit) + "r/";
    for (const auto &u : units) {
        if (seconds >= u.seconds && seconds % u.seconds == 0) {
            uint64_t count = seconds / u.seconds;
            if (count != 1) {
                out += std::to_string(count);
            }
            out += u.unit;
            return out;
        }
    }
    return out + std::to_string(rate.window_ms) + "ms";
}

}  // namespace trl
