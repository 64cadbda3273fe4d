// SPDX-License-Identifier: LGPL-2.1-or-later
// The process populations the benchmark builds, measures against and removes.
#include "population.h"

#include <fcntl.h>
#include <linux/magic.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "util.h"

namespace bench {
namespace {

int pidfd_open(pid_t pid) {
    return int(syscall(SYS_pidfd_open, pid, 0));
}

int pidfd_kill(int pidfd, int sig) {
    return int(syscall(SYS_pidfd_send_signal, pidfd, sig, nullptr, 0));
}

void write_all(int fd, const void* data, size_t size) {
    const char* p = static_cast<const char*>(data);
    while (size > 0) {
        ssize_t n = write(fd, p, size);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return;
        p += n;
        size -= size_t(n);
    }
}

bool write_file(const std::string& path, const char* text) {
    int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0) return false;
    bool ok = write(fd, text, strlen(text)) == ssize_t(strlen(text));
    close(fd);
    return ok;
}

[[noreturn]] void idle() {
    for (;;) pause();
}

// One child of the leader: take its place in the population, report, idle.
[[noreturn]] void run_child(const PopulationSpec& spec, pid_t leader, int index, int pid_pipe) {
    // Checking the parent after PR_SET_PDEATHSIG closes the race with a
    // leader that died before the call.
    if (spec.die_with_leader) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != leader) _exit(0);
    }
    if (spec.half_own_groups && index % 2) setpgid(0, 0);
    if (spec.child_sessions) {
        setsid();
        pid_t self = getpid();
        write_all(pid_pipe, &self, sizeof self);
    }
    close(pid_pipe);
    idle();
}

[[noreturn]] void run_leader(const PopulationSpec& spec, int ready, int gate, int pid_pipe) {
    setsid();
    if (!spec.cgroup.empty() && !write_file(spec.cgroup + "/cgroup.procs", "0")) _exit(1);
    write_all(ready, "r", 1);
    close(ready);

    char go = 0;
    if (spec.hold && read(gate, &go, 1) != 1) _exit(0);
    close(gate);

    pid_t self = getpid();
    for (int i = 1; i < spec.count; ++i) {
        pid_t pid = fork();
        if (pid == 0) run_child(spec, self, i, pid_pipe);
        if (pid < 0) break;
        // Both sides set the group, so it is in place before the pid is
        // reported whichever runs first.
        if (spec.half_own_groups && i % 2) setpgid(pid, pid);
        if (!spec.child_sessions) write_all(pid_pipe, &pid, sizeof pid);
    }
    close(pid_pipe);
    idle();
}

} // namespace

Population::Population(const PopulationSpec& spec) : spec_(spec) {
    int ready[2], gate[2], pids[2];
    if (pipe2(ready, O_CLOEXEC) < 0 || pipe2(gate, O_CLOEXEC) < 0 || pipe2(pids, O_CLOEXEC) < 0)
        return;

    leader_ = fork();
    if (leader_ == 0) {
        close(ready[0]);
        close(gate[1]);
        close(pids[0]);
        run_leader(spec_, ready[1], gate[0], pids[1]);
    }
    close(ready[1]);
    close(gate[0]);
    close(pids[1]);
    if (leader_ < 0) return;
    leader_pidfd_ = pidfd_open(leader_);
    pids_.push_back(leader_);

    char r = 0;
    ssize_t got = read(ready[0], &r, 1);
    close(ready[0]);
    if (got != 1) fprintf(stderr, "sessreap-bench: population leader failed to start\n");
    gate_ = gate[1];
    pid_pipe_ = pids[0];
    if (!spec_.hold) release();
}

Population::~Population() {
    kill_all();
    if (gate_ >= 0) close(gate_);
    if (pid_pipe_ >= 0) close(pid_pipe_);
    for (int fd : pidfds_) close(fd);
    if (leader_pidfd_ >= 0) close(leader_pidfd_);
}

void Population::release() {
    if (gate_ < 0) return;
    if (spec_.hold) write_all(gate_, "g", 1);
    close(gate_);
    gate_ = -1;
    collect();
}

