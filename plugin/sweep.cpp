// SPDX-License-Identifier: LGPL-2.1-or-later
// The session sweep's scan: every live process of one session (or group).
#include "sweep.h"

#include <unistd.h>

namespace sessreap {

int SessionScanner::scan(MatchBy by, pid_t id, pid_t self, std::vector<Member>* out,
                         int* read_error) {
    out->clear();
    const bool by_session = by == MatchBy::session;

    return walker_->for_each_pid([&](pid_t pid) {
        if (pid <= 1 || pid == self) return;
        if ((by_session ? getsid(pid) : getpgid(pid)) != id) return;

        StatFields st;
        int r = read_stat(proc_fd_, pid, &st);
        if (r == -ESRCH) return;
        if (r < 0) {
            if (*read_error == 0) *read_error = r;
            return;
        }
        // The stat read is the authority: the process may have changed
        // session or exited between the two reads.
        if ((by_session ? st.session : st.pgrp) != id || state_is_gone(st.state)) return;
        out->push_back(Member{pid, st.pgrp, st.state, st.comm});
    });
}

} // namespace sessreap
