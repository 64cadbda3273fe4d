// SPDX-License-Identifier: LGPL-2.1-or-later
// Test helpers: real process trees, held children, liveness checks, the module.
#pragma once

#include <sys/types.h>

#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "sessreap/sessreap.h"

namespace testing_support {

// True when this test binary runs inside its own PID namespace with its own
// /proc (see ns_main.cpp): only then may a test sweep or kill.
bool in_private_namespace();
const char* namespace_skip_reason();

#define REQUIRE_PRIVATE_NAMESPACE()                                                                \
    do {                                                                                           \
        if (!::testing_support::in_private_namespace())                                            \
            GTEST_SKIP() << ::testing_support::namespace_skip_reason();                            \
    } while (0)

// A pipe the processes of a tree write their pids into.
class PidChannel {
public:
    PidChannel();
    ~PidChannel();
    // In a tree process: report a pid.
    void report(pid_t pid) const;
    // In the test: read n pids, waiting at most timeout_ms in all.
    std::vector<pid_t> collect(size_t n, int timeout_ms = 10'000);
    // Close the writing end in the test process once the tree is forked.
    void close_writer();

private:
    int fds_[2];
};

// Forks a child, waits until it has (optionally) called setsid() and then
// parks it at a gate; body runs once release() is called. The child never
// returns from body: it _exit(0)s after it.
class HeldChild {
public:
    explicit HeldChild(std::function<void()> body, bool new_session = true);
    ~HeldChild();
    HeldChild(const HeldChild&) = delete;
    HeldChild& operator=(const HeldChild&) = delete;

    pid_t pid() const { return pid_; }
    void release();
    // Reaps the child; returns its wait status, or -1 after timeout_ms.
    int reap(int timeout_ms = 10'000);

private:
    pid_t pid_ = -1;
    int pidfd_ = -1;
    int gate_ = -1;
    bool reaped_ = false;
};

// In a tree process: fork a child that optionally leaves the group, names
// itself, reports its pid and then sleeps forever (or runs more).
pid_t fork_sleeper(const PidChannel& ch, bool own_group, const char* comm = nullptr,
                   bool ignore_term = false);

// Alive: /proc/PID exists and the process has not exited (zombies are gone).
bool alive(pid_t pid);
// Waits up to timeout_ms for pid to be gone.
bool wait_gone(pid_t pid, int timeout_ms);
// Live processes whose session id is sid (read by the test itself).
std::vector<pid_t> live_session_members(pid_t sid);
// Command name of pid, or "".
std::string comm_of(pid_t pid);
// A name no other test process uses at the same time. Inside the private
// namespace every test binary is pid 2, so getpid() alone is not enough.
std::string unique_name(const std::string& prefix);

// Kills a process this test created, by pid, and waits for it.
void kill_own(pid_t pid);

// The built module, loaded with dlopen(RTLD_NOW) like a host does.
struct Module {
    Module();
    ~Module();
    void* dl = nullptr;
    decltype(&sessreap_abi_version) abi_version;
    decltype(&sessreap_last_error) last_error;
    decltype(&sessreap_open) open;
    decltype(&sessreap_close) close;
    decltype(&sessreap_launch) launch;
    decltype(&sessreap_forget) forget;
    decltype(&sessreap_teardown) teardown;
    decltype(&sessreap_reap_stale) reap_stale;
    decltype(&sessreap_config_show) config_show;
    decltype(&sessreap_config_check) config_check;
};

// Opens a handle with only the given inline configuration (no system
// drop-ins), logging to a vector the test can inspect.
struct TestHandle {
    explicit TestHandle(Module& m, const std::string& config_json = "{}");
    ~TestHandle();
    Module& m;
    sessreap_handle* h = nullptr;
    std::mutex log_mutex; // the module logs from whichever thread calls it
    std::vector<std::string> log;
    bool logged(const std::string& needle);
};

// Runs a command with fork/exec and returns its exit status and stderr.
struct CommandResult {
    int status = -1;
    std::string out;
    std::string err;
};
CommandResult run_command(const std::vector<std::string>& argv, int timeout_ms = 60'000);

} // namespace testing_support
