// SPDX-License-Identifier: LGPL-2.1-or-later
// The session sweep's scan: every live process of one session (or group).
#pragma once

#include <sys/types.h>

#include <array>
#include <memory>
#include <vector>

#include "procfs.h"

namespace sessreap {

struct Member {
    pid_t pid;
    pid_t pgrp;
    char state;
    std::array<char, 16> comm;
};

enum class MatchBy { session, group };

class SessionScanner {
public:
    explicit SessionScanner(int proc_fd)
        : proc_fd_(proc_fd), walker_(std::make_unique<ProcWalker>(proc_fd)) {}

    // Replaces *out with the live processes whose session (or group) id is
    // id, never listing pid 1 or `self`. getsid()/getpgid() is one exact
    // syscall, so stat is read only for processes that already match.
    // Returns 0 or a negative errno from walking /proc; sets *read_error to
    // the first negative errno of a matching entry that could not be read
    // (left alone otherwise), since the list then misses a member.
    int scan(MatchBy by, pid_t id, pid_t self, std::vector<Member>* out, int* read_error);

private:
    int proc_fd_;
    std::unique_ptr<ProcWalker> walker_; // owns a 64 KiB getdents buffer
};

} // namespace sessreap
