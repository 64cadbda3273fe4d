// SPDX-License-Identifier: LGPL-2.1-or-later
// Figure 4: teardown through the scope layer against a bare StopUnit, both
// under a real systemd manager from tests/systemd/harness.sh.
//
// The bus calls carry pids, which the manager reads in its own PID
// namespace, so the measuring half runs inside the manager's namespaces:
// the outer half (in the benchmark's private namespace, so the manager
// nests in it and dies with it) starts the manager, runs this binary again
// through "harness.sh exec PID --scope -- sessreap-bench --figure4-inside",
// and reads one line per run from its output.
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>

#include "figures.h"
#include "population.h"
#include "systemd_scope.h"
#include "util.h"

extern char** environ;

namespace bench {
namespace {

using sessreap::now_ns;

// The leader and its sleeping children: every one dies on SIGTERM.
constexpr int kScopeSize = 8;

// How long a scope lives before it is torn down. The kernel sends at most
// one cgroup.events notification per cgroup every 10 ms (Linux 4.19+), and
// systemd learns that a scope is empty from that notification: a scope
// stopped within 10 ms of its creation finishes its stop job only when the
// deferred notification fires. Real sessions live far longer.
constexpr useconds_t kSettleUs = 50'000;

// Runs argv with stdout into a file (a pipe could be held open by anything
// the command leaves behind), waits, and returns the exit status and output.
std::pair<int, std::string> run(const std::vector<std::string>& argv) {
    char path[] = "/tmp/sessreap-bench-out.XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0) return {-1, ""};
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fd, STDOUT_FILENO);
    posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    std::vector<char*> args;
    for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);

    pid_t pid = -1;
    int status = -1;
    if (posix_spawn(&pid, args[0], &fa, nullptr, args.data(), environ) == 0)
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
        }
    posix_spawn_file_actions_destroy(&fa);
    close(fd);
    std::ifstream f(path);
    std::stringstream out;
    out << f.rdbuf();
    unlink(path);
    return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out.str()};
}

std::string cgroup_of(pid_t pid) {
    std::ifstream f("/proc/" + std::to_string(pid) + "/cgroup");
    for (std::string line; std::getline(f, line);)
        if (line.rfind("0::", 0) == 0) return line.substr(3);
    return "";
}

// A held population whose members all sit in `unit` once released.
bool all_in_unit(const Population& p, const std::string& unit) {
    for (pid_t pid : p.pids())
        if (cgroup_of(pid) != "/system.slice/" + unit) return false;
    return true;
}

double seconds_since(int64_t start) {
    return double(now_ns() - start) / 1e9;
}

