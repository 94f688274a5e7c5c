// policy.cpp - policy files: ${VAR} substitution, value parsers, and the
// walk that turns a YAML Document into a validated PolicySet.
#include "policy.hpp"

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "grammar.hpp"
#include "rate.hpp"
#include "reputation_terms.hpp"
#include "trl_distinct.h"

namespace trl {
namespace {

// ---- small helpers ------------------------------------------------------

bool is_digit(char c) { return c >= '0' && c <= '9'; }

char lower(char c) { return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c; }

bool iequals(const std::string &s, const char *word) {
    size_t n = std::strlen(word);
    if (s.size() != n) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if (lower(s[i]) != word[i]) {
            return false;
        }
    }
    return true;
}

// Reads digits into value; false on no digit or on a value above limit.
bool read_uint(const char *&p, const char *end, uint64_t limit,
               uint64_t &value, bool &overflow) {
    const char *start = p;
    value = 0;
    overflow = false;
    while (p < end && is_digit(*p)) {
        uint64_t d = static_cast<uint64_t>(*p - '0');
        if (value > (limit - d) / 10) {
            overflow = true;
        } else {
            value = value * 10 + d;
        }
        p++;
    }
    return p != start;
}

std::string quote(const std::string &s) {
    std::string out = "\"";
    for (char c : s) {
        unsigned char u = static_cast<unsigned char>(c);
        if (c == '"' || c == '\\') {
            out += '\\';
            out += c;
        } else if (u < 0x20 || u == 0x7f) {
            char hex[8];
            std::snprintf(hex, sizeof(hex), "\\x%02x", u);
            out += hex;
        } else {
            out += c;
        }
    }
    return out + "\"";
}

bool valid_name_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c) ||
           c == '_' || c == '-' || c == '.';
}

