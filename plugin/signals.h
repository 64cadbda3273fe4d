// SPDX-License-Identifier: LGPL-2.1-or-later
// Signalling through pidfds, so that a pid recycled after a scan is never hit.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <string_view>

#include "util.h"

namespace sessreap {

// pidfd_open(2) (Linux 5.3). Returns the fd (always close-on-exec) or -errno.
int pidfd_open(pid_t pid);

// pidfd_send_signal(2) (Linux 5.1). Returns 0 or -errno; -ESRCH once the
// process has been reaped.
int pidfd_signal(int pidfd, int sig);

// True when the process behind pidfd has exited (the pidfd polls readable).
bool pidfd_exited(int pidfd);

// "SIGTERM", "TERM", "SIGRTMIN+2", "RTMAX-1" -> the signal number on this
// system. Numbers are not names: they differ between architectures.
std::optional<int> signal_from_name(std::string_view name);

// The canonical name, "SIGTERM" or "SIGRTMIN+2"; "" for a number that is no signal.
std::string signal_to_name(int sig);

// For logs: the canonical name, or "SIG42" for a number with no name.
std::string signal_name(int sig);

} // namespace sessreap
