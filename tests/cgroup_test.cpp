// SPDX-License-Identifier: LGPL-2.1-or-later
// Tests of the cgroup v2 backstop against real cgroups that each test creates and removes.
#include "cgroup.h"
#include "process.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <sstream>

namespace sessreap {
namespace {

constexpr int64_t kMs = 1'000'000;
constexpr int64_t kSecond = 1000 * kMs;

std::string read_text(const std::string& path) {
    std::string text;
    int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return text;
    char buf[4096];
    for (ssize_t n; (n = read(fd, buf, sizeof buf)) > 0;) text.append(buf, size_t(n));
    close(fd);
    return text;
}

bool write_text(const std::string& path, const std::string& text) {
    int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0) return false;
    bool ok = write(fd, text.data(), text.size()) == ssize_t(text.size());
    close(fd);
    return ok;
}

bool exists(const std::string& path) {
    return access(path.c_str(), F_OK) == 0;
}

bool wait_for_text(const std::string& path, const std::string& needle, int64_t timeout_ns) {
    int64_t until = now_ns() + timeout_ns;
    while (read_text(path).find(needle) == std::string::npos) {
        if (now_ns() > until) return false;
        usleep(5000);
    }
    return true;
}

// Empties and removes a cgroup this test created, children first. It only ever writes to
// directories below the test's own cgroup.
void scrub_cgroup(const std::string& path) {
    std::vector<std::string> children;
    if (DIR* d = opendir(path.c_str())) {
        while (dirent* e = readdir(d)) {
            if (e->d_type == DT_DIR && e->d_name[0] != '.') children.emplace_back(e->d_name);
        }
        closedir(d);
    }
    for (const auto& child : children) scrub_cgroup(path + "/" + child);

    write_text(path + "/cgroup.freeze", "0");
    write_text(path + "/cgroup.kill", "1");
    wait_for_text(path + "/cgroup.events", "populated 0", 5 * kSecond);
    rmdir(path.c_str());
}

// Thaws and removes a v1 freezer cgroup this test created, once its tasks have left.
void scrub_freezer(const std::string& dir) {
    if (!write_text(dir + "/freezer.state", "THAWED")) return;
    int64_t until = now_ns() + 5 * kSecond;
    while (rmdir(dir.c_str()) < 0 && errno == EBUSY && now_ns() < until) usleep(5000);
}

// Forks a process that cleans up the test's cgroups once it gets SIGTERM: from TearDown, or
// through PR_SET_PDEATHSIG when the test process dies first, so even a test killed by a
// timeout leaves nothing frozen and no cgroup behind.
pid_t start_watchdog(const std::string& parent, const std::string& freezer) {
    sigset_t term, old;
    sigemptyset(&term);
    sigaddset(&term, SIGTERM);
    sigprocmask(SIG_BLOCK, &term, &old);
    pid_t test = getpid();

    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        int sig;
        if (getppid() == test) sigwait(&term, &sig);
        scrub_freezer(freezer);
        scrub_cgroup(parent);
        _exit(0);
    }
    sigprocmask(SIG_SETMASK, &old, nullptr);
    return pid;
}

UniqueFd open_pidfd(pid_t pid) {
    return UniqueFd(int(syscall(SYS_pidfd_open, pid, 0)));
}

// A pidfd turns readable once its process has exited.
bool exited_within(int pidfd, int64_t timeout_ns) {
    pollfd p{pidfd, POLLIN, 0};
    return poll(&p, 1, int(timeout_ns / kMs)) == 1;
}

std::vector<pid_t> children_of(pid_t pid) {
    std::vector<pid_t> out;
    std::istringstream in(
        read_text("/proc/" + std::to_string(pid) + "/task/" + std::to_string(pid) + "/children"));
    for (pid_t child; in >> child;) out.push_back(child);
    return out;
}

[[noreturn]] void pause_forever() {
    for (;;) pause();
}

void exit_on_term(int) {
    _exit(0);
}

