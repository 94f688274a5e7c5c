// sync.cpp - Redis key names and the Lua scripts of cluster-wide zones.
#include "sync.hpp"

#include "sha256.hpp"
#include "trl_distinct.h"

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

// "x:" (unless !mark) and the lowercase hex of the bytes
void append_hex(std::string &name, const unsigned char *k, size_t len,
                bool mark = true) {
    static const char hex[] = "0123456789abcdef";

    if (mark) {
        name += "x:";
    }
    for (size_t i = 0; i < len; i++) {
        name += hex[k[i] >> 4];
        name += hex[k[i] & 0xf];
    }
}

// Shared by the scripts: the live places of a key (dead ones are deleted
// on the way): the cells' admissions and the nodes' reservations (fields
// "l:<node>:<end, Redis ms>" = places, one per grant, see kAsk), each as
// {end, n}, the time a place comes back; their total, the latest end, the
// key's penalty (field pu: end of the block, Redis ms; pv: violations in
// a row), and the reservations of the node named own, oldest first
// ({field, places, index in live}).  free_in: when the count drops below
// N, reset_in: when it is back to zero, in ms from now; keep(), the TTL
// that covers the places and a penalty with its memory (forgive), never
// shortened while a penalty is remembered (a node that started none sends
// forgive 0).
#define TRL_LUA_COMMON                                                       \
    "local t = redis.call('TIME')\n"                                         \
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n" \
    "local W, cell, N = tonumber(ARGV[1]), tonumber(ARGV[2]), "              \
    "tonumber(ARGV[3])\n"                                                    \
    "local cur = math.floor(now / cell)\n"                                   \
    "local function cell_end(c) return (c + 1) * cell + W end\n"             \
    "local function scan(key, own)\n"                                        \
    "  local f = redis.call('HGETALL', key)\n"                               \
    "  local live, total, last, pu, pv = {}, 0, 0, 0, 0\n"                   \
    "  local mine = {}\n"                                                    \
    "  for i = 1, #f, 2 do\n"                                                \
    "    local name, v = f[i], f[i + 1]\n"                                   \
    "    if name == 'pu' then pu = tonumber(v) or 0\n"                       \
    "    elseif name == 'pv' then pv = tonumber(v) or 0\n"                   \
    "    elseif string.sub(name, 1, 2) == 'l:' then\n"                       \
    "      local c = tonumber(v)\n"                                          \
    "      local e = tonumber(string.match(name, ':(%d+)$'))\n"              \
    "      if c and e and c > 0 and e > now then\n"                          \
    "        live[#live + 1] = {e, c}\n"                                     \
    "        total = total + c\n"                                            \
    "        if e > last then last = e end\n"                                \
    "        if own and string.sub(name, 1, #own + 1) == own .. ':' then\n"  \
    "          mine[#mine + 1] = {name, c, #live, e}\n"                      \
    "        end\n"                                                          \
    "      else\n"                                                           \
    "        redis.call('HDEL', key, name)\n"                                \
    "      end\n"                                                            \
    "    else\n"                                                             \
    "      local c, n = tonumber(name), tonumber(v)\n"                       \
    "      if c and n and cell_end(c) > now then\n"                          \
    "        if n > 0 then\n"                                                \
    "          live[#live + 1] = {cell_end(c), n}\n"                         \
    "          total = total + n\n"                                          \
    "          if cell_end(c) > last then last = cell_end(c) end\n"          \
    "        end\n"                                                          \
    "      else\n"                                                           \
    "        redis.call('HDEL', key, name)\n"                                \
    "      end\n"                                                            \
    "    end\n"                                                              \
    "  end\n"                                                                \
    "  table.sort(mine, function(a, b) return a[4] < b[4] end)\n"            \
    "  return live, total, last, pu, pv, mine\n"                             \
    "end\n"                                                                  \
    "local function free_in(live, total)\n"                                  \
    "  if total < N then return 0 end\n"                                     \
    "  table.sort(live, function(a, b) return a[1] < b[1] end)\n"            \
    "  local need, left = total - N + 1, 0\n"                                \
    "  for _, e in ipairs(live) do\n"                                        \
    "    left = left + e[2]\n"                                               \
    "    if left >= need then return e[1] - now end\n"                       \
    "  end\n"                                                                \
    "  return W\n"                                                           \
    "end\n"                                                                  \
    "local function reset_in(last)\n"                                        \
    "  return math.max(last - now, 0)\n"                                     \
    "end\n"                                                                  \
    "local function keep(key, pu, forgive, last)\n"                          \
    "  local ttl = math.max(W + cell, last - now)\n"                         \
    "  if pu > 0 then\n"                                                     \
    "    if pu + forgive > now then\n"                                       \
    "      ttl = math.max(ttl, pu - now + forgive)\n"                        \
    "    end\n"                                                              \
    "    ttl = math.max(ttl, redis.call('PTTL', key))\n"                     \
    "  end\n"                                                                \
    "  redis.call('PEXPIRE', key, ttl)\n"                                    \
    "end\n"

