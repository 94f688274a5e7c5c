// abi_policy.cpp - the extern "C" entry points of policy files and of the
// grammar shared with nginx.conf; like abi.cpp, every one runs in guard().
#include <cstring>
#include <memory>
#include <new>
#include <string>

#include "grammar.hpp"
#include "guard.hpp"
#include "policy.hpp"
#include "trl_core.h"
#include "trl_test.h"

struct trl_policy_set_s {
    trl::PolicySet set;
};

namespace {

using trl::ErrorOut;
using trl::guard;
using trl::put_error;

// A parser of the grammar behind its C entry point: the value to out on
// success, else the reason to err ("no <what>" for a null text).
template <typename T, typename Parse>
int parse_entry(const char *text, size_t len, T *out, const char *what,
                char *err, size_t errlen, Parse &&parse) noexcept {
    return guard(TRL_ERROR, ErrorOut{err, errlen}, [&] {
        std::string why;
        T v{};
        if (text == nullptr) {
            put_error(err, errlen, std::string("no ") + what);
            return TRL_ERROR;
        }
        if (!parse(text, len, v, why)) {
            put_error(err, errlen, why);
            return TRL_ERROR;
        }
        *out = v;
        return TRL_OK;
    });
}

void fill(const trl::Policy &p, trl_policy_t *out) {
    *out = trl_policy_t();
    // names are at most 63 characters (checked when loaded)
    size_t n = p.name.size() < sizeof(out->name) - 1 ? p.name.size()
                                                     : sizeof(out->name) - 1;
    std::memcpy(out->name, p.name.data(), n);
    out->key = p.key.c_str();
    out->rate = p.rate;
    out->zone_size = p.zone_size;
    out->count = p.count;
    out->warn = p.warn;
    out->sync = p.sync;
    out->dry_run = p.dry_run ? 1 : 0;
    out->log_rate = p.log_rate;
    out->log_key = p.log_key;
    out->penalty = p.penalty;
    out->line = p.line;
    out->distinct = p.distinct.empty() ? nullptr : p.distinct.c_str();
    out->active = p.active ? 1 : 0;
    out->active_max_ms = p.active_max_ms;
    out->lifetime = p.lifetime.empty() ? nullptr : p.lifetime.c_str();
    out->token = p.token.empty() ? nullptr : p.token.c_str();
    out->scale = p.scale;
    out->penalty_level = p.penalty_level;
    out->deny_score = p.deny_score;
    out->ban = p.ban;
}

}  // namespace

extern "C" {

trl_policy_set_t *trl_policy_load(const char *path, const char *environment,
                                  trl_env_lookup_pt lookup, void *lookup_ctx,
                                  char *err, size_t errlen) noexcept {
    ErrorOut out{err, errlen, "loading the policy file"};
    return guard<trl_policy_set_t *>(nullptr, out, [&] {
        if (path == nullptr) {
            put_error(err, errlen, "no policy file given");
            return static_cast<trl_policy_set_t *>(nullptr);
        }
        trl::EnvLookup env;
        env.fn = lookup;
        env.ctx = lookup_ctx;
        std::unique_ptr<trl_policy_set_t> set(new trl_policy_set_t);
        std::string why;
        if (!trl::load_policies(path, environment, env, set->set, why)) {
            put_error(err, errlen, why);
            return static_cast<trl_policy_set_t *>(nullptr);
        }
        return set.release();
    });
}

void trl_policy_free(trl_policy_set_t *set) noexcept {
    delete set;                     // destructors do not throw
}

int trl_policy_enabled(const trl_policy_set_t *set) noexcept {
    return set != nullptr && set->set.enabled ? 1 : 0;
}

const char *trl_policy_environment(const trl_policy_set_t *set) noexcept {
    return set != nullptr ? set->set.environment.c_str() : "";
}

size_t trl_policy_count(const trl_policy_set_t *set) noexcept {
    return set != nullptr ? set->set.policies.size() : 0;
}

int trl_policy_get(const trl_policy_set_t *set, size_t i,
                   trl_policy_t *out) noexcept {
    return guard(TRL_ERROR, [&] {
        if (set == nullptr || out == nullptr
            || i >= set->set.policies.size()) {
            return TRL_ERROR;
        }
        fill(set->set.policies[i], out);
        return TRL_OK;
    });
}

int trl_policy_find(const trl_policy_set_t *set, const char *name,
                    size_t len, trl_policy_t *out) noexcept {
    return guard(TRL_ERROR, [&] {
        if (set == nullptr || out == nullptr || (name == nullptr && len)) {
            return TRL_ERROR;
        }
        const trl::Policy *p =
            set->set.find(std::string(name == nullptr ? "" : name, len));
        if (p == nullptr) {
            return 1;
        }
        fill(*p, out);
        return TRL_OK;
    });
}

int trl_duration_parse(const char *text, size_t len, uint64_t *ms, char *err,
                       size_t errlen) noexcept {
    return parse_entry(text, len, ms, "duration", err, errlen,
                       trl::parse_duration);
}

int trl_size_parse(const char *text, size_t len, uint64_t *bytes, char *err,
                   size_t errlen) noexcept {
    return parse_entry(text, len, bytes, "size", err, errlen,
                       trl::parse_size);
}

int trl_penalty_parse(const char *text, size_t len, trl_penalty_t *penalty,
                      char *err, size_t errlen) noexcept {
    return parse_entry(text, len, penalty, "penalty", err, errlen,
                       trl::parse_penalty);
}

int trl_ban_parse(const char *text, size_t len, trl_ban_t *ban, char *err,
                  size_t errlen) noexcept {
    return parse_entry(text, len, ban, "ban", err, errlen, trl::parse_ban);
}

int trl_warn_parse(const char *text, size_t len, uint32_t *count,
                   uint32_t *percent, char *err, size_t errlen) noexcept {
    trl::Warn w;
    int rc = parse_entry(text, len, &w, "threshold", err, errlen,
                         trl::parse_warn);
    if (rc == TRL_OK) {
        *count = w.off || w.percent ? 0 : w.value;
        *percent = w.percent ? w.value : 0;
    }
    return rc;
}

int trl_count_parse(const char *text, size_t len, uint32_t *mode, char *err,
                    size_t errlen) noexcept {
    return parse_entry(text, len, mode, "count mode", err, errlen,
                       trl::parse_count);
}

int trl_sync_parse(const char *text, size_t len, uint32_t *mode, char *err,
                   size_t errlen) noexcept {
    return parse_entry(text, len, mode, "sync mode", err, errlen,
                       trl::parse_sync);
}

int trl_log_rate_parse(const char *text, size_t len, uint32_t *rate,
                       char *err, size_t errlen) noexcept {
    return parse_entry(text, len, rate, "log rate", err, errlen,
                       trl::parse_log_rate);
}

int trl_log_key_parse(const char *text, size_t len, uint32_t *mode,
                      char *err, size_t errlen) noexcept {
    return parse_entry(text, len, mode, "log key mode", err, errlen,
                       trl::parse_log_key);
}

}  // extern "C"