bool valid_var_start(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

bool valid_var_char(char c) { return valid_var_start(c) || is_digit(c); }

// true/false/yes/no/on/off/1/0, any case.
bool parse_bool(const std::string &s, bool &v) {
    static const char *const kTrue[] = {"true", "yes", "on", "1"};
    static const char *const kFalse[] = {"false", "no", "off", "0"};
    for (const char *w : kTrue) {
        if (iequals(s, w)) {
            v = true;
            return true;
        }
    }
    for (const char *w : kFalse) {
        if (iequals(s, w)) {
            v = false;
            return true;
        }
    }
    return false;
}

const char kBoolExpected[] =
    "expected true or false (also yes/no, on/off, 1/0)";

// ---- the partial policy: what defaults or one policy say ----------------

template <typename T>
struct Field {
    bool set = false;
    T value{};
    Mark mark;
    std::string shown;       // the value as written (after substitution)

    void put(const T &v, const Mark &m, const std::string &s) {
        set = true;
        value = v;
        mark = m;
        shown = s;
    }
};

template <typename T>
void inherit(Field<T> &f, const Field<T> &from) {
    if (!f.set) {
        f = from;
    }
}


struct Partial {
    Field<trl_rate_t> rate;
    Field<std::string> key;
    Field<std::string> distinct;     // "" (distinct: off): requests
    Field<uint64_t> zone_size;
    Field<uint32_t> count;
    Field<Warn> warn;
    Field<bool> dry_run;
    Field<uint32_t> sync;
    Field<uint32_t> log_rate;
    Field<uint32_t> log_key;
    Field<bool> penalty;     // set: penalty: given (value true: a mapping)
    Field<uint64_t> base;
    Field<uint64_t> max;
    Field<uint64_t> forgive;
    Field<double> factor;
    Field<trl_rep_terms_t> scale;    // n 0 (scale: off): none
    Field<trl_rep_terms_t> penalty_level;
    Field<uint32_t> deny_score;      // 0 (deny_score: off): none
    Field<trl_ban_t> ban;            // count 0 (ban: off): none
    Field<uint64_t> active;          // active: (issue 15); UINT64_MAX:
                                     // off, 0: on (MAX = the window)
    Field<std::string> lifetime;     // "": none
    Field<std::string> token;        // "": none
};

const char *const kTopKeys[] = {"enabled", "environment", "defaults",
                                "environments"};
const char *const kPolicyKeys[] = {"rate", "key", "count", "warn", "penalty",
                                   "dry_run", "sync", "zone_size",
                                   "log_rate", "log_key", "distinct",
                                   "scale", "penalty_level", "deny_score",
                                   "ban", "active", "lifetime", "token"};
const char *const kPenaltyKeys[] = {"base", "factor", "max", "forgive"};

template <size_t N>
std::string list(const char *const (&words)[N]) {
    std::string out;
    for (size_t i = 0; i < N; i++) {
        out += (i ? ", " : "") + std::string(words[i]);
    }
    return out;
}

template <size_t N>
bool one_of(const std::string &s, const char *const (&words)[N]) {
    for (const char *w : words) {
        if (s == w) {
            return true;
        }
    }
    return false;
}

const char *kind_name(const YamlNode &n) {
    switch (n.kind) {
    case YamlNode::kMapping: return "a mapping";
    case YamlNode::kSequence: return "a sequence";
    default: return "a scalar";
    }
}

// ---- the walk -----------------------------------------------------------

class Loader {
public:
    Loader(const Document &doc, const EnvLookup &lookup, std::string &why)
        : doc_(doc), lookup_(lookup), why_(why) {}

    bool load(const char *environment, PolicySet &set);

private:
    struct Env {
        std::string name;
        Mark mark;
        std::vector<Policy> policies;
    };

    const YamlNode &node(uint32_t id) const { return doc_.nodes[id]; }

    bool fail(const Mark &m, const std::string &what) {
        why_ = doc_.path + ":" + std::to_string(m.line) + ":" +
               std::to_string(m.column) + ": " + what;
        return false;
    }

    // A mapping (or a null, taken as an empty one) for `what`.
    bool expect_mapping(uint32_t id, const std::string &what,
                        const std::string &expected) {
        const YamlNode &n = node(id);
        if (n.kind == YamlNode::kMapping || n.is_null()) {
            return true;
        }
        return fail(n.mark, what + " is " + kind_name(n) + "; expected " +
                                expected);
    }

    // A scalar value with ${VAR}s substituted.
    bool scalar(uint32_t id, const std::string &what, std::string &out,
                std::string &shown) {
        const YamlNode &n = node(id);
        if (n.kind != YamlNode::kScalar) {
            return fail(n.mark, what + " is " + kind_name(n) +
                                    "; expected a scalar value");
        }
        std::string reason;
        if (!substitute(n.text, lookup_, out, reason)) {
            return fail(n.mark, reason + " (in " + what + ")");
        }
        shown = quote(out);
        if (out != n.text) {
            shown += " (from " + quote(n.text) + ")";
        }
        return true;
    }

    bool bad(uint32_t id, const std::string &field, const std::string &where,
             const std::string &shown, const std::string &reason) {
        return fail(node(id).mark, "bad " + field + " " + shown +
                                       (where.empty() ? "" : " in " + where) +
                                       "; " + reason);
    }

    bool name(uint32_t id, const char *what) {
        const YamlNode &n = node(id);
        bool ok = !n.text.empty() && n.text.size() <= 63;
        for (char c : n.text) {
            ok = ok && valid_name_char(c);
        }
        if (!ok) {
            return fail(n.mark, std::string("invalid ") + what + " name " +
                                    quote(n.text) + "; expected 1 to 63 "
                                    "letters, digits, '_', '-' or '.'");
        }
        return true;
    }

    bool partial(uint32_t id, const std::string &where, Partial &p);
    bool penalty(uint32_t id, const std::string &where, Partial &p);
    bool finish(const std::string &name, const Mark &at,
                const std::string &where, const Partial &own, Policy &out);

    const Document &doc_;
    const EnvLookup &lookup_;
    std::string &why_;
    Partial defaults_;
};

bool Loader::partial(uint32_t id, const std::string &where, Partial &p) {
    const YamlNode &m = node(id);
    for (size_t i = 0; i + 1 < m.kids.size(); i += 2) {
        const YamlNode &k = node(m.kids[i]);
        uint32_t v = m.kids[i + 1];
        const std::string &key = k.text;
        std::string what = key + " in " + where;

        if (!one_of(key, kPolicyKeys)) {
            return fail(k.mark, "unknown key " + quote(key) + " in " + where +
                                    "; expected one of: " +
                                    list(kPolicyKeys));
        }
        if (key == "penalty" && node(v).kind == YamlNode::kMapping) {
            if (!penalty(v, where, p)) {
                return false;
            }
            continue;
        }
        if (key == "penalty" && node(v).kind == YamlNode::kSequence) {
            return fail(node(v).mark, what + " is a sequence; expected a "
                                             "mapping with base (and "
                                             "factor, max, forgive) or off");
        }

        std::string s, shown;
        if (!scalar(v, what, s, shown)) {
            return false;
        }
        Mark at = node(v).mark;
        std::string reason;

        if (key == "rate") {
            trl_rate_t r{};
            if (!parse_rate(s.data(), s.size(), r, reason)) {
                return bad(v, key, where, shown, reason);
            }
            p.rate.put(r, at, shown);
        } else if (key == "key") {
            if (s.empty()) {
                return bad(v, key, where, shown, "expected a non-empty nginx "
                                           "string such as "
                                           "$binary_remote_addr");
            }
            if (s.find('\0') != std::string::npos) {
                return bad(v, key, where, shown, "expected no NUL character");
            }
            p.key.put(s, at, shown);
        } else if (key == "distinct") {
            // as token_ratelimit_zone's distinct=: a string with variables
            if (s == "off") {
                s.clear();
            } else if (s.find('$') == std::string::npos
                       || s.find('\0') != std::string::npos) {
                return bad(v, key, where, shown, "expected an nginx string "
                                           "with variables such as "
                                           "$trl_user, or off");
            }
            p.distinct.put(s, at, shown);
        } else if (key == "active") {
            // as token_ratelimit_zone's active[=MAX], or off
            uint64_t max_ms = UINT64_MAX;
            if (s != "off" && !parse_active(s.data(), s.size(), max_ms,
                                            reason)) {
                return bad(v, key, where, shown, reason + ", or off");
            }
            p.active.put(max_ms, at, shown);
        } else if (key == "lifetime" || key == "token") {
            // as token_ratelimit_zone's lifetime= and token=
            if (s.empty() || s.find('\0') != std::string::npos) {
                return bad(v, key, where, shown, "expected a non-empty nginx "
                                           "string such as "
                                           "$upstream_http_x_expires_in");
            }
            (key == "lifetime" ? p.lifetime : p.token).put(s, at, shown);
        } else if (key == "scale" || key == "penalty_level") {
            // as token_ratelimit's scale= and penalty_level=, or off
            trl_rep_terms_t t{};
            if (s != "off"
                && !(key == "scale"
                         ? scale_parse(s.data(), s.size(), t, reason)
                         : level_parse(s.data(), s.size(), t, reason))) {
                return bad(v, key, where, shown, reason + ", or off");
            }
            (key == "scale" ? p.scale : p.penalty_level).put(t, at, shown);
        } else if (key == "ban") {
            // as token_ratelimit's ban=
            trl_ban_t b{};
            if (!parse_ban(s.data(), s.size(), b, reason)) {
                return bad(v, key, where, shown, reason);
            }
            p.ban.put(b, at, shown);
        } else if (key == "deny_score") {
            uint32_t score = 0;
            if (s != "off"
                && !score_parse(s.data(), s.size(), score, reason)) {
                return bad(v, key, where, shown, reason + ", or off");
            }
            p.deny_score.put(score, at, shown);
        } else if (key == "count") {
            uint32_t c;
            if (!parse_count(s.data(), s.size(), c, reason)) {
                return bad(v, key, where, shown, reason);
            }
            p.count.put(c, at, shown);
        } else if (key == "sync") {
            uint32_t c;
            if (!parse_sync(s.data(), s.size(), c, reason)) {
                return bad(v, key, where, shown, reason);
            }
            p.sync.put(c, at, shown);
        } else if (key == "log_rate") {
            uint32_t r;
            if (!parse_log_rate(s.data(), s.size(), r, reason)) {
                return bad(v, key, where, shown, reason);
            }
            p.log_rate.put(r, at, shown);
        } else if (key == "log_key") {
            uint32_t m;
            if (!parse_log_key(s.data(), s.size(), m, reason)) {
                return bad(v, key, where, shown, reason);
            }
            p.log_key.put(m, at, shown);
        } else if (key == "dry_run") {
            bool b;
            if (!parse_bool(s, b)) {
                return bad(v, key, where, shown, kBoolExpected);
            }
            p.dry_run.put(b, at, shown);
        } else if (key == "zone_size") {
            uint64_t bytes;
            if (!parse_size(s.data(), s.size(), bytes, reason)) {
                return bad(v, key, where, shown, reason);
            }
            if (bytes < kPolicyMinZoneSize) {
                return bad(v, key, where, shown, "expected at least 32k");
            }
            p.zone_size.put(bytes, at, shown);
        } else if (key == "warn") {
            Warn w;
            bool on;
            if (!parse_warn(s.data(), s.size(), w, reason)) {
                // off is also no, false (but 0 is a count, and too low)
                if (!s.empty() && s[0] != '0' && parse_bool(s, on) && !on) {
                    w.off = true;           // also no, false, 0
                } else {
                    return bad(v, key, where, shown, reason);
                }
            }
            p.warn.put(w, at, shown);
        } else if (key == "penalty") {
            bool on;
            if (!parse_bool(s, on) || on) {
                return bad(v, key, where, shown,
                           "expected a mapping with base (and factor, max, "
                           "forgive) or off");
            }
            p.penalty.put(false, at, shown);
        }
    }
    return true;
}

bool Loader::penalty(uint32_t id, const std::string &where, Partial &p) {
    const YamlNode &m = node(id);
    p.penalty.put(true, m.mark, "");
    for (size_t i = 0; i + 1 < m.kids.size(); i += 2) {
        const YamlNode &k = node(m.kids[i]);
        uint32_t v = m.kids[i + 1];
        const std::string &key = k.text;
        std::string what = "penalty." + key + " in " + where;

        if (!one_of(key, kPenaltyKeys)) {
            return fail(k.mark, "unknown key " + quote(key) +
                                    " in the penalty of " + where +
                                    "; expected one of: " +
                                    list(kPenaltyKeys));
        }
        std::string s, shown, reason;
        if (!scalar(v, what, s, shown)) {
            return false;
        }
        Mark at = node(v).mark;
        if (key == "factor") {
            double f;
            if (!parse_factor(s.data(), s.size(), f, reason)) {
                return bad(v, "penalty." + key, where, shown, reason);
            }
            p.factor.put(f, at, shown);
            continue;
        }
        uint64_t ms;
        if (!parse_penalty_time(s.data(), s.size(), ms, reason)) {
            return bad(v, "penalty." + key, where, shown, reason);
        }
        Field<uint64_t> &f = key == "base" ? p.base
                             : key == "max" ? p.max
                                            : p.forgive;
        f.put(ms, at, shown);
    }
    return true;
}

bool Loader::finish(const std::string &name, const Mark &at,
                    const std::string &where, const Partial &own,
                    Policy &out) {
    Partial p = own;
    const Partial &d = defaults_;
    inherit(p.rate, d.rate);
    inherit(p.key, d.key);
    inherit(p.distinct, d.distinct);
    inherit(p.active, d.active);
    inherit(p.lifetime, d.lifetime);
    inherit(p.token, d.token);
    inherit(p.zone_size, d.zone_size);
    inherit(p.count, d.count);
    inherit(p.warn, d.warn);
    inherit(p.dry_run, d.dry_run);
    inherit(p.sync, d.sync);
    inherit(p.log_rate, d.log_rate);
    inherit(p.log_key, d.log_key);
    inherit(p.scale, d.scale);
    inherit(p.penalty_level, d.penalty_level);
    inherit(p.deny_score, d.deny_score);
    inherit(p.ban, d.ban);
    if (!own.penalty.set) {
        p.penalty = d.penalty;
    }
    if (p.penalty.set && p.penalty.value && d.penalty.set &&
        d.penalty.value) {
        inherit(p.base, d.base);
        inherit(p.max, d.max);
        inherit(p.forgive, d.forgive);
        inherit(p.factor, d.factor);
    }

    if (!p.rate.set) {
        return fail(at, where + " has no rate; expected rate: (e.g. "
                            "20r/15m) in the policy or in defaults");
    }
    if (!p.key.set) {
        return fail(at, where + " has no key; expected key: (e.g. "
                            "$binary_remote_addr) in the policy or in "
                            "defaults");
    }

    out = Policy();
    out.name = name;
    out.line = at.line;
    out.rate = p.rate.value;
    out.key = p.key.value;
    out.zone_size = p.zone_size.set ? p.zone_size.value : kPolicyZoneSize;
    out.count = p.count.set ? p.count.value : TRL_COUNT_ALL;
    out.sync = p.sync.set ? p.sync.value : TRL_SYNC_MODE_OFF;
    out.dry_run = p.dry_run.set && p.dry_run.value;
    out.log_rate = p.log_rate.set ? p.log_rate.value : 0;
    out.log_key = p.log_key.set ? p.log_key.value : TRL_LOG_KEY_ON;
    out.distinct = p.distinct.set ? p.distinct.value : std::string();
    out.scale = p.scale.set ? p.scale.value : trl_rep_terms_t{};
    out.penalty_level = p.penalty_level.set ? p.penalty_level.value
                                            : trl_rep_terms_t{};
    out.deny_score = p.deny_score.set ? p.deny_score.value : 0;
    out.ban = p.ban.set ? p.ban.value : trl_ban_t{};

    out.active = p.active.set && p.active.value != UINT64_MAX;
    out.active_max_ms = out.active ? p.active.value : 0;
    out.lifetime = p.lifetime.set ? p.lifetime.value : std::string();
    out.token = p.token.set ? p.token.value : std::string();

    uint32_t n = out.rate.limit;
    if (!out.active && (p.lifetime.set || p.token.set)) {
        const auto &f = p.lifetime.set ? p.lifetime : p.token;
        return fail(f.mark, std::string(p.lifetime.set ? "lifetime " : "token ")
                                + f.shown + " of " + where
                                + " needs active: on (or the longest "
                                  "lifetime)");
    }
    if (out.active) {
        if (!out.distinct.empty()) {
            return fail(p.active.mark, "active " + p.active.shown + " of " +
                                           where + " cannot be combined "
                                           "with distinct: a zone counts "
                                           "active places or distinct "
                                           "values");
        }
        if (n > TRL_DISTINCT_MAX_LIMIT) {
            return fail(p.rate.mark,
                        "rate " + p.rate.shown + " of " + where +
                            " holds active places (active: " +
                            p.active.shown + "); expected at most " +
                            std::to_string(TRL_DISTINCT_MAX_LIMIT) +
                            " per key");
        }
        if (out.active_max_ms != 0 && out.active_max_ms < out.rate.window_ms) {
            return fail(p.active.mark,
                        "active " + p.active.shown + " of " + where +
                            " is below the rate's window (" + p.rate.shown +
                            "): the longest lifetime must be at least the "
                            "lifetime of a token whose answer tells none");
        }
    }
    if (!out.distinct.empty()) {
        if (n > TRL_DISTINCT_MAX_LIMIT) {
            return fail(p.rate.mark,
                        "rate " + p.rate.shown + " of " + where +
                            " counts distinct values (distinct: " +
                            p.distinct.shown + "); expected at most " +
                            std::to_string(TRL_DISTINCT_MAX_LIMIT) +
                            " per window");
        }
    }
    if (p.warn.set && !p.warn.value.off) {
        const Warn &w = p.warn.value;
        if (w.percent) {
            out.warn = static_cast<uint32_t>(
                (static_cast<uint64_t>(n) * w.value + 99) / 100);
        } else if (w.value > n) {
            return fail(p.warn.mark,
                        "warn " + p.warn.shown + " is above the rate's " +
                            std::to_string(n) + " requests for " + where +
                            "; expected 1 to " + std::to_string(n) +
                            " or a percentage");
        } else {
            out.warn = w.value;
        }
    }

    if (p.penalty.set && p.penalty.value) {
        if (!p.base.set) {
            return fail(p.penalty.mark,
                        "the penalty of " + where + " has no base; "
                        "expected base: <duration> (e.g. 30s)");
        }
        trl_penalty_t pen{p.base.value, p.max.value, p.forgive.value,
                          p.factor.value, 0};
        std::string reason;
        if (!finish_penalty(pen, p.factor.set, p.max.set, p.forgive.set,
                            reason)) {
            return fail(p.max.mark,
                        "penalty.max " + p.max.shown +
                            " is below penalty.base " + p.base.shown +
                            " for " + where + "; expected max >= base");
        }
        out.penalty = pen;
    }
    return true;
}

bool Loader::load(const char *environment, PolicySet &set) {
    if (doc_.empty || node(doc_.root).is_null()) {
        Mark m = doc_.empty ? Mark() : node(doc_.root).mark;
        return fail(m, "the policy file is empty; expected a mapping with "
                       "environments:");
    }
    const YamlNode &root = node(doc_.root);
    if (root.kind != YamlNode::kMapping) {
        return fail(root.mark, "the top level is " +
                                   std::string(kind_name(root)) +
                                   "; expected a mapping with "
                                   "environments:");
    }

    // where each top-level key's value is (0: absent)
    uint32_t enabled = 0, file_env = 0, defaults = 0, envs = 0;
    Mark envs_key;
    for (size_t i = 0; i + 1 < root.kids.size(); i += 2) {
        const YamlNode &k = node(root.kids[i]);
        uint32_t v = root.kids[i + 1];
        if (k.text == "enabled") {
            enabled = v;
        } else if (k.text == "environment") {
            file_env = v;
        } else if (k.text == "defaults") {
            defaults = v;
        } else if (k.text == "environments") {
            envs = v;
            envs_key = k.mark;
        } else {
            return fail(k.mark, "unknown key " + quote(k.text) +
                                    " at the top level; expected one of: " +
                                    list(kTopKeys));
        }
    }

    set = PolicySet();
    std::string s, shown;

    if (enabled != 0) {
        if (!scalar(enabled, "enabled", s, shown)) {
            return false;
        }
        if (!parse_bool(s, set.enabled)) {
            return bad(enabled, "enabled", "", shown, kBoolExpected);
        }
    }

    std::string chosen;
    Mark chosen_at = envs_key;
    bool from_caller = environment != nullptr && *environment != '\0';
    if (from_caller) {
        chosen = environment;
    } else if (file_env != 0) {
        if (!scalar(file_env, "environment", chosen, shown)) {
            return false;
        }
        chosen_at = node(file_env).mark;
    }

    if (defaults != 0) {
        if (!expect_mapping(defaults, "defaults",
                            "a mapping of policy settings")) {
            return false;
        }
        if (!partial(defaults, "defaults", defaults_)) {
            return false;
        }
    }

    if (envs == 0) {
        return fail(root.mark, "no environments: in the policy file; "
                               "expected environments: with at least one "
                               "environment of policies");
    }
    if (!expect_mapping(envs, "environments",
                        "a mapping of environment names to policies")) {
        return false;
    }
    const YamlNode &em = node(envs);
    if (em.kids.empty()) {
        return fail(em.mark, "environments: is empty; expected at least one "
                             "environment of policies");
    }

    std::vector<Env> all;
    for (size_t i = 0; i + 1 < em.kids.size(); i += 2) {
        uint32_t kid = em.kids[i];
        uint32_t v = em.kids[i + 1];
        if (!name(kid, "environment")) {
            return false;
        }
        Env env;
        env.name = node(kid).text;
        env.mark = node(kid).mark;
        std::string ewhere = "environment " + quote(env.name);
        if (!expect_mapping(v, ewhere, "a mapping of policy names to "
                                       "policies")) {
            return false;
        }
        const YamlNode &pm = node(v);
        for (size_t j = 0; j + 1 < pm.kids.size(); j += 2) {
            uint32_t pk = pm.kids[j];
            uint32_t pv = pm.kids[j + 1];
            if (!name(pk, "policy")) {
                return false;
            }
            const std::string &pname = node(pk).text;
            std::string where = "policy " + quote(pname) + " of " + ewhere;
            if (!expect_mapping(pv, where, "a mapping of policy settings "
                                           "(rate, key, ...)")) {
                return false;
            }
            Partial own;
            if (!partial(pv, where, own)) {
                return false;
            }
            Policy pol;
            if (!finish(pname, node(pk).mark, where, own, pol)) {
                return false;
            }
            env.policies.push_back(std::move(pol));
        }
        all.push_back(std::move(env));
    }

    std::string names;
    for (const Env &e : all) {
        names += (names.empty() ? "" : ", ") + e.name;
    }

    const Env *pick = nullptr;
    if (chosen.empty() && !from_caller && file_env == 0) {
        if (all.size() != 1) {
            return fail(envs_key, "no environment chosen among " + names +
                                      "; expected environment: NAME at the "
                                      "top level or an environment named "
                                      "in nginx.conf");
        }
        pick = &all[0];
    } else {
        for (const Env &e : all) {
            if (e.name == chosen) {
                pick = &e;
            }
        }
        if (pick == nullptr) {
            return fail(chosen_at,
                        "unknown environment " + quote(chosen) +
                            (from_caller ? " (requested by the caller)"
                                         : "") +
                            "; expected one of: " + names);
        }
    }

    set.environment = pick->name;
    set.policies = pick->policies;
    for (size_t i = 0; i < set.policies.size(); i++) {
        set.index.emplace(set.policies[i].name, i);
    }
    return true;
}

}  // namespace

