// SPDX-License-Identifier: LGPL-2.1-or-later
// Where each key and value of a JSON text starts, so config errors can name a line and column.
#pragma once

#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sessreap {

// Nesting deeper than this is rejected before parsing; the drop-in format needs three levels.
inline constexpr int json_max_depth = 64;

struct LineCol {
    size_t line = 1;   // 1-based
    size_t column = 1; // 1-based, in bytes
};

// A byte offset into a text and what was wrong there.
struct TextProblem {
    size_t offset = 0;
    std::string what; // e.g. "expected UTF-8 text, got byte 0xff"
};

// Checks what nlohmann_json does not report with a position, or not at all: invalid UTF-8
// anywhere in the text, NUL bytes (which it takes for the end of input) and nesting deeper
// than json_max_depth. Returns the first problem, if any.
std::optional<TextProblem> check_json_text(std::string_view text);

// Turns byte offsets into lines and columns.
class LineIndex {
public:
    explicit LineIndex(std::string_view text);
    LineCol at(size_t offset) const;

private:
    std::vector<size_t> line_starts_;
};

// The byte span of one value and, for an object member, of its key.
struct JsonSpan {
    std::optional<size_t> key_begin; // the opening quote of the key
    size_t begin = 0;                // the first byte of the value
    size_t end = 0;                  // one past its last byte
};

// A key that appears twice in one object.
struct DuplicateKey {
    std::string pointer; // JSON pointer of the member
    size_t offset = 0;   // the second occurrence of the key
    size_t first_offset = 0;
};

// Maps the JSON pointer (RFC 6901) of every value in a text to its span. Built by one
// tokenizer pass over a text that nlohmann_json has already accepted and check_json_text
// has passed; on anything else it stops early and indexes less, but never reads out of bounds.
class JsonIndex {
public:
    explicit JsonIndex(std::string_view text);

    const JsonSpan* find(const std::string& pointer) const;
    const std::vector<DuplicateKey>& duplicates() const { return duplicates_; }

private:
    size_t value(const std::string& pointer, std::optional<size_t> key_begin, size_t i, int depth);
    size_t object(const std::string& pointer, size_t i, int depth);
    size_t array(const std::string& pointer, size_t i, int depth);
    size_t skip_string(size_t i) const;
    size_t skip_space(size_t i) const;

    std::string_view text_;
    std::map<std::string, JsonSpan> spans_;
    std::vector<DuplicateKey> duplicates_;
};

// Appends one reference token to a JSON pointer, escaping "~" and "/".
std::string json_pointer_append(const std::string& pointer, std::string_view token);

} // namespace sessreap
