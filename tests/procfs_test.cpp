// SPDX-License-Identifier: LGPL-2.1-or-later
// Unit tests of /proc reading: the stat parser against hostile command names.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "procfs.h"
#include "signals.h"

using namespace sessreap;

namespace {

// A stat line as the kernel writes it, with the given command name.
std::string stat_line(const std::string& comm, pid_t pid = 4321, pid_t session = 777) {
    return std::to_string(pid) + " (" + comm + ") S 1 " + std::to_string(session) + " " +
           std::to_string(session) +
           " 0 -1 4194560 120 0 0 0 3 1 0 0 20 0 1 0 987654 8192 100 18446744073709551615 "
           "1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n";
}

StatFields parse_ok(const std::string& text) {
    StatFields f;
    EXPECT_TRUE(parse_stat(text, &f)) << text;
    return f;
}

} // namespace

// A plain name parses into every field teardown uses.
TEST(StatParser, ReadsFieldsOfPlainName) {
    StatFields f = parse_ok(stat_line("sleep"));
    EXPECT_EQ(f.pid, 4321);
    EXPECT_STREQ(f.comm.data(), "sleep");
    EXPECT_EQ(f.state, 'S');
    EXPECT_EQ(f.ppid, 1);
    EXPECT_EQ(f.pgrp, 777);
    EXPECT_EQ(f.session, 777);
    EXPECT_EQ(f.starttime, 987654u);
}

// A space in the name does not shift the fields (sscanf("%s") would).
TEST(StatParser, KeepsSpacesInName) {
    StatFields f = parse_ok(stat_line("a b"));
    EXPECT_STREQ(f.comm.data(), "a b");
    EXPECT_EQ(f.session, 777);
}

// A name that imitates the fields after it cannot spoof parent, group or session.
TEST(StatParser, IgnoresFieldsForgedInsideName) {
    StatFields f = parse_ok(stat_line("x) R 1 4242 4242"));
    EXPECT_STREQ(f.comm.data(), "x) R 1 4242 424");
    EXPECT_EQ(f.state, 'S');
    EXPECT_EQ(f.ppid, 1);
    EXPECT_EQ(f.pgrp, 777);
    EXPECT_EQ(f.session, 777);
}

// A name that is a lone ')' or '(' or full of them still parses.
TEST(StatParser, ParsesParenthesisNames) {
    EXPECT_STREQ(parse_ok(stat_line(")")).comm.data(), ")");
    EXPECT_STREQ(parse_ok(stat_line("(")).comm.data(), "(");
    EXPECT_STREQ(parse_ok(stat_line(")) ((")).comm.data(), ")) ((");
    EXPECT_EQ(parse_ok(stat_line(") S 9 9 9 (")).session, 777);
}

// Newlines in the name are part of the name, not line ends.
TEST(StatParser, KeepsNewlinesInName) {
    StatFields f = parse_ok(stat_line("evil\n1 (x) R 1 2 2"));
    EXPECT_EQ(f.pid, 4321);
    EXPECT_EQ(f.session, 777);
    EXPECT_EQ(std::string(f.comm.data()).substr(0, 5), "evil\n");
}

// The kernel's longest name (15 bytes) is kept whole; longer input is clipped.
TEST(StatParser, KeepsFifteenByteNames) {
    EXPECT_STREQ(parse_ok(stat_line("abcdefghijklmno")).comm.data(), "abcdefghijklmno");
    EXPECT_STREQ(parse_ok(stat_line("abcdefghijklmnopqrst")).comm.data(), "abcdefghijklmno");
    EXPECT_STREQ(parse_ok(stat_line("")).comm.data(), "");
}

// Every truncation of a valid line before the start time field is rejected.
TEST(StatParser, RejectsTruncatedLines) {
    std::string line = stat_line("sleep");
    size_t starttime_end = line.find("987654") + 6;
    for (size_t len = 0; len <= starttime_end; ++len) {
        StatFields f;
        EXPECT_FALSE(parse_stat(std::string_view(line).substr(0, len), &f)) << len;
    }
}

