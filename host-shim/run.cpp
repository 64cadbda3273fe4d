// SPDX-License-Identifier: LGPL-2.1-or-later
// `sessreap-host run`: spawn a command as a session leader, tear its session down.
#include "run.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

namespace shim {
namespace {

constexpr int kForwarded[] = {SIGINT, SIGTERM, SIGHUP};

void say(const std::string& line) {
    std::string out = "sessreap-host: " + line + "\n";
    ssize_t ignored = write(STDERR_FILENO, out.data(), out.size());
    (void)ignored;
}

void log_to_stderr(void* userdata, int priority, const char* message) {
    bool verbose = *static_cast<bool*>(userdata);
    if (verbose || priority <= LOG_WARNING) say(message);
}

int64_t now_ms() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return int64_t(ts.tv_sec) * 1000 + ts.tv_nsec / 1'000'000;
}

// The child: leads a new session, tells the host so, waits until the host
// has recorded it, then runs the command. Reports an exec failure's errno
// through err_fd.
[[noreturn]] void exec_child(const RunOptions& opts, int ready_fd, int go_fd, int err_fd) {
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    if (setsid() < 0) _exit(kExitShimError);
    if (write(ready_fd, "r", 1) != 1) _exit(kExitShimError);
    close(ready_fd);

    char go = 0;
    while (read(go_fd, &go, 1) < 0 && errno == EINTR) {
    }
    if (go != 'g') _exit(kExitShimError);

    std::vector<char*> argv;
    for (const std::string& a : opts.argv) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execvp(argv[0], argv.data());

    int err = errno;
    ssize_t ignored = write(err_fd, &err, sizeof err);
    (void)ignored;
    _exit(err == ENOENT ? kExitNotFound : kExitCannotExec);
}

// The inline document for the module. --config-json goes through as written,
// so that an error's line and column point into what the user typed; only
// with --grace too is it parsed and merged (its positions then refer to the
// merged text, which the message prints).
std::string build_config(const RunOptions& opts) {
    if (opts.grace_ms < 0) return opts.config_json;

    nlohmann::json doc = nlohmann::json::object();
    if (!opts.config_json.empty()) doc = nlohmann::json::parse(opts.config_json);
    doc["teardown"]["grace_ms"] = opts.grace_ms;
    return doc.dump();
}

// Reaps every exited child but the command itself: as a subreaper the shim
// inherits the command's orphans. Once the command has exited it is left as
// a zombie for the teardown (see run_command), so reaping stops there.
void reap_orphans(pid_t keep) {
    for (;;) {
        siginfo_t info{};
        if (waitid(P_ALL, 0, &info, WEXITED | WNOHANG | WNOWAIT) < 0) return;
        if (info.si_pid == 0 || info.si_pid == keep) return;
        waitpid(info.si_pid, nullptr, 0);
    }
}

std::string describe_status(const siginfo_t& info) {
    if (info.si_code == CLD_EXITED) return "exited with status " + std::to_string(info.si_status);
    return std::string("was killed by SIG") + sigabbrev_np(info.si_status);
}

} // namespace

sessreap_options module_options(const RunOptions& opts, const char* json,
                                std::vector<const char*>* dirs) {
    sessreap_options o{};
    o.size = sizeof o;
    if (opts.no_system_config) o.flags |= SESSREAP_OPEN_NO_SYSTEM_CONFIG;
    o.config_json = json && *json ? json : nullptr;
    o.config_root = opts.config_root.empty() ? nullptr : opts.config_root.c_str();
    dirs->clear();
    for (const std::string& d : opts.config_dirs) dirs->push_back(d.c_str());
    dirs->push_back(nullptr);
    o.config_dirs = dirs->data();
    return o;
}

std::string summary(const sessreap_report& r, const sessreap_survivor* survivors) {
    static const char* names[] = {"group", "sweep", "scope", "cgroup"};
    std::string s = (r.flags & SESSREAP_REPORT_DRY_RUN) ? "dry run would signal " : "signalled ";
    unsigned total = 0;
    std::string parts;
    for (int l = 0; l < SESSREAP_LAYER_COUNT; ++l) {
        total += r.signalled[l];
        if (r.signalled[l])
            parts += std::string(parts.empty() ? "" : ", ") + names[l] + " " +
                     std::to_string(r.signalled[l]);
    }
    s += std::to_string(total) + (total == 1 ? " process" : " processes");
    if (!parts.empty()) s += " (" + parts + ")";
    char secs[32];
    snprintf(secs, sizeof secs, " in %.2f s", double(r.elapsed_us) / 1e6);
    s += secs;
    if (r.excluded) s += ", spared " + std::to_string(r.excluded) + " excluded";
    if (r.survivors_total == 0) return s + ", no survivors";

    s += ", " + std::to_string(r.survivors_total) + " survivor(s):";
    for (uint32_t i = 0; i < std::min(r.survivors_total, r.survivors_cap); ++i)
        s += " " + std::to_string(survivors[i].pid) + " (" + survivors[i].comm + ", " +
             survivors[i].state + ")";
    return s;
}

namespace {

// Opens a handle with the shim's logging and the run options' configuration.
sessreap_handle* open_handle(const Module& m, const RunOptions& opts, bool* verbose) {
    std::string config;
    try {
        config = build_config(opts);
    } catch (const std::exception& e) {
        say(std::string("Invalid --config-json: ") + e.what());
        return nullptr;
    }
    std::vector<const char*> dirs;
    sessreap_options o = module_options(opts, config.c_str(), &dirs);
    o.log_fn = log_to_stderr;
    o.log_userdata = verbose;
    sessreap_handle* h = nullptr;
    if (m.open(&o, &h) < 0) {
        say(std::string("Failed to open sessreap: ") + m.last_error());
        return nullptr;
    }
    return h;
}

} // namespace