void Population::collect() {
    // Reads pids until every writer has closed the pipe.
    pid_t buf[1024];
    size_t carry = 0;
    for (;;) {
        ssize_t n = read(pid_pipe_, reinterpret_cast<char*>(buf) + carry, sizeof buf - carry);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        size_t bytes = carry + size_t(n);
        size_t whole = bytes / sizeof(pid_t);
        pids_.insert(pids_.end(), buf, buf + whole);
        carry = bytes % sizeof(pid_t);
        memmove(buf, reinterpret_cast<char*>(buf) + whole * sizeof(pid_t), carry);
    }
    close(pid_pipe_);
    pid_pipe_ = -1;
}

void Population::pin() {
    if (!pidfds_.empty()) return;
    pidfds_.reserve(pids_.size());
    for (pid_t pid : pids_) {
        int fd = pidfd_open(pid);
        if (fd >= 0) pidfds_.push_back(fd);
    }
}

bool Population::wait_all_exited(int timeout_ms) const {
    // One fd at a time: the whole set must exit, so waiting on each in turn
    // costs one poll per process instead of rescanning the set.
    int64_t deadline = sessreap::now_ns() + int64_t(timeout_ms) * 1'000'000;
    for (int fd : pidfds_) {
        for (;;) {
            pollfd p{fd, POLLIN, 0};
            int left = int((deadline - sessreap::now_ns()) / 1'000'000);
            int n = poll(&p, 1, left > 0 ? left : 0);
            if (n > 0) break;
            if (n == 0) return false;
            if (errno != EINTR) return false;
        }
    }
    return true;
}

void Population::kill_all() {
    if (leader_ <= 0) return;
    if (pidfds_.empty() && !spec_.die_with_leader) pin();
    for (int fd : pidfds_) pidfd_kill(fd, SIGKILL);
    if (leader_pidfd_ >= 0) pidfd_kill(leader_pidfd_, SIGKILL);
    while (waitpid(leader_, nullptr, 0) < 0 && errno == EINTR) {
    }

    // The namespace's init reaps the children; wait until it has.
    if (!pidfds_.empty()) {
        wait_all_exited(30'000);
    }
    int64_t deadline = sessreap::now_ns() + 30'000'000'000;
    for (size_t i = 1; i < pids_.size() && sessreap::now_ns() < deadline;) {
        if (kill(pids_[i], 0) < 0 && errno == ESRCH)
            ++i;
        else
            usleep(1000);
    }
    leader_ = -1;
}

Cgroup::Cgroup() {
    const char* roots[] = {"/sys/fs/cgroup/unified", "/sys/fs/cgroup"};
    for (const char* root : roots) {
        struct statfs fs;
        if (statfs(root, &fs) < 0 || fs.f_type != CGROUP2_SUPER_MAGIC) continue;

        std::string dir = std::string(root) + "/sessreap-bench-" + std::to_string(getpid()) + "-" +
                          std::to_string(sessreap::now_ns());
        if (mkdir(dir.c_str(), 0755) < 0) {
            why_not_ = "mkdir " + dir + ": " + strerror(errno);
            return;
        }
        if (access((dir + "/cgroup.kill").c_str(), W_OK) < 0) {
            why_not_ = "no cgroup.kill (Linux < 5.14)";
            rmdir(dir.c_str());
            return;
        }
        path_ = dir;
        return;
    }
    why_not_ = "no cgroup2 mount";
}

Cgroup::~Cgroup() {
    if (path_.empty()) return;
    // Everything in it is ours; an empty cgroup can be removed once its
    // last member has been reaped.
    for (int i = 0; i < 5000; ++i) {
        if (rmdir(path_.c_str()) == 0 || errno == ENOENT) return;
        if (errno == EBUSY && i == 0) kill();
        usleep(1000);
    }
    fprintf(stderr, "sessreap-bench: could not remove %s: %s\n", path_.c_str(), strerror(errno));
}

bool Cgroup::kill() const {
    return write_file(path_ + "/cgroup.kill", "1");
}

} // namespace bench
