// SPDX-License-Identifier: LGPL-2.1-or-later
// Placeholder loader: built-in defaults plus the host's inline JSON (teardown keys).
#include <nlohmann/json.hpp>

#include "config.h"
#include "signals.h"

namespace sessreap {

Result<Config> load_config(const ConfigSources& sources) {
    Config cfg;
    if (!sources.inline_json) return cfg;

    nlohmann::json doc = nlohmann::json::parse(*sources.inline_json, nullptr, false);
    if (doc.is_discarded() || !doc.is_object())
        return make_error(EINVAL, "<inline>: expected a JSON object");
    auto t = doc.value("teardown", nlohmann::json::object());
    if (t.contains("grace_ms")) cfg.teardown.grace = std::chrono::milliseconds(t["grace_ms"].get<int64_t>());
    if (t.contains("cap_ms")) cfg.teardown.cap = std::chrono::milliseconds(t["cap_ms"].get<int64_t>());
    if (t.contains("dry_run")) cfg.teardown.dry_run = t["dry_run"].get<bool>();
    if (t.contains("term_signal")) cfg.teardown.term_signal = signal_from_name(t["term_signal"].get<std::string>());
    return cfg;
}

} // namespace sessreap