// The workload: waits for a byte on go, then starts a setsid escapee and a double-forked
// daemon, and reports one byte per process on ready once all three stand.
[[noreturn]] void run_workload(int go, int ready) {
    // A handler, unlike the default action, only runs once the task is thawed: a fatal
    // signal reaches a task frozen by cgroup v2, a handled one waits.
    signal(SIGTERM, exit_on_term);

    char byte;
    if (read(go, &byte, 1) != 1) _exit(1);

    if (fork() == 0) {
        setsid();
        (void)!write(ready, "e", 1);
        pause_forever();
    }

    pid_t middle = fork();
    if (middle == 0) {
        if (fork() == 0) {
            setsid();
            (void)!write(ready, "d", 1);
            pause_forever();
        }
        _exit(0);
    }
    waitpid(middle, nullptr, 0);

    (void)!write(ready, "w", 1);
    pause_forever();
}

// The namespace's init: stays outside the test cgroup and reaps whatever is reparented to
// it, so only the cgroup layer can end the workload.
[[noreturn]] void run_init(int go, int ready) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (fork() == 0) run_workload(go, ready);
    close(go);
    close(ready);

    for (;;) {
        if (waitpid(-1, nullptr, 0) < 0) usleep(20000);
    }
}

// A workload tree in a private PID namespace. holder is the test's only child: killing it
// kills init (PR_SET_PDEATHSIG), which takes the whole namespace down.
struct Tree {
    pid_t holder = -1;
    pid_t init = -1;     // as seen from the test's namespace
    pid_t workload = -1; // as seen from the test's namespace
    UniqueFd go;
    UniqueFd ready;
};

// Starts the tree with the workload blocked before its first fork.
void start_tree(Tree& tree) {
    int go[2], ready[2];
    ASSERT_EQ(pipe2(go, O_CLOEXEC), 0);
    ASSERT_EQ(pipe2(ready, O_CLOEXEC), 0);

    tree.holder = fork();
    ASSERT_GE(tree.holder, 0);
    if (tree.holder == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (unshare(CLONE_NEWPID) < 0) _exit(2);
        pid_t init = fork();
        if (init == 0) run_init(go[0], ready[1]);
        waitpid(init, nullptr, 0);
        _exit(0);
    }
    close(go[0]);
    close(ready[1]);
    tree.go.reset(go[1]);
    tree.ready.reset(ready[0]);

    // The outer pids are only visible from here through the children lists.
    int64_t until = now_ns() + 5 * kSecond;
    while ((tree.init < 0 || tree.workload < 0) && now_ns() < until) {
        auto inits = children_of(tree.holder);
        if (!inits.empty()) tree.init = inits.front();
        auto workloads = tree.init > 0 ? children_of(tree.init) : std::vector<pid_t>();
        if (!workloads.empty()) tree.workload = workloads.front();
        usleep(2000);
    }
    if (tree.workload < 0) GTEST_SKIP() << "cannot find the workload's pid (no PID namespace?)";
}

// Lets the workload fork and waits until its three processes stand.
void release_tree(Tree& tree) {
    ASSERT_EQ(write(tree.go.get(), "g", 1), 1);
    int got = 0;
    int64_t until = now_ns() + 5 * kSecond;
    while (got < 3) {
        pollfd p{tree.ready.get(), POLLIN, 0};
        int left = int(std::max<int64_t>(0, until - now_ns()) / kMs);
        ASSERT_EQ(poll(&p, 1, left), 1) << "the workload tree did not start";
        char buf[3];
        ssize_t n = read(tree.ready.get(), buf, sizeof buf);
        ASSERT_GT(n, 0);
        got += int(n);
    }
}

bool alive(pid_t child) {
    return waitpid(child, nullptr, WNOHANG) == 0;
}

class CgroupTest : public ::testing::Test {
protected:
    void SetUp() override {
        if (geteuid() != 0) GTEST_SKIP() << "creating cgroups needs root";
        auto mount = find_cgroup2_mount();
        if (!mount) GTEST_SKIP() << "no cgroup2 mount: " << mount.error().message;

        parent_ = *mount + "/" + testing_support::unique_name("sessreap-test");
        if (mkdir(parent_.c_str(), 0755) < 0) {
            GTEST_SKIP() << "cannot create a cgroup under " << *mount << ": " << strerror(errno);
        }
        created_ = true;
        cfg_.parent = parent_;
        freezer_ = "/sys/fs/cgroup/freezer/" + parent_.substr(parent_.rfind('/') + 1);
        watchdog_ = start_watchdog(parent_, freezer_);
        ASSERT_GT(watchdog_, 0);
    }

