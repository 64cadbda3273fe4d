// SPDX-License-Identifier: LGPL-2.1-or-later
// Test main that runs every test inside a private PID and mount namespace.
//
// Tests here kill processes. When root, the binary unshares a PID namespace
// with its own /proc (and its own /run): PID 1 there is a small init that reaps orphans, the
// tests run as PID 2, and when they end the kernel kills whatever is left in
// the namespace, so a bug cannot reach the rest of the machine.
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>

#include <gtest/gtest.h>

namespace {

std::string skip_reason = "tests that signal processes need root for a private PID namespace";

int exit_code(int status) {
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// PID 1 of the namespace: reap every orphan until the test runner exits.
[[noreturn]] void run_init(pid_t runner) {
    for (;;) {
        int status = 0;
        pid_t p = waitpid(-1, &status, 0);
        if (p == runner) _exit(exit_code(status));
        if (p < 0 && errno == ECHILD) _exit(1);
    }
}

enum class Entered { runner, parent_done, failed };

// In the parent, waits for the namespace's init and stores its exit code; in
// the namespace, returns as the test runner; on failure the caller runs the
// tests outside, where the killing ones skip.
Entered enter_namespace(int* exit_status) {
    if (unshare(CLONE_NEWPID | CLONE_NEWNS) < 0) {
        skip_reason = std::string("unshare(CLONE_NEWPID|CLONE_NEWNS) failed: ") + strerror(errno);
        return Entered::failed;
    }
    pid_t init = fork();
    if (init < 0) {
        skip_reason = std::string("fork failed: ") + strerror(errno);
        return Entered::failed;
    }
    if (init > 0) {
        int status = 0;
        while (waitpid(init, &status, 0) < 0 && errno == EINTR) {
        }
        *exit_status = exit_code(status);
        return Entered::parent_done;
    }

    prctl(PR_SET_PDEATHSIG, SIGKILL);
    // A private /proc for the new PID namespace, and a private /run so that
    // launch records and other runtime state of the tests stay in here.
    if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) < 0 ||
        mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) < 0 ||
        mount("tmpfs", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=755") < 0)
        _exit(125);

    pid_t runner = fork();
    if (runner < 0) _exit(125);
    if (runner > 0) run_init(runner);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    return Entered::runner;
}

} // namespace

namespace testing_support {
bool in_namespace = false;
bool in_private_namespace() {
    return in_namespace;
}
const char* namespace_skip_reason() {
    return skip_reason.c_str();
}
} // namespace testing_support

int main(int argc, char** argv) {
    bool listing = false;
    for (int i = 1; i < argc; ++i) listing |= strstr(argv[i], "--gtest_list_tests") != nullptr;

    // A test that re-runs this binary inside namespaces it made itself (the
    // systemd harness's manager) says so; entering another one there would
    // hide that manager's /run.
    const char* inside = getenv("SESSREAP_TEST_IN_PRIVATE_NAMESPACE");
    if (inside && std::string(inside) == "1") {
        testing_support::in_namespace = true;
    } else if (!listing && geteuid() == 0) {
        int status = 0;
        Entered e = enter_namespace(&status);
        // The parent only waited. It must _exit: its children's PID namespace
        // is dead now, so atexit work that clones (LeakSanitizer's tracer
        // thread) would fail with ENOMEM.
        if (e == Entered::parent_done) _exit(status);
        testing_support::in_namespace = e == Entered::runner;
    }
    testing::InitGoogleTest(&argc, argv);
    return RUN_ALL_TESTS();
}
