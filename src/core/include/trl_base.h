/*
 * trl_base.h - what every header of the core's C ABI shares: the return
 * convention, the clock, and the promise that no C++ exception crosses.
 *
 * The core is C++17 but nothing C++ crosses this boundary: every function
 * of the ABI is declared TRL_NOEXCEPT (noexcept when read by C++, so the
 * compiler holds each definition to it), catches inside (src/core/guard.hpp)
 * and reports a fault as an error return; it takes and returns plain C
 * types and includes no nginx header.  The nginx glue (src/nginx) and the
 * Check unit tests (t/unit) are its only callers.
 *
 * Returns: TRL_OK or TRL_ERROR, the results in out-parameters, where a
 * function can fail; a few lookups answer 1 for "not there" (documented at
 * each), counts and lengths are returned as size_t (0 on a fault), and
 * functions that cannot fail return what they read.  A function that takes
 * err and errlen writes a NUL-terminated reason there on every failure.
 *
 * Time: the core counts in milliseconds of a monotonic clock shared by all
 * processes of one host (CLOCK_MONOTONIC).  Callers either pass their own
 * "now" (tests) or TRL_CLOCK_NOW, in which case the core reads the clock
 * inside the critical section, so that the time recorded for an admission
 * is never earlier than the moment it was decided.
 */

#ifndef TRL_BASE_H_INCLUDED
#define TRL_BASE_H_INCLUDED

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
#define TRL_NOEXCEPT  noexcept
#define TRL_BEGIN_DECLS  extern "C" {
#define TRL_END_DECLS    }
#else
#define TRL_NOEXCEPT
#define TRL_BEGIN_DECLS
#define TRL_END_DECLS
#endif

TRL_BEGIN_DECLS


#define TRL_OK      0
#define TRL_ERROR  -1

#define TRL_CLOCK_NOW          UINT64_MAX

uint64_t trl_clock_ms(void) TRL_NOEXCEPT;   /* the core's monotonic clock */

/*
 * The process id the zone and list locks record as owner.  The glue calls
 * it once per worker (init_process); without it the core asks getpid()
 * itself.
 */
void trl_set_pid(int pid) TRL_NOEXCEPT;


TRL_END_DECLS

#endif /* TRL_BASE_H_INCLUDED */
