// reputation_parse.cpp - a reputation list's text to its ranges: the line
// grammar (addresses, CIDRs, "a-b" ranges, one-line JSON objects), and the
// trust and width rules that drop entries covering the operator's own
// network.
//
// Strict where a list is ambiguous: a line that is not an entry fails the
// whole list (an HTML error page, a file cut mid-line), and so does a CIDR
// with bits set beyond its prefix ("1.2.3.4/24"): the feeds we read
// (FireHOL, Spamhaus, IPsum) never write one, so one is a sign of a
// corrupt or misread file, and guessing the network would list addresses
// nobody listed.
#include <arpa/inet.h>
#include <cstdio>
#include <cstring>

#include "reputation.hpp"

namespace trl {

U128 u128_from_bytes(const uint8_t *b) {
    U128 v;
    for (int i = 0; i < 8; i++) {
        v.hi = v.hi << 8 | b[i];
        v.lo = v.lo << 8 | b[8 + i];
    }
    return v;
}

void u128_to_bytes(const U128 &v, uint8_t *b) {
    for (int i = 0; i < 8; i++) {
        b[i] = static_cast<uint8_t>(v.hi >> (56 - 8 * i));
        b[8 + i] = static_cast<uint8_t>(v.lo >> (56 - 8 * i));
    }
}

namespace {

constexpr size_t kQuoted = 40;      // bytes of a bad line an error shows

inline bool blank(char c) { return c == ' ' || c == '\t'; }

// The host bits of an IPv4 prefix (0..32).
inline uint32_t host4(unsigned prefix) {
    return prefix >= 32 ? 0 : UINT32_MAX >> prefix;
}

// A dotted quad and nothing else (octets of 1 to 3 decimal digits).
bool parse_v4(const char *p, size_t n, uint32_t &out) {
    uint32_t v = 0;
    size_t i = 0;
    for (int part = 0; part < 4; part++) {
        size_t start = i;
        uint32_t octet = 0;
        while (i < n && p[i] >= '0' && p[i] <= '9' && i - start < 3) {
            octet = octet * 10 + static_cast<uint32_t>(p[i++] - '0');
        }
        if (i == start || octet > 255) {
            return false;
        }
        v = v << 8 | octet;
        if (part < 3) {
            if (i >= n || p[i] != '.') {
                return false;
            }
            i++;
        }
    }
    if (i != n) {
        return false;
    }
    out = v;
    return true;
}

bool parse_v6(const char *p, size_t n, uint8_t out[16]) {
    char buf[64];
    if (n == 0 || n >= sizeof(buf)) {
        return false;
    }
    std::memcpy(buf, p, n);
    buf[n] = '\0';
    return inet_pton(AF_INET6, buf, out) == 1;
}

// An entry: a range of one family (v4 in r4, v6 in r6).
struct Entry {
    int family = 0;
    Range4 r4{0, 0};
    Range6 r6;
};

struct Addr {
    int family = 0;
    uint32_t v4 = 0;
    U128 v6;
};

bool v4_mapped(const U128 &v) {
    return v.hi == 0 && (v.lo >> 32) == 0xffff;
}

bool parse_addr(const char *p, size_t n, Addr &a) {
    if (std::memchr(p, ':', n) != nullptr) {
        uint8_t b[16];
        if (!parse_v6(p, n, b)) {
            return false;
        }
        a.family = 6;
        a.v6 = u128_from_bytes(b);
        if (v4_mapped(a.v6)) {              // ::ffff:a.b.c.d is IPv4
            a.family = 4;
            a.v4 = static_cast<uint32_t>(a.v6.lo);
        }
        return true;
    }
    a.family = 4;
    return parse_v4(p, n, a.v4);
}

std::string format4(uint32_t v) {
    char buf[16];
    std::snprintf(buf, sizeof(buf), "%u.%u.%u.%u", v >> 24, (v >> 16) & 0xff,
                  (v >> 8) & 0xff, v & 0xff);
    return buf;
}

std::string format6(const U128 &v) {
    uint8_t b[16];
    char buf[INET6_ADDRSTRLEN];
    u128_to_bytes(v, b);
    if (inet_ntop(AF_INET6, b, buf, sizeof(buf)) == nullptr) {
        return "?";
    }
    return buf;
}

// "ADDR" or "ADDR/N" (an IPv4-mapped IPv6 CIDR of /96 or more is IPv4).
bool parse_cidr(const char *p, size_t n, Entry &e, trl_cidr_t *cidr,
                std::string &why) {
    const char *slash = static_cast<const char *>(std::memchr(p, '/', n));
    size_t alen = slash ? static_cast<size_t>(slash - p) : n;
    Addr a;
    bool mapped = alen > 0 && std::memchr(p, ':', alen) != nullptr;
    if (!parse_addr(p, alen, a)) {
        why = "not an address";
        return false;
    }
    unsigned bits = a.family == 4 && !mapped ? 32 : 128;
    unsigned prefix = bits;
    if (slash != nullptr) {
        const char *q = slash + 1, *end = p + n;
        if (q == end || end - q > 3) {
            why = "bad prefix";
            return false;
        }
        prefix = 0;
        for (; q < end; q++) {
            if (*q < '0' || *q > '9') {
                why = "bad prefix";
                return false;
            }
            prefix = prefix * 10 + static_cast<unsigned>(*q - '0');
        }
        if (prefix > bits) {
            why = "bad prefix";
            return false;
        }
    }
    if (mapped && a.family == 4) {
        if (prefix < 96) {                  // reaches beyond ::ffff:0:0/96
            a.family = 6;
            a.v6.hi = 0;
            a.v6.lo = UINT64_C(0xffff00000000) | a.v4;
        } else {
            prefix -= 96;
        }
    }
    e.family = a.family;
    if (a.family == 4) {
        uint32_t host = host4(prefix);
        if ((a.v4 & host) != 0) {
            why = "bits set beyond the prefix /" + std::to_string(prefix)
                  + " (the network is " + format4(a.v4 & ~host) + "/"
                  + std::to_string(prefix) + ")";
            return false;
        }
        e.r4 = Range4{a.v4, a.v4 | host};
    } else {
        U128 host;
        host.hi = prefix >= 64 ? 0 : (prefix == 0 ? UINT64_MAX
                                                  : UINT64_MAX >> prefix);
        host.lo = prefix <= 64 ? UINT64_MAX
                  : (prefix == 128 ? 0 : UINT64_MAX >> (prefix - 64));
        if ((a.v6.hi & host.hi) != 0 || (a.v6.lo & host.lo) != 0) {
            U128 net{a.v6.hi & ~host.hi, a.v6.lo & ~host.lo};
            why = "bits set beyond the prefix /" + std::to_string(prefix)
                  + " (the network is " + format6(net) + "/"
                  + std::to_string(prefix) + ")";
            return false;
        }
        e.r6.s = a.v6;
        e.r6.e = U128{a.v6.hi | host.hi, a.v6.lo | host.lo};
    }
    if (cidr != nullptr) {
        std::memset(cidr, 0, sizeof(*cidr));
        cidr->family = static_cast<uint8_t>(a.family);
        cidr->prefix = static_cast<uint8_t>(prefix);
        if (a.family == 4) {
            for (int i = 0; i < 4; i++) {
                cidr->addr[i] = static_cast<uint8_t>(a.v4 >> (24 - 8 * i));
            }
        } else {
            u128_to_bytes(a.v6, cidr->addr);
        }
    }
    return true;
}

// "A-B", addresses of one family, A <= B.
bool parse_range(const char *a, size_t alen, const char *b, size_t blen,
                 Entry &e, std::string &why) {
    Addr x, y;
    if (!parse_addr(a, alen, x) || !parse_addr(b, blen, y)) {
        why = "not an address";
        return false;
    }
    if (x.family != y.family) {
        why = "a range from IPv4 to IPv6";
        return false;
    }
    e.family = x.family;
    if (x.family == 4) {
        if (y.v4 < x.v4) {
            why = "a range that ends before it starts";
            return false;
        }
        e.r4 = Range4{x.v4, y.v4};
    } else {
        if (y.v6 < x.v6) {
            why = "a range that ends before it starts";
            return false;
        }
        e.r6 = Range6{x.v6, y.v6};
    }
    return true;
}

// The string value of "key" in a one-line JSON object, if any.
bool json_value(const char *p, size_t n, const char *key, const char *&v,
                size_t &vlen) {
    std::string pat = std::string("\"") + key + "\"";
    const char *end = p + n;
    const char *q = p;
    while (q < end) {
        const char *hit = static_cast<const char *>(
            memmem(q, static_cast<size_t>(end - q), pat.data(), pat.size()));
        if (hit == nullptr) {
            return false;
        }
        q = hit + pat.size();
        const char *r = q;
        while (r < end && blank(*r)) {
            r++;
        }
        if (r == end || *r != ':') {
            continue;                       // a value, not a key
        }
        r++;
        while (r < end && blank(*r)) {
            r++;
        }
        if (r == end || *r != '"') {
            continue;
        }
        r++;
        const char *close = static_cast<const char *>(
            std::memchr(r, '"', static_cast<size_t>(end - r)));
        if (close == nullptr) {
            return false;
        }
        v = r;
        vlen = static_cast<size_t>(close - r);
        return true;
    }
    return false;
}

struct Trusted {
    int family;
    Range4 r4;
    Range6 r6;
    std::string text;
};

const char *const kBuiltinTrusted[] = {
    "0.0.0.0/8",   "10.0.0.0/8",     "100.64.0.0/10",  "127.0.0.0/8",
    "169.254.0.0/16", "172.16.0.0/12", "192.168.0.0/16", "::1/128",
    "::/128",      "fc00::/7",       "fe80::/10",
};

std::string cidr_text(const trl_cidr_t &c) {
    if (c.family == 4) {
        uint32_t v = static_cast<uint32_t>(c.addr[0]) << 24
                     | static_cast<uint32_t>(c.addr[1]) << 16
                     | static_cast<uint32_t>(c.addr[2]) << 8 | c.addr[3];
        return format4(v) + "/" + std::to_string(c.prefix);
    }
    return format6(u128_from_bytes(c.addr)) + "/" + std::to_string(c.prefix);
}

// A configured range as a range (bits beyond the prefix ignored: the
// caller may hand nginx's own masks).
Trusted trusted_of(const trl_cidr_t &c) {
    Trusted t;
    t.family = c.family;
    unsigned prefix = c.prefix;
    if (c.family == 4) {
        prefix = prefix > 32 ? 32 : prefix;
        uint32_t v = static_cast<uint32_t>(c.addr[0]) << 24
                     | static_cast<uint32_t>(c.addr[1]) << 16
                     | static_cast<uint32_t>(c.addr[2]) << 8 | c.addr[3];
        uint32_t host = host4(prefix);
        t.r4 = Range4{v & ~host, v | host};
    } else {
        prefix = prefix > 128 ? 128 : prefix;
        U128 v = u128_from_bytes(c.addr);
        U128 host;
        host.hi = prefix >= 64 ? 0 : (prefix == 0 ? UINT64_MAX
                                                  : UINT64_MAX >> prefix);
        host.lo = prefix <= 64 ? UINT64_MAX
                  : (prefix == 128 ? 0 : UINT64_MAX >> (prefix - 64));
        t.r6 = Range6{U128{v.hi & ~host.hi, v.lo & ~host.lo},
                      U128{v.hi | host.hi, v.lo | host.lo}};
    }
    trl_cidr_t shown = c;
    shown.prefix = static_cast<uint8_t>(prefix);
    if (c.family == 4) {
        for (int i = 0; i < 4; i++) {
            shown.addr[i] = static_cast<uint8_t>(t.r4.s >> (24 - 8 * i));
        }
    } else {
        u128_to_bytes(t.r6.s, shown.addr);
    }
    t.text = cidr_text(shown);
    return t;
}

// The bytes of a bad line an error quotes: printable ASCII, the rest '?'.
std::string quote(const char *p, size_t n) {
    std::string q;
    for (size_t i = 0; i < n && i < kQuoted; i++) {
        unsigned char c = static_cast<unsigned char>(p[i]);
        q += c >= 0x20 && c < 0x7f ? static_cast<char>(c) : '?';
    }
    return q;
}

class Parser {
  public:
    Parser(const char *source, const trl_rep_rules_t *rules, Build &b)
        : source_(source ? source : "list"), b_(b) {
        for (const trl_cidr_t &c : builtin_trusted()) {
            trusted_.push_back(trusted_of(c));
        }
        if (rules != nullptr) {
            for (size_t i = 0; i < rules->ntrusted; i++) {
                if (rules->trusted[i].family == 4
                    || rules->trusted[i].family == 6) {
                    trusted_.push_back(trusted_of(rules->trusted[i]));
                }
            }
            widest4_ = rules->widest4 > 32 ? 32 : rules->widest4;
            widest6_ = rules->widest6 > 128 ? 128 : rules->widest6;
        }
    }