    void TearDown() override {
        if (!created_) return;

        // A v1-frozen process ignores SIGKILL until thawed, so thaw first.
        write_text(freezer_ + "/freezer.state", "THAWED");
        if (tree_.holder > 0) children_.push_back(tree_.holder);
        for (pid_t pid : children_) {
            kill(pid, SIGKILL);
            waitpid(pid, nullptr, 0);
        }

        kill(watchdog_, SIGTERM);
        waitpid(watchdog_, nullptr, 0);
        EXPECT_FALSE(exists(parent_)) << "the test cgroup was left behind";
    }

    // A plain child that waits to be killed, signalled only by this pid.
    pid_t start_sleeper() {
        pid_t pid = fork();
        if (pid == 0) {
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            pause_forever();
        }
        if (pid > 0) children_.push_back(pid);
        return pid;
    }

    // Starts the tree, moves its workload into a new cgroup, then lets it fork.
    void start_tree_in_cgroup(CgroupRecord& rec) {
        ASSERT_NO_FATAL_FAILURE(start_tree(tree_));
        if (IsSkipped()) return;
        auto created = cgroup_create_for(cfg_, tree_.workload);
        ASSERT_TRUE(created.ok()) << created.error().message;
        rec = std::move(*created);
        ASSERT_NO_FATAL_FAILURE(release_tree(tree_));
    }

    // Kills the tree through its cgroup and checks every process and the cgroup are gone.
    void kill_tree_and_check(CgroupKill mode, int signal, bool expect_cgroup_kill,
                             bool nested = false) {
        CgroupRecord rec;
        ASSERT_NO_FATAL_FAILURE(start_tree_in_cgroup(rec));
        if (IsSkipped()) return;

        auto listed = cgroup_list_pids(rec.dir.get());
        ASSERT_TRUE(listed.ok()) << listed.error().message;
        std::vector<pid_t> pids = *listed;
        ASSERT_EQ(pids.size(), 3u);
        std::vector<UniqueFd> pidfds;
        for (pid_t pid : pids) {
            pidfds.push_back(open_pidfd(pid));
            ASSERT_TRUE(pidfds.back().valid());
        }
        pid_t sid = getsid(tree_.workload);
        EXPECT_EQ(
            std::count_if(pids.begin(), pids.end(), [&](pid_t p) { return getsid(p) != sid; }), 2)
            << "the escapees did not leave the workload's session";

        if (nested) {
            // The workload may make cgroups of its own; move the workload into one.
            ASSERT_EQ(mkdir((rec.path + "/inner").c_str(), 0755), 0);
            ASSERT_TRUE(
                write_text(rec.path + "/inner/cgroup.procs", std::to_string(tree_.workload)));
        }

        std::vector<pid_t> hooked;
        auto result = cgroup_kill_and_remove(rec, signal, now_ns() + 5 * kSecond, mode,
                                             [&](pid_t pid, int) { hooked.push_back(pid); });
        ASSERT_TRUE(result.ok()) << result.error().message;

        EXPECT_EQ(result->used_cgroup_kill, expect_cgroup_kill);
        EXPECT_EQ(result->killed, 3u);
        std::sort(pids.begin(), pids.end());
        std::sort(hooked.begin(), hooked.end());
        EXPECT_EQ(hooked, pids);
        for (size_t i = 0; i < pidfds.size(); i++) {
            EXPECT_TRUE(exited_within(pidfds[i].get(), 2 * kSecond)) << "pid " << pids[i];
        }
        EXPECT_TRUE(alive(tree_.holder)) << "the namespace died: the test proves nothing";
        EXPECT_TRUE(exists("/proc/" + std::to_string(tree_.init)));
        EXPECT_FALSE(exists(rec.path)) << "the cgroup directory was left behind";
        EXPECT_FALSE(rec.dir.valid());
    }

