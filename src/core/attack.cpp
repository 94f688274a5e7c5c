// attack.cpp - the grammar of token_ratelimit_attack's parameters (see
// trl_grammar.h); the glue applies them.
#include <cstring>
#include <string>

#include "guard.hpp"
#include "policy.hpp"
#include "trl_core.h"

namespace trl {
namespace {

constexpr uint64_t kMaxRate = 1000000;

bool is(const char *text, size_t len, const char *word) {
    return len == std::strlen(word) && std::memcmp(text, word, len) == 0;
}

// Digits only, 1..max.
bool number(const char *text, size_t len, uint64_t max, uint64_t &out) {
    out = 0;
    if (len == 0 || len > 10) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        if (text[i] < '0' || text[i] > '9') {
            return false;
        }
        out = out * 10 + static_cast<uint64_t>(text[i] - '0');
    }
    return out >= 1 && out <= max;
}

// N followed by suffix ("%", "/s"), or off (0) when off_ok.
bool counted(const char *v, size_t len, const char *suffix, uint64_t max,
             bool off_ok, uint32_t &out) {
    size_t sl = std::strlen(suffix);
    uint64_t n;
    if (off_ok && is(v, len, "off")) {
        out = 0;
        return true;
    }
    if (len <= sl || std::memcmp(v + len - sl, suffix, sl) != 0
        || !number(v, len - sl, max, n)) {
        return false;
    }
    out = static_cast<uint32_t>(n);
    return true;
}

// 0.001 .. 1 with up to three decimals, in thousandths.
bool scale(const char *v, size_t len, uint32_t &out) {
    uint64_t whole = 0, frac = 0;
    size_t i = 0, digits = 0;
    for (; i < len && v[i] >= '0' && v[i] <= '9'; i++) {
        whole = whole * 10 + static_cast<uint64_t>(v[i] - '0');
        if (whole > 1) {
            return false;
        }
    }
    if (i == 0 && (i == len || v[i] != '.')) {
        return false;
    }
    if (i < len) {
        if (v[i++] != '.' || i == len) {
            return false;
        }
        for (; i < len; i++, digits++) {
            if (v[i] < '0' || v[i] > '9' || digits == 3) {
                return false;
            }
            frac = frac * 10 + static_cast<uint64_t>(v[i] - '0');
        }
        for (; digits < 3; digits++) {
            frac *= 10;
        }
    }
    uint64_t t = whole * 1000 + frac;
    if (t == 0 || t > 1000) {
        return false;
    }
    out = static_cast<uint32_t>(t);
    return true;
}

}  // namespace

void attack_defaults(trl_attack_t &a) {
    a = trl_attack_t();
    a.rejected = 50;
    a.offenders = 0;
    a.min = 100;
    a.hold_ms = 5 * 60 * 1000;
    a.scale = 1000;
    a.status = 0;
    a.log = TRL_ATTACK_LOG_FULL;
}

// TRL_OK, TRL_ERROR (why: what is accepted) or TRL_ATTACK_UNKNOWN.
int attack_param(const char *text, size_t len, trl_attack_t &a,
                 std::string &why) {
    const char *eq = static_cast<const char *>(std::memchr(text, '=', len));
    if (eq == nullptr) {
        return TRL_ATTACK_UNKNOWN;
    }
    size_t nlen = static_cast<size_t>(eq - text);
    const char *v = eq + 1;
    size_t vlen = len - nlen - 1;
    std::string reason;

    if (is(text, nlen, "rejected")) {
        if (counted(v, vlen, "%", 100, true, a.rejected)) {
            return TRL_OK;
        }
        why = "expected a share of 1% to 100%, such as rejected=50%, or off";
    } else if (is(text, nlen, "offenders")) {
        if (counted(v, vlen, "/s", kMaxRate, true, a.offenders)) {
            return TRL_OK;
        }
        why = "expected new offending keys a second, 1/s to 1000000/s, "
              "such as offenders=20/s, or off";
    } else if (is(text, nlen, "min")) {
        if (counted(v, vlen, "/s", kMaxRate, false, a.min)) {
            return TRL_OK;
        }
        why = "expected requests a second, 1/s to 1000000/s, such as "
              "min=100/s";
    } else if (is(text, nlen, "hold")) {
        uint64_t ms = 0;
        if (parse_duration(v, vlen, ms, reason) && ms > 0) {
            a.hold_ms = ms;
            return TRL_OK;
        }
        why = "expected a duration above 0 such as hold=5m (units ms, s, "
              "m, h, d)";
    } else if (is(text, nlen, "scale")) {
        if (scale(v, vlen, a.scale)) {
            return TRL_OK;
        }
        why = "expected a factor above 0 and at most 1 with up to three "
              "decimals, such as scale=0.5";
    } else if (is(text, nlen, "status")) {
        uint64_t n;
        if (number(v, vlen, 599, n) && n >= 400) {    // 444 among them
            a.status = static_cast<uint32_t>(n);
            return TRL_OK;
        }
        why = "expected a status of 400 to 599, or 444 to close the "
              "connection";
    } else if (is(text, nlen, "log")) {
        if (is(v, vlen, "full") || is(v, vlen, "summary")) {
            a.log = is(v, vlen, "full") ? TRL_ATTACK_LOG_FULL
                                        : TRL_ATTACK_LOG_SUMMARY;
            return TRL_OK;
        }
        why = "expected log=full or log=summary";
    } else {
        return TRL_ATTACK_UNKNOWN;
    }
    return TRL_ERROR;
}

}  // namespace trl

extern "C" {

void trl_attack_defaults(trl_attack_t *attack) noexcept {
    trl::guard_void([&] { trl::attack_defaults(*attack); });
}

int trl_attack_param(const char *text, size_t len, trl_attack_t *attack,
                     char *err, size_t errlen) noexcept {
    return trl::guard(TRL_ERROR, trl::ErrorOut{err, errlen}, [&] {
        std::string why;
        if (text == nullptr || attack == nullptr) {
            trl::put_error(err, errlen, "no parameter");
            return TRL_ERROR;
        }
        int rc = trl::attack_param(text, len, *attack, why);
        if (rc == TRL_ERROR) {
            trl::put_error(err, errlen, why);
        }
        return rc;
    });
}

}  // extern "C"
