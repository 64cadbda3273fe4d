// SPDX-License-Identifier: LGPL-2.1-or-later
// Tests the systemd scope client, against a real manager from tests/systemd/harness.sh.
//
// The client must run inside the manager's PID, mount and cgroup namespaces: the
// PIDs it sends are read there. So each test in the SystemdScope suite, run as
// root, starts one harness manager per test process (shared by its tests), then
// runs itself again inside through "harness.sh exec PID --scope", marked by
// SESSREAP_SYSTEMD_INSIDE=1, and passes only if that run passed and did not skip.
// The --scope puts the inner run in a unit of its own, as a supervisor would be.
#include "systemd_scope.h"

#include "process.h"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#ifndef SESSREAP_TEST_DIR
#error "SESSREAP_TEST_DIR must name the tests directory"
#endif

using namespace std::chrono_literals;
using sessreap::BusKind;
using sessreap::ScopeClient;

namespace {

constexpr auto kTimeout = 2000ms;
constexpr const char* kInsideEnv = "SESSREAP_SYSTEMD_INSIDE";
const std::string kHarness = std::string(SESSREAP_TEST_DIR) + "/systemd/harness.sh";

bool inside() {
    return getenv(kInsideEnv) != nullptr;
}

double seconds_since(int64_t start_ns) {
    return double(sessreap::now_ns() - start_ns) / 1e9;
}

// Runs a shell command and returns its exit status and everything it printed.
// Output goes through a file, not a pipe: a process the command leaves behind
// would hold a pipe open and keep us reading until it dies.
std::pair<int, std::string> run(const std::string& command) {
    char path[] = "/tmp/sessreap-scope-test-out.XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0) return {-1, "mkstemp failed"};
    close(fd);

    int status = system((command + " >" + path + " 2>&1 </dev/null").c_str());
    std::ifstream f(path);
    std::stringstream out;
    out << f.rdbuf();
    unlink(path);
    return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out.str()};
}

// The harness manager of this test process, started on first use, stopped at exit.
class HarnessManager : public ::testing::Environment {
public:
    static HarnessManager* instance;

    pid_t pid() {
        if (pid_ > 0 || !error_.empty()) return pid_;

        char dir[] = "/tmp/sessreap-scope-test.XXXXXX";
        if (!mkdtemp(dir)) {
            error_ = "mkdtemp failed";
            return -1;
        }
        dir_ = dir;
        // --owner: a test process killed on timeout still has its manager stopped.
        auto [status, out] =
            run(kHarness + " start " + dir_ + " --owner " + std::to_string(getpid()));
        if (status != 0) {
            error_ = "harness start failed: " + out;
            return -1;
        }
        pid_ = std::stoi(out);
        return pid_;
    }

    const std::string& error() const { return error_; }

    void TearDown() override {
        if (pid_ > 0) {
            auto [status, out] = run(kHarness + " stop " + std::to_string(pid_));
            if (status != 0) ADD_FAILURE() << "harness stop failed: " << out;
        }
        if (!dir_.empty()) run("rm -rf '" + dir_ + "'");
    }

private:
    pid_t pid_ = -1;
    std::string dir_;
    std::string error_;
};

HarnessManager* HarnessManager::instance =
    static_cast<HarnessManager*>(::testing::AddGlobalTestEnvironment(new HarnessManager));

std::string outside_skip_reason() {
    if (geteuid() != 0) return "needs root: runs a systemd manager in private namespaces";
    if (access("/lib/systemd/systemd", X_OK) != 0) return "systemd is not installed";
    if (system("unshare --pid --fork --mount --cgroup --net true 2>/dev/null") != 0)
        return "cannot unshare pid, mount, cgroup and net namespaces";
    return "";
}

