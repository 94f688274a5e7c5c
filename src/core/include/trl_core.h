/*
 * trl_core.h - the C ABI of the token_ratelimit core, all of it: the glue
 * includes this one header.  Each concept has its own (see trl_base.h for
 * the rules every entry point keeps: TRL_NOEXCEPT, TRL_OK/TRL_ERROR and
 * out-parameters, a reason in err on failure):
 *
 *   trl_base.h      return codes, the clock, the process id
 *   trl_grammar.h   rates, durations, sizes, penalty, warn, count and sync
 *                   modes: the values nginx.conf and policy files share
 *   trl_zone.h      a zone's counters, decisions, statistics and views
 *   trl_sync.h      zones shared through Redis, Redis key names, scripts
 *   trl_lists.h     runtime allow/deny lists and their Redis reconcile
 *   trl_policy.h    YAML policy files
 *   trl_reputation.h  IP reputation lists: parser, shared table, options
 *
 * trl_cluster.h (Redis Cluster slots) stands apart, and trl_test.h holds
 * what only the unit tests call.
 */

#ifndef TRL_CORE_H_INCLUDED
#define TRL_CORE_H_INCLUDED

#include "trl_base.h"
#include "trl_grammar.h"
#include "trl_zone.h"
#include "trl_sync.h"
#include "trl_lists.h"
#include "trl_policy.h"
#include "trl_reputation.h"

#endif /* TRL_CORE_H_INCLUDED */
