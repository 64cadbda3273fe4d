// SPDX-License-Identifier: LGPL-2.1-or-later
// Loading sessreap.so the way any host would: dlopen, dlsym, ABI check.
#include "module.h"

#include <dlfcn.h>
#include <limits.h>
#include <stdlib.h>
#include <unistd.h>

namespace shim {
namespace {

std::string self_dir() {
    char buf[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
    if (n <= 0) return "";
    std::string path(buf, size_t(n));
    return path.substr(0, path.rfind('/'));
}

template <typename F> bool resolve(void* dl, const char* name, F* out, std::string* err) {
    *out = reinterpret_cast<F>(dlsym(dl, name));
    if (!*out) *err = std::string("module lacks symbol ") + name;
    return *out != nullptr;
}

} // namespace

std::string default_module_path() {
    if (const char* env = getenv("SESSREAP_MODULE"); env && *env) return env;
    if (self_dir() == SESSREAP_BUILD_BINDIR) return SESSREAP_BUILD_MODULE;
    return SESSREAP_INSTALLED_MODULE;
}

bool load_module(const std::string& path, Module* m, std::string* err) {
    // RTLD_NOW: a module with an unresolved symbol fails here, not mid-teardown.
    m->dl = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!m->dl) {
        *err = std::string("Failed to load module: ") + dlerror();
        return false;
    }
    m->path = path;

    if (!resolve(m->dl, "sessreap_abi_version", &m->abi_version, err)) return false;
    uint32_t abi = m->abi_version();
    if (abi >> 16 != SESSREAP_ABI_MAJOR) {
        *err = "module " + path + " implements ABI " + std::to_string(abi >> 16) + "." +
               std::to_string(abi & 0xffff) + ", this host needs " +
               std::to_string(SESSREAP_ABI_MAJOR) + ".x";
        return false;
    }

    return resolve(m->dl, "sessreap_version", &m->version, err) &&
           resolve(m->dl, "sessreap_last_error", &m->last_error, err) &&
           resolve(m->dl, "sessreap_open", &m->open, err) &&
           resolve(m->dl, "sessreap_close", &m->close, err) &&
           resolve(m->dl, "sessreap_launch", &m->launch, err) &&
           resolve(m->dl, "sessreap_forget", &m->forget, err) &&
           resolve(m->dl, "sessreap_teardown", &m->teardown, err) &&
           resolve(m->dl, "sessreap_reap_stale", &m->reap_stale, err) &&
           resolve(m->dl, "sessreap_config_show", &m->config_show, err) &&
           resolve(m->dl, "sessreap_config_check", &m->config_check, err);
}

} // namespace shim