// Runs the current test again inside the harness manager's namespaces.
void rerun_inside() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    pid_t manager = HarnessManager::instance->pid();
    ASSERT_GT(manager, 0) << HarnessManager::instance->error();

    char exe[4096];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    ASSERT_GT(len, 0);
    exe[len] = '\0';

    std::string filter = std::string(info->test_suite_name()) + "." + info->name();
    // timeout: a hang inside fails this test instead of stalling the whole run.
    auto [status, out] =
        run("timeout -k 5 120 " + kHarness + " exec " + std::to_string(manager) +
            " --scope -- env " + kInsideEnv + "=1 SESSREAP_TEST_IN_PRIVATE_NAMESPACE=1 '" + exe +
            "' --gtest_color=no --gtest_filter=" + filter);
    std::cout << out;
    EXPECT_EQ(status, 0) << "the run inside the manager failed";
    EXPECT_NE(out.find("[  PASSED  ] 1 test."), std::string::npos) << "inner test did not pass";
    EXPECT_EQ(out.find("[  SKIPPED ]"), std::string::npos) << "inner test was skipped";
}

// Outside the manager: skip without root, else run this test inside and return.
#define RUN_INSIDE_MANAGER()                                                                       \
    do {                                                                                           \
        if (!inside()) {                                                                           \
            std::string why = outside_skip_reason();                                               \
            if (!why.empty()) GTEST_SKIP() << why;                                                 \
            rerun_inside();                                                                        \
            return;                                                                                \
        }                                                                                          \
    } while (0)

std::string cgroup_of(pid_t pid) {
    std::ifstream f("/proc/" + std::to_string(pid) + "/cgroup");
    std::string line;
    while (std::getline(f, line))
        if (line.rfind("0::", 0) == 0) return line.substr(3);
    return "";
}

// True once `pid` has exited: gone from /proc, or a zombie nobody reaped yet.
bool exited(pid_t pid) {
    std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
    std::string stat;
    if (!std::getline(f, stat)) return true;
    auto paren = stat.rfind(')');
    return paren == std::string::npos || stat.compare(paren + 2, 1, "Z") == 0;
}

bool wait_exited(pid_t pid, std::chrono::milliseconds limit) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (!exited(pid)) {
        if (std::chrono::steady_clock::now() > deadline) return false;
        std::this_thread::sleep_for(10ms);
    }
    return true;
}

// Reaps our child within `limit`; a child still running then is killed and
// reported as not having exited.
bool wait_child(pid_t pid, std::chrono::milliseconds limit, int* status) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    for (;;) {
        pid_t r = waitpid(pid, status, WNOHANG);
        if (r == pid) return true;
        if (r < 0 || std::chrono::steady_clock::now() > deadline) break;
        std::this_thread::sleep_for(10ms);
    }
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
    return false;
}

// Runs argv under `systemd-run --scope --unit=NAME` and waits (bounded) until
// it is in that scope. Returns its pid, or -1 (the child killed and reaped).
pid_t start_in_scope(ScopeClient& client, const std::string& name,
                     const std::vector<std::string>& argv) {
    std::vector<std::string> args = {"systemd-run", "--scope", "--quiet", "--unit=" + name};
    args.insert(args.end(), argv.begin(), argv.end());
    std::vector<char*> cargs;
    for (std::string& a : args) cargs.push_back(a.data());
    cargs.push_back(nullptr);

    pid_t pid = fork();
    if (pid == 0) {
        execvp(cargs[0], cargs.data());
        _exit(127);
    }
    if (pid < 0) return -1;

    // systemd-run moves itself into the scope, then becomes the command.
    for (int i = 0; i < 500; i++) {
        auto unit = client.unit_of_pid(pid);
        if (unit.ok() && *unit == name) return pid;
        std::this_thread::sleep_for(20ms);
    }
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
    return -1;
}

std::unique_ptr<ScopeClient> connect_system() {
    auto client = ScopeClient::connect(BusKind::system, kTimeout);
    EXPECT_TRUE(client.ok()) << client.error().message;
    return client.ok() ? std::move(*client) : nullptr;
}

// A child held at a pipe that, once released, starts a setsid escapee and a
// double-forked daemon, reports their pids, and waits.
struct HeldChild {
    pid_t pid = -1;
    int go = -1;     // write end: releases the child
    int report = -1; // read end: two pids
};

