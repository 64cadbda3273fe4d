// SPDX-License-Identifier: LGPL-2.1-or-later
// Launch records on disk, so that a host that died can be cleaned up after.
#include "state.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "procfs.h"

namespace sessreap {
namespace {

std::string read_small_file(const std::string& path) {
    UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
    if (!fd.valid()) return "";
    char buf[8192];
    ssize_t n = read(fd.get(), buf, sizeof buf);
    return n > 0 ? std::string(buf, size_t(n)) : "";
}

std::string read_boot_id() {
    std::string id = read_small_file("/proc/sys/kernel/random/boot_id");
    while (!id.empty() && id.back() == '\n') id.pop_back();
    return id;
}

// mkdir -p, with mode 0700 for the parts it creates.
int make_dirs(const std::string& dir) {
    for (size_t pos = dir.find('/', 1);; pos = dir.find('/', pos + 1)) {
        if (mkdir(dir.substr(0, pos).c_str(), 0700) < 0 && errno != EEXIST) return -errno;
        if (pos == std::string::npos) return 0;
    }
}

// The PID namespace we run in, as "dev:inode" of /proc/self/ns/pid.
std::string read_pid_namespace() {
    struct stat st;
    if (stat("/proc/self/ns/pid", &st) < 0) return "";
    return std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino);
}

nlohmann::json to_json(const HostIdentity& host, const LaunchRecord& rec) {
    return {{"version", 1},
            {"boot_id", host.boot_id},
            {"host_pid", host.pid},
            {"host_starttime", host.starttime},
            {"host_exe", host.exe},
            {"pid_namespace", host.pid_namespace},
            {"pid", rec.pid},
            {"session", rec.session},
            {"pgrp", rec.pgrp},
            {"starttime", rec.starttime},
            {"sweep", rec.sweep},
            {"group", rec.group},
            {"name", rec.name},
            {"unit", rec.unit},
            {"cgroup", rec.cgroup.path}};
}

bool from_json(const std::string& text, StoredRecord* out) {
    nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
    if (j.is_discarded() || !j.is_object() || j.value("version", 0) != 1) return false;
    try {
        out->host.boot_id = j.at("boot_id").get<std::string>();
        out->host.pid = j.at("host_pid").get<pid_t>();
        out->host.starttime = j.at("host_starttime").get<uint64_t>();
        out->host.exe = j.at("host_exe").get<std::string>();
        out->host.pid_namespace = j.at("pid_namespace").get<std::string>();
        LaunchRecord& rec = out->launch;
        rec.pid = j.at("pid").get<pid_t>();
        rec.session = j.at("session").get<pid_t>();
        rec.pgrp = j.at("pgrp").get<pid_t>();
        rec.starttime = j.at("starttime").get<uint64_t>();
        rec.sweep = j.at("sweep").get<bool>();
        rec.group = j.at("group").get<bool>();
        rec.name = j.at("name").get<std::string>();
        rec.unit = j.at("unit").get<std::string>();
        rec.cgroup.path = j.at("cgroup").get<std::string>();
    } catch (const nlohmann::json::exception&) {
        return false;
    }
    // A record with ids no live launch could have is refused outright.
    const LaunchRecord& r = out->launch;
    return r.pid > 1 && r.session >= 0 && r.pgrp >= 0 && r.starttime > 0;
}

} // namespace

Result<HostIdentity> HostIdentity::current(int proc_fd) {
    HostIdentity id;
    id.pid = getpid();
    StatFields st;
    if (int r = read_stat(proc_fd, id.pid, &st); r < 0)
        return make_error(-r, "Failed to read our own /proc/self/stat: " + errno_string(-r));
    id.starttime = st.starttime;
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    id.exe = n > 0 ? std::string(exe, size_t(n)) : "";
    id.boot_id = read_boot_id();
    id.pid_namespace = read_pid_namespace();
    return id;
}

std::string StateStore::file_for(pid_t host_pid, uint64_t host_start, pid_t pid) const {
    return dir_ + "/" + std::to_string(host_pid) + "-" + std::to_string(host_start) + "-" +
           std::to_string(pid) + ".json";
}

Status StateStore::prepare() {
    if (int r = make_dirs(dir_); r < 0)
        return make_error(-r, "Failed to create " + dir_ + ": " + errno_string(-r));
    if (access(dir_.c_str(), W_OK) < 0)
        return make_error(errno, "Cannot write to " + dir_ + ": " + errno_string(errno));
    return Ok{};
}

Status StateStore::save(const LaunchRecord& rec) {
    std::string path = file_for(self_.pid, self_.starttime, rec.pid);
    std::string tmp = path + ".tmp";
    std::string text = to_json(self_, rec).dump() + "\n";
    UniqueFd fd(open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600));
    if (!fd.valid())
        return make_error(errno, "Failed to write " + tmp + ": " + errno_string(errno));
    if (write(fd.get(), text.data(), text.size()) != ssize_t(text.size())) {
        int err = errno ? errno : EIO;
        unlink(tmp.c_str());
        return make_error(err, "Failed to write " + tmp + ": " + errno_string(err));
    }
    fd.reset();

    // rename(2) replaces atomically: a reaper sees the old file or the new,
    // never half of one.
    if (rename(tmp.c_str(), path.c_str()) < 0) {
        int err = errno;
        unlink(tmp.c_str());
        return make_error(err, "Failed to rename " + tmp + ": " + errno_string(err));
    }
    return Ok{};
}

void StateStore::remove(pid_t pid) {
    unlink(file_for(self_.pid, self_.starttime, pid).c_str());
}

std::vector<StoredRecord> StateStore::claim_stale(int proc_fd, bool same_exe,
                                                  std::vector<std::string>* skipped) {
    std::vector<StoredRecord> out;
    DIR* d = opendir(dir_.c_str());
    if (!d) return out;

    while (dirent* e = readdir(d)) {
        std::string name = e->d_name;
        if (name.size() < 5 || name.compare(name.size() - 5, 5, ".json") != 0) continue;
        std::string path = dir_ + "/" + name;

        StoredRecord rec;
        if (!from_json(read_small_file(path), &rec)) {
            skipped->push_back(path + ": not a sessreap launch record, ignoring");
            continue;
        }
        if (rec.host.boot_id != self_.boot_id) {
            // Every id in it belongs to a boot that is over.
            unlink(path.c_str());
            skipped->push_back(path + ": written before the last boot, removed");
            continue;
        }
        if (rec.host.pid_namespace != self_.pid_namespace) {
            // Its pids are another namespace's: here they name other processes.
            skipped->push_back(path + ": written in another PID namespace, ignoring");
            continue;
        }
        StatFields st;
        bool host_alive = read_stat(proc_fd, rec.host.pid, &st) == 0 &&
                          st.starttime == rec.host.starttime && !state_is_gone(st.state);
        if (host_alive || (same_exe && rec.host.exe != self_.exe)) continue;

        // Claim it: only one reaper's rename can succeed.
        std::string claimed = path + ".reaping." + std::to_string(self_.pid);
        if (rename(path.c_str(), claimed.c_str()) < 0) continue;
        rec.path = claimed;
        out.push_back(std::move(rec));
    }
    closedir(d);
    return out;
}

void StateStore::release(const StoredRecord& rec) { unlink(rec.path.c_str()); }

} // namespace sessreap
