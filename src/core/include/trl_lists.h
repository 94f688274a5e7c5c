/*
 * trl_lists.h - runtime allow and deny entries (token_ratelimit_api), and
 * their reconcile with the other nodes through Redis.
 */

#ifndef TRL_LISTS_H_INCLUDED
#define TRL_LISTS_H_INCLUDED

#include "trl_base.h"

TRL_BEGIN_DECLS


/*
 * Runtime allow and deny entries (token_ratelimit_api), in a block of shared
 * memory of their own: an address or CIDR range (family 4 or 6, prefix
 * bits), or a key (family 0) of one zone (zone "" for every zone).  Times
 * are Unix ms (wall clock: entries travel between nodes).  Deny wins over
 * allow.  The match calls cost one atomic load while the lists are empty.
 */
#define TRL_LIST_ALLOW  1
#define TRL_LIST_DENY   2
#define TRL_LIST_RESET  3            /* a key reset on its way to the other
                                        nodes: never matches, never listed */

#define TRL_LIST_SYNCED 0x01         /* flags: Redis holds the entry */

typedef struct {
    uint64_t  id;                /* 0: a new entry (add assigns one) */
    uint64_t  created_ms;
    uint64_t  expires_ms;        /* 0: never */
    uint8_t   action;            /* TRL_LIST_ALLOW or TRL_LIST_DENY */
    uint8_t   family;            /* 0 key, 4 IPv4, 6 IPv6 */
    uint8_t   prefix;            /* bits of addr that match */
    uint8_t   key_len;
    uint8_t   flags;             /* TRL_LIST_SYNCED */
    uint8_t   addr[16];
    char      zone[64];          /* NUL-terminated */
    char      key[128];
    char      origin[64];        /* who added it, NUL-terminated: "api",
                                    "auto_ban:ZONE", "crowdsec:SCENARIO";
                                    "" when not said (entries of older
                                    nodes); printable, no space */
} trl_list_entry_t;

#define TRL_LIST_ORIGIN_MAX  63

/* 1 when text (len bytes) may be an origin: 1 to TRL_LIST_ORIGIN_MAX
 * printable ASCII characters, no space (it travels in the Redis field's
 * value and in JSON). */
int trl_list_origin_valid(const char *text, size_t len) TRL_NOEXCEPT;

typedef struct trl_lists_s  trl_lists_t;

/* Lays the lists out in mem, or takes over those laid out there before (a
 * reload; size 0: the block is known to be the lists'); NULL with a
 * reason in err when it cannot. */
trl_lists_t *trl_lists_create(void *mem, size_t size, char *err,
    size_t errlen) TRL_NOEXCEPT;
trl_lists_t *trl_lists_attach(void *mem, size_t size, char *err,
    size_t errlen) TRL_NOEXCEPT;
uint32_t trl_lists_capacity(const trl_lists_t *lists) TRL_NOEXCEPT;
/* TRL_ERROR when full */
int trl_lists_add(trl_lists_t *lists, trl_list_entry_t *entry,
    uint64_t now_ms) TRL_NOEXCEPT;
/* 1: removed.  With tombstone, the removal is kept (invisible) until Redis
 * has been told (trl_lists_outgoing). */
int trl_lists_remove(trl_lists_t *lists, uint64_t id, int tombstone)
    TRL_NOEXCEPT;
size_t trl_lists_get(trl_lists_t *lists, trl_list_entry_t *out, size_t max,
    uint64_t now_ms) TRL_NOEXCEPT;
/* The entries in force now, of each action. */
void trl_lists_count(trl_lists_t *lists, uint64_t now_ms, uint64_t *allow,
    uint64_t *deny) TRL_NOEXCEPT;
/* 0, TRL_LIST_ALLOW or TRL_LIST_DENY */
int trl_lists_match_addr(trl_lists_t *lists, int family,
    const uint8_t *addr, uint64_t now_ms) TRL_NOEXCEPT;
int trl_lists_match_key(trl_lists_t *lists, const char *zone,
    size_t zone_len, const void *key, size_t key_len, uint64_t now_ms)
    TRL_NOEXCEPT;

/*
 * Cluster-wide lists (token_ratelimit_redis): the entries live in the Redis
 * hash <prefix>lists, one field per id (a decimal number below 2^53) and a
 * field "epoch" that tells a rebuilt hash from the one a node saw before.
 * One process at a time reconciles (trl_lists_sync_due): it sends what
 * Redis lacks (new entries, removals) and takes in the whole hash; an entry
 * that Redis had and lost is removed, unless the hash was rebuilt (new
 * epoch): then every live entry is sent again.
 */
/* 1 when the caller is to reconcile now (then due again interval_ms later;
 * force: whatever the time), and none is in flight (a reconcile that has
 * not said it is done is given up after busy_ms). */
int trl_lists_sync_due(trl_lists_t *lists, uint64_t now_ms,
    uint64_t interval_ms, uint64_t busy_ms, int force) TRL_NOEXCEPT;
/* The reconcile is over (answered or failed); 1 when another was asked for
 * meanwhile (force), to be started at once. */
int trl_lists_sync_done(trl_lists_t *lists) TRL_NOEXCEPT;
/* What Redis lacks: live entries not synced (up to max_puts) and removed
 * ids (up to max_dels, *ndels set). */
size_t trl_lists_outgoing(trl_lists_t *lists, trl_list_entry_t *puts,
    size_t max_puts, uint64_t *dels, size_t max_dels, size_t *ndels,
    uint64_t now_ms) TRL_NOEXCEPT;
/* Redis's answer: its epoch and entries (all of the hash), after the puts
 * and dels sent (which are then marked synced, or forgotten).  The resets
 * of other nodes seen for the first time are copied to resets (up to
 * max_resets, *nresets set; the others wait for the next reconcile): the
 * caller forgets those keys. */
void trl_lists_incoming(trl_lists_t *lists, uint64_t epoch,
    const trl_list_entry_t *remote, size_t nremote,
    const uint64_t *puts, size_t nputs, const uint64_t *dels, size_t ndels,
    trl_list_entry_t *resets, size_t max_resets, size_t *nresets,
    uint64_t now_ms) TRL_NOEXCEPT;
/* An entry as the value of its Redis field, and back (TRL_OK or
 * TRL_ERROR); encode returns the length (0 when len is short).  The value
 * is action:family:prefix:created:expires:HEX:zone, then a space and the
 * origin when the entry has one (a value without it decodes with origin
 * "", as older nodes wrote them; older nodes refuse an address entry with
 * one, and see a key entry with one as of no zone they have). */
size_t trl_list_encode(const trl_list_entry_t *e, char *buf, size_t len)
    TRL_NOEXCEPT;
int trl_list_decode(uint64_t id, const char *text, size_t len,
    trl_list_entry_t *e) TRL_NOEXCEPT;


TRL_END_DECLS

#endif /* TRL_LISTS_H_INCLUDED */
