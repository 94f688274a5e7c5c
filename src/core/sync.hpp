// sync.hpp - the Redis side of cluster-wide zones: how keys are named in
// Redis and the Lua scripts that count there.
//
// A zone key lives in one Redis HASH, <prefix>{<zone>:<key>} (the braces
// are a Redis Cluster hash tag), whose fields are time cells of Redis's
// own clock (ms / cell width) and whose values are admissions.  The cell
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

// <prefix>{<zone>:<key>}: the key verbatim when it is printable ASCII
// without braces and does not begin with "x:", else "x:" and its hex.
std::string redis_key(const char *prefix, size_t prefix_len,
                      const char *zone, size_t zone_len, const void *key,
                      size_t key_len);

// The scripts, by use (see sync.cpp for their arguments and replies).
enum Script { kScriptPublish, kScriptStrict, kScriptRelease, kScriptReset,
              kScriptLists, kScripts };

const char *script_text(Script s);

}  // namespace trl

#endif
