// SPDX-License-Identifier: LGPL-2.1-or-later
// libFuzzer target for the /proc/PID/stat parser.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

#include "procfs.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string_view text(reinterpret_cast<const char*>(data), size);
    sessreap::StatFields f;
    if (!sessreap::parse_stat(text, &f)) return 0;

    // What the parser accepts must be self-consistent: a positive pid, a
    // NUL-terminated name no longer than the kernel's, and a name that
    // really sat between the first '(' and the last ')'.
    if (f.pid <= 0) __builtin_trap();
    if (std::memchr(f.comm.data(), '\0', f.comm.size()) == nullptr) __builtin_trap();
    size_t open = text.find('('), close = text.rfind(')');
    if (open == std::string_view::npos || close == std::string_view::npos || close < open)
        __builtin_trap();
    std::string_view comm = text.substr(open + 1, close - open - 1);
    if (comm.substr(0, std::strlen(f.comm.data())) != f.comm.data()) __builtin_trap();
    return 0;
}
