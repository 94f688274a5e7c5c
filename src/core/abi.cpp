// abi.cpp - the extern "C" boundary of rates, zones and the Redis side:
// every entry point is noexcept and runs its body in guard(), so no C++
// exception ever reaches nginx.
#include <algorithm>
#include <cstring>
#include <string>
#include <time.h>

#include "guard.hpp"
#include "rate.hpp"
#include "sha256.hpp"
#include "siphash.hpp"
#include "sync.hpp"
#include "spinlock.hpp"
#include "trl_core.h"
#include "trl_test.h"
#include "zone.hpp"

namespace {

using trl::ErrorOut;
using trl::guard;
using trl::guard_void;
using trl::put_error;

// Rates come from trl_rate_parse(); anything else is refused, not misused.
bool valid(const trl_limit_t *limit) {
    return limit->rate.limit >= 1 && limit->rate.limit <= TRL_RATE_MAX_LIMIT
           && limit->rate.window_ms >= 1
           && limit->rate.window_ms <= TRL_RATE_MAX_WINDOW_MS;
}

trl::Zone zone_of(const trl_zone_t *zone) {
    return trl::Zone(reinterpret_cast<trl::Root *>(
        const_cast<trl_zone_t *>(zone)));
}

}  // namespace

extern "C" {

int trl_rate_parse(const char *text, size_t len, trl_rate_t *rate, char *err,
                   size_t errlen) noexcept {
    return guard(TRL_ERROR, ErrorOut{err, errlen}, [&] {
        std::string why;
        if (trl::parse_rate(text, len, *rate, why)) {
            return TRL_OK;
        }
        put_error(err, errlen, why);
        return TRL_ERROR;
    });
}

size_t trl_rate_format(const trl_rate_t *rate, char *buf,
                       size_t len) noexcept {
    put_error(buf, len, "");
    return guard(size_t{0}, [&] {
        std::string s = trl::format_rate(*rate);
        put_error(buf, len, s);
        return s.size() < len ? s.size() : (len ? len - 1 : 0);
    });
}

void trl_siphash128(const uint8_t seed[16], const void *data, size_t len,
                    trl_hash_t *out) noexcept {
    guard_void([&] { *out = trl::siphash128(seed, data, len); });
}

size_t trl_zone_min_size(void) noexcept {
    return guard(size_t{0}, [] { return trl::Zone::min_size(); });
}

trl_zone_t *trl_zone_create(void *mem, size_t size, unsigned flags,
                            char *err, size_t errlen) noexcept {
    return guard<trl_zone_t *>(nullptr, ErrorOut{err, errlen}, [&] {
        std::string why;
        trl::Root *r = trl::Zone::create(mem, size, flags, why);
        if (r == nullptr) {
            put_error(err, errlen, why);
        }
        return reinterpret_cast<trl_zone_t *>(r);
    });
}

trl_zone_t *trl_zone_attach(void *mem, size_t size, char *err,
                            size_t errlen) noexcept {
    return guard<trl_zone_t *>(nullptr, ErrorOut{err, errlen}, [&] {
        std::string why;
        trl::Root *r = trl::Zone::attach(mem, size, why);
        if (r == nullptr) {
            put_error(err, errlen, why);
        }
        return reinterpret_cast<trl_zone_t *>(r);
    });
}

unsigned trl_zone_flags(const trl_zone_t *zone) noexcept {
    return guard(0u, [&] { return zone_of(zone).flags(); });
}

uint32_t trl_zone_capacity(const trl_zone_t *zone) noexcept {
    return guard(uint32_t{0}, [&] { return zone_of(zone).capacity(); });
}

size_t trl_zone_entry_size(void) noexcept {
    return sizeof(trl::Entry);      // a constant: nothing to guard
}

void trl_zone_hash(const trl_zone_t *zone, const void *key, size_t len,
                   trl_hash_t *out) noexcept {
    guard_void([&] { *out = zone_of(zone).hash(key, len); });
}

void trl_set_pid(int pid) noexcept {
    guard_void([&] { trl::set_current_pid(static_cast<uint32_t>(pid)); });
}

int trl_zone_acquire(trl_zone_t *zone, const trl_hash_t *key,
                     const trl_limit_t *limit, uint64_t now_ms,
                     trl_result_t *res) noexcept {
    return guard(TRL_ERROR, [&] {
        return valid(limit) ? zone_of(zone).acquire(*key, *limit, now_ms,
                                                    *res)
                            : TRL_ERROR;
    });
}

int trl_zone_release(trl_zone_t *zone, const trl_hash_t *key,
                     const trl_limit_t *limit, uint64_t ticket,
                     uint64_t now_ms) noexcept {
    return guard(TRL_ERROR, [&] {
        return valid(limit) ? zone_of(zone).release(*key, *limit, ticket,
                                                    now_ms)
                            : TRL_ERROR;
    });
}

int trl_zone_peek(trl_zone_t *zone, const trl_hash_t *key,
                  const trl_limit_t *limit, uint64_t now_ms,
                  trl_result_t *res) noexcept {
    return guard(TRL_ERROR, [&] {
        return valid(limit) ? zone_of(zone).peek(*key, *limit, now_ms, *res)
                            : TRL_ERROR;
    });
}

int trl_zone_sync_apply(trl_zone_t *zone, const trl_hash_t *key,
                        const trl_limit_t *limit, const trl_sync_read_t *read,
                        uint64_t now_ms) noexcept {
    return guard(TRL_ERROR, [&] {
        return valid(limit) ? zone_of(zone).sync_apply(*key, *limit, *read,
                                                       now_ms)
                            : TRL_ERROR;
    });
}

int trl_zone_async_apply(trl_zone_t *zone, const trl_hash_t *key,
                         const trl_limit_t *limit,
                         const trl_ask_reply_t *reply, uint64_t now_ms,
                         trl_result_t *res) noexcept {
    return guard(TRL_ERROR, [&] {
        return valid(limit) ? zone_of(zone).async_apply(*key, *limit, *reply,
                                                        now_ms, *res)
                            : TRL_ERROR;
    });
}

uint64_t trl_zone_node_id(const trl_zone_t *zone) noexcept {
    return guard(uint64_t{0}, [&] { return zone_of(zone).node_id(); });
}

uint32_t trl_lease_ms(uint64_t window_ms) noexcept {
    return static_cast<uint32_t>(std::min<uint64_t>(TRL_LEASE_MS,
                                                    window_ms / 4));
}

int trl_zone_sync_unpend(trl_zone_t *zone, const trl_hash_t *key,
                         uint32_t n) noexcept {
    return guard(TRL_ERROR,
                 [&] { return zone_of(zone).sync_unpend(*key, n); });
}

int trl_zone_sync_watch(trl_zone_t *zone, const trl_hash_t *key,
                        const trl_limit_t *limit, uint64_t now_ms) noexcept {
    return guard(TRL_ERROR, [&] {
        return valid(limit) ? zone_of(zone).sync_watch(*key, *limit, now_ms)
                            : TRL_ERROR;
    });
}

int trl_zone_strict_cached(trl_zone_t *zone, const trl_hash_t *key,
                           const trl_limit_t *limit, uint64_t now_ms,
                           trl_result_t *res) noexcept {
    return guard(TRL_ERROR, [&] {
        return valid(limit) ? zone_of(zone).strict_cached(*key, *limit,
                                                          now_ms, *res)
                            : TRL_ERROR;
    });
}

int trl_zone_strict_apply(trl_zone_t *zone, const trl_hash_t *key,
                          const trl_limit_t *limit,
                          const trl_strict_reply_t *reply, uint64_t now_ms,
                          trl_result_t *res) noexcept {
    return guard(TRL_ERROR, [&] {
        return valid(limit) ? zone_of(zone).strict_apply(*key, *limit, *reply,
                                                         now_ms, *res)
                            : TRL_ERROR;
    });
}

void trl_zone_sync_add(trl_zone_t *zone, int stat, uint64_t n) noexcept {
    guard_void([&] {
        if (stat >= 0 && stat < TRL_SYNC_STATS) {
            zone_of(zone).sync_add(stat, n);
        }
    });
}

void trl_zone_sync_put(trl_zone_t *zone, int stat, uint64_t value) noexcept {
    guard_void([&] {
        if (stat >= 0 && stat < TRL_SYNC_STATS) {
            zone_of(zone).sync_put(stat, value);
        }
    });
}

void trl_zone_sync_stats(const trl_zone_t *zone,
                         uint64_t stats[TRL_SYNC_STATS]) noexcept {
    guard_void([&] { zone_of(zone).sync_stats(stats); });
}

uint64_t trl_redis_cell_ms(uint64_t window_ms) noexcept {
    return guard(uint64_t{0}, [&] { return trl::redis_cell_ms(window_ms); });
}

static_assert(TRL_REDIS_KEY_MAX == trl::kRedisKeyMax
              && TRL_REDIS_NAME_MAX >= 3 + 2 + 2 * trl::kRedisKeyMax
              && TRL_REDIS_NAME_MAX >= 3 + 2 + 2 * trl::kRedisKeyHexHead + 1
                                       + trl::kRedisKeyDigits,
              "the bound of a Redis name in trl_sync.h");

size_t trl_redis_key(const char *prefix, size_t prefix_len, const char *zone,
                     size_t zone_len, const void *key, size_t key_len,
                     char *buf, size_t len) noexcept {
    return guard(size_t{0}, [&] {
        std::string name = trl::redis_key(prefix, prefix_len, zone, zone_len,
                                          key, key_len);
        std::memcpy(buf, name.data(), std::min(name.size(), len));
        return name.size();
    });
}

void trl_sha256(const void *data, size_t len, uint8_t digest[32]) noexcept {
    guard_void([&] { trl::sha256(data, len, digest); });
}

const char *trl_redis_script(int script) noexcept {
    return guard<const char *>(nullptr, [&] {
        return trl::script_text(static_cast<trl::Script>(script));
    });
}

void trl_zone_offend(trl_zone_t *zone, const trl_hash_t *key,
                     const void *text, size_t len, uint64_t now_ms) noexcept {
    guard_void([&] { zone_of(zone).offend(*key, text, len, now_ms); });
}

size_t trl_zone_offenders(trl_zone_t *zone, trl_offender_t *out, size_t max,
                          uint64_t now_ms) noexcept {
    return guard(size_t{0},
                 [&] { return zone_of(zone).offenders(out, max, now_ms); });
}

int trl_zone_offender(trl_zone_t *zone, const trl_hash_t *key,
                      trl_offender_t *out) noexcept {
    return guard(0, [&] { return zone_of(zone).offender(*key, *out) ? 1 : 0; });
}

size_t trl_zone_penalties(trl_zone_t *zone, trl_penalty_info_t *out,
                          size_t max, uint64_t now_ms,
                          uint64_t *active) noexcept {
    return guard(size_t{0}, [&] {
        trl::Zone z = zone_of(zone);
        return z.penalties(out, max, trl::zone_now(z, now_ms), active);
    });
}

size_t trl_zone_named_penalties(trl_zone_t *zone, trl_penalty_info_t *out,
                                trl_offender_t *names, size_t max,
                                uint64_t now_ms) noexcept {
    return guard(size_t{0}, [&] {
        trl::Zone z = zone_of(zone);
        return z.named_penalties(out, names, max, trl::zone_now(z, now_ms));
    });
}

int trl_zone_reset(trl_zone_t *zone, const trl_hash_t *key) noexcept {
    return guard(0, [&] { return zone_of(zone).reset(*key); });
}

void trl_zone_count(trl_zone_t *zone, int outcome) noexcept {
    guard_void([&] {
        if (outcome == TRL_OUTCOME_BYPASSED || outcome == TRL_OUTCOME_DENIED) {
            zone_of(zone).count(outcome);
        }
    });
}

void trl_zone_stats(const trl_zone_t *zone,
                    trl_zone_stats_t *stats) noexcept {
    guard_void([&] { zone_of(zone).stats(*stats); });
}

uint64_t trl_zone_eviction_report(trl_zone_t *zone, uint64_t now_ms,
                                  uint64_t interval_ms) noexcept {
    return guard(uint64_t{0}, [&] {
        return zone_of(zone).eviction_report(now_ms, interval_ms);
    });
}

uint64_t trl_clock_ms(void) noexcept {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<uint64_t>(ts.tv_sec) * 1000 +
           static_cast<uint64_t>(ts.tv_nsec) / 1000000;
}

}  // extern "C"