// Lines with missing parentheses, bad numbers or a bad pid are rejected.
TEST(StatParser, RejectsMalformedLines) {
    // Fields 7 to 21, then the start time, then one more field.
    const std::string rest = " 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 5 0";
    StatFields f;
    EXPECT_FALSE(parse_stat("", &f));
    EXPECT_FALSE(parse_stat("123 sleep S 1 2 3", &f));
    EXPECT_FALSE(parse_stat("123 (sleep S 1 2 3", &f));
    EXPECT_FALSE(parse_stat("abc (sleep) S 1 2 3", &f));
    EXPECT_FALSE(parse_stat("0 (sleep) S 1 2 3" + rest, &f));
    EXPECT_FALSE(parse_stat("(sleep) S 1 2 3" + rest, &f));
    EXPECT_FALSE(parse_stat("12 (sleep) S x 2 3" + rest, &f));
    EXPECT_FALSE(parse_stat("12 (sleep)S 1 2 3" + rest, &f));
    EXPECT_FALSE(parse_stat("12 (sleep) S 1 2 3 0 0", &f));
    EXPECT_TRUE(parse_stat("12 (sleep) S 1 2 3" + rest, &f));
    EXPECT_EQ(f.starttime, 5u);
}

// Our own /proc/self/stat reads back our pid, session and group.
TEST(StatReader, ReadsOwnStat) {
    auto proc = open_proc();
    ASSERT_TRUE(proc.ok()) << proc.error().message;
    StatFields f;
    ASSERT_EQ(read_stat(proc->get(), getpid(), &f), 0);
    EXPECT_EQ(f.pid, getpid());
    EXPECT_EQ(f.session, getsid(0));
    EXPECT_EQ(f.pgrp, getpgrp());
    EXPECT_EQ(f.state, 'R');
}

// A pid with no process reads as ESRCH, not as an error to report.
TEST(StatReader, ReportsMissingProcessAsGone) {
    auto proc = open_proc();
    ASSERT_TRUE(proc.ok());
    StatFields f;
    EXPECT_EQ(read_stat(proc->get(), 99'999'999, &f), -ESRCH);
}

// The walker lists our own pid and pid 1, and only numeric entries.
TEST(ProcWalker, ListsNumericEntries) {
    auto proc = open_proc();
    ASSERT_TRUE(proc.ok());
    ProcWalker walker(proc->get());
    std::vector<pid_t> pids;
    ASSERT_EQ(walker.for_each_pid([&](pid_t pid) { pids.push_back(pid); }), 0);
    EXPECT_NE(std::find(pids.begin(), pids.end(), getpid()), pids.end());
    EXPECT_NE(std::find(pids.begin(), pids.end(), 1), pids.end());
    EXPECT_TRUE(std::all_of(pids.begin(), pids.end(), [](pid_t p) { return p > 0; }));
}

// Entry names that are not plain decimal pids are not pids.
TEST(ProcWalker, ParsesOnlyDecimalNames) {
    EXPECT_EQ(pid_from_name("1234"), 1234);
    EXPECT_EQ(pid_from_name("self"), 0);
    EXPECT_EQ(pid_from_name("12a"), 0);
    EXPECT_EQ(pid_from_name(""), 0);
    EXPECT_EQ(pid_from_name("99999999999999"), 0);
}

// A /proc that is not ours (its "self" is not our pid) is refused.
TEST(ProcOpen, RefusesMissingProc) {
    auto proc = open_proc("/nonexistent-proc");
    ASSERT_FALSE(proc.ok());
    EXPECT_EQ(proc.error().code, ENOENT);
    EXPECT_NE(proc.error().message.find("/nonexistent-proc"), std::string::npos);
}

// Signal names parse with or without the SIG prefix; numbers are no names.
TEST(SignalNames, ParsesNamesNotNumbers) {
    EXPECT_EQ(signal_from_name("SIGTERM"), SIGTERM);
    EXPECT_EQ(signal_from_name("KILL"), SIGKILL);
    EXPECT_EQ(signal_from_name("SIGRTMIN+2"), SIGRTMIN + 2);
    EXPECT_EQ(signal_from_name("9"), std::nullopt);
    EXPECT_EQ(signal_from_name("SIGNOPE"), std::nullopt);
    EXPECT_EQ(signal_from_name(""), std::nullopt);
    EXPECT_EQ(signal_name(SIGTERM), "SIGTERM");
    EXPECT_EQ(signal_name(0), "SIG0");
}
