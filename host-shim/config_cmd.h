// SPDX-License-Identifier: LGPL-2.1-or-later
// `sessreap-host config`: show the effective configuration with origins, or check drop-ins.
#pragma once

#include <string>
#include <vector>

#include "module.h"
#include "run.h"

namespace shim {

// Prints the configuration opts names, every key, and the file each value came from; as
// the module's JSON document when as_json. Returns the exit status: 0, 1 when the
// configuration is invalid or cannot be read, kExitShimError when the module fails.
int show_config(const Module& module, const RunOptions& opts, bool as_json);

// Prints every error in files, or in the effective set opts names when files is empty,
// one per line. Returns 0 when there is none, 1 when there are some, kExitShimError when
// the check itself fails.
int check_config(const Module& module, const RunOptions& opts,
                 const std::vector<std::string>& files);

} // namespace shim
