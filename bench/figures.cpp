// SPDX-License-Identifier: LGPL-2.1-or-later
// The issue's figures, each measured side by side with its contenders.
#include "figures.h"

#include <dirent.h>
#include <dlfcn.h>
#include <malloc.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <syslog.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>

#include "population.h"
#include "procfs.h"
#include "sweep.h"
#include "util.h"

extern char** environ;

namespace bench {
namespace {

using sessreap::now_ns;

double seconds_since(int64_t start) {
    return double(now_ns() - start) / 1e9;
}

std::string fmt(const char* format, double value) {
    char buf[64];
    snprintf(buf, sizeof buf, format, value);
    return buf;
}

template <typename F> void resolve(void* dl, const char* name, F* out) {
    *out = reinterpret_cast<F>(dlsym(dl, name));
}

// Launches a held population's leader, lets it fork, and pins every member.
bool launch_and_release(Handle& h, Population& p) {
    if (h.m_.launch(h.h, p.leader(), nullptr) < 0) {
        fprintf(stderr, "sessreap_launch: %s\n", h.m_.last_error());
        return false;
    }
    p.release();
    p.pin();
    return true;
}

// Runs pkill and waits for it; the caller times the whole.
bool run_pkill(pid_t session) {
    std::string sid = std::to_string(session);
    const char* argv[] = {"pkill", "-KILL", "-s", sid.c_str(), nullptr};
    pid_t pid = -1;
    if (posix_spawnp(&pid, "pkill", nullptr, nullptr, const_cast<char**>(argv), environ) != 0)
        return false;
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

std::string verdict(bool met, const std::string& goal) {
    return (met ? "met: " : "NOT met: ") + goal;
}

std::string state_dir_default() {
    return "/run/sessreap/state";
}

// The type of the file system holding path ("ext4", "tmpfs"), from the
// longest matching mount point in /proc/self/mounts.
std::string fs_type(const std::string& path) {
    std::string best_dir, best_type = "?";
    std::ifstream mounts("/proc/self/mounts");
    for (std::string src, dir, type, rest;
         mounts >> src >> dir >> type && std::getline(mounts, rest);) {
        bool under =
            path == dir || dir == "/" ||
            (path.rfind(dir, 0) == 0 && path.size() > dir.size() && path[dir.size()] == '/');
        if (under && dir.size() >= best_dir.size()) {
            best_dir = dir;
            best_type = type;
        }
    }
    return best_type;
}

} // namespace

Module::Module() {
    dl = dlopen(SESSREAP_MODULE_PATH, RTLD_NOW | RTLD_LOCAL);
    if (!dl) {
        fprintf(stderr, "dlopen %s: %s\n", SESSREAP_MODULE_PATH, dlerror());
        return;
    }
    resolve(dl, "sessreap_last_error", &last_error);
    resolve(dl, "sessreap_open", &open);
    resolve(dl, "sessreap_close", &close);
    resolve(dl, "sessreap_launch", &launch);
    resolve(dl, "sessreap_forget", &forget);
    resolve(dl, "sessreap_teardown", &teardown);
}

Module::~Module() {
    if (dl) dlclose(dl);
}

namespace {

void count_log(void* userdata, int priority, const char* message) {
    auto* c = static_cast<LogCounts*>(userdata);
    if (priority > LOG_NOTICE) return;
    if (c->notices++ == 0) c->first_notice = message;
}

} // namespace

Handle::Handle(Module& m, const char* config_json) : m_(m) {
    sessreap_options o{};
    o.size = sizeof o;
    o.flags = SESSREAP_OPEN_NO_SYSTEM_CONFIG;
    o.config_json = config_json;
    o.log_fn = count_log;
    o.log_userdata = &log;
    if (m_.open(&o, &h) < 0) fprintf(stderr, "sessreap_open: %s\n", m_.last_error());
}

Handle::~Handle() {
    if (h) m_.close(h);
}

sessreap_report new_report() {
    sessreap_report r{};
    r.size = sizeof r;
    return r;
}

void sweep_figure(Table& t, Module& m, int n, int reps) {
    constexpr int kTarget = 8;
    t.section("1. sweep of a " + std::to_string(kTarget) + "-process session among N = " +
              std::to_string(n) + " idle processes (" + std::to_string(reps) + " runs each)");
    PopulationSpec idle_spec;
    idle_spec.count = n;
    idle_spec.die_with_leader = true;
    Population idle(idle_spec);
    PopulationSpec target_spec;
    target_spec.count = kTarget;
    target_spec.half_own_groups = true;
    Population target(target_spec);

    auto proc = sessreap::open_proc();
    if (!proc) {
        t.note("open /proc", proc.error().message);
        return;
    }
    int proc_fd = proc->get();
    auto walker = std::make_unique<sessreap::ProcWalker>(proc_fd);
    sessreap::SessionScanner scanner(proc_fd);
    Handle h(m);
    const pid_t sid = target.leader();
    const pid_t self = getpid();

    Samples listing, with_getsid, scan, with_stat, teardown, pkill;
    size_t entries = 0;
    std::vector<sessreap::Member> members;
    bool found_all = true;
    for (int rep = 0; rep < reps; ++rep) {
        int64_t t0 = now_ns();
        size_t count = 0;
        walker->for_each_pid([&](pid_t) { ++count; });
        listing.add(seconds_since(t0));
        entries = count;

        t0 = now_ns();
        count = 0;
        walker->for_each_pid([&](pid_t pid) { count += getsid(pid) == sid; });
        with_getsid.add(seconds_since(t0));

        t0 = now_ns();
        int read_error = 0;
        scanner.scan(sessreap::MatchBy::session, sid, self, &members, &read_error);
        scan.add(seconds_since(t0));
        found_all &= members.size() == size_t(kTarget);

        t0 = now_ns();
        count = 0;
        walker->for_each_pid([&](pid_t pid) {
            sessreap::StatFields st;
            count += sessreap::read_stat(proc_fd, pid, &st) == 0 && st.session == sid;
        });
        with_stat.add(seconds_since(t0));
    }

    // The killing contenders each get a fresh target session, alternating
    // which goes first; both are timed until every member's pidfd is readable.
    bool killed_all = true;
    for (int rep = 0; rep < reps; ++rep) {
        for (int k = 0; k < 2; ++k) {
            bool ours = (rep + k) % 2 == 0;
            PopulationSpec spec = target_spec;
            spec.hold = ours;
            Population victim(spec);
            if (ours) {
                if (!launch_and_release(h, victim)) return;
                sessreap_report r = new_report();
                int64_t t0 = now_ns();
                int rc = m.teardown(h.h, victim.leader(), &r);
                killed_all &= victim.wait_all_exited(10'000) && rc == 0;
                teardown.add(seconds_since(t0));
            } else {
                victim.pin();
                int64_t t0 = now_ns();
                bool ok = run_pkill(victim.leader());
                killed_all &= victim.wait_all_exited(10'000) && ok;
                pkill.add(seconds_since(t0));
            }
        }
    }

    auto per = [&](const Samples& s) { return format_time(s.median() / double(entries)); };
    double floor = listing.median();
    auto x_floor = [&](const Samples& s) { return fmt("%.2f× floor", s.median() / floor); };
    t.row("/proc listing only (floor; ProcWalker, nothing per entry)", listing, per(listing),
          "1.00× floor", "");
    t.row("listing + getsid() per entry", with_getsid, per(with_getsid), x_floor(with_getsid), "");
    double scan_ratio = scan.median() / floor;
    t.row("sessreap SessionScanner::scan", scan, per(scan), x_floor(scan),
          verdict(scan_ratio <= 1.5, "≤ 1.5× floor") + (found_all ? "" : " (MISSED MEMBERS)"));
    t.row("listing + read every /proc/PID/stat", with_stat, per(with_stat), x_floor(with_stat), "");
    double speedup = pkill.median() / teardown.median();
    t.row("sessreap_teardown() of the session (ABI)", teardown, per(teardown),
          fmt("pkill/this %.1f×", speedup),
          verdict(speedup >= 20, "≥ 20× faster than pkill -s") +
              (killed_all ? "" : " (SURVIVORS)"));
    t.row("pkill -KILL -s SID (procps)", pkill, per(pkill), "", "");
    t.note("(/proc entries walked)", std::to_string(entries));
}

void teardown_figure(Table& t, Module& m, int n, int reps) {
    t.section("2. teardown of a session of " + std::to_string(n) +
              " processes, half in groups of their own, until every pidfd is readable (" +
              std::to_string(reps) + " runs each)");
    Cgroup cg;
    if (!cg.valid()) {
        t.note("cgroup.kill", "n/a (" + cg.why_not() + ")");
        return;
    }
    Handle h(m);
    Samples ours, kernel;
    bool killed_all = true;
    size_t size = 0;
    for (int rep = 0; rep < reps; ++rep) {
        for (int k = 0; k < 2; ++k) {
            bool sessreap = (rep + k) % 2 == 0;
            PopulationSpec spec;
            spec.count = n;
            spec.half_own_groups = true;
            spec.hold = true;
            spec.cgroup = cg.path();
            Population p(spec);
            if (sessreap) {
                if (!launch_and_release(h, p)) return;
                sessreap_report r = new_report();
                int64_t t0 = now_ns();
                int rc = m.teardown(h.h, p.leader(), &r);
                killed_all &= p.wait_all_exited(10'000) && rc == 0;
                ours.add(seconds_since(t0));
            } else {
                p.release();
                p.pin();
                int64_t t0 = now_ns();
                bool ok = cg.kill();
                killed_all &= p.wait_all_exited(10'000) && ok;
                kernel.add(seconds_since(t0));
            }
            size = p.pids().size();
        }
    }
    double ratio = ours.median() / kernel.median();
    auto per = [&](const Samples& s) { return format_time(s.median() / double(size)); };
    t.row("sessreap_teardown() (ABI), SIGTERM", ours, per(ours), fmt("%.2f× cgroup.kill", ratio),
          verdict(ratio <= 1.2, "≤ 1.2× cgroup.kill") + (killed_all ? "" : " (SURVIVORS)"));
    t.row("cgroup.kill of the same population", kernel, per(kernel), "1.00×", "");
    if (size != size_t(n)) t.note("(population size)", std::to_string(size));
}

void launch_figure(Table& t, Module& m, int n) {
    t.section("3. sessreap_launch() of a held session leader, no D-Bus (" + std::to_string(n) +
              " children, 2 rounds, each child launched on every handle in turn)");
    PopulationSpec spec;
    spec.count = n + 1;
    spec.child_sessions = true;
    spec.die_with_leader = true;
    Population p(spec);

    // The state journal (state.dir) off, on a tmpfs, and at its default
    // under /run, which on some machines is a disk file system.
    char shm[] = "/dev/shm/sessreap-bench-XXXXXX";
    std::string tmpfs_config;
    if (mkdtemp(shm))
        tmpfs_config =
            std::string(R"({"teardown": {"grace_ms": 5000}, "state": {"dir": ")") + shm + "\"}}";
    struct Contender {
        Contender(std::string w, std::string c) : what(std::move(w)), config(std::move(c)) {}
        std::string what;
        std::string config;
        std::unique_ptr<Handle> h;
        Samples calls;
        int failures = 0;
    };
    std::vector<Contender> cs;
    cs.emplace_back("state journal off (state.dir \"\")",
                    R"({"teardown": {"grace_ms": 5000}, "state": {"dir": ""}})");
    if (!tmpfs_config.empty())
        cs.emplace_back("state journal on, a directory in /dev/shm (tmpfs)", tmpfs_config);
    cs.emplace_back("state journal on, default " + state_dir_default() + " (" +
                        fs_type(state_dir_default()) + ")",
                    kDefaultConfig);
    for (Contender& c : cs) c.h = std::make_unique<Handle>(m, c.config.c_str());

    for (int round = 0; round < 2; ++round) {
        for (size_t i = 1; i < p.pids().size(); ++i) {
            for (size_t k = 0; k < cs.size(); ++k) {
                Contender& c = cs[(i + k) % cs.size()];
                int64_t t0 = now_ns();
                int rc = m.launch(c.h->h, p.pids()[i], nullptr);
                c.calls.add(seconds_since(t0));
                c.failures += rc < 0;
            }
        }
        for (Contender& c : cs)
            for (size_t i = 1; i < p.pids().size(); ++i) m.forget(c.h->h, p.pids()[i]);
    }

    double off = cs[0].calls.median();
    for (Contender& c : cs) {
        std::string spread = "p90 " + format_time(c.calls.quantile(0.9));
        if (&c != &cs[0]) spread += ", off +" + format_time(c.calls.median() - off);
        t.row("sessreap_launch(), " + c.what, c.calls, "", spread,
              verdict(c.calls.median() <= 10e-6, "median ≤ 10 µs") +
                  (c.failures ? " (" + std::to_string(c.failures) + " FAILED)" : ""));
    }
    cs.clear(); // closing the handles removes their journals
    if (!tmpfs_config.empty()) rmdir(shm);
}

namespace {

struct Usage {
    size_t heap = 0; // bytes malloc has handed out
    size_t rss = 0;
    int fds = 0;
};

Usage usage() {
    Usage u;
    struct mallinfo2 mi = mallinfo2();
    u.heap = mi.uordblks + mi.hblkhd;
    long resident = 0, size = 0;
    if (FILE* f = fopen("/proc/self/statm", "re")) {
        if (fscanf(f, "%ld %ld", &size, &resident) != 2) resident = 0;
        fclose(f);
    }
    u.rss = size_t(resident) * size_t(sysconf(_SC_PAGESIZE));
    if (DIR* d = opendir("/proc/self/fd")) {
        while (readdir(d)) u.fds++;
        closedir(d);
        u.fds -= 3; // ".", ".." and the directory's own fd
    }
    return u;
}

bool set_nofile(rlim_t soft) {
    rlimit rl{};
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = std::min(soft, rl.rlim_max);
    return setrlimit(RLIMIT_NOFILE, &rl) == 0;
}

// Which of pids are still alive (not gone and not a zombie), read with the
// fd limit restored.
int count_alive(const std::vector<pid_t>& pids) {
    int alive = 0;
    for (pid_t pid : pids) {
        std::string path = "/proc/" + std::to_string(pid) + "/stat";
        FILE* f = fopen(path.c_str(), "re");
        if (!f) continue;
        char buf[512] = {};
        size_t got = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        sessreap::StatFields st;
        if (sessreap::parse_stat(std::string_view(buf, got), &st) &&
            !sessreap::state_is_gone(st.state))
            alive++;
    }
    return alive;
}

} // namespace

void memory_figure(Table& t, Module& m, int n) {
    t.section("5. memory and descriptors per tracked child (" + std::to_string(n) +
              " held children)");
    rlimit rl{};
    getrlimit(RLIMIT_NOFILE, &rl);
    PopulationSpec spec;
    spec.count = n + 1;
    spec.child_sessions = true;
    spec.die_with_leader = true;
    Population p(spec);
    std::vector<pid_t> kids(p.pids().begin() + 1, p.pids().end());

    {
        Handle h(m);
        Usage before = usage();
        int failures = 0;
        for (pid_t pid : kids) failures += m.launch(h.h, pid, nullptr) < 0;
        Usage after = usage();
        double per_heap = double(after.heap - before.heap) / double(kids.size());
        double per_rss = double(after.rss - before.rss) / double(kids.size());
        double per_fd = double(after.fds - before.fds) / double(kids.size());
        t.note("heap per tracked child (mallinfo2), state journal on", fmt("%.0f B", per_heap));
        t.note("RSS per tracked child", fmt("%.0f B", per_rss));
        t.note("file descriptors per tracked child", fmt("%.2f", per_fd),
               "RLIMIT_NOFILE " + std::to_string(rl.rlim_cur) + ", " + std::to_string(failures) +
                   " launch(es) failed");
    }
    {
        // The state journal keeps each live record's line, for compaction.
        Handle h(m, R"({"teardown": {"grace_ms": 5000}, "state": {"dir": ""}})");
        Usage before = usage();
        for (pid_t pid : kids) m.launch(h.h, pid, nullptr);
        Usage after = usage();
        double per_heap = double(after.heap - before.heap) / double(kids.size());
        t.note("heap per tracked child, state journal off", fmt("%.0f B", per_heap));
    }

    // The same launches with only 256 descriptors, after an 8-process
    // session was launched with descriptors to spare: the module may refuse
    // launches, but must never kill blindly nor report a live session gone.
    PopulationSpec victim_spec;
    victim_spec.count = 8;
    victim_spec.half_own_groups = true;
    victim_spec.hold = true;
    Population victim(victim_spec);
    Handle h(m);
    if (!launch_and_release(h, victim)) return;
    set_nofile(256);
    int ok = 0, failures = 0;
    std::string first_error;
    for (pid_t pid : kids) {
        int rc = m.launch(h.h, pid, nullptr);
        if (rc == 0)
            ok++;
        else if (failures++ == 0)
            first_error = m.last_error();
    }
    int fds_used = usage().fds;
    sessreap_report r = new_report();
    int rc = m.teardown(h.h, victim.leader(), &r);
    std::string teardown_error = rc < 0 ? m.last_error() : "";
    set_nofile(rl.rlim_cur);
    victim.wait_all_exited(1000);
    int alive = count_alive(victim.pids());

    t.note("RLIMIT_NOFILE 256: launches recorded / refused",
           std::to_string(ok) + " / " + std::to_string(failures),
           std::to_string(fds_used) + " fds open after; " + first_error.substr(0, 50));
    t.note("RLIMIT_NOFILE 256: notices and warnings", std::to_string(h.log.notices),
           h.log.first_notice.substr(0, 60));
    t.note("RLIMIT_NOFILE 256: teardown of 8 tracked",
           "rc " + std::to_string(rc) + ", " + std::to_string(alive) + " alive after",
           (alive == 0) == (rc == 0)
               ? "result is truthful " + teardown_error.substr(0, 50)
               : "UNSAFE: rc " + std::to_string(rc) + " but " + std::to_string(alive) + " alive");
}

} // namespace bench
