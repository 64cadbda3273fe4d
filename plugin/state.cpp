// SPDX-License-Identifier: LGPL-2.1-or-later
// Launch records on disk, so that a host that died can be cleaned up after.
#include "state.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <sstream>
#include <string_view>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "procfs.h"

namespace sessreap {
namespace {

using json = nlohmann::json;

// Past this size a journal is rewritten with only its live records.
constexpr size_t kCompactBytes = 1 << 20;
constexpr size_t kMaxJournal = 64 << 20;

std::string read_file(const std::string& path, size_t limit) {
    UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
    if (!fd.valid()) return "";
    std::string out;
    char buf[65536];
    ssize_t n;
    while (out.size() < limit && (n = read(fd.get(), buf, sizeof buf)) > 0)
        out.append(buf, size_t(n));
    return out;
}

std::string read_boot_id() {
    std::string id = read_file("/proc/sys/kernel/random/boot_id", 128);
    while (!id.empty() && id.back() == '\n') id.pop_back();
    return id;
}

// The PID namespace we run in, as "dev:inode" of /proc/self/ns/pid.
std::string read_pid_namespace() {
    struct stat st;
    if (stat("/proc/self/ns/pid", &st) < 0) return "";
    return std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino);
}

// mkdir -p, with mode 0700 for the parts it creates.
int make_dirs(const std::string& dir) {
    for (size_t pos = dir.find('/', 1);; pos = dir.find('/', pos + 1)) {
        if (mkdir(dir.substr(0, pos).c_str(), 0700) < 0 && errno != EEXIST) return -errno;
        if (pos == std::string::npos) return 0;
    }
}

// The length of the UTF-8 sequence s starts with (its first byte >= 0x80),
// or 0 when it is not one: overlong forms, surrogates and code points past
// U+10FFFF are refused, as JSON readers refuse them.
size_t utf8_length(std::string_view s) {
    auto b = [&](size_t i) { return static_cast<unsigned char>(s[i]); };
    unsigned char c = b(0);
    size_t n = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 ? 2 : 0;
    if (n == 0 || c > 0xF4 || s.size() < n) return 0;
    for (size_t i = 1; i < n; ++i)
        if ((b(i) & 0xC0) != 0x80) return 0;
    if (c == 0xE0 && b(1) < 0xA0) return 0;  // overlong
    if (c == 0xED && b(1) >= 0xA0) return 0; // surrogate
    if (c == 0xF0 && b(1) < 0x90) return 0;  // overlong
    if (c == 0xF4 && b(1) >= 0x90) return 0; // past U+10FFFF
    return n;
}

// Appends s as a JSON string. Bytes that are not UTF-8 become U+FFFD: a
// line nlohmann's reader refuses would lose the whole record.
void append_string(std::string& out, std::string_view s) {
    static const char hex[] = "0123456789abcdef";
    out += '"';
    for (size_t i = 0; i < s.size(); ++i) {
        auto c = static_cast<unsigned char>(s[i]);
        if (c >= 0x80) {
            size_t n = utf8_length(s.substr(i));
            if (n == 0)
                out += "\xEF\xBF\xBD";
            else
                out.append(s.substr(i, n));
            i += n > 0 ? n - 1 : 0;
        } else if (c == '"' || c == '\\') {
            out += '\\';
            out += char(c);
        } else if (c < 0x20) {
            out += "\\u00";
            out += hex[c >> 4];
            out += hex[c & 15];
        } else {
            out += char(c);
        }
    }
    out += '"';
}

void append_number(std::string& out, uint64_t v) {
    char buf[24];
    auto end = std::to_chars(buf, buf + sizeof buf, v).ptr;
    out.append(buf, end);
}

void append_number(std::string& out, int v) {
    char buf[16];
    auto end = std::to_chars(buf, buf + sizeof buf, v).ptr;
    out.append(buf, end);
}

// The journal's lines are built by hand: nlohmann::json's objects and dump()
// cost about 3 µs per launch, more than the write(2) and the rest of the
// record together.
std::string host_line(const HostIdentity& h) {
    std::string out = R"({"version":2,"boot_id":)";
    append_string(out, h.boot_id);
    out += R"(,"host_pid":)";
    append_number(out, int(h.pid));
    out += R"(,"host_starttime":)";
    append_number(out, h.starttime);
    out += R"(,"host_exe":)";
    append_string(out, h.exe);
    out += R"(,"pid_namespace":)";
    append_string(out, h.pid_namespace);
    out += "}\n";
    return out;
}

std::string launch_line(const LaunchRecord& r) {
    std::string out;
    out.reserve(160 + r.name.size() + r.unit.size() + r.cgroup.path.size());
    out += R"({"launch":{"pid":)";
    append_number(out, int(r.pid));
    out += R"(,"session":)";
    append_number(out, int(r.session));
    out += R"(,"pgrp":)";
    append_number(out, int(r.pgrp));
    out += R"(,"starttime":)";
    append_number(out, r.starttime);
    out += r.sweep ? R"(,"sweep":true)" : R"(,"sweep":false)";
    out += r.group ? R"(,"group":true)" : R"(,"group":false)";
    out += R"(,"name":)";
    append_string(out, r.name);
    out += R"(,"unit":)";
    append_string(out, r.unit);
    out += R"(,"cgroup":)";
    append_string(out, r.cgroup.path);
    out += "}}\n";
    return out;
}

std::string done_line(pid_t pid) {
    std::string out = R"({"done":)";
    append_number(out, int(pid));
    out += "}\n";
    return out;
}

bool parse_host(const json& j, HostIdentity* h) {
    if (!j.is_object() || j.value("version", 0) != 2) return false;
    h->boot_id = j.at("boot_id").get<std::string>();
    h->pid = j.at("host_pid").get<pid_t>();
    h->starttime = j.at("host_starttime").get<uint64_t>();
    h->exe = j.at("host_exe").get<std::string>();
    h->pid_namespace = j.at("pid_namespace").get<std::string>();
    return true;
}

// A record with ids no live launch could have is refused outright.
bool parse_record(const json& j, LaunchRecord* r) {
    r->pid = j.at("pid").get<pid_t>();
    r->session = j.at("session").get<pid_t>();
    r->pgrp = j.at("pgrp").get<pid_t>();
    r->starttime = j.at("starttime").get<uint64_t>();
    r->sweep = j.at("sweep").get<bool>();
    r->group = j.at("group").get<bool>();
    r->name = j.at("name").get<std::string>();
    r->unit = j.at("unit").get<std::string>();
    r->cgroup.path = j.at("cgroup").get<std::string>();
    return r->pid > 1 && r->session >= 0 && r->pgrp >= 0 && r->starttime > 0;
}

// Replays a journal: its host, and the records launched and not done. Lines
// that do not parse (a torn last line) are skipped.
bool replay(const std::string& text, HostIdentity* host, std::vector<LaunchRecord>* live) {
    std::istringstream lines(text);
    std::string line;
    if (!std::getline(lines, line)) return false;
    try {
        if (!parse_host(json::parse(line), host)) return false;
    } catch (const json::exception&) {
        return false;
    }

    std::unordered_map<pid_t, LaunchRecord> open;
    while (std::getline(lines, line)) {
        json j = json::parse(line, nullptr, false);
        if (j.is_discarded() || !j.is_object()) continue;
        try {
            if (j.contains("done")) {
                open.erase(j["done"].get<pid_t>());
            } else if (j.contains("launch")) {
                LaunchRecord r;
                if (parse_record(j["launch"], &r)) open[r.pid] = std::move(r);
            }
        } catch (const json::exception&) {
        }
    }
    for (auto& [pid, r] : open) live->push_back(std::move(r));
    return true;
}

// The pid a line of our own journal is about, as launch_line and done_line
// write them: {"launch":{"pid":N,... or {"done":N}. 0 for any other line.
pid_t line_pid(std::string_view line, bool* launch) {
    constexpr std::string_view kLaunch = R"({"launch":{"pid":)";
    constexpr std::string_view kDone = R"({"done":)";
    *launch = line.starts_with(kLaunch);
    if (!*launch && !line.starts_with(kDone)) return 0;
    line.remove_prefix(*launch ? kLaunch.size() : kDone.size());
    pid_t pid = 0;
    std::from_chars(line.data(), line.data() + line.size(), pid);
    return pid;
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

StateStore::StateStore(std::string dir, HostIdentity self, uint64_t handle_id)
    : dir_(std::move(dir)), self_(std::move(self)) {
    path_ = dir_ + "/" + std::to_string(self_.pid) + "-" + std::to_string(self_.starttime) + "-" +
            std::to_string(handle_id) + ".journal";
}

StateStore::~StateStore() {
    std::lock_guard lock(mutex_);
    if (fd_.valid()) unlink(path_.c_str());
}

Status StateStore::prepare() {
    if (int r = make_dirs(dir_); r < 0)
        return make_error(-r, "Failed to create " + dir_ + ": " + errno_string(-r));
    if (access(dir_.c_str(), W_OK) < 0)
        return make_error(errno, "Cannot write to " + dir_ + ": " + errno_string(errno));
    return Ok{};
}

// Opened at the first launch, so a handle that launches nothing leaves no file.
Status StateStore::open_journal() {
    fd_.reset(open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC | O_NOFOLLOW,
                   0600));
    if (!fd_.valid())
        return make_error(errno, "Failed to open " + path_ + ": " + errno_string(errno));
    written_ = 0;
    return append(host_line(self_));
}

Status StateStore::append(const std::string& line) {
    if (write(fd_.get(), line.data(), line.size()) != ssize_t(line.size())) {
        int err = errno ? errno : EIO;
        return make_error(err, "Failed to write " + path_ + ": " + errno_string(err));
    }
    written_ += line.size();
    return Ok{};
}

Status StateStore::save(const LaunchRecord& rec) {
    std::string line = launch_line(rec);
    std::lock_guard lock(mutex_);
    if (!fd_.valid())
        if (Status st = open_journal(); !st) return st;
    if (Status st = append(line); !st) return st;
    live_.insert(rec.pid);
    if (written_ > std::max(kCompactBytes, compact_at_) && written_ > 8 * live_.size() * 256)
        compact();
    return Ok{};
}

Status StateStore::remove(pid_t pid) {
    std::lock_guard lock(mutex_);
    if (!fd_.valid() || live_.erase(pid) == 0) return Ok{};

    // Nothing tracked: start the journal afresh instead of letting it grow.
    if (live_.empty() && ftruncate(fd_.get(), 0) == 0) {
        written_ = 0;
        return append(host_line(self_));
    }
    return append(done_line(pid));
}

// Rewrites the journal with the live records only, then renames it over the
// old one: a reader sees one or the other, whole. The records are read back
// from the journal itself: keeping every live line in memory cost about
// 250 bytes per tracked child. A live record not found there (a torn line
// ran into it) leaves the journal as it is.
void StateStore::compact() {
    // Should this attempt fail, the next waits for another kCompactBytes,
    // not for the next launch.
    compact_at_ = written_ + kCompactBytes;
    std::string old = read_file(path_, std::string::npos);
    std::unordered_map<pid_t, std::string_view> latest;
    for (size_t pos = 0, end; (end = old.find('\n', pos)) != std::string::npos; pos = end + 1) {
        std::string_view line(old.data() + pos, end + 1 - pos);
        bool launch = false;
        pid_t pid = line_pid(line, &launch);
        if (pid > 0 && launch)
            latest[pid] = line;
        else if (pid > 0)
            latest.erase(pid);
    }
    std::string text = host_line(self_);
    for (pid_t pid : live_) {
        auto it = latest.find(pid);
        if (it == latest.end()) return;
        text += it->second;
    }

    std::string tmp = path_ + ".tmp";
    UniqueFd fd(
        open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600));
    if (!fd.valid()) return;
    if (write(fd.get(), text.data(), text.size()) != ssize_t(text.size()) ||
        rename(tmp.c_str(), path_.c_str()) < 0) {
        unlink(tmp.c_str());
        return;
    }
    fd_ = std::move(fd);
    written_ = text.size();
    compact_at_ = 0;
}

