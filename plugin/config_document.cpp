// SPDX-License-Identifier: LGPL-2.1-or-later
// Parses one drop-in document with nlohmann_json and turns its failures into positioned errors.
#include "config_document.h"

#include <errno.h>
#include <string.h>

#include <vector>

namespace sessreap {

namespace {

using json = nlohmann::json;

constexpr int number_overflow = 406; // nlohmann_json's out_of_range id

// Builds the DOM like nlohmann_json's own parser, but keeps the position of a parse error
// instead of throwing an exception that has none (number overflow carries no position).
class DomBuilder {
public:
    explicit DomBuilder(json& root) : root_(root) {}

    bool null() { return put(nullptr); }
    bool boolean(bool v) { return put(v); }
    bool number_integer(json::number_integer_t v) { return put(v); }
    bool number_unsigned(json::number_unsigned_t v) { return put(v); }
    bool number_float(json::number_float_t v, const json::string_t&) { return put(v); }
    bool string(json::string_t& v) { return put(std::move(v)); }
    bool binary(json::binary_t& v) { return put(std::move(v)); }
    bool key(json::string_t& k) {
        key_ = std::move(k);
        return true;
    }

    bool start_object(size_t) { return open(json::object()); }
    bool start_array(size_t) { return open(json::array()); }
    bool end_object() { return close(); }
    bool end_array() { return close(); }

    bool parse_error(size_t position, const std::string&, const json::exception& e) {
        error_position_ = position;
        error_what_ = e.what();
        error_id_ = e.id;
        return false;
    }

    size_t error_position() const { return error_position_; }
    const std::string& error_what() const { return error_what_; }
    int error_id() const { return error_id_; }

private:
    // Stores v where the parser is and returns where it went.
    json* place(json v) {
        if (stack_.empty()) {
            root_ = std::move(v);
            return &root_;
        }
        json& top = *stack_.back();
        if (top.is_array()) {
            top.push_back(std::move(v));
            return &top.back();
        }
        json& slot = top[key_]; // a repeated key overwrites; JsonIndex reports it
        slot = std::move(v);
        return &slot;
    }

    template <typename V> bool put(V&& v) {
        place(json(std::forward<V>(v)));
        return true;
    }

    bool open(json container) {
        stack_.push_back(place(std::move(container)));
        return true;
    }

    bool close() {
        stack_.pop_back();
        return true;
    }

    json& root_;
    std::vector<json*> stack_;
    std::string key_;
    size_t error_position_ = 0;
    std::string error_what_;
    int error_id_ = 0;
};

// nlohmann_json's message without its "[json.exception...]" and "at line L, column C" parts,
// which would repeat what the error's position says.
std::string strip_nlohmann_prefix(std::string what) {
    if (what.rfind("[json.exception.", 0) == 0) {
        size_t end = what.find("] ");
        if (end != std::string::npos) what.erase(0, end + 2);
    }
    if (what.rfind("parse error", 0) == 0) {
        size_t colon = what.find(": ");
        if (colon != std::string::npos) what.erase(0, colon + 2);
    }
    return what;
}

bool is_plain_key(const std::string& key) {
    if (key.empty()) return false;
    for (char c : key)
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) return false;
    return true;
}

// The key path of a JSON pointer into value: "/exclude/0/comm" -> "exclude[0].comm".
std::string key_path_of_pointer(const json& value, const std::string& pointer) {
    std::string path;
    const json* node = &value;
    size_t i = 0;
    while (i < pointer.size() && pointer[i] == '/') {
        size_t next = std::min(pointer.find('/', i + 1), pointer.size());
        std::string token;
        for (size_t k = i + 1; k < next; k++) {
            bool escape = pointer[k] == '~' && k + 1 < next;
            token += escape ? (pointer[++k] == '1' ? '/' : '~') : pointer[k];
        }
        i = next;

        if (node && node->is_array()) {
            size_t n = 0;
            for (char c : token) n = n * 10 + size_t(c - '0'); // JsonIndex wrote the digits
            path = key_path_element(path, n);
            node = n < node->size() ? &(*node)[n] : nullptr;
        } else {
            path = key_path_member(path, token);
            node = node && node->is_object() && node->contains(token) ? &node->at(token) : nullptr;
        }
    }
    return path;
}

} // namespace

