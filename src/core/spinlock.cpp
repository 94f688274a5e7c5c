// spinlock.cpp - pid-owned spinlock with dead-owner takeover.
#include "spinlock.hpp"

#include <cerrno>
#include <sched.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace trl {
namespace {

std::atomic<uint32_t> g_pid{0};

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    asm volatile("yield" ::: "memory");
#endif
}

bool process_gone(uint32_t pid) {
    return kill(static_cast<pid_t>(pid), 0) == -1 && errno == ESRCH;
}

constexpr unsigned kSpins = 64;            // busy rounds before yielding
constexpr unsigned kYieldsPerCheck = 256;  // yields between liveness checks

}  // namespace

uint32_t current_pid() {
    uint32_t pid = g_pid.load(std::memory_order_relaxed);
    if (pid == 0) {
        pid = static_cast<uint32_t>(getpid());
        g_pid.store(pid, std::memory_order_relaxed);
    }
    return pid;
}

void set_current_pid(uint32_t pid) {
    g_pid.store(pid, std::memory_order_relaxed);
}

// A system call each time, not a thread_local cache: a thread_local in
// the module makes it need ld-linux for __tls_get_addr (and the .deb's
// dependencies then fail), and the reputation table's writers, the only
// callers, take its lock rarely.
uint32_t current_tid() {
    return static_cast<uint32_t>(syscall(SYS_gettid));
}

bool lock_owned(std::atomic<uint32_t> &owner) {
    return lock_owned_as(owner, current_pid());
}

bool owner_gone(uint32_t id) { return process_gone(id); }

// kill(2) with a thread's id answers for the thread: ESRCH once it is
// gone, as for a process.
bool lock_owned_as(std::atomic<uint32_t> &owner, uint32_t me) {
    uint32_t seen = 0;

    if (owner.compare_exchange_strong(seen, me, std::memory_order_acquire)) {
        return false;
    }

    for (unsigned round = 1;; round++) {
        if (round <= kSpins) {
            for (unsigned i = 0; i < round; i++) {
                cpu_relax();
            }
        } else {
            sched_yield();
        }

        seen = owner.load(std::memory_order_relaxed);
        if (seen == 0) {
            if (owner.compare_exchange_weak(seen, me,
                                            std::memory_order_acquire)) {
                return false;
            }
            continue;
        }

        // A lock "held" by this very process can only be left over by a
        // predecessor with the same pid: there is no recursion here.
        bool check = seen == me
                     || (round > kSpins && round % kYieldsPerCheck == 0);
        if (check && (seen == me || process_gone(seen))) {
            if (owner.compare_exchange_strong(seen, me,
                                              std::memory_order_acquire)) {
                return true;
            }
        }
    }
}

void unlock_owned(std::atomic<uint32_t> &owner) {
    owner.store(0, std::memory_order_release);
}

}  // namespace trl