HeldChild fork_held_child() {
    int go[2], report[2];
    if (pipe2(go, O_CLOEXEC) < 0 || pipe2(report, O_CLOEXEC) < 0) return {};

    pid_t pid = fork();
    if (pid == 0) {
        char c;
        if (read(go[0], &c, 1) != 1) _exit(1);
        pid_t pids[2];
        pids[0] = fork();
        if (pids[0] == 0) {
            setsid();
            pause();
            _exit(0);
        }
        int mid[2];
        if (pipe(mid) < 0) _exit(1);
        pid_t middle = fork();
        if (middle == 0) {
            setsid();
            pid_t daemon = fork();
            if (daemon == 0) {
                pause();
                _exit(0);
            }
            (void)!write(mid[1], &daemon, sizeof(daemon));
            _exit(0);
        }
        if (read(mid[0], &pids[1], sizeof(pids[1])) != sizeof(pids[1])) _exit(1);
        (void)!write(report[1], pids, sizeof(pids));
        for (;;) pause();
    }
    close(go[0]);
    close(report[1]);
    return {pid, go[1], report[0]};
}

// Reads the escapee's and the daemon's pids, waiting at most five seconds.
std::vector<pid_t> read_report(int fd) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 5000) != 1) return {};
    pid_t pids[2];
    if (read(fd, pids, sizeof(pids)) != sizeof(pids)) return {};
    return {pids[0], pids[1]};
}

// A dbus-daemon of our own, to be stopped with SIGSTOP.
class PrivateBus {
public:
    PrivateBus() {
        char dir[] = "/tmp/sessreap-bus.XXXXXX";
        if (!mkdtemp(dir)) return;
        dir_ = dir;
        socket_ = dir_ + "/bus";
        pid_ = fork();
        if (pid_ == 0) {
            std::string address = "--address=unix:path=" + socket_;
            execlp("dbus-daemon", "dbus-daemon", "--session", "--nofork", "--nopidfile",
                   address.c_str(), nullptr);
            _exit(127);
        }
        for (int i = 0; i < 500 && access(socket_.c_str(), F_OK) != 0; i++)
            std::this_thread::sleep_for(10ms);
    }
    ~PrivateBus() {
        if (pid_ > 0) {
            kill(pid_, SIGKILL);
            waitpid(pid_, nullptr, 0);
        }
        if (!socket_.empty()) unlink(socket_.c_str());
        if (!dir_.empty()) rmdir(dir_.c_str());
    }

    bool ready() const { return pid_ > 0 && access(socket_.c_str(), F_OK) == 0; }
    std::string address() const { return "unix:path=" + socket_; }
    void stop() { kill(pid_, SIGSTOP); }

private:
    pid_t pid_ = -1;
    std::string dir_;
    std::string socket_;
};

bool have_dbus_daemon() {
    return system("command -v dbus-daemon >/dev/null 2>&1") == 0;
}

} // namespace

// Host-supplied names are escaped for systemd and kept short enough for a unit name.
TEST(ScopeUnitName, EscapesHostNameAndStaysShort) {
    std::string name = sessreap::scope_unit_name("web-1/a b", 42);
    EXPECT_EQ(name.rfind("sessreap-web\\x2d1\\x2fa\\x20b-42-", 0), 0u) << name;
    EXPECT_EQ(name.size(), std::string("sessreap-web\\x2d1\\x2fa\\x20b-42-12345678.scope").size());
    EXPECT_EQ(name.substr(name.size() - 6), ".scope");

    EXPECT_EQ(sessreap::scope_unit_name("", 7).rfind("sessreap-7-", 0), 0u);
    EXPECT_EQ(sessreap::scope_unit_name(".hidden", 7).rfind("sessreap-\\x2ehidden-7-", 0), 0u);
    EXPECT_LT(sessreap::scope_unit_name(std::string(1000, '-'), 99999).size(), 256u);
    EXPECT_NE(sessreap::scope_unit_name("x", 1), sessreap::scope_unit_name("x", 1));
}

// With no socket at the bus address, connect fails at once instead of waiting.
TEST(ScopeClientBus, ConnectFailsQuicklyWithoutSocket) {
    int64_t start = sessreap::now_ns();
    auto client = ScopeClient::connect_address("unix:path=/nonexistent/sessreap/bus",
                                               BusKind::system, kTimeout);
    ASSERT_FALSE(client.ok());
    EXPECT_EQ(client.error().code, ENOENT) << client.error().message;
    EXPECT_LT(seconds_since(start), 5.0);
}