std::vector<StaleJournal> StateStore::claim_stale(int proc_fd, bool same_exe,
                                                  std::vector<std::string>* skipped) {
    std::vector<StaleJournal> out;
    DIR* d = opendir(dir_.c_str());
    if (!d) return out;

    while (dirent* e = readdir(d)) {
        std::string name = e->d_name;
        const std::string ext = ".journal";
        // A reaper that died mid-way left its claim: take it over once that
        // reaper is gone.
        size_t claim = name.find(ext + ".reaping.");
        if (claim != std::string::npos) {
            pid_t reaper = pid_from_name(name.c_str() + claim + ext.size() + 9);
            if (reaper <= 0 || kill(reaper, 0) == 0 || errno != ESRCH) continue;
            std::string original = dir_ + "/" + name.substr(0, claim + ext.size());
            if (rename((dir_ + "/" + name).c_str(), original.c_str()) < 0) continue;
            name = name.substr(0, claim + ext.size());
        }
        if (name.size() <= ext.size() || name.compare(name.size() - ext.size(), ext.size(), ext))
            continue;
        std::string path = dir_ + "/" + name;

        StaleJournal j;
        if (!replay(read_file(path, kMaxJournal), &j.host, &j.records)) {
            skipped->push_back(path + ": not a sessreap launch journal, ignoring");
            continue;
        }
        if (j.host.boot_id != self_.boot_id) {
            // Every id in it belongs to a boot that is over.
            unlink(path.c_str());
            skipped->push_back(path + ": written before the last boot, removed");
            continue;
        }
        if (j.host.pid_namespace != self_.pid_namespace) {
            skipped->push_back(path + ": written in another PID namespace, ignoring");
            continue;
        }
        StatFields st;
        bool host_alive = read_stat(proc_fd, j.host.pid, &st) == 0 &&
                          st.starttime == j.host.starttime && !state_is_gone(st.state);
        if (host_alive || (same_exe && j.host.exe != self_.exe)) continue;

        // Claim it: only one reaper's rename can succeed.
        std::string claimed = path + ".reaping." + std::to_string(self_.pid);
        if (rename(path.c_str(), claimed.c_str()) < 0) continue;
        j.path = claimed;
        out.push_back(std::move(j));
    }
    closedir(d);
    return out;
}

void StateStore::release(const StaleJournal& journal) {
    unlink(journal.path.c_str());
}

void StateStore::unclaim(const StaleJournal& journal) {
    std::string original = journal.path.substr(0, journal.path.rfind(".reaping."));
    rename(journal.path.c_str(), original.c_str());
}

} // namespace sessreap
