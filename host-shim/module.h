// SPDX-License-Identifier: LGPL-2.1-or-later
// Loading sessreap.so the way any host would: dlopen, dlsym, ABI check.
#pragma once

#include <string>

#include "sessreap/sessreap.h"

namespace shim {

// The module's entry points, resolved with dlsym.
struct Module {
    void* dl = nullptr;
    std::string path;
    decltype(&sessreap_abi_version) abi_version = nullptr;
    decltype(&sessreap_version) version = nullptr;
    decltype(&sessreap_last_error) last_error = nullptr;
    decltype(&sessreap_open) open = nullptr;
    decltype(&sessreap_close) close = nullptr;
    decltype(&sessreap_launch) launch = nullptr;
    decltype(&sessreap_forget) forget = nullptr;
    decltype(&sessreap_teardown) teardown = nullptr;
    decltype(&sessreap_reap_stale) reap_stale = nullptr;
    decltype(&sessreap_config_show) config_show = nullptr;
    decltype(&sessreap_config_check) config_check = nullptr;
};

// The path used when no --module is given: $SESSREAP_MODULE, else the build
// tree's module when this binary runs from the build tree, else the
// installed one.
std::string default_module_path();

// Loads and checks the module. On failure returns false with *err set.
bool load_module(const std::string& path, Module* out, std::string* err);

} // namespace shim
