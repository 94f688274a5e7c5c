// spinlock.hpp - the lock of one zone stripe, shared between processes.
//
// The lock word holds the pid of its owner.  Waiters spin briefly, then
// yield; a waiter that finds the owner gone (a worker killed while holding
// the lock) takes the lock over and is told so, so that it can repair what
// the dead owner may have left half-written.  No worker ever waits on a
// dead one.
#ifndef TRL_SPINLOCK_HPP
#define TRL_SPINLOCK_HPP

#include <atomic>
#include <cstdint>

namespace trl {

static_assert(std::atomic<uint32_t>::is_always_lock_free,
              "process-shared locks need lock-free atomics");

uint32_t current_pid();
void set_current_pid(uint32_t pid);

// Takes the lock; returns true when it was taken over from a dead owner.
bool lock_owned(std::atomic<uint32_t> &owner);
void unlock_owned(std::atomic<uint32_t> &owner);

// The same for a lock that threads take too (the reputation table: a
// worker's thread pool installs while its event loop checks files): the
// owner is the calling thread's id (the pid for a process's main thread),
// so that a thread never mistakes another thread of its process holding
// the lock for a dead predecessor of the same pid.
uint32_t current_tid();
bool lock_owned_as(std::atomic<uint32_t> &owner, uint32_t me);
// True when the process or thread of that id is gone (kill(2): ESRCH).
bool owner_gone(uint32_t id);

}  // namespace trl

#endif
