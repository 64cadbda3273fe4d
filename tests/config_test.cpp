// SPDX-License-Identifier: LGPL-2.1-or-later
// Tests of the drop-in loader: precedence, masking, merging, every class of bad input, the schema.
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include <gtest/gtest.h>

#include "config.h"
#include "config_json_index.h"

namespace sessreap {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

// A scratch root directory with the three system drop-in directories under it.
class ConfigLoader : public ::testing::Test {
protected:
    void SetUp() override {
        char pattern[] = "/tmp/sessreap-config-XXXXXX";
        ASSERT_NE(mkdtemp(pattern), nullptr);
        root_ = pattern;
        chmod(root_.c_str(), 0755); // the tests that drop privileges must get in

        std::vector<std::string> dirs = config_drop_in_dirs(sources());
        ASSERT_EQ(dirs.size(), 3u);
        vendor_ = dirs[0];
        etc_ = dirs[1];
        run_ = dirs[2];
    }

    void TearDown() override {
        std::error_code ignored;
        fs::remove_all(root_, ignored);
    }

    ConfigSources sources() const {
        ConfigSources s;
        s.root = root_;
        return s;
    }

    // Writes a file, creating its directory; returns its path.
    std::string write(const std::string& dir, const std::string& name, const std::string& text) {
        fs::create_directories(dir);
        std::string path = dir + "/" + name;
        std::ofstream(path, std::ios::binary) << text;
        return path;
    }

    std::string symlink_in(const std::string& dir, const std::string& name,
                           const std::string& target) {
        fs::create_directories(dir);
        std::string path = dir + "/" + name;
        EXPECT_EQ(symlink(target.c_str(), path.c_str()), 0);
        return path;
    }

    Config load_ok(const ConfigSources& s) {
        auto config = load_config(s);
        EXPECT_TRUE(config.ok()) << config.error().message;
        return config.ok() ? *config : Config{};
    }

    Error load_error(const ConfigSources& s) {
        auto config = load_config(s);
        EXPECT_FALSE(config.ok());
        return config.ok() ? Error{} : config.error();
    }

