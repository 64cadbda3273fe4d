// SPDX-License-Identifier: LGPL-2.1-or-later
// The table of drop-in keys: each key's check, its place in Config and its rendering.
#include "config_keys.h"

#include <signal.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <span>
#include <utility>

namespace sessreap {

namespace {

using json = nlohmann::json;

enum class Kind { boolean, integer, signal, choice, slice, path, comm, exe_glob };

// What a value must be.
struct ValueRule {
    Kind kind;
    int64_t min = 0; // integer: inclusive bounds
    int64_t max = 0;
    std::span<const std::string_view> choices = {}; // choice: the value is the index
};

// A key under one of the groups ("teardown", "sweep", ...).
struct KeySpec {
    std::string_view group;
    std::string_view key;
    ValueRule rule;
    void (*apply)(Config&, const json&);
    json (*render)(const Config&);
};

// A field of an exclude rule.
struct RuleField {
    std::string_view key;
    ValueRule rule;
    void (*apply)(ExcludeRule&, const json&);
    std::optional<json> (*render)(const ExcludeRule&);
};

constexpr int64_t max_ms = INT32_MAX;       // about 24.8 days; keeps every sum of delays in range
constexpr int64_t max_uid = UINT32_MAX - 1; // (uid_t)-1 means "no uid" to the kernel
constexpr size_t max_comm = 15;             // TASK_COMM_LEN less the NUL
constexpr size_t max_path = 4095;           // PATH_MAX less the NUL

constexpr std::array<std::string_view, 3> scope_names{"off", "adopt", "create"};
constexpr std::array<std::string_view, 3> bus_names{"auto", "system", "user"};
constexpr std::array<std::string_view, 2> cgroup_kill_names{"auto", "freeze"};
constexpr std::array<std::string_view, 5> level_names{"err", "warning", "notice", "info", "debug"};
constexpr int first_level = 3; // LOG_ERR
constexpr std::array<std::string_view, 4> sink_names{"auto", "host", "journald", "stderr"};

size_t choice_of(const json& v, std::span<const std::string_view> names) {
    auto it = std::find(names.begin(), names.end(), v.get_ref<const std::string&>());
    return size_t(it - names.begin());
}

std::chrono::milliseconds ms_of(const json& v) {
    return std::chrono::milliseconds(v.get<int64_t>());
}

const std::vector<KeySpec>& key_table() {
    static const std::vector<KeySpec> table{
        {"teardown",
         "term_signal",
         {Kind::signal},
         [](Config& c, const json& v) {
             c.teardown.term_signal = *signal_from_name(v.get<std::string>());
         },
         [](const Config& c) { return json(signal_to_name(c.teardown.term_signal)); }},
        {"teardown",
         "kill_signal",
         {Kind::signal},
         [](Config& c, const json& v) {
             c.teardown.kill_signal = *signal_from_name(v.get<std::string>());
         },
         [](const Config& c) { return json(signal_to_name(c.teardown.kill_signal)); }},
        {"teardown",
         "grace_ms",
         {Kind::integer, 0, max_ms},
         [](Config& c, const json& v) { c.teardown.grace = ms_of(v); },
         [](const Config& c) { return json(c.teardown.grace.count()); }},
        {"teardown",
         "cap_ms",
         {Kind::integer, 1, max_ms},
         [](Config& c, const json& v) { c.teardown.cap = ms_of(v); },
         [](const Config& c) { return json(c.teardown.cap.count()); }},
        {"teardown",
         "group",
         {Kind::boolean},
         [](Config& c, const json& v) { c.teardown.group = v.get<bool>(); },
         [](const Config& c) { return json(c.teardown.group); }},
        {"teardown",
         "dry_run",
         {Kind::boolean},
         [](Config& c, const json& v) { c.teardown.dry_run = v.get<bool>(); },
         [](const Config& c) { return json(c.teardown.dry_run); }},
        {"teardown",
         "on_close",
         {Kind::boolean},
         [](Config& c, const json& v) { c.teardown.on_close = v.get<bool>(); },
         [](const Config& c) { return json(c.teardown.on_close); }},
        {"sweep",
         "enabled",
         {Kind::boolean},
         [](Config& c, const json& v) { c.sweep.enabled = v.get<bool>(); },
         [](const Config& c) { return json(c.sweep.enabled); }},
        {"sweep",
         "max_passes",
         {Kind::integer, 1, 1000},
         [](Config& c, const json& v) { c.sweep.max_passes = v.get<int>(); },
         [](const Config& c) { return json(c.sweep.max_passes); }},
        {"systemd",
         "scope",
         {Kind::choice, 0, 0, scope_names},
         [](Config& c, const json& v) { c.systemd.scope = ScopeMode(choice_of(v, scope_names)); },
         [](const Config& c) { return json(scope_names.at(size_t(c.systemd.scope))); }},
        {"systemd",
         "bus",
         {Kind::choice, 0, 0, bus_names},
         [](Config& c, const json& v) { c.systemd.bus = BusKind(choice_of(v, bus_names)); },
         [](const Config& c) { return json(bus_names.at(size_t(c.systemd.bus))); }},
        {"systemd",
         "slice",
         {Kind::slice},
         [](Config& c, const json& v) { c.systemd.slice = v.get<std::string>(); },
         [](const Config& c) { return json(c.systemd.slice); }},
        {"systemd",
         "timeout_ms",
         {Kind::integer, 1, max_ms},
         [](Config& c, const json& v) { c.systemd.timeout = ms_of(v); },
         [](const Config& c) { return json(c.systemd.timeout.count()); }},
        {"cgroup",
         "parent",
         {Kind::path},
         [](Config& c, const json& v) { c.cgroup.parent = v.get<std::string>(); },
         [](const Config& c) { return json(c.cgroup.parent); }},
        {"cgroup",
         "kill",
         {Kind::choice, 0, 0, cgroup_kill_names},
         [](Config& c, const json& v) {
             c.cgroup.kill = CgroupKill(choice_of(v, cgroup_kill_names));
         },
         [](const Config& c) { return json(cgroup_kill_names.at(size_t(c.cgroup.kill))); }},
        {"state",
         "dir",
         {Kind::path},
         [](Config& c, const json& v) { c.state.dir = v.get<std::string>(); },
         [](const Config& c) { return json(c.state.dir); }},
        {"state",
         "reap_stale_on_open",
         {Kind::boolean},
         [](Config& c, const json& v) { c.state.reap_stale_on_open = v.get<bool>(); },
         [](const Config& c) { return json(c.state.reap_stale_on_open); }},
        {"log",
         "level",
         {Kind::choice, 0, 0, level_names},
         [](Config& c, const json& v) {
             c.log.level = first_level + int(choice_of(v, level_names));
         },
         [](const Config& c) {
             int i = std::clamp(c.log.level - first_level, 0, int(level_names.size()) - 1);
             return json(level_names[size_t(i)]);
         }},
        {"log",
         "sink",
         {Kind::choice, 0, 0, sink_names},
         [](Config& c, const json& v) { c.log.sink = LogSink(choice_of(v, sink_names)); },
         [](const Config& c) { return json(sink_names.at(size_t(c.log.sink))); }},
    };
    return table;
}

const std::vector<RuleField>& rule_fields() {
    static const std::vector<RuleField> fields{
        {"comm",
         {Kind::comm},
         [](ExcludeRule& r, const json& v) { r.comm = v.get<std::string>(); },
         [](const ExcludeRule& r) { return r.comm ? std::optional<json>(*r.comm) : std::nullopt; }},
        {"exe",
         {Kind::exe_glob},
         [](ExcludeRule& r, const json& v) { r.exe = v.get<std::string>(); },
         [](const ExcludeRule& r) { return r.exe ? std::optional<json>(*r.exe) : std::nullopt; }},
        {"uid",
         {Kind::integer, 0, max_uid},
         [](ExcludeRule& r, const json& v) { r.uid = uid_t(v.get<uint64_t>()); },
         [](const ExcludeRule& r) { return r.uid ? std::optional<json>(*r.uid) : std::nullopt; }},
    };
    return fields;
}

constexpr std::string_view exclude_key = "exclude";

std::vector<std::string> group_names() {
    std::vector<std::string> names;
    for (const KeySpec& spec : key_table())
        if (std::find(names.begin(), names.end(), spec.group) == names.end())
            names.emplace_back(spec.group);
    return names;
}

} // namespace

std::optional<std::string> nearest_key(const std::string& key,
                                       const std::vector<std::string>& candidates) {
    auto lower = [](std::string s) {
        for (char& c : s) c = char(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
        return s;
    };
    // Levenshtein distance, one row at a time.
    auto distance = [](const std::string& a, const std::string& b) {
        std::vector<size_t> row(b.size() + 1);
        for (size_t j = 0; j <= b.size(); j++) row[j] = j;
        for (size_t i = 1; i <= a.size(); i++) {
            size_t diagonal = row[0];
            row[0] = i;
            for (size_t j = 1; j <= b.size(); j++) {
                size_t replace = diagonal + (a[i - 1] == b[j - 1] ? 0 : 1);
                diagonal = row[j];
                row[j] = std::min({row[j] + 1, row[j - 1] + 1, replace});
            }
        }
        return row[b.size()];
    };

    std::string wanted = lower(key.substr(0, 64));
    std::optional<std::string> best;
    size_t best_distance = SIZE_MAX;
    for (const std::string& candidate : candidates) {
        size_t d = distance(wanted, candidate);
        bool prefix =
            !wanted.empty() && (candidate.rfind(wanted, 0) == 0 || wanted.rfind(candidate, 0) == 0);
        bool close = d <= std::max(wanted.size(), candidate.size()) / 3;
        if ((prefix || close) && d < best_distance) best = candidate, best_distance = d;
    }
    return best;
}

namespace {

bool is_valid_slice(const std::string& s) {
    constexpr std::string_view suffix = ".slice";
    if (s.empty()) return true;
    if (s.size() > 255 || s.size() <= suffix.size()) return false;
    if (s.compare(s.size() - suffix.size(), suffix.size(), suffix) != 0) return false;

    std::string_view prefix = std::string_view(s).substr(0, s.size() - suffix.size());
    for (char c : prefix) {
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == ':' || c == '-' || c == '_' || c == '.' || c == '\\';
        if (!ok) return false;
    }
    if (prefix == "-") return true; // the root slice
    // A dash separates the levels of the slice tree, so none may be empty (systemd.slice(5)).
    return prefix.front() != '-' && prefix.back() != '-' && prefix.find("--") == prefix.npos;
}

bool has_dot_dot(std::string_view path) {
    for (size_t i = 0; (i = path.find("..", i)) != path.npos; i++) {
        bool starts = i == 0 || path[i - 1] == '/';
        bool ends = i + 2 == path.size() || path[i + 2] == '/';
        if (starts && ends) return true;
    }
    return false;
}

bool is_path_text(const std::string& s) {
    return s.size() <= max_path && s.find('\0') == s.npos;
}

std::string describe(const ValueRule& rule) {
    switch (rule.kind) {
    case Kind::boolean:
        return "true or false";
    case Kind::integer:
        return rule.min == 0 ? "a non-negative integer" : "a positive integer";
    case Kind::signal:
        return "a signal name like \"SIGTERM\"";
    case Kind::slice:
        return "a slice unit name like \"sessreap.slice\", or \"\"";
    case Kind::path:
        return "an absolute path without \"..\", or \"\"";
    case Kind::comm:
        return "a command name of 1 to 15 bytes";
    case Kind::exe_glob:
        return "an absolute path glob like \"/usr/bin/*\"";
    case Kind::choice:
        break;
    }
    std::string text = "one of ";
    for (size_t i = 0; i < rule.choices.size(); i++)
        text += (i ? ", " : "") + json_quoted(rule.choices[i]);
    return text;
}

// Checks v against rule; on failure returns what was expected.
std::optional<std::string> check_value(const ValueRule& rule, const json& v) {
    if (rule.kind == Kind::boolean) {
        if (v.is_boolean()) return std::nullopt;
        return describe(rule);
    }

    if (rule.kind == Kind::integer) {
        if (!v.is_number_integer()) return describe(rule);
        // nlohmann_json stores every non-negative integer as unsigned.
        bool in_range = false;
        if (v.is_number_unsigned()) {
            uint64_t u = v.get<uint64_t>();
            in_range = u <= uint64_t(rule.max) && (rule.min <= 0 || u >= uint64_t(rule.min));
        } else {
            int64_t i = v.get<int64_t>();
            in_range = i >= rule.min && i <= rule.max;
        }
        if (in_range) return std::nullopt;
        return "an integer from " + std::to_string(rule.min) + " to " + std::to_string(rule.max);
    }

    if (!v.is_string()) return describe(rule);
    const std::string& s = v.get_ref<const std::string&>();
    bool ok = false;
    switch (rule.kind) {
    case Kind::signal:
        ok = signal_from_name(s).has_value();
        break;
    case Kind::choice:
        ok = choice_of(v, rule.choices) < rule.choices.size();
        break;
    case Kind::slice:
        ok = is_valid_slice(s);
        break;
    case Kind::path:
        ok = s.empty() || (s[0] == '/' && is_path_text(s) && !has_dot_dot(s));
        break;
    case Kind::comm:
        ok = !s.empty() && s.size() <= max_comm && s.find('\0') == s.npos;
        break;
    case Kind::exe_glob:
        ok = !s.empty() && s[0] == '/' && is_path_text(s);
        break;
    case Kind::boolean:
    case Kind::integer:
        break;
    }
    if (ok) return std::nullopt;
    return describe(rule);
}

// Collects errors with their offsets so they can be reported in text order.
struct Checker {
    const ConfigDocument& doc;
    std::vector<std::pair<size_t, Error>> found;

    void error(size_t offset, const std::string& key_path, const std::string& what) {
        found.emplace_back(offset, doc.error_at(offset, key_path, what));
    }

    void expect(const std::string& pointer, const std::string& key_path, const std::string& what) {
        error(doc.value_offset(pointer), key_path, "expected " + what + ", got " + got(pointer));
    }

    std::string got(const std::string& pointer) const {
        const json& v = doc.value.at(json::json_pointer(pointer));
        if (v.is_object()) return v.empty() ? "an empty object" : "an object";
        if (v.is_array()) return v.empty() ? "an empty array" : "an array";
        return doc.source_of(pointer);
    }

    void unknown_key(const std::string& pointer, const std::string& key_path,
                     const std::string& key, const std::vector<std::string>& valid) {
        const JsonSpan* span = doc.index.find(pointer);
        size_t offset = span && span->key_begin ? *span->key_begin : 0;
        std::string what = "unknown key " + json_quoted(key);
        if (auto near = nearest_key(key, valid)) {
            what += " (did you mean " + json_quoted(*near) + "?)";
        } else {
            what += " (expected one of ";
            for (size_t i = 0; i < valid.size(); i++)
                what += (i ? ", " : "") + json_quoted(valid[i]);
            what += ")";
        }
        error(offset, key_path, what);
    }

    void leaf(const ValueRule& rule, const json& v, const std::string& pointer,
              const std::string& key_path) {
        if (auto expected = check_value(rule, v)) expect(pointer, key_path, *expected);
    }

    void group(const std::string& name, const json& v, const std::string& pointer) {
        if (!v.is_object()) return expect(pointer, name, "an object");

        std::vector<std::string> valid;
        for (const KeySpec& spec : key_table())
            if (spec.group == name) valid.emplace_back(spec.key);

        for (const auto& item : v.items()) {
            const std::string& key = item.key();
            const json& member = item.value();
            std::string member_pointer = json_pointer_append(pointer, key);
            std::string key_path = key_path_member(name, key);
            auto spec = std::find_if(key_table().begin(), key_table().end(),
                                     [&](auto& s) { return s.group == name && s.key == key; });
            if (spec == key_table().end())
                unknown_key(member_pointer, key_path, key, valid);
            else
                leaf(spec->rule, member, member_pointer, key_path);
        }
    }

    void rule(const json& v, const std::string& pointer, const std::string& key_path) {
        if (!v.is_object()) return expect(pointer, key_path, "an object");
        if (v.empty()) {
            std::string what;
            for (const RuleField& f : rule_fields())
                what += (what.empty() ? "" : ", ") + json_quoted(f.key);
            return expect(pointer, key_path, "at least one of " + what);
        }

        std::vector<std::string> valid;
        for (const RuleField& f : rule_fields()) valid.emplace_back(f.key);

        for (const auto& item : v.items()) {
            const std::string& key = item.key();
            const json& member = item.value();
            std::string member_pointer = json_pointer_append(pointer, key);
            std::string member_path = key_path_member(key_path, key);
            auto field = std::find_if(rule_fields().begin(), rule_fields().end(),
                                      [&](auto& f) { return f.key == key; });
            if (field == rule_fields().end())
                unknown_key(member_pointer, member_path, key, valid);
            else
                leaf(field->rule, member, member_pointer, member_path);
        }
    }

    void exclude(const json& v, const std::string& pointer) {
        std::string name(exclude_key);
        if (!v.is_array()) return expect(pointer, name, "an array of rules");
        for (size_t i = 0; i < v.size(); i++)
            rule(v[i], json_pointer_append(pointer, std::to_string(i)), key_path_element(name, i));
    }

    void document() {
        if (!doc.value.is_object()) return expect("", "", "an object");

        std::vector<std::string> valid = group_names();
        valid.emplace_back(exclude_key);

        for (const auto& [key, member] : doc.value.items()) {
            std::string pointer = json_pointer_append("", key);
            if (key == exclude_key)
                exclude(member, pointer);
            else if (std::find(valid.begin(), valid.end(), key) != valid.end())
                group(key, member, pointer);
            else
                unknown_key(pointer, key_path_member("", key), key, valid);
        }
    }
};

} // namespace

void validate_config_document(const ConfigDocument& doc, std::vector<Error>& errors) {
    Checker checker{doc, {}};
    checker.document();
    std::stable_sort(checker.found.begin(), checker.found.end(),
                     [](const auto& a, const auto& b) { return a.first < b.first; });
    for (auto& [offset, error] : checker.found) errors.push_back(std::move(error));
}

Config config_from_json(const json& merged, const std::vector<std::string>& rule_origins) {
    Config config;
    for (const KeySpec& spec : key_table()) {
        const json& group = merged.at(std::string(spec.group));
        spec.apply(config, group.at(std::string(spec.key)));
    }

    const json& rules = merged.at(std::string(exclude_key));
    for (size_t i = 0; i < rules.size(); i++) {
        ExcludeRule rule;
        for (const RuleField& field : rule_fields()) {
            auto it = rules[i].find(std::string(field.key));
            if (it != rules[i].end()) field.apply(rule, *it);
        }
        if (i < rule_origins.size()) rule.origin = rule_origins[i];
        config.exclude.push_back(std::move(rule));
    }
    return config;
}

json config_to_json(const Config& config) {
    json out = json::object();
    for (const KeySpec& spec : key_table())
        out[std::string(spec.group)][std::string(spec.key)] = spec.render(config);

    json rules = json::array();
    for (const ExcludeRule& rule : config.exclude) {
        json r = json::object();
        for (const RuleField& field : rule_fields())
            if (auto v = field.render(rule)) r[std::string(field.key)] = std::move(*v);
        rules.push_back(std::move(r));
    }
    out[std::string(exclude_key)] = std::move(rules);
    return out;
}

std::vector<std::string> config_key_paths() {
    std::vector<std::string> paths;
    for (const KeySpec& spec : key_table())
        paths.push_back(std::string(spec.group) + "." + std::string(spec.key));
    for (const RuleField& field : rule_fields())
        paths.push_back(std::string(exclude_key) + "[]." + std::string(field.key));
    return paths;
}

} // namespace sessreap