// The scripts that decide or publish answer with their integers in one
// string, "n n n ...": one reply object for hiredis to allocate instead of
// one per number.  (Lua formats integral numbers below 10^14 exactly.)
#define TRL_LUA_INTS(list) "return table.concat(" list ", ' ')\n"

// Async: KEYS = the keys of one zone; ARGV = W, cell, N, the node's
// name ("l:<node>"), then per key: the admissions to add (0: only read),
// how many of them the node took from its reservations (which shrink by
// as many, oldest first: they are counted in a cell now; those whose
// reservation is gone, deleted with the key, are not counted again), the
// length of a
// penalty started on the node (0: none), its violations and its forgive
// time.  A penalty is taken only onto a key that holds places or a
// penalty: one that arrives after the key was deleted (a reset) is not
// brought back to life.  Returns (as one string) now, then per key the
// total, free_in, reset_in, the penalty left (ms) and the violations.
const char kPublish[] =
    TRL_LUA_COMMON
    "local own = ARGV[4]\n"
    "local out = {now}\n"
    "for i, key in ipairs(KEYS) do\n"
    "  local a = 4 + (i - 1) * 5\n"
    "  local d, leased = tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2])\n"
    "  local plen, v = tonumber(ARGV[a + 3]), tonumber(ARGV[a + 4])\n"
    "  local forgive = tonumber(ARGV[a + 5])\n"
    "  local live, total, last, pu, pv, mine = scan(key, own)\n"
    "  local write = false\n"
    "  for _, r in ipairs(mine) do\n"
    "    if leased == 0 then break end\n"
    "    local take = math.min(r[2], leased)\n"
    "    leased = leased - take\n"
    "    if take < r[2] then\n"
    "      redis.call('HINCRBY', key, r[1], -take)\n"
    "    else\n"
    "      redis.call('HDEL', key, r[1])\n"
    "    end\n"
    "    live[r[3]][2] = r[2] - take\n"
    "    total = total - take\n"
    "  end\n"
    // leased admissions whose reservation is gone (a DEL) were reset with
    // it: they are not counted again
    "  d = d - leased\n"
    "  if d > 0 then\n"
    "    redis.call('HINCRBY', key, cur, d)\n"
    "    live[#live + 1] = {cell_end(cur), d}\n"
    "    total = total + d\n"
    "    last = math.max(last, cell_end(cur))\n"
    "    write = true\n"
    "  end\n"
    "  local held = total > 0 or pu > 0\n"
    "  if held and plen > 0 and now + plen > pu then\n"
    "    pu = now + plen\n"
    "    redis.call('HSET', key, 'pu', pu)\n"
    "    write = true\n"
    "  end\n"
    "  if held and v > pv then\n"
    "    pv = v\n"
    "    redis.call('HSET', key, 'pv', pv)\n"
    "    write = true\n"
    "  end\n"
    "  if write then keep(key, pu, forgive, last) end\n"
    "  out[#out + 1] = total\n"
    "  out[#out + 1] = free_in(live, total)\n"
    "  out[#out + 1] = reset_in(last)\n"
    "  out[#out + 1] = math.max(pu - now, 0)\n"
    "  out[#out + 1] = pv\n"
    "end\n"
    TRL_LUA_INTS("out");

