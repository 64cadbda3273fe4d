// SPDX-License-Identifier: LGPL-2.1-or-later
// Signalling through pidfds, so that a pid recycled after a scan is never hit.
#pragma once

#include <sys/types.h>

#include <string>

#include "util.h"

namespace sessreap {

// pidfd_open(2) (Linux 5.3). Returns the fd (always close-on-exec) or -errno.
int pidfd_open(pid_t pid);

// pidfd_send_signal(2) (Linux 5.1). Returns 0 or -errno; -ESRCH once the
// process has been reaped.
int pidfd_signal(int pidfd, int sig);

// True when the process behind pidfd has exited (the pidfd polls readable).
bool pidfd_exited(int pidfd);

// "SIGTERM" for 15; "SIG42" for a number with no name.
std::string signal_name(int sig);

// Parses "SIGTERM", "TERM" or "15". Returns the number or 0.
int signal_from_name(std::string_view name);

} // namespace sessreap
