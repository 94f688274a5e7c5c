/*
 * trl_distinct.h - distinct-value limits: at most N distinct values of a
 * subject (an account name, an address) per key in any sliding window W,
 * never more; the subject's normalisation and fingerprint; the extraction
 * of a subject from a request body; the Redis side of sync=strict.
 *
 * Plain C types, no nginx header; every function is noexcept in effect
 * (exceptions are caught inside, see trl_core.h).  docs/distinct.md says
 * how the nginx glue is meant to use it.
 */

#ifndef TRL_DISTINCT_H_INCLUDED
#define TRL_DISTINCT_H_INCLUDED

#include <stddef.h>
#include <stdint.h>

#include "trl_core.h"

TRL_BEGIN_DECLS


/*
 * A distinct zone is a zone (trl_zone_t) made with a block of N + 1 slots
 * per key beside its entry: trl_distinct_zone_create(..., N).  Its
 * trl_limit_t's rate is "N distinct values per W" (N <= the N it was made
 * for: a larger one is clamped to it, so the glue refuses a reload that
 * raises N, as it refuses switching sync).  Everything else of trl_limit_t
 * applies as to request counts: warn (at that many distinct values),
 * penalty, dry run.  Keys, eviction (a key at its distinct limit or
 * serving a penalty is evicted last), statistics, offenders, penalties
 * and trl_zone_reset() are those of the zone.
 */
#define TRL_DISTINCT_MAX_LIMIT  1000

/* trl_limit_t.flags: the admission is provisional (count=failed or
 * count=succeeded): settle it with trl_distinct_confirm/cancel. */
#define TRL_DISTINCT_PROVISIONAL  0x100

/* trl_limit_t.flags (sync=async): decide only a value the key holds here,
 * live and settled (not a provisional hold of a request in flight), and
 * without extending its time, so that it leaves the window here when it
 * leaves Redis's set; for anything else (a value not held, a key unknown)
 * record nothing and set res->ask: Redis is to decide, as for sync=strict.
 * A key serving a penalty is rejected here. */
#define TRL_DISTINCT_HELD         0x200

/* Bytes per key of a distinct zone for N (entry, chain head, slots,
 * plus the sync state with TRL_ZONE_SYNC): what nginx -t and the API
 * state; 0 for a bad N. */
size_t trl_distinct_key_bytes(uint32_t limit, unsigned flags) TRL_NOEXCEPT;

/* Keys a zone of size bytes holds for N (at least; the zone made says
 * exactly: trl_zone_capacity()); 0 when it is too small. */
uint32_t trl_distinct_zone_keys(size_t size, uint32_t limit,
    unsigned flags) TRL_NOEXCEPT;

trl_zone_t *trl_distinct_zone_create(void *mem, size_t size, unsigned flags,
    uint32_t limit, char *err, size_t errlen) TRL_NOEXCEPT;

/* The N a zone was made for (0: not a distinct zone), e.g. after
 * trl_zone_attach() on a reload. */
uint32_t trl_distinct_zone_limit(const trl_zone_t *zone) TRL_NOEXCEPT;

/*
 * Decides one request of the key with the subject's fingerprint fp
 * (trl_distinct_fingerprint): a value already live in the window is
 * admitted and its time refreshed (res->remaining unchanged by it); a new
 * one is admitted while fewer than N values are live, else rejected and
 * not recorded.  res as for trl_zone_acquire(): limit N, remaining, reset
 * (when every value has left the window), retry (rejected: when a new
 * value would be admitted, or the penalty's end), warned, penalties,
 * log_first... ; res->ticket names the admission for confirm/cancel.
 * TRL_LIMIT_FORCE records the value whatever the count (sync=strict:
 * Redis admitted it).  Returns TRL_OK, or TRL_ERROR (not a distinct zone,
 * a bad limit, an internal fault: callers fail open).
 */
int trl_distinct_acquire(trl_zone_t *zone, const trl_hash_t *key,
    const trl_limit_t *limit, uint32_t fp, uint64_t now_ms,
    trl_result_t *res) TRL_NOEXCEPT;

/*
 * Settles a provisional admission (TRL_DISTINCT_PROVISIONAL) by its
 * ticket: confirm keeps the value counted until W after its time; cancel
 * gives the slot back when the admission made it and no other request
 * touched the value since (else the value stays: never fewer than the
 * truth).  A ticket whose time has left the window, or whose key was
 * evicted, changes nothing.
 */
int trl_distinct_confirm(trl_zone_t *zone, const trl_hash_t *key,
    const trl_limit_t *limit, uint64_t ticket, uint64_t now_ms) TRL_NOEXCEPT;
