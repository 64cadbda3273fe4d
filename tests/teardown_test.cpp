// SPDX-License-Identifier: LGPL-2.1-or-later
// Teardown against real process trees, through the dlopen'd module.
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>

#include <gtest/gtest.h>

#include "log.h"
#include "process.h"
#include "procfs.h"
#include "teardown.h"

using namespace testing_support;

namespace {

sessreap_report new_report(sessreap_survivor* survivors = nullptr, uint32_t cap = 0) {
    sessreap_report r{};
    r.size = sizeof r;
    r.survivors = survivors;
    r.survivors_cap = cap;
    return r;
}

class Teardown : public ::testing::Test {
protected:
    void SetUp() override { REQUIRE_PRIVATE_NAMESPACE(); }

    // Each test signals only the processes it forks here, in its own PID
    // namespace; anything left is killed by pid at the end.
    void TearDown() override {
        for (pid_t pid : created_) kill_own(pid);
    }

    std::vector<pid_t> track(std::vector<pid_t> pids) {
        created_.insert(created_.end(), pids.begin(), pids.end());
        return pids;
    }

    Module module_;
    std::vector<pid_t> created_;
};

} // namespace

// Group members, setpgid escapees and their grandchildren are all gone.
TEST_F(Teardown, KillsGroupMembersEscapeesAndGrandchildren) {
    PidChannel ch;
    HeldChild leader([&] {
        fork_sleeper(ch, false);
        fork_sleeper(ch, false);
        for (int i = 0; i < 2; ++i) {
            if (fork() == 0) {
                setpgid(0, 0);
                ch.report(getpid());
                fork_sleeper(ch, false); // grandchild, in the escapee's group
                for (;;) pause();
            }
        }
        for (;;) pause();
    });
    TestHandle th(module_, R"({"teardown": {"grace_ms": 2000}})");
    ASSERT_EQ(module_.launch(th.h, leader.pid(), nullptr), 0) << module_.last_error();
    leader.release();
    std::vector<pid_t> pids = track(ch.collect(6));
    ASSERT_EQ(pids.size(), 6u);

    sessreap_report r = new_report();
    ASSERT_EQ(module_.teardown(th.h, leader.pid(), &r), 0) << module_.last_error();

    for (pid_t pid : pids) EXPECT_FALSE(alive(pid)) << pid;
    EXPECT_FALSE(alive(leader.pid()));
    EXPECT_EQ(r.signalled[SESSREAP_LAYER_GROUP], 3u); // leader + 2 sleepers
    EXPECT_EQ(r.signalled[SESSREAP_LAYER_SWEEP], 4u); // 2 escapees + 2 grandchildren
    EXPECT_EQ(r.survivors_total, 0u);
    EXPECT_EQ(r.guards, 0u);
    EXPECT_TRUE(th.logged("Sent SIGTERM to pid " + std::to_string(pids[2])));
}