// ---- public -------------------------------------------------------------

const Policy *PolicySet::find(const std::string &name) const {
    auto it = index.find(name);
    return it == index.end() ? nullptr : &policies[it->second];
}

bool EnvLookup::get(const std::string &name, std::string &value) const {
    const char *v = fn != nullptr ? fn(ctx, name.data(), name.size())
                                  : std::getenv(name.c_str());
    if (v == nullptr) {
        return false;
    }
    value = v;
    return true;
}

bool substitute(const std::string &text, const EnvLookup &lookup,
                std::string &out, std::string &why) {
    const char kForms[] = "expected ${NAME} or ${NAME:-default} with NAME "
                          "of letters, digits and '_' (not starting with "
                          "a digit)";
    out.clear();
    size_t i = 0;
    while (i < text.size()) {
        if (text[i] != '$' || i + 1 >= text.size() || text[i + 1] != '{') {
            out += text[i++];
            continue;
        }
        size_t close = text.find('}', i + 2);
        if (close == std::string::npos) {
            why = "unterminated variable reference " +
                  quote(text.substr(i)) + "; " + kForms;
            return false;
        }
        std::string ref = text.substr(i, close + 1 - i);
        size_t j = i + 2;
        size_t name_start = j;
        if (j < close && valid_var_start(text[j])) {
            j++;
            while (j < close && valid_var_char(text[j])) {
                j++;
            }
        }
        std::string name = text.substr(name_start, j - name_start);
        bool has_default = false;
        std::string def;
        if (j < close) {
            if (text.compare(j, 2, ":-") != 0 || name.empty()) {
                why = "bad variable reference " + quote(ref) + "; " + kForms;
                return false;
            }
            has_default = true;
            def = text.substr(j + 2, close - j - 2);
            if (def.find("${") != std::string::npos) {
                why = "nested variable reference in " + quote(ref) +
                      "; expected a literal default";
                return false;
            }
        } else if (name.empty()) {
            why = "bad variable reference " + quote(ref) + "; " + kForms;
            return false;
        }
        std::string value;
        bool found = lookup.get(name, value);
        if (found && !(value.empty() && has_default)) {
            out += value;
        } else if (has_default) {
            out += def;
        } else {
            why = "variable " + name + " is not set; expected it in the "
                  "environment (or an env directive of nginx.conf) or a "
                  "default: ${" + name + ":-value}";
            return false;
        }
        i = close + 1;
    }
    return true;
}

