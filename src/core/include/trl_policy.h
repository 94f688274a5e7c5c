/*
 * trl_policy.h - policy files: YAML that names the limits of
 * "token_ratelimit policy=NAME", per environment.
 */

#ifndef TRL_POLICY_H_INCLUDED
#define TRL_POLICY_H_INCLUDED

#include "trl_base.h"
#include "trl_grammar.h"
#include "trl_reputation.h"

TRL_BEGIN_DECLS


/*
 * Policy files (YAML, read with libyaml).
 *
 *   enabled: ${ENABLE_RATE_LIMITING:-true}   # master switch (default true)
 *   environment: production      # the environment used when none is asked
 *   defaults:                    # settings of every policy, overridable
 *     key: $binary_remote_addr
 *     zone_size: 10m
 *   environments:                # required, at least one
 *     development:
 *       login: { rate: 100r/15m }
 *     production:
 *       login:
 *         rate: 20r/15m          # required (here or in defaults)
 *         key: $binary_remote_addr  # nginx string; required (or defaults)
 *         count: failed          # all (default) | failed | succeeded
 *         warn: 80%              # 1%..100% of N (rounded up), 1..N, or off
 *         penalty:               # or "off" (cancels a penalty of defaults)
 *           base: 30s            # required when penalty is given
 *           factor: 2            # 1 to 1000, decimals allowed; default 2
 *           max: 1h              # >= base; default 1h
 *           forgive: 24h         # default: max
 *         dry_run: false
 *         sync: off              # off (default) | async | strict
 *         zone_size: 10m         # bytes or k/m/g; >= 32k; default 10m
 *         log_rate: 5            # error log lines a second, 1..100000 or
 *                                # off; default 5 (token_ratelimit_zone's)
 *         log_key: on            # on (default) | off | hash | mask
 *         distinct: $trl_user    # count distinct values of this nginx
 *                                # string per key (token_ratelimit_zone's
 *                                # distinct=): rate N <= 1000, sync off or
 *                                # strict; "off" cancels one of defaults
 *         scale: "tor:0.5,bad:0.2"  # token_ratelimit's scale=, penalty_level=
 *         penalty_level: "bad:3"    # and deny_score= (trl_reputation.h);
 *         deny_score: 80            # "off" cancels one of defaults; list
 *                                   # names are checked by the caller
 *         ban: "3:24h"           # token_ratelimit's ban= (trl_grammar.h),
 *                                # or off; the caller checks the key
 *         active: 24h            # token_ratelimit_zone's active[=MAX]
 *                                # (trl_active.h): on, a duration or off;
 *                                # N <= 1000, not with distinct:
 *         lifetime: $upstream_http_x_expires_in   # ... lifetime= and
 *         token: $upstream_http_x_token_id        # token=; need active
 *
 * - Top-level keys, policy keys and penalty keys are the ones above; any
 *   other is an error.  A policy inherits every setting it does not give
 *   from defaults:; a penalty given both in defaults and in a policy is
 *   merged key by key.  An empty value where a mapping is expected (a
 *   policy, an environment, defaults) is an empty mapping.
 * - Environment and policy names: 1 to 63 letters, digits, '_', '-', '.'.
 * - Booleans: true/false, yes/no, on/off, 1/0 (any case); keywords (count,
 *   sync, log_key) any case.  Durations: <N><unit> terms, unit ms, s, m, h or d,
 *   summed ("1h30m"), at most 365d; penalty durations above 0.
 * - ${NAME} and ${NAME:-default} are substituted in every scalar value
 *   (not in keys) before it is read, several per value; the default is
 *   used when NAME is unset or empty and is taken literally up to the
 *   first '}' (no nesting).  A '$' not followed by '{' is literal, so
 *   nginx variables stay as written; "$$" is not special.  An unset NAME
 *   without a default is an error.  Values come from lookup (NULL: the
 *   process environment).  Inside a flow mapping ({ ... }) a value with
 *   ${...} must be quoted: YAML ends plain scalars there at '{' and '}'.
 * - Every environment is read and validated, not only the chosen one.
 * - Anchors, aliases, tags and more than one YAML document are refused.
 * - Errors: "FILE:LINE:COLUMN: what is wrong; what was expected", line and
 *   column 1-based, of the offending node (libyaml's problem mark for
 *   syntax errors); "FILE: cannot open the policy file: <reason>" (or
 *   "cannot read") when it cannot be read, as there is no position.
 */
typedef const char *(*trl_env_lookup_pt)(void *ctx, const char *name,
    size_t len);                     /* NUL-terminated value; NULL: unset */

typedef struct {
    char           name[64];         /* policy name, NUL-terminated */
    const char    *key;              /* NUL-terminated nginx string, owned
                                        by the set */
    trl_rate_t     rate;
    uint64_t       zone_size;        /* bytes */
    uint32_t       count;            /* TRL_COUNT_* */
    uint32_t       warn;             /* absolute count, 0: none (a percent
                                        p is ceil(N * p / 100)) */
    uint32_t       sync;             /* TRL_SYNC_MODE_* */
    uint8_t        dry_run;
    uint32_t       log_rate;         /* 0: the default, TRL_LOG_RATE_OFF */
    uint32_t       log_key;          /* TRL_LOG_KEY_* */
    trl_penalty_t  penalty;          /* all 0 without one */
    uint32_t       line;             /* where the policy's name is */
    const char    *distinct;         /* distinct: (NUL-terminated nginx
                                        string, owned by the set), or
                                        NULL: the policy counts requests */
    trl_rep_terms_t  scale;          /* scale: (n 0: none) */
    trl_rep_terms_t  penalty_level;  /* penalty_level: (n 0: none) */
    uint32_t         deny_score;     /* deny_score: 1..100, 0: none */
    trl_ban_t        ban;            /* ban: (count 0: none) */
    uint8_t          active;         /* active: (issue 15, trl_active.h) */
    uint64_t         active_max_ms;  /* ... its MAX, 0: the rate's window */
    const char      *lifetime;       /* lifetime:, NULL: none */
    const char      *token;          /* token:, NULL: none */
} trl_policy_t;

typedef struct trl_policy_set_s  trl_policy_set_t;

/*
 * Loads the policies of one environment: environment if not NULL (or ""),
 * else the file's environment:, else the file's only environment; anything
 * else is an error.  Returns NULL with a message in err on error.
 */
trl_policy_set_t *trl_policy_load(const char *path, const char *environment,
    trl_env_lookup_pt lookup, void *lookup_ctx, char *err, size_t errlen)
    TRL_NOEXCEPT;
/* NULL: nothing */
void trl_policy_free(trl_policy_set_t *set) TRL_NOEXCEPT;

/* 1 or 0 */
int trl_policy_enabled(const trl_policy_set_t *set) TRL_NOEXCEPT;
size_t trl_policy_count(const trl_policy_set_t *set) TRL_NOEXCEPT;
/* The i-th policy in file order: TRL_OK, or TRL_ERROR on a bad index. */
int trl_policy_get(const trl_policy_set_t *set, size_t i, trl_policy_t *out)
    TRL_NOEXCEPT;
/* TRL_OK, or 1 when the set has no policy of that name. */
int trl_policy_find(const trl_policy_set_t *set, const char *name,
    size_t len, trl_policy_t *out) TRL_NOEXCEPT;


TRL_END_DECLS

#endif /* TRL_POLICY_H_INCLUDED */
