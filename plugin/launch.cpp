// SPDX-License-Identifier: LGPL-2.1-or-later
// Building a launch record: what a child looked like when the host spawned it.
#include "launch.h"

#include "procfs.h"
#include "signals.h"

namespace sessreap {

Result<std::unique_ptr<LaunchRecord>> record_launch(int proc_fd, const Logger& log,
                                                    const HostIds& host, pid_t pid,
                                                    std::string name) {
    if (pid <= 1 || pid == host.pid)
        return make_error(EINVAL, "Refusing to launch pid " + std::to_string(pid) +
                                      ": it is 0, 1, negative or the host's own pid");

    auto rec = std::make_unique<LaunchRecord>();
    rec->pid = pid;
    rec->name = std::move(name);

    // Pin the process first, then read its stat, then check that the pinned
    // process is still alive: the stat read is then known to be of that one.
    int fd = pidfd_open(pid);
    if (fd == -ESRCH) return make_error(ESRCH, "No process with pid " + std::to_string(pid));
    if (fd < 0)
        log.log(LOG_WARNING, "Failed to open a pidfd for pid " + std::to_string(pid) + ": " +
                                 errno_string(-fd) +
                                 ", recording it without one (the start time still guards "
                                 "against a recycled session id)");
    else
        rec->pidfd.reset(fd);

    StatFields st;
    int r = read_stat(proc_fd, pid, &st);
    if (r == -ESRCH || (rec->pidfd.valid() && pidfd_signal(rec->pidfd.get(), 0) == -ESRCH))
        return make_error(ESRCH, "No process with pid " + std::to_string(pid));
    if (r < 0)
        return make_error(-r, "Failed to read /proc/" + std::to_string(pid) +
                                  "/stat: " + errno_string(-r));

    rec->session = st.session;
    rec->pgrp = st.pgrp;
    rec->starttime = st.starttime;
    rec->sweep = st.session == pid;
    rec->group = st.pgrp == pid;
    if (!rec->sweep)
        log.log(LOG_WARNING,
                "Child " + std::to_string(pid) + " is not a session leader (its session is " +
                    std::to_string(st.session) +
                    (st.session == host.session ? ", the host's" : "") +
                    "): the sweep is off for it; spawn it with setsid()");
    if (!rec->group && st.pgrp != host.pgrp)
        log.log(LOG_WARNING, "Child " + std::to_string(pid) +
                                 " does not lead its process group " +
                                 std::to_string(st.pgrp) + ": the group layer is off for it");
    return rec;
}

} // namespace sessreap