// A bus daemon that accepts the connection but is stopped makes connect time out.
TEST(ScopeClientBus, ConnectTimesOutWhenBusIsStopped) {
    if (!have_dbus_daemon()) GTEST_SKIP() << "dbus-daemon is not installed";
    PrivateBus bus;
    ASSERT_TRUE(bus.ready());
    bus.stop();

    int64_t start = sessreap::now_ns();
    auto client = ScopeClient::connect_address(bus.address(), BusKind::user, 500ms);
    ASSERT_FALSE(client.ok());
    EXPECT_EQ(client.error().code, ETIMEDOUT) << client.error().message;
    EXPECT_LT(seconds_since(start), 0.5 + 5.0); // a hang detector, not a benchmark
}

// Once connected, calls to a bus daemon that stopped answering return ETIMEDOUT.
TEST(ScopeClientBus, CallsTimeOutWhenBusIsStopped) {
    if (!have_dbus_daemon()) GTEST_SKIP() << "dbus-daemon is not installed";
    PrivateBus bus;
    ASSERT_TRUE(bus.ready());
    auto client = ScopeClient::connect_address(bus.address(), BusKind::user, 500ms);
    ASSERT_TRUE(client.ok()) << client.error().message;
    bus.stop();

    int64_t start = sessreap::now_ns();
    auto unit = (*client)->unit_of_pid(getpid());
    ASSERT_FALSE(unit.ok());
    EXPECT_EQ(unit.error().code, ETIMEDOUT) << unit.error().message;

    auto stopped = (*client)->stop_unit("sessreap-x.scope");
    ASSERT_FALSE(stopped.ok());
    EXPECT_EQ(stopped.error().code, ETIMEDOUT) << stopped.error().message;

    auto created = (*client)->create_scope(getpid(), "x", "");
    ASSERT_FALSE(created.ok());
    EXPECT_EQ(created.error().code, ETIMEDOUT) << created.error().message;
    EXPECT_LT(seconds_since(start), 3 * 0.5 + 5.0);
}

// create_scope returns only once the held child sits in the new scope's cgroup.
TEST(SystemdScope, CreatePutsHeldChildInScope) {
    RUN_INSIDE_MANAGER();
    auto client = connect_system();
    ASSERT_TRUE(client);
    HeldChild child = fork_held_child();
    ASSERT_GT(child.pid, 0);

    auto unit = client->create_scope(child.pid, "job one", "");
    ASSERT_TRUE(unit.ok()) << unit.error().message;
    EXPECT_EQ(cgroup_of(child.pid), "/system.slice/" + *unit);
    auto found = client->unit_of_pid(child.pid);
    ASSERT_TRUE(found.ok()) << found.error().message;
    EXPECT_EQ(*found, *unit);

    kill(child.pid, SIGKILL);
    waitpid(child.pid, nullptr, 0);
}

// Stopping the scope kills the child, its setsid escapee and its double-forked daemon.
TEST(SystemdScope, StopKillsChildEscapeeAndDaemon) {
    RUN_INSIDE_MANAGER();
    auto client = connect_system();
    ASSERT_TRUE(client);
    HeldChild child = fork_held_child();
    ASSERT_GT(child.pid, 0);
    auto unit = client->create_scope(child.pid, "escapers", "");
    ASSERT_TRUE(unit.ok()) << unit.error().message;

    ASSERT_EQ(write(child.go, "x", 1), 1);
    std::vector<pid_t> escaped = read_report(child.report);
    ASSERT_EQ(escaped.size(), 2u);
    for (pid_t pid : escaped) EXPECT_EQ(cgroup_of(pid), "/system.slice/" + *unit) << pid;
    auto pids = client->unit_processes(*unit);
    ASSERT_TRUE(pids.ok()) << pids.error().message;
    for (pid_t pid : {child.pid, escaped[0], escaped[1]})
        EXPECT_NE(std::find(pids->begin(), pids->end(), pid), pids->end()) << pid;

    auto stopped = client->stop_unit(*unit);
    ASSERT_TRUE(stopped.ok()) << stopped.error().message;

    int status = 0;
    ASSERT_TRUE(wait_child(child.pid, 5s, &status)) << "the child survived";
    EXPECT_TRUE(WIFSIGNALED(status));
    for (pid_t pid : escaped) EXPECT_TRUE(wait_exited(pid, 5s)) << pid << " survived";
}

