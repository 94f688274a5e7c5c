/*
 * trl_reputation.h - IP reputation: named lists of address ranges (IPv4
 * and IPv6) in a table of shared memory, each list with a score, looked up
 * without a lock; their parser (netsets, Spamhaus DROP, plain address
 * lists) with the trust and width rules that keep a list from covering the
 * operator's own network; their wire form for Redis; and the grammar of
 * the options that use them ("token_ratelimit ... scale= deny_score=
 * penalty_level=" and their policy-file twins).
 *
 * Readers never lock: each list's table is an immutable generation that a
 * writer builds beside the current one and then swaps in; an old
 * generation's memory is reused only after a grace period, and a reader
 * that finds its generation reused (a sequence number) looks again.
 */

#ifndef TRL_REPUTATION_H_INCLUDED
#define TRL_REPUTATION_H_INCLUDED

#include "trl_base.h"

TRL_BEGIN_DECLS


#define TRL_REP_MAX_LISTS   64      /* lists per table (a bit each) */
#define TRL_REP_NAME_LEN    32      /* a list's name, NUL included */
#define TRL_REP_MAX_SCORE   100
#define TRL_REP_MAX_TERMS   16      /* LIST:VALUE terms per option */

/* An address range as configured (trusted ranges): family 4 or 6. */
typedef struct {
    uint8_t   family;
    uint8_t   prefix;
    uint8_t   addr[16];             /* IPv4 in the first 4 bytes */
} trl_cidr_t;

/* Parses "a.b.c.d", "a.b.c.d/n", an IPv6 address, "x::/n"; TRL_OK or
 * TRL_ERROR with a reason (bits set beyond the prefix are an error). */
int trl_cidr_parse(const char *text, size_t len, trl_cidr_t *out,
    char *err, size_t errlen) TRL_NOEXCEPT;


/*
 * What a list may hold.  Entries that overlap a trusted range (the
 * built-in ones: 0/8, 10/8, 100.64/10, 127/8, 169.254/16, 172.16/12,
 * 192.168/16, ::1, ::, fc00::/7, fe80::/10, and those given here) or that
 * span more addresses than a /widest4 (IPv6: /widest6) are dropped and
 * counted; the rest of the list is kept.
 */
typedef struct {
    const trl_cidr_t  *trusted;
    size_t             ntrusted;
    uint8_t            widest4;     /* 0..32; default 8 */
    uint8_t            widest6;     /* 0..128; default 32 */
} trl_rep_rules_t;


/*
 * A parsed list, in process memory (normalised: sorted, merged ranges).
 * The parser takes, one entry per line: an address, a CIDR, a range
 * "a-b" (or "a - b"), or a JSON object with "cidr", "ip" or "ipAddress"
 * (Spamhaus drop_v4.json, AbuseIPDB); "#" and ";" start comments (so
 * Spamhaus "CIDR ; SBLnnn" and FireHOL netsets read as they are), and what
 * follows the first field is ignored (IPsum "addr<TAB>count").  A line
 * that is none of these makes the whole list fail, with
 * "<source>:<line>: <why>": the caller keeps the last good version.
 */
typedef struct trl_rep_build_s  trl_rep_build_t;

typedef struct {
    uint64_t  lines;                /* lines read */
    uint64_t  entries;              /* entries accepted */
    uint64_t  ranges4;              /* IPv4 ranges after merging */
    uint64_t  ranges6;
    uint64_t  dropped_trusted;      /* entries dropped: overlap trusted */
    uint64_t  dropped_wide;         /* ... wider than the bound */
    char      dropped_example[128]; /* the first dropped, with its line and
                                       why ("" when none) */
    uint64_t  checksum;             /* of the merged ranges: lists with the
                                       same ranges have the same checksum */
    uint64_t  bytes;                /* what its table takes in the zone */
} trl_rep_build_info_t;

trl_rep_build_t *trl_rep_parse(const char *text, size_t len,
    const char *source, const trl_rep_rules_t *rules, char *err,
    size_t errlen) TRL_NOEXCEPT;
void trl_rep_build_info(const trl_rep_build_t *b, trl_rep_build_info_t *info)
    TRL_NOEXCEPT;
/* The union of a and b (for appending entries); NULL without memory. */
trl_rep_build_t *trl_rep_merge(const trl_rep_build_t *a,
    const trl_rep_build_t *b) TRL_NOEXCEPT;
/* NULL: nothing */
void trl_rep_build_free(trl_rep_build_t *b) TRL_NOEXCEPT;

/* A build of ranges as they are, without trust or width rules (ranges
 * already judged, tests): first..last inclusive, family 4 (IPv4 in the
 * first 4 bytes) or 6, addresses in network order.  NULL with a reason
 * when a range ends before it starts or has no family. */
typedef struct {
    uint8_t   family;
    uint8_t   first[16];
    uint8_t   last[16];
} trl_rep_range_t;

