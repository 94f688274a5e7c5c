// sync.cpp - Redis key names and the Lua scripts of cluster-wide zones.
#include "sync.hpp"

namespace trl {
namespace {

bool plain(const unsigned char *k, size_t len) {
    if (len >= 2 && k[0] == 'x' && k[1] == ':') {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        if (k[i] < 0x21 || k[i] > 0x7e || k[i] == '{' || k[i] == '}') {
            return false;
        }
    }
    return true;
}

// Shared by the scripts: the live cells of a key (dead ones are deleted on
// the way), their total, the newest cell, and when the count drops below N
// and when it is back to zero, in ms from now.
#define TRL_LUA_COMMON                                                       \
    "local t = redis.call('TIME')\n"                                         \
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n" \
    "local W, cell, N = tonumber(ARGV[1]), tonumber(ARGV[2]), "              \
    "tonumber(ARGV[3])\n"                                                    \
    "local cur = math.floor(now / cell)\n"                                   \
    "local function scan(key)\n"                                             \
    "  local f = redis.call('HGETALL', key)\n"                               \
    "  local live, total, newest = {}, 0, -1\n"                              \
    "  for i = 1, #f, 2 do\n"                                                \
    "    local c, n = tonumber(f[i]), tonumber(f[i + 1])\n"                  \
    "    if c and n and (c + 1) * cell + W > now then\n"                     \
    "      if n > 0 then\n"                                                  \
    "        live[#live + 1] = {c, n}\n"                                     \
    "        total = total + n\n"                                            \
    "        if c > newest then newest = c end\n"                            \
    "      end\n"                                                            \
    "    else\n"                                                             \
    "      redis.call('HDEL', key, f[i])\n"                                  \
    "    end\n"                                                              \
    "  end\n"                                                                \
    "  return live, total, newest\n"                                         \
    "end\n"                                                                  \
    "local function free_in(live, total)\n"                                  \
    "  if total < N then return 0 end\n"                                     \
    "  table.sort(live, function(a, b) return a[1] < b[1] end)\n"            \
    "  local need, left = total - N + 1, 0\n"                                \
    "  for _, e in ipairs(live) do\n"                                        \
    "    left = left + e[2]\n"                                               \
    "    if left >= need then return (e[1] + 1) * cell + W - now end\n"      \
    "  end\n"                                                                \
    "  return W\n"                                                           \
    "end\n"                                                                  \
    "local function reset_in(newest)\n"                                      \
    "  if newest < 0 then return 0 end\n"                                    \
    "  return (newest + 1) * cell + W - now\n"                               \
    "end\n"

// Async: KEYS = the keys of one zone, ARGV = W, cell, N, then one delta per
// key (admissions to add, 0 to only read).  Returns now, then per key the
// total, free_in and reset_in.
const char kPublish[] =
    TRL_LUA_COMMON
    "local out = {now}\n"
    "for i, key in ipairs(KEYS) do\n"
    "  local d = tonumber(ARGV[3 + i])\n"
    "  if d and d > 0 then\n"
    "    redis.call('HINCRBY', key, cur, d)\n"
    "    redis.call('PEXPIRE', key, W + cell)\n"
    "  end\n"
    "  local live, total, newest = scan(key)\n"
    "  out[#out + 1] = total\n"
    "  out[#out + 1] = free_in(live, total)\n"
    "  out[#out + 1] = reset_in(newest)\n"
    "end\n"
    "return out\n";

// Strict: KEYS[1], ARGV = W, cell, N.  Checks and counts in one step.
// Returns admitted (1 or 0), the total after, free_in, reset_in and the
// cell an admission went to (the ticket for a release).
const char kStrict[] =
    TRL_LUA_COMMON
    "local key = KEYS[1]\n"
    "local live, total, newest = scan(key)\n"
    "if total < N then\n"
    "  redis.call('HINCRBY', key, cur, 1)\n"
    "  redis.call('PEXPIRE', key, W + cell)\n"
    "  return {1, total + 1, 0, reset_in(cur), cur}\n"
    "end\n"
    "return {0, total, free_in(live, total), reset_in(newest), cur}\n";

// Release: KEYS[1], ARGV[1] = the cell of the admission to give back.
const char kRelease[] =
    "local n = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')\n"
    "if n and n > 1 then\n"
    "  redis.call('HINCRBY', KEYS[1], ARGV[1], -1)\n"
    "elseif n == 1 then\n"
    "  redis.call('HDEL', KEYS[1], ARGV[1])\n"
    "end\n"
    "return n or 0\n";

}  // namespace

uint64_t redis_cell_ms(uint64_t window_ms) {
    return (window_ms + kRedisCells - 1) / kRedisCells;
}

std::string redis_key(const char *prefix, size_t prefix_len,
                      const char *zone, size_t zone_len, const void *key,
                      size_t key_len) {
    static const char hex[] = "0123456789abcdef";
    const unsigned char *k = static_cast<const unsigned char *>(key);
    bool verbatim = plain(k, key_len);

    std::string name;
    name.reserve(prefix_len + zone_len + 5 + (verbatim ? 1 : 2) * key_len);
    name.append(prefix, prefix_len);
    name += '{';
    name.append(zone, zone_len);
    name += ':';
    if (verbatim) {
        name.append(reinterpret_cast<const char *>(k), key_len);
    } else {
        name += "x:";
        for (size_t i = 0; i < key_len; i++) {
            name += hex[k[i] >> 4];
            name += hex[k[i] & 0xf];
        }
    }
    name += '}';
    return name;
}

const char *script_text(Script s) {
    switch (s) {
    case kScriptPublish: return kPublish;
    case kScriptStrict: return kStrict;
    case kScriptRelease: return kRelease;
    default: return "";
    }
}

}  // namespace trl