    // Creates a v1 freezer cgroup for pid and freezes it, so SIGKILL cannot end pid.
    void freeze_in_v1(pid_t pid) {
        struct statfs fs {};
        if (statfs("/sys/fs/cgroup/freezer", &fs) < 0 || fs.f_type != CGROUP_SUPER_MAGIC) {
            GTEST_SKIP() << "no cgroup v1 freezer at /sys/fs/cgroup/freezer";
        }
        ASSERT_EQ(mkdir(freezer_.c_str(), 0755), 0) << strerror(errno);
        ASSERT_TRUE(write_text(freezer_ + "/cgroup.procs", std::to_string(pid)));
        ASSERT_TRUE(write_text(freezer_ + "/freezer.state", "FROZEN"));
        ASSERT_TRUE(wait_for_text(freezer_ + "/freezer.state", "FROZEN", 5 * kSecond));
    }

    std::string parent_;
    bool created_ = false;
    Config::Cgroup cfg_;
    Tree tree_;
    std::string freezer_; // a v1 freezer cgroup, made only by tests that need one
    pid_t watchdog_ = -1;
    std::vector<pid_t> children_;
};

// On a cgroup2 system the mount found is a cgroup2 file system.
TEST(CgroupMount, FindsCgroup2Mount) {
    auto mount = find_cgroup2_mount();
    if (!mount && mount.error().code == ENOENT) GTEST_SKIP() << mount.error().message;
    ASSERT_TRUE(mount.ok()) << mount.error().message;

    struct statfs fs {};
    ASSERT_EQ(statfs(mount->c_str(), &fs), 0);
    EXPECT_EQ(fs.f_type, CGROUP2_SUPER_MAGIC);
}

// A parent that is a plain directory is refused with a message naming it.
TEST(CgroupParent, RejectsPlainDirectory) {
    Config::Cgroup cfg;
    cfg.parent = "/tmp";
    auto rec = cgroup_create_for(cfg, getpid());
    ASSERT_FALSE(rec.ok());
    EXPECT_EQ(rec.error().code, EMEDIUMTYPE);
    EXPECT_NE(rec.error().message.find("\"/tmp\""), std::string::npos) << rec.error().message;
}

// A parent in a cgroup v1 hierarchy is refused too, before anything is created.
TEST(CgroupParent, RejectsCgroupV1Hierarchy) {
    struct statfs fs {};
    if (statfs("/sys/fs/cgroup/memory", &fs) < 0 || fs.f_type != CGROUP_SUPER_MAGIC) {
        GTEST_SKIP() << "no cgroup v1 hierarchy at /sys/fs/cgroup/memory";
    }
    Status s = cgroup_check_parent("/sys/fs/cgroup/memory");
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.error().code, EMEDIUMTYPE);
    EXPECT_NE(s.error().message.find("/sys/fs/cgroup/memory"), std::string::npos);
}

// A parent that does not exist is reported as ENOENT with its path.
TEST(CgroupParent, ReportsMissingParent) {
    Status s = cgroup_check_parent("/nonexistent/sessreap-parent");
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.error().code, ENOENT);
    EXPECT_NE(s.error().message.find("/nonexistent/sessreap-parent"), std::string::npos);
}

// The pid lands in a new leaf cgroup under the parent, as /proc/PID/cgroup shows.
TEST_F(CgroupTest, MovesPidIntoNewCgroup) {
    pid_t pid = start_sleeper();
    ASSERT_GT(pid, 0);

    auto rec = cgroup_create_for(cfg_, pid);
    ASSERT_TRUE(rec.ok()) << rec.error().message;

    EXPECT_EQ(rec->path.rfind(parent_ + "/sessreap-" + std::to_string(pid) + "-", 0), 0u);
    std::string name = rec->path.substr(rec->path.rfind('/') + 1);
    std::string line = read_text("/proc/" + std::to_string(pid) + "/cgroup");
    EXPECT_NE(line.find("0::/" + parent_.substr(parent_.rfind('/') + 1) + "/" + name + "\n"),
              std::string::npos)
        << line;
    auto pids = cgroup_list_pids(rec->dir.get());
    ASSERT_TRUE(pids.ok());
    EXPECT_EQ(*pids, std::vector<pid_t>{pid});
}

