// SPDX-License-Identifier: LGPL-2.1-or-later
// The C ABI: exported symbols, dlopen with RTLD_NOW, and bad input at each call.
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "process.h"

using namespace testing_support;

namespace {

std::set<std::string> exported_symbols(const char* path) {
    std::set<std::string> out;
    std::string cmd = std::string("nm -D --defined-only '") + path + "'";
    FILE* p = popen(cmd.c_str(), "r");
    if (!p) return out;
    char line[512];
    while (fgets(line, sizeof line, p)) {
        char addr[64], type[8], name[256];
        if (sscanf(line, "%63s %7s %255s", addr, type, name) != 3) continue;
        std::string sym = name;
        if (sym.find('@') != std::string::npos) sym.resize(sym.find('@'));
        if (std::string(type) != "A") out.insert(sym);
    }
    pclose(p);
    return out;
}

sessreap_report new_report() {
    sessreap_report r{};
    r.size = sizeof r;
    return r;
}

} // namespace

// The module exports exactly the ABI entry points and nothing else.
TEST(Abi, ExportsOnlyEntryPoints) {
    std::set<std::string> expected = {
        "sessreap_abi_version", "sessreap_version",     "sessreap_last_error",  "sessreap_open",
        "sessreap_close",       "sessreap_launch",      "sessreap_forget",      "sessreap_teardown",
        "sessreap_reap_stale",  "sessreap_config_show", "sessreap_config_check"};
    EXPECT_EQ(exported_symbols(SESSREAP_MODULE_PATH), expected);
}

// dlopen with RTLD_NOW succeeds (no unresolved symbol) and the ABI major matches.
TEST(Abi, LoadsWithRtldNowAndMatchingMajor) {
    void* dl = dlopen(SESSREAP_MODULE_PATH, RTLD_NOW | RTLD_LOCAL);
    ASSERT_NE(dl, nullptr) << dlerror();
    auto abi = reinterpret_cast<uint32_t (*)()>(dlsym(dl, "sessreap_abi_version"));
    auto version = reinterpret_cast<const char* (*)()>(dlsym(dl, "sessreap_version"));
    ASSERT_NE(abi, nullptr);
    ASSERT_NE(version, nullptr);
    EXPECT_EQ(abi() >> 16, uint32_t(SESSREAP_ABI_MAJOR));
    EXPECT_STRNE(version(), "");
    dlclose(dl);
}

class AbiBadInput : public ::testing::Test {
protected:
    Module m_;
};

// Calls on a NULL or closed handle fail with EBADF and never crash.
TEST_F(AbiBadInput, RejectsNullAndClosedHandles) {
    sessreap_report r = new_report();
    EXPECT_EQ(m_.launch(nullptr, 1234, nullptr), -EBADF);
    EXPECT_STRNE(m_.last_error(), "");
    EXPECT_EQ(m_.teardown(nullptr, 1234, &r), -EBADF);
    EXPECT_EQ(m_.forget(nullptr, 1234), -EBADF);
    EXPECT_EQ(m_.close(nullptr), 0);

    sessreap_handle* h = nullptr;
    ASSERT_EQ(m_.open(nullptr, &h), 0) << m_.last_error();
    EXPECT_STREQ(m_.last_error(), "");
    ASSERT_EQ(m_.close(h), 0);
    EXPECT_EQ(m_.launch(h, getpid() + 1, nullptr), -EBADF);
    EXPECT_EQ(m_.teardown(h, 1234, &r), -EBADF);
    EXPECT_EQ(m_.close(h), -EBADF);
}

// Launching pid 0, 1, a negative pid or the host itself is refused with EINVAL.
TEST_F(AbiBadInput, RefusesToLaunchHostOrInit) {
    TestHandle th(m_);
    for (pid_t pid : {pid_t(0), pid_t(1), pid_t(-5), getpid()}) {
        EXPECT_EQ(m_.launch(th.h, pid, nullptr), -EINVAL) << pid;
        EXPECT_NE(std::string(m_.last_error()).find(std::to_string(pid)), std::string::npos);
    }
}

// A pid with no process is ESRCH; a pid never launched is ENOENT at teardown.
TEST_F(AbiBadInput, ReportsUnknownPids) {
    TestHandle th(m_);
    sessreap_report r = new_report();
    EXPECT_EQ(m_.launch(th.h, 99'999'999, nullptr), -ESRCH);
    EXPECT_EQ(m_.teardown(th.h, 4242, &r), -ENOENT);
    EXPECT_EQ(m_.forget(th.h, 4242), -ENOENT);
}

