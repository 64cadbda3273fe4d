// SPDX-License-Identifier: LGPL-2.1-or-later
// Persisted launch records: what a reaper may act on, and what it must not.
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "procfs.h"
#include "process.h"
#include "state.h"

using namespace sessreap;
using namespace testing_support;

namespace {

class StateStoreTest : public ::testing::Test {
protected:
    void SetUp() override {
        char tmpl[] = "/tmp/sessreap-state-XXXXXX";
        ASSERT_NE(mkdtemp(tmpl), nullptr);
        dir_ = tmpl;
        auto proc = open_proc();
        ASSERT_TRUE(proc.ok());
        proc_ = std::move(proc.value());
        auto self = HostIdentity::current(proc_.get());
        ASSERT_TRUE(self.ok());
        self_ = self.value();
    }
    void TearDown() override { std::system(("rm -rf '" + dir_ + "'").c_str()); }

    // Writes a record as a host with the given identity would.
    std::string write_as(HostIdentity host, pid_t child) {
        StateStore store(dir_, std::move(host));
        EXPECT_TRUE(store.prepare().ok());
        LaunchRecord rec;
        rec.pid = rec.session = rec.pgrp = child;
        rec.starttime = 12345;
        EXPECT_TRUE(store.save(rec).ok());
        return dir_;
    }

    size_t files() {
        size_t n = 0;
        for (auto& line : list()) n += !line.empty();
        return n;
    }
    std::vector<std::string> list() {
        CommandResult res = run_command({"ls", dir_});
        std::vector<std::string> out;
        std::string cur;
        for (char c : res.out) {
            if (c == '\n') {
                out.push_back(cur);
                cur.clear();
            } else {
                cur += c;
            }
        }
        return out;
    }

    std::string dir_;
    UniqueFd proc_;
    HostIdentity self_;
};

} // namespace

// A record is written atomically on launch and gone after remove.
TEST_F(StateStoreTest, SavesAndRemovesRecords) {
    StateStore store(dir_, self_);
    ASSERT_TRUE(store.prepare().ok());
    LaunchRecord rec;
    rec.pid = rec.session = rec.pgrp = 4242;
    rec.starttime = 99;
    ASSERT_TRUE(store.save(rec).ok());
    ASSERT_EQ(files(), 1u);
    EXPECT_EQ(list()[0].find(".tmp"), std::string::npos);
    store.remove(4242);
    EXPECT_EQ(files(), 0u);
}

// The records of a live host (ourselves) are never claimed.
TEST_F(StateStoreTest, NeverClaimsRecordsOfLiveHost) {
    write_as(self_, 4242);
    StateStore reaper(dir_, self_);
    std::vector<std::string> skipped;
    EXPECT_TRUE(reaper.claim_stale(proc_.get(), false, &skipped).empty());
    EXPECT_EQ(files(), 1u);
}

// A dead host's record is claimed once: a second reaper finds nothing.
TEST_F(StateStoreTest, ClaimsDeadHostRecordExactlyOnce) {
    HostIdentity dead = self_;
    dead.starttime += 1; // our pid, another start time: that host is gone
    write_as(dead, 4242);
    StateStore reaper(dir_, self_);
    std::vector<std::string> skipped;
    auto first = reaper.claim_stale(proc_.get(), false, &skipped);
    auto second = reaper.claim_stale(proc_.get(), false, &skipped);
    ASSERT_EQ(first.size(), 1u);
    EXPECT_EQ(first[0].launch.pid, 4242);
    EXPECT_EQ(first[0].launch.starttime, 12345u);
    EXPECT_TRUE(second.empty());
    StateStore::release(first[0]);
    EXPECT_EQ(files(), 0u);
}

// A record from another boot is deleted, never acted on.
TEST_F(StateStoreTest, DeletesRecordsOfAnotherBoot) {
    HostIdentity old = self_;
    old.starttime += 1;
    old.boot_id = "00000000-0000-0000-0000-000000000000";
    write_as(old, 4242);
    StateStore reaper(dir_, self_);
    std::vector<std::string> skipped;
    EXPECT_TRUE(reaper.claim_stale(proc_.get(), false, &skipped).empty());
    ASSERT_EQ(skipped.size(), 1u);
    EXPECT_NE(skipped[0].find("before the last boot"), std::string::npos);
    EXPECT_EQ(files(), 0u);
}

// A record written in another PID namespace is left alone: its pids would
// name other processes here.
TEST_F(StateStoreTest, SkipsRecordsOfAnotherPidNamespace) {
    HostIdentity other = self_;
    other.starttime += 1;
    other.pid_namespace = "0:4026531836";
    write_as(other, 4242);
    StateStore reaper(dir_, self_);
    std::vector<std::string> skipped;
    EXPECT_TRUE(reaper.claim_stale(proc_.get(), false, &skipped).empty());
    ASSERT_EQ(skipped.size(), 1u);
    EXPECT_NE(skipped[0].find("another PID namespace"), std::string::npos);
    EXPECT_EQ(files(), 1u);
}

// Malformed files and records with impossible ids are skipped with a reason.
TEST_F(StateStoreTest, SkipsMalformedRecords) {
    std::ofstream(dir_ + "/junk.json") << "{not json";
    HostIdentity dead = self_;
    dead.starttime += 1;
    write_as(dead, 1); // pid 1 can never be a launched child
    StateStore reaper(dir_, self_);
    std::vector<std::string> skipped;
    EXPECT_TRUE(reaper.claim_stale(proc_.get(), false, &skipped).empty());
    EXPECT_EQ(skipped.size(), 2u);
}

// With same_exe, only records of hosts that ran our executable are claimed.
TEST_F(StateStoreTest, ClaimsOnlySameExecutableWhenAsked) {
    HostIdentity other = self_;
    other.starttime += 1;
    other.exe = "/usr/bin/some-other-supervisor";
    write_as(other, 4242);
    StateStore reaper(dir_, self_);
    std::vector<std::string> skipped;
    EXPECT_TRUE(reaper.claim_stale(proc_.get(), true, &skipped).empty());
    EXPECT_EQ(reaper.claim_stale(proc_.get(), false, &skipped).size(), 1u);
}
