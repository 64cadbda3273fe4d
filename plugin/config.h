// SPDX-License-Identifier: LGPL-2.1-or-later
// The effective configuration of a handle, and how it is loaded from drop-ins.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "util.h"

namespace sessreap {

// Protects matching processes from every layer that signals processes one by
// one. A rule matches when every field it sets matches.
struct ExcludeRule {
    std::optional<std::string> comm; // exact command name (field 2 of stat)
    std::optional<std::string> exe;  // fnmatch(3) glob on /proc/PID/exe
    std::optional<uid_t> uid;        // real uid
    std::string origin;              // "FILE:LINE:COL" where the rule was set
};

enum class ScopeMode { off, adopt, create };
enum class BusKind { automatic, system, user };
enum class CgroupKill { automatic, freeze }; // freeze forces the pre-5.14 path
enum class LogSink { automatic, host, journald, stderr_ };

struct Config {
    struct Teardown {
        int term_signal = 15; // SIGTERM
        int kill_signal = 9;  // SIGKILL
        std::chrono::milliseconds grace{2000};
        std::chrono::milliseconds cap{10000};
        bool group = true; // the process-group layer
        bool dry_run = false;
        bool on_close = false; // tear down every tracked child at close
    } teardown;

    struct Sweep {
        bool enabled = true;
        int max_passes = 32;
    } sweep;

    struct Systemd {
        ScopeMode scope = ScopeMode::off;
        BusKind bus = BusKind::automatic;
        std::string slice;                       // empty: systemd's default
        std::chrono::milliseconds timeout{2000}; // each D-Bus call and job wait
    } systemd;

    struct Cgroup {
        std::string parent; // delegated cgroup2 directory; empty: layer off
        CgroupKill kill = CgroupKill::automatic;
    } cgroup;

    // Launch records persisted so that children of a host that died can be
    // reaped later (sessreap_reap_stale, sessreap-host reap-stale).
    struct State {
        std::string dir = "/run/sessreap/state"; // empty: records are not persisted
        bool reap_stale_on_open = false;
    } state;

    struct Log {
        int level = 6; // LOG_INFO
        LogSink sink = LogSink::automatic;
    } log;

    std::vector<ExcludeRule> exclude;
};

// Where a handle's configuration comes from.
struct ConfigSources {
    std::string root = "/";                 // the system directories resolve under it
    bool system_dirs = true;                // vendor, /etc and /run drop-in directories
    std::vector<std::string> extra_dirs;    // host directories, applied after every system file
    std::optional<std::string> inline_json; // host document, applied last
};

// Loads defaults, then drop-ins, then the host's additions. On failure the
// error names the file, line and column, the key path and what was expected.
// Errors: EINVAL for invalid content (also a file over 1 MiB or one that is not a
// regular file); the errno of a failed open or read (EACCES, ELOOP, EIO, ...).
// See docs/configuration.md.
Result<Config> load_config(const ConfigSources& sources);

// The effective configuration and where each of its values came from.
struct EffectiveConfig {
    Config config;
    nlohmann::json json; // every key, defaults included, in the drop-in format
    // Leaf key path ("teardown.grace_ms", "exclude") -> the drop-in's path,
    // "<default>" or "<inline>".
    std::map<std::string, std::string> origins;
};

// load_config, keeping the merged document and the origin of every key.
Result<EffectiveConfig> load_effective_config(const ConfigSources& sources);

// Validates each file on its own as a drop-in and returns every error found,
// in order (empty when all are valid). An empty file or a /dev/null link is valid.
std::vector<Error> check_config_files(const std::vector<std::string>& files);

// Validates one document given as text; origin names it in the messages.
std::vector<Error> check_config_text(const std::string& origin, const std::string& text);

// Renders config in the drop-in format, every key present; loading the result
// as a drop-in yields config again (except each exclude rule's origin).
nlohmann::json config_to_json(const Config& config);

// Every leaf key path the loader accepts, "teardown.grace_ms" ... "exclude[].uid".
std::vector<std::string> config_key_paths();

// The drop-in directories of sources, lowest precedence first: vendor, /etc and
// /run under the root (when system_dirs), then the extra directories.
std::vector<std::string> config_drop_in_dirs(const ConfigSources& sources);

// The drop-in files of sources in the order they apply, masks left out: the system
// directories' files that survive replacement and masking, in lexical order of name; then
// each extra directory's files in lexical order, less those a later extra directory
// replaces or masks. A directory that cannot be listed adds an error and no files.
std::vector<std::string> config_drop_in_files(const ConfigSources& sources,
                                              std::vector<Error>& errors);

// Validates every drop-in of sources on its own, then the inline document, and returns
// every error found (directories that cannot be listed included); empty when all are valid.
std::vector<Error> check_effective_config(const ConfigSources& sources);

} // namespace sessreap