// Launching the same pid twice is EEXIST; a second teardown is ENOENT.
TEST_F(AbiBadInput, RejectsDoubleLaunchAndDoubleTeardown) {
    TestHandle th(m_);
    HeldChild child([] {});
    ASSERT_EQ(m_.launch(th.h, child.pid(), nullptr), 0) << m_.last_error();
    EXPECT_EQ(m_.launch(th.h, child.pid(), nullptr), -EEXIST);
    EXPECT_EQ(m_.forget(th.h, child.pid()), 0);
    EXPECT_EQ(m_.forget(th.h, child.pid()), -ENOENT);
    sessreap_report r = new_report();
    EXPECT_EQ(m_.teardown(th.h, child.pid(), &r), -ENOENT);
    child.release();
}

// Option and report structs smaller than the first release are EINVAL.
TEST_F(AbiBadInput, RejectsUndersizedStructs) {
    sessreap_options o{};
    o.size = 8;
    sessreap_handle* h = nullptr;
    EXPECT_EQ(m_.open(&o, &h), -EINVAL);
    EXPECT_EQ(h, nullptr);
    EXPECT_EQ(m_.open(nullptr, nullptr), -EINVAL);
    o.size = sizeof o;
    o.flags = 0x80;
    EXPECT_EQ(m_.open(&o, &h), -EINVAL);

    TestHandle th(m_);
    HeldChild child([] {});
    ASSERT_EQ(m_.launch(th.h, child.pid(), nullptr), 0);
    sessreap_report r = new_report();
    r.size = 12;
    EXPECT_EQ(m_.teardown(th.h, child.pid(), &r), -EINVAL);
    r = new_report();
    r.survivors_cap = 4; // with no array
    EXPECT_EQ(m_.teardown(th.h, child.pid(), &r), -EINVAL);
    child.release();
}

// Invalid inline configuration makes open fail with a message naming it.
TEST_F(AbiBadInput, RejectsInvalidConfiguration) {
    sessreap_options o{};
    o.size = sizeof o;
    o.flags = SESSREAP_OPEN_NO_SYSTEM_CONFIG;
    o.config_json = "{\"teardown\": ";
    sessreap_handle* h = nullptr;
    EXPECT_EQ(m_.open(&o, &h), -EINVAL);
    EXPECT_NE(std::string(m_.last_error()).find("<inline>"), std::string::npos);
}

// The configuration calls reject NULL out-parameters, small structs and unknown flags,
// and leave the out-parameter untouched.
TEST_F(AbiBadInput, ConfigCallsRejectBadArguments) {
    sessreap_options o{};
    o.size = sizeof o;
    char* out = nullptr;
    EXPECT_EQ(m_.config_show(&o, nullptr), -EINVAL);
    EXPECT_NE(std::string(m_.last_error()).find("ret_json is NULL"), std::string::npos);
    EXPECT_EQ(m_.config_check(&o, nullptr, nullptr), -EINVAL);
    EXPECT_NE(std::string(m_.last_error()).find("ret_errors is NULL"), std::string::npos);

    o.flags = 0x80;
    EXPECT_EQ(m_.config_show(&o, &out), -EINVAL);
    EXPECT_NE(std::string(m_.last_error()).find("sessreap_config_show: unknown flags"),
              std::string::npos);
    EXPECT_EQ(m_.config_check(&o, nullptr, &out), -EINVAL);
    o.flags = 0;
    o.size = 8;
    EXPECT_EQ(m_.config_show(&o, &out), -EINVAL);
    EXPECT_EQ(m_.config_check(&o, nullptr, &out), -EINVAL);
    EXPECT_EQ(out, nullptr);
}

namespace {

namespace fs = std::filesystem;

// A scratch directory of drop-ins and the options that name it.
class AbiConfig : public ::testing::Test {
protected:
    void SetUp() override {
        char pattern[] = "/tmp/sessreap-abi-config-XXXXXX";
        ASSERT_NE(mkdtemp(pattern), nullptr);
        dir_ = pattern;
        dirs_[0] = dir_.c_str();
        opts_.size = sizeof opts_;
        opts_.flags = SESSREAP_OPEN_NO_SYSTEM_CONFIG;
        opts_.config_dirs = dirs_;
    }

