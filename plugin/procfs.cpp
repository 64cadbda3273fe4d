// SPDX-License-Identifier: LGPL-2.1-or-later
// Reading /proc: the stat parser and a directory walk with no per-entry allocation.
#include "procfs.h"

#include <fcntl.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <charconv>
#include <cstring>

namespace sessreap {
namespace {

// Skips one space, then parses a decimal integer (possibly negative).
template <typename T> bool next_field(const char*& p, const char* end, T* out) {
    if (p >= end || *p != ' ') return false;
    ++p;
    auto [next, ec] = std::from_chars(p, end, *out);
    if (ec != std::errc() || next == p) return false;
    p = next;
    return true;
}

// Skips one space and one field of any content.
bool skip_field(const char*& p, const char* end) {
    if (p >= end || *p != ' ') return false;
    ++p;
    const char* start = p;
    while (p < end && *p != ' ' && *p != '\n') ++p;
    return p > start;
}

} // namespace

bool parse_stat(std::string_view text, StatFields* out) {
    size_t open = text.find('(');
    size_t close = text.rfind(')');
    if (open == std::string_view::npos || open < 2 || close == std::string_view::npos ||
        close < open)
        return false;

    StatFields f;
    auto [pend, ec] = std::from_chars(text.data(), text.data() + open, f.pid);
    if (ec != std::errc() || pend != text.data() + open - 1 || text[open - 1] != ' ' || f.pid <= 0)
        return false;

    std::string_view comm = text.substr(open + 1, close - open - 1);
    size_t n = std::min(comm.size(), f.comm.size() - 1);
    std::memcpy(f.comm.data(), comm.data(), n);
    f.comm[n] = '\0';

    // Fields 3 onwards follow the last ')': " S ppid pgrp session ...".
    const char* p = text.data() + close + 1;
    const char* end = text.data() + text.size();
    if (end - p < 3 || p[0] != ' ' || p[2] != ' ') return false;
    f.state = p[1];
    p += 2;
    if (!next_field(p, end, &f.ppid) || !next_field(p, end, &f.pgrp) ||
        !next_field(p, end, &f.session))
        return false;

    // Fields 7 to 21 (tty_nr .. itrealvalue) are not needed.
    for (int field = 7; field <= 21; ++field)
        if (!skip_field(p, end)) return false;
    // The kernel always writes fields after the start time, so a separator
    // must follow it: a line cut inside its digits is rejected, not misread.
    if (!next_field(p, end, &f.starttime) || p >= end || (*p != ' ' && *p != '\n')) return false;

    *out = f;
    return true;
}

int read_stat(int proc_fd, pid_t pid, StatFields* out) {
    char path[32];
    snprintf(path, sizeof path, "%d/stat", int(pid));

    UniqueFd fd(openat(proc_fd, path, O_RDONLY | O_CLOEXEC));
    if (!fd.valid()) return errno == ENOENT ? -ESRCH : -errno;

    // A stat line is a few hundred bytes; the kernel hands it out in one read.
    char buf[1024];
    ssize_t n = read(fd.get(), buf, sizeof buf);
    if (n < 0) return errno == ENOENT ? -ESRCH : -errno;
    if (n == 0) return -ESRCH; // the process exited between open and read

    if (!parse_stat(std::string_view(buf, size_t(n)), out) || out->pid != pid) return -EBADMSG;
    return 0;
}

Result<UniqueFd> open_proc(const char* path) {
    UniqueFd fd(open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!fd.valid())
        return make_error(errno,
                          std::string("Failed to open ") + path + ": " + errno_string(errno));

    char self[32] = {};
    ssize_t n = readlinkat(fd.get(), "self", self, sizeof self - 1);
    if (n <= 0)
        return make_error(n < 0 ? errno : EIO, std::string("Failed to read ") + path +
                                                   "/self: " + errno_string(n < 0 ? errno : EIO));
    if (pid_from_name(self) != getpid())
        return make_error(EXDEV, std::string(path) + " belongs to another PID namespace (" + path +
                                     "/self is " + self + ", our pid is " +
                                     std::to_string(getpid()) + ")");
    return fd;
}

bool proc_hides_others(int proc_fd) {
    return faccessat(proc_fd, "1", F_OK, 0) < 0 && errno == ENOENT && getsid(1) >= 0;
}

int ProcWalker::open_dir() {
    // A fresh open file description: getdents64 keeps its position there,
    // and dup() would share it with other walks on the same proc fd.
    return openat(proc_fd_, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

long ProcWalker::next_batch(int fd) {
    long n = syscall(SYS_getdents64, fd, buf_.data(), buf_.size());
    return n < 0 ? -errno : n;
}

} // namespace sessreap
