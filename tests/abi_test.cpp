// SPDX-License-Identifier: LGPL-2.1-or-later
// The C ABI: exported symbols, dlopen with RTLD_NOW, and bad input at each call.
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <unistd.h>

#include <set>
#include <string>

#include <gtest/gtest.h>

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
        "sessreap_abi_version", "sessreap_version", "sessreap_last_error", "sessreap_open",
        "sessreap_close",       "sessreap_launch",  "sessreap_forget",     "sessreap_teardown",
        "sessreap_reap_stale"};
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
