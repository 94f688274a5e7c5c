/*
 * trl_grammar.h - the values that nginx.conf and policy files share, and
 * their one parser each: rates, durations, sizes, a penalty, a warning
 * threshold, the count and sync modes.  The directives and the YAML
 * loader both call these, so they accept the same texts and say the same
 * things about the others: on error, err gets what is wrong and what is
 * accepted (NUL-terminated, cut to errlen).
 */

#ifndef TRL_GRAMMAR_H_INCLUDED
#define TRL_GRAMMAR_H_INCLUDED

#include "trl_base.h"

TRL_BEGIN_DECLS


/* Rates: N requests per sliding window of W milliseconds. */
#define TRL_RATE_MAX_LIMIT     65535
#define TRL_RATE_MAX_WINDOW_MS (365ULL * 24 * 3600 * 1000)

typedef struct {
    uint32_t  limit;        /* N: requests admitted per window */
    uint64_t  window_ms;    /* W: window length, whole seconds, in ms */
} trl_rate_t;

/* Parses "Nr/s", "Nr/m", "Nr/h", "Nr/d" or "Nr/<count><unit>" ("20r/15m"). */
int trl_rate_parse(const char *text, size_t len, trl_rate_t *rate,
    char *err, size_t errlen) TRL_NOEXCEPT;

/* Writes the canonical form ("10r/m", "20r/15m"); returns its length. */
size_t trl_rate_format(const trl_rate_t *rate, char *buf, size_t len)
    TRL_NOEXCEPT;


/* Durations as in policy files ("500ms", "30s", "1h30m"; 0 allowed):
 * <N><unit> terms, unit ms, s, m, h or d, summed, at most 365d. */
int trl_duration_parse(const char *text, size_t len, uint64_t *ms,
    char *err, size_t errlen) TRL_NOEXCEPT;
/* Sizes: bytes, or k/m/g (any case) multiples of 1024. */
int trl_size_parse(const char *text, size_t len, uint64_t *bytes,
    char *err, size_t errlen) TRL_NOEXCEPT;


/* Progressive penalty: the v-th violation (a rejection) in a row blocks the
 * key for min(base * factor^(v-1), max); violations are forgotten once the
 * key stayed out of trouble for forgive after its last block ended.  level
 * (a request's, from its reputation: penalty_level=) makes a violation
 * count as at least the level-th: v = max(v, level) after the increment
 * (0 or 1: as usual). */
typedef struct {
    uint64_t    base_ms;          /* 0: no penalty */
    uint64_t    max_ms;
    uint64_t    forgive_ms;
    double      factor;
    uint32_t    level;            /* 0..30; not parsed (set per request) */
} trl_penalty_t;

/*
 * What "token_ratelimit ... penalty=" and "warn=" take, with the grammar of
 * their YAML twins: BASE[:FACTOR[:MAX[:FORGIVE]]] (durations as above,
 * above 0; FACTOR 1 to 1000, default 2; MAX default 1h or BASE if larger;
 * FORGIVE default MAX); a warning threshold P% (1..100), a count (>= 1,
 * UINT32_MAX when beyond: the caller checks it against N) or off (both
 * 0).
 */
int trl_penalty_parse(const char *text, size_t len, trl_penalty_t *penalty,
    char *err, size_t errlen) TRL_NOEXCEPT;
int trl_warn_parse(const char *text, size_t len, uint32_t *count,
    uint32_t *percent, char *err, size_t errlen) TRL_NOEXCEPT;


/*
 * Auto-ban ("token_ratelimit ... ban=", policy ban:): an address key that
 * starts its count-th penalty in a row (within the penalty's forgive=) is
 * denied for duration_ms through the runtime lists.  COUNT:DURATION, COUNT
 * 1 to TRL_BAN_MAX_COUNT, DURATION as a penalty's parts (above 0, at most
 * 365d); off: both 0.
 */
#define TRL_BAN_MAX_COUNT  1000

typedef struct {
    uint32_t    count;            /* 0: no auto-ban */
    uint64_t    duration_ms;
} trl_ban_t;

int trl_ban_parse(const char *text, size_t len, trl_ban_t *ban,
    char *err, size_t errlen) TRL_NOEXCEPT;


/*
 * Attack mode ("token_ratelimit_attack", issue 14): its thresholds and
 * effects, one NAME=VALUE parameter at a time (zone= is the caller's):
 *   rejected=P% | off     share of rejected requests, 1..100 (default 50)
 *   offenders=N/s | off   new offending keys a second (default off)
 *   min=N/s               requests a second for rejected= (default 100)
 *   hold=DURATION         how long a low signal before leaving (default
 *                         5m; durations as in policy files, above 0)
 *   scale=F               N multiplied, 0.001..1, 3 decimals (default 1)
 *   status=CODE           400..599, or 444 (default 0: the location's)
 *   log=full | summary
 * N at most 1000000.  trl_attack_param: TRL_OK, TRL_ERROR (a bad value,
 * err says what is accepted) or TRL_ATTACK_UNKNOWN (no such parameter).
 */
#define TRL_ATTACK_LOG_FULL      0
#define TRL_ATTACK_LOG_SUMMARY   1
#define TRL_ATTACK_UNKNOWN       1

typedef struct {
    uint32_t    rejected;         /* percent, 0: off */
    uint32_t    offenders;        /* a second, 0: off */
    uint32_t    min;              /* requests a second */
    uint64_t    hold_ms;
    uint32_t    scale;            /* thousandths, 1000: unchanged */
    uint32_t    status;           /* 0: the location's */
    uint32_t    log;              /* TRL_ATTACK_LOG_* */
} trl_attack_t;

void trl_attack_defaults(trl_attack_t *attack) TRL_NOEXCEPT;
int trl_attack_param(const char *text, size_t len, trl_attack_t *attack,
    char *err, size_t errlen) TRL_NOEXCEPT;


/* Which admitted requests count ("token_ratelimit count=", policy count:):
 * all, failed (final status >= 400) or succeeded (< 400). */
#define TRL_COUNT_ALL        0
#define TRL_COUNT_FAILED     1
#define TRL_COUNT_SUCCEEDED  2

/* How a zone is shared ("token_ratelimit_zone sync=", policy sync:). */
#define TRL_SYNC_MODE_OFF     0
#define TRL_SYNC_MODE_ASYNC   1
#define TRL_SYNC_MODE_STRICT  2

/* The keywords of the two modes, in any case: all, failed, succeeded;
 * off, async, strict. */
int trl_count_parse(const char *text, size_t len, uint32_t *mode,
    char *err, size_t errlen) TRL_NOEXCEPT;
int trl_sync_parse(const char *text, size_t len, uint32_t *mode,
    char *err, size_t errlen) TRL_NOEXCEPT;


/* A zone's error log lines a second ("token_ratelimit_zone log_rate=",
 * policy log_rate:): 1 to TRL_EVENT_MAX_RATE, or off (no bound). */
#define TRL_LOG_RATE_OFF      0xffffffffU

/* How the logs show a zone's keys ("log_key=", policy log_key:). */
#define TRL_LOG_KEY_ON        0
#define TRL_LOG_KEY_OFF       1
#define TRL_LOG_KEY_HASH      2
#define TRL_LOG_KEY_MASK      3

int trl_log_rate_parse(const char *text, size_t len, uint32_t *rate,
    char *err, size_t errlen) TRL_NOEXCEPT;
int trl_log_key_parse(const char *text, size_t len, uint32_t *mode,
    char *err, size_t errlen) TRL_NOEXCEPT;


TRL_END_DECLS

#endif /* TRL_GRAMMAR_H_INCLUDED */