    std::string root_, vendor_, etc_, run_;
};

// --- Finding and merging drop-ins -------------------------------------------------------------

// With no drop-in anywhere, the built-in defaults apply and every origin says so.
TEST_F(ConfigLoader, UsesDefaultsWhenNothingIsPresent) {
    auto effective = load_effective_config(sources());

    ASSERT_TRUE(effective.ok()) << effective.error().message;
    EXPECT_EQ(effective->json, config_to_json(Config{}));
    EXPECT_EQ(effective->config.teardown.grace.count(), 2000);
    EXPECT_EQ(effective->config.teardown.term_signal, SIGTERM);
    EXPECT_TRUE(effective->config.exclude.empty());
    EXPECT_EQ(effective->origins.size(), 20u);
    for (const auto& [path, origin] : effective->origins) EXPECT_EQ(origin, "<default>") << path;
}

// A root that does not exist at all is the same as empty directories.
TEST_F(ConfigLoader, AcceptsMissingDirectories) {
    ConfigSources s = sources();
    s.root = root_ + "/no/such/root";
    s.extra_dirs = {root_ + "/no/such/dir"};

    Config config = load_ok(s);

    EXPECT_EQ(config_to_json(config), config_to_json(Config{}));
}

// The system directories resolve under the root, in vendor, /etc, /run order.
TEST_F(ConfigLoader, ResolvesSystemDirectoriesUnderRoot) {
    EXPECT_EQ(vendor_.rfind(root_ + "/", 0), 0u);
    EXPECT_TRUE(vendor_.ends_with("/sessreap/sessreap.d"));
    EXPECT_EQ(etc_, root_ + "/etc/sessreap/sessreap.d");
    EXPECT_EQ(run_, root_ + "/run/sessreap/sessreap.d");

    ConfigSources trailing = sources();
    trailing.root = root_ + "//";
    EXPECT_EQ(config_drop_in_dirs(trailing)[1], etc_);
}

// A file in /etc replaces the vendor file of the same name as a whole, without merging.
TEST_F(ConfigLoader, EtcFileReplacesVendorFileOfSameName) {
    write(vendor_, "50-site.json", R"({"teardown": {"grace_ms": 100, "cap_ms": 500}})");
    write(etc_, "50-site.json", R"({"teardown": {"grace_ms": 200}})");

    Config config = load_ok(sources());

    EXPECT_EQ(config.teardown.grace.count(), 200);
    EXPECT_EQ(config.teardown.cap.count(), 10000);
}

// A file in /run replaces the /etc file of the same name.
TEST_F(ConfigLoader, RunFileReplacesEtcFileOfSameName) {
    write(vendor_, "50-site.json", R"({"sweep": {"max_passes": 3}})");
    write(etc_, "50-site.json", R"({"sweep": {"max_passes": 4}})");
    write(run_, "50-site.json", R"({"sweep": {"max_passes": 5}})");

    EXPECT_EQ(load_ok(sources()).sweep.max_passes, 5);
}

// An empty file of the same name masks a lower file, even an invalid one.
TEST_F(ConfigLoader, EmptyFileMasksLowerFile) {
    write(vendor_, "50-site.json", R"({"teardown": {"grace_ms": 100}})");
    write(etc_, "60-broken.json", "{ not json");
    write(etc_, "50-site.json", "");
    write(run_, "60-broken.json", "");

    EXPECT_EQ(load_ok(sources()).teardown.grace.count(), 2000);
}

// A symlink to /dev/null of the same name masks a lower file.
TEST_F(ConfigLoader, DevNullSymlinkMasksLowerFile) {
    write(etc_, "50-site.json", R"({"log": {"level": "debug"}})");
    symlink_in(run_, "50-site.json", "/dev/null");

    EXPECT_EQ(load_ok(sources()).log.level, 6);
}

// A relative symlink that reaches /dev/null masks too.
TEST_F(ConfigLoader, RelativeDevNullSymlinkMasksLowerFile) {
    write(etc_, "50-site.json", R"({"log": {"level": "debug"}})");
    std::string up;
    for (size_t i = 0; i < size_t(std::count(run_.begin(), run_.end(), '/')); i++) up += "../";
    symlink_in(run_, "50-site.json", up + "dev/null");

    EXPECT_EQ(load_ok(sources()).log.level, 6);
}

// A drop-in may be a symlink to a regular file elsewhere; it is read through the link.
TEST_F(ConfigLoader, FollowsSymlinkToRegularFile) {
    std::string shared = write(root_ + "/shared", "site.json", R"({"sweep": {"enabled": false}})");
    symlink_in(etc_, "50-site.json", shared);

    EXPECT_FALSE(load_ok(sources()).sweep.enabled);
}

// Surviving files apply in lexical order of name, whatever directory each comes from.
TEST_F(ConfigLoader, AppliesFilesInLexicalOrderAcrossDirectories) {
    write(run_, "10-early.json", R"({"teardown": {"grace_ms": 100}})");
    std::string late = write(vendor_, "20-late.json", R"({"teardown": {"grace_ms": 200}})");
    write(etc_, "15-middle.json", R"({"teardown": {"grace_ms": 150}})");

    auto effective = load_effective_config(sources());

    ASSERT_TRUE(effective.ok()) << effective.error().message;
    EXPECT_EQ(effective->config.teardown.grace.count(), 200);
    EXPECT_EQ(effective->origins.at("teardown.grace_ms"), late);
}

// Objects merge key by key, so two files can each set one key of a group.
TEST_F(ConfigLoader, DeepMergesObjectsKeyByKey) {
    write(etc_, "10-a.json", R"({"teardown": {"grace_ms": 100, "group": false}})");
    write(etc_, "20-b.json", R"({"teardown": {"cap_ms": 300}, "systemd": {"scope": "create"}})");

    Config config = load_ok(sources());

    EXPECT_EQ(config.teardown.grace.count(), 100);
    EXPECT_FALSE(config.teardown.group);
    EXPECT_EQ(config.teardown.cap.count(), 300);
    EXPECT_EQ(config.systemd.scope, ScopeMode::create);
    EXPECT_EQ(config.systemd.bus, BusKind::automatic);
}

// An array replaces the earlier array: exclusion lists do not accumulate.
TEST_F(ConfigLoader, ReplacesArraysInsteadOfAppending) {
    write(etc_, "10-a.json", R"({"exclude": [{"comm": "a"}, {"comm": "b"}]})");
    std::string later =
        write(etc_, "20-b.json", "{\n  \"exclude\": [\n    {\"comm\": \"c\"}\n  ]\n}");

    Config config = load_ok(sources());

    ASSERT_EQ(config.exclude.size(), 1u);
    EXPECT_EQ(config.exclude[0].comm, "c");
    EXPECT_EQ(config.exclude[0].origin, later + ":3:5");
}

// A host directory's file applies after every system file, whatever the names.
TEST_F(ConfigLoader, AppliesHostDirectoryAfterSystemFiles) {
    write(etc_, "50-y.json", R"({"teardown": {"grace_ms": 100, "cap_ms": 300}})");
    std::string host = write(root_ + "/host", "10-x.json", R"({"teardown": {"grace_ms": 200}})");
    ConfigSources s = sources();
    s.extra_dirs = {root_ + "/host"};

    auto effective = load_effective_config(s);

    ASSERT_TRUE(effective.ok()) << effective.error().message;
    EXPECT_EQ(effective->config.teardown.grace.count(), 200);
    EXPECT_EQ(effective->config.teardown.cap.count(), 300);
    EXPECT_EQ(effective->origins.at("teardown.grace_ms"), host);
    EXPECT_EQ(effective->origins.at("teardown.cap_ms"), etc_ + "/50-y.json");
}

// A host file named like a system file neither replaces nor masks it: both apply.
TEST_F(ConfigLoader, KeepsSystemFileOfSameNameAsHostFile) {
    write(etc_, "50-site.json", R"({"teardown": {"grace_ms": 100, "cap_ms": 300}})");
    write(run_, "60-run.json", R"({"sweep": {"max_passes": 9}})");
    write(root_ + "/host", "50-site.json", R"({"teardown": {"grace_ms": 200}})");
    write(root_ + "/host", "60-run.json", "");
    ConfigSources s = sources();
    s.extra_dirs = {root_ + "/host"};

    Config config = load_ok(s);

    EXPECT_EQ(config.teardown.grace.count(), 200);
    EXPECT_EQ(config.teardown.cap.count(), 300);
    EXPECT_EQ(config.sweep.max_passes, 9);
}

// Host directories apply in the order given, each in lexical order; a later one's file
// replaces an earlier one's file of the same name, and a later mask removes it.
TEST_F(ConfigLoader, AppliesHostDirectoriesInOrderGiven) {
    std::string first = root_ + "/host1", second = root_ + "/host2";
    std::string a = write(first, "20-a.json", R"({"teardown": {"grace_ms": 100}})");
    write(first, "30-b.json", R"({"teardown": {"cap_ms": 700}})");
    write(first, "40-c.json", R"({"sweep": {"max_passes": 5}})");
    std::string c = write(second, "10-c.json", R"({"teardown": {"grace_ms": 200}})");
    std::string b = write(second, "30-b.json", R"({"teardown": {"cap_ms": 900}})");
    symlink_in(second, "40-c.json", "/dev/null");
    ConfigSources s = sources();
    s.extra_dirs = {first, second};

    std::vector<Error> errors;
    std::vector<std::string> files = config_drop_in_files(s, errors);
    Config config = load_ok(s);

    EXPECT_TRUE(errors.empty());
    EXPECT_EQ(files, (std::vector<std::string>{a, c, b}));
    EXPECT_EQ(config.teardown.grace.count(), 200);
    EXPECT_EQ(config.teardown.cap.count(), 900);
    EXPECT_EQ(config.sweep.max_passes, 32);
}

// The inline document applies after every drop-in and is named "<inline>".
TEST_F(ConfigLoader, AppliesInlineJsonLast) {
    write(run_, "99-last.json", R"({"teardown": {"grace_ms": 100, "cap_ms": 400}})");
    ConfigSources s = sources();
    s.inline_json = R"({"teardown": {"grace_ms": 5}})";

    auto effective = load_effective_config(s);

    ASSERT_TRUE(effective.ok()) << effective.error().message;
    EXPECT_EQ(effective->config.teardown.grace.count(), 5);
    EXPECT_EQ(effective->config.teardown.cap.count(), 400);
    EXPECT_EQ(effective->origins.at("teardown.grace_ms"), "<inline>");
    EXPECT_EQ(effective->origins.at("teardown.cap_ms"), run_ + "/99-last.json");
    EXPECT_EQ(effective->origins.at("teardown.group"), "<default>");
}

// Without system_dirs only the extra directories and the inline document count.
TEST_F(ConfigLoader, SkipsSystemDirectoriesWhenAsked) {
    write(etc_, "50-site.json", "{ broken");
    std::string host = write(root_ + "/host", "50-host.json", R"({"sweep": {"max_passes": 7}})");
    ConfigSources s = sources();
    s.system_dirs = false;
    s.extra_dirs = {root_ + "/host"};

    EXPECT_EQ(config_drop_in_dirs(s), std::vector<std::string>{root_ + "/host"});
    EXPECT_EQ(load_ok(s).sweep.max_passes, 7);
}

// Only *.json files that are not hidden are read.
TEST_F(ConfigLoader, IgnoresOtherAndHiddenFiles) {
    write(etc_, "README", "{ broken");
    write(etc_, "50-site.json~", "{ broken");
    write(etc_, ".50-site.json", "{ broken");
    write(etc_, ".json", "{ broken");

    EXPECT_EQ(config_to_json(load_ok(sources())), config_to_json(Config{}));
}

// Every key reaches the Config field it names.
TEST_F(ConfigLoader, SetsEveryKey) {
    ConfigSources s = sources();
    s.inline_json = R"({
      "teardown": {"term_signal": "INT", "kill_signal": "SIGRTMIN+2", "grace_ms": 0,
                   "cap_ms": 1, "group": false, "dry_run": true, "on_close": true},
      "sweep": {"enabled": false, "max_passes": 1000},
      "systemd": {"scope": "adopt", "bus": "user", "slice": "app-x.slice", "timeout_ms": 9},
      "cgroup": {"parent": "/sys/fs/cgroup/x", "kill": "freeze"},
      "log": {"level": "err", "sink": "stderr"},
      "exclude": [{"comm": "sshd", "exe": "/usr/sbin/*", "uid": 4294967294}]
    })";

    Config c = load_ok(s);

    EXPECT_EQ(c.teardown.term_signal, SIGINT);
    EXPECT_EQ(c.teardown.kill_signal, SIGRTMIN + 2);
    EXPECT_EQ(c.teardown.grace.count(), 0);
    EXPECT_EQ(c.teardown.cap.count(), 1);
    EXPECT_FALSE(c.teardown.group);
    EXPECT_TRUE(c.teardown.dry_run);
    EXPECT_TRUE(c.teardown.on_close);
    EXPECT_FALSE(c.sweep.enabled);
    EXPECT_EQ(c.sweep.max_passes, 1000);
    EXPECT_EQ(c.systemd.scope, ScopeMode::adopt);
    EXPECT_EQ(c.systemd.bus, BusKind::user);
    EXPECT_EQ(c.systemd.slice, "app-x.slice");
    EXPECT_EQ(c.systemd.timeout.count(), 9);
    EXPECT_EQ(c.cgroup.parent, "/sys/fs/cgroup/x");
    EXPECT_EQ(c.cgroup.kill, CgroupKill::freeze);
    EXPECT_EQ(c.log.level, 3);
    EXPECT_EQ(c.log.sink, LogSink::stderr_);
    ASSERT_EQ(c.exclude.size(), 1u);
    EXPECT_EQ(c.exclude[0].comm, "sshd");
    EXPECT_EQ(c.exclude[0].exe, "/usr/sbin/*");
    EXPECT_EQ(c.exclude[0].uid, 4294967294u);
    EXPECT_EQ(c.exclude[0].origin, "<inline>:8:19");
}

