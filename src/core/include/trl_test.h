/*
 * trl_test.h - entry points of the core that only the Check unit tests
 * (t/unit) call: the hashes by themselves, layout sizes, and reads of
 * state the glue has no use for.  The glue does not include it.
 */

#ifndef TRL_TEST_H_INCLUDED
#define TRL_TEST_H_INCLUDED

#include "trl_zone.h"
#include "trl_lists.h"
#include "trl_policy.h"

TRL_BEGIN_DECLS


void trl_siphash128(const uint8_t seed[16], const void *data, size_t len,
    trl_hash_t *out) TRL_NOEXCEPT;

/* Smallest block trl_zone_create() accepts. */
size_t trl_zone_min_size(void) TRL_NOEXCEPT;

/* keys it can hold */
uint32_t trl_zone_capacity(const trl_zone_t *zone) TRL_NOEXCEPT;
/* bytes per key */
size_t trl_zone_entry_size(void) TRL_NOEXCEPT;

/* SHA-256 (FIPS 180-4) of data, the hash of long keys' Redis names. */
void trl_sha256(const void *data, size_t len, uint8_t digest[32]) TRL_NOEXCEPT;

/* 1 and out filled when the table knows the key, else 0. */
int trl_zone_offender(trl_zone_t *zone, const trl_hash_t *key,
    trl_offender_t *out) TRL_NOEXCEPT;

uint64_t trl_lists_changes(const trl_lists_t *lists) TRL_NOEXCEPT;
/* 0: none seen yet */
uint64_t trl_lists_epoch(trl_lists_t *lists) TRL_NOEXCEPT;

const char *trl_policy_environment(const trl_policy_set_t *set) TRL_NOEXCEPT;


TRL_END_DECLS

#endif /* TRL_TEST_H_INCLUDED */