int trl_distinct_cancel(trl_zone_t *zone, const trl_hash_t *key,
    const trl_limit_t *limit, uint64_t ticket, uint64_t now_ms) TRL_NOEXCEPT;

/* The key's state without changing it, as trl_zone_peek(): 1 when the key
 * is unknown; res->limit - res->remaining is its distinct count. */
int trl_distinct_peek(trl_zone_t *zone, const trl_hash_t *key,
    const trl_limit_t *limit, uint64_t now_ms, trl_result_t *res) TRL_NOEXCEPT;


/*
 * Fingerprints: the low 31 bits of SipHash-2-4-128 of the normalised
 * subject under a 16-byte secret.  Keyed: without the secret nobody can
 * make two subjects collide on purpose.  A collision merges two values
 * (the second counts as a repeat of the first): a new value meets one of
 * the at most N live fingerprints of its key with probability <= N/2^31
 * (4.7e-9 for N = 10), so at most one extra value per such event.
 * The secret is derived from a text (the cluster-wide secret of the
 * configuration, the same on every node, so that Redis sees one member
 * per subject) by SHA-256; zones without one may use any random bytes.
 */
void trl_distinct_secret(const void *text, size_t len, uint8_t secret[16])
    TRL_NOEXCEPT;
uint32_t trl_distinct_fingerprint(const uint8_t secret[16],
    const void *subject, size_t len) TRL_NOEXCEPT;


/*
 * Subjects as the application sees them.  Steps, in this order:
 * percent-decoding (TRL_SUBJECT_DECODE; with TRL_SUBJECT_PLUS also '+'
 * as a space, as in query strings and forms; an invalid escape, such as
 * "%zz" or a '%' near the end, is kept as it is), trimming of ASCII
 * whitespace (TRL_SUBJECT_TRIM: space, \t, \n, \v, \f, \r at both ends),
 * ASCII case folding of the whole subject (TRL_SUBJECT_LOWER) or of the
 * domain only (TRL_SUBJECT_LOWER_DOMAIN: after the last '@', as RFC 5321
 * says; the local part is kept), then the bound: at most outlen bytes.
 * Returns TRL_SUBJECT_OK, TRL_SUBJECT_EMPTY (nothing left: the request
 * has no subject) or TRL_SUBJECT_LONG (cut at outlen bytes, trailing
 * whitespace of the cut trimmed too); *outn is the length written.
 * Non-ASCII bytes (UTF-8) are kept as they are.
 */
#define TRL_SUBJECT_DECODE        0x01
#define TRL_SUBJECT_PLUS          0x02
#define TRL_SUBJECT_TRIM          0x04
#define TRL_SUBJECT_LOWER         0x08
#define TRL_SUBJECT_LOWER_DOMAIN  0x10

#define TRL_SUBJECT_MAX           256      /* the bound the glue uses */

#define TRL_SUBJECT_OK     0
#define TRL_SUBJECT_EMPTY  1
#define TRL_SUBJECT_LONG   2

int trl_subject_normalize(const void *in, size_t len, unsigned flags,
    char *out, size_t outlen, size_t *outn) TRL_NOEXCEPT;

/*
 * A field of a request body, without allocating: the value is written to
 * out (at most outlen bytes; longer: TRL_FIELD_LONG, cut).
 * - trl_form_field: application/x-www-form-urlencoded ("a=1&b=2"), names
 *   compared after percent-decoding ('+' a space); the value is written
 *   raw (still encoded: normalise it with TRL_SUBJECT_DECODE |
 *   TRL_SUBJECT_PLUS).
 * - trl_json_field: a top-level key of a JSON object whose value is a
 *   string, written decoded (escapes, \uXXXX and surrogate pairs as
 *   UTF-8).  Nested values are skipped (up to 32 levels deep).  The whole
 *   object must be well-formed (whitespace may follow it): a buffer cut
 *   short (an over-size body read in part) is malformed.
 * Returns TRL_FIELD_FOUND (once), TRL_FIELD_NONE (absent),
 * TRL_FIELD_TWICE (more than once: out holds the last, what most
 * frameworks use; the glue should not trust it), TRL_FIELD_MALFORMED
 * (JSON: not well-formed, not an object, or the value is not a string;
 * out is then empty) or TRL_FIELD_LONG.
 */
#define TRL_FIELD_FOUND      0
#define TRL_FIELD_NONE       1
#define TRL_FIELD_TWICE      2
#define TRL_FIELD_MALFORMED  3
#define TRL_FIELD_LONG       4

