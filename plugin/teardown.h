// SPDX-License-Identifier: LGPL-2.1-or-later
// Layered teardown of one launched child: process group, session sweep, waits.
#pragma once

#include <sys/types.h>

#include <array>
#include <cstdint>
#include <functional>
#include <vector>

#include "config.h"
#include "log.h"
#include "registry.h"
#include "scope_layer.h"
#include "sessreap/sessreap.h"
#include "sweep.h"

namespace sessreap {

// Who is asking: the host's own ids, which no layer may ever hit.
struct HostIds {
    pid_t pid = 0;
    pid_t session = 0;
    pid_t pgrp = 0;

    static HostIds current();
};

struct Survivor {
    pid_t pid = 0;
    char state = 0;
    std::array<char, 16> comm{};
};

// What a teardown did; the C ABI copies it into struct sessreap_report.
struct Report {
    std::array<uint32_t, SESSREAP_LAYER_COUNT> signalled{};
    uint32_t guards = 0;
    uint32_t flags = 0;
    uint32_t passes = 0;
    uint32_t excluded = 0;
    std::vector<Survivor> survivors;
    uint64_t elapsed_us = 0;
};

struct TeardownContext {
    const Config& config;
    const Logger& log;
    int proc_fd;
    HostIds host;
    // /proc hides other users' processes (hidepid): the sweep sees only ours.
    bool proc_hides_others = false;
    // The handle's systemd scope layer; null when systemd.scope is off.
    ScopeLayer* scope = nullptr;
    // Tests only: runs after each scan, before anything found is signalled,
    // so a test can recycle a candidate's pid in exactly that window.
    std::function<void(const std::vector<Member>&)> after_scan = nullptr;
};

// Runs every enabled layer against the record's session and group, bounded by
// config.teardown.cap. Returns 0 when nothing of it is left alive, -ETIMEDOUT
// when survivors remain (listed in report), or the negative errno of a /proc
// walk that failed (then what is alive is unknown).
int teardown(const TeardownContext& ctx, LaunchRecord& record, Report* report);

// The layer names used in logs, the journal and the docs.
const char* layer_name(int layer);

} // namespace sessreap
