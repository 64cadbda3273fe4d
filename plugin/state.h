// SPDX-License-Identifier: LGPL-2.1-or-later
// Launch records on disk, so that a host that died can be cleaned up after.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "registry.h"
#include "util.h"

namespace sessreap {

// Who wrote a record: a host is the same process only if pid, start time and
// boot all match.
struct HostIdentity {
    pid_t pid = 0;
    uint64_t starttime = 0;
    std::string exe;
    std::string boot_id;
    std::string pid_namespace;

    static Result<HostIdentity> current(int proc_fd);
};

// A launch record as persisted: the child's ids, no descriptors.
struct StoredRecord {
    std::string path;
    HostIdentity host;
    LaunchRecord launch;
};

class StateStore {
public:
    StateStore(std::string dir, HostIdentity self) : dir_(std::move(dir)), self_(std::move(self)) {}

    // Creates the directory (0700) when missing and checks it is writable.
    Status prepare();
    const std::string& dir() const { return dir_; }
    const HostIdentity& self() const { return self_; }

    // Writes the record atomically (a temporary file renamed into place).
    Status save(const LaunchRecord& rec);
    // Removes the record of pid written by this host; a missing one is fine.
    void remove(pid_t pid);

    // Claims the records of hosts that are gone: each is renamed so that only
    // one reaper takes it. Records of another boot are deleted and skipped;
    // records of another PID namespace are skipped (their pids mean other
    // processes here).
    // With same_exe, only records written by a host running our executable.
    // Errors of single files are collected in *skipped.
    std::vector<StoredRecord> claim_stale(int proc_fd, bool same_exe,
                                          std::vector<std::string>* skipped);
    // Deletes a claimed record once it was torn down.
    static void release(const StoredRecord& rec);

private:
    std::string file_for(pid_t host_pid, uint64_t host_start, pid_t pid) const;

    std::string dir_;
    HostIdentity self_;
};

} // namespace sessreap