// With a controller on in the parent's subtree_control the pid still moves into the leaf.
TEST_F(CgroupTest, MovesPidUnderParentWithControllers) {
    std::istringstream available(read_text(parent_ + "/cgroup.controllers"));
    std::string controller;
    if (!(available >> controller)) GTEST_SKIP() << "no controller reaches " << parent_;
    ASSERT_TRUE(write_text(parent_ + "/cgroup.subtree_control", "+" + controller));
    pid_t pid = start_sleeper();
    ASSERT_GT(pid, 0);
    ASSERT_FALSE(write_text(parent_ + "/cgroup.procs", std::to_string(pid)))
        << "the parent took a process: the rule this test is about does not apply";

    auto rec = cgroup_create_for(cfg_, pid);
    ASSERT_TRUE(rec.ok()) << rec.error().message;

    auto pids = cgroup_list_pids(rec->dir.get());
    ASSERT_TRUE(pids.ok());
    EXPECT_EQ(*pids, std::vector<pid_t>{pid});
}

// A pid that is gone is reported as ESRCH and leaves no cgroup behind.
TEST_F(CgroupTest, FailsCleanlyForVanishedPid) {
    pid_t pid = start_sleeper();
    ASSERT_GT(pid, 0);
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
    children_.clear();

    auto rec = cgroup_create_for(cfg_, pid);
    ASSERT_FALSE(rec.ok());
    EXPECT_EQ(rec.error().code, ESRCH) << rec.error().message;

    int subdirs = 0;
    for (DIR* d = opendir(parent_.c_str()); d; d = (closedir(d), nullptr)) {
        while (dirent* e = readdir(d)) subdirs += e->d_type == DT_DIR && e->d_name[0] != '.';
    }
    EXPECT_EQ(subdirs, 0);
}

// cgroup.kill ends the workload, its setsid escapee and its double-forked daemon.
TEST_F(CgroupTest, KillsEscapeesWithCgroupKill) {
    if (!exists(parent_ + "/cgroup.kill")) GTEST_SKIP() << "no cgroup.kill (Linux < 5.14)";
    kill_tree_and_check(CgroupKill::automatic, SIGKILL, true);
}

// The forced fallback (freeze, signal each pid, thaw) ends the same tree.
TEST_F(CgroupTest, KillsEscapeesByFreezingWhenForced) {
    kill_tree_and_check(CgroupKill::freeze, SIGKILL, false);
}

// A signal other than SIGKILL takes the fallback, since cgroup.kill only sends SIGKILL.
TEST_F(CgroupTest, SendsOtherSignalsOneByOne) {
    kill_tree_and_check(CgroupKill::automatic, SIGTERM, false);
}

// cgroup.kill also ends processes in nested cgroups, which are removed as well.
TEST_F(CgroupTest, KillsAndRemovesNestedCgroups) {
    if (!exists(parent_ + "/cgroup.kill")) GTEST_SKIP() << "no cgroup.kill (Linux < 5.14)";
    kill_tree_and_check(CgroupKill::automatic, SIGKILL, true, true);
}

// The fallback finds processes in nested cgroups and removes those cgroups too.
TEST_F(CgroupTest, FreezesAndRemovesNestedCgroups) {
    kill_tree_and_check(CgroupKill::freeze, SIGKILL, false, true);
}

