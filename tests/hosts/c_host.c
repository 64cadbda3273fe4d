/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A minimal host in C99: dlopen the module, launch a tree with escapees,
 * tear it down, and check that every pid the tree wrote is gone.
 * Usage: c_host MODULE SCRIPT PIDFILE */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sessreap/sessreap.h"

struct api {
    uint32_t (*abi_version)(void);
    const char *(*last_error)(void);
    int (*open)(const struct sessreap_options *, sessreap_handle **);
    int (*close)(sessreap_handle *);
    int (*launch)(sessreap_handle *, pid_t, const char *);
    int (*teardown)(sessreap_handle *, pid_t, struct sessreap_report *);
};

static int load(const char *path, struct api *api) {
    void *dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!dl) {
        fprintf(stderr, "c_host: %s\n", dlerror());
        return -1;
    }
    *(void **)&api->abi_version = dlsym(dl, "sessreap_abi_version");
    *(void **)&api->last_error = dlsym(dl, "sessreap_last_error");
    *(void **)&api->open = dlsym(dl, "sessreap_open");
    *(void **)&api->close = dlsym(dl, "sessreap_close");
    *(void **)&api->launch = dlsym(dl, "sessreap_launch");
    *(void **)&api->teardown = dlsym(dl, "sessreap_teardown");
    if (!api->abi_version || !api->open || !api->teardown)
        return -1;
    if (api->abi_version() >> 16 != SESSREAP_ABI_MAJOR) {
        fprintf(stderr, "c_host: ABI major mismatch\n");
        return -1;
    }
    return 0;
}

/* fork + setsid + wait for the go byte + exec: the child is recorded
 * before it runs anything. */
static pid_t spawn(char **argv, int *go_fd) {
    int ready[2], go[2];
    pid_t pid;
    char byte;

    if (pipe(ready) < 0 || pipe(go) < 0)
        return -1;
    pid = fork();
    if (pid == 0) {
        setsid();
        if (write(ready[1], "r", 1) != 1 || read(go[0], &byte, 1) != 1)
            _exit(126);
        close(go[0]);
        execvp(argv[0], argv);
        _exit(127);
    }
    close(ready[1]);
    close(go[0]);
    if (read(ready[0], &byte, 1) != 1)
        return -1;
    close(ready[0]);
    *go_fd = go[1];
    return pid;
}

static int still_alive(pid_t pid) {
    char path[64], buf[512], *close_paren;
    FILE *f;
    size_t n;

    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    f = fopen(path, "r");
    if (!f)
        return 0;
    n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    close_paren = strrchr(buf, ')');
    return close_paren && close_paren[2] != 'Z' && close_paren[2] != 'X';
}

int main(int argc, char **argv) {
    struct api api;
    struct sessreap_options opts;
    struct sessreap_report report;
    sessreap_handle *h = NULL;
    char *child_argv[5];
    siginfo_t info;
    int go_fd, failed = 0, count = 0;
    pid_t pid, p;
    FILE *pids;

    if (argc != 4 || load(argv[1], &api) < 0)
        return 2;

    memset(&opts, 0, sizeof opts);
    opts.size = sizeof opts;
    opts.flags = SESSREAP_OPEN_NO_SYSTEM_CONFIG;
    opts.config_json = "{\"teardown\": {\"grace_ms\": 300}}";
    if (api.open(&opts, &h) < 0) {
        fprintf(stderr, "c_host: open: %s\n", api.last_error());
        return 1;
    }

    child_argv[0] = "sh";
    child_argv[1] = argv[2];
    child_argv[2] = argv[3];
    child_argv[3] = NULL;
    pid = spawn(child_argv, &go_fd);
    if (pid < 0 || api.launch(h, pid, NULL) < 0) {
        fprintf(stderr, "c_host: launch: %s\n", api.last_error());
        return 1;
    }
    if (write(go_fd, "g", 1) != 1)
        return 1;
    close(go_fd);

    /* Wait for the leader's exit without reaping it, so its session id
     * stays pinned while the teardown runs. */
    waitid(P_PID, (id_t)pid, &info, WEXITED | WNOWAIT);
    memset(&report, 0, sizeof report);
    report.size = sizeof report;
    if (api.teardown(h, pid, &report) < 0) {
        fprintf(stderr, "c_host: teardown: %s\n", api.last_error());
        failed = 1;
    }
    waitpid(pid, NULL, 0);

    pids = fopen(argv[3], "r");
    while (pids && fscanf(pids, "%d", &p) == 1) {
        count++;
        if (still_alive(p)) {
            fprintf(stderr, "c_host: pid %d survived\n", (int)p);
            failed = 1;
        }
    }
    if (pids)
        fclose(pids);
    printf("c_host: group %u, sweep %u, %d pids checked\n",
           report.signalled[SESSREAP_LAYER_GROUP],
           report.signalled[SESSREAP_LAYER_SWEEP], count);
    if (count != 7 || report.signalled[SESSREAP_LAYER_SWEEP] == 0)
        failed = 1;
    api.close(h);
    return failed;
}
