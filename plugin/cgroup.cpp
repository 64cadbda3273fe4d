// SPDX-License-Identifier: LGPL-2.1-or-later
// Creates a cgroup per launch, kills it whole at teardown and removes it.
#include "cgroup.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <string_view>
#include <unordered_set>

// The pidfd calls go through syscall(2) so that glibc older than 2.36 still builds.
#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif

namespace sessreap {

namespace {

constexpr int kMaxDepth = 32;                   // nested cgroups followed below a launch's cgroup
constexpr int64_t kFreezeSliceNs = 200'000'000; // longest wait for "frozen 1" per pass
constexpr int64_t kPassSliceNs = 100'000'000;   // longest wait for the cgroup to empty per pass
constexpr int64_t kPollSliceNs = 100'000'000;   // longest single poll on cgroup.events
constexpr size_t kSignalBatch = 256;            // pidfds held open at once

// A cgroup removed under us: ENOENT opening its files, ENODEV using a file opened before.
bool is_gone(int code) {
    return code == ENOENT || code == ENODEV;
}

Error sys_error(int code, std::string what) {
    return make_error(code, "Failed to " + what + ": " + errno_string(code));
}

// Reads errno before anything can allocate, since building a message may change it.
Error errno_error(std::string_view what, std::string_view name = {}) {
    int code = errno;
    return make_error(code, std::string(what).append(name));
}

Result<std::string> read_at(int dir, const char* name) {
    UniqueFd fd(openat(dir, name, O_RDONLY | O_CLOEXEC));
    if (!fd.valid()) return errno_error("open ", name);

    std::string text;
    char buf[4096];
    for (;;) {
        ssize_t n = read(fd.get(), buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return errno_error("read ", name);
        if (n == 0) return text;
        text.append(buf, size_t(n));
    }
}

Status write_at(int dir, const char* name, std::string_view text) {
    UniqueFd fd(openat(dir, name, O_WRONLY | O_CLOEXEC));
    if (!fd.valid()) return errno_error("open ", name);

    // cgroup files take one value per write(2); a short write does not happen on kernfs.
    ssize_t n;
    do n = write(fd.get(), text.data(), text.size());
    while (n < 0 && errno == EINTR);
    if (n < 0) return errno_error("write ", name);
    return Ok{};
}

bool has_file(int dir, const char* name) {
    struct stat st {};
    return fstatat(dir, name, &st, 0) == 0;
}

// A cgroup directory stays open after rmdir, but its files are gone.
bool cgroup_gone(int dir) {
    struct stat st {};
    return fstatat(dir, "cgroup.procs", &st, 0) < 0 && errno == ENOENT;
}

// Returns the value of KEY in a "KEY VALUE" line of cgroup.events, or -1.
int events_field(std::string_view text, std::string_view key) {
    size_t pos = 0;
    while (pos < text.size()) {
        size_t end = text.find('\n', pos);
        if (end == std::string_view::npos) end = text.size();
        std::string_view line = text.substr(pos, end - pos);
        pos = end + 1;

        if (line.size() <= key.size() || line.substr(0, key.size()) != key) continue;
        if (line[key.size()] != ' ') continue;
        int value = -1;
        std::from_chars(line.data() + key.size() + 1, line.data() + line.size(), value);
        return value;
    }
    return -1;
}

std::string describe(const CgroupRecord& rec) {
    return "cgroup \"" + rec.path + "\"";
}

// Turns a helper's "what failed" into the message a caller logs.
Error cgroup_error(const CgroupRecord& rec, const Error& e) {
    return sys_error(e.code, e.message + " of " + describe(rec));
}

std::string unescape_mountinfo(std::string_view s) {
    // Mount points escape space, tab, newline and backslash as \ooo.
    std::string out;
    for (size_t i = 0; i < s.size(); i++) {
        if (s[i] == '\\' && s.size() - i >= 4) {
            int v = 0;
            auto [p, ec] = std::from_chars(s.data() + i + 1, s.data() + i + 4, v, 8);
            if (ec == std::errc() && p == s.data() + i + 4) {
                out += char(v);
                i += 3;
                continue;
            }
        }
        out += s[i];
    }
    return out;
}

// Returns the mount points of every cgroup2 mount, in mountinfo order.
Result<std::vector<std::string>> cgroup2_mounts() {
    auto text = read_at(AT_FDCWD, "/proc/self/mountinfo");
    if (!text) return sys_error(text.error().code, "read /proc/self/mountinfo");

    std::vector<std::string> mounts;
    std::string_view all = *text;
    size_t pos = 0;
    while (pos < all.size()) {
        size_t end = all.find('\n', pos);
        if (end == std::string_view::npos) end = all.size();
        std::string_view line = all.substr(pos, end - pos);
        pos = end + 1;

        // ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPER
        size_t dash = line.find(" - ");
        if (dash == std::string_view::npos) continue;
        std::string_view fstype = line.substr(dash + 3);
        fstype = fstype.substr(0, fstype.find(' '));
        if (fstype != "cgroup2") continue;

        std::string_view head = line.substr(0, dash);
        size_t start = 0;
        for (int field = 0; field < 4 && start != std::string_view::npos; field++) {
            start = head.find(' ', start);
            if (start != std::string_view::npos) start++;
        }
        if (start == std::string_view::npos) continue;
        std::string_view point = head.substr(start, head.find(' ', start) - start);
        mounts.push_back(unescape_mountinfo(point));
    }
    return mounts;
}

// Prefers the usual places for cgroup2 over whatever else mountinfo lists.
Result<std::string> find_mount() {
    auto mounts = cgroup2_mounts();
    if (!mounts) return mounts.error();

    for (const char* preferred : {"/sys/fs/cgroup", "/sys/fs/cgroup/unified"}) {
        if (std::find(mounts->begin(), mounts->end(), preferred) != mounts->end()) {
            return std::string(preferred);
        }
    }
    if (!mounts->empty()) return mounts->front();
    return make_error(ENOENT, "No cgroup2 file system is mounted (none in /proc/self/mountinfo)");
}

Error not_cgroup2(const std::string& path, unsigned long f_type) {
    char type[32];
    snprintf(type, sizeof type, "0x%lx", f_type);
    std::string what = f_type == CGROUP_SUPER_MAGIC
                           ? "is in a cgroup v1 hierarchy"
                           : std::string("is not on a cgroup2 file system (f_type ") + type + ")";
    std::string hint;
    if (auto mount = find_mount()) hint = " (cgroup2 is mounted at \"" + *mount + "\")";
    return make_error(EMEDIUMTYPE, "The cgroup parent \"" + path + "\" " + what +
                                       "; it must be a delegated cgroup2 directory" + hint);
}

// Opens path as a directory and checks it is on cgroup2.
Result<UniqueFd> open_cgroup2_dir(const std::string& path) {
    if (path.empty()) return make_error(EINVAL, "The cgroup parent is empty");

    UniqueFd fd(open(path.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!fd.valid()) {
        int code = errno;
        return sys_error(code, "open cgroup parent \"" + path + "\"");
    }

    struct statfs fs {};
    if (fstatfs(fd.get(), &fs) < 0) {
        int code = errno;
        return sys_error(code, "statfs \"" + path + "\"");
    }
    if (fs.f_type != CGROUP2_SUPER_MAGIC) return not_cgroup2(path, fs.f_type);
    return fd;
}

Result<UniqueFd> open_child(int dir, const char* name) {
    UniqueFd fd(openat(dir, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!fd.valid()) return errno_error("open ", name);
    return fd;
}

// Calls fn(child_fd, name) for every child cgroup of dir.
template <typename Fn> Status for_each_child(int dir, Fn&& fn) {
    int list_fd = openat(dir, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (list_fd < 0) return errno_error("open cgroup directory");
    DIR* d = fdopendir(list_fd);
    if (!d) {
        int code = errno;
        close(list_fd);
        return make_error(code, "read cgroup directory");
    }

    // Names are collected first so that fn may remove entries while we iterate.
    std::vector<std::string> names;
    while (dirent* e = readdir(d)) {
        if (e->d_type != DT_DIR) continue;
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        names.emplace_back(e->d_name);
    }
    closedir(d);

    for (const auto& name : names) {
        auto child = open_child(dir, name.c_str());
        if (!child && is_gone(child.error().code)) continue;
        if (!child) return child.error();

        Status s = fn(child->get(), name);
        if (!s) return s;
    }
    return Ok{};
}

Status collect_pids(int dir, int depth, std::vector<pid_t>& out) {
    auto text = read_at(dir, "cgroup.procs");
    if (!text && is_gone(text.error().code)) return Ok{};
    if (!text) return text.error();

    std::string_view rest = *text;
    while (!rest.empty()) {
        size_t end = rest.find('\n');
        std::string_view line = rest.substr(0, end);
        rest = end == std::string_view::npos ? std::string_view() : rest.substr(end + 1);

        pid_t pid = 0;
        std::from_chars(line.data(), line.data() + line.size(), pid);
        // 0 is a process outside our PID namespace: there is no pid we could signal.
        if (pid > 0) out.push_back(pid);
    }

    if (depth >= kMaxDepth) return Ok{};
    return for_each_child(
        dir, [&](int child, const std::string&) { return collect_pids(child, depth + 1, out); });
}

// Waits until KEY in cgroup.events reads want, or until_ns. Returns whether it did;
// a cgroup that is gone counts as reached.
Result<bool> wait_events(int dir, const char* key, int want, int64_t until_ns) {
    UniqueFd fd(openat(dir, "cgroup.events", O_RDONLY | O_CLOEXEC));
    if (!fd.valid() && is_gone(errno)) return true;
    if (!fd.valid()) return errno_error("open cgroup.events");

    for (;;) {
        char buf[256];
        ssize_t n = pread(fd.get(), buf, sizeof buf - 1, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && is_gone(errno)) return true;
        if (n < 0) return errno_error("read cgroup.events");
        if (events_field(std::string_view(buf, size_t(n)), key) == want) return true;

        int64_t left = until_ns - now_ns();
        if (left <= 0) return false;

        // The read above re-armed the notification; kernfs then reports a change with
        // POLLPRI. cgroup_file_notify() delays bursts by up to 20 ms but never drops them;
        // the poll is sliced anyway so a missed wakeup costs at most one slice.
        left = std::min(left, kPollSliceNs);
        timespec ts{time_t(left / 1'000'000'000), long(left % 1'000'000'000)};
        pollfd p{fd.get(), POLLPRI, 0};
        if (ppoll(&p, 1, &ts, nullptr) < 0 && errno != EINTR) {
            return errno_error("poll cgroup.events");
        }
    }
}

void sleep_until(int64_t until_ns, int64_t at_most_ns) {
    int64_t left = std::min(until_ns - now_ns(), at_most_ns);
    if (left <= 0) return;
    timespec ts{time_t(left / 1'000'000'000), long(left % 1'000'000'000)};
    nanosleep(&ts, nullptr);
}

// Removes every child cgroup below dir, deepest first.
Status remove_children(int dir, int depth) {
    if (depth >= kMaxDepth) return make_error(ELOOP, "remove nested cgroups: too deep");
    return for_each_child(dir, [&](int child, const std::string& name) -> Status {
        Status s = remove_children(child, depth + 1);
        if (!s) return s;
        if (unlinkat(dir, name.c_str(), AT_REMOVEDIR) < 0 && !is_gone(errno)) {
            return errno_error("remove nested cgroup ", name);
        }
        return Ok{};
    });
}

// Whether name in parent is still dir, so a namesake is never removed in its place.
bool same_dir(int parent, const std::string& name, int dir) {
    struct stat self {};
    struct stat st {};
    if (fstat(dir, &self) < 0) return false;
    if (fstatat(parent, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) < 0) return false;
    return st.st_dev == self.st_dev && st.st_ino == self.st_ino;
}

// Removes the cgroup and any nested ones once they are empty. Returns EBUSY while a
// process is still inside.
Status remove_cgroup(CgroupRecord& rec) {
    if (cgroup_gone(rec.dir.get())) {
        rec.dir.reset();
        return Ok{};
    }

    Status s = remove_children(rec.dir.get(), 0);
    if (!s) return s;

    // ".." is the parent this cgroup really has, wherever the configured path now leads.
    // cgroup2 refuses rename(2) with EPERM, so the name is still the one we created.
    auto parent = open_child(rec.dir.get(), "..");
    if (!parent) return parent.error();

    std::string name = rec.path.substr(rec.path.rfind('/') + 1);
    if (!same_dir(parent->get(), name, rec.dir.get())) {
        return make_error(ESTALE, "find \"" + name + "\" in its parent");
    }
    if (unlinkat(parent->get(), name.c_str(), AT_REMOVEDIR) < 0 && !is_gone(errno)) {
        return errno_error("remove the directory");
    }
    rec.dir.reset();
    return Ok{};
}

int pidfd_open(pid_t pid) {
    return int(syscall(SYS_pidfd_open, pid, 0));
}

int pidfd_send_signal(int pidfd, int sig) {
    return int(syscall(SYS_pidfd_send_signal, pidfd, sig, nullptr, 0));
}

// Signals the listed pids that are still in the cgroup. Each pid is pinned with a pidfd
// first and only signalled if the cgroup still lists it afterwards: a pid that exited and
// was reused between the read of cgroup.procs and pidfd_open() is then not ours to signal.
Status signal_batch(int dir, const std::vector<pid_t>& pids, int sig,
                    const CgroupSignalHook& on_signal, std::unordered_set<pid_t>& signalled) {
    std::vector<std::pair<pid_t, UniqueFd>> pinned;
    bool have_pidfd = true;
    for (pid_t pid : pids) {
        UniqueFd fd(pidfd_open(pid));
        if (!fd.valid() && errno == ESRCH) continue;
        // pidfd_open() is Linux 5.3, cgroup.freeze 5.2. On 5.2 the pid is frozen, so it
        // can neither exit nor be reused unless something else sends it SIGKILL.
        if (!fd.valid() && errno == ENOSYS) have_pidfd = false;
        if (!fd.valid() && errno != ENOSYS) return errno_error("pidfd_open");
        pinned.emplace_back(pid, std::move(fd));
    }

    std::vector<pid_t> now;
    Status s = collect_pids(dir, 0, now);
    if (!s) return s;
    std::unordered_set<pid_t> still(now.begin(), now.end());

    for (auto& [pid, fd] : pinned) {
        if (!still.count(pid)) continue;
        if (on_signal) on_signal(pid, sig);

        int r = have_pidfd ? pidfd_send_signal(fd.get(), sig) : kill(pid, sig);
        // ESRCH: it died on its own meanwhile, which is what we want.
        if (r < 0 && errno != ESRCH) {
            int code = errno;
            return make_error(code, "send signal " + std::to_string(sig) + " to process " +
                                        std::to_string(pid));
        }
        signalled.insert(pid);
    }
    return Ok{};
}

// Thaws the cgroup when it goes out of scope, so no return path leaves it frozen.
class FreezeGuard {
public:
    explicit FreezeGuard(int dir) : dir_(dir) {}
    FreezeGuard(const FreezeGuard&) = delete;
    FreezeGuard& operator=(const FreezeGuard&) = delete;
    ~FreezeGuard() { thaw(); }

    Status freeze() {
        Status s = write_at(dir_, "cgroup.freeze", "1");
        if (s) frozen_ = true;
        return s;
    }

    void thaw() {
        if (!frozen_) return;
        frozen_ = false;
        (void)write_at(dir_, "cgroup.freeze", "0");
    }

private:
    int dir_;
    bool frozen_ = false;
};

// One pass of the fallback: freeze, signal everything listed, thaw. Returns whether the
// cgroup was already empty.
Result<bool> freeze_and_signal(int dir, int sig, int64_t deadline_ns,
                               const CgroupSignalHook& on_signal,
                               std::unordered_set<pid_t>& signalled) {
    FreezeGuard guard(dir);

    // cgroup.freeze is Linux 5.2. Without it the list can grow by a fork between the read
    // and the signal; the passes repeat until the cgroup is empty, which catches those.
    if (has_file(dir, "cgroup.freeze")) {
        Status s = guard.freeze();
        if (!s && is_gone(s.error().code)) return true;
        if (!s) return s.error();

        // A task in uninterruptible sleep delays "frozen 1"; waiting is bounded and the
        // pass goes on regardless, since the next pass picks up whatever was missed.
        auto frozen =
            wait_events(dir, "frozen", 1, std::min(deadline_ns, now_ns() + kFreezeSliceNs));
        if (!frozen) return frozen.error();
    }

    // A frozen process cannot fork or exit by itself, so this list is stable until the
    // thaw; only a fatal signal from elsewhere can end one, which the pidfd guards against.
    std::vector<pid_t> pids;
    Status s = collect_pids(dir, 0, pids);
    if (!s) return s.error();
    if (pids.empty()) return true;

    for (size_t i = 0; i < pids.size(); i += kSignalBatch) {
        auto last = pids.begin() + std::min(pids.size(), i + kSignalBatch);
        s = signal_batch(dir, std::vector<pid_t>(pids.begin() + i, last), sig, on_signal,
                         signalled);
        if (!s) return s.error();
    }
    return false;
}

Error left_at_deadline(const CgroupRecord& rec) {
    std::vector<pid_t> pids;
    (void)collect_pids(rec.dir.get(), 0, pids);

    std::string list;
    for (size_t i = 0; i < pids.size() && i < 32; i++) list += " " + std::to_string(pids[i]);
    if (pids.size() > 32) list += " ...";
    if (pids.empty()) list = " (none visible in this PID namespace)";
    return make_error(ETIMEDOUT, "Failed to empty " + describe(rec) + " by the deadline, " +
                                     std::to_string(pids.size()) + " processes left:" + list);
}

} // namespace

Result<std::string> find_cgroup2_mount() {
    return find_mount();
}

Status cgroup_check_parent(const std::string& path) {
    auto fd = open_cgroup2_dir(path);
    if (!fd) return fd.error();
    return Ok{};
}

Result<CgroupRecord> cgroup_create_for(const Config::Cgroup& cfg, pid_t pid) {
    if (pid <= 0) return make_error(EINVAL, "Invalid pid " + std::to_string(pid));

    auto parent = open_cgroup2_dir(cfg.parent);
    if (!parent) return parent.error();

    // The counter keeps names unique within this process; EEXIST covers another host in a
    // different PID namespace, or a cgroup left by a crash, that holds the same name.
    static std::atomic<unsigned> counter{0};
    std::string name;
    for (int attempt = 0;; attempt++) {
        name = "sessreap-" + std::to_string(pid) + "-" + std::to_string(counter++);
        if (mkdirat(parent->get(), name.c_str(), 0755) == 0) break;
        int code = errno;
        if (code != EEXIST || attempt == 15) {
            return sys_error(code, "create cgroup \"" + cfg.parent + "/" + name + "\"");
        }
    }

    CgroupRecord rec{cfg.parent + "/" + name, {}};
    auto remove = [&] { (void)unlinkat(parent->get(), name.c_str(), AT_REMOVEDIR); };

    auto dir = open_child(parent->get(), name.c_str());
    if (!dir) {
        remove();
        return sys_error(dir.error().code, "open " + describe(rec));
    }
    rec.dir = std::move(dir.value());

    // The new cgroup is a leaf with no controllers in its subtree_control, so the no
    // internal process rule (which forbids processes in the parent when it has controllers
    // enabled) does not stop the move.
    Status s = write_at(rec.dir.get(), "cgroup.procs", std::to_string(pid));
    if (!s) {
        remove();
        int code = s.error().code;
        std::string why = "move process " + std::to_string(pid) + " into " + describe(rec);
        if (code == EOPNOTSUPP) why += " (the parent is in a threaded subtree)";
        if (code == EACCES || code == EPERM) {
            why += " (cgroup v2 delegation needs write access to cgroup.procs of the common "
                   "ancestor of the process's cgroup and this one)";
        }
        return sys_error(code, why);
    }
    return rec;
}

Result<std::vector<pid_t>> cgroup_list_pids(int dir_fd) {
    std::vector<pid_t> pids;
    Status s = collect_pids(dir_fd, 0, pids);
    if (!s) return sys_error(s.error().code, s.error().message);
    return pids;
}

Result<CgroupKillResult> cgroup_kill_and_remove(CgroupRecord& rec, int kill_signal,
                                                int64_t deadline_ns, CgroupKill mode,
                                                const CgroupSignalHook& on_signal) {
    CgroupKillResult result;
    if (!rec.dir.valid()) return result;
    if (kill_signal <= 0 || kill_signal >= NSIG) {
        return make_error(EINVAL, "Invalid kill signal " + std::to_string(kill_signal));
    }

    int dir = rec.dir.get();
    result.used_cgroup_kill =
        mode == CgroupKill::automatic && kill_signal == SIGKILL && has_file(dir, "cgroup.kill");
    if (result.used_cgroup_kill) {
        std::vector<pid_t> pids;
        Status s = collect_pids(dir, 0, pids);
        if (!s) return cgroup_error(rec, s.error());
        for (pid_t pid : pids) {
            if (on_signal) on_signal(pid, SIGKILL);
        }
        result.killed = unsigned(pids.size());

        // cgroup.kill (Linux 5.14) covers nested cgroups and also kills a child forked
        // while the kill is in progress, so one write is enough.
        s = write_at(dir, "cgroup.kill", "1");
        if (!s && !is_gone(s.error().code)) {
            return cgroup_error(rec, s.error());
        }
    } else {
        std::unordered_set<pid_t> signalled;
        for (;;) {
            auto empty = freeze_and_signal(dir, kill_signal, deadline_ns, on_signal, signalled);
            if (!empty) return cgroup_error(rec, empty.error());
            if (*empty) break;

            int64_t until = std::min(deadline_ns, now_ns() + kPassSliceNs);
            auto gone = wait_events(dir, "populated", 0, until);
            if (!gone) return cgroup_error(rec, gone.error());
            if (*gone || now_ns() >= deadline_ns) break;
        }
        result.killed = unsigned(signalled.size());
    }

    auto emptied = wait_events(dir, "populated", 0, deadline_ns);
    if (!emptied) return cgroup_error(rec, emptied.error());
    if (!*emptied) return left_at_deadline(rec);

    // rmdir can briefly fail with EBUSY while an exiting task is still being unlinked from
    // the cgroup after "populated 0", so it is retried until the deadline.
    for (;;) {
        Status s = remove_cgroup(rec);
        if (s) return result;
        if (s.error().code != EBUSY || now_ns() >= deadline_ns) {
            return cgroup_error(rec, s.error());
        }
        sleep_until(deadline_ns, 10'000'000);
    }
}

Result<CgroupForgetResult> cgroup_forget(CgroupRecord& rec) {
    CgroupForgetResult result;
    if (!rec.dir.valid()) {
        result.removed = true;
        return result;
    }

    Status s = remove_cgroup(rec);
    if (s) {
        result.removed = true;
        return result;
    }
    if (s.error().code != EBUSY) {
        return cgroup_error(rec, s.error());
    }

    std::vector<pid_t> pids;
    s = collect_pids(rec.dir.get(), 0, pids);
    if (!s) return cgroup_error(rec, s.error());
    result.left = unsigned(pids.size());
    return result;
}

} // namespace sessreap