// A cgroup removed by someone else reads as empty and tears down as zero processes.
TEST_F(CgroupTest, TreatsVanishedCgroupAsEmpty) {
    pid_t pid = start_sleeper();
    ASSERT_GT(pid, 0);
    auto rec = cgroup_create_for(cfg_, pid);
    ASSERT_TRUE(rec.ok()) << rec.error().message;
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
    children_.clear();
    ASSERT_EQ(rmdir(rec->path.c_str()), 0) << strerror(errno);

    auto pids = cgroup_list_pids(rec->dir.get());
    ASSERT_TRUE(pids.ok()) << pids.error().message;
    EXPECT_TRUE(pids->empty());
    for (CgroupKill mode : {CgroupKill::automatic, CgroupKill::freeze}) {
        CgroupRecord again{rec->path, UniqueFd(fcntl(rec->dir.get(), F_DUPFD_CLOEXEC, 0))};
        auto result = cgroup_kill_and_remove(again, SIGKILL, now_ns() + kSecond, mode);
        ASSERT_TRUE(result.ok()) << result.error().message;
        EXPECT_EQ(result->killed, 0u);
    }
    auto forgot = cgroup_forget(*rec);
    ASSERT_TRUE(forgot.ok()) << forgot.error().message;
    EXPECT_TRUE(forgot->removed);
}

// Forgetting a cgroup that still holds a process leaves both alone and says so.
TEST_F(CgroupTest, ForgetLeavesPopulatedCgroup) {
    pid_t pid = start_sleeper();
    ASSERT_GT(pid, 0);
    auto rec = cgroup_create_for(cfg_, pid);
    ASSERT_TRUE(rec.ok()) << rec.error().message;

    auto forgot = cgroup_forget(*rec);
    ASSERT_TRUE(forgot.ok()) << forgot.error().message;

    EXPECT_FALSE(forgot->removed);
    EXPECT_EQ(forgot->left, 1u);
    EXPECT_TRUE(alive(pid));
    EXPECT_TRUE(exists(rec->path));
}

// Forgetting a cgroup whose processes have exited removes it.
TEST_F(CgroupTest, ForgetRemovesEmptyCgroup) {
    pid_t pid = start_sleeper();
    ASSERT_GT(pid, 0);
    auto rec = cgroup_create_for(cfg_, pid);
    ASSERT_TRUE(rec.ok()) << rec.error().message;
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
    children_.clear();

    auto forgot = cgroup_forget(*rec);
    ASSERT_TRUE(forgot.ok()) << forgot.error().message;

    EXPECT_TRUE(forgot->removed);
    EXPECT_FALSE(exists(rec->path));
}

// A process SIGKILL cannot end (v1-frozen) fails teardown at the deadline, naming it.
TEST_F(CgroupTest, StopsAtDeadlineWithUnkillableProcess) {
    pid_t pid = start_sleeper();
    ASSERT_GT(pid, 0);
    auto rec = cgroup_create_for(cfg_, pid);
    ASSERT_TRUE(rec.ok()) << rec.error().message;
    ASSERT_NO_FATAL_FAILURE(freeze_in_v1(pid));
    if (IsSkipped()) return;

    for (CgroupKill mode : {CgroupKill::automatic, CgroupKill::freeze}) {
        SCOPED_TRACE(mode == CgroupKill::automatic ? "automatic" : "freeze");
        int64_t deadline = now_ns() + 300 * kMs;
        auto result = cgroup_kill_and_remove(*rec, SIGKILL, deadline, mode);
        int64_t late = now_ns() - deadline;

        ASSERT_FALSE(result.ok());
        EXPECT_EQ(result.error().code, ETIMEDOUT);
        EXPECT_NE(result.error().message.find(" " + std::to_string(pid)), std::string::npos)
            << result.error().message;
        EXPECT_LT(late, 50 * kMs) << "blocked past the deadline";
        EXPECT_TRUE(exists(rec->path));
        EXPECT_EQ(read_text(rec->path + "/cgroup.freeze"), "0\n") << "left frozen";
    }

    // Once thawed, the pending SIGKILL ends it and teardown succeeds.
    write_text(freezer_ + "/freezer.state", "THAWED");
    auto result =
        cgroup_kill_and_remove(*rec, SIGKILL, now_ns() + 5 * kSecond, CgroupKill::automatic);
    ASSERT_TRUE(result.ok()) << result.error().message;
    EXPECT_FALSE(exists(rec->path));
}

} // namespace
} // namespace sessreap
