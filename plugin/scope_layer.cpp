// SPDX-License-Identifier: LGPL-2.1-or-later
// The systemd scope layer of one handle: a lazily connected, serialised bus.
#include "scope_layer.h"

#include <algorithm>

namespace sessreap {
namespace {

// After a failed connection or call, the bus is left alone this long.
constexpr int64_t kRetryNs = 30'000'000'000;

} // namespace

ScopeLayer::ScopeLayer(const Config& config, const Logger& log) : config_(config), log_(log) {}

void ScopeLayer::failed(const Error& e) {
    client_.reset();
    retry_after_ns_ = now_ns() + kRetryNs;
    if (warned_) return;
    warned_ = true;
    log_.log(LOG_WARNING, e.message + ": skipping the scope layer (said once per handle)",
             {Event::layer_skipped, 0, nullptr, 0, "scope", nullptr});
}

ScopeClient* ScopeLayer::client() {
    if (client_) return client_.get();
    if (now_ns() < retry_after_ns_) return nullptr;

    // Half the cap at most, so a bus that never answers still leaves the
    // group and sweep layers their share of it.
    auto timeout = std::min(config_.systemd.timeout, config_.teardown.cap / 2);
    auto connected = ScopeClient::connect(config_.systemd.bus, timeout);
    if (!connected) {
        failed(connected.error());
        return nullptr;
    }
    client_ = std::move(connected.value());
    auto own = own_unit(config_.systemd.bus);
    own_unit_ = own ? own.value() : "";
    return client_.get();
}

std::string ScopeLayer::attach(pid_t pid, const std::string& name) {
    std::lock_guard lock(mutex_);
    ScopeClient* c = client();
    if (!c) return "";

    if (config_.systemd.scope == ScopeMode::create) {
        auto unit = c->create_scope(pid, name, config_.systemd.slice);
        if (!unit) {
            failed(unit.error());
            return "";
        }
        log_.log(LOG_INFO, "Started scope " + unit.value() + " for pid " + std::to_string(pid));
        return unit.value();
    }

    auto unit = c->unit_of_pid(pid);
    if (!unit) {
        log_.log(LOG_WARNING,
                 unit.error().message + ", not adopting a unit for pid " + std::to_string(pid));
        return "";
    }
    if (unit.value() == own_unit_) {
        log_.log(LOG_WARNING, "Not adopting " + unit.value() + " for pid " + std::to_string(pid) +
                                  ": the host runs in it too");
        return "";
    }
    log_.log(LOG_INFO, "Adopted " + unit.value() + " for pid " + std::to_string(pid));
    return unit.value();
}

Result<std::vector<pid_t>> ScopeLayer::processes(const std::string& unit) {
    std::lock_guard lock(mutex_);
    ScopeClient* c = client();
    if (!c) return make_error(ENOTCONN, "The bus is down");

    auto procs = c->unit_processes(unit);
    // A unit systemd no longer knows (its processes are gone and it was
    // collected) has nothing left to signal; the bus is fine.
    if (!procs && procs.error().code == ENOENT) return std::vector<pid_t>{};
    if (!procs) failed(procs.error());
    return procs;
}

int ScopeLayer::kill(const std::string& unit, int sig) {
    std::lock_guard lock(mutex_);
    ScopeClient* c = client();
    if (!c) return -ENOTCONN;

    Status st = c->kill_unit(unit, sig);
    if (st) return 0;
    if (st.error().code == EPERM)
        log_.log(LOG_WARNING, st.error().message);
    else
        failed(st.error());
    return -st.error().code;
}

int ScopeLayer::stop(const std::string& unit) {
    if (config_.teardown.dry_run) {
        log_.log(LOG_INFO, "Would stop " + unit);
        return 0;
    }
    std::lock_guard lock(mutex_);
    ScopeClient* c = client();
    if (!c) return -ENOTCONN;

    if (Status st = c->stop_unit(unit); !st) {
        if (st.error().code != EPERM)
            failed(st.error());
        else
            log_.log(LOG_WARNING, st.error().message);
        return -st.error().code;
    }
    log_.log(LOG_INFO, "Stopped " + unit,
             {Event::unit_stopped, 0, nullptr, 0, "scope", unit.c_str()});
    return 0;
}

} // namespace sessreap
