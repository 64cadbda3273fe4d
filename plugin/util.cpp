// SPDX-License-Identifier: LGPL-2.1-or-later
// Out-of-line pieces of util.h.
#include "util.h"

#include <string.h>

namespace sessreap {

std::string errno_string(int code) {
    char buf[128];
    // GNU strerror_r may return a static string instead of filling buf.
    const char* s = strerror_r(code, buf, sizeof buf);
    return s;
}

} // namespace sessreap
