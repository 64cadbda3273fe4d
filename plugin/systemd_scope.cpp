// SPDX-License-Identifier: LGPL-2.1-or-later
// The systemd layer: puts a child in a transient scope and stops that scope over D-Bus.
#include "systemd_scope.h"

#include <sys/random.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

#include <systemd/sd-login.h>

namespace sessreap {

namespace {

constexpr const char* kDestination = "org.freedesktop.systemd1";
constexpr const char* kManagerPath = "/org/freedesktop/systemd1";
constexpr const char* kManager = "org.freedesktop.systemd1.Manager";
constexpr const char* kNoSuchUnit = "org.freedesktop.systemd1.NoSuchUnit";

// systemd refuses unit names of 256 bytes or more; the name part gets what is left.
constexpr size_t kMaxEscapedName = 120;

// The finished-job table only grows by JobRemoved signals of other clients' jobs
// (they are broadcast once anyone subscribed); it is dropped past this size.
constexpr size_t kMaxFinishedJobs = 1024;

bool resolved_is_system(BusKind kind) {
    if (kind == BusKind::automatic) return geteuid() == 0;
    return kind == BusKind::system;
}

const char* bus_name(BusKind kind) {
    return resolved_is_system(kind) ? "system" : "user";
}

std::string in_quotes(const std::string& s) {
    return "'" + s + "'";
}

Error sd_error(int r, const std::string& what) {
    return make_error(-r, "Failed to " + what + ": " + errno_string(-r));
}

// The interface that carries ControlGroup for a unit of this type, or nullptr.
const char* type_interface(const std::string& unit) {
    static const std::pair<const char*, const char*> types[] = {
        {".scope", "org.freedesktop.systemd1.Scope"},
        {".service", "org.freedesktop.systemd1.Service"},
        {".slice", "org.freedesktop.systemd1.Slice"},
        {".socket", "org.freedesktop.systemd1.Socket"},
        {".mount", "org.freedesktop.systemd1.Mount"},
        {".swap", "org.freedesktop.systemd1.Swap"},
    };
    for (const auto& [suffix, interface] : types) {
        std::string_view s(suffix);
        if (unit.size() > s.size() && unit.compare(unit.size() - s.size(), s.size(), s) == 0)
            return interface;
    }
    return nullptr;
}

uint32_t random_u32() {
    uint32_t v = 0;
    if (getrandom(&v, sizeof(v), GRND_NONBLOCK) == sizeof(v)) return v;

    // Early boot or an old kernel: uniqueness only needs to hold among our own units.
    return uint32_t(now_ns()) ^ uint32_t(getpid()) << 16;
}

} // namespace

std::string scope_unit_name(const std::string& name, pid_t pid) {
    static const char hex[] = "0123456789abcdef";
    std::string escaped;
    for (size_t i = 0; i < name.size(); i++) {
        unsigned char c = name[i];
        bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                     c == '_' || c == ':' || (c == '.' && i > 0);
        std::string piece =
            plain ? std::string(1, char(c)) : std::string{'\\', 'x', hex[c >> 4], hex[c & 15]};

        // Cut only between characters so no escape is left half written.
        if (escaped.size() + piece.size() > kMaxEscapedName) break;
        escaped += piece;
    }

    char tail[64];
    snprintf(tail, sizeof(tail), "%d-%08x.scope", int(pid), random_u32());
    if (escaped.empty()) return std::string("sessreap-") + tail;
    return "sessreap-" + escaped + "-" + tail;
}

Result<std::string> own_unit(BusKind bus) {
    char* unit = nullptr;
    int r = resolved_is_system(bus) ? sd_pid_get_unit(0, &unit) : sd_pid_get_user_unit(0, &unit);
    if (r < 0) return sd_error(r, std::string("find the ") + bus_name(bus) + " unit of pid 0");

    std::string result(unit);
    free(unit);
    return result;
}

ScopeClient::ScopeClient(sd_bus* bus, BusKind kind, std::chrono::milliseconds timeout)
    : bus_(bus), kind_(kind), timeout_(timeout) {}

ScopeClient::~ScopeClient() = default;

Result<std::unique_ptr<ScopeClient>> ScopeClient::connect(BusKind bus,
                                                          std::chrono::milliseconds timeout) {
    sd_bus* b = nullptr;
    bool system = resolved_is_system(bus);
    std::string what = std::string("connect to the ") + bus_name(bus) + " bus";

    // Connecting a unix socket does not block; authentication and Hello complete
    // in start() under the deadline.
    int r = system ? sd_bus_open_system(&b) : sd_bus_open_user(&b);
    if (r < 0) return sd_error(r, what);

    return start(b, system ? BusKind::system : BusKind::user, timeout, what);
}

Result<std::unique_ptr<ScopeClient>>
ScopeClient::connect_address(const std::string& address, BusKind kind,
                             std::chrono::milliseconds timeout) {
    sd_bus* b = nullptr;
    std::string what = "connect to the bus at " + in_quotes(address);

    int r = sd_bus_new(&b);
    if (r < 0) return sd_error(r, what);
    BusPtr owned(b);

    r = sd_bus_set_address(b, address.c_str());
    if (r < 0) return sd_error(r, what);

    r = sd_bus_set_bus_client(b, 1);
    if (r < 0) return sd_error(r, what);

    r = sd_bus_start(b);
    if (r < 0) return sd_error(r, what);

    return start(owned.release(), resolved_is_system(kind) ? BusKind::system : BusKind::user,
                 timeout, what);
}

Result<std::unique_ptr<ScopeClient>> ScopeClient::start(sd_bus* bus, BusKind kind,
                                                        std::chrono::milliseconds timeout,
                                                        const std::string& what) {
    std::unique_ptr<ScopeClient> client(new ScopeClient(bus, kind, timeout));

    // sd-bus' own default is 25 s; every call we make passes its own timeout
    // too, this covers the ones sd-bus makes by itself.
    int r = sd_bus_set_method_call_timeout(bus, uint64_t(timeout.count()) * 1000);
    if (r < 0) return sd_error(r, what);

    int64_t deadline = now_ns() + int64_t(timeout.count()) * 1'000'000;
    Status ready = client->pump(
        deadline, [&] { return sd_bus_is_ready(bus) > 0; }, what);
    if (!ready) return ready.error();

    return client;
}

// Dispatches bus traffic until done() holds or the deadline passes. sd_bus_call()
// is not used: it first waits for the connection to finish authenticating with
// no deadline at all, which hangs on a stopped dbus-daemon.
Status ScopeClient::pump(int64_t deadline_ns, const std::function<bool()>& done,
                         const std::string& what) {
    for (;;) {
        if (done()) return Ok{};

        int r = sd_bus_process(bus_.get(), nullptr);
        if (r < 0) return sd_error(r, what);
        if (r > 0) continue;

        int64_t left = deadline_ns - now_ns();
        if (left <= 0) {
            return make_error(ETIMEDOUT, "Failed to " + what + ": no answer within " +
                                             std::to_string(timeout_.count()) + " ms");
        }

        r = sd_bus_wait(bus_.get(), uint64_t(left / 1000) + 1);
        if (r < 0 && r != -EINTR) return sd_error(r, what);
    }
}

// Sends a method call and waits for its reply. An error reply named
// `tolerated_error` yields an empty message instead of an Error.
Result<BusMessage> ScopeClient::call(BusMessage m, const std::string& what,
                                     const char* tolerated_error) {
    struct Pending {
        BusMessage reply;
    } pending;
    auto on_reply = [](sd_bus_message* reply, void* userdata, sd_bus_error*) -> int {
        static_cast<Pending*>(userdata)->reply.reset(sd_bus_message_ref(reply));
        return 0;
    };

    sd_bus_slot* slot = nullptr;
    uint64_t usec = uint64_t(timeout_.count()) * 1000;
    int r = sd_bus_call_async(bus_.get(), &slot, m.get(), on_reply, &pending, usec);
    if (r < 0) return sd_error(r, what);
    SlotPtr owned_slot(slot); // a late reply must not reach `pending` once we returned

    int64_t deadline = now_ns() + int64_t(timeout_.count()) * 1'000'000;
    Status st = pump(
        deadline, [&] { return pending.reply != nullptr; }, what);
    if (!st) return st.error();

    const sd_bus_error* e = sd_bus_message_get_error(pending.reply.get());
    if (!e) return std::move(pending.reply);
    if (tolerated_error && sd_bus_error_has_name(e, tolerated_error)) return BusMessage();

    int code = sd_bus_error_get_errno(e);
    return make_error(code > 0 ? code : EIO,
                      "Failed to " + what + ": " + (e->message ? e->message : e->name));
}

Result<BusMessage> ScopeClient::new_manager_call(const char* method, const std::string& what) {
    sd_bus_message* m = nullptr;
    int r = sd_bus_message_new_method_call(bus_.get(), &m, kDestination, kManagerPath, kManager,
                                           method);
    if (r < 0) return sd_error(r, what);
    return BusMessage(m);
}

Result<std::string> ScopeClient::string_property(const std::string& path, const char* interface,
                                                 const char* property, const std::string& what) {
    sd_bus_message* m = nullptr;
    int r = sd_bus_message_new_method_call(bus_.get(), &m, kDestination, path.c_str(),
                                           "org.freedesktop.DBus.Properties", "Get");
    if (r < 0) return sd_error(r, what);
    BusMessage msg(m);

    r = sd_bus_message_append(m, "ss", interface, property);
    if (r < 0) return sd_error(r, what);

    auto reply = call(std::move(msg), what);
    if (!reply) return reply.error();

    const char* value = nullptr;
    r = sd_bus_message_read(reply->get(), "v", "s", &value);
    if (r < 0) return sd_error(r, what);
    return std::string(value);
}

// The object path of a loaded unit; an empty path when systemd does not know it.
Result<std::string> ScopeClient::unit_path(const std::string& unit, const std::string& what) {
    auto m = new_manager_call("GetUnit", what);
    if (!m) return m.error();

    int r = sd_bus_message_append(m->get(), "s", unit.c_str());
    if (r < 0) return sd_error(r, what);

    auto reply = call(std::move(*m), what, kNoSuchUnit);
    if (!reply) return reply.error();
    if (!*reply) return std::string();

    const char* path = nullptr;
    r = sd_bus_message_read(reply->get(), "o", &path);
    if (r < 0) return sd_error(r, what);
    return std::string(path);
}

int ScopeClient::on_job_removed(sd_bus_message* m, void* userdata, sd_bus_error*) {
    auto* self = static_cast<ScopeClient*>(userdata);
    uint32_t id = 0;
    const char *job = nullptr, *unit = nullptr, *result = nullptr;

    int r = sd_bus_message_read(m, "uoss", &id, &job, &unit, &result);
    if (r < 0) return 0; // a malformed signal is not ours to wait for

    // Runs inside sd-bus' C dispatch loop: nothing may throw through it.
    try {
        if (self->finished_jobs_.size() >= kMaxFinishedJobs) self->finished_jobs_.clear();
        self->finished_jobs_[job] = result;
    } catch (...) {
        return -ENOMEM;
    }
    return 0;
}

int ScopeClient::on_watch_installed(sd_bus_message* m, void* userdata, sd_bus_error*) {
    auto* self = static_cast<ScopeClient*>(userdata);
    const sd_bus_error* e = sd_bus_message_get_error(m);
    if (e) {
        int code = sd_bus_error_get_errno(e);
        self->job_watch_error_ = code > 0 ? code : EIO;
    }
    return 0;
}

// Subscribes to JobRemoved before the first job is queued. The bus daemon
// handles our messages in order, so the match is in place before systemd can
// see the request that creates the job, and no signal is missed.
Status ScopeClient::watch_jobs() {
    if (job_watch_) return Ok{};

    sd_bus_slot* slot = nullptr;
    int r = sd_bus_match_signal_async(bus_.get(), &slot, kDestination, kManagerPath, kManager,
                                      "JobRemoved", on_job_removed, on_watch_installed, this);
    if (r < 0) return sd_error(r, "watch for finished systemd jobs");
    job_watch_.reset(slot);
    return Ok{};
}

Status ScopeClient::wait_job(const std::string& job, const std::string& what) {
    int64_t deadline = now_ns() + int64_t(timeout_.count()) * 1'000'000;
    auto finished = [&] { return job_watch_error_ != 0 || finished_jobs_.count(job) > 0; };

    Status st = pump(deadline, finished, what);
    if (!st) return st;
    if (job_watch_error_ != 0) {
        return make_error(job_watch_error_, "Failed to " + what +
                                                ": cannot watch for finished jobs: " +
                                                errno_string(job_watch_error_));
    }

    std::string result = finished_jobs_[job];
    finished_jobs_.erase(job);
    if (result != "done")
        return make_error(EIO,
                          "Failed to " + what + ": job finished with result " + in_quotes(result));
    return Ok{};
}

Result<std::string> ScopeClient::create_scope(pid_t pid, const std::string& name,
                                              const std::string& slice) {
    std::string unit = scope_unit_name(name, pid);
    std::string what = "start scope " + in_quotes(unit) + " for pid " + std::to_string(pid);
    if (pid <= 0) return make_error(EINVAL, "Failed to " + what + ": invalid pid");

    Status watching = watch_jobs();
    if (!watching) return watching.error();

    auto m = new_manager_call("StartTransientUnit", what);
    if (!m) return m.error();
    sd_bus_message* msg = m->get();
    std::string description =
        "sessreap scope of " + in_quotes(name) + " (pid " + std::to_string(pid) + ")";

    // "fail": an existing job for this name is an error, never silently replaced.
    int r = sd_bus_message_append(msg, "ss", unit.c_str(), "fail");
    if (r >= 0) r = sd_bus_message_open_container(msg, 'a', "(sv)");
    if (r >= 0) r = sd_bus_message_append(msg, "(sv)", "PIDs", "au", 1, uint32_t(pid));
    if (r >= 0) r = sd_bus_message_append(msg, "(sv)", "Description", "s", description.c_str());
    // Without it a scope whose processes were killed stays loaded as failed.
    if (r >= 0) r = sd_bus_message_append(msg, "(sv)", "CollectMode", "s", "inactive-or-failed");
    if (r >= 0 && !slice.empty())
        r = sd_bus_message_append(msg, "(sv)", "Slice", "s", slice.c_str());
    if (r >= 0) r = sd_bus_message_close_container(msg);
    if (r >= 0) r = sd_bus_message_append(msg, "a(sa(sv))", 0);
    if (r < 0) return sd_error(r, what);

    auto reply = call(std::move(*m), what);
    if (!reply) return reply.error();

    const char* job = nullptr;
    r = sd_bus_message_read(reply->get(), "o", &job);
    if (r < 0) return sd_error(r, what);

    Status st = wait_job(job, what);
    if (!st) return st.error();
    return unit;
}

Result<std::string> ScopeClient::unit_of_pid(pid_t pid) {
    std::string what = "find the unit of pid " + std::to_string(pid);

    auto m = new_manager_call("GetUnitByPID", what);
    if (!m) return m.error();

    int r = sd_bus_message_append(m->get(), "u", uint32_t(pid));
    if (r < 0) return sd_error(r, what);

    auto reply = call(std::move(*m), what);
    if (!reply) return reply.error();

    const char* path = nullptr;
    r = sd_bus_message_read(reply->get(), "o", &path);
    if (r < 0) return sd_error(r, what);

    return string_property(path, "org.freedesktop.systemd1.Unit", "Id", what);
}

Result<std::vector<pid_t>> ScopeClient::unit_processes(const std::string& unit) {
    std::string what = "list the processes of " + in_quotes(unit);

    auto m = new_manager_call("GetUnitProcesses", what);
    if (!m) return m.error();

    int r = sd_bus_message_append(m->get(), "s", unit.c_str());
    if (r < 0) return sd_error(r, what);

    auto reply = call(std::move(*m), what);
    if (!reply) return reply.error();
    sd_bus_message* msg = reply->get();

    std::vector<pid_t> pids;
    r = sd_bus_message_enter_container(msg, 'a', "(sus)");
    if (r < 0) return sd_error(r, what);
    for (;;) {
        const char *cgroup = nullptr, *cmdline = nullptr;
        uint32_t pid = 0;
        r = sd_bus_message_read(msg, "(sus)", &cgroup, &pid, &cmdline);
        if (r < 0) return sd_error(r, what);
        if (r == 0) break;
        pids.push_back(pid_t(pid));
    }
    return pids;
}

Result<std::string> ScopeClient::control_group(const std::string& unit) {
    std::string what = "read the control group of " + in_quotes(unit);
    const char* interface = type_interface(unit);
    if (!interface) return std::string(); // targets, timers, ...: no processes of their own

    auto path = unit_path(unit, what);
    if (!path) return path.error();
    if (path->empty()) return std::string();

    return string_property(*path, interface, "ControlGroup", what);
}

// The host must survive its own teardown: a unit whose cgroup holds the calling
// process (its own scope or service, or any slice above it) is never signalled.
Status ScopeClient::refuse_own_unit(const std::string& unit, const char* action) {
    std::string what = std::string(action) + " " + in_quotes(unit);

    auto own = own_unit(kind_);
    if (own && *own == unit)
        return make_error(EPERM, "Refusing to " + what + ": it is the host's own unit");

    char* own_cgroup = nullptr;
    int r = sd_pid_get_cgroup(0, &own_cgroup);
    if (r < 0) return Ok{}; // no cgroup to compare: the name check above is all we have
    std::string mine(own_cgroup);
    free(own_cgroup);

    auto cg = control_group(unit);
    if (!cg) return cg.error(); // cannot tell whether it holds us: do not touch it
    if (cg->empty()) return Ok{};

    std::string prefix = *cg == "/" ? "/" : *cg + "/";
    if (mine == *cg || mine.compare(0, prefix.size(), prefix) == 0)
        return make_error(EPERM,
                          "Refusing to " + what + ": it holds the host (" + in_quotes(mine) + ")");
    return Ok{};
}

Status ScopeClient::kill_unit(const std::string& unit, int signal) {
    std::string what = "signal " + std::to_string(signal) + " to " + in_quotes(unit);

    Status allowed = refuse_own_unit(unit, "signal");
    if (!allowed) return allowed;

    auto m = new_manager_call("KillUnit", what);
    if (!m) return m.error();

    int r = sd_bus_message_append(m->get(), "ssi", unit.c_str(), "all", int32_t(signal));
    if (r < 0) return sd_error(r, what);

    // A unit systemd no longer knows has no processes left to signal.
    auto reply = call(std::move(*m), what, kNoSuchUnit);
    if (!reply) return reply.error();
    return Ok{};
}

Status ScopeClient::stop_unit(const std::string& unit) {
    std::string what = "stop " + in_quotes(unit);

    Status allowed = refuse_own_unit(unit, "stop");
    if (!allowed) return allowed;

    Status watching = watch_jobs();
    if (!watching) return watching;

    auto m = new_manager_call("StopUnit", what);
    if (!m) return m.error();

    int r = sd_bus_message_append(m->get(), "ss", unit.c_str(), "replace");
    if (r < 0) return sd_error(r, what);

    auto reply = call(std::move(*m), what, kNoSuchUnit);
    if (!reply) return reply.error();
    if (!*reply) return Ok{}; // already gone: nothing left to stop

    const char* job = nullptr;
    r = sd_bus_message_read(reply->get(), "o", &job);
    if (r < 0) return sd_error(r, what);

    return wait_job(job, what);
}

} // namespace sessreap
