/*
 * trl_decisions.h - the runtime deny entries and penalties of address keys
 * as CrowdSec decisions (token_ratelimit_crowdsec_key,
 * token_ratelimit_netset): what a decision holds, the ranges never handed
 * out, the durations as CrowdSec writes them, and what each bouncer pulling
 * the decisions stream has been sent.
 */

#ifndef TRL_DECISIONS_H_INCLUDED
#define TRL_DECISIONS_H_INCLUDED

#include "trl_base.h"
#include "trl_reputation.h"

TRL_BEGIN_DECLS


#define TRL_DECISION_SCENARIO  64    /* the scenario (a list entry's origin,
                                        a zone's name), NUL included */

/* One ban of an address or a range: wall clock Unix ms. */
typedef struct {
    uint64_t  id;                    /* below 2^53 (exact as JSON), not 0 */
    uint64_t  expires_ms;            /* 0: never */
    uint8_t   family;                /* 4 or 6 */
    uint8_t   prefix;
    uint8_t   addr[16];              /* IPv4 in the first 4 bytes */
    char      scenario[TRL_DECISION_SCENARIO];
} trl_decision_t;

/* 1 when the range family/prefix/addr overlaps one of ranges[n]. */
int trl_cidr_overlaps(uint8_t family, uint8_t prefix, const uint8_t *addr,
    const trl_cidr_t *ranges, size_t n) TRL_NOEXCEPT;

/* 1 when the decision's range overlaps a trusted range: the built-in ones
 * (trl_reputation.h: loopback, private and link-local networks) or one of
 * trusted[] (trusted= and set_real_ip_from). */
int trl_decision_trusted(const trl_decision_t *d, const trl_cidr_t *trusted,
    size_t ntrusted) TRL_NOEXCEPT;

/* 1 when the decision's range holds all of c (an address: c's prefix is
 * 32 or 128): GET .../v1/decisions?ip=|range=, as a live bouncer asks. */
int trl_decision_covers(const trl_decision_t *d, const trl_cidr_t *c)
    TRL_NOEXCEPT;

/* The id of the decision "this key of this zone serves a penalty": the same
 * for the same zone and key, below 2^53 and at or above 2^52 (runtime list
 * ids are the others, mostly). */
uint64_t trl_decision_penalty_id(const char *zone, size_t zone_len,
    const void *key, size_t key_len) TRL_NOEXCEPT;

/* ms as Go's time.Duration prints whole seconds ("3h59m58s", "59m0s",
 * "7s", "0s", "-12s"), rounded toward zero; the length written (NUL
 * added), 0 when len is short. */
size_t trl_decision_duration(int64_t ms, char *buf, size_t len)
    TRL_NOEXCEPT;


/*
 * The decisions stream (GET .../v1/decisions/stream): per bouncer, the
 * decisions sent to it (up to TRL_STREAM_MAX), in shared memory, so that a
 * pull answers what is new since that bouncer's last pull and what of what
 * it was sent is gone (removed or expired).  At most TRL_STREAM_BOUNCERS
 * bouncers are remembered: another one takes the place of the one that
 * pulled least recently, which then counts as new (its next pull is
 * answered like startup=true).  Decisions beyond TRL_STREAM_MAX for one
 * bouncer are held back (counted) until room is made by deletions.  A
 * decision already sent whose expiry moved later by more than a second is
 * sent again as new.
 */
#define TRL_STREAM_BOUNCERS  8
#define TRL_STREAM_MAX       4096

typedef struct trl_stream_s  trl_stream_t;

typedef struct {
    uint64_t  who;                   /* hash of the bouncer's identity */
    uint64_t  first_ms;              /* its first pull (startup) */
    uint64_t  last_ms;               /* its last pull */
    uint64_t  pulls;
    uint32_t  sent;                  /* decisions it holds now */
    uint32_t  held_back;             /* at its last pull */
} trl_stream_bouncer_t;

/* Bytes the stream state takes (the caller's shared memory). */
size_t trl_stream_size(void) TRL_NOEXCEPT;
/* Lays the state out in mem (size at least trl_stream_size()), or takes
 * over the one laid out there before (a reload); NULL with a reason. */
trl_stream_t *trl_stream_create(void *mem, size_t size, char *err,
    size_t errlen) TRL_NOEXCEPT;
trl_stream_t *trl_stream_attach(void *mem, size_t size, char *err,
    size_t errlen) TRL_NOEXCEPT;

/*
 * One pull by the bouncer named by who (bytes: its key and User-Agent).
 * cur: the decisions in force now (sorted here by id; duplicates of an id
 * count once).  new_out gets up to TRL_STREAM_MAX decisions, del_out up to
 * TRL_STREAM_MAX; *held_back the decisions not sent for want of room.
 * TRL_OK, or TRL_ERROR (nothing changed).
 */
int trl_stream_pull(trl_stream_t *s, const void *who, size_t who_len,
    int startup, trl_decision_t *cur, size_t ncur, trl_decision_t *new_out,
    size_t *nnew, trl_decision_t *del_out, size_t *ndel, size_t *held_back,
    uint64_t now_ms) TRL_NOEXCEPT;

/* The bouncers remembered, up to max, most recent pull first. */
size_t trl_stream_bouncers(trl_stream_t *s, trl_stream_bouncer_t *out,
    size_t max) TRL_NOEXCEPT;


TRL_END_DECLS

#endif /* TRL_DECISIONS_H_INCLUDED */
