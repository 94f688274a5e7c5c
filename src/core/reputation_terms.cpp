// reputation_terms.cpp - the grammar of the options that use reputation
// lists (scale=, penalty_level=, deny_score=, and their policy twins), a
// list's name, and the scaled limit.
#include <cstring>
#include <string>

#include "reputation_terms.hpp"

namespace trl {

namespace {

constexpr uint32_t kScaleMin = 1;               // thousandths: 0.001
constexpr uint32_t kScaleMax = 100000;          // 100
constexpr uint32_t kLevelMax = 30;

const char kScaleForm[] =
    "expected LIST:FACTOR[,LIST:FACTOR...], FACTOR 0.001 to 100 "
    "(e.g. tor:0.5,bad:0.2)";
const char kLevelForm[] =
    "expected LIST:LEVEL[,LIST:LEVEL...], LEVEL 1 to 30 (e.g. bad:3)";

std::string shown(const char *p, size_t n) {
    std::string s(p, n < 64 ? n : 64);
    return "\"" + s + "\"";
}

// "0.5", "2", "0.125": thousandths, at most three decimals.
bool parse_thousandths(const char *p, size_t n, uint32_t &out) {
    uint64_t whole = 0, frac = 0;
    size_t i = 0, digits = 0, decimals = 0;
    while (i < n && p[i] >= '0' && p[i] <= '9' && digits < 6) {
        whole = whole * 10 + static_cast<uint64_t>(p[i++] - '0');
        digits++;
    }
    if (digits == 0) {
        return false;
    }
    if (i < n && p[i] == '.') {
        i++;
        while (i < n && p[i] >= '0' && p[i] <= '9' && decimals < 3) {
            frac = frac * 10 + static_cast<uint64_t>(p[i++] - '0');
            decimals++;
        }
        if (decimals == 0) {
            return false;
        }
        for (size_t d = decimals; d < 3; d++) {
            frac *= 10;
        }
    }
    if (i != n) {
        return false;
    }
    uint64_t v = whole * 1000 + frac;
    if (v > UINT32_MAX) {
        return false;
    }
    out = static_cast<uint32_t>(v);
    return true;
}

bool parse_uint(const char *p, size_t n, uint32_t &out) {
    if (n == 0 || n > 6) {
        return false;
    }
    uint32_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9') {
            return false;
        }
        v = v * 10 + static_cast<uint32_t>(p[i] - '0');
    }
    out = v;
    return true;
}

// LIST:VALUE[,LIST:VALUE...]; value() reads one VALUE.
template <typename Value>
bool parse_terms(const char *text, size_t len, trl_rep_terms_t &out,
                 const char *form, Value &&value, std::string &why) {
    std::memset(&out, 0, sizeof(out));
    if (len == 0) {
        why = std::string("an empty list of terms; ") + form;
        return false;
    }
    const char *p = text, *end = text + len;
    while (true) {
        const char *comma = static_cast<const char *>(
            std::memchr(p, ',', static_cast<size_t>(end - p)));
        const char *te = comma ? comma : end;
        size_t tlen = static_cast<size_t>(te - p);
        const char *colon = static_cast<const char *>(
            std::memchr(p, ':', tlen));
        if (colon == nullptr) {
            why = "the term " + shown(p, tlen) + " has no ':'; " + form;
            return false;
        }
        size_t nlen = static_cast<size_t>(colon - p);
        if (!name_check(p, nlen, why)) {
            why = "in the term " + shown(p, tlen) + ": " + why;
            return false;
        }
        for (uint32_t i = 0; i < out.n; i++) {
            if (std::strlen(out.term[i].name) == nlen
                && std::memcmp(out.term[i].name, p, nlen) == 0) {
                why = "the list \"" + std::string(p, nlen)
                      + "\" is named twice";
                return false;
            }
        }
        if (out.n == TRL_REP_MAX_TERMS) {
            why = "more than " + std::to_string(TRL_REP_MAX_TERMS)
                  + " terms";
            return false;
        }
        uint32_t v = 0;
        if (!value(colon + 1, static_cast<size_t>(te - colon - 1), v)) {
            why = "bad value in the term " + shown(p, tlen) + "; " + form;
            return false;
        }
        trl_rep_term_t &t = out.term[out.n++];
        std::memcpy(t.name, p, nlen);
        t.name[nlen] = '\0';
        t.value = v;
        if (comma == nullptr) {
            return true;
        }
        p = comma + 1;
    }
}

}  // namespace

bool name_check(const char *text, size_t len, std::string &why) {
    if (len == 0 || len >= TRL_REP_NAME_LEN) {
        why = "a list's name is 1 to " + std::to_string(TRL_REP_NAME_LEN - 1)
              + " characters of A-Z a-z 0-9 _ . -";
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')
                  || (c >= '0' && c <= '9') || c == '_' || c == '.'
                  || c == '-';
        if (!ok) {
            why = "a list's name is 1 to "
                  + std::to_string(TRL_REP_NAME_LEN - 1)
                  + " characters of A-Z a-z 0-9 _ . -";
            return false;
        }
    }
    return true;
}

bool scale_parse(const char *text, size_t len, trl_rep_terms_t &out,
                 std::string &why) {
    return parse_terms(text, len, out, kScaleForm,
                       [](const char *p, size_t n, uint32_t &v) {
                           return parse_thousandths(p, n, v) && v >= kScaleMin
                                  && v <= kScaleMax;
                       },
                       why);
}

bool level_parse(const char *text, size_t len, trl_rep_terms_t &out,
                 std::string &why) {
    return parse_terms(text, len, out, kLevelForm,
                       [](const char *p, size_t n, uint32_t &v) {
                           return parse_uint(p, n, v) && v >= 1
                                  && v <= kLevelMax;
                       },
                       why);
}

bool score_parse(const char *text, size_t len, uint32_t &score,
                 std::string &why) {
    uint32_t v = 0;
    if (!parse_uint(text, len, v) || v < 1 || v > TRL_REP_MAX_SCORE) {
        why = "expected a score of 1 to 100";
        return false;
    }
    score = v;
    return true;
}

uint32_t scale_limit(uint32_t n, uint32_t thousandths) {
    uint64_t v = static_cast<uint64_t>(n) * thousandths / 1000;
    if (v < 1) {
        v = 1;
    }
    return v > TRL_RATE_MAX_LIMIT ? TRL_RATE_MAX_LIMIT
                                  : static_cast<uint32_t>(v);
}

}  // namespace trl