// A process ignoring SIGTERM gets SIGKILL once the grace period is over.
TEST_F(Teardown, KillsTermIgnoringProcessAfterGrace) {
    PidChannel ch;
    HeldChild leader([&] {
        if (fork() == 0) {
            setpgid(0, 0);
            fork_sleeper(ch, false, "stubborn", true);
            for (;;) pause();
        }
        for (;;) pause();
    });
    TestHandle th(module_, R"({"teardown": {"grace_ms": 300}})");
    ASSERT_EQ(module_.launch(th.h, leader.pid(), nullptr), 0) << module_.last_error();
    leader.release();
    std::vector<pid_t> pids = track(ch.collect(1));
    ASSERT_EQ(pids.size(), 1u);

    sessreap_report r = new_report();
    ASSERT_EQ(module_.teardown(th.h, leader.pid(), &r), 0) << module_.last_error();

    EXPECT_FALSE(alive(pids[0]));
    EXPECT_GE(r.elapsed_us, 300'000u); // it did wait out the grace period
    EXPECT_TRUE(th.logged("Sent SIGKILL to pid " + std::to_string(pids[0]) + " (stubborn)"));
    EXPECT_GE(r.passes, 2u);
}

// A leader that already exited (a zombie its parent has not reaped) and
// members that exit by themselves mid-sweep are not survivors.
TEST_F(Teardown, CountsZombiesAndExitingProcessesAsGone) {
    PidChannel ch;
    HeldChild leader([&] {
        for (int i = 0; i < 40; ++i) {
            if (fork() == 0) {
                if (i % 2) setpgid(0, 0);
                ch.report(getpid());
                signal(SIGTERM, SIG_IGN); // they must leave on their own
                usleep(useconds_t(1000 * (i % 20)));
                _exit(0);
            }
        }
        _exit(0); // the leader exits at once and stays a zombie of the test
    });
    TestHandle th(module_, R"({"teardown": {"grace_ms": 5000}})");
    ASSERT_EQ(module_.launch(th.h, leader.pid(), nullptr), 0);
    leader.release();
    track(ch.collect(1));

    sessreap_report r = new_report();
    ASSERT_EQ(module_.teardown(th.h, leader.pid(), &r), 0) << module_.last_error();
    EXPECT_EQ(r.survivors_total, 0u);
    EXPECT_TRUE(live_session_members(leader.pid()).empty());
    EXPECT_NE(leader.reap(), -1); // the leader was a zombie, and is still ours to reap
}

// Processes that keep forking (escaping their group each time) for two
// seconds are all gone when teardown returns.
TEST_F(Teardown, ConvergesOnForkStorm) {
    HeldChild leader([&] {
        timespec start{};
        clock_gettime(CLOCK_MONOTONIC, &start);
        for (int chain = 0; chain < 6; ++chain) {
            if (fork() != 0) continue;
            // Each link forks the next, escapes its group, and exits: the pid
            // keeps moving. Half the links leave a sleeping child behind.
            for (int link = 0;; ++link) {
                timespec now{};
                clock_gettime(CLOCK_MONOTONIC, &now);
                if (now.tv_sec - start.tv_sec >= 2 || link > 20'000)
                    for (;;) pause();
                pid_t next = fork();
                if (next > 0) _exit(0);
                if (next < 0)
                    for (;;) pause();
                setpgid(0, 0);
                if (link % 2 == 0 && link < 200 && fork() == 0)
                    for (;;) pause();
            }
        }
        for (;;) pause();
    });
    TestHandle th(module_, R"({"teardown": {"grace_ms": 200}})");
    ASSERT_EQ(module_.launch(th.h, leader.pid(), nullptr), 0);
    leader.release();
    usleep(500'000); // let the storm build up

    sessreap_report r = new_report();
    ASSERT_EQ(module_.teardown(th.h, leader.pid(), &r), 0) << module_.last_error();
    EXPECT_EQ(r.survivors_total, 0u);
    EXPECT_TRUE(live_session_members(leader.pid()).empty());
    EXPECT_GT(r.signalled[SESSREAP_LAYER_SWEEP], 6u);
}

// A process in another session with the very same command name lives on.
TEST_F(Teardown, SparesDecoyWithSameNameInOtherSession) {
    PidChannel ch;
    HeldChild decoy([&] {
        prctl(PR_SET_NAME, "worker");
        ch.report(getpid());
        for (;;) pause();
    });
    decoy.release();
    HeldChild leader([&] {
        fork_sleeper(ch, true, "worker");
        for (;;) pause();
    });
    TestHandle th(module_, R"({"teardown": {"grace_ms": 1000}})");
    ASSERT_EQ(module_.launch(th.h, leader.pid(), nullptr), 0);
    leader.release();
    std::vector<pid_t> pids = track(ch.collect(2));
    ASSERT_EQ(pids.size(), 2u);
    pid_t decoy_pid = decoy.pid(), escapee = pids[0] == decoy_pid ? pids[1] : pids[0];
    ASSERT_EQ(comm_of(decoy_pid), comm_of(escapee));

    sessreap_report r = new_report();
    ASSERT_EQ(module_.teardown(th.h, leader.pid(), &r), 0);
    EXPECT_FALSE(alive(escapee));
    EXPECT_TRUE(alive(decoy_pid));
    EXPECT_FALSE(th.logged("pid " + std::to_string(decoy_pid) + " "));
}

// A child left in the host's session and group is recorded with both layers
// off: teardown signals nothing and says why.
TEST_F(Teardown, SkipsChildInHostSession) {
    HeldChild child(
        [] {
            for (;;) pause();
        },
        /*new_session=*/false);
    TestHandle th(module_);
    ASSERT_EQ(module_.launch(th.h, child.pid(), nullptr), 0);
    EXPECT_TRUE(th.logged("is not a session leader"));
    child.release();

    sessreap_report r = new_report();
    EXPECT_EQ(module_.teardown(th.h, child.pid(), &r), 0);
    EXPECT_TRUE(alive(child.pid()));
    EXPECT_EQ(r.signalled[SESSREAP_LAYER_GROUP] + r.signalled[SESSREAP_LAYER_SWEEP], 0u);
    EXPECT_TRUE(r.guards & SESSREAP_GUARD_SESSION_ID);
    EXPECT_TRUE(r.guards & SESSREAP_GUARD_GROUP_ID);
}

// Records naming session and group 0 or 1, or the host's own, sweep nothing;
// checked on the teardown part directly, with a live process in each.
TEST_F(Teardown, SkipsSessionZeroOneAndHost) {
    HeldChild bystander(
        [] {
            for (;;) pause();
        },
        /*new_session=*/false);
    bystander.release();
    sessreap::Config cfg;
    sessreap::Logger log;
    auto proc = sessreap::open_proc();
    ASSERT_TRUE(proc.ok());
    sessreap::HostIds host = sessreap::HostIds::current();

    for (pid_t id : {pid_t(0), pid_t(1), host.session}) {
        sessreap::LaunchRecord rec;
        rec.pid = bystander.pid();
        rec.session = rec.pgrp = id;
        sessreap::Report report;
        sessreap::TeardownContext ctx{cfg, log, proc->get(), host};
        EXPECT_EQ(sessreap::teardown(ctx, rec, &report), 0);
        EXPECT_EQ(report.passes, 0u) << id;
        EXPECT_TRUE(report.guards & SESSREAP_GUARD_SESSION_ID) << id;
        EXPECT_TRUE(report.guards & SESSREAP_GUARD_GROUP_ID) << id;
    }
    EXPECT_TRUE(alive(bystander.pid()));
    EXPECT_TRUE(alive(1));
}

// Once a torn-down child's session id is free, an unrelated process that
// gets the same pid and calls setsid() is left alone by a late teardown.
TEST_F(Teardown, SkipsRecycledSessionId) {
    HeldChild leader([] { _exit(0); });
    TestHandle th(module_);
    pid_t old_pid = leader.pid();
    ASSERT_EQ(module_.launch(th.h, old_pid, nullptr), 0);
    leader.release();
    ASSERT_NE(leader.reap(), -1); // the pid is now free for reuse

    // Make the kernel hand out old_pid next (this namespace only).
    pid_t reused = -1;
    PidChannel ch;
    for (int attempt = 0; attempt < 20 && reused != old_pid; ++attempt) {
        if (reused > 0) kill_own(reused);
        std::ofstream("/proc/sys/kernel/ns_last_pid") << old_pid - 1;
        reused = fork();
        if (reused == 0) {
            setsid();
            fork_sleeper(ch, false); // a member of the new, unrelated session
            for (;;) pause();
        }
    }
    track({reused});
    ASSERT_EQ(reused, old_pid) << "could not steer the next pid";
    std::vector<pid_t> member = track(ch.collect(1));
    ASSERT_EQ(member.size(), 1u);

    sessreap_report r = new_report();
    EXPECT_EQ(module_.teardown(th.h, old_pid, &r), 0);
    EXPECT_TRUE(r.guards & SESSREAP_GUARD_RECYCLED);
    EXPECT_TRUE(alive(reused));
    EXPECT_TRUE(alive(member[0]));
    EXPECT_TRUE(th.logged("recycled"));
}

// A process still alive when the time cap runs out is listed as a survivor,
// and the call returns at the cap instead of waiting on.
TEST_F(Teardown, ReturnsAtCapWithSurvivorsListed) {
    PidChannel ch;
    HeldChild leader([&] {
        fork_sleeper(ch, true, "stubborn", true);
        for (;;) pause();
    });
    // The cap ends the teardown inside the grace period: the TERM-ignoring
    // escapee is still alive, and must be listed.
    TestHandle th(module_, R"({"teardown": {"grace_ms": 5000, "cap_ms": 300}})");
    ASSERT_EQ(module_.launch(th.h, leader.pid(), nullptr), 0);
    leader.release();
    std::vector<pid_t> pids = track(ch.collect(1));
    ASSERT_EQ(pids.size(), 1u);

    sessreap_survivor survivors[4];
    sessreap_report r = new_report(survivors, 4);
    EXPECT_EQ(module_.teardown(th.h, leader.pid(), &r), -ETIMEDOUT);
    EXPECT_TRUE(r.guards & SESSREAP_GUARD_CAP);
    ASSERT_EQ(r.survivors_total, 1u);
    EXPECT_EQ(survivors[0].pid, pids[0]);
    EXPECT_STREQ(survivors[0].comm, "stubborn");
    EXPECT_TRUE(alive(pids[0]));
}

// A record without a pidfd (as read back from disk) whose leader pid now
// names a process with another start time sweeps nothing.
TEST_F(Teardown, SkipsRecycledSessionIdByStartTime) {
    HeldChild other([] {
        for (;;) pause();
    });
    other.release();
    sessreap::Config cfg;
    sessreap::Logger log;
    auto proc = sessreap::open_proc();
    ASSERT_TRUE(proc.ok());
    sessreap::StatFields st;
    ASSERT_EQ(sessreap::read_stat(proc->get(), other.pid(), &st), 0);

    sessreap::LaunchRecord rec; // no pidfd
    rec.pid = rec.session = rec.pgrp = other.pid();
    rec.starttime = st.starttime - 1; // the recorded leader started earlier
    sessreap::Report report;
    sessreap::TeardownContext ctx{cfg, log, proc->get(), sessreap::HostIds::current()};
    EXPECT_EQ(sessreap::teardown(ctx, rec, &report), 0);
    EXPECT_TRUE(report.guards & SESSREAP_GUARD_RECYCLED);
    EXPECT_TRUE(alive(other.pid()));

    rec.starttime = st.starttime; // the same process: it is torn down
    sessreap::Report again;
    EXPECT_EQ(sessreap::teardown(ctx, rec, &again), 0);
    EXPECT_FALSE(alive(other.pid()));
}

namespace {

// Lowers RLIMIT_NOFILE for the scope of a test, optionally filling every free
// descriptor, and undoes both on destruction.
class FdLimit {
public:
    explicit FdLimit(rlim_t soft) {
        getrlimit(RLIMIT_NOFILE, &old_);
        rlimit low = old_;
        low.rlim_cur = soft;
        setrlimit(RLIMIT_NOFILE, &low);
    }
    ~FdLimit() {
        for (int fd : filler_) close(fd);
        setrlimit(RLIMIT_NOFILE, &old_);
    }
    void fill() {
        for (int fd; (fd = dup(STDERR_FILENO)) >= 0;) filler_.push_back(fd);
    }

private:
    rlimit old_{};
    std::vector<int> filler_;
};

int open_fds() {
    int n = 0;
    if (DIR* d = opendir("/proc/self/fd")) {
        while (readdir(d)) n++;
        closedir(d);
    }
    return n - 3; // ".", ".." and the directory's own descriptor
}

} // namespace

// A host tracking more children than it has descriptors for keeps a quarter
// of its table free: launches past that record no pidfd, and the teardown of
// such a child still kills it.
TEST_F(Teardown, KeepsDescriptorHeadroomWhenTrackingManyChildren) {
    constexpr int kChildren = 100;
    PidChannel ch;
    for (int i = 0; i < kChildren; ++i) {
        if (fork() == 0) {
            setsid();
            ch.report(getpid());
            for (;;) pause();
        }
    }
    ch.close_writer();
    std::vector<pid_t> pids = track(ch.collect(kChildren));
    ASSERT_EQ(pids.size(), size_t(kChildren));
    TestHandle th(module_, R"({"teardown": {"grace_ms": 2000}})");

    int failures = 0, fds = 0, rc = 0;
    {
        FdLimit limit(64);
        for (pid_t pid : pids) failures += module_.launch(th.h, pid, nullptr) < 0;
        fds = open_fds();
        sessreap_report r = new_report();
        rc = module_.teardown(th.h, pids.back(), &r);
    }
    EXPECT_EQ(failures, 0) << module_.last_error();
    EXPECT_LE(fds, 48 + 4); // the module's pidfds stop at three quarters of 64
    EXPECT_EQ(rc, 0) << module_.last_error();
    EXPECT_TRUE(wait_gone(pids.back(), 2000));
    EXPECT_TRUE(alive(pids.front()));
}

// With no descriptor left to read /proc, teardown says it could not see the
// session instead of reporting it gone.
TEST_F(Teardown, ReportsBlindSweepWhenDescriptorsRunOut) {
    PidChannel ch;
    HeldChild leader([&] {
        fork_sleeper(ch, true);
        for (;;) pause();
    });
    TestHandle th(module_, R"({"teardown": {"grace_ms": 2000}})");
    ASSERT_EQ(module_.launch(th.h, leader.pid(), nullptr), 0) << module_.last_error();
    leader.release();
    std::vector<pid_t> pids = track(ch.collect(1));
    ASSERT_EQ(pids.size(), 1u);

    sessreap_report r = new_report();
    int rc = 0;
    {
        FdLimit limit(256);
        limit.fill();
        rc = module_.teardown(th.h, leader.pid(), &r);
    }
    EXPECT_EQ(rc, -EMFILE);
    EXPECT_TRUE(r.guards & SESSREAP_GUARD_UNREADABLE);
    EXPECT_TRUE(alive(pids[0])); // nothing was killed blind, and nothing claimed gone
    EXPECT_TRUE(th.logged("Could not tell whether session"));
}

// With log.level debug, launch and every pass over /proc are logged.
TEST_F(Teardown, LogsPassesAtDebugLevel) {
    HeldChild leader([] {
        for (;;) pause();
    });
    TestHandle th(module_, R"({"log": {"level": "debug"}, "teardown": {"grace_ms": 200}})");
    ASSERT_EQ(module_.launch(th.h, leader.pid(), nullptr), 0);
    leader.release();
    sessreap_report r = new_report();
    EXPECT_EQ(module_.teardown(th.h, leader.pid(), &r), 0);
    EXPECT_TRUE(th.logged("Recorded pid " + std::to_string(leader.pid()) + ": session"));
    EXPECT_TRUE(th.logged("Pass 1 over /proc for session " + std::to_string(leader.pid())));
    TestHandle quiet(module_, R"({"log": {"level": "info"}})");
    EXPECT_FALSE(quiet.logged("Pass "));
}