    void TearDown() override {
        std::error_code ignored;
        fs::remove_all(dir_, ignored);
    }

    std::string write(const std::string& name, const std::string& text) {
        std::string path = dir_ + "/" + name;
        std::ofstream(path, std::ios::binary) << text;
        return path;
    }

    // Takes a malloc'd string from the module and frees it.
    static std::string take(char* text) {
        std::string copy = text ? text : "(null)";
        free(text);
        return copy;
    }

    Module m_;
    std::string dir_;
    const char* dirs_[2] = {nullptr, nullptr};
    sessreap_options opts_{};
};

} // namespace

// config_show returns every key, merged, and the origin of each.
TEST_F(AbiConfig, ShowsEffectiveConfigWithOrigins) {
    std::string file = write("50-x.json", R"({"teardown": {"grace_ms": 250}})");
    opts_.config_json = R"({"sweep": {"max_passes": 3}})";
    char* out = nullptr;

    ASSERT_EQ(m_.config_show(&opts_, &out), 0) << m_.last_error();
    auto doc = nlohmann::json::parse(take(out));

    EXPECT_EQ(doc["config"]["teardown"]["grace_ms"], 250);
    EXPECT_EQ(doc["config"]["sweep"]["max_passes"], 3);
    EXPECT_EQ(doc["config"]["teardown"]["term_signal"], "SIGTERM");
    EXPECT_EQ(doc["origins"]["teardown.grace_ms"], file);
    EXPECT_EQ(doc["origins"]["sweep.max_passes"], "<inline>");
    EXPECT_EQ(doc["origins"]["teardown.cap_ms"], "<default>");
    EXPECT_EQ(doc["origins"].size(), 20u);
}

// config_show fails like sessreap_open on an invalid drop-in, naming the place.
TEST_F(AbiConfig, ShowFailsOnInvalidDropIn) {
    std::string file = write("50-x.json", R"({"teardown": {"grace_ms": "1s"}})");
    char* out = nullptr;

    EXPECT_EQ(m_.config_show(&opts_, &out), -EINVAL);

    EXPECT_EQ(out, nullptr);
    EXPECT_EQ(std::string(m_.last_error()),
              file + ":1:27: teardown.grace_ms: expected a non-negative integer, got \"1s\"");
}

// config_check on given files counts every error and writes one line for each, even for a
// file whose name holds a newline.
TEST_F(AbiConfig, CheckReportsEveryErrorOneLineEach) {
    std::string a = write("a.json", "{\"teardown\": {\"grace_ms\": [1,\n 2], \"cap\": 1}}");
    std::string b = write("b\nc.json", R"({"log": {"level": "loud"}})");
    std::string good = write("good.json", "{}");
    const char* files[] = {a.c_str(), good.c_str(), b.c_str(), nullptr};
    char* out = nullptr;

    ASSERT_EQ(m_.config_check(&opts_, files, &out), 3) << m_.last_error();

    EXPECT_EQ(take(out),
              a + ":1:27: teardown.grace_ms: expected a non-negative integer, got an array\n" + a +
                  ":2:6: teardown.cap: unknown key \"cap\" (did you mean \"cap_ms\"?)\n" + dir_ +
                  "/b c.json:1:19: log.level: expected one of \"err\", \"warning\", "
                  "\"notice\", \"info\", \"debug\", got \"loud\"\n");
    EXPECT_STREQ(m_.last_error(), "");
}

// config_check with no files checks the effective set and the inline document;
// a clean set gives 0 and "".
TEST_F(AbiConfig, CheckWithoutFilesChecksEffectiveSet) {
    std::string bad = write("10-bad.json", R"({"sweep": {"enabled": "yes"}})");
    write("20-good.json", R"({"sweep": {"enabled": true}})");
    opts_.config_json = R"({"sweep": {"max_passes": 0}})";
    char* out = nullptr;

    ASSERT_EQ(m_.config_check(&opts_, nullptr, &out), 2) << m_.last_error();
    std::string errors = take(out);
    EXPECT_EQ(errors, bad + ":1:23: sweep.enabled: expected true or false, got \"yes\"\n"
                            "<inline>:1:26: sweep.max_passes: expected an integer from 1 to "
                            "1000, got 0\n");

    fs::remove(bad);
    opts_.config_json = nullptr;
    ASSERT_EQ(m_.config_check(&opts_, nullptr, &out), 0) << m_.last_error();
    EXPECT_EQ(take(out), "");
}
