// SPDX-License-Identifier: LGPL-2.1-or-later
// The process populations the benchmark builds, measures against and removes.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

namespace bench {

struct PopulationSpec {
    int count = 1;                // processes in all, the leader included
    bool half_own_groups = false; // every second child leads a process group of its own
    bool child_sessions = false;  // every child leads a session of its own
    bool die_with_leader = false; // children get SIGKILL when the leader dies
    bool hold = false;            // the leader waits for release() before forking
    std::string cgroup;           // cgroup2 directory the leader joins first, or ""
};

// A session leader (a child of this process) and the idle children it forks;
// every process pause()s until killed. The destructor kills what is left, by
// pidfd, and waits until every member is gone.
class Population {
public:
    explicit Population(const PopulationSpec& spec);
    ~Population();
    Population(const Population&) = delete;
    Population& operator=(const Population&) = delete;

    pid_t leader() const { return leader_; }
    // Every member, the leader first; complete once the constructor (or,
    // when held, release()) returns.
    const std::vector<pid_t>& pids() const { return pids_; }

    // Lets a held leader fork its children; returns once all exist.
    void release();
    // Opens a pidfd for every member, for wait_all_exited().
    void pin();
    // Polls every pinned pidfd until it is readable (the process exited);
    // false after timeout_ms.
    bool wait_all_exited(int timeout_ms) const;

private:
    void collect();
    void kill_all();

    PopulationSpec spec_;
    pid_t leader_ = -1;
    int leader_pidfd_ = -1;
    int gate_ = -1;
    int pid_pipe_ = -1;
    std::vector<pid_t> pids_;
    std::vector<int> pidfds_;
};

// A cgroup2 directory of our own under the unified mount, removed on
// destruction. valid() is false when cgroup2 or cgroup.kill is missing.
class Cgroup {
public:
    Cgroup();
    ~Cgroup();
    bool valid() const { return !path_.empty(); }
    const std::string& path() const { return path_; }
    // Writes "1" to cgroup.kill: the kernel SIGKILLs every member.
    bool kill() const;
    const std::string& why_not() const { return why_not_; }

private:
    std::string path_;
    std::string why_not_;
};

} // namespace bench