    bool run(const char *text, size_t len, std::string &why) {
        const char *p = text, *end = text + len;
        uint64_t lineno = 0;
        while (p < end) {
            const char *nl = static_cast<const char *>(
                std::memchr(p, '\n', static_cast<size_t>(end - p)));
            const char *q = nl ? nl : end;
            lineno++;
            const char *s = p, *e = q;
            while (s < e && (blank(*s) || *s == '\r')) {
                s++;
            }
            while (e > s && (blank(e[-1]) || e[-1] == '\r')) {
                e--;
            }
            std::string fault;
            if (!line(s, static_cast<size_t>(e - s), lineno, fault)) {
                why = source_ + ":" + std::to_string(lineno) + ": " + fault
                      + ": \"" + quote(s, static_cast<size_t>(e - s))
                      + "\"";
                return false;
            }
            p = nl ? nl + 1 : end;
        }
        b_.lines = lineno;
        return true;
    }

  private:
    bool line(const char *p, size_t n, uint64_t lineno, std::string &why) {
        if (n == 0 || *p == '#' || *p == ';') {
            return true;
        }
        Entry e;
        const char *text = p;
        size_t tlen = 0;
        if (*p == '{') {
            size_t m = n;
            if (m > 0 && p[m - 1] == ',') {      // an element of an array
                m--;
            }
            if (m < 2 || p[m - 1] != '}') {
                why = "a half-written JSON object";
                return false;
            }
            const char *v = nullptr;
            size_t vlen = 0;
            if (!json_value(p, m, "cidr", v, vlen)
                && !json_value(p, m, "ip", v, vlen)
                && !json_value(p, m, "ipAddress", v, vlen)) {
                if (json_value(p, m, "type", v, vlen)) {
                    return true;                // metadata (Spamhaus)
                }
                why = "a JSON object without \"cidr\", \"ip\" or "
                      "\"ipAddress\"";
                return false;
            }
            if (!parse_cidr(v, vlen, e, nullptr, why)) {
                return false;
            }
            text = v;
            tlen = vlen;
        } else {
            // the first field; what follows it is ignored, unless it is
            // "- B" (a range written with blanks)
            size_t f = 0;
            while (f < n && !blank(p[f]) && p[f] != '#' && p[f] != ';') {
                f++;
            }
            const char *dash = static_cast<const char *>(
                std::memchr(p, '-', f));
            size_t r = f;
            while (r < n && blank(p[r])) {
                r++;
            }
            if (dash != nullptr) {
                size_t alen = static_cast<size_t>(dash - p);
                if (!parse_range(p, alen, dash + 1, f - alen - 1, e, why)) {
                    return false;
                }
                tlen = f;
            } else if (r < n && p[r] == '-') {
                size_t b = r + 1;
                while (b < n && blank(p[b])) {
                    b++;
                }
                size_t be = b;
                while (be < n && !blank(p[be]) && p[be] != '#'
                       && p[be] != ';') {
                    be++;
                }
                if (!parse_range(p, f, p + b, be - b, e, why)) {
                    return false;
                }
                tlen = be;
            } else {
                if (!parse_cidr(p, f, e, nullptr, why)) {
                    return false;
                }
                tlen = f;
            }
        }
        judge(e, std::string(text, tlen), lineno);
        return true;
    }

