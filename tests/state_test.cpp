// SPDX-License-Identifier: LGPL-2.1-or-later
// Persisted launch journals: what a reaper may act on, and what it must not.
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <set>

#include <gtest/gtest.h>

#include "procfs.h"
#include "state.h"

using namespace sessreap;
namespace fs = std::filesystem;

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
    void TearDown() override { fs::remove_all(dir_); }

    static LaunchRecord record(pid_t pid) {
        LaunchRecord rec;
        rec.pid = rec.session = rec.pgrp = pid;
        rec.starttime = 12345;
        return rec;
    }

    // A store as a host with the given identity would keep it.
    std::unique_ptr<StateStore> store_as(HostIdentity host, uint64_t id = 1) {
        auto store = std::make_unique<StateStore>(dir_, std::move(host), id);
        EXPECT_TRUE(store->prepare().ok());
        return store;
    }

    // A host that writes its journal and dies: a forked child that runs
    // body and _exits, so nothing of it cleans up.
    void host_dies_after(HostIdentity host, const std::function<void(StateStore&)>& body) {
        pid_t pid = fork();
        if (pid == 0) {
            StateStore store(dir_, std::move(host), 1);
            if (!store.prepare()) _exit(1);
            body(store);
            _exit(0);
        }
        int status = 0;
        ASSERT_EQ(waitpid(pid, &status, 0), pid);
        ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }

    HostIdentity dead_host() {
        HostIdentity dead = self_;
        dead.starttime += 1; // our pid, another start time: that host is gone
        return dead;
    }

    size_t files() {
        size_t n = 0;
        for (auto& e : fs::directory_iterator(dir_)) n += e.is_regular_file();
        return n;
    }

    std::vector<StaleJournal> claim(bool same_exe = false) {
        StateStore reaper(dir_, self_, 99);
        skipped_.clear();
        return reaper.claim_stale(proc_.get(), same_exe, &skipped_);
    }

    std::string dir_;
    UniqueFd proc_;
    HostIdentity self_;
    std::vector<std::string> skipped_;
};

} // namespace

// A dead host's launched-and-not-done records are claimed, and only those.
TEST_F(StateStoreTest, ClaimsLiveRecordsOfDeadHost) {
    host_dies_after(dead_host(), [](StateStore& s) {
        if (!s.save(record(4242))) _exit(2);
        if (!s.save(record(4343))) _exit(2);
        if (!s.remove(4242)) _exit(2);
    });

    auto stale = claim();
    ASSERT_EQ(stale.size(), 1u);
    ASSERT_EQ(stale[0].records.size(), 1u);
    EXPECT_EQ(stale[0].records[0].pid, 4343);
    EXPECT_EQ(stale[0].records[0].starttime, 12345u);
    StateStore::release(stale[0]);
    EXPECT_EQ(files(), 0u);
}

// A record whose strings hold quotes, control characters and bytes that are
// not UTF-8 is still read back: the bad bytes as U+FFFD, the rest as saved.
TEST_F(StateStoreTest, ReadsBackRecordsWithAnyBytesInTheirNames) {
    LaunchRecord rec = record(4242);
    rec.sweep = false;
    rec.starttime = UINT64_MAX;
    rec.name = "q\"b\\s\n\x01\x7f \xc3\xa9 \xff\xc0\xaf \xed\xa0\x80 \xf0\x9f\x98\x80";
    rec.unit = "sessreap-a\\x2db-4242-0badf00d.scope";
    rec.cgroup.path = "/sys/fs/cgroup/a b";
    host_dies_after(dead_host(), [&](StateStore& s) {
        if (!s.save(rec)) _exit(2);
    });

    auto stale = claim();
    ASSERT_EQ(stale.size(), 1u);
    ASSERT_EQ(stale[0].records.size(), 1u);
    const LaunchRecord& back = stale[0].records[0];
    const std::string bad = "\xef\xbf\xbd";
    EXPECT_EQ(back.name, "q\"b\\s\n\x01\x7f \xc3\xa9 " + bad + bad + bad + " " + bad + bad + bad +
                             " \xf0\x9f\x98\x80");
    EXPECT_EQ(back.unit, rec.unit);
    EXPECT_EQ(back.cgroup.path, rec.cgroup.path);
    EXPECT_EQ(back.starttime, UINT64_MAX);
    EXPECT_FALSE(back.sweep);
    EXPECT_TRUE(back.group);
    EXPECT_EQ(stale[0].host.exe, dead_host().exe);
    StateStore::release(stale[0]);
}

