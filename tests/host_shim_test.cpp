// SPDX-License-Identifier: LGPL-2.1-or-later
// sessreap-host run, as a user runs it: real commands, real escapees.
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <string>
#include <vector>

#include <sys/stat.h>

#include <gtest/gtest.h>

#include "cgroup.h"
#include "process.h"

using namespace testing_support;

namespace {

const std::string kHost = SESSREAP_HOST_PATH;
const std::string kModule = SESSREAP_MODULE_PATH;
const std::string kEscapees = std::string(SESSREAP_TEST_DIR) + "/scripts/escapees.sh";

class HostShim : public ::testing::Test {
protected:
    void SetUp() override {
        char tmpl[] = "/tmp/sessreap-shim-XXXXXX";
        ASSERT_NE(mkdtemp(tmpl), nullptr);
        dir_ = tmpl;
        pidfile_ = dir_ + "/pids";
    }

    void TearDown() override {
        for (pid_t pid : read_pids()) kill_own(pid);
        std::system(("rm -rf '" + dir_ + "'").c_str());
    }

    std::vector<pid_t> read_pids() {
        std::ifstream in(pidfile_);
        std::vector<pid_t> pids;
        for (pid_t pid; in >> pid;) pids.push_back(pid);
        return pids;
    }

    std::string dir_;
    std::string pidfile_;
};

} // namespace

// run leaves no process of the command's session alive, counts what it
// killed per layer, and exits with the command's status.
TEST_F(HostShim, ReapsEscapeesAndPassesExitStatus) {
    REQUIRE_PRIVATE_NAMESPACE();
    CommandResult res = run_command({kHost, "run", "--module", kModule, "--grace", "300", "--",
                                     "sh", kEscapees, pidfile_, "7"});

    EXPECT_EQ(res.status, 7) << res.err;
    std::vector<pid_t> pids = read_pids();
    ASSERT_EQ(pids.size(), 7u) << res.err;
    for (pid_t pid : pids) EXPECT_FALSE(alive(pid)) << pid;
    EXPECT_NE(res.err.find("exited with status 7"), std::string::npos) << res.err;
    EXPECT_NE(res.err.find("signalled 7 processes (group 2, sweep 5)"), std::string::npos)
        << res.err;
    EXPECT_NE(res.err.find("no survivors"), std::string::npos) << res.err;
}

// --verbose logs every signal sent, with pid, name and layer.
TEST_F(HostShim, VerboseLogsEverySignal) {
    REQUIRE_PRIVATE_NAMESPACE();
    CommandResult res = run_command({kHost, "run", "--module", kModule, "--verbose", "--grace",
                                     "300", "--", "sh", kEscapees, pidfile_});
    ASSERT_EQ(res.status, 0) << res.err;
    for (pid_t pid : read_pids())
        EXPECT_NE(res.err.find("Sent SIGTERM to pid " + std::to_string(pid) + " ("),
                  std::string::npos)
            << pid << "\n"
            << res.err;
    EXPECT_NE(res.err.find("Sent SIGKILL to pid"), std::string::npos) << res.err;
    EXPECT_NE(res.err.find("layer sweep"), std::string::npos);
    EXPECT_NE(res.err.find("layer group"), std::string::npos);
}

// A command killed by signal N makes the shim exit with 128+N.
TEST_F(HostShim, ExitsWith128PlusSignal) {
    REQUIRE_PRIVATE_NAMESPACE();
    CommandResult res =
        run_command({kHost, "run", "--module", kModule, "--", "sh", "-c", "kill -USR1 $$"});
    EXPECT_EQ(res.status, 128 + SIGUSR1) << res.err;
    EXPECT_NE(res.err.find("was killed by SIGUSR1"), std::string::npos) << res.err;
}

