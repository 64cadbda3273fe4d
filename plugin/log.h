// SPDX-License-Identifier: LGPL-2.1-or-later
// Logging to the host's callback, the journal (with structured fields) or stderr.
#pragma once

#include <sys/types.h>
#include <syslog.h>

#include <string>

#include "config.h"
#include "sessreap/sessreap.h"

namespace sessreap {

// Every kind of event carries its own journal MESSAGE_ID.
enum class Event { message, signal_sent, unit_stopped, layer_skipped };

// Structured fields for the journal; empty ones are not sent.
struct LogFields {
    Event event = Event::message;
    pid_t pid = 0;
    const char* comm = nullptr;
    int signal = 0;
    const char* layer = nullptr;
    const char* unit = nullptr;
};

class Logger {
public:
    Logger() = default;
    Logger(const Config::Log& cfg, sessreap_log_fn fn, void* userdata);

    bool enabled(int priority) const { return priority <= level_; }
    void log(int priority, const std::string& message, const LogFields& fields = {}) const;

    // The sink chosen for this logger: "host", "journald" or "stderr".
    const char* sink_name() const;

private:
    int level_ = LOG_INFO;
    LogSink sink_ = LogSink::stderr_;
    sessreap_log_fn fn_ = nullptr;
    void* userdata_ = nullptr;
};

} // namespace sessreap