// A journal that grew past its compaction size is rewritten with the live
// records only, and a reaper still finds every one of them.
TEST_F(StateStoreTest, CompactionKeepsEveryLiveRecord) {
    std::set<pid_t> live;
    host_dies_after(dead_host(), [&](StateStore& s) {
        // About 115 bytes a round, 2.3 MB in all: twice the 1 MiB at which
        // the journal is compacted.
        for (pid_t pid = 2; pid < 20'000; ++pid) {
            if (!s.save(record(pid))) _exit(2);
            if (pid % 1000 != 2 && !s.remove(pid)) _exit(2);
        }
    });
    for (pid_t pid = 2; pid < 20'000; pid += 1000) live.insert(pid);

    size_t bytes = 0;
    for (auto& e : fs::directory_iterator(dir_)) bytes += e.file_size();
    EXPECT_LT(bytes, (1u << 20) + 1024) << "the journal was never compacted";
    auto stale = claim();
    ASSERT_EQ(stale.size(), 1u);
    std::set<pid_t> found;
    for (const LaunchRecord& r : stale[0].records) {
        found.insert(r.pid);
        EXPECT_EQ(r.starttime, 12345u);
    }
    EXPECT_EQ(found, live);
    StateStore::release(stale[0]);
}

// A journal is claimed once: a second reaper finds nothing.
TEST_F(StateStoreTest, ClaimsJournalExactlyOnce) {
    host_dies_after(dead_host(), [](StateStore& s) {
        if (!s.save(record(4242))) _exit(2);
    });
    EXPECT_EQ(claim().size(), 1u);
    EXPECT_TRUE(claim().empty());
}

// The journal of a live host (ourselves) is never claimed.
TEST_F(StateStoreTest, NeverClaimsJournalOfLiveHost) {
    auto store = store_as(self_);
    ASSERT_TRUE(store->save(record(4242)).ok());
    EXPECT_TRUE(claim().empty());
    EXPECT_EQ(files(), 1u);
}

// When the handle tracks nothing the journal shrinks back to its header, and
// closing the handle removes it.
TEST_F(StateStoreTest, EmptiesJournalWhenNothingIsTracked) {
    auto store = store_as(self_);
    for (pid_t pid = 100; pid < 200; ++pid) ASSERT_TRUE(store->save(record(pid)).ok());
    for (pid_t pid = 100; pid < 200; ++pid) ASSERT_TRUE(store->remove(pid).ok());
    auto it = fs::directory_iterator(dir_);
    ASSERT_NE(it, fs::directory_iterator());
    EXPECT_LT(fs::file_size(it->path()), 300u) << "only the header is left";
    store.reset();
    EXPECT_EQ(files(), 0u);
}

// A torn last line (the host died mid-write) is skipped; the rest replays.
TEST_F(StateStoreTest, SkipsTornLastLine) {
    host_dies_after(dead_host(), [](StateStore& s) {
        if (!s.save(record(4242))) _exit(2);
    });
    for (auto& e : fs::directory_iterator(dir_))
        std::ofstream(e.path(), std::ios::app) << R"({"launch": {"pid": 77, "sess)";
    auto stale = claim();
    ASSERT_EQ(stale.size(), 1u);
    ASSERT_EQ(stale[0].records.size(), 1u);
    EXPECT_EQ(stale[0].records[0].pid, 4242);
}

// A journal from another boot is deleted, never acted on.
TEST_F(StateStoreTest, DeletesJournalsOfAnotherBoot) {
    HostIdentity old = dead_host();
    old.boot_id = "00000000-0000-0000-0000-000000000000";
    host_dies_after(old, [](StateStore& s) {
        if (!s.save(record(4242))) _exit(2);
    });
    EXPECT_TRUE(claim().empty());
    ASSERT_EQ(skipped_.size(), 1u);
    EXPECT_NE(skipped_[0].find("before the last boot"), std::string::npos);
    EXPECT_EQ(files(), 0u);
}

// A journal written in another PID namespace is left alone: its pids would
// name other processes here.
TEST_F(StateStoreTest, SkipsJournalsOfAnotherPidNamespace) {
    HostIdentity other = dead_host();
    other.pid_namespace = "0:4026531836";
    host_dies_after(other, [](StateStore& s) {
        if (!s.save(record(4242))) _exit(2);
    });
    EXPECT_TRUE(claim().empty());
    ASSERT_EQ(skipped_.size(), 1u);
    EXPECT_NE(skipped_[0].find("another PID namespace"), std::string::npos);
    EXPECT_EQ(files(), 1u);
}

// Files that are no journal, and records with impossible ids, are skipped.
TEST_F(StateStoreTest, SkipsMalformedJournalsAndRecords) {
    std::ofstream(dir_ + "/junk.journal") << "{not json\n";
    host_dies_after(dead_host(), [](StateStore& s) {
        if (!s.save(record(1))) _exit(2); // pid 1 is never a launched child
    });
    auto stale = claim();
    EXPECT_EQ(skipped_.size(), 1u);
    ASSERT_EQ(stale.size(), 1u);
    EXPECT_TRUE(stale[0].records.empty());
}

// With same_exe, only journals of hosts that ran our executable are claimed.
TEST_F(StateStoreTest, ClaimsOnlySameExecutableWhenAsked) {
    HostIdentity other = dead_host();
    other.exe = "/usr/bin/some-other-supervisor";
    host_dies_after(other, [](StateStore& s) {
        if (!s.save(record(4242))) _exit(2);
    });
    EXPECT_TRUE(claim(/*same_exe=*/true).empty());
    EXPECT_EQ(claim(/*same_exe=*/false).size(), 1u);
}

// A journal claimed by a reaper that died before finishing is taken over by
// the next reaper; one claimed by a live reaper is left to it.
TEST_F(StateStoreTest, TakesOverClaimOfDeadReaper) {
    host_dies_after(dead_host(), [](StateStore& s) {
        if (!s.save(record(4242))) _exit(2);
    });
    pid_t reaper = fork();
    if (reaper == 0) _exit(0);
    waitpid(reaper, nullptr, 0); // a reaper that is gone
    std::string claimed;
    for (auto& e : fs::directory_iterator(dir_)) {
        claimed = e.path().string() + ".reaping." + std::to_string(reaper);
        fs::rename(e.path(), claimed);
    }
    auto stale = claim();
    ASSERT_EQ(stale.size(), 1u);
    EXPECT_EQ(stale[0].records.size(), 1u);

    StateStore::unclaim(stale[0]); // put back: a later reaper finds it again
    std::string live_claim = claimed.substr(0, claimed.rfind('.')) + "." + std::to_string(getpid());
    for (auto& e : fs::directory_iterator(dir_)) fs::rename(e.path(), live_claim);
    EXPECT_TRUE(claim().empty()) << "a live reaper's claim must be left alone";
}
