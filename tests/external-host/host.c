/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A host built outside the source tree against an installed sessreap: it
 * dlopens the module at the path its build found (pkg-config's ${module} or
 * CMake's sessreap::module), checks the ABI, opens and closes a handle.
 * It launches nothing and so kills nothing. */
#include <dlfcn.h>
#include <stdio.h>

#include <sessreap/sessreap.h>

#ifndef SESSREAP_EXTERNAL_MODULE
#error "build with -DSESSREAP_EXTERNAL_MODULE=\"/path/to/sessreap.so\""
#endif

struct api {
    uint32_t (*abi_version)(void);
    const char *(*version)(void);
    const char *(*last_error)(void);
    int (*open)(const struct sessreap_options *, sessreap_handle **);
    int (*close)(sessreap_handle *);
};

static int resolve(void *dl, const char *name, void **out) {
    *out = dlsym(dl, name);
    if (!*out)
        fprintf(stderr, "external-host: module lacks %s\n", name);
    return *out != NULL;
}

int main(void) {
    const char *path = SESSREAP_EXTERNAL_MODULE;
    struct sessreap_options opts = {0};
    sessreap_handle *h = NULL;
    struct api api;
    uint32_t abi;
    void *dl;

    dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!dl) {
        fprintf(stderr, "external-host: %s\n", dlerror());
        return 1;
    }
    if (!resolve(dl, "sessreap_abi_version", (void **)&api.abi_version) ||
        !resolve(dl, "sessreap_version", (void **)&api.version) ||
        !resolve(dl, "sessreap_last_error", (void **)&api.last_error) ||
        !resolve(dl, "sessreap_open", (void **)&api.open) ||
        !resolve(dl, "sessreap_close", (void **)&api.close))
        return 1;

    abi = api.abi_version();
    if (abi >> 16 != SESSREAP_ABI_MAJOR) {
        fprintf(stderr, "external-host: module has ABI %u, header %d\n",
                (unsigned)(abi >> 16), SESSREAP_ABI_MAJOR);
        return 1;
    }

    opts.size = sizeof opts;
    opts.flags = SESSREAP_OPEN_NO_SYSTEM_CONFIG;
    if (api.open(&opts, &h) < 0) {
        fprintf(stderr, "external-host: open: %s\n", api.last_error());
        return 1;
    }
    if (api.close(h) < 0) {
        fprintf(stderr, "external-host: close: %s\n", api.last_error());
        return 1;
    }

    printf("external-host: %s: sessreap %s, ABI %u.%u, opened and closed\n",
           path, api.version(), (unsigned)(abi >> 16),
           (unsigned)(abi & 0xffff));
    dlclose(dl);
    return 0;
}