int trl_form_field(const void *body, size_t len, const char *name,
    size_t name_len, char *out, size_t outlen, size_t *outn) TRL_NOEXCEPT;
int trl_json_field(const void *body, size_t len, const char *name,
    size_t name_len, char *out, size_t outlen, size_t *outn) TRL_NOEXCEPT;


/*
 * sync=strict: one Lua script per decision on a Redis sorted set per key
 * (the key's usual name, trl_redis_key()): member = the fingerprint in
 * decimal, score = 2 * time (Redis ms) + 1 while the member is a sole
 * provisional hold.  The script trims what left the window, then for
 * "acquire": refreshes a member it has, or adds a new one while the set
 * has fewer than N (counting provisional members); for "confirm" and
 * "cancel": settles a provisional admission by its time.  It sets the
 * key's TTL to W (+1 s) on every write.  trl_distinct_script() is its
 * text (to be loaded like the other scripts: SCRIPT LOAD, EVALSHA); its
 * ARGV come from trl_distinct_redis_args() and its reply (one string of
 * integers) goes to trl_distinct_redis_reply().
 */
#define TRL_DISTINCT_OP_ACQUIRE  0
#define TRL_DISTINCT_OP_CONFIRM  1
#define TRL_DISTINCT_OP_CANCEL   2
#define TRL_DISTINCT_OP_SETTLE   3     /* active zones (trl_active.h) */
#define TRL_DISTINCT_OP_RELEASE  4

typedef struct {
    int        op;             /* TRL_DISTINCT_OP_* */
    uint64_t   window_ms;      /* W */
    uint32_t   limit;          /* N */
    uint32_t   fp;
    uint8_t    provisional;    /* acquire: count=failed/succeeded */
    uint8_t    force;          /* acquire: add even at N (never used by
                                  the glue; tests and repairs) */
    uint64_t   stamp_ms;       /* confirm, cancel: the admission's time,
                                  as the acquire reply said */
    uint8_t    made;           /* cancel: the admission added the member */
    uint8_t    unique;         /* acquire (active zones): a member met
                                  again is a nonce collision, rejected
                                  (free in 1 ms), not a repeat */
    uint64_t   lifetime_ms;    /* settle: held until now + it (<= W), or
                                  0: given back */
    uint32_t   id;             /* settle: the member's new name (kept when
                                  another member has it); release: the
                                  member to remove, 0: the settled member
                                  that expires first */
} trl_distinct_redis_req_t;

typedef struct {
    const char  *data;
    size_t       len;
} trl_distinct_arg_t;

/* Writes the ARGV strings (NUL-terminated) into buf and points argv at
 * them: op, W, N, fp, flags, stamp, lifetime, id.  Returns their number
 * (TRL_DISTINCT_REDIS_ARGS), 0 when buf or argv is short or the request
 * is bad; TRL_DISTINCT_REDIS_BUF bytes of buf always suffice. */
#define TRL_DISTINCT_REDIS_ARGS  8
#define TRL_DISTINCT_REDIS_BUF   128

size_t trl_distinct_redis_args(const trl_distinct_redis_req_t *req,
    char *buf, size_t len, trl_distinct_arg_t *argv, size_t max) TRL_NOEXCEPT;

typedef struct {
    uint8_t    admitted;       /* acquire: 1 admitted, 0 rejected;
                                  confirm, cancel: 1 */
    uint8_t    made;           /* acquire: a new member was added;
                                  cancel: the member was removed */
    uint32_t   count;          /* members after, provisional included */
    uint32_t   free_in_ms;     /* rejected: until a new value is admitted */
    uint32_t   reset_in_ms;    /* until every member has left the window */
    uint64_t   stamp_ms;       /* Redis's clock: the admission's time */
} trl_distinct_reply_t;

/* TRL_OK, or TRL_ERROR for anything but exactly six integers in range. */
int trl_distinct_redis_reply(const char *text, size_t len,
    trl_distinct_reply_t *out) TRL_NOEXCEPT;

const char *trl_distinct_script(void) TRL_NOEXCEPT;

/* Records Redis's decision in the zone (the local slots mirror it, for
 * headers and as the fall-back when Redis is down) and fills res like
 * trl_distinct_acquire(); a rejection may start the key's penalty here
 * (penalties of distinct zones are node-local). */
int trl_distinct_strict_apply(trl_zone_t *zone, const trl_hash_t *key,
    const trl_limit_t *limit, uint32_t fp, const trl_distinct_reply_t *reply,
    uint64_t now_ms, trl_result_t *res) TRL_NOEXCEPT;


TRL_END_DECLS

#endif /* TRL_DISTINCT_H_INCLUDED */
