// SPDX-License-Identifier: LGPL-2.1-or-later
// Logging to the host's callback, the journal (with structured fields) or stderr.
#include "log.h"

#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <systemd/sd-journal.h>

#include "signals.h"

namespace sessreap {
namespace {

const char* message_id(Event event) {
    switch (event) {
    case Event::signal_sent:
        return "MESSAGE_ID=2ee61e9b21fa46538704c463cf06710d";
    case Event::unit_stopped:
        return "MESSAGE_ID=8db79d9511174f009524b9db86e3e7d0";
    case Event::layer_skipped:
        return "MESSAGE_ID=3abfc54f9bd14238899ba4060f45626a";
    case Event::message:
        break;
    }
    return nullptr;
}

bool journal_available() {
    struct stat st;
    return stat("/run/systemd/journal/socket", &st) == 0 && S_ISSOCK(st.st_mode);
}

void send_to_journal(int priority, const std::string& message, const LogFields& f) {
    std::string msg = "MESSAGE=" + message;
    std::string prio = "PRIORITY=" + std::to_string(priority);
    std::string fields[5];
    iovec iov[8];
    int n = 0;
    auto add = [&](const std::string& s) { iov[n++] = {const_cast<char*>(s.data()), s.size()}; };

    add(msg);
    add(prio);
    if (const char* id = message_id(f.event)) add(fields[0] = id);
    if (f.pid > 0) add(fields[1] = "SESSREAP_PID=" + std::to_string(f.pid));
    if (f.comm) add(fields[2] = std::string("SESSREAP_COMM=") + f.comm);
    if (f.signal > 0) add(fields[3] = "SESSREAP_SIGNAL=" + signal_name(f.signal));
    if (f.layer) add(fields[4] = std::string("SESSREAP_LAYER=") + f.layer);
    std::string unit;
    if (f.unit) add(unit = std::string("SESSREAP_UNIT=") + f.unit);
    sd_journal_sendv(iov, n);
}

void send_to_stderr(const std::string& message) {
    // One write per line, so lines from several threads do not interleave.
    std::string line = "sessreap: " + message + "\n";
    ssize_t ignored = write(STDERR_FILENO, line.data(), line.size());
    (void)ignored;
}

} // namespace

Logger::Logger(const Config::Log& cfg, sessreap_log_fn fn, void* userdata)
    : level_(cfg.level), sink_(cfg.sink), fn_(fn), userdata_(userdata) {
    if (sink_ == LogSink::automatic)
        sink_ = fn_ ? LogSink::host : journal_available() ? LogSink::journald : LogSink::stderr_;
    if (sink_ == LogSink::host && !fn_) sink_ = LogSink::stderr_;
}

void Logger::log(int priority, const std::string& message, const LogFields& fields) const {
    if (!enabled(priority)) return;

    switch (sink_) {
    case LogSink::host:
        fn_(userdata_, priority, message.c_str());
        break;
    case LogSink::journald:
        send_to_journal(priority, message, fields);
        break;
    default:
        send_to_stderr(message);
        break;
    }
}

const char* Logger::sink_name() const {
    switch (sink_) {
    case LogSink::host:
        return "host";
    case LogSink::journald:
        return "journald";
    default:
        return "stderr";
    }
}

} // namespace sessreap
