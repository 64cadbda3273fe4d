// SPDX-License-Identifier: LGPL-2.1-or-later
// A tokenizer pass that records where each JSON value starts, and checks of raw JSON text.
#include "config_json_index.h"

#include <algorithm>
#include <cstdio>

#include <nlohmann/json.hpp>

namespace sessreap {

namespace {

// Length of the well-formed UTF-8 sequence at text[i] (RFC 3629, table 3-7 of Unicode), or 0.
size_t utf8_sequence_length(std::string_view text, size_t i) {
    auto byte = [&](size_t k) -> unsigned {
        return i + k < text.size() ? uint8_t(text[i + k]) : 0;
    };
    auto in = [](unsigned b, unsigned lo, unsigned hi) { return b >= lo && b <= hi; };
    unsigned b0 = byte(0);

    if (b0 < 0x80) return 1;
    if (in(b0, 0xc2, 0xdf)) return in(byte(1), 0x80, 0xbf) ? 2 : 0;

    unsigned lo = 0x80, hi = 0xbf;
    if (b0 == 0xe0) lo = 0xa0;
    if (b0 == 0xed) hi = 0x9f; // UTF-16 surrogates are not characters
    if (in(b0, 0xe0, 0xef)) return in(byte(1), lo, hi) && in(byte(2), 0x80, 0xbf) ? 3 : 0;

    if (b0 == 0xf0) lo = 0x90;
    if (b0 == 0xf4) hi = 0x8f; // nothing above U+10FFFF
    if (in(b0, 0xf0, 0xf4))
        return in(byte(1), lo, hi) && in(byte(2), 0x80, 0xbf) && in(byte(3), 0x80, 0xbf) ? 4 : 0;
    return 0;
}

bool is_json_space(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

} // namespace

std::optional<TextProblem> check_json_text(std::string_view text) {
    int depth = 0;
    bool in_string = false;

    for (size_t i = 0; i < text.size();) {
        size_t len = utf8_sequence_length(text, i);
        if (len == 0) {
            char what[64];
            snprintf(what, sizeof what, "expected UTF-8 text, got byte 0x%02x", uint8_t(text[i]));
            return TextProblem{i, what};
        }

        char c = text[i];
        if (c == '\0') // nlohmann_json takes a NUL byte for the end of input and ignores the rest
            return TextProblem{i, "expected text without NUL bytes, got byte 0x00"};
        if (in_string && c == '\\') {
            len = i + 1 < text.size() && uint8_t(text[i + 1]) < 0x80 ? 2 : 1;
        } else if (c == '"') {
            in_string = !in_string;
        } else if (!in_string && (c == '{' || c == '[')) {
            if (++depth > json_max_depth)
                return TextProblem{i, "expected at most " + std::to_string(json_max_depth) +
                                          " levels of nesting, got more"};
        } else if (!in_string && (c == '}' || c == ']')) {
            depth--;
        }
        i += len;
    }
    return std::nullopt;
}

LineIndex::LineIndex(std::string_view text) {
    line_starts_.push_back(0);
    for (size_t i = 0; i < text.size(); i++)
        if (text[i] == '\n') line_starts_.push_back(i + 1);
}

LineCol LineIndex::at(size_t offset) const {
    auto next = std::upper_bound(line_starts_.begin(), line_starts_.end(), offset);
    size_t line = size_t(next - line_starts_.begin()); // >= 1: line_starts_[0] is 0
    return LineCol{line, offset - line_starts_[line - 1] + 1};
}

std::string json_pointer_append(const std::string& pointer, std::string_view token) {
    std::string out = pointer + "/";
    for (char c : token) {
        if (c == '~')
            out += "~0";
        else if (c == '/')
            out += "~1";
        else
            out += c;
    }
    return out;
}

JsonIndex::JsonIndex(std::string_view text) : text_(text) {
    size_t i = 0;
    if (text_.substr(0, 3) == "\xef\xbb\xbf") i = 3; // nlohmann_json skips a byte order mark too
    value("", std::nullopt, skip_space(i), 0);
}

const JsonSpan* JsonIndex::find(const std::string& pointer) const {
    auto it = spans_.find(pointer);
    return it == spans_.end() ? nullptr : &it->second;
}

size_t JsonIndex::skip_space(size_t i) const {
    while (i < text_.size() && is_json_space(text_[i])) i++;
    return i;
}

// Returns the offset just past the closing quote of the string that opens at i.
size_t JsonIndex::skip_string(size_t i) const {
    for (i++; i < text_.size(); i++) {
        if (text_[i] == '\\')
            i++;
        else if (text_[i] == '"')
            return i + 1;
    }
    return text_.size();
}

// Indexes the value at i and returns the offset just past it.
size_t JsonIndex::value(const std::string& pointer, std::optional<size_t> key_begin, size_t i,
                        int depth) {
    if (i >= text_.size() || depth > json_max_depth) return text_.size();

    size_t end;
    char c = text_[i];
    if (c == '{') {
        end = object(pointer, i, depth + 1);
    } else if (c == '[') {
        end = array(pointer, i, depth + 1);
    } else if (c == '"') {
        end = skip_string(i);
    } else {
        end = i;
        while (end < text_.size() && !is_json_space(text_[end]) && text_[end] != ',' &&
               text_[end] != ']' && text_[end] != '}')
            end++;
    }

    spans_.try_emplace(pointer, JsonSpan{key_begin, i, end});
    return end;
}

size_t JsonIndex::object(const std::string& pointer, size_t i, int depth) {
    std::map<std::string, size_t> seen; // key -> offset of its first occurrence

    i = skip_space(i + 1);
    while (i < text_.size() && text_[i] == '"') {
        size_t key_begin = i;
        size_t key_end = skip_string(i);
        std::string key;
        try {
            key = nlohmann::json::parse(text_.substr(key_begin, key_end - key_begin))
                      .get<std::string>();
        } catch (const nlohmann::json::exception&) {
            return text_.size(); // not text nlohmann accepted: stop indexing
        }

        std::string member = json_pointer_append(pointer, key);
        auto [first, fresh] = seen.try_emplace(key, key_begin);
        if (!fresh) duplicates_.push_back(DuplicateKey{member, key_begin, first->second});

        i = skip_space(key_end);
        if (i >= text_.size() || text_[i] != ':') return text_.size();
        i = skip_space(value(member, key_begin, skip_space(i + 1), depth));
        if (i < text_.size() && text_[i] == ',') i = skip_space(i + 1);
    }
    return i < text_.size() && text_[i] == '}' ? i + 1 : text_.size();
}

size_t JsonIndex::array(const std::string& pointer, size_t i, int depth) {
    size_t n = 0;

    i = skip_space(i + 1);
    while (i < text_.size() && text_[i] != ']') {
        size_t end =
            value(json_pointer_append(pointer, std::to_string(n++)), std::nullopt, i, depth);
        if (end == i) return text_.size(); // no progress: not a value
        i = skip_space(end);
        if (i < text_.size() && text_[i] == ',') i = skip_space(i + 1);
    }
    return i < text_.size() ? i + 1 : text_.size();
}

} // namespace sessreap
