// SPDX-License-Identifier: LGPL-2.1-or-later
// Layered teardown of one launched child: process group, session sweep, waits.
#include "teardown.h"

#include <fcntl.h>
#include <fnmatch.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <algorithm>
#include <memory>
#include <unordered_set>

#include "cgroup.h"
#include "procfs.h"
#include "signals.h"
#include "sweep.h"

namespace sessreap {

HostIds HostIds::current() {
    return HostIds{getpid(), getsid(0), getpgrp()};
}

const char* layer_name(int layer) {
    switch (layer) {
    case SESSREAP_LAYER_GROUP:
        return "group";
    case SESSREAP_LAYER_SWEEP:
        return "sweep";
    case SESSREAP_LAYER_SCOPE:
        return "scope";
    case SESSREAP_LAYER_CGROUP:
        return "cgroup";
    }
    return "?";
}

namespace {

// Reads the real uid from /proc/PID/status; -1 when it cannot be read.
long read_uid(int proc_fd, pid_t pid) {
    char path[32];
    snprintf(path, sizeof path, "%d/status", int(pid));
    UniqueFd fd(openat(proc_fd, path, O_RDONLY | O_CLOEXEC));
    if (!fd.valid()) return -1;

    char buf[4096];
    ssize_t n = read(fd.get(), buf, sizeof buf - 1);
    if (n <= 0) return -1;
    buf[n] = '\0';

    const char* line = strstr(buf, "\nUid:");
    long uid = -1;
    return line && sscanf(line + 5, "%ld", &uid) == 1 ? uid : -1;
}

bool rule_matches(const ExcludeRule& rule, int proc_fd, const Member& m) {
    if (rule.comm && *rule.comm != m.comm.data()) return false;
    if (rule.uid && read_uid(proc_fd, m.pid) != long(*rule.uid)) return false;
    if (rule.exe) {
        char path[32], exe[4096];
        snprintf(path, sizeof path, "%d/exe", int(m.pid));
        ssize_t n = readlinkat(proc_fd, path, exe, sizeof exe - 1);
        if (n <= 0) return false;
        exe[n] = '\0';
        if (fnmatch(rule.exe->c_str(), exe, 0) != 0) return false;
    }
    return true;
}

class Teardown {
public:
    Teardown(const TeardownContext& ctx, LaunchRecord& rec, Report* report)
        : ctx_(ctx), cfg_(ctx.config), rec_(rec), report_(*report), scanner_(ctx.proc_fd) {}

    int run();

private:
    void apply_guards();
    int leader_recycled();
    int scan(std::vector<Member>* out);
    const ExcludeRule* exclusion_for(const Member& m);
    void signal_all(const std::vector<Member>& members, int sig);
    void signal_group(const std::vector<Member>& members, int sig);
    void signal_one(const Member& m, int sig, int layer);
    void continue_if_stopped(int pidfd, const Member& m, int layer);
    void note_signal(const Member& m, int sig, int layer);
    void wait_for_exit(int64_t deadline);
    void wait_by_rescanning(int64_t deadline);
    bool member_of_pid(pid_t pid, Member* out);
    void watch(pid_t pid);
    void term_outer_layers();
    void kill_outer_layers();
    void signal_cgroup(int sig);
    void signal_scope(int sig);
    bool unit_holds_spared();
    void signal_listed(const std::vector<pid_t>& listed,
                       const std::function<Result<std::vector<pid_t>>()>& relist, int sig,
                       int layer);
    void spare(const Member& m, const ExcludeRule& rule);
    bool expired() const { return now_ns() >= deadline_; }

