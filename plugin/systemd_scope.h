// SPDX-License-Identifier: LGPL-2.1-or-later
// The systemd layer: puts a child in a transient scope and stops that scope over D-Bus.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <systemd/sd-bus.h>

#include "config.h"
#include "util.h"

namespace sessreap {

struct BusUnref {
    // Closes without flushing: a flush waits for a bus that may never read.
    void operator()(sd_bus* b) const { sd_bus_close_unref(b); }
};
struct MessageUnref {
    void operator()(sd_bus_message* m) const { sd_bus_message_unref(m); }
};
struct SlotUnref {
    void operator()(sd_bus_slot* s) const { sd_bus_slot_unref(s); }
};
using BusPtr = std::unique_ptr<sd_bus, BusUnref>;
using BusMessage = std::unique_ptr<sd_bus_message, MessageUnref>;
using SlotPtr = std::unique_ptr<sd_bus_slot, SlotUnref>;

// The unit name for a child's scope: "sessreap-NAME-PID-RANDOM.scope", NAME escaped
// the way systemd escapes strings in unit names and shortened so the whole fits.
std::string scope_unit_name(const std::string& name, pid_t pid);

// The unit the calling process runs in, read from /proc/self/cgroup without a bus:
// a system unit when `bus` is system, a user unit when it is user.
Result<std::string> own_unit(BusKind bus);

// One connection to a systemd manager. Every D-Bus call and every job wait is
// bounded by the timeout given at connect; a bus that accepts the connection but
// never answers (a stopped dbus-daemon) yields ETIMEDOUT, not a hang.
// Not thread-safe, and not usable in a child after fork (sd-bus refuses: ECHILD).
class ScopeClient {
public:
    // Opens the bus (automatic: the system bus for root, else the user bus) and
    // waits until it is authenticated. Errors: ENOENT/ECONNREFUSED when no bus
    // listens, ETIMEDOUT when it does not answer, other errnos from sd-bus.
    static Result<std::unique_ptr<ScopeClient>> connect(BusKind bus,
                                                        std::chrono::milliseconds timeout);

    // Same, for a bus at an explicit D-Bus address ("unix:path=...").
    static Result<std::unique_ptr<ScopeClient>>
    connect_address(const std::string& address, BusKind kind, std::chrono::milliseconds timeout);

    ~ScopeClient();
    ScopeClient(const ScopeClient&) = delete;
    ScopeClient& operator=(const ScopeClient&) = delete;

    // Moves `pid` into a new transient scope and returns its unit name once the
    // start job finished with "done". The caller keeps the child from forking
    // until then. `name` is the host's label for the child (may be empty);
    // `slice` empty means systemd's default. Errors: EACCES without privilege,
    // ESRCH when the pid is gone, EIO with the job result when the job failed,
    // ETIMEDOUT.
    Result<std::string> create_scope(pid_t pid, const std::string& name, const std::string& slice);

    // The unit `pid` belongs to (GetUnitByPID, then its Id). ESRCH when systemd
    // knows no unit for it.
    Result<std::string> unit_of_pid(pid_t pid);

    // The pids systemd counts in `unit` (GetUnitProcesses), for the report.
    Result<std::vector<pid_t>> unit_processes(const std::string& unit);

    // Sends `signal` to every process of `unit` (KillUnit, whom "all").
    // EPERM when the unit holds the calling process.
    Status kill_unit(const std::string& unit, int signal);

    // Stops `unit` and waits for the stop job. A unit systemd no longer knows
    // counts as stopped. EPERM when the unit holds the calling process: the
    // host's own unit, or a slice above it, is never stopped.
    Status stop_unit(const std::string& unit);

    // The manager's view of `unit`'s cgroup path ("" when it has none).
    Result<std::string> control_group(const std::string& unit);

private:
    ScopeClient(sd_bus* bus, BusKind kind, std::chrono::milliseconds timeout);

    static Result<std::unique_ptr<ScopeClient>>
    start(sd_bus* bus, BusKind kind, std::chrono::milliseconds timeout, const std::string& what);
    Status pump(int64_t deadline_ns, const std::function<bool()>& done, const std::string& what);
    Result<BusMessage> call(BusMessage m, const std::string& what,
                            const char* tolerated_error = nullptr);
    Result<BusMessage> new_manager_call(const char* method, const std::string& what);
    Result<std::string> string_property(const std::string& path, const char* interface,
                                        const char* property, const std::string& what);
    Result<std::string> unit_path(const std::string& unit, const std::string& what);
    Status watch_jobs();
    Status wait_job(const std::string& job, const std::string& what);
    Status refuse_own_unit(const std::string& unit, const char* action);

    static int on_job_removed(sd_bus_message* m, void* userdata, sd_bus_error* ret_error);
    static int on_watch_installed(sd_bus_message* m, void* userdata, sd_bus_error* ret_error);

    BusPtr bus_;
    BusKind kind_;
    std::chrono::milliseconds timeout_;
    SlotPtr job_watch_;
    int job_watch_error_ = 0;                          // positive errno once AddMatch failed
    std::map<std::string, std::string> finished_jobs_; // job object path -> result
};

} // namespace sessreap