std::string json_quoted(std::string_view s) {
    return json(std::string(s)).dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string key_path_member(const std::string& parent, const std::string& key) {
    if (!is_plain_key(key)) return parent + "[" + json_quoted(key) + "]";
    return parent.empty() ? key : parent + "." + key;
}

std::string key_path_element(const std::string& parent, size_t n) {
    return parent + "[" + std::to_string(n) + "]";
}

ConfigDocument::ConfigDocument(std::string origin_in, std::string text_in, json value_in)
    : origin(std::move(origin_in)), text(std::move(text_in)), value(std::move(value_in)),
      lines(text), index(text) {}

std::string ConfigDocument::where(size_t offset) const {
    LineCol at = lines.at(offset);
    return origin + ":" + std::to_string(at.line) + ":" + std::to_string(at.column);
}

Error ConfigDocument::error_at(size_t offset, const std::string& key_path,
                               const std::string& what) const {
    std::string message = where(offset) + ": ";
    if (!key_path.empty()) message += key_path + ": ";
    return make_error(EINVAL, message + what);
}

std::string ConfigDocument::source_of(const std::string& pointer) const {
    constexpr size_t max_shown = 40;
    const JsonSpan* span = index.find(pointer);
    if (!span || span->end > text.size() || span->begin > span->end) return "a value";

    std::string_view source = std::string_view(text).substr(span->begin, span->end - span->begin);
    if (source.size() <= max_shown) return std::string(source);

    size_t cut = max_shown;
    while (cut > 0 && (uint8_t(source[cut]) & 0xc0) == 0x80) cut--; // keep UTF-8 whole
    return std::string(source.substr(0, cut)) + "...";
}

size_t ConfigDocument::value_offset(const std::string& pointer) const {
    const JsonSpan* span = index.find(pointer);
    return span ? span->begin : 0;
}

Result<std::unique_ptr<ConfigDocument>> parse_config_document(std::string origin,
                                                              std::string text) {
    if (text.size() > config_max_bytes)
        return make_error(EINVAL, origin + ": expected at most 1 MiB, got " +
                                      std::to_string(text.size()) + " bytes");

    if (auto problem = check_json_text(text)) {
        ConfigDocument doc(origin, text, nullptr);
        return doc.error_at(problem->offset, "", problem->what);
    }

    json value;
    DomBuilder builder(value);
    bool parsed = json::sax_parse(text, &builder, json::input_format_t::json, true, false);
    if (!parsed) {
        // The position counts the byte that broke the parse (or the end of input) as read.
        size_t position = builder.error_position();
        size_t offset = std::min(position > 0 ? position - 1 : 0, text.size());
        if (builder.error_id() == number_overflow) {
            auto in_number = [](char c) { return strchr("0123456789+-.eE", c) && c; };
            while (offset > 0 && in_number(text[offset - 1])) offset--; // point at its start
        }
        ConfigDocument doc(origin, text, nullptr);
        return doc.error_at(offset, "", strip_nlohmann_prefix(builder.error_what()));
    }

    auto doc =
        std::make_unique<ConfigDocument>(std::move(origin), std::move(text), std::move(value));
    const auto& duplicates = doc->index.duplicates();
    if (!duplicates.empty()) {
        const DuplicateKey& d = duplicates.front();
        LineCol first = doc->lines.at(d.first_offset);
        return doc->error_at(d.offset, key_path_of_pointer(doc->value, d.pointer),
                             "duplicate key, first at line " + std::to_string(first.line) +
                                 ", column " + std::to_string(first.column));
    }
    return doc;
}

} // namespace sessreap