// SIGTERM sent to the shim reaches the command, and the session is torn down.
TEST_F(HostShim, ForwardsTerminationSignal) {
    REQUIRE_PRIVATE_NAMESPACE();
    pid_t host = fork();
    if (host == 0) {
        execl(kHost.c_str(), kHost.c_str(), "run", "--module", kModule.c_str(), "--grace", "300",
              "--", "sh", "-c",
              ("sh '" + kEscapees + "' '" + pidfile_ + "'; exec sleep 1000").c_str(), nullptr);
        _exit(127);
    }
    for (int i = 0; i < 200 && read_pids().size() < 7; ++i) usleep(20'000);
    ASSERT_EQ(read_pids().size(), 7u);

    kill(host, SIGTERM); // our own child
    int status = 0;
    ASSERT_EQ(waitpid(host, &status, 0), host);
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 128 + SIGTERM);
    for (pid_t pid : read_pids()) EXPECT_FALSE(alive(pid)) << pid;
}

// A command that does not exist exits 127 with a message naming it.
TEST_F(HostShim, ReportsMissingCommand) {
    REQUIRE_PRIVATE_NAMESPACE();
    CommandResult res =
        run_command({kHost, "run", "--module", kModule, "--", "/nonexistent/sessreap-cmd"});
    EXPECT_EQ(res.status, 127);
    EXPECT_NE(res.err.find("Failed to run '/nonexistent/sessreap-cmd'"), std::string::npos)
        << res.err;
}

// --help and --version work; bad usage exits 2 with a message.
TEST(HostShimUsage, HelpVersionAndBadOptions) {
    CommandResult help = run_command({kHost, "--help"});
    EXPECT_EQ(help.status, 0);
    EXPECT_NE(help.out.find("sessreap-host run"), std::string::npos);

    setenv("SESSREAP_MODULE", kModule.c_str(), 1);
    CommandResult version = run_command({kHost, "--version"});
    unsetenv("SESSREAP_MODULE");
    EXPECT_EQ(version.status, 0);
    EXPECT_NE(version.out.find("(ABI 1."), std::string::npos) << version.out;

    CommandResult bad_grace = run_command({kHost, "run", "--grace", "2s", "--", "true"});
    EXPECT_EQ(bad_grace.status, 2);
    EXPECT_NE(bad_grace.err.find("--grace: expected milliseconds"), std::string::npos);
    EXPECT_EQ(run_command({kHost, "run"}).status, 2);
    EXPECT_EQ(run_command({kHost, "frobnicate"}).status, 2);
    CommandResult bad_module =
        run_command({kHost, "run", "--module", "/nonexistent.so", "--", "true"});
    EXPECT_EQ(bad_module.status, 125);
    EXPECT_NE(bad_module.err.find("Failed to load module"), std::string::npos);
}