// A Config rendered as JSON loads back into the same Config.
TEST_F(ConfigLoader, RendersConfigThatLoadsBackUnchanged) {
    Config original;
    original.teardown.kill_signal = SIGRTMIN + 3;
    original.log.level = 7;
    original.systemd.scope = ScopeMode::create;
    original.exclude.push_back(ExcludeRule{std::nullopt, "/bin/*", 0, ""});
    ConfigSources s = sources();
    s.inline_json = config_to_json(original).dump();

    Config loaded = load_ok(s);

    EXPECT_EQ(config_to_json(loaded), config_to_json(original));
    EXPECT_EQ(config_to_json(original)["teardown"]["kill_signal"], "SIGRTMIN+3");
    EXPECT_EQ(config_to_json(original)["log"]["level"], "debug");
}

// Signals are accepted with and without the SIG prefix and for realtime offsets.
TEST_F(ConfigLoader, ParsesSignalNames) {
    auto term_signal = [&](const std::string& name) {
        ConfigSources s = sources();
        s.inline_json = R"({"teardown": {"term_signal": ")" + name + R"("}})";
        auto config = load_config(s);
        return config.ok() ? config->teardown.term_signal : -1;
    };

    EXPECT_EQ(term_signal("TERM"), SIGTERM);
    EXPECT_EQ(term_signal("SIGHUP"), SIGHUP);
    EXPECT_EQ(term_signal("RTMIN"), SIGRTMIN);
    EXPECT_EQ(term_signal("SIGRTMAX-1"), SIGRTMAX - 1);
    EXPECT_EQ(term_signal("sigterm"), -1);
    EXPECT_EQ(term_signal("15"), -1);
    EXPECT_EQ(term_signal("SIGRTMIN+999"), -1);
    EXPECT_EQ(term_signal("SIGRTMIN-1"), -1);
}

// --- Rejecting bad input -------------------------------------------------------------------------

// The example from the documentation: the message points at the value on line 7, column 15.
TEST_F(ConfigLoader, RejectsWrongTypeAtValuePosition) {
    std::string path = write(etc_, "50-site.json",
                             "{\n"
                             "\"sweep\": {\n"
                             "  \"enabled\": true\n"
                             "},\n"
                             "\"teardown\": {\n"
                             "  \"group\": true,\n"
                             "  \"grace_ms\": \"2s\"\n"
                             "}\n"
                             "}\n");

    Error e = load_error(sources());

    EXPECT_EQ(e.code, EINVAL);
    EXPECT_EQ(e.message,
              path + ":7:15: teardown.grace_ms: expected a non-negative integer, got \"2s\"");
}

