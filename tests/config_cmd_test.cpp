// SPDX-License-Identifier: LGPL-2.1-or-later
// sessreap-host config and the configuration run reads: checking, showing with origins,
// exclusions and dry run on real processes.
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "config.h"
#include "process.h"

using namespace testing_support;

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

const std::string kHost = SESSREAP_HOST_PATH;
const std::string kModule = SESSREAP_MODULE_PATH;
const std::string kEscapees = std::string(SESSREAP_TEST_DIR) + "/scripts/escapees.sh";

// A scratch directory holding a root with the three system drop-in directories.
class ConfigCommand : public ::testing::Test {
protected:
    void SetUp() override {
        char pattern[] = "/tmp/sessreap-config-cmd-XXXXXX";
        ASSERT_NE(mkdtemp(pattern), nullptr);
        dir_ = pattern;
        root_ = dir_ + "/root";

        sessreap::ConfigSources sources;
        sources.root = root_;
        std::vector<std::string> dirs = sessreap::config_drop_in_dirs(sources);
        ASSERT_EQ(dirs.size(), 3u);
        vendor_ = dirs[0];
        etc_ = dirs[1];
        run_ = dirs[2];
    }

    void TearDown() override {
        for (const char* name : {"/pids", "/kept"})
            for (pid_t pid : read_pids(dir_ + name)) kill_own(pid);
        std::error_code ignored;
        fs::remove_all(dir_, ignored);
    }

    // Writes a file, creating its directory; returns its path.
    std::string write(const std::string& dir, const std::string& name, const std::string& text) {
        fs::create_directories(dir);
        std::string path = dir + "/" + name;
        std::ofstream(path, std::ios::binary) << text;
        return path;
    }

    static std::vector<pid_t> read_pids(const std::string& file) {
        std::ifstream in(file);
        std::vector<pid_t> pids;
        for (pid_t pid; in >> pid;) pids.push_back(pid);
        return pids;
    }

    // Runs sessreap-host config with the module and args.
    static CommandResult config(std::vector<std::string> args) {
        args.insert(args.begin(), {kHost, "config", "--module", kModule});
        return run_command(args);
    }

    std::string dir_, root_, vendor_, etc_, run_;
};

// The merged document and the origins that `config` prints after it.
struct Shown {
    json config;
    std::vector<std::string> origin_lines;
};

Shown parse_shown(const std::string& out) {
    Shown shown;
    size_t split = out.find("\n# Origins:\n");
    if (split == std::string::npos) return shown;
    shown.config = json::parse(out.substr(0, split));
    std::istringstream lines(out.substr(split + 12));
    for (std::string line; std::getline(lines, line);) shown.origin_lines.push_back(line);
    return shown;
}

bool has_origin(const Shown& shown, const std::string& key, const std::string& origin) {
    for (const std::string& line : shown.origin_lines) {
        std::istringstream fields(line);
        std::string hash, k, o;
        fields >> hash >> k >> o;
        if (k == key) return o == origin;
    }
    return false;
}

} // namespace

// --check on a drop-in with a wrong type prints FILE:LINE:COL: key.path: ... and exits 1.
TEST_F(ConfigCommand, CheckPrintsWrongTypeWithPlaceAndFails) {
    std::string bad =
        write(dir_, "50-bad.json", "{\n  \"teardown\": {\n    \"grace_ms\": \"2s\"\n  }\n}\n");

    CommandResult res = config({"--check", bad});

    EXPECT_EQ(res.status, 1) << res.err;
    EXPECT_EQ(res.out, bad + ":3:17: teardown.grace_ms: expected a non-negative integer, "
                             "got \"2s\"\n");
    EXPECT_NE(res.err.find("1 error"), std::string::npos) << res.err;
}

// --check on valid files, and on a valid effective set, prints nothing and exits 0.
TEST_F(ConfigCommand, CheckPassesValidSet) {
    std::string a = write(etc_, "50-a.json", R"({"teardown": {"grace_ms": 10}})");
    std::string b = write(run_, "60-b.json", R"({"exclude": [{"comm": "sshd", "uid": 0}]})");
    write(run_, "70-mask.json", "");

    CommandResult files = config({"--check", a, b, run_ + "/70-mask.json"});
    CommandResult set = config({"--check", "--root", root_});

    EXPECT_EQ(files.status, 0) << files.err;
    EXPECT_EQ(files.out, "");
    EXPECT_EQ(set.status, 0) << set.err;
    EXPECT_EQ(set.out, "");
}

