// SPDX-License-Identifier: LGPL-2.1-or-later
// sessreap-bench: builds process populations in a private PID namespace and
// prints one table of sessreap against its contenders.
//
// The benchmark kills processes, so it refuses to run anywhere but in a PID
// namespace of its own with its own /proc: PID 1 there reaps orphans, the
// benchmark runs as PID 2, and when it ends the kernel kills whatever is
// left, so nothing outside the namespace can be hit.
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include "figures.h"
#include "util.h"

namespace {

int exit_code(int status) {
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// PID 1 of the namespace: reaps every orphan until the benchmark exits.
[[noreturn]] void run_init(pid_t runner) {
    for (;;) {
        int status = 0;
        pid_t p = waitpid(-1, &status, 0);
        if (p == runner) _exit(exit_code(status));
        if (p < 0 && errno == ECHILD) _exit(1);
    }
}

// Returns in the namespace as the benchmark; the original process exits
// with the benchmark's status. Exits 77 when no namespace can be made.
void enter_namespace() {
    if (geteuid() != 0 || unshare(CLONE_NEWPID | CLONE_NEWNS) < 0) {
        fprintf(stderr, "sessreap-bench: needs root for a private PID namespace (%s)\n",
                geteuid() != 0 ? "not root" : strerror(errno));
        exit(77);
    }
    fflush(stdout);
    pid_t init = fork();
    if (init < 0) exit(1);
    if (init > 0) {
        int status = 0;
        while (waitpid(init, &status, 0) < 0 && errno == EINTR) {
        }
        exit(exit_code(status));
    }

    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) < 0 ||
        mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) < 0)
        _exit(125);
    pid_t runner = fork();
    if (runner < 0) _exit(125);
    if (runner > 0) run_init(runner);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
}

std::string first_line_with(const char* path, const char* key) {
    std::ifstream in(path);
    for (std::string line; std::getline(in, line);) {
        if (line.rfind(key, 0) != 0) continue;
        size_t colon = line.find(':');
        if (colon == std::string::npos) return line;
        size_t value = line.find_first_not_of(" \t", colon + 1);
        return value == std::string::npos ? "" : line.substr(value);
    }
    return "?";
}

void print_machine(const std::string& pid_max) {
    utsname u{};
    uname(&u);
    rlimit rl{};
    getrlimit(RLIMIT_NOFILE, &rl);
    printf("machine: %ld CPUs, %s, Linux %s, MemTotal %s, pid_max %s, RLIMIT_NOFILE %lu\n",
           sysconf(_SC_NPROCESSORS_ONLN), first_line_with("/proc/cpuinfo", "model name").c_str(),
           u.release, first_line_with("/proc/meminfo", "MemTotal").c_str(), pid_max.c_str(),
           (unsigned long)rl.rlim_cur);
}

} // namespace

int main(int argc, char** argv) {
    // Figure 4's inside half: already in the harness manager's namespaces,
    // whose pids the bus calls must carry, so no namespace of our own.
    if (argc == 3 && strcmp(argv[1], "--figure4-inside") == 0) {
        bench::Module module;
        return module.ok() ? bench::scope_figure_inside(module, atoi(argv[2])) : 1;
    }
    // Only the namespace's own value is visible inside it (Linux 6.14+).
    std::string pid_max = first_line_with("/proc/sys/kernel/pid_max", "");
    enter_namespace();
    // A population member that exits early must not take the benchmark down.
    signal(SIGPIPE, SIG_IGN);

    // The populations need a pidfd per process; take what the hard limit allows.
    rlimit rl{};
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);

    bench::Module module;
    if (!module.ok()) return 1;
    print_machine(pid_max);
    // Figures may be picked by number ("sessreap-bench 2 3"); all by default.
    auto wanted = [&](char figure) {
        if (argc < 2) return true;
        for (int i = 1; i < argc; ++i)
            if (argv[i][0] == figure) return true;
        return false;
    };
    int64_t start = sessreap::now_ns();

    bench::Table table;
    if (wanted('1')) {
        bench::sweep_figure(table, module, 1'000, 11);
        bench::sweep_figure(table, module, 10'000, 7);
    }
    if (wanted('2')) bench::teardown_figure(table, module, 1'000, 11);
    if (wanted('3')) bench::launch_figure(table, module, 2'000);
    if (wanted('4')) bench::scope_figure(table, 21);
    if (wanted('5')) bench::memory_figure(table, module, 10'000);

    table.print();
    printf("total %.1f s\n", double(sessreap::now_ns() - start) / 1e9);
    return 0;
}