bool parse_duration(const char *text, std::size_t len, uint64_t &ms,
                    std::string &why) {
    const char kExpected[] = "expected <N><unit> with unit ms, s, m, h or d "
                             "(e.g. 500ms, 30s, 15m, 1h30m)";
    const char *p = text;
    const char *end = text + len;
    uint64_t total = 0;
    bool too_long = false;
    if (p == end) {
        why = kExpected;
        return false;
    }
    while (p < end) {
        uint64_t n;
        bool overflow;
        if (!read_uint(p, end, UINT64_MAX / 2, n, overflow) || p == end) {
            why = kExpected;
            return false;
        }
        uint64_t unit;
        if (end - p >= 2 && p[0] == 'm' && p[1] == 's') {
            unit = 1;
            p += 2;
        } else {
            switch (*p) {
            case 's': unit = 1000; break;
            case 'm': unit = 60 * 1000; break;
            case 'h': unit = 3600 * 1000; break;
            case 'd': unit = 86400 * 1000; break;
            default:
                why = kExpected;
                return false;
            }
            p++;
        }
        if (overflow || n > kDurationMaxMs / unit) {
            too_long = true;
        } else {
            total += n * unit;
            too_long = too_long || total > kDurationMaxMs;
        }
    }
    if (too_long) {
        why = "the duration must be at most 365d";
        return false;
    }
    ms = total;
    return true;
}

bool parse_size(const char *text, std::size_t len, uint64_t &bytes,
                std::string &why) {
    const char kExpected[] = "expected a size in bytes or with a k, m or g "
                             "suffix (e.g. 512k, 10m)";
    const char *p = text;
    const char *end = text + len;
    uint64_t n;
    bool overflow;
    if (!read_uint(p, end, UINT64_MAX, n, overflow)) {
        why = kExpected;
        return false;
    }
    unsigned shift = 0;
    if (p < end) {
        switch (lower(*p)) {
        case 'k': shift = 10; break;
        case 'm': shift = 20; break;
        case 'g': shift = 30; break;
        default:
            why = kExpected;
            return false;
        }
        p++;
    }
    if (p != end) {
        why = kExpected;
        return false;
    }
    if (overflow || n > (UINT64_MAX >> shift)) {
        why = "the size is too large";
        return false;
    }
    bytes = n << shift;
    return true;
}

bool load_policies(const std::string &path, const char *environment,
                   const EnvLookup &lookup, PolicySet &set,
                   std::string &why) {
    Document doc;
    if (!parse_yaml_file(path, doc, why)) {
        return false;
    }
    Loader loader(doc, lookup, why);
    return loader.load(environment, set);
}

}  // namespace trl