// Async, a node that must ask (no lease left, no recent "full"): KEYS =
// keys of one zone, one request each; ARGV = W, cell, N, the node's name
// ("l:<node>"), the lease's length and how much longer Redis holds it (for
// the node's admissions from it to be published), the largest share.  Per
// key: a key serving a penalty or at N is refused; else the request is
// counted and the node is given a share of what remains,
// min(largest, floor((N - total) / 8)) places (once per key in a call:
// the requests of one node asking together share one grant), in a field
// of their own,
// "l:<node>:<end>", counted as taken until the lease's end plus the hold
// (places of it the node does not use come back then).  Returns (as one
// string) now, then per key admitted (1 or 0), the total after, free_in,
// reset_in, the penalty left, the violations, the cell of the admission
// (the ticket for a release) and the share.
const char kAsk[] =
    TRL_LUA_COMMON
    "local own, L, hold = ARGV[4], tonumber(ARGV[5]), tonumber(ARGV[6])\n"
    "local cap = tonumber(ARGV[7])\n"
    "local out, given = {now}, {}\n"
    "for _, key in ipairs(KEYS) do\n"
    "  local live, total, last, pu, pv = scan(key)\n"
    "  local ok, share = 0, 0\n"
    "  if pu <= now and total < N then\n"
    "    ok = 1\n"
    "    redis.call('HINCRBY', key, cur, 1)\n"
    "    live[#live + 1] = {cell_end(cur), 1}\n"
    "    total = total + 1\n"
    "    last = math.max(last, cell_end(cur))\n"
    "    if not given[key] then\n"
    "      share = math.min(cap, math.floor((N - total) / 8))\n"
    "    end\n"
    "    if share > 0 then\n"
    "      given[key] = true\n"
    "      local e = now + L + hold\n"
    "      redis.call('HINCRBY', key, own .. ':' .. e, share)\n"
    "      live[#live + 1] = {e, share}\n"
    "      total = total + share\n"
    "      last = math.max(last, e)\n"
    "    end\n"
    "    keep(key, pu, 0, last)\n"
    "  end\n"
    "  out[#out + 1] = ok\n"
    "  out[#out + 1] = total\n"
    "  out[#out + 1] = math.max(free_in(live, total), pu - now)\n"
    "  out[#out + 1] = math.max(reset_in(last), pu - now)\n"
    "  out[#out + 1] = math.max(pu - now, 0)\n"
    "  out[#out + 1] = pv\n"
    "  out[#out + 1] = cur\n"
    "  out[#out + 1] = share\n"
    "end\n"
    TRL_LUA_INTS("out");

// Strict: KEYS[1], ARGV = W, cell, N, then the penalty's base, factor, max,
// forgive (base 0: none) and level (a violation counts as at least the
// level-th; absent: 1).  Checks the penalty, then the count, and counts,
// in one step; a rejection starts the next penalty.  Returns (as
// one string) admitted (1 or 0), the total after, free_in (rejected: until
// a request is admitted, the later of the block's end and a free place),
// reset_in, the cell an admission went to (the ticket for a release), the
// violations, 0, 1 (serving a penalty) or 2 (a penalty started), and the
// block left (0: none).
const char kStrict[] =
    TRL_LUA_COMMON
    "local key = KEYS[1]\n"
    "local base, factor = tonumber(ARGV[4]), tonumber(ARGV[5])\n"
    "local pmax, forgive = tonumber(ARGV[6]), tonumber(ARGV[7])\n"
    "local level = tonumber(ARGV[8]) or 1\n"
    "local live, total, last, pu, pv = scan(key)\n"
    "if pu > now then\n"
    "  " TRL_LUA_INTS("{0, total, math.max(pu - now, free_in(live, total)), "
                      "math.max(reset_in(last), pu - now), cur, pv, 1, "
                      "pu - now}")
    "end\n"
    "if total < N then\n"
    "  redis.call('HINCRBY', key, cur, 1)\n"
    "  last = math.max(last, cell_end(cur))\n"
    "  keep(key, pu, forgive, last)\n"
    "  " TRL_LUA_INTS("{1, total + 1, 0, reset_in(last), cur, pv, 0, 0}")
    "end\n"
    "if base > 0 then\n"
    "  if pu > 0 and now - pu > forgive then pv = 0 end\n"
    "  if pv < 63 then pv = pv + 1 end\n"
    "  if pv < level then pv = math.min(level, 63) end\n"
    "  local len = math.floor(math.min(base * factor ^ (pv - 1),\n"
    "                                  math.max(pmax, base)))\n"
    "  pu = now + len\n"
    "  redis.call('HSET', key, 'pu', pu, 'pv', pv)\n"
    "  keep(key, pu, forgive, last)\n"
    "  " TRL_LUA_INTS("{0, total, math.max(len, free_in(live, total)), "
                      "math.max(reset_in(last), len), cur, pv, 2, len}")
    "end\n"
    TRL_LUA_INTS("{0, total, free_in(live, total), reset_in(last), cur, "
                 "pv, 0, 0}");

// Release: KEYS[1], ARGV[1] = the cell of the admission to give back.
const char kRelease[] =
    "local n = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')\n"
    "if n and n > 1 then\n"
    "  redis.call('HINCRBY', KEYS[1], ARGV[1], -1)\n"
    "elseif n == 1 then\n"
    "  redis.call('HDEL', KEYS[1], ARGV[1])\n"
    "end\n"
    "return n or 0\n";

// Reset: KEYS[1], the key to forget cluster-wide.
const char kReset[] =
    "return redis.call('DEL', KEYS[1])\n";