// unit_of_pid finds the scope systemd-run made, and stop_unit stops it.
TEST(SystemdScope, AdoptFindsAndStopsSystemdRunScope) {
    RUN_INSIDE_MANAGER();
    auto client = connect_system();
    ASSERT_TRUE(client);
    std::string name = "adopt-" + std::to_string(getpid()) + ".scope";

    pid_t pid = start_in_scope(*client, name, {"sleep", "100"});
    ASSERT_GT(pid, 0) << "systemd-run did not put its command in " << name;

    auto stopped = client->stop_unit(name);
    ASSERT_TRUE(stopped.ok()) << stopped.error().message;
    int status = 0;
    ASSERT_TRUE(wait_child(pid, 5s, &status)) << "sleep survived";
    EXPECT_TRUE(WIFSIGNALED(status));
}

// The host's own unit, and every slice above it, is refused, never stopped.
TEST(SystemdScope, RefusesToStopHostUnitAndItsSlices) {
    RUN_INSIDE_MANAGER();
    auto client = connect_system();
    ASSERT_TRUE(client);
    auto own = sessreap::own_unit(BusKind::system);
    ASSERT_TRUE(own.ok()) << own.error().message;
    auto by_bus = client->unit_of_pid(getpid());
    ASSERT_TRUE(by_bus.ok()) << by_bus.error().message;
    EXPECT_EQ(*own, *by_bus);

    for (const std::string& unit : {*own, std::string("system.slice"), std::string("-.slice")}) {
        auto stopped = client->stop_unit(unit);
        ASSERT_FALSE(stopped.ok()) << unit;
        EXPECT_EQ(stopped.error().code, EPERM) << stopped.error().message;
        auto killed = client->kill_unit(unit, SIGTERM);
        ASSERT_FALSE(killed.ok()) << unit;
        EXPECT_EQ(killed.error().code, EPERM) << killed.error().message;
    }
}

// Stopping a unit systemd does not know succeeds: nothing is left to stop.
TEST(SystemdScope, StopOfUnknownUnitSucceeds) {
    RUN_INSIDE_MANAGER();
    auto client = connect_system();
    ASSERT_TRUE(client);

    auto stopped = client->stop_unit("sessreap-never-existed.scope");
    EXPECT_TRUE(stopped.ok()) << stopped.error().message;
}

// A scope for a pid that has already exited is an error, not an empty scope.
TEST(SystemdScope, CreateFailsForExitedPid) {
    RUN_INSIDE_MANAGER();
    auto client = connect_system();
    ASSERT_TRUE(client);
    pid_t pid = fork();
    if (pid == 0) _exit(0);
    ASSERT_EQ(waitpid(pid, nullptr, 0), pid);

    auto unit = client->create_scope(pid, "gone", "");
    ASSERT_FALSE(unit.ok());
    EXPECT_NE(unit.error().message.find("gone"), std::string::npos) << unit.error().message;
}

// An unprivileged caller is denied by systemd and gets an error, not a hang.
TEST(SystemdScope, UnprivilegedCallerIsDenied) {
    RUN_INSIDE_MANAGER();
    pid_t pid = fork();
    if (pid == 0) {
        if (setresgid(65534, 65534, 65534) < 0 || setresuid(65534, 65534, 65534) < 0) _exit(100);
        auto client = ScopeClient::connect(BusKind::system, kTimeout);
        if (!client.ok()) _exit(101);
        auto unit = (*client)->create_scope(getpid(), "denied", "");
        _exit(unit.ok() ? 0 : unit.error().code);
    }
    ASSERT_GT(pid, 0);

    int status = 0;
    ASSERT_TRUE(wait_child(pid, kTimeout * 3, &status));
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_TRUE(WEXITSTATUS(status) == EACCES || WEXITSTATUS(status) == EPERM)
        << "exit status " << WEXITSTATUS(status);
}

// ---- The module's scope layer, end to end, inside the real manager --------

