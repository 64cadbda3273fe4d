// SPDX-License-Identifier: LGPL-2.1-or-later
// Reliability: concurrency, pid reuse, exhausted resources, hidden and
// unkillable processes. Each proves teardown never hits the wrong process
// and never blocks past its cap.
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <mutex>
#include <thread>

#include <gtest/gtest.h>

#include "log.h"
#include "process.h"
#include "procfs.h"
#include "teardown.h"

using namespace testing_support;

// GCC says __SANITIZE_*__, clang says __has_feature(*_sanitizer).
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SESSREAP_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define SESSREAP_SANITIZED 1
#endif
#endif
#ifndef SESSREAP_SANITIZED
#define SESSREAP_SANITIZED 0
#endif

namespace {

int count_open_fds() {
    int n = 0;
    DIR* d = opendir("/proc/self/fd");
    while (dirent* e = d ? readdir(d) : nullptr) n += e->d_name[0] != '.';
    if (d) closedir(d);
    return n - 1; // the directory's own descriptor
}

// The RLIMIT_NOFILE that leaves exactly `free` descriptor numbers unused.
rlim_t limit_leaving(int free) {
    int fd = 0;
    for (int seen = 0;; ++fd) {
        if (fcntl(fd, F_GETFD) < 0 && ++seen == free) break;
    }
    return rlim_t(fd + 1);
}

sessreap_report new_report(sessreap_survivor* survivors = nullptr, uint32_t cap = 0) {
    sessreap_report r{};
    r.size = sizeof r;
    r.survivors = survivors;
    r.survivors_cap = cap;
    return r;
}

// Runs body in a forked child (so limits and credentials it changes stay
// there) and returns its exit status; body's message goes to *message.
int run_in_child(const std::function<int(std::string*)>& body, std::string* message) {
    int pipefd[2];
    if (pipe2(pipefd, O_CLOEXEC) < 0) return -1;
    pid_t pid = fork();
    if (pid == 0) {
        close(pipefd[0]);
        std::string msg;
        int rc = 99;
        try {
            rc = body(&msg);
        } catch (const std::exception& e) {
            msg += std::string("exception: ") + e.what();
        }
        ssize_t ignored = write(pipefd[1], msg.data(), msg.size());
        (void)ignored;
        _exit(rc);
    }
    close(pipefd[1]);
    char buf[4096];
    ssize_t n;
    while ((n = read(pipefd[0], buf, sizeof buf)) > 0) message->append(buf, size_t(n));
    close(pipefd[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

class Reliability : public ::testing::Test {
protected:
    void SetUp() override { REQUIRE_PRIVATE_NAMESPACE(); }
    Module module_;
};

// A tree for the concurrency test, forked from any thread: between fork and
// exec the child only makes async-signal-safe calls. The leader starts an
// escapee (its own group) and both run sleep.
pid_t spawn_tree_async_safe(int* gate_fd) {
    static char sleep_path[] = "/bin/sleep";
    static char arg[] = "60";
    static char* argv[] = {sleep_path, arg, nullptr};
    int ready[2], gate[2];
    if (pipe2(ready, O_CLOEXEC) < 0) return -1;
    if (pipe2(gate, O_CLOEXEC) < 0) return -1;

    pid_t pid = fork();
    if (pid == 0) {
        setsid();
        char c = 'r';
        if (write(ready[1], &c, 1) != 1 || read(gate[0], &c, 1) != 1) _exit(0);
        if (fork() == 0) {
            setpgid(0, 0);
            execv(argv[0], argv);
            _exit(127);
        }
        execv(argv[0], argv);
        _exit(127);
    }
    close(ready[1]);
    close(gate[0]);
    char c;
    ssize_t got = read(ready[0], &c, 1);
    (void)got;
    close(ready[0]);
    *gate_fd = gate[1];
    return pid;
}

} // namespace

// Eight threads launch and tear down 1,000 trees in all on one handle while
// two more open and close handles: every tree is gone, decoys in other
// sessions live, and no descriptor is leaked.
TEST_F(Reliability, SurvivesConcurrentLaunchTeardownAndHandleChurn) {
    PidChannel ch;
    std::vector<std::unique_ptr<HeldChild>> decoys;
    for (int i = 0; i < 4; ++i) {
        decoys.push_back(std::make_unique<HeldChild>([&] {
            fork_sleeper(ch, true, "decoy");
            for (;;) pause();
        }));
        decoys.back()->release();
    }
    std::vector<pid_t> decoy_members = ch.collect(4);
    ASSERT_EQ(decoy_members.size(), 4u);
    int fds_before = count_open_fds();

    std::atomic<int> failures{0}, done{0};
    std::mutex error_mutex;
    std::string first_error, warnings;
    {
        TestHandle th(module_, R"({"teardown": {"grace_ms": 2000}})");
        std::atomic<bool> stop{false};
        struct Drain {
            TestHandle& th;
            std::string& out;
            ~Drain() {
                for (auto& line : th.log)
                    if (line.rfind("Sent ", 0) != 0) out += line + "\n";
            }
        } drain{th, warnings};
        auto worker = [&](int count) {
            for (int i = 0; i < count; ++i) {
                int gate = -1;
                pid_t pid = spawn_tree_async_safe(&gate);
                int r = pid > 0 ? module_.launch(th.h, pid, nullptr) : -1;
                if (gate >= 0) close(gate); // EOF: the child exits before exec
                sessreap_report rep = new_report();
                if (r == 0) r = module_.teardown(th.h, pid, &rep);
                if (pid > 0) waitpid(pid, nullptr, 0);
                if (r != 0) {
                    failures++;
                    std::lock_guard lock(error_mutex);
                    if (first_error.empty()) first_error = module_.last_error();
                }
                done++;
            }
        };
        auto churn = [&] {
            while (!stop) {
                sessreap_options o{};
                o.size = sizeof o;
                o.flags = SESSREAP_OPEN_NO_SYSTEM_CONFIG;
                sessreap_handle* h = nullptr;
                if (module_.open(&o, &h) == 0)
                    module_.close(h);
                else
                    failures++;
            }
        };
        std::vector<std::thread> threads;
        for (int t = 0; t < 8; ++t) threads.emplace_back(worker, 125);
        std::thread churn1(churn), churn2(churn);
        for (auto& t : threads) t.join();
        stop = true;
        churn1.join();
        churn2.join();
    }
    EXPECT_EQ(done.load(), 1000);
    EXPECT_TRUE(warnings.empty()) << warnings;
    EXPECT_EQ(failures.load(), 0) << first_error;
    for (pid_t pid : decoy_members) EXPECT_TRUE(alive(pid)) << pid;
    for (auto& d : decoys) EXPECT_TRUE(alive(d->pid()));
    EXPECT_EQ(count_open_fds(), fds_before);
    for (pid_t pid : decoy_members) kill_own(pid);
}

// A sweep candidate that dies between the scan and the signal, and whose pid
// an unrelated process takes in that window, is never signalled.
TEST_F(Reliability, NeverSignalsPidRecycledBetweenScanAndSignal) {
    PidChannel ch;
    HeldChild leader([&] {
        // The candidate's parent exits at once, so init reaps the candidate
        // as soon as it dies and its pid is free for reuse.
        if (fork() == 0) {
            fork_sleeper(ch, true, "candidate");
            _exit(0);
        }
        for (;;) pause();
    });
    leader.release();
    std::vector<pid_t> cand = ch.collect(1);
    ASSERT_EQ(cand.size(), 1u);

    sessreap::Config cfg;
    cfg.teardown.grace = std::chrono::milliseconds(200);
    sessreap::Logger log;
    auto proc = sessreap::open_proc();
    ASSERT_TRUE(proc.ok());
    sessreap::LaunchRecord rec;
    rec.pid = rec.session = rec.pgrp = leader.pid();
    sessreap::StatFields st;
    ASSERT_EQ(sessreap::read_stat(proc->get(), leader.pid(), &st), 0);
    rec.starttime = st.starttime;

    pid_t stranger = -1;
    sessreap::TeardownContext ctx{cfg, log, proc->get(), sessreap::HostIds::current()};
    ctx.after_scan = [&](const std::vector<sessreap::Member>& found) {
        if (stranger > 0) return; // only the first scan
        bool listed = false;
        for (const auto& m : found) listed |= m.pid == cand[0];
        ASSERT_TRUE(listed);
        kill_own(cand[0]);
        ASSERT_TRUE(wait_gone(cand[0], 5000));
        for (int attempt = 0; attempt < 50; ++attempt) { // until init has reaped it
            std::ofstream("/proc/sys/kernel/ns_last_pid") << cand[0] - 1;
            stranger = fork();
            if (stranger == 0) {
                prctl(PR_SET_NAME, "stranger");
                for (;;) pause();
            }
            if (stranger == cand[0]) break;
            kill_own(stranger);
            usleep(10'000);
        }
    };
    sessreap::Report report;
    EXPECT_EQ(sessreap::teardown(ctx, rec, &report), 0);
    ASSERT_EQ(stranger, cand[0]) << "could not steer the next pid";
    EXPECT_TRUE(alive(stranger));
    for (int i = 0; i < 200 && comm_of(stranger) != "stranger"; ++i) usleep(10'000);
    EXPECT_EQ(comm_of(stranger), "stranger"); // the very process forked, still itself
    kill_own(stranger);
}

// With almost no free descriptors, launch and teardown fail cleanly or
// degrade: no crash, no wrong kill, every call returns.
TEST_F(Reliability, DegradesWithLowDescriptorLimit) {
    PidChannel ch;
    HeldChild decoy([&] {
        ch.report(getpid());
        for (;;) pause();
    });
    decoy.release();
    ASSERT_EQ(ch.collect(1).size(), 1u);

    std::string message;
    int rc = run_in_child(
        [&](std::string* msg) {
            TestHandle th(module_, R"({"teardown": {"grace_ms": 300, "cap_ms": 3000}})");
            HeldChild leader([&] {
                for (int i = 0; i < 20; ++i) fork_sleeper(ch, i % 2 == 0);
                for (;;) pause();
            });
            // Leave 4 descriptors free: enough for a scan and a few pidfds,
            // not for the 21 pidfds teardown would like to wait on.
            rlim_t limit = limit_leaving(4);
            rlimit lim{limit, limit};
            setrlimit(RLIMIT_NOFILE, &lim);
            int r = module_.launch(th.h, leader.pid(), nullptr);
            *msg += "launch " + std::to_string(r) + " " + module_.last_error() + "\n";
            if (r < 0) return r == -EMFILE ? 0 : 1;
            leader.release();
            sleep(1);
            sessreap_report rep = new_report();
            r = module_.teardown(th.h, leader.pid(), &rep);
            *msg += "teardown " + std::to_string(r) + " " + module_.last_error() + "\n";
            for (auto& line : th.log) *msg += line + "\n";
            if (r != 0) return 2;
            if (!th.logged("Ran out of file descriptors")) return 3;
            return live_session_members(leader.pid()).empty() ? 0 : 4;
        },
        &message);
    EXPECT_EQ(rc, 0) << message;
    EXPECT_TRUE(alive(decoy.pid()));
}

// With allocations failing (a low RLIMIT_AS, then the heap filled), calls
// return -ENOMEM and nothing escapes the ABI; a teardown that ran out of
// memory keeps its record, and succeeds once memory is back.
TEST_F(Reliability, FailsCleanlyWhenMemoryRunsOut) {
#if SESSREAP_SANITIZED
    GTEST_SKIP() << "sanitizers reserve terabytes of address space; RLIMIT_AS cannot apply";
#else
    std::string message;
    int rc = run_in_child(
        [&](std::string* msg) {
            TestHandle th(module_, R"({"teardown": {"grace_ms": 100}})");
            HeldChild leader([] {
                for (;;) pause();
            });
            HeldChild second([] {
                for (;;) pause();
            });
            if (module_.launch(th.h, leader.pid(), nullptr) != 0) return 1;
            leader.release();

            // Cap the address space near what is mapped, then take every
            // byte the allocator still has, largest pieces first.
            std::vector<void*> hog;
            hog.reserve(1 << 20);
            std::ifstream statm("/proc/self/statm");
            long pages = 0;
            statm >> pages;
            rlimit lim{};
            getrlimit(RLIMIT_AS, &lim);
            rlimit low{rlim_t(pages) * rlim_t(sysconf(_SC_PAGESIZE)) + (4u << 20), lim.rlim_max};
            setrlimit(RLIMIT_AS, &low);
            for (size_t size = 1 << 20; size >= 8; size /= 2)
                while (hog.size() < hog.capacity())
                    if (void* p = malloc(size))
                        hog.push_back(p);
                    else
                        break;

            int launch_rc = module_.launch(th.h, second.pid(), nullptr);
            sessreap_report rep = new_report();
            int down_rc = module_.teardown(th.h, leader.pid(), &rep);
            char err[256]; // no allocation while the heap is full
            snprintf(err, sizeof err, "%s", module_.last_error());
            for (void* p : hog) free(p);
            setrlimit(RLIMIT_AS, &lim);

            *msg += "launch " + std::to_string(launch_rc) + ", teardown " +
                    std::to_string(down_rc) + " (" + std::string(err) + ")\n";
            if (launch_rc != -ENOMEM || down_rc != -ENOMEM) return 2;
            if (module_.teardown(th.h, leader.pid(), &rep) != 0) return 3; // record kept
            return alive(leader.pid()) ? 4 : 0;
        },
        &message);
    EXPECT_EQ(rc, 0) << message;
#endif
}

// With /proc mounted hidepid=invisible and the host an unprivileged user,
// the sweep kills that user's processes, leaves what it cannot see, and says
// so once.
TEST_F(Reliability, SkipsWhatHidepidHidesAndSaysSo) {
    PidChannel ch;
    HeldChild leader([&] {
        fork_sleeper(ch, true, "root-member"); // stays root: hidden from nobody
        setgid(65534);
        setuid(65534);
        prctl(PR_SET_DUMPABLE, 1); // setuid() cleared it; /proc would hide us
        fork_sleeper(ch, true, "user-member");
        for (;;) pause();
    });
    leader.release();
    std::vector<pid_t> pids = ch.collect(2);
    ASSERT_EQ(pids.size(), 2u);
    pid_t root_member = comm_of(pids[0]) == "root-member" ? pids[0] : pids[1];
    pid_t user_member = root_member == pids[0] ? pids[1] : pids[0];

    std::string message;
    int rc = run_in_child(
        [&](std::string* msg) {
            if (unshare(CLONE_NEWNS) < 0 ||
                mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) < 0 ||
                mount("proc", "/proc", "proc", 0, "hidepid=invisible") < 0) {
                *msg = std::string("mount: ") + strerror(errno);
                return 77;
            }
            setgid(65534);
            setuid(65534);
            prctl(PR_SET_DUMPABLE, 1);
            TestHandle th(module_, R"({"teardown": {"grace_ms": 300, "cap_ms": 2000}})");
            int r = module_.launch(th.h, leader.pid(), nullptr);
            sessreap_report rep = new_report();
            if (r == 0) r = module_.teardown(th.h, leader.pid(), &rep);
            *msg += "teardown " + std::to_string(r) + " " + module_.last_error() + "\n";
            int said = 0;
            for (auto& line : th.log) {
                *msg += line + "\n";
                said += line.find("hidepid") != std::string::npos;
            }
            if (said != 1) return 4;
            if (!(rep.guards & SESSREAP_GUARD_UNREADABLE)) return 5;
            return r;
        },
        &message);
    if (rc == 77) GTEST_SKIP() << message;
    EXPECT_EQ(rc, 0) << message;
    EXPECT_FALSE(alive(user_member)) << message;
    EXPECT_FALSE(alive(leader.pid()));
    EXPECT_TRUE(alive(root_member)); // invisible to the host, and not its to kill
    kill_own(root_member);
}

// A process that cannot act on SIGKILL (frozen by the cgroup v1 freezer)
// makes teardown return at the cap, listing it as a survivor.
TEST_F(Reliability, ReturnsAtCapWithUnkillableProcess) {
    const std::string freezer = "/sys/fs/cgroup/freezer";
    struct stat st;
    if (stat((freezer + "/freezer.state").c_str(), &st) != 0 &&
        stat((freezer + "/tasks").c_str(), &st) != 0)
        GTEST_SKIP() << "no cgroup v1 freezer at " << freezer;
    std::string dir = freezer + "/" + unique_name("sessreap-test");
    ASSERT_EQ(mkdir(dir.c_str(), 0755), 0) << strerror(errno);

    PidChannel ch;
    HeldChild leader([&] {
        fork_sleeper(ch, true, "frozen");
        for (;;) pause();
    });
    TestHandle th(module_, R"({"teardown": {"grace_ms": 100, "cap_ms": 1000}})");
    ASSERT_EQ(module_.launch(th.h, leader.pid(), nullptr), 0);
    leader.release();
    std::vector<pid_t> pids = ch.collect(1);
    ASSERT_EQ(pids.size(), 1u);
    std::ofstream(dir + "/tasks") << pids[0] << std::endl;
    std::ofstream(dir + "/freezer.state") << "FROZEN" << std::endl;

    sessreap_survivor survivors[4];
    sessreap_report r = new_report(survivors, 4);
    int rc = module_.teardown(th.h, leader.pid(), &r);

    std::ofstream(dir + "/freezer.state") << "THAWED" << std::endl;
    bool died = wait_gone(pids[0], 5000); // the pending SIGKILL acts once thawed
    rmdir(dir.c_str());
    EXPECT_EQ(rc, -ETIMEDOUT);
    ASSERT_EQ(r.survivors_total, 1u);
    EXPECT_EQ(survivors[0].pid, pids[0]);
    EXPECT_STREQ(survivors[0].comm, "frozen");
    EXPECT_GE(r.elapsed_us, 1'000'000u);
    EXPECT_LT(r.elapsed_us, 5'000'000u); // returned at the cap, not much later
    EXPECT_TRUE(died);
}