// Lists: KEYS[1] = <prefix>lists; ARGV = the node's Unix time (ms), the
// epoch to give a new hash, the number of entries to put, the entries (id,
// value), then the ids to delete.  Values are "action:family:prefix:
// created:expires:hex:zone[ origin]" (see trl_list_encode); expired fields are
// deleted on the way.  The hash lives a day past the last node that
// reconciled (the nodes keep their entries: a rebuilt hash gets them all
// again).  Returns the epoch, then id and value per entry.
const char kLists[] =
    "local key, now = KEYS[1], tonumber(ARGV[1])\n"
    "local i, puts = 4, tonumber(ARGV[3])\n"
    "for _ = 1, puts do\n"
    "  redis.call('HSET', key, ARGV[i], ARGV[i + 1])\n"
    "  i = i + 2\n"
    "end\n"
    "while i <= #ARGV do\n"
    "  redis.call('HDEL', key, ARGV[i])\n"
    "  i = i + 1\n"
    "end\n"
    "local epoch = redis.call('HGET', key, 'epoch')\n"
    "if not epoch then\n"
    "  epoch = ARGV[2]\n"
    "  redis.call('HSET', key, 'epoch', epoch)\n"
    "end\n"
    "local out, f = {epoch}, redis.call('HGETALL', key)\n"
    "for j = 1, #f, 2 do\n"
    "  if f[j] ~= 'epoch' then\n"
    "    local e = tonumber(string.match(f[j + 1],\n"
    "                                    '^%d+:%d+:%d+:%d+:(%d+):'))\n"
    "    if e == nil or (e > 0 and e <= now) then\n"
    "      redis.call('HDEL', key, f[j])\n"
    "    else\n"
    "      out[#out + 1] = f[j]\n"
    "      out[#out + 1] = f[j + 1]\n"
    "    end\n"
    "  end\n"
    "end\n"
    "redis.call('PEXPIRE', key, 86400000)\n"
    "return out\n";

// Reputation, read: KEYS[1] = <prefix>reputation:<NAME>; ARGV[1] = "1" for
// the body too.  Returns version, checksum (and body), nil where missing.
const char kRepRead[] =
    "local f = {'version', 'checksum'}\n"
    "if ARGV[1] == '1' then f[3] = 'body' end\n"
    "return redis.call('HMGET', KEYS[1], unpack(f))\n";

// Reputation, publish: KEYS[1] as for read; ARGV = version (Unix ms of the
// upload), checksum, body, at, node.  A hash holding the same or a newer
// version is left as it is (the nodes adopt the newest upload).  Returns
// version and checksum as the hash holds them then.
const char kRepPublish[] =
    "local key = KEYS[1]\n"
    "local cur = tonumber(redis.call('HGET', key, 'version') or '0') or 0\n"
    "if tonumber(ARGV[1]) > cur then\n"
    "  redis.call('HSET', key, 'version', ARGV[1], 'checksum', ARGV[2],\n"
    "             'body', ARGV[3], 'at', ARGV[4], 'node', ARGV[5])\n"
    "end\n"
    "return redis.call('HMGET', key, 'version', 'checksum')\n";

}  // namespace

uint64_t redis_cell_ms(uint64_t window_ms) {
    return (window_ms + kRedisCells - 1) / kRedisCells;
}

std::string redis_key(const char *prefix, size_t prefix_len,
                      const char *zone, size_t zone_len, const void *key,
                      size_t key_len) {
    const unsigned char *k = static_cast<const unsigned char *>(key);

    std::string name;
    name.reserve(prefix_len + zone_len + 3 + 2 + 2 * kRedisKeyMax);
    name.append(prefix, prefix_len);
    name += '{';
    name.append(zone, zone_len);
    name += ':';

    if (key_len <= kRedisKeyMax) {
        if (plain(k, key_len)) {
            name.append(reinterpret_cast<const char *>(k), key_len);
        } else {
            append_hex(name, k, key_len);
        }

    } else {
        // its first bytes, "~", and 32 hex digits of SHA-256 of it all
        if (plain(k, kRedisKeyHead)) {
            name.append(reinterpret_cast<const char *>(k), kRedisKeyHead);
        } else {
            size_t n = kRedisKeyHexHead;
            for (int i = 0; i < 3 && (k[n] & 0xc0) == 0x80; i++) {
                n--;                    // not half a UTF-8 character
            }
            append_hex(name, k, n);
        }

        uint8_t digest[kSha256Size];
        sha256(k, key_len, digest);
        name += '~';
        append_hex(name, digest, kRedisKeyDigits / 2, false);
    }

    name += '}';
    return name;
}

const char *script_text(Script s) {
    switch (s) {
    case kScriptPublish: return kPublish;
    case kScriptStrict: return kStrict;
    case kScriptRelease: return kRelease;
    case kScriptReset: return kReset;
    case kScriptLists: return kLists;
    case kScriptAsk: return kAsk;
    case kScriptDistinct: return trl_distinct_script();
    case kScriptRepRead: return kRepRead;
    case kScriptRepPublish: return kRepPublish;
    default: return "";
    }
}

}  // namespace trl