// --check with no FILE checks every drop-in that applies under --root and reports the
// errors of two bad files both; a masked bad file is not checked.
TEST_F(ConfigCommand, CheckWithoutFilesChecksEffectiveSet) {
    std::string vendor = write(vendor_, "10-v.json", R"({"sweep": {"max_passes": 0}})");
    write(vendor_, "20-masked.json", "{ broken");
    write(etc_, "20-masked.json", "");
    std::string site = write(etc_, "30-site.json", "{\"teardown\": {\"gracems\": 1}}");
    write(run_, "40-ok.json", R"({"log": {"level": "debug"}})");

    CommandResult res = config({"--check", "--root", root_});

    EXPECT_EQ(res.status, 1) << res.err;
    EXPECT_EQ(res.out, vendor +
                           ":1:26: sweep.max_passes: expected an integer from 1 to 1000, got 0\n" +
                           site +
                           ":1:15: teardown.gracems: unknown key \"gracems\" (did you mean "
                           "\"grace_ms\"?)\n");
    EXPECT_NE(res.err.find("2 errors"), std::string::npos) << res.err;
}

// config --root shows the merged values of vendor, /etc and /run drop-ins with the file
// each came from; a masked file's value is absent.
TEST_F(ConfigCommand, ShowsMergedValuesWithOrigins) {
    std::string vendor =
        write(vendor_, "10-vendor.json", R"({"teardown": {"grace_ms": 100, "cap_ms": 5000}})");
    write(vendor_, "20-masked.json", R"({"sweep": {"max_passes": 7}})");
    fs::create_directories(etc_);
    ASSERT_EQ(symlink("/dev/null", (etc_ + "/20-masked.json").c_str()), 0);
    std::string site = write(etc_, "50-site.json", R"({"teardown": {"grace_ms": 300}})");
    std::string runtime = write(run_, "60-run.json", R"({"exclude": [{"comm": "sshd"}]})");

    CommandResult res = config({"--root", root_});
    CommandResult as_json = config({"--root", root_, "--json"});

    ASSERT_EQ(res.status, 0) << res.err;
    Shown shown = parse_shown(res.out);
    EXPECT_EQ(shown.config["teardown"]["grace_ms"], 300) << res.out;
    EXPECT_EQ(shown.config["teardown"]["cap_ms"], 5000);
    EXPECT_EQ(shown.config["sweep"]["max_passes"], 32);
    EXPECT_EQ(shown.config["exclude"], json::parse(R"([{"comm": "sshd"}])"));
    EXPECT_EQ(shown.origin_lines.size(), 20u);
    EXPECT_TRUE(has_origin(shown, "teardown.grace_ms", site)) << res.out;
    EXPECT_TRUE(has_origin(shown, "teardown.cap_ms", vendor)) << res.out;
    EXPECT_TRUE(has_origin(shown, "exclude", runtime)) << res.out;
    EXPECT_TRUE(has_origin(shown, "sweep.max_passes", "<default>")) << res.out;

    ASSERT_EQ(as_json.status, 0) << as_json.err;
    json doc = json::parse(as_json.out);
    EXPECT_EQ(doc["config"], shown.config);
    EXPECT_EQ(doc["origins"]["teardown.grace_ms"], site);
    EXPECT_EQ(doc["origins"]["sweep.max_passes"], "<default>");
}

// --config-dir directories apply after every system file, in the order given, and
// --config-json after them; --no-system-config leaves the system files out.
TEST_F(ConfigCommand, ShowsHostDirectoriesAndInlineLast) {
    write(etc_, "50-y.json", R"({"teardown": {"grace_ms": 100, "cap_ms": 300}})");
    std::string first = write(dir_ + "/host1", "10-x.json", R"({"teardown": {"grace_ms": 200}})");
    std::string second = write(dir_ + "/host2", "05-z.json", R"({"sweep": {"max_passes": 5}})");

    CommandResult res =
        config({"--root", root_, "--config-dir", dir_ + "/host1", "--config-dir", dir_ + "/host2",
                "--config-json", R"({"sweep": {"enabled": false}})", "--json"});
    CommandResult bare = config({"--root", root_, "--no-system-config", "--json"});

    ASSERT_EQ(res.status, 0) << res.err;
    json doc = json::parse(res.out);
    EXPECT_EQ(doc["config"]["teardown"]["grace_ms"], 200);
    EXPECT_EQ(doc["config"]["teardown"]["cap_ms"], 300);
    EXPECT_EQ(doc["origins"]["teardown.grace_ms"], first);
    EXPECT_EQ(doc["origins"]["teardown.cap_ms"], etc_ + "/50-y.json");
    EXPECT_EQ(doc["origins"]["sweep.max_passes"], second);
    EXPECT_EQ(doc["origins"]["sweep.enabled"], "<inline>");
    ASSERT_EQ(bare.status, 0) << bare.err;
    EXPECT_EQ(json::parse(bare.out)["origins"]["teardown.grace_ms"], "<default>");
}

// config on an invalid configuration names the place, points to --check and exits 1.
TEST_F(ConfigCommand, ShowFailsOnInvalidConfiguration) {
    std::string bad = write(etc_, "50-bad.json", R"({"log": {"sink": "syslog"}})");

    CommandResult res = config({"--root", root_});

    EXPECT_EQ(res.status, 1);
    EXPECT_EQ(res.out, "");
    EXPECT_NE(res.err.find(bad + ":1:18: log.sink: expected one of"), std::string::npos) << res.err;
    EXPECT_NE(res.err.find("'config --check' lists every error"), std::string::npos);
}

