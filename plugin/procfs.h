// SPDX-License-Identifier: LGPL-2.1-or-later
// Reading /proc: the stat parser and a directory walk with no per-entry allocation.
#pragma once

#include <sys/types.h>

#include <array>
#include <cstdint>
#include <string_view>

#include "util.h"

namespace sessreap {

// The fields of /proc/PID/stat that teardown needs.
struct StatFields {
    pid_t pid = 0;
    std::array<char, 16> comm{}; // NUL-terminated, clipped to 15 bytes
    char state = 0;
    pid_t ppid = 0;
    pid_t pgrp = 0;
    pid_t session = 0;
    uint64_t starttime = 0; // clock ticks after boot (field 22)
};

// Parses one /proc/PID/stat text. The command name sits between the first
// '(' and the LAST ')': it may itself hold spaces, parentheses and newlines,
// so a name like "x) R 1 4242 4242" cannot pose as other fields.
// Returns false when the text is truncated or malformed.
bool parse_stat(std::string_view text, StatFields* out);

// Reads and parses /proc/PID/stat relative to an open /proc directory.
// Returns -ESRCH when the process is gone (ENOENT under /proc/PID means that),
// -EACCES when it cannot be read, -EBADMSG when the text does not parse.
int read_stat(int proc_fd, pid_t pid, StatFields* out);

// True when a process in this state has exited (zombie or dead): it can no
// longer act, so teardown counts it as gone.
inline bool state_is_gone(char state) {
    return state == 'Z' || state == 'X' || state == 'x';
}

// True when the process is stopped (job control or ptrace): it acts on no
// signal but SIGKILL until it is continued.
inline bool state_is_stopped(char state) {
    return state == 'T' || state == 't';
}

// Opens /proc as a directory and checks that it belongs to our PID namespace:
// a /proc of another namespace would make every pid we read name another
// process. Returns the fd or an error.
Result<UniqueFd> open_proc(const char* path = "/proc");

// True when /proc is mounted with hidepid (Linux 3.3; "invisible" since 5.8)
// and hides processes of other users from us: pid 1 exists but its /proc
// entry does not.
bool proc_hides_others(int proc_fd);

// Walks the numeric entries of a /proc directory with getdents64, calling
// visit(pid) for each, without allocating per entry. Opens its own file
// description so several walks may run at once on one proc fd.
class ProcWalker {
public:
    explicit ProcWalker(int proc_fd) : proc_fd_(proc_fd) {}

    // Returns 0 or a negative errno from opening or reading the directory.
    template <typename Visit> int for_each_pid(Visit&& visit);

private:
    int open_dir();
    // Fills buf_ with the next batch; returns bytes, 0 at end, or -errno.
    long next_batch(int fd);

    int proc_fd_;
    alignas(8) std::array<char, 64 * 1024> buf_;
};

// Parses a /proc entry name as a pid; 0 when it is not a number.
inline pid_t pid_from_name(const char* name) {
    pid_t pid = 0;
    for (; *name; ++name) {
        if (*name < '0' || *name > '9' || pid > 100'000'000) return 0;
        pid = pid * 10 + (*name - '0');
    }
    return pid;
}

struct LinuxDirent64 {
    uint64_t d_ino;
    int64_t d_off;
    unsigned short d_reclen;
    unsigned char d_type;
    char d_name[];
};

template <typename Visit> int ProcWalker::for_each_pid(Visit&& visit) {
    UniqueFd dir(open_dir());
    if (!dir.valid()) return -errno;

    for (;;) {
        long n = next_batch(dir.get());
        if (n < 0) return int(n);
        if (n == 0) return 0;

        for (long off = 0; off < n;) {
            auto* d = reinterpret_cast<LinuxDirent64*>(buf_.data() + off);
            off += d->d_reclen;
            pid_t pid = pid_from_name(d->d_name);
            if (pid > 0) visit(pid);
        }
    }
}

} // namespace sessreap