// A sessreap-host killed with SIGKILL leaves its command's session running;
// reap-stale tears down exactly that session, and a decoy lives on.
TEST_F(HostShim, ReapStaleKillsWhatDeadHostLeftAndOnlyThat) {
    REQUIRE_PRIVATE_NAMESPACE();
    std::string state = R"({"state": {"dir": ")" + dir_ + R"(/state"}})";
    PidChannel ch;
    HeldChild decoy([&] {
        fork_sleeper(ch, true, "sleep");
        for (;;) pause();
    });
    decoy.release();
    std::vector<pid_t> decoys = ch.collect(1);
    ASSERT_EQ(decoys.size(), 1u);

    pid_t host = fork();
    if (host == 0) {
        execl(kHost.c_str(), kHost.c_str(), "run", "--module", kModule.c_str(), "--config-json",
              state.c_str(), "--", "sh", "-c",
              ("sh '" + kEscapees + "' '" + pidfile_ + "'; exec sleep 1000").c_str(), nullptr);
        _exit(127);
    }
    for (int i = 0; i < 200 && read_pids().size() < 7; ++i) usleep(20'000);
    ASSERT_EQ(read_pids().size(), 7u);
    kill(host, SIGKILL); // our own child: the host dies without tearing down
    waitpid(host, nullptr, 0);
    for (pid_t pid : read_pids()) ASSERT_TRUE(alive(pid)) << pid;

    CommandResult res =
        run_command({kHost, "reap-stale", "--module", kModule, "--config-json", state});
    EXPECT_EQ(res.status, 0) << res.err;
    EXPECT_NE(res.err.find("reaped 1 stale launch record(s)"), std::string::npos) << res.err;
    for (pid_t pid : read_pids()) EXPECT_FALSE(alive(pid)) << pid;
    EXPECT_TRUE(alive(decoys[0]));
    EXPECT_TRUE(alive(decoy.pid()));

    // The record is gone: a second run finds nothing.
    res = run_command({kHost, "reap-stale", "--module", kModule, "--config-json", state});
    EXPECT_EQ(res.status, 0);
    EXPECT_NE(res.err.find("no stale launch records"), std::string::npos) << res.err;
    kill_own(decoys[0]);
}

namespace {

// A cgroup2 directory of the test's own, removed (with what is left in it)
// when the test ends.
struct TestCgroup {
    std::string path;
    TestCgroup() {
        auto mount = sessreap::find_cgroup2_mount();
        if (!mount) return;
        std::string dir = mount.value() + "/" + unique_name("sessreap-shim-test");
        if (mkdir(dir.c_str(), 0755) == 0) path = dir;
    }
    ~TestCgroup() {
        if (path.empty()) return;
        std::ofstream(path + "/cgroup.kill") << 1;
        std::system(("find '" + path + "' -depth -type d -exec rmdir {} + 2>/dev/null").c_str());
    }
};

} // namespace

// With the cgroup backstop, a setsid escapee and a double-forked daemon that
// left the session die through cgroup.kill; the child cgroup is removed.
TEST_F(HostShim, CgroupBackstopKillsDaemonsThatLeftTheSession) {
    REQUIRE_PRIVATE_NAMESPACE();
    TestCgroup cg;
    if (cg.path.empty()) GTEST_SKIP() << "no writable cgroup2 mount";
    for (const char* mode : {"auto", "freeze"}) {
        std::string config = R"({"cgroup": {"parent": ")" + cg.path + R"(", "kill": ")" + mode +
                             R"("}, "teardown": {"grace_ms": 300}})";
        CommandResult res = run_command(
            {kHost, "run", "--module", kModule, "--verbose", "--config-json", config, "--", "sh",
             std::string(SESSREAP_TEST_DIR) + "/scripts/daemons.sh", pidfile_});
        EXPECT_EQ(res.status, 0) << res.err;
        std::vector<pid_t> pids = read_pids();
        ASSERT_EQ(pids.size(), 3u) << res.err;
        for (pid_t pid : pids) EXPECT_TRUE(wait_gone(pid, 2000)) << mode << " " << pid;
        EXPECT_NE(res.err.find("layer cgroup"), std::string::npos) << res.err;
        if (std::string(mode) == "auto") {
            EXPECT_NE(res.err.find("cgroup.kill"), std::string::npos) << res.err;
        }
        CommandResult left = run_command({"find", cg.path, "-mindepth", "1", "-type", "d"});
        EXPECT_EQ(left.out, "") << "child cgroup not removed";
    }
}

// Control for the test above: without the cgroup (or scope) layer, the
// daemons that left the session survive the group kill and the sweep.
TEST_F(HostShim, DaemonsThatLeftTheSessionSurviveWithoutOuterLayers) {
    REQUIRE_PRIVATE_NAMESPACE();
    CommandResult res =
        run_command({kHost, "run", "--module", kModule, "--grace", "300", "--", "sh",
                     std::string(SESSREAP_TEST_DIR) + "/scripts/daemons.sh", pidfile_});
    EXPECT_EQ(res.status, 0) << res.err;
    std::vector<pid_t> pids = read_pids();
    ASSERT_EQ(pids.size(), 3u);
    int survivors = 0;
    for (pid_t pid : pids) survivors += alive(pid);
    EXPECT_EQ(survivors, 2) << "the setsid escapee and the daemon live; the pgrp escapee dies";
}

