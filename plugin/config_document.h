// SPDX-License-Identifier: LGPL-2.1-or-later
// One parsed drop-in document with the positions of its values, and errors that point into it.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "config_json_index.h"
#include "util.h"

namespace sessreap {

// Larger drop-ins and inline documents are rejected: nothing valid comes near this size.
inline constexpr size_t config_max_bytes = 1024 * 1024;

// A drop-in file's or the host's document after a successful parse.
struct ConfigDocument {
    std::string origin; // the file's path, or "<inline>"
    std::string text;
    nlohmann::json value;
    LineIndex lines;
    JsonIndex index;

    ConfigDocument(std::string origin_in, std::string text_in, nlohmann::json value_in);
    ConfigDocument(const ConfigDocument&) = delete; // lines and index point into text
    ConfigDocument& operator=(const ConfigDocument&) = delete;

    // "FILE:LINE:COL" of a byte offset.
    std::string where(size_t offset) const;
    // An EINVAL error "FILE:LINE:COL: key.path: what"; key_path may be empty.
    Error error_at(size_t offset, const std::string& key_path, const std::string& what) const;
    // The source text of the value at pointer, for "got ..." (shortened when long).
    std::string source_of(const std::string& pointer) const;
    // Where the value at pointer starts, or 0 when it is not indexed.
    size_t value_offset(const std::string& pointer) const;
};

// Parses text (at most config_max_bytes) as a JSON document. Errors are EINVAL and name the
// position: invalid UTF-8, nesting, syntax, number overflow and duplicate keys.
Result<std::unique_ptr<ConfigDocument>> parse_config_document(std::string origin, std::string text);

// "exclude[2].comm" style paths: members join with ".", elements as "[N]"; a key that is not
// a plain lowercase identifier is quoted, as in teardown["a b"].
std::string key_path_member(const std::string& parent, const std::string& key);
std::string key_path_element(const std::string& parent, size_t n);

// A JSON-quoted form of s, for messages.
std::string json_quoted(std::string_view s);

} // namespace sessreap
