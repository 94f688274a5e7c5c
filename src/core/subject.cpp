// subject.cpp - a subject (an account name) as the application sees it:
// percent-decoded, trimmed, case-folded, bounded (trl_distinct.h).
#include <cstring>

#include "trl_distinct.h"

namespace {

inline bool space(unsigned char c) {
    return c == ' ' || (c >= '\t' && c <= '\r');
}

inline int hex(unsigned char c) {
    if (c >= '0' && c <= '9') return c - '0';
    c |= 0x20;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

inline unsigned char lower(unsigned char c) {
    return (c >= 'A' && c <= 'Z') ? c | 0x20 : c;
}

// Decodes one byte at in[i] (a %XX escape, '+' when plus), advancing i.
inline unsigned char decode_at(const unsigned char *in, size_t len, size_t &i,
                               bool decode, bool plus) {
    unsigned char c = in[i++];
    if (decode && c == '%' && i + 2 <= len) {
        int hi = hex(in[i]), lo = hex(in[i + 1]);
        if (hi >= 0 && lo >= 0) {
            i += 2;
            return static_cast<unsigned char>(hi << 4 | lo);
        }
    }
    if (plus && c == '+') {
        return ' ';
    }
    return c;
}

}  // namespace

extern "C" {

int trl_subject_normalize(const void *in, size_t len, unsigned flags,
                          char *out, size_t outlen, size_t *outn) noexcept {
    const unsigned char *p = static_cast<const unsigned char *>(in);
    bool decode = flags & TRL_SUBJECT_DECODE;
    bool plus = decode && (flags & TRL_SUBJECT_PLUS);
    bool trim = flags & TRL_SUBJECT_TRIM;
    size_t n = 0;
    bool cut = false;

    for (size_t i = 0; i < len;) {
        unsigned char c = decode_at(p, len, i, decode, plus);
        if (trim && n == 0 && space(c)) {
            continue;                       // leading whitespace
        }
        if (n == outlen) {
            cut = true;
            break;
        }
        out[n++] = static_cast<char>(c);
    }
    while (trim && n > 0 && space(static_cast<unsigned char>(out[n - 1]))) {
        n--;
    }

    if (flags & TRL_SUBJECT_LOWER) {
        for (size_t i = 0; i < n; i++) {
            out[i] = static_cast<char>(lower(static_cast<unsigned char>(out[i])));
        }
    } else if (flags & TRL_SUBJECT_LOWER_DOMAIN) {
        size_t at = n;
        for (size_t i = n; i-- > 0;) {
            if (out[i] == '@') {
                at = i;
                break;
            }
        }
        for (size_t i = at; i < n; i++) {
            out[i] = static_cast<char>(lower(static_cast<unsigned char>(out[i])));
        }
    }

    *outn = n;
    if (n == 0) {
        return TRL_SUBJECT_EMPTY;
    }
    return cut ? TRL_SUBJECT_LONG : TRL_SUBJECT_OK;
}

}  // extern "C"
