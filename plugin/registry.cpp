// SPDX-License-Identifier: LGPL-2.1-or-later
// The launch registry: what was recorded of each child, keyed by pid.
#include "registry.h"

namespace sessreap {

bool Registry::insert(std::unique_ptr<LaunchRecord> record) {
    std::lock_guard lock(mutex_);
    pid_t pid = record->pid;
    return records_.try_emplace(pid, std::move(record)).second;
}

std::unique_ptr<LaunchRecord> Registry::take(pid_t pid) {
    std::lock_guard lock(mutex_);
    auto it = records_.find(pid);
    if (it == records_.end()) return nullptr;

    auto record = std::move(it->second);
    records_.erase(it);
    return record;
}

std::unordered_map<pid_t, std::unique_ptr<LaunchRecord>> Registry::take_all() {
    std::lock_guard lock(mutex_);
    return std::exchange(records_, {});
}

size_t Registry::size() const {
    std::lock_guard lock(mutex_);
    return records_.size();
}

} // namespace sessreap
