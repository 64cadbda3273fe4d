// SPDX-License-Identifier: LGPL-2.1-or-later
// `sessreap-host run`: spawn a command as a session leader, tear its session down.
#pragma once

#include <string>
#include <vector>

#include "module.h"

namespace shim {

struct RunOptions {
    int grace_ms = -1; // -1: the configured teardown grace
    bool verbose = false;
    std::string name;        // label for the launch record (scope name)
    std::string config_json; // inline configuration, may be empty
    std::vector<std::string> argv;
};

// Exit statuses of the shim itself, as env(1) and timeout(1) use them.
constexpr int kExitShimError = 125;
constexpr int kExitCannotExec = 126;
constexpr int kExitNotFound = 127;

// Runs the command and returns the status to exit with: the command's own,
// or 128+N when it died of signal N.
int run_command(const Module& module, const RunOptions& opts);

// Tears down what hosts that died left behind; returns the exit status.
int reap_stale(const Module& module, const RunOptions& opts);

// The one-line account of a teardown the shim prints.
std::string summary(const sessreap_report& r, const sessreap_survivor* survivors);

} // namespace shim
