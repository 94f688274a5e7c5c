/*
 * trl_active.h - active places per key: at most N tokens of a subject
 * alive at once.  An issuance takes a place that is held for the token's
 * own lifetime (read from the upstream's answer, at most MAX); a
 * revocation gives one back.
 *
 * An active zone is a distinct zone (trl_distinct.h: N + 1 slots per key)
 * whose every admission is a new value: trl_distinct_acquire() with
 * TRL_DISTINCT_PROVISIONAL | TRL_DISTINCT_UNIQUE and a random 31-bit
 * nonce as the value, and trl_limit_t.rate.window_ms = MAX.  A slot's time
 * is then "expiry - MAX": the slot leaves the window exactly when the
 * token expires, the (n-N+1)-th oldest time + MAX is when a place comes
 * back (Retry-After) and the newest + MAX when all are back (reset).  While
 * its request is in flight a place is provisional and held until
 * admission + MAX; trl_active_settle() gives it its lifetime (and the
 * token's id) or trl_distinct_cancel() gives it back.  Times are kept in
 * the unit of MAX (MAX / 65000 rounded up to a power of two ms: 16 ms for
 * 15 minutes, 64 ms for an hour), rounded up: a place is never freed
 * before its token expires.
 */

#ifndef TRL_ACTIVE_H_INCLUDED
#define TRL_ACTIVE_H_INCLUDED

#include <stddef.h>
#include <stdint.h>

#include "trl_distinct.h"

TRL_BEGIN_DECLS


/*
 * An active zone: a distinct zone for N places per key that keeps its
 * times on a clock MAX ahead of trl_clock_ms() (every function of a
 * zone's ABI moves the times it is given onto it and its results back),
 * so that a place's time, expiry - MAX, is never before 0 however young
 * the clock is.  trl_active_zone_max() is MAX (0: not an active zone),
 * e.g. after trl_zone_attach() on a reload, which must not change it.
 */
trl_zone_t *trl_active_zone_create(void *mem, size_t size, uint32_t limit,
    uint64_t max_ms, char *err, size_t errlen) TRL_NOEXCEPT;
uint64_t trl_active_zone_max(const trl_zone_t *zone) TRL_NOEXCEPT;

/*
 * The zone option active[=MAX] (and a policy file's "active:"): "on"
 * (*max_ms = 0: the rate's window) or a duration of unit ms, s, m, h or
 * d, 1s to 365d.  TRL_ERROR with a reason in err otherwise.
 */
int trl_active_parse(const char *text, size_t len, uint64_t *max_ms,
    char *err, size_t errlen) TRL_NOEXCEPT;

/* A lifetime as an upstream answers it: digits are seconds (OAuth's
 * expires_in; more than 365d is 365d), anything else a duration such as
 * 90s or 1h30m.  TRL_ERROR for anything else (empty included). */
int trl_active_lifetime(const char *text, size_t len, uint64_t *ms)
    TRL_NOEXCEPT;

/* trl_limit_t.flags: every admission is a new value: a nonce the key
 * already holds is changed to one it does not (active zones). */
#define TRL_DISTINCT_UNIQUE  0x400

/*
 * A place's value: a nonce (TRL_ACTIVE_NONCE set) until its token's id
 * names it; ids are 30-bit keyed fingerprints (never 0), so that a nonce
 * and an id never meet.
 */
#define TRL_ACTIVE_NONCE  0x40000000u

uint32_t trl_active_nonce(uint32_t random) TRL_NOEXCEPT;
uint32_t trl_active_id(const uint8_t secret[16], const void *id, size_t len)
    TRL_NOEXCEPT;

/*
 * Settles the provisional place of the admission ticket: held until
 * now + lifetime_ms (lifetime_ms <= MAX = limit->rate.window_ms; 0 gives
 * the place back), named by the token's id fingerprint (id != 0; ids are
 * not deduplicated: two tokens the upstream gave one id hold two places).
 * *held (may be NULL) is the key's places after.  A ticket whose place is
 * gone (evicted, expired, settled) changes nothing.
 */
int trl_active_settle(trl_zone_t *zone, const trl_hash_t *key,
    const trl_limit_t *limit, uint64_t ticket, uint64_t lifetime_ms,
    uint32_t id, uint64_t now_ms, uint32_t *held) TRL_NOEXCEPT;

/*
 * Releases one place of the key: the settled place named by id (id != 0),
 * or with id 0 the settled place that expires first.  Provisional places
 * (requests in flight) are never released, nor is a penalty.  Returns 1
 * when a place was released, 0 when none matched, TRL_ERROR on a fault;
 * *held (may be NULL) is the key's places after.
 */
int trl_active_release(trl_zone_t *zone, const trl_hash_t *key,
    const trl_limit_t *limit, uint32_t id, uint64_t now_ms,
    uint32_t *held) TRL_NOEXCEPT;

typedef struct {
    uint64_t  expires_ms;      /* clock ms when the place comes back */
    uint32_t  id;              /* the token's id (trl_active_id), 0: none */
    uint8_t   pending;         /* provisional: its request is in flight */
} trl_active_place_t;

/* The key's live places, soonest expiry first (at most max of them);
 * returns how many were written (0 for an unknown key). */
size_t trl_active_places(trl_zone_t *zone, const trl_hash_t *key,
    const trl_limit_t *limit, uint64_t now_ms, trl_active_place_t *out,
    size_t max) TRL_NOEXCEPT;


TRL_END_DECLS

#endif /* TRL_ACTIVE_H_INCLUDED */
