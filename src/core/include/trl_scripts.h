/*
 * trl_scripts.h - the Redis scripts' codecs.  The core owns each script
 * (its text: trl_redis_script(), trl_core.h) with its encoder, plain values
 * in and the script's argument vector out (its keys first, then its
 * arguments, as byte strings), and its decoder, the reply's bytes in and a
 * struct out.  The glue only carries the bytes between these and Redis.
 *
 * Encoders write into an argument vector the caller provides: the byte
 * strings point into the caller's buffer (numbers, names made here) or at
 * the caller's own bytes (the keys' Redis names, not copied), so the vector
 * is valid as long as both are.  They return TRL_OK, or TRL_ERROR when the
 * vector or the buffer is short (the _ARGS and _BUF macros give the room
 * enough) or a value is out of range.
 *
 * Decoders read the whole reply before they fill anything: TRL_OK and the
 * struct(s) filled, or TRL_ERROR (malformed, of another length, a value out
 * of range) and nothing written.  Durations in the replies that do not fit
 * 32 bits (a window of a year) are taken as UINT32_MAX ms.
 *
 * Plain C types only; no function lets an exception out.
 */

#ifndef TRL_SCRIPTS_H_INCLUDED
#define TRL_SCRIPTS_H_INCLUDED

#include <stddef.h>
#include <stdint.h>

#include "trl_core.h"

TRL_BEGIN_DECLS


typedef struct {
    const char  *data;
    size_t       len;
} trl_bytes_t;

typedef struct {
    trl_bytes_t  *args;          /* room for max */
    size_t        max;
    size_t        n;             /* filled, the keys first */
    char         *buf;           /* where numbers and names are written */
    size_t        size;
    size_t        used;
} trl_argv_t;

/* Points argv at the caller's room, empty. */
void trl_argv_init(trl_argv_t *argv, trl_bytes_t *args, size_t max,
    char *buf, size_t size) TRL_NOEXCEPT;

#define TRL_ARG_NUM_MAX  24      /* bytes of one number, at most */

/* A zone as its scripts see it. */
typedef struct {
    uint64_t  window_ms;
    uint64_t  limit;             /* N */
    uint64_t  node_id;           /* publish, ask: trl_zone_node_id() */
} trl_script_zone_t;


/*
 * Publish (async zones, every interval): per key, the admissions to add, a
 * penalty started on the node; the reply gives back each key's cluster
 * total as a read for trl_zone_sync_apply().
 */
typedef struct {
    trl_bytes_t  name;           /* the key's Redis name */
    uint64_t     delta;          /* admissions to publish (0: only read) */
    uint64_t     leased;         /* ... of them made from the lease */
    uint64_t     penalty_ms;     /* a penalty started here (0: none) */
    uint64_t     violations;
    uint64_t     forgive_ms;
} trl_publish_key_t;

#define TRL_PUBLISH_ARGS(n)  (6 * (size_t) (n) + 4)
#define TRL_PUBLISH_BUF(n)   ((5 * (size_t) (n) + 4) * TRL_ARG_NUM_MAX)

int trl_publish_encode(const trl_script_zone_t *zone,
    const trl_publish_key_t *keys, size_t n, trl_argv_t *argv)
    TRL_NOEXCEPT;
/* reads[i], for keys[i]: published is the key's admissions that the read
 * includes (delta - leased; the leased ones were counted when granted). */
int trl_publish_decode(const char *reply, size_t len,
    const trl_publish_key_t *keys, size_t n, trl_sync_read_t *reads)
    TRL_NOEXCEPT;


/*
 * Ask (async zones, a request the node cannot decide): one request per
 * key; Redis decides each and may reserve a share for the node.  hold_ms:
 * how much longer than the lease Redis holds the share (for the node's
 * admissions from it to be published).
 */
typedef struct {
    trl_ask_reply_t  reply;      /* lease_ms: trl_lease_ms() of the zone */
    uint64_t         cell;       /* an admission's ticket for a release */
} trl_ask_answer_t;

#define TRL_ASK_ARGS(n)  ((size_t) (n) + 7)
#define TRL_ASK_BUF      (7 * TRL_ARG_NUM_MAX)

int trl_ask_encode(const trl_script_zone_t *zone, uint64_t hold_ms,
    const trl_bytes_t *names, size_t n, trl_argv_t *argv) TRL_NOEXCEPT;
int trl_ask_decode(const trl_script_zone_t *zone, const char *reply,
    size_t len, size_t n, trl_ask_answer_t *answers) TRL_NOEXCEPT;


/*
 * Strict (strict zones, every request): Redis decides and counts; a
 * rejection starts the key's next penalty unless dry_run (the penalty's
 * forgive time still keeps the key's memory of an earlier one); its level
 * (penalty_level=) makes that violation count as at least the level-th.
 */
typedef struct {
    trl_strict_reply_t  reply;
    uint64_t            cell;    /* the admission's ticket for a release */
} trl_strict_answer_t;

