// SPDX-License-Identifier: LGPL-2.1-or-later
// Finds the drop-in files, resolves replacement and masking, and merges them over the defaults.
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <new>

#include "config.h"
#include "config_document.h"
#include "config_keys.h"

#ifndef SESSREAP_VENDOR_DIR
#define SESSREAP_VENDOR_DIR "/usr/lib/sessreap"
#endif

namespace sessreap {

namespace {

using json = nlohmann::json;

constexpr const char* default_origin = "<default>";
constexpr const char* inline_origin = "<inline>";

// One file name's winner across the directories.
struct DropIn {
    std::string path;
    bool masked = false; // a symlink to /dev/null
};

// Everything merged so far.
struct Merge {
    EffectiveConfig effective;
    std::vector<std::string> rule_origins; // "FILE:LINE:COL" of each exclude rule
};

std::string join_root(const std::string& root, const std::string& path) {
    std::string prefix = root;
    while (!prefix.empty() && prefix.back() == '/') prefix.pop_back();
    return prefix + path;
}

Error errno_error(int code, const std::string& what) {
    return make_error(code, what + ": " + errno_string(code));
}

// A symlink to /dev/null masks; so does any path to that device, for a relative link.
bool is_mask(int dir_fd, const char* name) {
    struct stat st {};
    if (fstatat(dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISLNK(st.st_mode)) return false;

    char target[16];
    ssize_t n = readlinkat(dir_fd, name, target, sizeof target);
    if (n == 9 && std::string_view(target, 9) == "/dev/null") return true;

    if (fstatat(dir_fd, name, &st, 0) < 0) return false; // opening it will report why
    return S_ISCHR(st.st_mode) && st.st_rdev == makedev(1, 3);
}

bool has_json_suffix(std::string_view name) {
    constexpr std::string_view suffix = ".json";
    return name.size() > suffix.size() && name.substr(name.size() - suffix.size()) == suffix;
}

// Records the *.json entries of dir in by_name, replacing those of lower directories.
Status scan_dir(const std::string& dir, std::map<std::string, DropIn>& by_name) {
    int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT) return Ok{}; // a missing directory is not an error
    if (fd < 0) return errno_error(errno, "Failed to open directory " + dir);

    DIR* d = fdopendir(fd);
    if (!d) {
        int code = errno;
        close(fd);
        return errno_error(code, "Failed to open directory " + dir);
    }

    Status status = Ok{};
    for (;;) {
        errno = 0;
        dirent* entry = readdir(d);
        if (!entry) {
            if (errno != 0) status = errno_error(errno, "Failed to read directory " + dir);
            break;
        }

        std::string_view name = entry->d_name;
        if (name[0] == '.' || !has_json_suffix(name)) continue; // hidden files are skipped
        by_name[std::string(name)] =
            DropIn{dir + "/" + std::string(name), is_mask(fd, entry->d_name)};
    }
    closedir(d);
    return status;
}

// Reads a drop-in. Symlinks are followed, so a package can link a shared file in;
// O_NONBLOCK keeps a FIFO from blocking the open, and fstat then rejects it.
Result<std::string> read_file(const std::string& path) {
    UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
    if (!fd.valid()) return errno_error(errno, "Failed to open " + path);

    struct stat st {};
    if (fstat(fd.get(), &st) < 0) return errno_error(errno, "Failed to stat " + path);
    if (!S_ISREG(st.st_mode))
        return make_error(EINVAL, "Failed to read " + path + ": not a regular file");

    auto too_big = [&](size_t size) {
        return make_error(EINVAL, path + ": expected at most 1 MiB, got " + std::to_string(size) +
                                      " bytes");
    };
    if (size_t(st.st_size) > config_max_bytes) return too_big(size_t(st.st_size));

    std::string text;
    char buffer[65536];
    for (;;) {
        ssize_t n = read(fd.get(), buffer, sizeof buffer);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return errno_error(errno, "Failed to read " + path);
        if (n == 0) break;
        text.append(buffer, size_t(n));
        if (text.size() > config_max_bytes) return too_big(text.size()); // it grew meanwhile
    }
    return text;
}

// Merges from into into: objects key by key, anything else replaces; records origins.
void merge(json& into, const json& from, const std::string& key_path, const std::string& origin,
           std::map<std::string, std::string>& origins) {
    for (const auto& [key, value] : from.items()) {
        std::string path = key_path.empty() ? key : key_path + "." + key;
        json& slot = into[key];
        if (value.is_object() && slot.is_object()) {
            merge(slot, value, path, origin, origins);
        } else {
            slot = value;
            origins[path] = origin;
        }
    }
}

Status apply_text(const std::string& origin, std::string text, Merge& merge_state) {
    auto parsed = parse_config_document(origin, std::move(text));
    if (!parsed) return parsed.error();
    const ConfigDocument& doc = **parsed;

    std::vector<Error> errors;
    validate_config_document(doc, errors);
    if (!errors.empty()) return errors.front();

    EffectiveConfig& effective = merge_state.effective;
    merge(effective.json, doc.value, "", doc.origin, effective.origins);

    auto rules = doc.value.find("exclude");
    if (rules != doc.value.end()) {
        merge_state.rule_origins.clear();
        for (size_t i = 0; i < rules->size(); i++) {
            std::string pointer = "/exclude/" + std::to_string(i);
            merge_state.rule_origins.push_back(doc.where(doc.value_offset(pointer)));
        }
    }
    return Ok{};
}

Merge defaults() {
    Merge m;
    m.effective.json = config_to_json(Config{});
    for (const std::string& path : config_key_paths()) {
        bool in_rule = path.find("[]") != std::string::npos;
        m.effective.origins[in_rule ? "exclude" : path] = default_origin;
    }
    return m;
}

// The system directories, lowest precedence first.
std::vector<std::string> system_dirs(const ConfigSources& sources) {
    if (!sources.system_dirs) return {};
    return {join_root(sources.root, SESSREAP_VENDOR_DIR "/sessreap.d"),
            join_root(sources.root, "/etc/sessreap/sessreap.d"),
            join_root(sources.root, "/run/sessreap/sessreap.d")};
}

// The files that apply, in order: the system directories' survivors in lexical order of
// name, then each host directory's in turn. Host files apply after every system file so
// that a host's setting wins whatever the names; so they neither replace nor mask system
// files, only a same-named file of an earlier host directory. A directory that cannot be
// listed adds an error and contributes nothing.
std::vector<DropIn> find_drop_ins(const ConfigSources& sources, std::vector<Error>& errors) {
    std::vector<DropIn> ordered;
    std::map<std::string, DropIn> system; // sorted by name: the order they apply in
    for (const std::string& dir : system_dirs(sources)) {
        Status scanned = scan_dir(dir, system);
        if (!scanned) errors.push_back(scanned.error());
    }
    for (const auto& [name, drop_in] : system) ordered.push_back(drop_in);

    std::vector<std::map<std::string, DropIn>> host(sources.extra_dirs.size());
    std::map<std::string, size_t> last_dir; // the host directory whose file of a name wins
    for (size_t i = 0; i < host.size(); i++) {
        Status scanned = scan_dir(sources.extra_dirs[i], host[i]);
        if (!scanned) errors.push_back(scanned.error());
        for (const auto& [name, drop_in] : host[i]) last_dir[name] = i;
    }
    for (size_t i = 0; i < host.size(); i++)
        for (const auto& [name, drop_in] : host[i])
            if (last_dir[name] == i) ordered.push_back(drop_in);

    std::erase_if(ordered, [](const DropIn& d) { return d.masked; });
    return ordered;
}

Result<EffectiveConfig> load(const ConfigSources& sources) {
    Merge m = defaults();

    std::vector<Error> errors;
    std::vector<DropIn> drop_ins = find_drop_ins(sources, errors);
    if (!errors.empty()) return errors.front();

    for (const DropIn& drop_in : drop_ins) {
        auto text = read_file(drop_in.path);
        if (!text) return text.error();
        if (text->empty()) continue; // an empty file masks

        Status applied = apply_text(drop_in.path, std::move(*text), m);
        if (!applied) return applied.error();
    }

    if (sources.inline_json) {
        Status applied = apply_text(inline_origin, *sources.inline_json, m);
        if (!applied) return applied.error();
    }

    m.effective.config = config_from_json(m.effective.json, m.rule_origins);
    return std::move(m.effective);
}

// Keeps exceptions from std and nlohmann_json inside the loader.
template <typename T, typename F> Result<T> guarded(F f) noexcept {
    try {
        return f();
    } catch (const std::bad_alloc&) {
        return make_error(ENOMEM, "Failed to load the configuration: out of memory");
    } catch (const std::exception& e) {
        return make_error(EINVAL, std::string("Failed to load the configuration: ") + e.what());
    }
}

} // namespace

std::vector<std::string> config_drop_in_dirs(const ConfigSources& sources) {
    std::vector<std::string> dirs = system_dirs(sources);
    dirs.insert(dirs.end(), sources.extra_dirs.begin(), sources.extra_dirs.end());
    return dirs;
}

std::vector<std::string> config_drop_in_files(const ConfigSources& sources,
                                              std::vector<Error>& errors) {
    auto found = guarded<std::vector<DropIn>>([&] { return find_drop_ins(sources, errors); });
    if (!found) {
        errors.push_back(found.error());
        return {};
    }

    std::vector<std::string> paths;
    for (const DropIn& drop_in : *found) paths.push_back(drop_in.path);
    return paths;
}

Result<EffectiveConfig> load_effective_config(const ConfigSources& sources) {
    return guarded<EffectiveConfig>([&] { return load(sources); });
}

Result<Config> load_config(const ConfigSources& sources) {
    return guarded<Config>([&]() -> Result<Config> {
        auto effective = load(sources);
        if (!effective) return effective.error();
        return std::move(effective->config);
    });
}

std::vector<Error> check_config_text(const std::string& origin, const std::string& text) {
    std::vector<Error> errors;
    auto checked = guarded<Ok>([&]() -> Status {
        auto parsed = parse_config_document(origin, text);
        if (!parsed) return parsed.error();
        validate_config_document(**parsed, errors);
        return Ok{};
    });
    if (!checked) errors.push_back(checked.error());
    return errors;
}

std::vector<Error> check_config_files(const std::vector<std::string>& files) {
    std::vector<Error> errors;
    for (const std::string& file : files) {
        if (is_mask(AT_FDCWD, file.c_str())) continue;

        auto text = guarded<std::string>([&] { return read_file(file); });
        if (!text) {
            errors.push_back(text.error());
            continue;
        }
        if (text->empty()) continue;

        std::vector<Error> found = check_config_text(file, *text);
        errors.insert(errors.end(), found.begin(), found.end());
    }
    return errors;
}

std::vector<Error> check_effective_config(const ConfigSources& sources) {
    std::vector<Error> errors;
    std::vector<std::string> files = config_drop_in_files(sources, errors);

    std::vector<Error> found = check_config_files(files);
    errors.insert(errors.end(), found.begin(), found.end());
    if (sources.inline_json) {
        found = check_config_text(inline_origin, *sources.inline_json);
        errors.insert(errors.end(), found.begin(), found.end());
    }
    return errors;
}

} // namespace sessreap
