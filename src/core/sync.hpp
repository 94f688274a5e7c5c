// sync.hpp - the Redis side of cluster-wide zones: how keys are named in
// Redis and the Lua scripts that count there.
//
// A zone key lives in one Redis HASH, <prefix>{<zone>:<key>} (the braces
// are a Redis Cluster hash tag; a long key is named by its beginning and a
// hash, see redis_key), whose fields are time cells of Redis's
// own clock (ms / cell width) and whose values are admissions (and, for
// async zones, "l:<node>:<end>" fields: places reserved for a node until
// end, see kAsk; a key serving a penalty: pu and pv).  The cell
// width is ceil(W / kRedisCells); an admission's place comes back at the
// end of its cell plus W at the latest, so the count read there is never
// below the true count.  Every write renews the key's TTL (W + one cell):
// Redis never holds a key longer than its window needs.
#ifndef TRL_SYNC_HPP
#define TRL_SYNC_HPP

#include <cstddef>
#include <cstdint>
#include <string>

namespace trl {

constexpr uint64_t kRedisCells = 20;

uint64_t redis_cell_ms(uint64_t window_ms);

// Keys of up to kRedisKeyMax bytes are named in full; a longer key by its
// beginning and a hash of it all, so that Redis holds a bounded name
// whatever the key's length.
constexpr size_t kRedisKeyMax = 64;
constexpr size_t kRedisKeyHead = 32;     // bytes shown verbatim
constexpr size_t kRedisKeyHexHead = 16;  // bytes shown in hex (at most)
constexpr size_t kRedisKeyDigits = 32;   // hex digits of SHA-256

// <prefix>{<zone>:<name>}, where <name> is, for a key of up to 64 bytes,
// the key verbatim when it is printable ASCII without braces and does not
// begin with "x:", else "x:" and its lowercase hex; for a longer key, its
// first 32 bytes if they are such a key, else "x:" and the hex of its first
// 16 bytes (fewer, down to 13, where the 17th is a UTF-8 continuation byte:
// no character is cut), then "~" and the first
// 32 hex digits of the SHA-256 of the whole key (sha256sum).  No two keys
// share a name (but for SHA-256 collisions): a long key's name has a "~",
// which no short key's hex name has, and is longer than 64 bytes or begins
// with "x:", which no short key's verbatim name does.
std::string redis_key(const char *prefix, size_t prefix_len,
                      const char *zone, size_t zone_len, const void *key,
                      size_t key_len);

// The scripts, by use (see sync.cpp for their arguments and replies).
enum Script { kScriptPublish, kScriptStrict, kScriptRelease, kScriptReset,
              kScriptLists, kScriptAsk, kScriptDistinct, kScriptRepRead,
              kScriptRepPublish, kScriptAttack, kScripts };

const char *script_text(Script s);

}  // namespace trl

#endif