// Notes, from a thread of its own, when the last member of p has exited,
// so a contender's time can be split into "processes gone" and the rest.
class ExitClock {
public:
    explicit ExitClock(const Population& p)
        : thread_([this, &p] { gone_ns_ = p.wait_all_exited(10'000) ? now_ns() : 0; }) {}
    // Seconds from start until the last exit; 0 when they did not all exit.
    double since(int64_t start) {
        thread_.join();
        return gone_ns_ ? double(gone_ns_ - start) / 1e9 : 0;
    }

private:
    int64_t gone_ns_ = 0;
    std::thread thread_;
};

// (a): the scope created at sessreap_launch(), torn down by sessreap_teardown().
bool run_module(Module& m, Handle& h, sessreap::ScopeClient& client, double* took, double* exits) {
    PopulationSpec spec;
    spec.count = kScopeSize;
    spec.hold = true;
    Population p(spec);
    if (m.launch(h.h, p.leader(), "bench") < 0) {
        fprintf(stderr, "sessreap_launch: %s\n", m.last_error());
        return false;
    }
    p.release();
    p.pin();
    usleep(kSettleUs);
    auto unit = client.unit_of_pid(p.leader());
    if (!unit || !all_in_unit(p, *unit) || unit->rfind("sessreap-", 0) != 0) {
        fprintf(stderr, "sessreap-bench: the module made no scope (%s)\n",
                unit ? unit->c_str() : unit.error().message.c_str());
        return false;
    }

    sessreap_report r = new_report();
    ExitClock clock(p);
    int64_t t0 = now_ns();
    int rc = m.teardown(h.h, p.leader(), &r);
    bool gone = p.wait_all_exited(10'000);
    *took = seconds_since(t0);
    *exits = clock.since(t0);
    if (rc < 0) fprintf(stderr, "sessreap_teardown: %s\n", m.last_error());
    printf("layers scope %u group %u sweep %u\n", r.signalled[SESSREAP_LAYER_SCOPE],
           r.signalled[SESSREAP_LAYER_GROUP], r.signalled[SESSREAP_LAYER_SWEEP]);
    return rc == 0 && gone;
}

// (b): the same kind of scope made by ScopeClient::create_scope and stopped
// by a bare ScopeClient::stop_unit: systemd sends SIGTERM to the unit's
// cgroup and finishes the job once it is empty.
bool run_bare(sessreap::ScopeClient& client, double* took, double* exits) {
    PopulationSpec spec;
    spec.count = kScopeSize;
    spec.hold = true;
    Population p(spec);
    auto unit = client.create_scope(p.leader(), "bench", "");
    if (!unit) {
        fprintf(stderr, "sessreap-bench: %s\n", unit.error().message.c_str());
        return false;
    }
    p.release();
    p.pin();
    usleep(kSettleUs);
    if (!all_in_unit(p, *unit)) return false;

    ExitClock clock(p);
    int64_t t0 = now_ns();
    sessreap::Status st = client.stop_unit(*unit);
    bool gone = p.wait_all_exited(10'000);
    *took = seconds_since(t0);
    *exits = clock.since(t0);
    if (!st) fprintf(stderr, "sessreap-bench: %s\n", st.error().message.c_str());
    return st && gone;
}

} // namespace

int scope_figure_inside(Module& m, int reps) {
    using namespace std::chrono_literals;
    auto client = sessreap::ScopeClient::connect(sessreap::BusKind::system, 5000ms);
    if (!client) {
        fprintf(stderr, "sessreap-bench: %s\n", client.error().message.c_str());
        return 1;
    }
    // The bus is connected at the first launch, outside the timed call.
    Handle h(m, R"({"systemd": {"scope": "create", "timeout_ms": 5000},
                    "teardown": {"grace_ms": 5000, "cap_ms": 20000}})");
    if (!h.h) return 1;

    for (int rep = 0; rep < reps; ++rep) {
        for (int k = 0; k < 2; ++k) {
            bool module = (rep + k) % 2 == 0;
            double took = 0, exits = 0;
            bool ok = module ? run_module(m, h, **client, &took, &exits)
                             : run_bare(**client, &took, &exits);
            printf("%s %.9f %d %.9f\n", module ? "a" : "b", took, ok ? 1 : 0, exits);
        }
    }
    fflush(stdout);
    return 0;
}

void scope_figure(Table& t, int reps) {
    t.section("4. teardown of a " + std::to_string(kScopeSize) +
              "-process scope, 50 ms old, under a real systemd (tests/systemd/harness.sh), "
              "SIGTERM, until every process has exited (" +
              std::to_string(reps) + " runs each)");
    const std::string harness = SESSREAP_HARNESS_PATH;
    if (access("/lib/systemd/systemd", X_OK) != 0) {
        t.note("systemd scope layer", "n/a (/lib/systemd/systemd is not installed)");
        return;
    }
    char dir[] = "/tmp/sessreap-bench-harness.XXXXXX";
    if (!mkdtemp(dir)) return;
    char exe[4096];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    exe[len > 0 ? len : 0] = '\0';

    // --owner: should this process die, the harness stops its manager.
    auto [started, manager] = run({harness, "start", dir, "--owner", std::to_string(getpid())});
    std::string output;
    if (started == 0) {
        std::string pid = manager.substr(0, manager.find('\n'));
        output = run({harness, "exec", pid, "--scope", "--", "timeout", "-k", "5", "600", exe,
                      "--figure4-inside", std::to_string(reps)})
                     .second;
        run({harness, "stop", pid});
    }
    run({"/bin/rm", "-rf", dir});
    if (started != 0) {
        t.note("systemd scope layer", "n/a (harness.sh start failed)");
        return;
    }

    Samples module, bare, module_exits, bare_exits;
    bool all_ok = true;
    std::string layers;
    std::istringstream lines(output);
    for (std::string line; std::getline(lines, line);) {
        std::istringstream in(line);
        std::string who;
        double seconds = 0, exits = 0;
        int ok = 0;
        in >> who;
        if (who == "layers") layers = line.substr(7);
        if ((who != "a" && who != "b") || !(in >> seconds >> ok >> exits)) continue;
        (who == "a" ? module : bare).add(seconds);
        (who == "a" ? module_exits : bare_exits).add(exits);
        all_ok &= ok == 1;
    }
    if (module.size() == 0 || bare.size() == 0) {
        t.note("systemd scope layer", "n/a (the run inside the manager failed)");
        return;
    }
    double ratio = module.median() / bare.median();
    char r[64];
    snprintf(r, sizeof r, "%.2f× StopUnit", ratio);
    t.row("sessreap_teardown(), systemd.scope=create", module, "", r,
          std::string(ratio <= 2 ? "met: " : "NOT met: ") + "≤ 2× StopUnit" +
              (all_ok ? "" : " (FAILED RUNS)"));
    t.row("ScopeClient::stop_unit() of the same kind of scope", bare, "", "1.00×", "");
    t.row("(within the teardown: until the last process exited)", module_exits, "", "", "");
    t.row("(within the stop: until the last process exited)", bare_exits, "", "", "");
    t.note("(signalled, by layer, last run)", layers);
}

} // namespace bench
