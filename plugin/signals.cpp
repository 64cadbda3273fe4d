// SPDX-License-Identifier: LGPL-2.1-or-later
// Signalling through pidfds, so that a pid recycled after a scan is never hit.
#include "signals.h"

#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <charconv>

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

std::string signal_name(int sig) {
    const char* abbrev = sigabbrev_np(sig);
    return abbrev ? std::string("SIG") + abbrev : "SIG" + std::to_string(sig);
}

int signal_from_name(std::string_view name) {
    int number = 0;
    auto [end, ec] = std::from_chars(name.data(), name.data() + name.size(), number);
    if (ec == std::errc() && end == name.data() + name.size())
        return number >= 1 && number < NSIG ? number : 0;

    if (name.substr(0, 3) == "SIG") name.remove_prefix(3);
    for (int sig = 1; sig < NSIG; ++sig) {
        const char* abbrev = sigabbrev_np(sig);
        if (abbrev && name == abbrev) return sig;
    }
    return 0;
}

} // namespace sessreap
