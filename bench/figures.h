// SPDX-License-Identifier: LGPL-2.1-or-later
// The figures, each measured side by side with its contenders.
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

// 1: one sweep of a small session among n unrelated idle processes.
void sweep_figure(Table& t, Module& m, int n, int reps);
// 2: teardown of a session of n processes, half in groups of their own,
// against cgroup.kill of the same population.
void teardown_figure(Table& t, Module& m, int n, int reps);
// 3: one sessreap_launch() call, over n held children.
void launch_figure(Table& t, Module& m, int n);
// 5: memory and descriptors per tracked child, and a low RLIMIT_NOFILE.
void memory_figure(Table& t, Module& m, int n);

} // namespace bench