// With systemd.scope on and no bus at all, launch and teardown still work
// through the group and sweep layers, and the failure is said once.
TEST_F(HostShim, ScopeLayerDegradesWithoutBus) {
    REQUIRE_PRIVATE_NAMESPACE();
    std::string config = R"({"systemd": {"scope": "create", "bus": "system"}})";
    CommandResult res = run_command({kHost, "run", "--module", kModule, "--grace", "300",
                                     "--config-json", config, "--", "sh", kEscapees, pidfile_});
    EXPECT_EQ(res.status, 0) << res.err;
    for (pid_t pid : read_pids()) EXPECT_FALSE(alive(pid)) << pid;
    EXPECT_NE(res.err.find("skipping the scope layer"), std::string::npos) << res.err;
    size_t first = res.err.find("skipping the scope layer");
    EXPECT_EQ(res.err.find("skipping the scope layer", first + 1), std::string::npos);
    EXPECT_NE(res.err.find("signalled 7 processes (group 2, sweep 5)"), std::string::npos);
}

// With an exclusion rule in force the cgroup layer signals one by one: a
// daemon that left the session and matches the rule lives, its sibling dies,
// and the cgroup that still holds it is left in place.
TEST_F(HostShim, CgroupLayerHonoursExclusions) {
    REQUIRE_PRIVATE_NAMESPACE();
    TestCgroup cg;
    if (cg.path.empty()) GTEST_SKIP() << "no writable cgroup2 mount";
    std::string keepme = dir_ + "/keepme";
    ASSERT_EQ(run_command({"cp", "/bin/sleep", keepme}).status, 0);
    std::string script =
        ": > '" + pidfile_ +
        "'\n"
        "setsid sh -c 'echo $$ >> \"$1\"; exec \"$2\" 1000' k '" +
        pidfile_ + "' '" + keepme +
        "' </dev/null >/dev/null 2>&1 &\n"
        "setsid sh -c 'echo $$ >> \"$1\"; exec sleep 1000' s '" +
        pidfile_ +
        "' </dev/null >/dev/null 2>&1 &\n"
        "while [ \"$(wc -l < '" +
        pidfile_ +
        "')\" -lt 2 ]; do sleep 0.05; done\n"
        "for p in $(cat '" +
        pidfile_ +
        "'); do\n"
        "  while ! grep -qx -e keepme -e sleep /proc/$p/comm; do sleep 0.01; done\n"
        "done\n";
    std::string config = R"({"cgroup": {"parent": ")" + cg.path +
                         R"("}, "exclude": [{"comm": "keepme"}], "teardown": {"grace_ms": 300}})";
    CommandResult res = run_command({kHost, "run", "--module", kModule, "--verbose",
                                     "--config-json", config, "--", "sh", "-c", script});
    EXPECT_EQ(res.status, 0) << res.err;
    std::vector<pid_t> pids = read_pids();
    ASSERT_EQ(pids.size(), 2u) << res.err;
    pid_t kept = comm_of(pids[0]) == "keepme" ? pids[0] : pids[1];
    pid_t other = kept == pids[0] ? pids[1] : pids[0];
    EXPECT_TRUE(alive(kept)) << res.err;
    EXPECT_TRUE(wait_gone(other, 2000)) << res.err;
    EXPECT_NE(res.err.find("Sparing pid " + std::to_string(kept) + " (keepme)"), std::string::npos)
        << res.err;
    EXPECT_NE(res.err.find("in place: it holds 1 process(es)"), std::string::npos) << res.err;
}

// --config-json reaches the module as written: an error's column points
// into the text the user typed.
TEST(HostShimUsage, ConfigJsonErrorsPointIntoTheGivenText) {
    CommandResult res = run_command({kHost, "run", "--module", kModule, "--config-json",
                                     R"({"teardown":  {"grace_ms": "x"}})", "--", "true"});
    EXPECT_EQ(res.status, 125);
    EXPECT_NE(res.err.find("<inline>:1:28: teardown.grace_ms: expected a non-negative integer"),
              std::string::npos)
        << res.err;
}