// A JSON syntax error names the file, line and column where parsing broke.
TEST_F(ConfigLoader, RejectsSyntaxErrorWithPosition) {
    std::string path =
        write(vendor_, "10-bad.json", "{\n  \"teardown\": {\n    \"group\": tru\n}}");

    Error e = load_error(sources());

    EXPECT_EQ(e.code, EINVAL);
    EXPECT_EQ(e.message, path + ":3:17: syntax error while parsing value - invalid literal; "
                                "last read: '\"group\": tru<U+000A>'");
}

// A document cut short is reported at its end.
TEST_F(ConfigLoader, RejectsTruncatedDocumentAtEnd) {
    std::string path = write(etc_, "10-cut.json", "{\"log\": {");

    EXPECT_EQ(load_error(sources()).message,
              path + ":1:10: syntax error while parsing object key - unexpected end of input; "
                     "expected string literal");
}

// Numbers outside a key's range are rejected with the range in the message.
TEST_F(ConfigLoader, RejectsOutOfRangeNumbers) {
    std::vector<std::pair<std::string, std::string>> cases{
        {R"({"sweep": {"max_passes": 0}})",
         "<inline>:1:26: sweep.max_passes: expected an integer from 1 to 1000, got 0"},
        {R"({"sweep": {"max_passes": 1001}})",
         "<inline>:1:26: sweep.max_passes: expected an integer from 1 to 1000, got 1001"},
        {R"({"teardown": {"grace_ms": -1}})",
         "<inline>:1:27: teardown.grace_ms: expected an integer from 0 to 2147483647, got -1"},
        {R"({"teardown": {"cap_ms": 0}})",
         "<inline>:1:25: teardown.cap_ms: expected an integer from 1 to 2147483647, got 0"},
        {R"({"exclude": [{"uid": 4294967295}]})",
         "<inline>:1:22: exclude[0].uid: expected an integer from 0 to 4294967294, got "
         "4294967295"},
        {R"({"teardown": {"grace_ms": 18446744073709551616}})",
         "<inline>:1:27: teardown.grace_ms: expected a non-negative integer, got "
         "18446744073709551616"},
    };
    for (const auto& [text, message] : cases) {
        ConfigSources s = sources();
        s.inline_json = text;
        EXPECT_EQ(load_error(s).message, message);
    }
}

// A fraction is not an integer, even when it is whole.
TEST_F(ConfigLoader, RejectsFractionForInteger) {
    ConfigSources s = sources();
    s.inline_json = R"({"systemd": {"timeout_ms": 1.0}})";

    EXPECT_EQ(load_error(s).message,
              "<inline>:1:28: systemd.timeout_ms: expected a positive integer, got 1.0");
}

// A number too large for a double is a positioned error, not an exception.
TEST_F(ConfigLoader, RejectsNumberOverflow) {
    ConfigSources s = sources();
    s.inline_json = "{\"teardown\": {\"grace_ms\": 1e999}}";

    EXPECT_EQ(load_error(s).message, "<inline>:1:27: number overflow parsing '1e999'");
}

// An unknown signal name is rejected with an example of a valid one.
TEST_F(ConfigLoader, RejectsUnknownSignalName) {
    std::string path = write(etc_, "50-site.json", R"({"teardown": {"kill_signal": "SIGKIL"}})");

    EXPECT_EQ(load_error(sources()).message,
              path + R"(:1:30: teardown.kill_signal: expected a signal name like "SIGTERM", )"
                     R"(got "SIGKIL")");
}

// An unknown key is reported at the key, with the nearest valid key suggested.
TEST_F(ConfigLoader, RejectsUnknownKeyWithSuggestion) {
    std::string path = write(etc_, "50-site.json", "{\n  \"teardown\": {\"grace\": 5}\n}");

    EXPECT_EQ(load_error(sources()).message,
              path + R"(:2:16: teardown.grace: unknown key "grace" (did you mean "grace_ms"?))");
}

// A misspelt group is matched too, ignoring case.
TEST_F(ConfigLoader, SuggestsGroupForMisspeltTopLevelKey) {
    ConfigSources s = sources();
    s.inline_json = R"({"Teardwon": {}})";

    EXPECT_EQ(load_error(s).message,
              R"(<inline>:1:2: ["Teardwon"]: unknown key "Teardwon" (did you mean "teardown"?))");
}

// With nothing close, the message lists the valid keys instead.
TEST_F(ConfigLoader, ListsValidKeysWhenNoneIsClose) {
    ConfigSources s = sources();
    s.inline_json = R"({"cgroup": {"xyz": 1}})";

    EXPECT_EQ(load_error(s).message, R"(<inline>:1:13: cgroup.xyz: unknown key "xyz" )"
                                     R"((expected one of "parent", "kill"))");
}

// A field name typo inside an exclusion rule fails instead of protecting nothing.
TEST_F(ConfigLoader, RejectsUnknownFieldInExcludeRule) {
    std::string path = write(etc_, "60-keep.json",
                             "{\"exclude\": [\n  {\"comm\": \"a\"},\n  {\"cmm\": \"sshd\"}\n]}");

    EXPECT_EQ(load_error(sources()).message,
              path + R"(:3:4: exclude[1].cmm: unknown key "cmm" (did you mean "comm"?))");
}

