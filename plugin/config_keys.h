// SPDX-License-Identifier: LGPL-2.1-or-later
// The drop-in keys as one table: how each is checked, stored in Config and rendered back.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "config.h"
#include "config_document.h"
#include "signals.h"

namespace sessreap {

// Appends every key error in doc to errors, ordered by position in the text.
void validate_config_document(const ConfigDocument& doc, std::vector<Error>& errors);

// Builds a Config from a merged document that holds every key and passed validation.
// rule_origins[i] becomes exclude[i].origin.
Config config_from_json(const nlohmann::json& merged, const std::vector<std::string>& rule_origins);

// The closest of candidates to key, if close enough to be a likely typo.
std::optional<std::string> nearest_key(const std::string& key,
                                       const std::vector<std::string>& candidates);

} // namespace sessreap
