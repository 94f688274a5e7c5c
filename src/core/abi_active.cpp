// abi_active.cpp - the extern "C" boundary of active zones (trl_active.h):
// every entry point is noexcept, and what can throw runs in guard().
#include "guard.hpp"
#include "siphash.hpp"
#include "trl_active.h"
#include "zone.hpp"

extern "C" {

trl_zone_t *trl_active_zone_create(void *mem, size_t size, uint32_t limit,
                                   uint64_t max_ms, char *err,
                                   size_t errlen) noexcept {
    return trl::guard(static_cast<trl_zone_t *>(nullptr),
                      trl::ErrorOut{err, errlen, "creating the zone"},
                      [&] {
        if (max_ms < 1 || max_ms > TRL_RATE_MAX_WINDOW_MS) {
            trl::put_error(err, errlen, "the longest lifetime must be 1 ms "
                           "to 365 days");
            return static_cast<trl_zone_t *>(nullptr);
        }
        trl_zone_t *zone = trl_distinct_zone_create(mem, size, 0, limit, err,
                                                    errlen);
        if (zone != nullptr) {
            trl::zone_at(zone).set_clock_ahead(max_ms);
        }
        return zone;
    });
}

uint64_t trl_active_zone_max(const trl_zone_t *zone) noexcept {
    return trl::zone_at(zone).clock_ahead();
}

uint32_t trl_active_nonce(uint32_t random) noexcept {
    return (random & (TRL_ACTIVE_NONCE - 1)) | TRL_ACTIVE_NONCE;
}

uint32_t trl_active_id(const uint8_t secret[16], const void *id,
                       size_t len) noexcept {
    trl_hash_t h = trl::siphash128(secret, id, len);
    uint32_t v = static_cast<uint32_t>(h.lo) & (TRL_ACTIVE_NONCE - 1);
    return v != 0 ? v : 1;
}

int trl_active_settle(trl_zone_t *zone, const trl_hash_t *key,
                      const trl_limit_t *limit, uint64_t ticket,
                      uint64_t lifetime_ms, uint32_t id, uint64_t now_ms,
                      uint32_t *held) noexcept {
    return trl::guard(TRL_ERROR, [&] {
        uint32_t n = 0;
        if (!trl::slots_limit_valid(limit) || key == nullptr) {
            return TRL_ERROR;
        }
        trl::Zone z = trl::zone_at(zone);
        int rc = z.active_settle(*key, *limit, ticket, lifetime_ms, id,
                                 trl::zone_now(z, now_ms), n);
        if (held != nullptr) {
            *held = n;
        }
        return rc;
    });
}

int trl_active_release(trl_zone_t *zone, const trl_hash_t *key,
                       const trl_limit_t *limit, uint32_t id,
                       uint64_t now_ms, uint32_t *held) noexcept {
    return trl::guard(TRL_ERROR, [&] {
        uint32_t n = 0;
        if (!trl::slots_limit_valid(limit) || key == nullptr) {
            return TRL_ERROR;
        }
        trl::Zone z = trl::zone_at(zone);
        int rc = z.active_release(*key, *limit, id, trl::zone_now(z, now_ms),
                                  n);
        if (held != nullptr) {
            *held = n;
        }
        return rc;
    });
}

size_t trl_active_places(trl_zone_t *zone, const trl_hash_t *key,
                         const trl_limit_t *limit, uint64_t now_ms,
                         trl_active_place_t *out, size_t max) noexcept {
    return trl::guard(size_t{0}, [&] {
        if (!trl::slots_limit_valid(limit) || key == nullptr || out == nullptr) {
            return size_t{0};
        }
        trl::Zone z = trl::zone_at(zone);
        size_t n = z.active_places(*key, *limit, trl::zone_now(z, now_ms), out,
                                   max);
        for (size_t i = 0; i < n; i++) {
            out[i].expires_ms -= z.clock_ahead();
        }
        return n;
    });
}

}  // extern "C"