namespace {

namespace ts = testing_support;

std::vector<pid_t> read_pid_file(const std::string& path) {
    std::ifstream f(path);
    std::vector<pid_t> pids;
    for (pid_t pid; f >> pid;) pids.push_back(pid);
    return pids;
}

std::string temp_dir() {
    char tmpl[] = "/tmp/sessreap-module-scope-XXXXXX";
    return mkdtemp(tmpl) ? tmpl : "";
}

// The manager's dbus-daemon, found over the bus while it still answers.
pid_t bus_daemon_pid() {
    auto [status, out] = run("systemctl show -p MainPID --value dbus.service");
    return status == 0 ? pid_t(atoi(out.c_str())) : -1;
}

} // namespace

// sessreap-host run with systemd.scope=create: a setsid escapee and a
// double-forked daemon, which the group and sweep cannot see, die; the log
// shows the scope started and stopped.
TEST(ModuleScope, CreateModeKillsDaemonsThatLeftTheSession) {
    RUN_INSIDE_MANAGER();
    std::string dir = temp_dir();
    std::string pidfile = dir + "/pids";
    ts::CommandResult res = ts::run_command(
        {SESSREAP_HOST_PATH, "run", "--module", SESSREAP_MODULE_PATH, "--verbose", "--config-json",
         R"({"systemd": {"scope": "create"}, "teardown": {"grace_ms": 300}})", "--", "sh",
         std::string(SESSREAP_TEST_DIR) + "/scripts/daemons.sh", pidfile});
    std::vector<pid_t> pids = read_pid_file(pidfile);
    run("rm -rf '" + dir + "'");

    EXPECT_EQ(res.status, 0) << res.err;
    ASSERT_EQ(pids.size(), 3u) << res.err;
    for (pid_t pid : pids) EXPECT_TRUE(wait_exited(pid, 5s)) << pid << "\n" << res.err;
    EXPECT_NE(res.err.find("Started scope sessreap-"), std::string::npos) << res.err;
    EXPECT_NE(res.err.find("Stopped sessreap-"), std::string::npos) << res.err;
    EXPECT_NE(res.err.find("layer scope"), std::string::npos) << res.err;
    EXPECT_NE(res.err.find("no survivors"), std::string::npos) << res.err;
}

// systemd.scope=adopt finds the scope systemd-run made for a child, and
// teardown stops it with everything in it.
TEST(ModuleScope, AdoptModeStopsScopeMadeBySystemdRun) {
    RUN_INSIDE_MANAGER();
    auto client = connect_system();
    ASSERT_TRUE(client);
    std::string name = "adopt-module-" + std::to_string(getpid()) + ".scope";
    pid_t pid = start_in_scope(*client, name,
                               {"sh", "-c", "setsid sleep 1000 & sleep 1000 & exec sleep 1000"});
    ASSERT_GT(pid, 0) << "systemd-run did not put its command in " << name;
    std::this_thread::sleep_for(200ms); // let sh start its children

    ts::Module m;
    ts::TestHandle th(m, R"({"systemd": {"scope": "adopt"}, "teardown": {"grace_ms": 300}})");
    ASSERT_EQ(m.launch(th.h, pid, nullptr), 0) << m.last_error();
    sessreap_report r{};
    r.size = sizeof r;
    EXPECT_EQ(m.teardown(th.h, pid, &r), 0) << m.last_error();
    int status = 0;
    EXPECT_TRUE(wait_child(pid, 5s, &status));
    EXPECT_GE(r.signalled[SESSREAP_LAYER_SCOPE], 3u);
    EXPECT_TRUE(th.logged("Adopted " + name));
    EXPECT_TRUE(th.logged("Stopped " + name));
    EXPECT_FALSE(client->unit_processes(name).ok() && !client->unit_processes(name)->empty());
}

// In adopt mode a child that runs in the host's own unit is not adopted, and
// teardown leaves that unit running.
TEST(ModuleScope, NeverAdoptsOrStopsHostUnit) {
    RUN_INSIDE_MANAGER();
    auto own = sessreap::own_unit(BusKind::system);
    ASSERT_TRUE(own.ok()) << own.error().message;
    ts::HeldChild child([] { pause(); });
    ts::Module m;
    ts::TestHandle th(m, R"({"systemd": {"scope": "adopt"}, "teardown": {"grace_ms": 200}})");
    ASSERT_EQ(m.launch(th.h, child.pid(), nullptr), 0) << m.last_error();
    child.release();
    sessreap_report r{};
    r.size = sizeof r;
    EXPECT_EQ(m.teardown(th.h, child.pid(), &r), 0);
    EXPECT_TRUE(th.logged("the host runs in it too"));
    EXPECT_EQ(r.signalled[SESSREAP_LAYER_SCOPE], 0u);
    auto [status, out] = run("systemctl is-active '" + own.value() + "'");
    EXPECT_EQ(out, "active\n");
}

