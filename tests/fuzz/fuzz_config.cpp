// SPDX-License-Identifier: LGPL-2.1-or-later
// libFuzzer target: any bytes, as a drop-in file and as the inline document, must load or fail
// cleanly, the same way both times, and a loaded config must render and load back unchanged.
#include <stdlib.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <string>

#include "config.h"

namespace {

using sessreap::ConfigSources;

// A private drop-in directory, made once per fuzzing process and removed at exit. Plain
// char arrays, because the exit handler runs after static std::strings are destroyed.
char dir_path[] = "/tmp/sessreap-fuzz-XXXXXX";
char file_path[sizeof dir_path + 16];

void remove_drop_in_dir() {
    unlink(file_path);
    rmdir(dir_path);
}

void make_drop_in_dir() {
    if (file_path[0]) return;
    if (!mkdtemp(dir_path)) __builtin_trap();
    snprintf(file_path, sizeof file_path, "%s/50-fuzz.json", dir_path);
    atexit(remove_drop_in_dir);
}

void check(bool ok) {
    if (!ok) __builtin_trap();
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string text(reinterpret_cast<const char*>(data), size);
    make_drop_in_dir();
    std::string file = file_path;
    std::ofstream(file, std::ios::binary | std::ios::trunc) << text;

    ConfigSources as_inline;
    as_inline.system_dirs = false;
    as_inline.inline_json = text;
    auto from_inline = sessreap::load_config(as_inline);

    ConfigSources as_file;
    as_file.system_dirs = false;
    as_file.extra_dirs = {dir_path};
    auto from_file = sessreap::load_config(as_file);

    if (text.empty()) { // an empty file masks; an empty inline document is a syntax error
        check(from_file.ok() && !from_inline.ok());
        return 0;
    }

    std::vector<sessreap::Error> errors = sessreap::check_config_text("<inline>", text);
    check(from_inline.ok() == errors.empty());
    check(from_inline.ok() == from_file.ok());

    if (!from_inline.ok()) {
        const std::string& message = from_inline.error().message;
        check(from_inline.error().code == EINVAL);
        check(message == errors.front().message);
        check(from_file.error().message == file + message.substr(8)); // same, but for the origin
        return 0;
    }

    nlohmann::json rendered = sessreap::config_to_json(*from_inline);
    check(rendered == sessreap::config_to_json(*from_file));
    as_inline.inline_json = rendered.dump();
    auto again = sessreap::load_config(as_inline);
    check(again.ok() && sessreap::config_to_json(*again) == rendered);
    return 0;
}