    const TeardownContext& ctx_;
    const Config& cfg_;
    LaunchRecord& rec_;
    Report& report_;
    SessionScanner scanner_;
    int64_t start_ = now_ns();
    int64_t deadline_ = 0;
    bool group_ok_ = false;
    bool sweep_ok_ = false;
    bool warned_fds_ = false;
    int blind_ = 0; // -errno when the session could not be seen, so nobody can say it is gone
    bool fd_starved_ = false; // out of descriptors: pidfds are not kept
    std::vector<UniqueFd> waitset_;
    std::array<std::unordered_set<pid_t>, SESSREAP_LAYER_COUNT> hit_;
    std::unordered_set<pid_t> spared_;
    std::unordered_set<pid_t> outer_hit_; // signalled by the scope or cgroup layer this phase
};

// A session or group id names a process only as long as some process uses
// it. Once the leader is reaped and every member gone, an unrelated process
// may get the same pid and call setsid(); a teardown that ran late would then
// kill it. The leader's pidfd (or, without one, its start time) tells.
// Returns 1 when recycled, 0 when not, -errno when it cannot be told.
int Teardown::leader_recycled() {
    if (rec_.pidfd.valid() && pidfd_signal(rec_.pidfd.get(), 0) != -ESRCH) return 0;

    StatFields st;
    int r = read_stat(ctx_.proc_fd, rec_.pid, &st);
    if (r == -ESRCH) return 0; // no process holds the pid, so no new session has its id
    if (r < 0) return r;       // e.g. EMFILE: guessing "not recycled" could kill a stranger
    return rec_.pidfd.valid() || st.starttime != rec_.starttime;
}

void Teardown::apply_guards() {
    const HostIds& host = ctx_.host;
    group_ok_ = cfg_.teardown.group && rec_.group && rec_.pgrp > 1 && rec_.pgrp != host.pgrp;
    sweep_ok_ =
        cfg_.sweep.enabled && rec_.sweep && rec_.session > 1 && rec_.session != host.session;

    auto skip = [&](uint32_t guard, const std::string& what, const char* layer) {
        report_.guards |= guard;
        ctx_.log.log(LOG_NOTICE,
                     "Not " + what + " of pid " + std::to_string(rec_.pid) +
                         ": it is 0, 1, the host's own, or not led by the child",
                     {Event::layer_skipped, rec_.pid, nullptr, 0, layer, nullptr});
    };
    if (cfg_.teardown.group && !group_ok_)
        skip(SESSREAP_GUARD_GROUP_ID, "signalling process group " + std::to_string(rec_.pgrp),
             "group");
    if (cfg_.sweep.enabled && !sweep_ok_)
        skip(SESSREAP_GUARD_SESSION_ID, "sweeping session " + std::to_string(rec_.session),
             "sweep");
    if (!group_ok_ && !sweep_ok_) return;

    int recycled = leader_recycled();
    if (recycled == 0) return;
    group_ok_ = sweep_ok_ = false;
    if (recycled < 0) {
        blind_ = recycled;
        report_.guards |= SESSREAP_GUARD_UNREADABLE;
        ctx_.log.log(LOG_WARNING,
                     "Not signalling session " + std::to_string(rec_.session) +
                         ": failed to read /proc/" + std::to_string(rec_.pid) +
                         "/stat to tell whether its id was recycled: " + errno_string(-recycled),
                     {Event::layer_skipped, rec_.pid, nullptr, 0, "sweep", nullptr});
        return;
    }
    report_.guards |= SESSREAP_GUARD_RECYCLED;
    ctx_.log.log(LOG_WARNING,
                 "Not signalling session " + std::to_string(rec_.session) +
                     ": its leader is gone and pid " + std::to_string(rec_.pid) +
                     " now names another process, so the id was recycled",
                 {Event::layer_skipped, rec_.pid, nullptr, 0, "sweep", nullptr});
}

// Lists the live members of the child's session (or, when the sweep is off,
// of its group). Returns 0, or -errno when the list may miss a member: /proc
// or a member's stat could not be read (EMFILE when the host's descriptor
// table is full).
int Teardown::scan(std::vector<Member>* out) {
    report_.passes++;
    int read_error = 0;
    MatchBy by = sweep_ok_ ? MatchBy::session : MatchBy::group;
    int r =
        scanner_.scan(by, sweep_ok_ ? rec_.session : rec_.pgrp, ctx_.host.pid, out, &read_error);
    if (r < 0) ctx_.log.log(LOG_ERR, "Failed to read /proc: " + errno_string(-r));
    if (r < 0 || read_error < 0) report_.guards |= SESSREAP_GUARD_UNREADABLE;
    if (ctx_.log.enabled(LOG_DEBUG))
        ctx_.log.log(LOG_DEBUG, "Pass " + std::to_string(report_.passes) + " over /proc for " +
                                    (sweep_ok_ ? "session " : "process group ") +
                                    std::to_string(sweep_ok_ ? rec_.session : rec_.pgrp) + ": " +
                                    std::to_string(out->size()) + " live member(s)");
    if (r == 0 && ctx_.after_scan) ctx_.after_scan(*out);
    return r < 0 ? r : read_error;
}

const ExcludeRule* Teardown::exclusion_for(const Member& m) {
    for (const ExcludeRule& rule : cfg_.exclude)
        if (rule_matches(rule, ctx_.proc_fd, m)) return &rule;
    return nullptr;
}

void Teardown::spare(const Member& m, const ExcludeRule& rule) {
    report_.guards |= SESSREAP_GUARD_EXCLUDED;
    if (spared_.insert(m.pid).second)
        ctx_.log.log(LOG_INFO, "Sparing pid " + std::to_string(m.pid) + " (" + m.comm.data() +
                                   "): excluded by the rule at " + rule.origin);
}

void Teardown::note_signal(const Member& m, int sig, int layer) {
    hit_[layer].insert(m.pid);
    std::string verb = cfg_.teardown.dry_run ? "Would send " : "Sent ";
    ctx_.log.log(LOG_INFO,
                 verb + signal_name(sig) + " to pid " + std::to_string(m.pid) + " (" +
                     m.comm.data() + "), layer " + layer_name(layer),
                 {Event::signal_sent, m.pid, m.comm.data(), sig, layer_name(layer), nullptr});
}

// A stopped process acts on no signal but SIGKILL until continued.
void Teardown::continue_if_stopped(int pidfd, const Member& m, int layer) {
    if (!state_is_stopped(m.state)) return;
    if (pidfd_signal(pidfd, SIGCONT) == 0) note_signal(m, SIGCONT, layer);
}

void Teardown::signal_one(const Member& m, int sig, int layer) {
    int raw = pidfd_open(m.pid);
    if ((raw == -EMFILE || raw == -ENFILE) && !waitset_.empty()) {
        // Out of descriptors: stop keeping pidfds to wait on, and fall back to
        // waiting by rescanning (see wait_for_exit).
        waitset_.clear();
        fd_starved_ = true;
        ctx_.log.log(LOG_WARNING, "Ran out of file descriptors: waiting by rescanning instead "
                                  "of on pidfds");
        raw = pidfd_open(m.pid);
    }
    if (raw < 0) {
        if (raw == -ESRCH) return;
        if (raw == -EMFILE || raw == -ENFILE) fd_starved_ = true;
        // Without a pidfd there is no safe way to signal: a bare kill() could
        // hit a recycled pid. Later passes retry once descriptors free up.
        if (!warned_fds_)
            ctx_.log.log(LOG_WARNING, "Failed to open a pidfd for pid " + std::to_string(m.pid) +
                                          ": " + errno_string(-raw) + ", ignoring");
        warned_fds_ = true;
        return;
    }
    UniqueFd fd(raw);

    // The pid may have been recycled since the scan: the pidfd now pins one
    // process, so check that this one is still a member before signalling.
    pid_t want = sweep_ok_ ? rec_.session : rec_.pgrp;
    if ((sweep_ok_ ? getsid(m.pid) : getpgid(m.pid)) != want) return;

    if (const ExcludeRule* rule = exclusion_for(m)) {
        spare(m, *rule);
        return;
    }

    if (!cfg_.teardown.dry_run) {
        int r = pidfd_signal(fd.get(), sig);
        if (r == -ESRCH) return;
        if (r < 0) {
            ctx_.log.log(LOG_WARNING, "Failed to send " + signal_name(sig) + " to pid " +
                                          std::to_string(m.pid) + ": " + errno_string(-r) +
                                          ", ignoring");
            return;
        }
        continue_if_stopped(fd.get(), m, layer);
    }
    note_signal(m, sig, layer);
    if (!fd_starved_) waitset_.push_back(std::move(fd));
}

// kill(-pgid) reaches every member of the group atomically, including
// children forked after the scan. With exclusion rules in force it cannot
// spare anyone, so members are then signalled one by one instead.
void Teardown::signal_group(const std::vector<Member>& members, int sig) {
    if (!cfg_.exclude.empty()) {
        for (const Member& m : members)
            if (m.pgrp == rec_.pgrp) signal_one(m, sig, SESSREAP_LAYER_GROUP);
        return;
    }

    for (const Member& m : members) {
        if (m.pgrp != rec_.pgrp) continue;
        if (fd_starved_) break;
        int fd = pidfd_open(m.pid);
        if (fd == -EMFILE || fd == -ENFILE) fd_starved_ = true;
        if (fd < 0) continue;
        UniqueFd owned(fd);
        if (getpgid(m.pid) == rec_.pgrp) waitset_.push_back(std::move(owned));
    }
    if (!cfg_.teardown.dry_run && kill(-rec_.pgrp, sig) < 0 && errno != ESRCH)
        ctx_.log.log(LOG_WARNING, "Failed to send " + signal_name(sig) + " to process group " +
                                      std::to_string(rec_.pgrp) + ": " + errno_string(errno) +
                                      ", ignoring");
    for (const Member& m : members) {
        if (m.pgrp != rec_.pgrp) continue;
        note_signal(m, sig, SESSREAP_LAYER_GROUP);
        if (!cfg_.teardown.dry_run && state_is_stopped(m.state)) kill(-rec_.pgrp, SIGCONT);
    }
}

void Teardown::signal_all(const std::vector<Member>& members, int sig) {
    if (group_ok_) signal_group(members, sig);
    if (!sweep_ok_) return;

    for (const Member& m : members) {
        if (group_ok_ && m.pgrp == rec_.pgrp) continue;
        if (outer_hit_.count(m.pid)) continue; // the scope or cgroup layer just did
        signal_one(m, sig, SESSREAP_LAYER_SWEEP);
    }
    outer_hit_.clear();
}

// Waits on the pidfds of everything signalled, never in a sleep loop: a pidfd
// polls readable when its process exits (a zombie counts as exited).
void Teardown::wait_for_exit(int64_t deadline) {
    std::vector<pollfd> fds;
    fds.reserve(waitset_.size());
    for (const UniqueFd& fd : waitset_) fds.push_back({fd.get(), POLLIN, 0});

    while (!fds.empty()) {
        int64_t left_ms = (deadline - now_ns() + 999'999) / 1'000'000;
        if (left_ms <= 0) break;
        int n = poll(fds.data(), fds.size(), int(std::min<int64_t>(left_ms, 60'000)));
        if (n < 0 && errno != EINTR) break;
        if (n <= 0) continue;
        std::erase_if(fds, [](const pollfd& p) { return p.revents != 0; });
    }
    waitset_.clear();

    // Processes signalled without a kept pidfd cannot be waited on; give them
    // a moment to die before the next scan looks again.
    if (fd_starved_) {
        int64_t left_ms = (deadline - now_ns()) / 1'000'000;
        if (left_ms > 0) poll(nullptr, 0, int(std::min<int64_t>(left_ms, 20)));
    }
}

// Without pidfds to wait on, the grace period is kept by looking again every
// 20 ms until the session is empty or the period is over.
void Teardown::wait_by_rescanning(int64_t deadline) {
    std::vector<Member> left;
    while (now_ns() < deadline) {
        poll(nullptr, 0, int(std::min<int64_t>(20, (deadline - now_ns()) / 1'000'000 + 1)));
        if (scan(&left) == 0 && left.empty()) return;
    }
}

// Fills *out from /proc/PID/stat for the log; false when pid is gone, and
// always for pid 1 and the host, which no layer may signal.
bool Teardown::member_of_pid(pid_t pid, Member* out) {
    if (pid <= 1 || pid == ctx_.host.pid) return false;
    StatFields st;
    if (read_stat(ctx_.proc_fd, pid, &st) < 0 || state_is_gone(st.state)) return false;
    *out = Member{pid, st.pgrp, st.state, st.comm};
    return true;
}

// Waits on pid too: the grace period then covers what the scope and cgroup
// layers signalled. A pid recycled meanwhile only costs a wait.
void Teardown::watch(pid_t pid) {
    if (fd_starved_) return;
    int fd = pidfd_open(pid);
    if (fd >= 0) waitset_.emplace_back(fd);
}

// Members of a scope or cgroup, signalled one by one through pidfds: pinned
// first, then signalled only if a second listing still has them (a pid could
// have been recycled between the listing and the pin). Exclusion rules apply.
void Teardown::signal_listed(const std::vector<pid_t>& listed,
                             const std::function<Result<std::vector<pid_t>>()>& relist, int sig,
                             int layer) {
    std::vector<std::pair<Member, UniqueFd>> pinned;
    for (pid_t pid : listed) {
        Member m;
        if (!member_of_pid(pid, &m)) continue;
        int fd = pidfd_open(pid);
        if (fd >= 0) pinned.emplace_back(m, UniqueFd(fd));
    }
    auto again = relist();
    if (!again) return;

    for (auto& [m, fd] : pinned) {
        if (std::find(again->begin(), again->end(), m.pid) == again->end()) continue;
        if (const ExcludeRule* rule = exclusion_for(m)) {
            spare(m, *rule);
            continue;
        }
        if (!cfg_.teardown.dry_run && pidfd_signal(fd.get(), sig) < 0) continue;
        note_signal(m, sig, layer);
        outer_hit_.insert(m.pid);
        if (!fd_starved_) waitset_.push_back(std::move(fd));
    }
}

void Teardown::signal_cgroup(int sig) {
    int dir = rec_.cgroup.dir.get();
    auto listed = cgroup_list_pids(dir);
    if (!listed) {
        report_.guards |= SESSREAP_GUARD_LAYER_FAILED;
        ctx_.log.log(LOG_WARNING, listed.error().message + ", ignoring");
        return;
    }
    signal_listed(
        listed.value(), [dir] { return cgroup_list_pids(dir); }, sig, SESSREAP_LAYER_CGROUP);
}

// The scope and cgroup layers get the termination signal together with the
// group and sweep, so that one grace period serves them all.
bool Teardown::unit_holds_spared() {
    if (spared_.empty()) return false;
    auto procs = ctx_.scope->processes(rec_.unit);
    if (!procs) return true; // cannot tell: do not stop it
    for (pid_t pid : procs.value())
        if (spared_.count(pid)) return true;
    return false;
}

void Teardown::signal_scope(int sig) {
    auto procs = ctx_.scope->processes(rec_.unit);
    if (!procs) {
        report_.guards |= SESSREAP_GUARD_LAYER_FAILED;
        return;
    }
    // KillUnit cannot spare anyone: with exclusion rules in force the unit's
    // processes are signalled one by one instead.
    if (!cfg_.exclude.empty()) {
        ScopeLayer* scope = ctx_.scope;
        const std::string unit = rec_.unit;
        signal_listed(
            procs.value(), [scope, unit] { return scope->processes(unit); }, sig,
            SESSREAP_LAYER_SCOPE);
        return;
    }

    // Named before the signal: a process killed by it has no name left.
    std::vector<Member> found;
    for (pid_t pid : procs.value()) {
        Member m;
        if (member_of_pid(pid, &m)) found.push_back(m);
    }
    int r = found.empty() || cfg_.teardown.dry_run ? 0 : ctx_.scope->kill(rec_.unit, sig);
    if (r == -EPERM) report_.guards |= SESSREAP_GUARD_HOST_UNIT;
    if (r < 0 && r != -EPERM) report_.guards |= SESSREAP_GUARD_LAYER_FAILED;
    if (r < 0) return;
    for (const Member& m : found) {
        note_signal(m, sig, SESSREAP_LAYER_SCOPE);
        outer_hit_.insert(m.pid);
        watch(m.pid);
    }
}

// The scope and cgroup layers get the termination signal together with the
// group and sweep, so that one grace period serves them all.
void Teardown::term_outer_layers() {
    if (!rec_.unit.empty() && ctx_.scope) signal_scope(cfg_.teardown.term_signal);
    if (rec_.cgroup.dir.valid()) signal_cgroup(cfg_.teardown.term_signal);
}

// After the grace period: the scope is killed and stopped, the cgroup killed
// and removed. Both are bounded (the bus timeout, the cap).
void Teardown::kill_outer_layers() {
    if (cfg_.teardown.dry_run) return;
    const int sig = cfg_.teardown.kill_signal;
    const bool sparing = !cfg_.exclude.empty();

    if (!rec_.unit.empty() && ctx_.scope && !(report_.guards & SESSREAP_GUARD_HOST_UNIT)) {
        signal_scope(sig);
        // Stopping the unit would kill what the rules spared in it.
        if (sparing && unit_holds_spared()) {
            wait_for_exit(deadline_);
            ctx_.log.log(LOG_NOTICE, "Leaving " + rec_.unit +
                                         " running: it holds excluded "
                                         "processes");
        } else {
            int r = ctx_.scope->stop(rec_.unit);
            if (r == -EPERM)
                report_.guards |= SESSREAP_GUARD_HOST_UNIT;
            else if (r < 0)
                report_.guards |= SESSREAP_GUARD_LAYER_FAILED;
        }
    }
    if (!rec_.cgroup.dir.valid()) return;

    if (sparing) {
        // cgroup.kill cannot spare anyone either.
        signal_cgroup(sig);
        wait_for_exit(deadline_);
        auto left = cgroup_forget(rec_.cgroup);
        if (left && !left->removed)
            ctx_.log.log(LOG_NOTICE, "Leaving " + rec_.cgroup.path + " in place: it holds " +
                                         std::to_string(left->left) + " process(es)");
        return;
    }
    auto hook = [&](pid_t pid, int s) {
        Member m;
        if (member_of_pid(pid, &m)) note_signal(m, s, SESSREAP_LAYER_CGROUP);
    };
    auto killed = cgroup_kill_and_remove(rec_.cgroup, sig, deadline_, cfg_.cgroup.kill, hook);
    if (!killed) {
        report_.guards |= SESSREAP_GUARD_LAYER_FAILED;
        ctx_.log.log(LOG_WARNING, killed.error().message + ", ignoring");
    } else if (killed->used_cgroup_kill && killed->killed > 0) {
        ctx_.log.log(LOG_INFO,
                     "Killed " + std::to_string(killed->killed) + " process(es) through " +
                         rec_.cgroup.path + "/cgroup.kill, layer cgroup",
                     {Event::signal_sent, 0, nullptr, sig, "cgroup", nullptr});
    }
}

int Teardown::run() {
    deadline_ = start_ + std::chrono::nanoseconds(cfg_.teardown.cap).count();
    if (cfg_.teardown.dry_run) report_.flags |= SESSREAP_REPORT_DRY_RUN;
    if (ctx_.proc_hides_others) report_.guards |= SESSREAP_GUARD_UNREADABLE;
    if (ctx_.log.enabled(LOG_DEBUG))
        ctx_.log.log(LOG_DEBUG,
                     "Tearing down pid " + std::to_string(rec_.pid) + ": session " +
                         std::to_string(rec_.session) + ", process group " +
                         std::to_string(rec_.pgrp) +
                         (rec_.unit.empty() ? "" : ", unit " + rec_.unit) +
                         (rec_.cgroup.path.empty() ? "" : ", cgroup " + rec_.cgroup.path));
    apply_guards();

    std::vector<Member> members;
    if (group_ok_ || sweep_ok_) blind_ = scan(&members);
    term_outer_layers();
    if (!members.empty()) signal_all(members, cfg_.teardown.term_signal);
    if (!cfg_.teardown.dry_run) {
        int64_t grace = start_ + std::chrono::nanoseconds(cfg_.teardown.grace).count();
        if (!waitset_.empty()) wait_for_exit(std::min(grace, deadline_));
        if (fd_starved_ && !members.empty()) wait_by_rescanning(std::min(grace, deadline_));
    }
    kill_outer_layers();

    if (group_ok_ || sweep_ok_) {
        while (!cfg_.teardown.dry_run && !members.empty()) {
            blind_ = scan(&members);
            std::erase_if(members, [&](const Member& m) { return spared_.count(m.pid) > 0; });
            if (members.empty() || expired() || report_.passes > uint32_t(cfg_.sweep.max_passes))
                break;
            signal_all(members, cfg_.teardown.kill_signal);
            wait_for_exit(deadline_);
        }
    }

    for (int layer = 0; layer < SESSREAP_LAYER_COUNT; ++layer)
        report_.signalled[layer] = uint32_t(hit_[layer].size());
    report_.excluded = uint32_t(spared_.size());
    report_.elapsed_us = uint64_t(now_ns() - start_) / 1000;
    if (cfg_.teardown.dry_run) return 0;
    // An empty list from an incomplete scan is not an empty session.
    if (members.empty() && blind_ < 0) {
        // The group signal needs no descriptor and reaches only the group,
        // so it is still sent when the session cannot be seen.
        if (group_ok_) kill(-rec_.pgrp, cfg_.teardown.kill_signal);
        ctx_.log.log(LOG_WARNING, "Could not tell whether session " + std::to_string(rec_.session) +
                                      " is gone: " + errno_string(-blind_));
        return blind_;
    }
    if (members.empty()) return 0;

    report_.guards |= SESSREAP_GUARD_CAP;
    for (const Member& m : members) report_.survivors.push_back({m.pid, m.state, m.comm});
    ctx_.log.log(LOG_WARNING, std::to_string(members.size()) + " process(es) of session " +
                                  std::to_string(rec_.session) +
                                  " still alive when the teardown cap ran out");
    return -ETIMEDOUT;
}

} // namespace

int teardown(const TeardownContext& ctx, LaunchRecord& record, Report* report) {
    return Teardown(ctx, record, report).run();
}

} // namespace sessreap