// Each exclusion rule needs at least one field, and each field its own shape.
TEST_F(ConfigLoader, RejectsMalformedExcludeRules) {
    std::vector<std::pair<std::string, std::string>> cases{
        {R"({"exclude": [{}]})", R"(<inline>:1:14: exclude[0]: expected at least one of "comm", )"
                                 R"("exe", "uid", got an empty object)"},
        {R"({"exclude": {"comm": "a"}})",
         "<inline>:1:13: exclude: expected an array of rules, got an object"},
        {R"({"exclude": ["sshd"]})",
         R"(<inline>:1:14: exclude[0]: expected an object, got "sshd")"},
        {R"({"exclude": [{"comm": "0123456789abcdef"}]})",
         R"(<inline>:1:23: exclude[0].comm: expected a command name of 1 to 15 bytes, )"
         R"(got "0123456789abcdef")"},
        {R"({"exclude": [{"comm": ""}]})",
         R"(<inline>:1:23: exclude[0].comm: expected a command name of 1 to 15 bytes, got "")"},
        {R"({"exclude": [{"exe": "sshd"}]})",
         R"(<inline>:1:22: exclude[0].exe: expected an absolute path glob like "/usr/bin/*", )"
         R"(got "sshd")"},
        {R"({"exclude": [{"uid": "0"}]})",
         R"(<inline>:1:22: exclude[0].uid: expected a non-negative integer, got "0")"},
    };
    for (const auto& [text, message] : cases) {
        ConfigSources s = sources();
        s.inline_json = text;
        EXPECT_EQ(load_error(s).message, message);
    }
}

// Strings with a fixed set of values, slices and paths are checked.
TEST_F(ConfigLoader, RejectsInvalidStringValues) {
    std::vector<std::pair<std::string, std::string>> cases{
        {R"({"systemd": {"scope": "Adopt"}})",
         R"(<inline>:1:23: systemd.scope: expected one of "off", "adopt", "create", got "Adopt")"},
        {R"({"systemd": {"slice": "a--b.slice"}})",
         R"(<inline>:1:23: systemd.slice: expected a slice unit name like "sessreap.slice", )"
         R"(or "", got "a--b.slice")"},
        {R"({"systemd": {"slice": "app.service"}})",
         R"(<inline>:1:23: systemd.slice: expected a slice unit name like "sessreap.slice", )"
         R"(or "", got "app.service")"},
        {R"({"cgroup": {"parent": "/sys/fs/cgroup/../x"}})",
         R"(<inline>:1:23: cgroup.parent: expected an absolute path without "..", or "", )"
         R"(got "/sys/fs/cgroup/../x")"},
        {R"({"cgroup": {"parent": "relative"}})",
         R"(<inline>:1:23: cgroup.parent: expected an absolute path without "..", or "", )"
         R"(got "relative")"},
        {R"({"log": {"level": 7}})",
         R"(<inline>:1:19: log.level: expected one of "err", "warning", "notice", "info", )"
         R"("debug", got 7)"},
        {R"({"teardown": {"dry_run": "yes"}})",
         R"(<inline>:1:26: teardown.dry_run: expected true or false, got "yes")"},
        {R"({"teardown": {"group": null}})",
         "<inline>:1:24: teardown.group: expected true or false, got null"},
        {R"({"sweep": [true]})", "<inline>:1:11: sweep: expected an object, got an array"},
    };
    for (const auto& [text, message] : cases) {
        ConfigSources s = sources();
        s.inline_json = text;
        EXPECT_EQ(load_error(s).message, message);
    }
}

// A long value is shortened in the message.
TEST_F(ConfigLoader, ShortensLongValuesInMessages) {
    ConfigSources s = sources();
    s.inline_json = R"({"systemd": {"bus": ")" + std::string(100, 'x') + R"("}})";

    EXPECT_EQ(load_error(s).message, R"(<inline>:1:21: systemd.bus: expected one of "auto", )"
                                     R"("system", "user", got ")" +
                                         std::string(39, 'x') + "...");
}

// The top-level value must be an object.
TEST_F(ConfigLoader, RejectsTopLevelValueThatIsNotAnObject) {
    std::string path = write(etc_, "50-site.json", "\n  [1, 2]\n");

    Error e = load_error(sources());

    EXPECT_EQ(e.code, EINVAL);
    EXPECT_EQ(e.message, path + ":2:3: expected an object, got an array");
}

// A key given twice in one object is rejected rather than silently taking either value.
TEST_F(ConfigLoader, RejectsDuplicateKey) {
    std::string path =
        write(etc_, "50-site.json", "{\"teardown\": {\"group\": true,\n \"group\": false}}");

    EXPECT_EQ(load_error(sources()).message,
              path + ":2:2: teardown.group: duplicate key, first at line 1, column 15");
}

// Bytes that are not UTF-8 are reported at the first bad byte.
TEST_F(ConfigLoader, RejectsInvalidUtf8AtFirstBadByte) {
    std::string path = write(etc_, "50-site.json", "{\"exclude\": [{\"comm\": \"caf\xc3\x28\"}]}");

    Error e = load_error(sources());

    EXPECT_EQ(e.code, EINVAL);
    EXPECT_EQ(e.message, path + ":1:27: expected UTF-8 text, got byte 0xc3");
}

// A NUL byte does not end the document early: what follows it would be ignored.
TEST_F(ConfigLoader, RejectsNulByte) {
    std::string path = write(etc_, "50-site.json", std::string("{}\n\0{\"x\": 1}", 12));

    EXPECT_EQ(load_error(sources()).message,
              path + ":2:1: expected text without NUL bytes, got byte 0x00");
}

// UTF-16 surrogates encoded in UTF-8 are not UTF-8 either.
TEST_F(ConfigLoader, RejectsEncodedSurrogate) {
    ConfigSources s = sources();
    s.inline_json = "{\"x\": \"\xed\xa0\x80\"}";

    EXPECT_EQ(load_error(s).message, "<inline>:1:8: expected UTF-8 text, got byte 0xed");
}

// Nesting deeper than the limit is refused before it is parsed.
TEST_F(ConfigLoader, RejectsDeepNesting) {
    ConfigSources s = sources();
    s.inline_json = std::string(100, '[') + std::string(100, ']');

    EXPECT_EQ(load_error(s).message,
              "<inline>:1:65: expected at most 64 levels of nesting, got more");
}

// A drop-in over 1 MiB is refused without being parsed.
TEST_F(ConfigLoader, RejectsFileOverOneMebibyte) {
    std::string path = write(etc_, "50-big.json",
                             "{\"log\": {\"level\": \"info\"}}" + std::string(1024 * 1024, ' '));

    Error e = load_error(sources());

    EXPECT_EQ(e.code, EINVAL);
    EXPECT_EQ(e.message, path + ": expected at most 1 MiB, got 1048602 bytes");
}

// A directory with a drop-in's name is not readable as a drop-in.
TEST_F(ConfigLoader, RejectsDirectoryNamedLikeDropIn) {
    fs::create_directories(etc_ + "/50-site.json");

    Error e = load_error(sources());

    EXPECT_EQ(e.code, EINVAL);
    EXPECT_EQ(e.message, "Failed to read " + etc_ + "/50-site.json: not a regular file");
}

// A FIFO with a drop-in's name is rejected at once instead of blocking the open.
TEST_F(ConfigLoader, RejectsFifoWithoutBlocking) {
    fs::create_directories(etc_);
    ASSERT_EQ(mkfifo((etc_ + "/50-site.json").c_str(), 0644), 0);

    Error e = load_error(sources());

    EXPECT_EQ(e.code, EINVAL);
    EXPECT_EQ(e.message, "Failed to read " + etc_ + "/50-site.json: not a regular file");
}

// A symlink loop among drop-ins fails with ELOOP and the path.
TEST_F(ConfigLoader, RejectsSymlinkLoop) {
    symlink_in(etc_, "50-a.json", "51-b.json");
    symlink_in(etc_, "51-b.json", "50-a.json");

    Error e = load_error(sources());

    EXPECT_EQ(e.code, ELOOP);
    EXPECT_EQ(e.message, "Failed to open " + etc_ + "/50-a.json: " + errno_string(ELOOP));
}

// A drop-in directory that is a symlink to itself fails with ELOOP too.
TEST_F(ConfigLoader, RejectsDirectorySymlinkLoop) {
    fs::create_directories(root_ + "/run/sessreap");
    ASSERT_EQ(symlink("sessreap.d", run_.c_str()), 0);

    Error e = load_error(sources());

    EXPECT_EQ(e.code, ELOOP);
    EXPECT_EQ(e.message, "Failed to open directory " + run_ + ": " + errno_string(ELOOP));
}

// A dangling symlink is an error, not a silently missing drop-in.
TEST_F(ConfigLoader, RejectsDanglingSymlink) {
    symlink_in(etc_, "50-gone.json", root_ + "/nowhere.json");

    Error e = load_error(sources());

    EXPECT_EQ(e.code, ENOENT);
    EXPECT_EQ(e.message, "Failed to open " + etc_ + "/50-gone.json: " + errno_string(ENOENT));
}

// Runs load_config as the unprivileged user nobody in a child, since root reads anything.
// Returns errno and message, or nullopt when privileges cannot be dropped.
std::optional<Error> load_error_as_nobody(const ConfigSources& s) {
    int pipe_fds[2];
    if (pipe2(pipe_fds, O_CLOEXEC) < 0) return std::nullopt;

    pid_t pid = fork();
    if (pid == 0) {
        close(pipe_fds[0]);
        bool dropped = getuid() != 0 ||
                       (setgroups(0, nullptr) == 0 && setgid(65534) == 0 && setuid(65534) == 0);
        auto config = load_config(s);
        std::string reply =
            !dropped      ? "skip"
            : config.ok() ? "0 loaded"
                          : std::to_string(config.error().code) + " " + config.error().message;
        (void)!write(pipe_fds[1], reply.data(), reply.size());
        _exit(0);
    }
    close(pipe_fds[1]);

    std::string reply;
    char buffer[4096];
    ssize_t n;
    while ((n = read(pipe_fds[0], buffer, sizeof buffer)) > 0) reply.append(buffer, size_t(n));
    close(pipe_fds[0]);
    waitpid(pid, nullptr, 0);

    if (reply.empty() || reply == "skip") return std::nullopt;
    size_t space = reply.find(' ');
    return Error{atoi(reply.substr(0, space).c_str()), reply.substr(space + 1)};
}

// A drop-in the process may not read fails with EACCES, naming the file.
TEST_F(ConfigLoader, RejectsUnreadableFile) {
    std::string path = write(etc_, "50-site.json", "{}");
    chmod(path.c_str(), 0);

    auto e = load_error_as_nobody(sources());

    if (!e) GTEST_SKIP() << "cannot run as uid 65534 here";
    EXPECT_EQ(e->code, EACCES);
    EXPECT_EQ(e->message, "Failed to open " + path + ": " + errno_string(EACCES));
}

// A drop-in directory the process may not list fails with EACCES, naming the directory.
TEST_F(ConfigLoader, RejectsUnreadableDirectory) {
    write(etc_, "50-site.json", "{}");
    chmod(etc_.c_str(), 0);

    auto e = load_error_as_nobody(sources());
    chmod(etc_.c_str(), 0755); // so that TearDown can remove it without root

    if (!e) GTEST_SKIP() << "cannot run as uid 65534 here";
    EXPECT_EQ(e->code, EACCES);
    EXPECT_EQ(e->message, "Failed to open directory " + etc_ + ": " + errno_string(EACCES));
}

// One invalid drop-in fails the whole load, even when later files would override the key.
TEST_F(ConfigLoader, FailsClosedWhenLaterFileWouldOverride) {
    std::string bad = write(etc_, "10-typo.json", R"({"exclude": [{"com": "sshd"}]})");
    write(etc_, "90-fix.json", R"({"exclude": [{"comm": "sshd"}]})");

    EXPECT_EQ(load_error(sources()).message,
              bad + R"(:1:15: exclude[0].com: unknown key "com" (did you mean "comm"?))");
}

// An error in the inline document names "<inline>".
TEST_F(ConfigLoader, NamesInlineDocumentInErrors) {
    ConfigSources s = sources();
    s.inline_json = "{\"log\": {\"sink\": \"syslog\"}}";

    Error e = load_error(s);

    EXPECT_EQ(e.code, EINVAL);
    EXPECT_EQ(e.message, R"(<inline>:1:18: log.sink: expected one of "auto", "host", )"
                         R"("journald", "stderr", got "syslog")");
}

// Keys that are not plain identifiers are quoted in the key path.
TEST_F(ConfigLoader, QuotesUnusualKeysInKeyPath) {
    ConfigSources s = sources();
    s.inline_json = R"({"log": {"a b\n": 1}})";

    EXPECT_EQ(load_error(s).message,
              R"(<inline>:1:10: log["a b\n"]: unknown key "a b\n" (expected one of "level", )"
              R"("sink"))");
}

// --- check_config_files -----------------------------------------------------------------------

// Every error in every file is returned, in file order and then text order.
TEST_F(ConfigLoader, ChecksFilesReportingAllErrors) {
    std::string many = write(root_, "many.json",
                             "{\"teardown\": {\"grace_ms\": \"1s\", \"cap\": 1},\n"
                             " \"sweep\": {\"max_passes\": 0}}");
    std::string syntax = write(root_, "syntax.json", "{,}");
    std::string empty = write(root_, "empty.json", "");
    std::string masked = symlink_in(root_, "masked.json", "/dev/null");
    std::string good = write(root_, "good.json", R"({"log": {"level": "debug"}})");

    std::vector<Error> errors =
        check_config_files({many, syntax, empty, masked, good, root_ + "/missing.json"});

    ASSERT_EQ(errors.size(), 5u);
    EXPECT_EQ(errors[0].message,
              many + ":1:27: teardown.grace_ms: expected a non-negative integer, got \"1s\"");
    EXPECT_EQ(errors[1].message,
              many + R"(:1:33: teardown.cap: unknown key "cap" (did you mean "cap_ms"?))");
    EXPECT_EQ(errors[2].message,
              many + ":2:26: sweep.max_passes: expected an integer from 1 to 1000, got 0");
    EXPECT_EQ(errors[3].message, syntax + ":1:2: syntax error while parsing object key - "
                                          "unexpected ','; expected string literal");
    EXPECT_EQ(errors[4].code, ENOENT);
    EXPECT_TRUE(check_config_files({good, empty, masked}).empty());
}

// The effective set is checked file by file, masked files left out, then the inline document.
TEST_F(ConfigLoader, ChecksEffectiveSetReportingEveryFile) {
    std::string vendor = write(vendor_, "10-v.json", R"({"sweep": {"max_passes": 0}})");
    write(vendor_, "20-masked.json", "{ broken");
    symlink_in(etc_, "20-masked.json", "/dev/null");
    std::string site = write(etc_, "30-site.json", R"({"teardown": {"grace_ms": true}})");
    write(run_, "40-ok.json", R"({"log": {"level": "debug"}})");
    ConfigSources s = sources();
    s.inline_json = R"({"sweep": {"enabled": 1}})";

    std::vector<Error> errors = check_effective_config(s);

    ASSERT_EQ(errors.size(), 3u);
    EXPECT_EQ(errors[0].message,
              vendor + ":1:26: sweep.max_passes: expected an integer from 1 to 1000, got 0");
    EXPECT_EQ(errors[1].message,
              site + ":1:27: teardown.grace_ms: expected a non-negative integer, got true");
    EXPECT_EQ(errors[2].message, "<inline>:1:23: sweep.enabled: expected true or false, got 1");
}

// --- The position index --------------------------------------------------------------------

// Values and keys are found by JSON pointer, with "~" and "/" escaped in keys.
TEST(JsonIndex, FindsValuesAndKeysByPointer) {
    std::string text = "\xef\xbb\xbf{\"a/b\": [1, {\"c~d\": \"x\\\"y\"}],\n \"e\": {}}";
    JsonIndex index(text);
    LineIndex lines(text);

    const JsonSpan* string_value = index.find("/a~1b/1/c~0d");
    ASSERT_NE(string_value, nullptr);
    EXPECT_EQ(text.substr(string_value->begin, string_value->end - string_value->begin),
              "\"x\\\"y\"");
    ASSERT_TRUE(string_value->key_begin);
    EXPECT_EQ(text.substr(*string_value->key_begin, 5), "\"c~d\"");

    const JsonSpan* number = index.find("/a~1b/0");
    ASSERT_NE(number, nullptr);
    EXPECT_EQ(text.substr(number->begin, number->end - number->begin), "1");
    EXPECT_FALSE(number->key_begin);

    const JsonSpan* object = index.find("/e");
    ASSERT_NE(object, nullptr);
    EXPECT_EQ(lines.at(object->begin).line, 2u);
    EXPECT_EQ(lines.at(object->begin).column, 7u);
    EXPECT_EQ(index.find("/x"), nullptr);
    EXPECT_TRUE(index.duplicates().empty());
}

// Keys with escapes are decoded before they are compared for duplicates.
TEST(JsonIndex, DetectsDuplicateKeysWrittenDifferently) {
    std::string text = R"({"ab": 1, "a\u0062": 2})";
    JsonIndex index(text);

    ASSERT_EQ(index.duplicates().size(), 1u);
    EXPECT_EQ(index.duplicates()[0].pointer, "/ab");
    EXPECT_EQ(index.duplicates()[0].offset, 10u);
    EXPECT_EQ(index.duplicates()[0].first_offset, 1u);
}

// Text that nlohmann_json would reject is indexed partly, without reading out of bounds.
TEST(JsonIndex, StopsOnMalformedText) {
    for (std::string text : {"{\"a\"", "[1,", "{\"a\": [", "\"abc", "{\"a\" 1}", "}", ""}) {
        JsonIndex index(text);
        EXPECT_EQ(index.find("/a/0"), nullptr) << text;
    }
}

// Columns count bytes from 1, and the offset of a newline belongs to its own line.
TEST(JsonIndex, CountsLinesAndByteColumns) {
    LineIndex lines("ab\n\xc3\xa9x\n");

    EXPECT_EQ(lines.at(0).line, 1u);
    EXPECT_EQ(lines.at(2).column, 3u);
    EXPECT_EQ(lines.at(5).line, 2u);
    EXPECT_EQ(lines.at(5).column, 3u);
    EXPECT_EQ(lines.at(7).line, 3u);
}

// --- Agreement with the JSON Schema ------------------------------------------------------------

json read_schema() {
    std::ifstream in(SESSREAP_TEST_DIR "/../packaging/sessreap.d.schema.json");
    std::stringstream text;
    text << in.rdbuf();
    return json::parse(text.str());
}

// Leaf property paths of the schema, named like config_key_paths().
void schema_leaves(const json& schema, const std::string& path, std::map<std::string, json>& out) {
    if (schema.contains("properties")) {
        for (const auto& [key, child] : schema["properties"].items())
            schema_leaves(child, path.empty() ? key : path + "." + key, out);
    } else if (schema.value("type", "") == "array" && schema.contains("items") &&
               schema["items"].contains("properties")) {
        schema_leaves(schema["items"], path + "[]", out);
    } else {
        out[path] = schema;
    }
}

size_t utf8_length(const std::string& s) {
    return size_t(std::count_if(s.begin(), s.end(), [](char c) { return (c & 0xc0) != 0x80; }));
}

// Validates v against the subset of JSON Schema the drop-in schema uses.
void validate(const json& schema, const json& v, const std::string& at,
              std::vector<std::string>& problems) {
    auto fail = [&](const std::string& what) { problems.push_back(at + ": " + what); };
    std::string type = schema.value("type", "");

    if (type == "object" && !v.is_object()) return fail("not an object");
    if (type == "array" && !v.is_array()) return fail("not an array");
    if (type == "string" && !v.is_string()) return fail("not a string");
    if (type == "integer" && !v.is_number_integer()) return fail("not an integer");
    if (type == "boolean" && !v.is_boolean()) return fail("not a boolean");
    if (schema.contains("enum") &&
        std::find(schema["enum"].begin(), schema["enum"].end(), v) == schema["enum"].end())
        fail("not in enum");
    if (schema.contains("minimum") && v.is_number() && v < schema["minimum"]) fail("too small");
    if (schema.contains("maximum") && v.is_number() && v > schema["maximum"]) fail("too large");
    if (v.is_string()) {
        const std::string& s = v.get_ref<const std::string&>();
        if (schema.contains("minLength") && utf8_length(s) < schema["minLength"]) fail("short");
        if (schema.contains("maxLength") && utf8_length(s) > schema["maxLength"]) fail("long");
        if (schema.contains("pattern") &&
            !std::regex_search(s, std::regex(schema["pattern"].get<std::string>())))
            fail("does not match pattern");
    }
    if (v.is_object()) {
        if (schema.contains("minProperties") && v.size() < schema["minProperties"]) fail("empty");
        for (const auto& [key, member] : v.items()) {
            if (!schema.contains("properties") || !schema["properties"].contains(key)) {
                if (schema.value("additionalProperties", true) == false) fail("extra " + key);
                continue;
            }
            validate(schema["properties"][key], member, at + "." + key, problems);
        }
    }
    if (v.is_array() && schema.contains("items"))
        for (const json& item : v) validate(schema["items"], item, at + "[]", problems);
}

// The keys the loader accepts are exactly the schema's properties.
TEST(ConfigSchema, ListsExactlyTheLoaderKeys) {
    std::map<std::string, json> leaves;
    schema_leaves(read_schema(), "", leaves);
    std::set<std::string> schema_paths;
    for (const auto& [path, schema] : leaves) schema_paths.insert(path);

    std::vector<std::string> loader = config_key_paths();
    std::set<std::string> loader_paths(loader.begin(), loader.end());

    EXPECT_EQ(schema_paths, loader_paths);
    EXPECT_EQ(loader_paths.size(), loader.size()); // no key listed twice
}

// Every object in the schema forbids keys it does not list, as the loader does.
TEST(ConfigSchema, ForbidsAdditionalPropertiesEverywhere) {
    std::vector<const json*> pending{};
    json schema = read_schema();
    pending.push_back(&schema);
    size_t objects = 0;
    while (!pending.empty()) {
        const json& s = *pending.back();
        pending.pop_back();
        if (s.value("type", "") == "object") {
            objects++;
            EXPECT_EQ(s.value("additionalProperties", true), false) << s.dump();
        }
        if (s.contains("properties"))
            for (const auto& [key, child] : s["properties"].items()) pending.push_back(&child);
        if (s.contains("items")) pending.push_back(&s["items"]);
    }
    EXPECT_EQ(objects, 8u); // the document, six groups and an exclude rule
}

// The built-in defaults validate against the schema, and its defaults are the built-in ones.
TEST(ConfigSchema, AgreesOnDefaults) {
    json schema = read_schema();
    json defaults = config_to_json(Config{});
    std::vector<std::string> problems;

    validate(schema, defaults, "", problems);

    EXPECT_TRUE(problems.empty()) << problems.front();
    EXPECT_EQ(schema["properties"]["exclude"]["default"], defaults["exclude"]);
    std::map<std::string, json> leaves;
    schema_leaves(schema, "", leaves);
    for (const auto& [path, leaf] : leaves) {
        if (path.find("[]") != std::string::npos) continue; // rule fields have no default
        size_t dot = path.find('.');
        ASSERT_TRUE(leaf.contains("default")) << path;
        EXPECT_EQ(leaf["default"], defaults[path.substr(0, dot)][path.substr(dot + 1)]) << path;
    }
}

// Schema and loader agree on each enum value and on each bound and the value past it.
TEST(ConfigSchema, AgreesOnEnumsAndBounds) {
    std::map<std::string, json> leaves;
    schema_leaves(read_schema(), "", leaves);
    auto loads = [](const std::string& path, const json& value) {
        size_t split = path.find('.');
        std::string group = path.substr(0, split), key = path.substr(split + 1);
        json doc = group == "exclude[]" ? json{{"exclude", {{{key, value}}}}}
                                        : json{{group, {{key, value}}}};
        return check_config_text("<test>", doc.dump()).empty();
    };

    size_t checked = 0;
    for (const auto& [path, leaf] : leaves) {
        for (const json& value : leaf.value("enum", json::array())) {
            EXPECT_TRUE(loads(path, value)) << path << " " << value;
            EXPECT_FALSE(loads(path, value.get<std::string>() + "x")) << path;
            checked++;
        }
        if (leaf.contains("minimum")) {
            int64_t min = leaf["minimum"];
            EXPECT_TRUE(loads(path, min)) << path;
            EXPECT_FALSE(loads(path, min - 1)) << path;
            checked++;
        }
        if (leaf.contains("maximum")) {
            int64_t max = leaf["maximum"];
            EXPECT_TRUE(loads(path, max)) << path;
            EXPECT_FALSE(loads(path, max + 1)) << path;
            checked++;
        }
    }
    EXPECT_EQ(checked, 27u);
}

} // namespace
} // namespace sessreap
