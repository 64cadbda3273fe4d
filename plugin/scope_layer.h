// SPDX-License-Identifier: LGPL-2.1-or-later
// The systemd scope layer of one handle: a lazily connected, serialised bus.
#pragma once

#include <sys/types.h>

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "config.h"
#include "log.h"
#include "systemd_scope.h"

namespace sessreap {

// One sd-bus connection per handle, used by one thread at a time. A bus that
// failed is not tried again for a while, so that a hung bus costs one
// timeout, not one per teardown; the failure is logged once per handle.
class ScopeLayer {
public:
    ScopeLayer(const Config& config, const Logger& log);

    // At launch, per systemd.scope: create a scope for pid, or find the one
    // it runs in. Returns the unit, or "" when there is none (logged).
    std::string attach(pid_t pid, const std::string& name);

    // The processes of unit (GetUnitProcesses), or an error.
    Result<std::vector<pid_t>> processes(const std::string& unit);
    // Sends sig to every process of unit (KillUnit). Returns 0 or -errno;
    // -EPERM when the unit holds the host.
    int kill(const std::string& unit, int sig);
    // Stops unit and waits for its job (bounded). Returns 0 or -errno.
    int stop(const std::string& unit);

private:
    ScopeClient* client(); // nullptr while the bus is down
    void failed(const Error& e);

    const Config& config_;
    const Logger& log_;
    std::mutex mutex_;
    std::unique_ptr<ScopeClient> client_;
    std::string own_unit_;
    int64_t retry_after_ns_ = 0;
    bool warned_ = false;
};

} // namespace sessreap