#define TRL_STRICT_ARGS  9
#define TRL_STRICT_BUF   (8 * TRL_ARG_NUM_MAX)

int trl_strict_encode(const trl_script_zone_t *zone,
    const trl_penalty_t *penalty, int dry_run, const trl_bytes_t *name,
    trl_argv_t *argv) TRL_NOEXCEPT;
int trl_strict_decode(const char *reply, size_t len,
    trl_strict_answer_t *answer) TRL_NOEXCEPT;


/*
 * Release (an admission given back by its ticket) and reset (a key
 * forgotten cluster-wide): their replies (a count) are not read.
 */
#define TRL_RELEASE_ARGS  2
#define TRL_RELEASE_BUF   TRL_ARG_NUM_MAX
#define TRL_RESET_ARGS    1

int trl_release_encode(const trl_bytes_t *name, uint64_t cell,
    trl_argv_t *argv) TRL_NOEXCEPT;
int trl_reset_encode(const trl_bytes_t *name, trl_argv_t *argv)
    TRL_NOEXCEPT;


/*
 * Lists (the reconcile of the runtime lists, see trl_lists_outgoing):
 * the hash <prefix>lists, the node's Unix time, the epoch a new hash gets,
 * the entries to put and the ids to delete.  The reply is an array: the
 * hash's epoch, then id and value per entry; elements[i].data is NULL for
 * an element that is not a string (skipped, as are entries that do not
 * decode; only a bad epoch fails the reply).
 */
#define TRL_LIST_VALUE_MAX  512  /* an encoded entry, at most */

#define TRL_LISTS_ARGS(nputs, ndels)                                         \
    (4 + 2 * (size_t) (nputs) + (size_t) (ndels))
#define TRL_LISTS_BUF(prefix_len, nputs, ndels)                              \
    ((size_t) (prefix_len) + 5 + 3 * TRL_ARG_NUM_MAX                         \
     + (size_t) (nputs) * (TRL_ARG_NUM_MAX + TRL_LIST_VALUE_MAX)             \
     + (size_t) (ndels) * TRL_ARG_NUM_MAX)

int trl_lists_encode(const char *prefix, size_t prefix_len, uint64_t now_ms,
    uint64_t epoch, const trl_list_entry_t *puts, size_t nputs,
    const uint64_t *dels, size_t ndels, trl_argv_t *argv) TRL_NOEXCEPT;
/* entries: room for max (nelements / 2 is enough) */
int trl_lists_decode(const trl_bytes_t *elements, size_t nelements,
    uint64_t *epoch, trl_list_entry_t *entries, size_t max,
    size_t *nentries) TRL_NOEXCEPT;


/*
 * Reputation (lists uploaded through the API, trl_reputation.h): the hash
 * <prefix>reputation:<NAME> holds the last upload of a list: version (Unix
 * ms of the upload), checksum (16 hex digits, of its ranges), body (its
 * wire form), at (Unix seconds of the publication) and node (who
 * uploaded).  Read: the version and checksum, with_body the body too.
 * Publish: writes all five unless the hash holds a version as new or
 * newer.  Both reply [version, checksum(, body)] as the hash holds them
 * then (nil elements when it holds none).
 */
typedef struct {
    int          present;        /* the hash holds a version */
    uint64_t     version;
    uint64_t     checksum;
    trl_bytes_t  body;           /* with_body: into the reply's bytes */
} trl_rep_remote_t;

/* the hash's name: the prefix, "reputation:" and a name of 31 bytes */
#define TRL_REP_KEY_BUF(prefix_len)                                          \
    ((size_t) (prefix_len) + sizeof("reputation:") - 1 + 32)

#define TRL_REP_READ_ARGS             2
#define TRL_REP_READ_BUF(prefix_len)  (TRL_REP_KEY_BUF(prefix_len) + 1)
#define TRL_REP_PUBLISH_ARGS          6
#define TRL_REP_PUBLISH_BUF(prefix_len)                                      \
    (TRL_REP_KEY_BUF(prefix_len) + 3 * TRL_ARG_NUM_MAX)

int trl_rep_read_encode(const char *prefix, size_t prefix_len,
    const char *name, size_t name_len, int with_body, trl_argv_t *argv)
    TRL_NOEXCEPT;
/* upload: version (>= 1), checksum and body (not copied); node: not
 * copied either */
int trl_rep_publish_encode(const char *prefix, size_t prefix_len,
    const char *name, size_t name_len, const trl_rep_remote_t *upload,
    uint64_t at_s, const char *node, size_t node_len, trl_argv_t *argv)
    TRL_NOEXCEPT;
/* elements: 2 (read, publish) or 3 (read with_body); data NULL for nil */
int trl_rep_remote_decode(const trl_bytes_t *elements, size_t nelements,
    trl_rep_remote_t *out) TRL_NOEXCEPT;


TRL_END_DECLS

#endif /* TRL_SCRIPTS_H_INCLUDED */