// With the bus hung (its daemon stopped) after launch, teardown gives up on
// the scope layer within the bus timeout, still kills the session through
// the group and sweep layers, and returns within the cap.
TEST(ModuleScope, HungBusTeardownReturnsWithinCap) {
    RUN_INSIDE_MANAGER();
    pid_t bus = bus_daemon_pid();
    ASSERT_GT(bus, 1);
    ts::PidChannel ch;
    ts::HeldChild leader([&] {
        ts::fork_sleeper(ch, true); // a setpgid escapee: the sweep's to kill
        pause();
    });
    ts::Module m;
    ts::TestHandle th(m, R"({"systemd": {"scope": "create", "timeout_ms": 1000},
                             "teardown": {"grace_ms": 200, "cap_ms": 4000}})");
    ASSERT_EQ(m.launch(th.h, leader.pid(), nullptr), 0) << m.last_error();
    ASSERT_TRUE(th.logged("Started scope")) << "the bus must work at launch";
    leader.release();
    std::vector<pid_t> escapee = ch.collect(1);
    ASSERT_EQ(escapee.size(), 1u);

    kill(bus, SIGSTOP); // the harness's own dbus-daemon
    int64_t start = sessreap::now_ns();
    sessreap_report r{};
    r.size = sizeof r;
    int rc = m.teardown(th.h, leader.pid(), &r);
    double took = seconds_since(start);
    kill(bus, SIGCONT);

    EXPECT_EQ(rc, 0) << m.last_error();
    EXPECT_TRUE(r.guards & SESSREAP_GUARD_LAYER_FAILED);
    EXPECT_TRUE(wait_exited(escapee[0], 2s));
    EXPECT_LT(took, 4.0 + 2.0) << "teardown outlived its cap"; // a hang detector, not a speed test
    EXPECT_TRUE(th.logged("skipping the scope layer"));
}

// With log.sink=journald, every signal and the unit stop reach the journal
// with their MESSAGE_ID and SESSREAP_* fields.
TEST(ModuleScope, LogsStructuredFieldsToJournal) {
    RUN_INSIDE_MANAGER();
    std::string dir = temp_dir();
    ts::CommandResult res = ts::run_command(
        {SESSREAP_HOST_PATH, "run", "--module", SESSREAP_MODULE_PATH, "--config-json",
         R"({"systemd": {"scope": "create"}, "log": {"sink": "journald"},
             "teardown": {"grace_ms": 300}})",
         "--", "sh", std::string(SESSREAP_TEST_DIR) + "/scripts/escapees.sh", dir + "/pids"});
    std::vector<pid_t> pids = read_pid_file(dir + "/pids");
    run("rm -rf '" + dir + "'");
    ASSERT_EQ(res.status, 0) << res.err;
    ASSERT_EQ(pids.size(), 7u);
    run("journalctl --sync");

    auto [sent_status, sent] = run("journalctl --no-pager -o json "
                                   "MESSAGE_ID=2ee61e9b21fa46538704c463cf06710d "
                                   "SESSREAP_PID=" +
                                   std::to_string(pids[2]));
    EXPECT_EQ(sent_status, 0) << sent;
    EXPECT_NE(sent.find("\"SESSREAP_SIGNAL\":\"SIGTERM\""), std::string::npos) << sent;
    EXPECT_NE(sent.find("\"SESSREAP_LAYER\":\""), std::string::npos) << sent;
    EXPECT_NE(sent.find("\"SESSREAP_COMM\":\""), std::string::npos) << sent;

    auto [stop_status, stopped] = run("journalctl --no-pager -o json "
                                      "MESSAGE_ID=8db79d9511174f009524b9db86e3e7d0");
    EXPECT_NE(stopped.find("\"SESSREAP_UNIT\":\"sessreap-"), std::string::npos) << stopped;
    EXPECT_NE(stopped.find("\"SESSREAP_LAYER\":\"scope\""), std::string::npos) << stopped;
}