trl_rep_build_t *trl_rep_build_ranges(const trl_rep_range_t *r, size_t n,
    char *err, size_t errlen) TRL_NOEXCEPT;

/* The wire form of a build (Redis): a versioned binary of its merged
 * ranges.  encode returns the bytes written (0 when len is short);
 * decode checks everything (order, overlap, checksum) and returns NULL with
 * a reason on any fault. */
size_t trl_rep_wire_size(const trl_rep_build_t *b) TRL_NOEXCEPT;
size_t trl_rep_wire_encode(const trl_rep_build_t *b, void *buf, size_t len)
    TRL_NOEXCEPT;
trl_rep_build_t *trl_rep_wire_decode(const void *buf, size_t len, char *err,
    size_t errlen) TRL_NOEXCEPT;


/*
 * The table: in a block of shared memory mapped at the same address in
 * every process.  Lists are declared by the configuration (by name: a
 * reload keeps the table of each list it declares again), and filled by
 * trl_rep_install (from any process or thread; writers take the table's
 * lock, readers never do).
 */
typedef struct trl_rep_s  trl_rep_t;

#define TRL_REP_DRY_RUN      0x01   /* matches are reported, not enforced */
#define TRL_REP_FILE         0x02   /* loaded from a file (not uploaded) */

typedef struct {
    char      name[TRL_REP_NAME_LEN];
    uint32_t  score;                /* 0..TRL_REP_MAX_SCORE */
    uint32_t  flags;                /* TRL_REP_DRY_RUN, TRL_REP_FILE */
} trl_rep_decl_t;

trl_rep_t *trl_rep_create(void *mem, size_t size, char *err, size_t errlen)
    TRL_NOEXCEPT;
/* As after a reload: NULL with a reason when mem holds no table of this
 * version (size 0: do not check the size). */
trl_rep_t *trl_rep_attach(void *mem, size_t size, char *err, size_t errlen)
    TRL_NOEXCEPT;
/* Declares the lists of a configuration: slots[i] gets decl[i]'s slot.  A
 * list declared before keeps its table (and its slot); one no longer
 * declared is dropped.  TRL_ERROR with a reason when they do not fit. */
int trl_rep_configure(trl_rep_t *rep, const trl_rep_decl_t *decl, size_t n,
    int *slots, uint64_t now_ms, char *err, size_t errlen) TRL_NOEXCEPT;

/* Replaces the table of a slot by b, atomically for readers.  version: the
 * list's version (0: the table's next local one); origin: "file", "api" or
 * "redis".  TRL_ERROR with a reason when the zone has no room for it: the
 * list keeps its current table. */
#define TRL_REP_UNPUBLISHED  0x01   /* install: an upload Redis lacks */

int trl_rep_install(trl_rep_t *rep, int slot, const trl_rep_build_t *b,
    uint64_t version, const char *origin, unsigned flags, uint64_t now_ms,
    char *err, size_t errlen) TRL_NOEXCEPT;
/* The ranges of a slot's current table, as a build (NULL: none or no
 * memory). */
trl_rep_build_t *trl_rep_extract(trl_rep_t *rep, int slot) TRL_NOEXCEPT;
/* Records why a load failed ("" clears it); shown by trl_rep_info. */
void trl_rep_set_error(trl_rep_t *rep, int slot, const char *why,
    uint64_t now_ms) TRL_NOEXCEPT;
/* Redis holds the slot's table as version: clears TRL_REP_UNPUBLISHED. */
void trl_rep_published(trl_rep_t *rep, int slot, uint64_t version)
    TRL_NOEXCEPT;
/* What Redis holds for the slot (the last poll): shown by trl_rep_info. */
void trl_rep_seen(trl_rep_t *rep, int slot, uint64_t version,
    uint64_t checksum) TRL_NOEXCEPT;
/* Frees the memory of generations retired long enough ago. */
void trl_rep_reclaim(trl_rep_t *rep, uint64_t now_ms) TRL_NOEXCEPT;


/* The lookup, lock-free.  Returns 1 when some list matched. */
typedef struct {
    uint64_t  lists;                /* slots of the enforced lists matched */
    uint64_t  dry_run;              /* slots of the dry-run lists matched */
    uint32_t  score;                /* highest score among lists (0) */
} trl_rep_match_t;

int trl_rep_lookup(const trl_rep_t *rep, int family, const uint8_t *addr,
    trl_rep_match_t *m) TRL_NOEXCEPT;
/* The same for the lists of the slots in want only: the others cost
 * nothing (a location looks up the lists its limits name). */
int trl_rep_lookup_some(const trl_rep_t *rep, uint64_t want, int family,
    const uint8_t *addr, trl_rep_match_t *m) TRL_NOEXCEPT;
/* Counts a request that matched (per list, for the statistics). */
void trl_rep_count(trl_rep_t *rep, const trl_rep_match_t *m) TRL_NOEXCEPT;
/* The names of the slots in mask, in slot order, separated by commas;
 * returns the length (cut at len). */
