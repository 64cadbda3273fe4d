// SPDX-License-Identifier: LGPL-2.1-or-later
// Building a launch record: what a child looked like when the host spawned it.
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>

#include "log.h"
#include "registry.h"
#include "teardown.h"

namespace sessreap {

// Reads the child's ids and start time and pins it with a pidfd. Errors:
// EINVAL for pid <= 1 or the host's own pid, ESRCH when it does not exist.
Result<std::unique_ptr<LaunchRecord>>
record_launch(int proc_fd, const Logger& log, const HostIds& host, pid_t pid, std::string name);

} // namespace sessreap
