// abi_distinct.cpp - the extern "C" boundary of distinct zones
// (trl_distinct.h): every entry point is noexcept, and what can throw runs
// in guard() (guard.hpp), as in abi.cpp.
#include <cstring>
#include <string>

#include "distinct.hpp"
#include "guard.hpp"
#include "offenders.hpp"
#include "sha256.hpp"
#include "siphash.hpp"
#include "trl_distinct.h"
#include "zone.hpp"

namespace {

inline size_t align64(size_t n) noexcept {
    return (n + 63) & ~static_cast<size_t>(63);
}

}  // namespace

extern "C" {

size_t trl_distinct_key_bytes(uint32_t limit, unsigned flags) noexcept {
    if (limit < 1 || limit > TRL_DISTINCT_MAX_LIMIT) {
        return 0;
    }
    return sizeof(trl::Entry) + sizeof(uint32_t)
           + ((flags & TRL_ZONE_SYNC) ? sizeof(trl::SyncState) : 0)
           + trl::distinct_block_bytes(limit + 1);
}

// The capacity Zone::create() gives, from the same steps (stripes, the
// offenders table, the slack it keeps), less what alignment may take.
uint32_t trl_distinct_zone_keys(size_t size, uint32_t limit,
                                unsigned flags) noexcept {
    size_t per_key = trl_distinct_key_bytes(limit, flags);
    size_t head = align64(sizeof(trl::Root));
    if (per_key == 0 || size < trl::Zone::min_size() || size <= head) {
        return 0;
    }
    uint32_t nstripes = 1;
    while (nstripes < 64) {
        size_t stripes_bytes = nstripes * 2 * sizeof(trl::Stripe) + 128;
        size_t room = size - head;
        if (room < stripes_bytes
            || (room - stripes_bytes) / per_key / (nstripes * 2) < 32) {
            break;
        }
        nstripes *= 2;
    }
    uint32_t offenders = (size - head) / per_key >= 2048 ? 64 : 16;
    size_t fixed = head + nstripes * sizeof(trl::Stripe)
                   + align64(trl::offenders_size(offenders)) + 192 + 64;
    if (size <= fixed) {
        return 0;
    }
    size_t keys = (size - fixed) / (nstripes * per_key) * nstripes;
    return keys >= 32 ? static_cast<uint32_t>(keys) : 0;
}

trl_zone_t *trl_distinct_zone_create(void *mem, size_t size, unsigned flags,
                                     uint32_t limit, char *err,
                                     size_t errlen) noexcept {
    using trl::put_error;
    return trl::guard(static_cast<trl_zone_t *>(nullptr),
                      trl::ErrorOut{err, errlen, "creating the zone"},
                      [&] {
        if (limit < 1 || limit > TRL_DISTINCT_MAX_LIMIT) {
            put_error(err, errlen, "the distinct limit must be 1 to " +
                      std::to_string(TRL_DISTINCT_MAX_LIMIT));
            return static_cast<trl_zone_t *>(nullptr);
        }
        std::string why;
        trl::Root *r = trl::Zone::create(mem, size, flags, why, limit + 1);
        if (r == nullptr) {
            put_error(err, errlen, why);
        }
        return reinterpret_cast<trl_zone_t *>(r);
    });
}

uint32_t trl_distinct_zone_limit(const trl_zone_t *zone) noexcept {
    uint32_t slots = trl::zone_at(zone).distinct_slots();
    return slots ? slots - 1 : 0;
}

int trl_distinct_acquire(trl_zone_t *zone, const trl_hash_t *key,
                         const trl_limit_t *limit, uint32_t fp,
                         uint64_t now_ms, trl_result_t *res) noexcept {
    return trl::guard(TRL_ERROR, [&] {
        if (!trl::slots_limit_valid(limit)) {
            return TRL_ERROR;
        }
        trl::Zone z = trl::zone_at(zone);
        int rc = z.distinct_acquire(*key, *limit, fp, trl::zone_now(z, now_ms),
                                    *res);
        trl::zone_result_back(z, *res);
        return rc;
    });
}

int trl_distinct_confirm(trl_zone_t *zone, const trl_hash_t *key,
                         const trl_limit_t *limit, uint64_t ticket,
                         uint64_t now_ms) noexcept {
    return trl::guard(TRL_ERROR, [&] {
        if (!trl::slots_limit_valid(limit)) {
            return TRL_ERROR;
        }
        trl::Zone z = trl::zone_at(zone);
        return z.distinct_settle(*key, *limit, ticket, true,
                                 trl::zone_now(z, now_ms));
    });
}

int trl_distinct_cancel(trl_zone_t *zone, const trl_hash_t *key,
                        const trl_limit_t *limit, uint64_t ticket,
                        uint64_t now_ms) noexcept {
    return trl::guard(TRL_ERROR, [&] {
        if (!trl::slots_limit_valid(limit)) {
            return TRL_ERROR;
        }
        trl::Zone z = trl::zone_at(zone);
        return z.distinct_settle(*key, *limit, ticket, false,
                                 trl::zone_now(z, now_ms));
    });
}

int trl_distinct_peek(trl_zone_t *zone, const trl_hash_t *key,
                      const trl_limit_t *limit, uint64_t now_ms,
                      trl_result_t *res) noexcept {
    return trl::guard(TRL_ERROR, [&] {
        if (!trl::slots_limit_valid(limit)) {
            return TRL_ERROR;
        }
        trl::Zone z = trl::zone_at(zone);
        int rc = z.distinct_peek(*key, *limit, trl::zone_now(z, now_ms), *res);
        trl::zone_result_back(z, *res);
        return rc;
    });
}

int trl_distinct_strict_apply(trl_zone_t *zone, const trl_hash_t *key,
                              const trl_limit_t *limit, uint32_t fp,
                              const trl_distinct_reply_t *reply,
                              uint64_t now_ms, trl_result_t *res) noexcept {
    return trl::guard(TRL_ERROR, [&] {
        if (!trl::slots_limit_valid(limit) || reply == nullptr) {
            return TRL_ERROR;
        }
        trl::Zone z = trl::zone_at(zone);
        int rc = z.distinct_strict_apply(*key, *limit, fp, reply->admitted,
                                         reply->count, reply->free_in_ms,
                                         reply->reset_in_ms,
                                         trl::zone_now(z, now_ms), *res);
        trl::zone_result_back(z, *res);
        return rc;
    });
}

void trl_distinct_secret(const void *text, size_t len,
                         uint8_t secret[16]) noexcept {
    uint8_t digest[trl::kSha256Size];
    trl::sha256(text, len, digest);
    std::memcpy(secret, digest, 16);
}

uint32_t trl_distinct_fingerprint(const uint8_t secret[16],
                                  const void *subject,
                                  size_t len) noexcept {
    trl_hash_t h = trl::siphash128(secret, subject, len);
    return static_cast<uint32_t>(h.lo) & trl::kFingerprintMask;
}

}  // extern "C"