int reap_stale(const Module& m, const RunOptions& opts) {
    bool verbose = opts.verbose;
    sessreap_handle* h = open_handle(m, opts, &verbose);
    if (!h) return kExitShimError;

    sessreap_survivor survivors[16];
    sessreap_report report{};
    report.size = sizeof report;
    report.survivors = survivors;
    report.survivors_cap = 16;
    int n = m.reap_stale(h, &report);
    if (n < 0 && n != -ETIMEDOUT) {
        say(std::string("Failed to reap stale records: ") + m.last_error());
        m.close(h);
        return kExitShimError;
    }
    if (n == 0)
        say("no stale launch records");
    else
        say("reaped " + (n > 0 ? std::to_string(n) : std::string("some")) +
            " stale launch record(s); teardown " + summary(report, survivors));
    m.close(h);
    return n == -ETIMEDOUT ? 1 : 0;
}

int run_command(const Module& m, const RunOptions& opts) {
    bool verbose = opts.verbose;
    sessreap_handle* h = open_handle(m, opts, &verbose);
    if (!h) return kExitShimError;

    // Block the signals we forward and watch them through a signalfd, so no
    // handler runs between fork and exec.
    sigset_t mask;
    sigemptyset(&mask);
    for (int sig : kForwarded) sigaddset(&mask, sig);
    sigaddset(&mask, SIGCHLD);
    sigprocmask(SIG_BLOCK, &mask, nullptr);
    int sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
    prctl(PR_SET_CHILD_SUBREAPER, 1);

    int ready[2], go[2], err[2];
    if (pipe2(ready, O_CLOEXEC) < 0 || pipe2(go, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0) {
        say(std::string("Failed to create a pipe: ") + strerror(errno));
        return kExitShimError;
    }
    pid_t pid = fork();
    if (pid < 0) {
        say(std::string("Failed to fork: ") + strerror(errno));
        return kExitShimError;
    }
    if (pid == 0) exec_child(opts, ready[1], go[0], err[1]);
    close(ready[1]);
    close(go[0]);
    close(err[1]);
    int pidfd = int(syscall(SYS_pidfd_open, pid, 0));

    // The launch record must see the child's own session, so wait for its
    // setsid(); and the command may run only once it is recorded: a child
    // that forked before the launch call could leave a process the record
    // never saw.
    char ready_byte = 0;
    ssize_t got = read(ready[0], &ready_byte, 1);
    close(ready[0]);
    if (got != 1 || m.launch(h, pid, opts.name.empty() ? nullptr : opts.name.c_str()) < 0) {
        say(std::string("Failed to record the command: ") +
            (got != 1 ? "the child could not start a session" : m.last_error()));
        close(go[1]); // the child sees EOF and exits without running anything
        waitpid(pid, nullptr, 0);
        m.close(h);
        return kExitShimError;
    }
    ssize_t w = write(go[1], "g", 1);
    (void)w;
    close(go[1]);

    int exec_errno = 0;
    if (read(err[0], &exec_errno, sizeof exec_errno) > 0)
        say("Failed to run '" + opts.argv[0] + "': " + strerror(exec_errno));
    close(err[0]);

    // Wait for the command to exit, forwarding signals. After a forwarded
    // signal the command gets the grace period, then its session is torn down.
    int64_t deadline = -1;
    int grace = opts.grace_ms >= 0 ? opts.grace_ms : 2000;
    for (;;) {
        pollfd fds[2] = {{pidfd, POLLIN, 0}, {sfd, POLLIN, 0}};
        int timeout = deadline < 0 ? -1 : int(std::max<int64_t>(0, deadline - now_ms()));
        int n = poll(fds, 2, timeout);
        if (n < 0 && errno != EINTR) break;
        if (fds[0].revents) break;
        if (n == 0 && deadline >= 0) {
            say("The command outlived the " + std::to_string(grace) + " ms grace period");
            break;
        }
        signalfd_siginfo si;
        while (read(sfd, &si, sizeof si) == sizeof si) {
            if (si.ssi_signo == SIGCHLD) {
                reap_orphans(pid);
                continue;
            }
            syscall(SYS_pidfd_send_signal, pidfd, si.ssi_signo, nullptr, 0);
            if (deadline < 0) deadline = now_ms() + grace;
        }
    }

    // Tear down while the command is still an unreaped zombie: its pid, and
    // so its session and group ids, cannot be recycled meanwhile.
    sessreap_survivor survivors[16];
    sessreap_report report{};
    report.size = sizeof report;
    report.survivors = survivors;
    report.survivors_cap = 16;
    int tr = m.teardown(h, pid, &report);
    if (tr < 0 && tr != -ETIMEDOUT) say(std::string("Teardown failed: ") + m.last_error());

    siginfo_t info{};
    pollfd pfd{pidfd, POLLIN, 0};
    int status = kExitShimError;
    if (poll(&pfd, 1, 1000) > 0 && waitid(P_PID, pid, &info, WEXITED) == 0) {
        status = info.si_code == CLD_EXITED ? info.si_status : 128 + info.si_status;
        if (!exec_errno)
            say("'" + opts.argv[0] + "' " + describe_status(info) + "; teardown " +
                summary(report, survivors));
        else
            status = exec_errno == ENOENT ? kExitNotFound : kExitCannotExec;
    } else {
        say("'" + opts.argv[0] + "' did not exit; teardown " + summary(report, survivors));
    }
    reap_orphans(-1);
    m.close(h);
    return status;
}

} // namespace shim
