// SPDX-License-Identifier: LGPL-2.1-or-later
// `sessreap-host config`: show the effective configuration with origins, or check drop-ins.
#include "config_cmd.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include <algorithm>
#include <memory>

#include <nlohmann/json.hpp>

namespace shim {
namespace {

// Owns a string the module allocated with malloc(3).
using ModuleText = std::unique_ptr<char, decltype(&free)>;

const char* inline_json(const RunOptions& opts) {
    return opts.config_json.empty() ? nullptr : opts.config_json.c_str();
}

// The merged document, then "# KEY  ORIGIN" lines: the JSON part can be saved as a
// drop-in as it is, and the origins read like systemd-analyze cat-config's headers.
void print_readable(const nlohmann::json& doc) {
    puts(doc.at("config").dump(2).c_str());

    const nlohmann::json& origins = doc.at("origins");
    size_t width = 0;
    for (const auto& [key, origin] : origins.items()) width = std::max(width, key.size());
    printf("\n# Origins:\n");
    for (const auto& [key, origin] : origins.items())
        printf("# %-*s  %s\n", int(width), key.c_str(), origin.get<std::string>().c_str());
}

} // namespace

int show_config(const Module& m, const RunOptions& opts, bool as_json) {
    std::vector<const char*> dirs;
    sessreap_options o = module_options(opts, inline_json(opts), &dirs);
    char* raw = nullptr;
    int r = m.config_show(&o, &raw);
    if (r < 0) {
        fprintf(stderr, "sessreap-host: %s\n", m.last_error());
        if (r == -ENOMEM || r == -EIO) return kExitShimError;
        if (r == -EINVAL) fputs("sessreap-host: 'config --check' lists every error\n", stderr);
        return 1;
    }
    ModuleText text(raw, free);

    nlohmann::json doc;
    try {
        doc = nlohmann::json::parse(text.get());
        if (as_json)
            puts(doc.dump(2).c_str());
        else
            print_readable(doc);
    } catch (const std::exception& e) {
        fprintf(stderr, "sessreap-host: The module's configuration is not readable: %s\n",
                e.what());
        return kExitShimError;
    }
    return 0;
}

int check_config(const Module& m, const RunOptions& opts, const std::vector<std::string>& files) {
    std::vector<const char*> dirs;
    sessreap_options o = module_options(opts, inline_json(opts), &dirs);
    std::vector<const char*> paths;
    for (const std::string& f : files) paths.push_back(f.c_str());
    paths.push_back(nullptr);

    char* raw = nullptr;
    int n = m.config_check(&o, files.empty() ? nullptr : paths.data(), &raw);
    if (n < 0) {
        fprintf(stderr, "sessreap-host: Failed to check the configuration: %s\n", m.last_error());
        return kExitShimError;
    }
    ModuleText errors(raw, free);

    fputs(errors.get(), stdout);
    if (n > 0) fprintf(stderr, "sessreap-host: %d error%s\n", n, n == 1 ? "" : "s");
    return n > 0 ? 1 : 0;
}

} // namespace shim