    // The trust and width rules: the entry is kept, or dropped and
    // counted.
    void judge(const Entry &e, const std::string &text, uint64_t lineno) {
        for (const Trusted &t : trusted_) {
            if (t.family != e.family) {
                continue;
            }
            bool overlap = e.family == 4
                               ? e.r4.s <= t.r4.e && t.r4.s <= e.r4.e
                               : e.r6.s <= t.r6.e && t.r6.s <= e.r6.e;
            if (overlap) {
                b_.dropped_trusted++;
                example(lineno, text + " overlaps the trusted " + t.text);
                return;
            }
        }
        bool wide;
        if (e.family == 4) {
            uint64_t count = static_cast<uint64_t>(e.r4.e) - e.r4.s + 1;
            wide = count > (UINT64_C(1) << (32 - widest4_));
        } else {
            // more addresses than 2^(128 - w): e - s >= 2^(128 - w)
            U128 d = u128_sub(e.r6.e, e.r6.s);
            unsigned shift = 128 - widest6_;
            wide = shift >= 128 ? false
                   : shift >= 64 ? (d.hi >> (shift - 64)) != 0
                                 : d.hi != 0 || (d.lo >> shift) != 0;
        }
        if (wide) {
            b_.dropped_wide++;
            example(lineno, text + " is wider than /"
                                + std::to_string(e.family == 4 ? widest4_
                                                               : widest6_));
            return;
        }
        b_.entries++;
        if (e.family == 4) {
            b_.v4.push_back(e.r4);
        } else {
            b_.v6.push_back(e.r6);
        }
    }

