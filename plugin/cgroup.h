// SPDX-License-Identifier: LGPL-2.1-or-later
// The cgroup v2 backstop: each launch gets a cgroup of its own, and teardown kills it whole.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "config.h"
#include "util.h"

namespace sessreap {

// One launch's cgroup. Every operation goes through dir with openat(), so it always acts on
// this cgroup even if the path stops leading there (removed and made again by someone else,
// or a different mount namespace); path is kept for messages.
struct CgroupRecord {
    std::string path; // as created: PARENT/sessreap-PID-N
    UniqueFd dir;     // O_PATH | O_DIRECTORY | O_CLOEXEC
};

// Returns where cgroup2 is mounted: /sys/fs/cgroup on a pure v2 system, else
// /sys/fs/cgroup/unified on a hybrid one, else the first cgroup2 mount in mountinfo.
// Errors: ENOENT no cgroup2 mount; any errno from reading /proc/self/mountinfo.
Result<std::string> find_cgroup2_mount();

// Checks that path is a directory on a cgroup2 file system.
// Errors: EINVAL empty path; ENOENT, EACCES, ENOTDIR, ELOOP from opening it;
// EMEDIUMTYPE it is not on cgroup2 (a cgroup v1 hierarchy or a plain directory).
Status cgroup_check_parent(const std::string& path);

// Creates PARENT/sessreap-PID-N under cfg.parent and moves pid into it. The caller
// guarantees pid has not forked yet, so the whole tree starts inside. On failure nothing is
// left behind.
// Errors: those of cgroup_check_parent; EACCES, EROFS, EAGAIN (cgroup.max.descendants or
// cgroup.max.depth reached) from mkdir; ESRCH pid is gone; EACCES the caller may not move pid
// (cgroup v2 delegation: it needs write access to cgroup.procs of the common ancestor of
// both cgroups); EOPNOTSUPP the parent is in a threaded subtree; EBUSY the cgroup was given
// controllers, which the no internal process rule forbids; EEXIST no free name.
Result<CgroupRecord> cgroup_create_for(const Config::Cgroup& cfg, pid_t pid);

// Returns the processes in the cgroup and its descendants, as pids in the caller's PID
// namespace. A process outside that namespace reads as 0 in cgroup.procs and is left out.
// A cgroup removed meanwhile (ENOENT, ENODEV) reads as empty.
// Errors: EACCES, EIO and the like from reading cgroup.procs.
Result<std::vector<pid_t>> cgroup_list_pids(int dir_fd);

// Called just before a process in the cgroup is signalled, so the caller can log it while
// /proc/PID still shows it. With cgroup.kill it is called for each process listed just
// before the write.
using CgroupSignalHook = std::function<void(pid_t pid, int signal)>;

struct CgroupKillResult {
    unsigned killed = 0;           // processes found in the cgroup when it was killed
    bool used_cgroup_kill = false; // false: frozen, signalled one by one, thawed
};

// Kills every process in the cgroup and removes it, never blocking past deadline_ns
// (on the now_ns() clock). Uses cgroup.kill (Linux 5.14+) when it exists, mode is
// automatic and kill_signal is SIGKILL, since cgroup.kill only sends SIGKILL. Otherwise it
// freezes, signals each pid through a pidfd, thaws and repeats until the cgroup is empty.
// A cgroup already removed counts as killed with no processes. On success rec.dir is closed.
// Errors: ETIMEDOUT processes are left at the deadline (the message lists their pids);
// EBUSY the cgroup is empty but could not be removed by the deadline; EACCES, EPERM and
// the like from writing cgroup.kill, cgroup.freeze or signalling; EINVAL a bad signal.
Result<CgroupKillResult> cgroup_kill_and_remove(CgroupRecord& rec, int kill_signal,
                                                int64_t deadline_ns, CgroupKill mode,
                                                const CgroupSignalHook& on_signal = {});

struct CgroupForgetResult {
    bool removed = false; // the directory is gone, whether removed here or already
    unsigned left = 0;    // processes still inside when it could not be removed
};

// Removes the cgroup when it is empty and leaves it, with its processes, when it is not.
// On removal rec.dir is closed.
// Errors: EACCES, EPERM and the like from rmdir; those of cgroup_list_pids.
Result<CgroupForgetResult> cgroup_forget(CgroupRecord& rec);

} // namespace sessreap
