// SPDX-License-Identifier: LGPL-2.1-or-later
// Building a launch record: what a child looked like when the host spawned it.
#include "launch.h"

#include <sys/resource.h>
#include <unistd.h>

#include <atomic>

#include "procfs.h"
#include "signals.h"

namespace sessreap {
namespace {

// A pidfd per tracked child lets a host with thousands of children run out
// of descriptors, both for its own files and for the few that teardown
// opens. Past three quarters of RLIMIT_NOFILE a record keeps none: its start
// time then tells a recycled pid apart instead.
bool leaves_headroom(int fd) {
    rlimit rl{};
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY) return true;
    return rlim_t(fd) < rl.rlim_cur - rl.rlim_cur / 4;
}

std::atomic<bool> warned_headroom{false};

} // namespace

Result<std::unique_ptr<LaunchRecord>>
record_launch(int proc_fd, const Logger& log, const HostIds& host, pid_t pid, std::string name) {
    if (pid <= 1 || pid == host.pid)
        return make_error(EINVAL, "Refusing to launch pid " + std::to_string(pid) +
                                      ": it is 0, 1, negative or the host's own pid");

    auto rec = std::make_unique<LaunchRecord>();
    rec->pid = pid;
    rec->name = std::move(name);

    // Pin the process first, then read its ids, then check that the pinned
    // process is still alive: the ids read are then known to be of that one.
    int fd = pidfd_open(pid);
    if (fd == -ESRCH) return make_error(ESRCH, "No process with pid " + std::to_string(pid));
    if (fd >= 0 && !leaves_headroom(fd)) {
        if (!warned_headroom.exchange(true))
            log.log(LOG_NOTICE, "Keeping no pidfd for pid " + std::to_string(pid) + ": fd " +
                                    std::to_string(fd) +
                                    " is past three quarters of "
                                    "RLIMIT_NOFILE; its start time guards it instead (logged "
                                    "once)");
        close(fd);
        fd = -EMFILE;
    } else if (fd < 0) {
        log.log(LOG_WARNING, "Failed to open a pidfd for pid " + std::to_string(pid) + ": " +
                                 errno_string(-fd) +
                                 ", recording it without one (the start time still guards "
                                 "against a recycled session id)");
    }
    if (fd >= 0) rec->pidfd.reset(fd);

    // The start time (field 22) is recorded even with a pidfd: a record read
    // back after the host died has no pidfd, and only the start time then
    // tells the child from a process that got its pid later.
    StatFields st;
    int r = read_stat(proc_fd, pid, &st);
    if (r == 0 && rec->pidfd.valid() && pidfd_signal(rec->pidfd.get(), 0) == -ESRCH) r = -ESRCH;
    if (r == -ESRCH) return make_error(ESRCH, "No process with pid " + std::to_string(pid));
    if (r < 0)
        return make_error(-r, "Failed to read the session and group of pid " + std::to_string(pid) +
                                  ": " + errno_string(-r));

    rec->session = st.session;
    rec->pgrp = st.pgrp;
    rec->starttime = st.starttime;
    rec->sweep = st.session == pid;
    if (log.enabled(LOG_DEBUG))
        log.log(LOG_DEBUG,
                "Recorded pid " + std::to_string(pid) + ": session " + std::to_string(st.session) +
                    ", process group " + std::to_string(st.pgrp) + ", start time " +
                    std::to_string(st.starttime) + (rec->pidfd.valid() ? ", pidfd" : ", no pidfd"));
    rec->group = st.pgrp == pid;
    if (!rec->sweep)
        log.log(LOG_WARNING, "Child " + std::to_string(pid) +
                                 " is not a session leader (its session is " +
                                 std::to_string(st.session) +
                                 (st.session == host.session ? ", the host's" : "") +
                                 "): the sweep is off for it; spawn it with setsid()");
    if (!rec->group && st.pgrp != host.pgrp)
        log.log(LOG_WARNING, "Child " + std::to_string(pid) + " does not lead its process group " +
                                 std::to_string(st.pgrp) + ": the group layer is off for it");
    return rec;
}

} // namespace sessreap
