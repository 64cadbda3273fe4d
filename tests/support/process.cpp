// SPDX-License-Identifier: LGPL-2.1-or-later
// Test helpers: real process trees, held children, liveness checks, the module.
#include "process.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <dirent.h>

#include <fstream>
#include <random>
#include <sstream>

namespace testing_support {
namespace {

int64_t now_ms() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return int64_t(ts.tv_sec) * 1000 + ts.tv_nsec / 1'000'000;
}

// Reads "/proc/PID/stat" and returns the fields after the last ')'.
std::string stat_tail(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
    std::stringstream ss;
    ss << in.rdbuf();
    std::string s = ss.str();
    size_t close = s.rfind(')');
    return close == std::string::npos ? "" : s.substr(close + 2);
}

[[noreturn]] void sleep_forever() {
    for (;;) pause();
}

} // namespace

PidChannel::PidChannel() {
    if (pipe2(fds_, O_CLOEXEC) < 0) fds_[0] = fds_[1] = -1;
}

PidChannel::~PidChannel() {
    if (fds_[0] >= 0) close(fds_[0]);
    close_writer();
}

void PidChannel::report(pid_t pid) const {
    ssize_t ignored = write(fds_[1], &pid, sizeof pid);
    (void)ignored;
}

void PidChannel::close_writer() {
    if (fds_[1] >= 0) close(fds_[1]);
    fds_[1] = -1;
}

std::vector<pid_t> PidChannel::collect(size_t n, int timeout_ms) {
    std::vector<pid_t> pids;
    int64_t deadline = now_ms() + timeout_ms;
    while (pids.size() < n) {
        pollfd p{fds_[0], POLLIN, 0};
        int left = int(deadline - now_ms());
        if (left <= 0 || poll(&p, 1, left) <= 0) break;
        pid_t pid = 0;
        if (read(fds_[0], &pid, sizeof pid) != sizeof pid) break;
        pids.push_back(pid);
    }
    return pids;
}

HeldChild::HeldChild(std::function<void()> body, bool new_session) {
    int ready[2], gate[2];
    if (pipe2(ready, O_CLOEXEC) < 0 || pipe2(gate, O_CLOEXEC) < 0) return;

    pid_ = fork();
    if (pid_ == 0) {
        close(ready[0]);
        close(gate[1]);
        if (new_session) setsid();
        ssize_t w = write(ready[1], "r", 1);
        (void)w;
        char go = 0;
        if (read(gate[0], &go, 1) != 1) _exit(0);
        body();
        _exit(0);
    }
    close(ready[1]);
    close(gate[0]);
    char r = 0;
    ssize_t got = read(ready[0], &r, 1);
    (void)got;
    close(ready[0]);
    gate_ = gate[1];
    pidfd_ = int(syscall(SYS_pidfd_open, pid_, 0));
}

HeldChild::~HeldChild() {
    if (gate_ >= 0) close(gate_);
    if (pid_ > 0 && !reaped_) {
        if (pidfd_ >= 0) syscall(SYS_pidfd_send_signal, pidfd_, SIGKILL, nullptr, 0);
        waitpid(pid_, nullptr, 0);
    }
    if (pidfd_ >= 0) close(pidfd_);
}

void HeldChild::release() {
    ssize_t w = write(gate_, "g", 1);
    (void)w;
    close(gate_);
    gate_ = -1;
}

int HeldChild::reap(int timeout_ms) {
    pollfd p{pidfd_, POLLIN, 0};
    if (poll(&p, 1, timeout_ms) <= 0) return -1;
    int status = 0;
    if (waitpid(pid_, &status, 0) != pid_) return -1;
    reaped_ = true;
    return status;
}

pid_t fork_sleeper(const PidChannel& ch, bool own_group, const char* comm, bool ignore_term) {
    pid_t pid = fork();
    if (pid != 0) return pid;

    if (own_group) setpgid(0, 0);
    if (comm) prctl(PR_SET_NAME, comm);
    if (ignore_term) signal(SIGTERM, SIG_IGN);
    ch.report(getpid());
    sleep_forever();
}

bool alive(pid_t pid) {
    std::string tail = stat_tail(pid);
    return !tail.empty() && tail[0] != 'Z' && tail[0] != 'X';
}

bool wait_gone(pid_t pid, int timeout_ms) {
    int64_t deadline = now_ms() + timeout_ms;
    while (alive(pid)) {
        if (now_ms() > deadline) return false;
        usleep(5000);
    }
    return true;
}

