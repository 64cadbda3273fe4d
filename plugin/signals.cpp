// SPDX-License-Identifier: LGPL-2.1-or-later
// Signalling through pidfds, so that a pid recycled after a scan is never hit.
#include "signals.h"

#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace sessreap {

int pidfd_open(pid_t pid) {
    int fd = int(syscall(SYS_pidfd_open, pid, 0));
    return fd < 0 ? -errno : fd;
}

int pidfd_signal(int pidfd, int sig) {
    return syscall(SYS_pidfd_send_signal, pidfd, sig, nullptr, 0) < 0 ? -errno : 0;
}

bool pidfd_exited(int pidfd) {
    pollfd p{pidfd, POLLIN, 0};
    return poll(&p, 1, 0) > 0 && (p.revents & (POLLIN | POLLHUP | POLLERR));
}

namespace {

// Names of the standard signals, as on this architecture.
struct SignalName {
    std::string_view name; // without "SIG"
    int number;
};

constexpr SignalName signal_names[] = {
    {"HUP", SIGHUP},       {"INT", SIGINT},       {"QUIT", SIGQUIT},   {"ILL", SIGILL},
    {"TRAP", SIGTRAP},     {"ABRT", SIGABRT},     {"BUS", SIGBUS},     {"FPE", SIGFPE},
    {"KILL", SIGKILL},     {"USR1", SIGUSR1},     {"SEGV", SIGSEGV},   {"USR2", SIGUSR2},
    {"PIPE", SIGPIPE},     {"ALRM", SIGALRM},     {"TERM", SIGTERM},   {"CHLD", SIGCHLD},
    {"CONT", SIGCONT},     {"STOP", SIGSTOP},     {"TSTP", SIGTSTP},   {"TTIN", SIGTTIN},
    {"TTOU", SIGTTOU},     {"URG", SIGURG},       {"XCPU", SIGXCPU},   {"XFSZ", SIGXFSZ},
    {"PROF", SIGPROF},     {"VTALRM", SIGVTALRM}, {"WINCH", SIGWINCH}, {"IO", SIGIO},
    {"SYS", SIGSYS},
#ifdef SIGSTKFLT
    {"STKFLT", SIGSTKFLT},
#endif
#ifdef SIGPWR
    {"PWR", SIGPWR},
#endif
};

std::optional<int> parse_small_number(std::string_view s) {
    if (s.empty() || s.size() > 3) return std::nullopt;
    int n = 0;
    for (char c : s) {
        if (c < '0' || c > '9') return std::nullopt;
        n = n * 10 + (c - '0');
    }
    return n;
}

} // namespace

std::optional<int> signal_from_name(std::string_view name) {
    if (name.substr(0, 3) == "SIG") name.remove_prefix(3);

    for (const SignalName& s : signal_names)
        if (s.name == name) return s.number;

    // SIGRTMIN is a function call in glibc, which keeps the first realtime signals for itself.
    int base = 0, sign = 1;
    if (name.substr(0, 5) == "RTMIN") base = SIGRTMIN;
    if (name.substr(0, 5) == "RTMAX") base = SIGRTMAX, sign = -1;
    if (base == 0) return std::nullopt;
    name.remove_prefix(5);
    if (name.empty()) return base;

    if (name[0] != (sign > 0 ? '+' : '-')) return std::nullopt;
    auto offset = parse_small_number(name.substr(1));
    if (!offset) return std::nullopt;
    int sig = base + sign * *offset;
    if (sig < SIGRTMIN || sig > SIGRTMAX) return std::nullopt;
    return sig;
}

std::string signal_to_name(int sig) {
    for (const SignalName& s : signal_names)
        if (s.number == sig) return "SIG" + std::string(s.name);

    if (sig == SIGRTMIN) return "SIGRTMIN";
    if (sig > SIGRTMIN && sig <= SIGRTMAX) return "SIGRTMIN+" + std::to_string(sig - SIGRTMIN);
    return "";
}

std::string signal_name(int sig) {
    std::string name = signal_to_name(sig);
    return name.empty() ? "SIG" + std::to_string(sig) : name;
}

} // namespace sessreap
