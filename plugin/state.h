// SPDX-License-Identifier: LGPL-2.1-or-later
// Launch records on disk, so that a host that died can be cleaned up after.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_set>
#include <vector>

#include "registry.h"
#include "util.h"

namespace sessreap {

// Who wrote a journal: a host is the same process only if pid, start time and
// boot all match; its pids mean something only in its PID namespace.
struct HostIdentity {
    pid_t pid = 0;
    uint64_t starttime = 0;
    std::string exe;
    std::string boot_id;
    std::string pid_namespace;

    static Result<HostIdentity> current(int proc_fd);
};

// The live records of one journal whose host is gone, claimed by a reaper.
struct StaleJournal {
    std::string path; // renamed to *.reaping.PID: no other reaper takes it
    HostIdentity host;
    std::vector<LaunchRecord> records; // no pidfds: read back from disk
};

// One append-only journal per handle: a launch appends its record, a
// teardown or forget appends "done". One write(2) per line, O_APPEND, so a
// host that dies leaves at worst a torn last line, which readers skip. An
// append costs a couple of microseconds where a file per record (create and
// rename) costs hundreds on a disk-backed /run. The journal is emptied when
// the handle tracks nothing and compacted when it grows.
class StateStore {
public:
    StateStore(std::string dir, HostIdentity self, uint64_t handle_id);
    ~StateStore();

    // Creates the directory (0700) when missing and checks it is writable.
    Status prepare();

    Status save(const LaunchRecord& rec);
    // Marks pid done. A failure (a full disk) means a reaper could later take
    // the child as left behind; the caller logs it.
    Status remove(pid_t pid);

    const HostIdentity& self() const { return self_; }

    // Claims the journals of hosts that are gone. Journals of another boot
    // are deleted and skipped; those of another PID namespace are skipped
    // (their pids mean other processes here). With same_exe, only journals
    // of hosts that ran our executable. Reasons for skips go to *skipped.
    std::vector<StaleJournal> claim_stale(int proc_fd, bool same_exe,
                                          std::vector<std::string>* skipped);
    // Deletes a claimed journal once its records were torn down.
    static void release(const StaleJournal& journal);
    // Puts a claimed journal back under its own name, for a later reaper.
    static void unclaim(const StaleJournal& journal);

private:
    Status open_journal();
    Status append(const std::string& line);
    void compact();

    std::string dir_;
    std::string path_;
    HostIdentity self_;
    std::mutex mutex_;
    UniqueFd fd_;
    std::unordered_set<pid_t> live_; // launched and not done
    size_t written_ = 0;
    size_t compact_at_ = 0; // after a failed compaction: not before this size
};

} // namespace sessreap
