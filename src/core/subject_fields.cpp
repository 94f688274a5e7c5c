// subject_fields.cpp - one field of a request body, form or JSON, read
// into a caller's buffer: no allocation, bounded recursion (trl_distinct.h).
#include <cstring>

#include "trl_distinct.h"

namespace {

constexpr int kMaxDepth = 32;
constexpr size_t kKeyMax = 256;     // JSON keys compared (longer: no match)

inline int hex(unsigned char c) {
    if (c >= '0' && c <= '9') return c - '0';
    c |= 0x20;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

// Where a decoded string goes: up to cap bytes, the rest only counted.
struct Sink {
    char *buf;
    size_t cap;
    size_t n = 0;
    bool cut = false;

    void put(unsigned char c) {
        if (n < cap) {
            buf[n++] = static_cast<char>(c);
        } else {
            cut = true;
        }
    }
    void put_utf8(uint32_t cp) {
        if (cp < 0x80) {
            put(static_cast<unsigned char>(cp));
        } else if (cp < 0x800) {
            put(static_cast<unsigned char>(0xc0 | cp >> 6));
            put(static_cast<unsigned char>(0x80 | (cp & 0x3f)));
        } else if (cp < 0x10000) {
            put(static_cast<unsigned char>(0xe0 | cp >> 12));
            put(static_cast<unsigned char>(0x80 | ((cp >> 6) & 0x3f)));
            put(static_cast<unsigned char>(0x80 | (cp & 0x3f)));
        } else {
            put(static_cast<unsigned char>(0xf0 | cp >> 18));
            put(static_cast<unsigned char>(0x80 | ((cp >> 12) & 0x3f)));
            put(static_cast<unsigned char>(0x80 | ((cp >> 6) & 0x3f)));
            put(static_cast<unsigned char>(0x80 | (cp & 0x3f)));
        }
    }
};


// Form: whether the encoded name equals name once decoded.
bool form_name_is(const unsigned char *p, size_t len, const char *name,
                  size_t name_len) {
    size_t j = 0;
    for (size_t i = 0; i < len;) {
        unsigned char c = p[i++];
        if (c == '%' && i + 2 <= len && hex(p[i]) >= 0 && hex(p[i + 1]) >= 0) {
            c = static_cast<unsigned char>(hex(p[i]) << 4 | hex(p[i + 1]));
            i += 2;
        } else if (c == '+') {
            c = ' ';
        }
        if (j == name_len || static_cast<unsigned char>(name[j]) != c) {
            return false;
        }
        j++;
    }
    return j == name_len;
}


class Json {
  public:
    Json(const unsigned char *p, size_t len) : p_(p), end_(p + len) {}

    int field(const char *name, size_t name_len, Sink &out);

  private:
    void ws() {
        while (p_ < end_ && (*p_ == ' ' || *p_ == '\t' || *p_ == '\n'
                             || *p_ == '\r')) {
            p_++;
        }
    }
    bool eat(char c) {
        ws();
        if (p_ < end_ && *p_ == static_cast<unsigned char>(c)) {
            p_++;
            return true;
        }
        return false;
    }
    bool hex4(uint32_t &v) {
        if (end_ - p_ < 4) {
            return false;
        }
        v = 0;
        for (int i = 0; i < 4; i++) {
            int h = hex(p_[i]);
            if (h < 0) {
                return false;
            }
            v = v << 4 | static_cast<uint32_t>(h);
        }
        p_ += 4;
        return true;
    }
    bool string(Sink &out);
    bool value(int depth);

    const unsigned char *p_;
    const unsigned char *end_;
};

// A string at p_ (after whitespace), decoded into out.
bool Json::string(Sink &out) {
    if (!eat('"')) {
        return false;
    }
    while (p_ < end_) {
        unsigned char c = *p_++;
        if (c == '"') {
            return true;
        }
        if (c < 0x20) {
            return false;
        }
        if (c != '\\') {
            out.put(c);
            continue;
        }
        if (p_ == end_) {
            return false;
        }
        c = *p_++;
        uint32_t cp;
        switch (c) {
        case '"': case '\\': case '/': out.put(c); break;
        case 'b': out.put('\b'); break;
        case 'f': out.put('\f'); break;
        case 'n': out.put('\n'); break;
        case 'r': out.put('\r'); break;
        case 't': out.put('\t'); break;
        case 'u':
            if (!hex4(cp)) {
                return false;
            }
            if (cp >= 0xd800 && cp < 0xdc00) {     // a pair's first half
                uint32_t lo;
                if (end_ - p_ < 2 || p_[0] != '\\' || p_[1] != 'u') {
                    return false;
                }
                p_ += 2;
                if (!hex4(lo) || lo < 0xdc00 || lo >= 0xe000) {
                    return false;
                }
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            } else if (cp >= 0xdc00 && cp < 0xe000) {
                return false;                       // a lone second half
            }
            out.put_utf8(cp);
            break;
        default:
            return false;
        }
    }
    return false;                                   // cut short
}

// Any value, skipped; objects and arrays at most kMaxDepth deep.
bool Json::value(int depth) {
    ws();
    if (p_ == end_) {
        return false;
    }
    char none[1];
    Sink skip{none, 0};
    switch (*p_) {
    case '"':
        return string(skip);
    case '{':
    case '[': {
        if (depth >= kMaxDepth) {
            return false;
        }
        bool object = *p_++ == '{';
        char close = object ? '}' : ']';
        if (eat(close)) {
            return true;
        }
        do {
            if (object && (!string(skip) || !eat(':'))) {
                return false;
            }
            if (!value(depth + 1)) {
                return false;
            }
        } while (eat(','));
        return eat(close);
    }
    case 't': case 'f': case 'n': {
        static const char *const words[] = {"true", "false", "null"};
        for (const char *w : words) {
            size_t n = std::strlen(w);
            if (static_cast<size_t>(end_ - p_) >= n
                && std::memcmp(p_, w, n) == 0) {
                p_ += n;
                return true;
            }
        }
        return false;
    }
    default: {
        const unsigned char *start = p_;
        if (p_ < end_ && *p_ == '-') {
            p_++;
        }
        bool digits = false;
        while (p_ < end_ && ((*p_ >= '0' && *p_ <= '9') || *p_ == '.'
                             || *p_ == 'e' || *p_ == 'E' || *p_ == '+'
                             || *p_ == '-')) {
            digits |= *p_ >= '0' && *p_ <= '9';
            p_++;
        }
        return digits && p_ > start;
    }
    }
}

int Json::field(const char *name, size_t name_len, Sink &out) {
    int found = 0;
    bool cut = false;
    if (!eat('{')) {
        return TRL_FIELD_MALFORMED;
    }
    if (!eat('}')) {
        do {
            char key[kKeyMax];
            Sink k{key, sizeof(key)};
            if (!string(k) || !eat(':')) {
                return TRL_FIELD_MALFORMED;
            }
            if (!k.cut && k.n == name_len
                && std::memcmp(key, name, name_len) == 0) {
                ws();
                if (p_ == end_ || *p_ != '"') {
                    return TRL_FIELD_MALFORMED;     // not a string
                }
                out.n = 0;
                out.cut = false;
                if (!string(out)) {
                    return TRL_FIELD_MALFORMED;
                }
                cut = out.cut;
                found++;
            } else if (!value(1)) {
                return TRL_FIELD_MALFORMED;
            }
        } while (eat(','));
        if (!eat('}')) {
            return TRL_FIELD_MALFORMED;
        }
    }
    ws();
    if (p_ != end_) {
        return TRL_FIELD_MALFORMED;                 // more after the object
    }
    if (found == 0) {
        return TRL_FIELD_NONE;
    }
    if (found > 1) {
        return TRL_FIELD_TWICE;
    }
    return cut ? TRL_FIELD_LONG : TRL_FIELD_FOUND;
}

}  // namespace

extern "C" {

int trl_form_field(const void *body, size_t len, const char *name,
                   size_t name_len, char *out, size_t outlen,
                   size_t *outn) noexcept {
    const unsigned char *p = static_cast<const unsigned char *>(body);
    int found = 0;
    bool cut = false;
    *outn = 0;

    for (size_t i = 0; i <= len;) {
        size_t amp = i;
        while (amp < len && p[amp] != '&') {
            amp++;
        }
        size_t eq = i;
        while (eq < amp && p[eq] != '=') {
            eq++;
        }
        if (amp > i && form_name_is(p + i, eq - i, name, name_len)) {
            size_t vstart = eq < amp ? eq + 1 : amp;
            size_t vlen = amp - vstart;
            cut = vlen > outlen;
            *outn = cut ? outlen : vlen;
            if (*outn) {
                std::memcpy(out, p + vstart, *outn);
            }
            found++;
        }
        i = amp + 1;
    }

    if (found == 0) {
        return TRL_FIELD_NONE;
    }
    if (found > 1) {
        return TRL_FIELD_TWICE;
    }
    return cut ? TRL_FIELD_LONG : TRL_FIELD_FOUND;
}

int trl_json_field(const void *body, size_t len, const char *name,
                   size_t name_len, char *out, size_t outlen,
                   size_t *outn) noexcept {
    Json json(static_cast<const unsigned char *>(body), len);
    Sink sink{out, outlen};
    int rc = json.field(name, name_len, sink);
    *outn = rc == TRL_FIELD_MALFORMED || rc == TRL_FIELD_NONE ? 0 : sink.n;
    return rc;
}

}  // extern "C"