    void example(uint64_t lineno, const std::string &what) {
        if (b_.example.empty()) {
            b_.example = "line " + std::to_string(lineno) + ": " + what;
            if (b_.example.size() > 127) {
                b_.example.resize(127);
            }
        }
    }

    std::string source_;
    Build &b_;
    std::vector<Trusted> trusted_;
    unsigned widest4_ = 8;
    unsigned widest6_ = 32;
};

}  // namespace

bool cidr_parse(const char *text, size_t len, trl_cidr_t &out,
                std::string &why) {
    Entry e;
    if (!parse_cidr(text, len, e, &out, why)) {
        why += ": \"" + quote(text, len) + "\"";
        return false;
    }
    return true;
}

const std::vector<trl_cidr_t> &builtin_trusted() {
    static const std::vector<trl_cidr_t> ranges = [] {
        std::vector<trl_cidr_t> v;
        for (const char *t : kBuiltinTrusted) {
            trl_cidr_t c;
            std::string why;
            Entry e;
            (void) parse_cidr(t, std::strlen(t), e, &c, why);
            v.push_back(c);
        }
        return v;
    }();
    return ranges;
}

bool rep_parse(const char *text, size_t len, const char *source,
               const trl_rep_rules_t *rules, Build &b, std::string &why) {
    Parser parser(source, rules, b);
    if (!parser.run(text, len, why)) {
        return false;
    }
    normalise(b);
    return true;
}

}  // namespace trl
