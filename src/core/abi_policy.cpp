// abi_policy.cpp - the extern "C" entry points of policy files, durations
// and sizes; like abi.cpp, every one catches.
#include <cstring>
#include <memory>
#include <new>
#include <string>

#include "grammar.hpp"
#include "policy.hpp"
#include "trl_core.h"

struct trl_policy_set_s {
    trl::PolicySet set;
};

namespace {

void put_error(char *err, size_t errlen, const std::string &why) {
    if (err == nullptr || errlen == 0) {
        return;
    }
    size_t n = why.size() < errlen - 1 ? why.size() : errlen - 1;
    std::memcpy(err, why.data(), n);
    err[n] = '\0';
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
    out->has_penalty = p.has_penalty ? 1 : 0;
    out->penalty_base_ms = p.penalty_base_ms;
    out->penalty_max_ms = p.penalty_max_ms;
    out->penalty_forgive_ms = p.penalty_forgive_ms;
    out->penalty_factor = p.penalty_factor;
    out->line = p.line;
}

}  // namespace

extern "C" {

trl_policy_set_t *trl_policy_load(const char *path, const char *environment,
                                  trl_env_lookup_pt lookup, void *lookup_ctx,
                                  char *err, size_t errlen) {
    try {
        if (path == nullptr) {
            put_error(err, errlen, "no policy file given");
            return nullptr;
        }
        trl::EnvLookup env;
        env.fn = lookup;
        env.ctx = lookup_ctx;
        std::unique_ptr<trl_policy_set_t> set(new trl_policy_set_t);
        std::string why;
        if (!trl::load_policies(path, environment, env, set->set, why)) {
            put_error(err, errlen, why);
            return nullptr;
        }
        return set.release();
    } catch (const std::bad_alloc &) {
        put_error(err, errlen, std::string(path) +
                                   ": out of memory loading the policy file");
    } catch (...) {
        put_error(err, errlen, "internal error loading a policy file");
    }
    return nullptr;
}

void trl_policy_free(trl_policy_set_t *set) {
    delete set;
}

int trl_policy_enabled(const trl_policy_set_t *set) {
    return set != nullptr && set->set.enabled ? 1 : 0;
}

const char *trl_policy_environment(const trl_policy_set_t *set) {
    return set != nullptr ? set->set.environment.c_str() : "";
}

size_t trl_policy_count(const trl_policy_set_t *set) {
    return set != nullptr ? set->set.policies.size() : 0;
}

int trl_policy_get(const trl_policy_set_t *set, size_t i,
                   trl_policy_t *out) {
    if (set == nullptr || out == nullptr || i >= set->set.policies.size()) {
        return TRL_ERROR;
    }
    fill(set->set.policies[i], out);
    return TRL_OK;
}

int trl_policy_find(const trl_policy_set_t *set, const char *name,
                    size_t len, trl_policy_t *out) {
    try {
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
    } catch (...) {
        return TRL_ERROR;
    }
}

int trl_duration_parse(const char *text, size_t len, uint64_t *ms, char *err,
                       size_t errlen) {
    try {
        std::string why;
        uint64_t v = 0;
        if (text != nullptr && trl::parse_duration(text, len, v, why)) {
            *ms = v;
            return TRL_OK;
        }
        put_error(err, errlen, text == nullptr ? "no duration" : why);
    } catch (...) {
        put_error(err, errlen, "internal error");
    }
    return TRL_ERROR;
}

int trl_size_parse(const char *text, size_t len, uint64_t *bytes, char *err,
                   size_t errlen) {
    try {
        std::string why;
        uint64_t v = 0;
        if (text != nullptr && trl::parse_size(text, len, v, why)) {
            *bytes = v;
            return TRL_OK;
        }
        put_error(err, errlen, text == nullptr ? "no size" : why);
    } catch (...) {
        put_error(err, errlen, "internal error");
    }
    return TRL_ERROR;
}

int trl_penalty_parse(const char *text, size_t len, trl_penalty_t *penalty,
                      char *err, size_t errlen) {
    try {
        std::string why;
        trl_penalty_t p;
        if (text != nullptr && trl::parse_penalty(text, len, p, why)) {
            *penalty = p;
            return TRL_OK;
        }
        put_error(err, errlen, text == nullptr ? "no penalty" : why);
    } catch (...) {
        put_error(err, errlen, "internal error");
    }
    return TRL_ERROR;
}

int trl_warn_parse(const char *text, size_t len, uint32_t *count,
                   uint32_t *percent, char *err, size_t errlen) {
    try {
        std::string why;
        trl::Warn w;
        if (text != nullptr && trl::parse_warn(text, len, w, why)) {
            *count = w.off || w.percent ? 0 : w.value;
            *percent = w.percent ? w.value : 0;
            return TRL_OK;
        }
        put_error(err, errlen, text == nullptr ? "no threshold" : why);
    } catch (...) {
        put_error(err, errlen, "internal error");
    }
    return TRL_ERROR;
}

}  // extern "C"
