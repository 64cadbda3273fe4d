// SPDX-License-Identifier: LGPL-2.1-or-later
// The C ABI: every entry point runs inside one guard, so no exception crosses it.
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <map>
#include <memory>
#include <new>
#include <shared_mutex>

#include "config.h"
#include "launch.h"
#include "log.h"
#include "procfs.h"
#include "registry.h"
#include "scope_layer.h"
#include "sessreap/sessreap.h"
#include "state.h"
#include "teardown.h"

#define SESSREAP_PUBLIC extern "C" __attribute__((visibility("default")))

namespace sessreap {
namespace {

// The first release's struct sizes: a host built against it must keep working.
constexpr uint32_t kOptionsSizeV1 = offsetof(sessreap_options, log_userdata) + sizeof(void*);
constexpr uint32_t kReportSizeV1 = sizeof(sessreap_report);

struct Handle {
    Config config;
    Logger log;
    UniqueFd proc;
    bool proc_hides_others = false;
    Registry registry;
    std::unique_ptr<StateStore> state; // null when records are not persisted
    std::unique_ptr<ScopeLayer> scope; // null when systemd.scope is off
    // For stale records that name a unit while this handle's scope layer is
    // off: the unit must still be stopped. Made on first need.
    std::unique_ptr<ScopeLayer> reap_scope;
};

// The last error of this thread. A fixed buffer: recording an out-of-memory
// failure must not itself allocate.
thread_local char last_error[1024];

// Handles are tokens, never pointers the host could dereference: a closed
// handle's token is never reused, so a call after close fails with EBADF
// instead of touching freed memory.
std::shared_mutex handles_mutex;
std::map<uintptr_t, std::shared_ptr<Handle>> handles;
uintptr_t next_token = 0x5e55;

int fail_text(int code, const char* prefix, const char* message) noexcept {
    snprintf(last_error, sizeof last_error, "%s%s", prefix, message);
    return -code;
}

int fail(int code, const std::string& message) {
    return fail_text(code, "", message.c_str());
}

int fail(const Error& e) {
    return fail(e.code, e.message);
}

// Runs one entry point: clears the thread's last error, and turns anything
// thrown into a negative errno and a message, without allocating.
template <typename F> int guarded(F&& body) noexcept {
    try {
        last_error[0] = '\0';
        return body();
    } catch (const std::bad_alloc&) {
        return fail_text(ENOMEM, "", "Out of memory");
    } catch (const std::exception& e) {
        return fail_text(EIO, "Internal error: ", e.what());
    } catch (...) {
        return fail_text(EIO, "Internal error: ", "unknown exception");
    }
}

std::shared_ptr<Handle> find_handle(sessreap_handle* h) {
    std::shared_lock lock(handles_mutex);
    auto it = handles.find(reinterpret_cast<uintptr_t>(h));
    return it == handles.end() ? nullptr : it->second;
}

int bad_handle(sessreap_handle* h) {
    return fail(EBADF, h ? "Not an open sessreap handle" : "The handle is NULL");
}

void copy_report(const Report& in, sessreap_report* out) {
    // Write only what the host's struct has room for (it may be older).
    sessreap_report full{};
    full.size = out->size;
    full.survivors_cap = out->survivors_cap;
    full.survivors = out->survivors;
    std::copy(in.signalled.begin(), in.signalled.end(), full.signalled);
    full.guards = in.guards;
    full.flags = in.flags;
    full.passes = in.passes;
    full.excluded = in.excluded;
    full.survivors_total = uint32_t(in.survivors.size());
    full.elapsed_us = in.elapsed_us;
    std::memcpy(out, &full, std::min<size_t>(out->size, sizeof full));

    if (!out->survivors) return;
    size_t n = std::min<size_t>(out->survivors_cap, in.survivors.size());
    for (size_t i = 0; i < n; ++i) {
        sessreap_survivor& s = out->survivors[i];
        s.pid = in.survivors[i].pid;
        s.state = in.survivors[i].state;
        std::memcpy(s.comm, in.survivors[i].comm.data(), sizeof s.comm);
    }
}

void open_state(Handle& h);

// Reads where the configuration comes from out of opts, as every call taking
// options does; fn names the entry point in messages.
int config_sources(const sessreap_options* opts, const char* fn, ConfigSources* out) {
    if (!opts) return 0;
    if (opts->size < kOptionsSizeV1)
        return fail(EINVAL, std::string(fn) + ": options size " + std::to_string(opts->size) +
                                " is smaller than the first release's " +
                                std::to_string(kOptionsSizeV1));
    if (opts->flags & ~SESSREAP_OPEN_NO_SYSTEM_CONFIG)
        return fail(EINVAL, std::string(fn) + ": unknown flags " + std::to_string(opts->flags));

    out->system_dirs = !(opts->flags & SESSREAP_OPEN_NO_SYSTEM_CONFIG);
    if (opts->config_root) out->root = opts->config_root;
    for (auto d = opts->config_dirs; d && *d; ++d) out->extra_dirs.emplace_back(*d);
    if (opts->config_json) out->inline_json = opts->config_json;
    return 0;
}

// A copy of text in memory from malloc(3), for the host to free(3); NULL when
// there is none left.
char* malloc_copy(const std::string& text) noexcept {
    auto copy = static_cast<char*>(malloc(text.size() + 1));
    if (copy) memcpy(copy, text.c_str(), text.size() + 1);
    return copy;
}

int open_handle(const sessreap_options* opts, sessreap_handle** ret) {
    if (!ret) return fail(EINVAL, "sessreap_open: ret is NULL");
    ConfigSources sources;
    if (int r = config_sources(opts, "sessreap_open", &sources); r < 0) return r;

    Result<Config> config = load_config(sources);
    if (!config) return fail(config.error());

    auto handle = std::make_shared<Handle>();
    handle->config = std::move(config.value());
    handle->log = Logger(handle->config.log, opts ? opts->log_fn : nullptr,
                         opts ? opts->log_userdata : nullptr);
    Result<UniqueFd> proc = open_proc();
    if (!proc) return fail(proc.error());
    handle->proc = std::move(proc.value());
    handle->proc_hides_others = proc_hides_others(handle->proc.get());
    if (handle->proc_hides_others)
        handle->log.log(LOG_WARNING, "/proc hides other users' processes (hidepid): the sweep "
                                     "can see and signal only this user's, ignoring the rest");

    if (handle->config.systemd.scope != ScopeMode::off) {
        handle->scope = std::make_unique<ScopeLayer>(handle->config, handle->log);
        if (!handle->config.cgroup.parent.empty())
            handle->log.log(LOG_WARNING, "cgroup.parent is ignored while systemd.scope is on: "
                                         "a child moved into its cgroup would leave its scope");
    }
    open_state(*handle);

    std::unique_lock lock(handles_mutex);
    uintptr_t token = next_token;
    next_token += 0x10;
    handles.emplace(token, std::move(handle));
    *ret = reinterpret_cast<sessreap_handle*>(token);
    return 0;
}

int run_teardown(Handle& h, LaunchRecord& rec, Report* report, ScopeLayer* scope) {
    TeardownContext ctx{h.config, h.log, h.proc.get(), HostIds::current(), h.proc_hides_others};
    ctx.scope = scope;
    return teardown(ctx, rec, report);
}

int run_teardown(Handle& h, LaunchRecord& rec, Report* report) {
    return run_teardown(h, rec, report, h.scope.get());
}

// Marks a record done on disk; failing that, a reaper could later take the
// child for one a dead host left behind, so it is said.
void forget_state(Handle& h, pid_t pid) {
    if (!h.state) return;
    if (Status st = h.state->remove(pid); !st)
        h.log.log(LOG_WARNING, st.error().message + ": the record of pid " + std::to_string(pid) +
                                   " stays on disk, ignoring");
}

// Adds one teardown's report to a running sum.
void add_report(const Report& one, Report* sum) {
    for (int l = 0; l < SESSREAP_LAYER_COUNT; ++l) sum->signalled[l] += one.signalled[l];
    sum->guards |= one.guards;
    sum->flags |= one.flags;
    sum->passes += one.passes;
    sum->excluded += one.excluded;
    sum->elapsed_us += one.elapsed_us;
    sum->survivors.insert(sum->survivors.end(), one.survivors.begin(), one.survivors.end());
}

// Tears down the persisted records of hosts that are gone. Returns how many.
int reap_stale_records(Handle& h, bool same_exe, Report* sum, int* first_error) {
    std::vector<std::string> skipped;
    auto stale = h.state->claim_stale(h.proc.get(), same_exe, &skipped);
    for (const std::string& why : skipped) h.log.log(LOG_NOTICE, why);

    int reaped = 0;
    for (StaleJournal& journal : stale) {
        bool complete = true;
        for (LaunchRecord& rec : journal.records) {
            CgroupRecord& cg = rec.cgroup;
            if (!cg.path.empty())
                cg.dir.reset(open(cg.path.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
            if (!rec.unit.empty() && !h.scope && !h.reap_scope)
                h.reap_scope = std::make_unique<ScopeLayer>(h.config, h.log);
            h.log.log(LOG_NOTICE, "Reaping session " + std::to_string(rec.session) +
                                      " left by host pid " + std::to_string(journal.host.pid) +
                                      " (" + journal.host.exe + "), which is gone");
            Report one;
            int r = run_teardown(h, rec, &one, h.scope ? h.scope.get() : h.reap_scope.get());
            add_report(one, sum);
            if (r < 0 && *first_error == 0) *first_error = r;
            complete &= r == 0 || r == -ETIMEDOUT;
            ++reaped;
        }
        // A teardown that could not see the session may have missed it: the
        // journal goes back, for a later call to try again.
        if (complete)
            StateStore::release(journal);
        else
            StateStore::unclaim(journal);
    }
    return reaped;
}

// Persistence is best effort: a host that cannot write its records still
// works, it only loses crash recovery, and is told so once.
void open_state(Handle& h) {
    std::string dir = h.config.state.dir;
    if (dir == Config::State{}.dir && geteuid() != 0) {
        const char* runtime = getenv("XDG_RUNTIME_DIR");
        dir = runtime && *runtime ? std::string(runtime) + "/sessreap/state" : "";
    }
    if (dir.empty()) return;

    Result<HostIdentity> self = HostIdentity::current(h.proc.get());
    if (!self) {
        h.log.log(LOG_WARNING, self.error().message + ", ignoring");
        return;
    }
    static std::atomic<uint64_t> handle_seq{0};
    auto store = std::make_unique<StateStore>(dir, std::move(self.value()), ++handle_seq);
    if (Status st = store->prepare(); !st) {
        h.log.log(LOG_WARNING, st.error().message + ": launch records are not persisted, ignoring");
        return;
    }
    h.state = std::move(store);

    if (h.config.state.reap_stale_on_open) {
        Report sum;
        int err = 0;
        int n = reap_stale_records(h, /*same_exe=*/true, &sum, &err);
        if (n > 0)
            h.log.log(LOG_NOTICE, "Reaped " + std::to_string(n) + " record(s) of a previous run");
    }
}

int close_handle(sessreap_handle* h) {
    std::shared_ptr<Handle> handle;
    {
        std::unique_lock lock(handles_mutex);
        auto it = handles.find(reinterpret_cast<uintptr_t>(h));
        if (it == handles.end()) return bad_handle(h);
        handle = std::move(it->second);
        handles.erase(it);
    }

    int first = 0;
    auto records = handle->registry.take_all();
    for (auto& [pid, rec] : records) {
        if (handle->config.teardown.on_close) {
            Report report;
            int r = run_teardown(*handle, *rec, &report);
            if (r < 0 && first == 0)
                first = fail(-r, "Teardown of pid " + std::to_string(pid) + " at close failed");
        }
        forget_state(*handle, pid);
    }
    return first;
}

// Puts the child in a scope or a cgroup of its own; the host holds it until
// launch returns, so nothing it starts can be outside. A failure leaves the
// child recorded without that layer, and is logged.
void attach_outer_layers(Handle& h, LaunchRecord& rec) {
    if (h.scope) {
        rec.unit = h.scope->attach(rec.pid, rec.name);
        return;
    }
    if (h.config.cgroup.parent.empty()) return;

    auto cg = cgroup_create_for(h.config.cgroup, rec.pid);
    if (!cg) {
        h.log.log(LOG_WARNING, cg.error().message + ", ignoring",
                  {Event::layer_skipped, rec.pid, nullptr, 0, "cgroup", nullptr});
        return;
    }
    rec.cgroup = std::move(cg.value());
}

int launch(sessreap_handle* h, pid_t pid, const char* name) {
    auto handle = find_handle(h);
    if (!handle) return bad_handle(h);

    auto rec =
        record_launch(handle->proc.get(), handle->log, HostIds::current(), pid, name ? name : "");
    if (!rec) return fail(rec.error());
    attach_outer_layers(*handle, *rec.value());
    if (handle->state) {
        if (Status st = handle->state->save(*rec.value()); !st)
            handle->log.log(LOG_WARNING, st.error().message + ", ignoring");
    }
    if (!handle->registry.insert(std::move(rec.value())))
        return fail(EEXIST, "pid " + std::to_string(pid) + " is already tracked");
    return 0;
}

int forget(sessreap_handle* h, pid_t pid) {
    auto handle = find_handle(h);
    if (!handle) return bad_handle(h);
    auto rec = handle->registry.take(pid);
    if (!rec) return fail(ENOENT, "pid " + std::to_string(pid) + " is not tracked");
    forget_state(*handle, pid);
    if (rec->cgroup.dir.valid()) {
        auto left = cgroup_forget(rec->cgroup);
        if (left && !left->removed)
            handle->log.log(LOG_NOTICE, "Left " + rec->cgroup.path + " in place: it still holds " +
                                            std::to_string(left->left) + " process(es)");
    }
    return 0;
}

int teardown_child(sessreap_handle* h, pid_t pid, sessreap_report* out) {
    auto handle = find_handle(h);
    if (!handle) return bad_handle(h);
    if (out && out->size < kReportSizeV1)
        return fail(EINVAL, "sessreap_teardown: report size " + std::to_string(out->size) +
                                " is smaller than the first release's " +
                                std::to_string(kReportSizeV1));
    if (out && out->survivors_cap && !out->survivors)
        return fail(EINVAL, "sessreap_teardown: survivors_cap is set but survivors is NULL");

    auto rec = handle->registry.take(pid);
    if (!rec) return fail(ENOENT, "pid " + std::to_string(pid) + " is not tracked");

    // A teardown cut short by an exception (out of memory) keeps the record,
    // so the host can call again once memory is back.
    Report report;
    int r = 0;
    try {
        r = run_teardown(*handle, *rec, &report);
    } catch (...) {
        handle->registry.insert(std::move(rec));
        throw;
    }
    if (out) copy_report(report, out);
    if (r == 0 || r == -ETIMEDOUT) forget_state(*handle, pid);
    if (r == -ETIMEDOUT)
        return fail(-r, std::to_string(report.survivors.size()) + " process(es) of session " +
                            std::to_string(rec->session) + " survived the teardown");
    if (r < 0) {
        pid_t session = rec->session;
        handle->registry.insert(std::move(rec));
        return fail(-r, "Failed to walk /proc for session " + std::to_string(session) + ": " +
                            errno_string(-r) + "; the record is kept, try again");
    }
    return 0;
}

int reap_stale(sessreap_handle* h, sessreap_report* out) {
    auto handle = find_handle(h);
    if (!handle) return bad_handle(h);
    if (out && out->size < kReportSizeV1)
        return fail(EINVAL, "sessreap_reap_stale: report size " + std::to_string(out->size) +
                                " is smaller than the first release's " +
                                std::to_string(kReportSizeV1));
    if (!handle->state) return 0;

    Report sum;
    int err = 0;
    int n = reap_stale_records(*handle, /*same_exe=*/false, &sum, &err);
    if (out) copy_report(sum, out);
    if (err < 0) return fail(-err, "Some sessions of stale records survived the teardown");
    return n;
}

int config_show(const sessreap_options* opts, char** ret_json) {
    if (!ret_json) return fail(EINVAL, "sessreap_config_show: ret_json is NULL");
    ConfigSources sources;
    if (int r = config_sources(opts, "sessreap_config_show", &sources); r < 0) return r;

    Result<EffectiveConfig> effective = load_effective_config(sources);
    if (!effective) return fail(effective.error());

    nlohmann::json doc = {{"config", effective->json}, {"origins", effective->origins}};
    // Replace, not throw: a path that is not UTF-8 is still worth showing.
    char* text = malloc_copy(doc.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
    if (!text) return fail(ENOMEM, "Out of memory");
    *ret_json = text;
    return 0;
}

int config_check(const sessreap_options* opts, const char* const* files, char** ret_errors) {
    if (!ret_errors) return fail(EINVAL, "sessreap_config_check: ret_errors is NULL");
    ConfigSources sources;
    if (int r = config_sources(opts, "sessreap_config_check", &sources); r < 0) return r;

    std::vector<Error> errors;
    if (files) {
        std::vector<std::string> paths;
        for (auto f = files; *f; ++f) paths.emplace_back(*f);
        errors = check_config_files(paths);
    } else {
        errors = check_effective_config(sources);
    }

    // Running out of memory says nothing about the files: fail the call instead.
    std::string text;
    for (const Error& e : errors) {
        if (e.code == ENOMEM) return fail(e);
        // One error per line, even for a file whose name holds a newline.
        std::string line = e.message;
        auto is_break = [](char c) { return c == '\n' || c == '\r'; };
        std::replace_if(line.begin(), line.end(), is_break, ' ');
        text += line + "\n";
    }
    char* copy = malloc_copy(text);
    if (!copy) return fail(ENOMEM, "Out of memory");
    *ret_errors = copy;
    return int(std::min<size_t>(errors.size(), INT_MAX));
}

} // namespace
} // namespace sessreap

using namespace sessreap;

SESSREAP_PUBLIC uint32_t sessreap_abi_version(void) {
    return (uint32_t(SESSREAP_ABI_MAJOR) << 16) | SESSREAP_ABI_MINOR;
}

SESSREAP_PUBLIC const char* sessreap_version(void) {
    return SESSREAP_VERSION;
}

SESSREAP_PUBLIC const char* sessreap_last_error(void) {
    return last_error;
}

SESSREAP_PUBLIC int sessreap_open(const sessreap_options* opts, sessreap_handle** ret) {
    return guarded([&] { return open_handle(opts, ret); });
}

SESSREAP_PUBLIC int sessreap_close(sessreap_handle* h) {
    if (!h) return 0;
    return guarded([&] { return close_handle(h); });
}

SESSREAP_PUBLIC int sessreap_launch(sessreap_handle* h, pid_t pid, const char* name) {
    return guarded([&] { return launch(h, pid, name); });
}

SESSREAP_PUBLIC int sessreap_forget(sessreap_handle* h, pid_t pid) {
    return guarded([&] { return forget(h, pid); });
}

SESSREAP_PUBLIC int sessreap_teardown(sessreap_handle* h, pid_t pid, sessreap_report* report) {
    return guarded([&] { return teardown_child(h, pid, report); });
}

SESSREAP_PUBLIC int sessreap_reap_stale(sessreap_handle* h, sessreap_report* report) {
    return guarded([&] { return reap_stale(h, report); });
}

SESSREAP_PUBLIC int sessreap_config_show(const sessreap_options* opts, char** ret_json) {
    return guarded([&] { return config_show(opts, ret_json); });
}

SESSREAP_PUBLIC int sessreap_config_check(const sessreap_options* opts, const char* const* files,
                                          char** ret_errors) {
    return guarded([&] { return config_check(opts, files, ret_errors); });
}