size_t trl_rep_names(const trl_rep_t *rep, uint64_t mask, char *buf,
    size_t len) TRL_NOEXCEPT;


/* Files: which process checks them, and whether one changed. */
typedef struct {
    uint64_t  dev;
    uint64_t  ino;
    uint64_t  size;
    int64_t   mtime_ns;
} trl_rep_file_id_t;

/* Channels of trl_rep_due */
#define TRL_REP_DUE_FILES   0       /* check the files */
#define TRL_REP_DUE_REDIS   1       /* poll Redis for uploaded lists */

/* 1 when the caller is to do that now (one process per interval). */
int trl_rep_due(trl_rep_t *rep, int channel, uint64_t now_ms,
    uint64_t interval_ms) TRL_NOEXCEPT;
/* 1 when id differs from the file last tried for slot (which id becomes),
 * 0 when it is the same. */
int trl_rep_file_changed(trl_rep_t *rep, int slot,
    const trl_rep_file_id_t *id) TRL_NOEXCEPT;


/* For the API and statistics. */
typedef struct {
    char      name[TRL_REP_NAME_LEN];
    uint32_t  score;
    uint32_t  flags;                /* TRL_REP_DRY_RUN, TRL_REP_FILE */
    uint32_t  unpublished;          /* an upload Redis lacks */
    uint64_t  version;              /* 0: never loaded */
    uint64_t  checksum;
    uint64_t  ranges4;
    uint64_t  ranges6;
    uint64_t  entries;
    uint64_t  bytes;
    uint64_t  dropped_trusted;
    uint64_t  dropped_wide;
    char      dropped_example[128];
    uint64_t  loaded_ms;            /* Unix ms of the last install */
    uint64_t  load_ms;              /* how long building it took (set by
                                       the caller: trl_rep_set_load_ms) */
    uint64_t  matched;              /* requests counted by trl_rep_count */
    char      origin[8];            /* "file", "api", "redis" or "" */
    char      error[256];           /* the last load's fault, or "" */
    uint64_t  error_ms;
    uint64_t  redis_version;        /* what Redis held at the last poll */
    uint64_t  redis_checksum;       /* (0: nothing, or not polled) */
} trl_rep_list_info_t;

/* TRL_OK, or TRL_ERROR for a slot not in use. */
int trl_rep_info(trl_rep_t *rep, int slot, trl_rep_list_info_t *out)
    TRL_NOEXCEPT;
void trl_rep_set_load_ms(trl_rep_t *rep, int slot, uint64_t ms) TRL_NOEXCEPT;

typedef struct {
    uint64_t  size;                 /* bytes of the block */
    uint64_t  used;                 /* by tables, current and retired */
    uint64_t  retired;              /* by retired generations */
    uint32_t  lists;                /* declared */
    uint64_t  heap;                 /* bytes for tables (the block less
                                       the table's own header) */
} trl_rep_zone_info_t;

void trl_rep_zone_info(trl_rep_t *rep, trl_rep_zone_info_t *out)
    TRL_NOEXCEPT;


/*
 * The options that use the lists, one grammar for nginx.conf and policy
 * files:
 *   scale=LIST:FACTOR[,LIST:FACTOR...]  FACTOR 0.001..100 (N x FACTOR,
 *                                       rounded down, at least 1)
 *   penalty_level=LIST:LEVEL[,...]      LEVEL 1..30: a listed source's
 *                                       first violation counts as this one
 *   deny_score=SCORE                    1..100: sources whose score is at
 *                                       least SCORE are denied
 * Names are checked against the declared lists by the caller.
 */
typedef struct {
    char      name[TRL_REP_NAME_LEN];
    uint32_t  value;                /* scale: thousandths; level: 1..30 */
} trl_rep_term_t;

typedef struct {
    uint32_t        n;
    trl_rep_term_t  term[TRL_REP_MAX_TERMS];
} trl_rep_terms_t;

int trl_rep_scale_parse(const char *text, size_t len, trl_rep_terms_t *out,
    char *err, size_t errlen) TRL_NOEXCEPT;
int trl_rep_level_parse(const char *text, size_t len, trl_rep_terms_t *out,
    char *err, size_t errlen) TRL_NOEXCEPT;
int trl_rep_score_parse(const char *text, size_t len, uint32_t *score,
    char *err, size_t errlen) TRL_NOEXCEPT;
/* A list's name: 1..31 bytes of [A-Za-z0-9_.-]; TRL_OK or TRL_ERROR. */
int trl_rep_name_check(const char *text, size_t len, char *err,
    size_t errlen) TRL_NOEXCEPT;
/* max(1, floor(n * thousandths / 1000)), at most TRL_RATE_MAX_LIMIT */
uint32_t trl_rep_scale_limit(uint32_t n, uint32_t thousandths) TRL_NOEXCEPT;


TRL_END_DECLS

#endif /* TRL_REPUTATION_H_INCLUDED */
