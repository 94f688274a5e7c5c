// siphash.hpp - SipHash-2-4 with a 128-bit tag, the keyed hash under which
// zones store keys: attacker-chosen keys cannot be made to collide without
// the zone's secret seed.
#ifndef TRL_SIPHASH_HPP
#define TRL_SIPHASH_HPP

#include <cstddef>
#include <cstdint>

#include "trl_core.h"

namespace trl {

trl_hash_t siphash128(const uint8_t seed[16], const void *data,
                      std::size_t len);

}  // namespace trl

#endif