// Files without --check, --json with --check and unknown options are usage errors.
TEST_F(ConfigCommand, RejectsBadUsage) {
    EXPECT_EQ(config({"some.json"}).status, 2);
    EXPECT_EQ(config({"--check", "--json"}).status, 2);
    EXPECT_EQ(config({"--grace", "10"}).status, 2);
    EXPECT_EQ(config({"--root"}).status, 2);
    CommandResult help = run_command({kHost, "--help"});
    EXPECT_NE(help.out.find("sessreap-host config --check"), std::string::npos);
}

// With an exclusion rule for a command name from a --config-dir drop-in, run leaves
// exactly the matching processes alive, one in the group and one in an escapee group of
// the session, kills their siblings, and logs the rule that spared each.
TEST_F(ConfigCommand, RunSparesExcludedProcessesInGroupAndSession) {
    REQUIRE_PRIVATE_NAMESPACE();
    std::string keep = dir_ + "/keepme"; // comm comes from the executable's name
    fs::copy_file("/bin/sleep", keep);
    chmod(keep.c_str(), 0755);
    std::string rule =
        write(dir_ + "/conf", "50-exclude.json", R"({"exclude": [{"comm": "keepme"}]})");
    std::string pids = dir_ + "/pids", kept = dir_ + "/kept";
    // keepme and a sleep in the command's group; the same in an escapee group. Their
    // output goes elsewhere, so the survivors do not hold run_command's pipes open.
    std::string tree = write(dir_, "tree.sh", R"sh(
exec >/dev/null 2>&1
"$1" 300 & echo $! >> "$3"
sleep 300 & echo $! >> "$2"
perl -e 'setpgrp(0, 0); exec @ARGV' sh -c \
    '"$1" 300 & echo $! >> "$3"; sleep 300 & echo $! >> "$2"; echo $$ >> "$2"; wait' \
    escapee "$1" "$2" "$3" &
while [ "$(cat "$2" "$3" 2>/dev/null | wc -l)" -lt 5 ]; do sleep 0.05; done
# $! is known before the forked shell has exec'd keepme: wait (at most 5 s) for the name.
for pid in $(cat "$3"); do
    n=0
    while [ "$(cat /proc/$pid/comm)" != keepme ] && [ $n -lt 500 ]; do sleep 0.01; n=$((n+1)); done
done
)sh");

    CommandResult res = run_command({kHost, "run", "--module", kModule, "--no-system-config",
                                     "--config-dir", dir_ + "/conf", "--grace", "300", "--verbose",
                                     "--", "sh", tree, keep, pids, kept});

    EXPECT_EQ(res.status, 0) << res.err;
    std::vector<pid_t> spared = read_pids(kept), siblings = read_pids(pids);
    ASSERT_EQ(spared.size(), 2u) << res.err;
    ASSERT_EQ(siblings.size(), 3u) << res.err;
    for (pid_t pid : spared) {
        EXPECT_TRUE(alive(pid)) << pid;
        EXPECT_EQ(comm_of(pid), "keepme");
        EXPECT_NE(res.err.find("Sparing pid " + std::to_string(pid) +
                               " (keepme): excluded by the rule at " + rule + ":1:14"),
                  std::string::npos)
            << res.err;
    }
    for (pid_t pid : siblings) EXPECT_FALSE(alive(pid)) << pid;
    EXPECT_NE(res.err.find("signalled 3 processes (group 1, sweep 2)"), std::string::npos)
        << res.err;
    EXPECT_NE(res.err.find("spared 2 excluded, no survivors"), std::string::npos) << res.err;
}

// With dry_run from --config-json, run signals nothing: every process of the session is
// still alive afterwards, and the log and summary say what would have been signalled.
TEST_F(ConfigCommand, RunDryRunSignalsNothing) {
    REQUIRE_PRIVATE_NAMESPACE();
    std::string pids = dir_ + "/pids";
    // The escapees' output goes elsewhere, so they do not hold run_command's pipes open.

    CommandResult res =
        run_command({kHost, "run", "--module", kModule, "--no-system-config", "--config-json",
                     R"({"teardown": {"dry_run": true}})", "--verbose", "--", "sh", "-c",
                     "exec sh \"$0\" \"$1\" >/dev/null 2>&1", kEscapees, pids});

    EXPECT_EQ(res.status, 0) << res.err;
    std::vector<pid_t> session = read_pids(pids);
    ASSERT_EQ(session.size(), 7u) << res.err;
    for (pid_t pid : session) {
        EXPECT_TRUE(alive(pid)) << pid;
        EXPECT_NE(res.err.find("Would send SIGTERM to pid " + std::to_string(pid) + " ("),
                  std::string::npos)
            << pid << "\n"
            << res.err;
    }
    EXPECT_EQ(res.err.find("Sent "), std::string::npos) << res.err;
    // Not the split by layer: an escapee may not have left the group yet when its pid is
    // written, and a dry run does not wait for it.
    EXPECT_NE(res.err.find("dry run would signal 7 processes ("), std::string::npos) << res.err;
}
