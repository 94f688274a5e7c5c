// sha256.hpp - SHA-256 (FIPS 180-4), for the names of long keys in Redis:
// a standard, unkeyed hash that every node, and anyone with sha256sum,
// computes alike from the key's bytes.
#ifndef TRL_SHA256_HPP
#define TRL_SHA256_HPP

#include <cstddef>
#include <cstdint>

namespace trl {

constexpr std::size_t kSha256Size = 32;

void sha256(const void *data, std::size_t len, uint8_t out[kSha256Size]);

}  // namespace trl

#endif
