// SPDX-License-Identifier: LGPL-2.1-or-later
// The issue's figures, each measured side by side with its contenders.
#pragma once

#include <string>

#include "sessreap/sessreap.h"
#include "table.h"

namespace bench {

// The built module, loaded with dlopen(RTLD_NOW) the way a host loads it.
struct Module {
    Module();
    ~Module();
    bool ok() const { return dl != nullptr; }
    void* dl = nullptr;
    decltype(&sessreap_last_error) last_error = nullptr;
    decltype(&sessreap_open) open = nullptr;
    decltype(&sessreap_close) close = nullptr;
    decltype(&sessreap_launch) launch = nullptr;
    decltype(&sessreap_forget) forget = nullptr;
    decltype(&sessreap_teardown) teardown = nullptr;
};

// Counts the module's log lines; a host callback is the cheapest sink, so
// the timings show the module's own work, not the journal's.
struct LogCounts {
    int notices = 0; // notice and worse
    std::string first_notice;
};

// The handle's configuration unless a figure says otherwise: no system
// drop-ins, and a grace period long enough that no run here ever reaches it,
// so every process dies on SIGTERM.
inline constexpr const char* kDefaultConfig =
    R"({"teardown": {"grace_ms": 5000, "cap_ms": 20000}})";

// One sessreap handle whose log lines are counted, closed on destruction.
class Handle {
public:
    explicit Handle(Module& m, const char* config_json = kDefaultConfig);
    ~Handle();
    Handle(const Handle&) = delete;
    Handle& operator=(const Handle&) = delete;

    Module& m_;
    sessreap_handle* h = nullptr;
    LogCounts log;
};

sessreap_report new_report();

// 1: one sweep of a small session among n unrelated idle processes.
void sweep_figure(Table& t, Module& m, int n, int reps);
// 2: teardown of a session of n processes, half in groups of their own,
// against cgroup.kill of the same population.
void teardown_figure(Table& t, Module& m, int n, int reps);
// 3: one sessreap_launch() call, over n held children.
void launch_figure(Table& t, Module& m, int n);
// 4: scope teardown under a real systemd manager (tests/systemd/harness.sh):
// starts one, runs this binary inside it with --figure4-inside, and reads
// back its timings.
void scope_figure(Table& t, int reps);
// The inside half of figure 4: prints one "a|b SECONDS OK EXITED" line per
// run (a: the module, b: the bare stop), EXITED the seconds until the last
// process exited.
int scope_figure_inside(Module& m, int reps);
// 5: memory and descriptors per tracked child, and a low RLIMIT_NOFILE.
void memory_figure(Table& t, Module& m, int n);

} // namespace bench