std::vector<pid_t> live_session_members(pid_t sid) {
    std::vector<pid_t> out;
    DIR* d = opendir("/proc");
    if (!d) return out;
    while (dirent* e = readdir(d)) {
        pid_t pid = atoi(e->d_name);
        if (pid <= 0) continue;
        std::istringstream fields(stat_tail(pid));
        std::string state;
        long ppid = 0, pgrp = 0, session = 0;
        if (fields >> state >> ppid >> pgrp >> session && session == sid && state != "Z" &&
            state != "X")
            out.push_back(pid);
    }
    closedir(d);
    return out;
}

std::string comm_of(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/comm");
    std::string comm;
    std::getline(in, comm);
    return comm;
}

std::string unique_name(const std::string& prefix) {
    std::random_device rd;
    char suffix[32];
    snprintf(suffix, sizeof suffix, "%08x%08x", rd(), rd());
    return prefix + "-" + suffix;
}

void kill_own(pid_t pid) {
    int fd = int(syscall(SYS_pidfd_open, pid, 0));
    if (fd < 0) return;
    syscall(SYS_pidfd_send_signal, fd, SIGKILL, nullptr, 0);
    pollfd p{fd, POLLIN, 0};
    poll(&p, 1, 5000);
    close(fd);
    waitpid(pid, nullptr, WNOHANG);
}

template <typename F> static void resolve(void* dl, const char* name, F* out) {
    *out = reinterpret_cast<F>(dlsym(dl, name));
}

Module::Module() {
    dl = dlopen(SESSREAP_MODULE_PATH, RTLD_NOW | RTLD_LOCAL);
    if (!dl) ADD_FAILURE() << "dlopen " << SESSREAP_MODULE_PATH << ": " << dlerror();
    if (!dl) return;
    resolve(dl, "sessreap_abi_version", &abi_version);
    resolve(dl, "sessreap_last_error", &last_error);
    resolve(dl, "sessreap_open", &open);
    resolve(dl, "sessreap_close", &close);
    resolve(dl, "sessreap_launch", &launch);
    resolve(dl, "sessreap_forget", &forget);
    resolve(dl, "sessreap_teardown", &teardown);
    resolve(dl, "sessreap_reap_stale", &reap_stale);
    resolve(dl, "sessreap_config_show", &config_show);
    resolve(dl, "sessreap_config_check", &config_check);
}

Module::~Module() {
    if (dl) dlclose(dl);
}

static void collect_log(void* userdata, int, const char* message) {
    auto* th = static_cast<TestHandle*>(userdata);
    std::lock_guard lock(th->log_mutex);
    th->log.push_back(message);
}

TestHandle::TestHandle(Module& module, const std::string& config_json) : m(module) {
    sessreap_options o{};
    o.size = sizeof o;
    o.flags = SESSREAP_OPEN_NO_SYSTEM_CONFIG;
    o.config_json = config_json.c_str();
    o.log_fn = collect_log;
    o.log_userdata = this;
    int r = m.open(&o, &h);
    if (r < 0) ADD_FAILURE() << "sessreap_open: " << m.last_error();
}

TestHandle::~TestHandle() {
    if (h) m.close(h);
}

bool TestHandle::logged(const std::string& needle) {
    std::lock_guard lock(log_mutex);
    for (const std::string& line : log)
        if (line.find(needle) != std::string::npos) return true;
    return false;
}

CommandResult run_command(const std::vector<std::string>& argv, int timeout_ms) {
    CommandResult res;
    int out[2], err[2];
    if (pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0) return res;

    pid_t pid = fork();
    if (pid == 0) {
        dup2(out[1], 1);
        dup2(err[1], 2);
        std::vector<char*> args;
        for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
        args.push_back(nullptr);
        execvp(args[0], args.data());
        _exit(127);
    }
    close(out[1]);
    close(err[1]);

    int64_t deadline = now_ms() + timeout_ms;
    pollfd fds[2] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}};
    int open_fds = 2;
    while (open_fds > 0 && now_ms() < deadline) {
        if (poll(fds, 2, int(deadline - now_ms())) <= 0) break;
        for (int i = 0; i < 2; ++i) {
            if (!fds[i].revents) continue;
            char buf[4096];
            ssize_t n = read(fds[i].fd, buf, sizeof buf);
            if (n <= 0) {
                fds[i].fd = -1;
                --open_fds;
                continue;
            }
            (i == 0 ? res.out : res.err).append(buf, size_t(n));
        }
    }
    close(out[0]);
    close(err[0]);
    if (open_fds > 0) kill(pid, SIGKILL); // our own child, by pid
    int status = 0;
    waitpid(pid, &status, 0);
    res.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return res;
}

} // namespace testing_support
