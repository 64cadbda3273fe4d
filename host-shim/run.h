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
    std::string name;                     // label for the launch record (scope name)
    std::string config_json;              // inline configuration, may be empty
    std::vector<std::string> config_dirs; // drop-in directories applied after the system ones
    std::string config_root;              // system drop-in directories resolve under it
    bool no_system_config = false;        // skip the system drop-in directories
    std::vector<std::string> argv;
};

// The module's options for the configuration opts names, with json as the inline
// document (NULL for none). The result points into opts, json and *dirs, which must
// outlive it.
sessreap_options module_options(const RunOptions& opts, const char* json,
                                std::vector<const char*>* dirs);

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
