/*
 * trl_cluster.h - Redis Cluster arithmetic for token_ratelimit_redis
 * cluster=: which hash slot a Redis key lives in, what a MOVED or ASK
 * redirection says, and a slot map (the masters serving each slot, as
 * CLUSTER SLOTS lists them).  Plain C types only, no nginx or hiredis
 * header; every function is TRL_NOEXCEPT (see trl_base.h).
 */

#ifndef TRL_CLUSTER_H_INCLUDED
#define TRL_CLUSTER_H_INCLUDED

#include "trl_base.h"

TRL_BEGIN_DECLS


#define TRL_CLUSTER_SLOTS      16384
#define TRL_CLUSTER_HOST_MAX   64       /* bytes of a node's address */

/*
 * The slot of a Redis key (the Redis Cluster specification): CRC16-XMODEM
 * of the key, or of its hash tag (the bytes between the first "{" and the
 * first "}" after it, when there are any), modulo 16384.
 */
unsigned trl_cluster_slot(const void *key, size_t len) TRL_NOEXCEPT;

/*
 * A redirection error reply: "MOVED <slot> <host>:<port>" or "ASK <slot>
 * <host>:<port>" (the host may be empty: the node that answered).
 * Returns TRL_CLUSTER_MOVED or TRL_CLUSTER_ASK and fills slot, host
 * (NUL-terminated, at most TRL_CLUSTER_HOST_MAX - 1 bytes) and port, or 0
 * when the text is no such reply.
 */
#define TRL_CLUSTER_MOVED  1
#define TRL_CLUSTER_ASK    2

int trl_cluster_redirect(const char *text, size_t len, unsigned *slot,
    char host[TRL_CLUSTER_HOST_MAX], unsigned *port) TRL_NOEXCEPT;

/*
 * A slot map: up to TRL_CLUSTER_NODES_MAX masters and, for each slot, the
 * one serving it (or none).  Built from the ranges of CLUSTER SLOTS, looked
 * up per key; a map with an unserved slot is incomplete (the cluster is
 * down for those keys, or the map is stale).
 */
#define TRL_CLUSTER_NODES_MAX  64

typedef struct trl_slot_map_s  trl_slot_map_t;

trl_slot_map_t *trl_slot_map_create(void) TRL_NOEXCEPT;
void trl_slot_map_destroy(trl_slot_map_t *map) TRL_NOEXCEPT;

/* Serves slots start..end (inclusive) from host:port; returns the node's
 * index, or -1 on a bad range or too many nodes. */
int trl_slot_map_add(trl_slot_map_t *map, unsigned start, unsigned end,
    const char *host, size_t host_len, unsigned port) TRL_NOEXCEPT;

/* One slot moved to host:port (a MOVED reply); returns the node's index,
 * or -1. */
int trl_slot_map_move(trl_slot_map_t *map, unsigned slot, const char *host,
    size_t host_len, unsigned port) TRL_NOEXCEPT;

/* The node serving a slot, or -1. */
int trl_slot_map_node(const trl_slot_map_t *map, unsigned slot) TRL_NOEXCEPT;

unsigned trl_slot_map_nodes(const trl_slot_map_t *map) TRL_NOEXCEPT;
/* A node's NUL-terminated host and its port; NULL for a bad index. */
const char *trl_slot_map_host(const trl_slot_map_t *map, unsigned node,
    unsigned *port) TRL_NOEXCEPT;
/* Slots no node serves. */
unsigned trl_slot_map_unserved(const trl_slot_map_t *map) TRL_NOEXCEPT;


TRL_END_DECLS

#endif /* TRL_CLUSTER_H_INCLUDED */
