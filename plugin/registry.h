// SPDX-License-Identifier: LGPL-2.1-or-later
// The launch registry: what was recorded of each child, keyed by pid.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "cgroup.h"
#include "util.h"

namespace sessreap {

struct LaunchRecord {
    pid_t pid = 0;
    pid_t session = 0;
    pid_t pgrp = 0;
    uint64_t starttime = 0; // of the child; read only when no pidfd pins it
    UniqueFd pidfd;         // invalid when none could be opened
    bool sweep = true;      // false when the child does not lead its own session
    bool group = true;      // false when the child does not lead its own group
    std::string name;       // host-provided label, may be empty
    std::string unit;       // systemd unit created or adopted, may be empty
    CgroupRecord cgroup;    // cgroup created for it; empty path when none
};

class Registry {
public:
    // Returns false when pid is already recorded.
    bool insert(std::unique_ptr<LaunchRecord> record);
    // Removes and returns the record, or nullptr when pid is not recorded.
    std::unique_ptr<LaunchRecord> take(pid_t pid);
    // Removes and returns every record.
    std::unordered_map<pid_t, std::unique_ptr<LaunchRecord>> take_all();
    size_t size() const;

private:
    mutable std::mutex mutex_;
    std::unordered_map<pid_t, std::unique_ptr<LaunchRecord>> records_;
};

} // namespace sessreap
