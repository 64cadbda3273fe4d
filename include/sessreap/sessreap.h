/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* sessreap.h: the C ABI a process supervisor loads so that nothing a child
 * started outlives it. */
#ifndef SESSREAP_SESSREAP_H
#define SESSREAP_SESSREAP_H

#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * When each call fires, in a host's life:
 *
 *   dlopen("sessreap.so", RTLD_NOW)
 *   sessreap_abi_version()   refuse the module if the major differs
 *   sessreap_open()          once, before the first child
 *
 *     pid = fork()
 *       child:  setsid(); wait for the host's go; exec
 *       host:   sessreap_launch(pid)  -> then tell the child to go
 *     ... child runs ...
 *     sessreap_teardown(pid)   when the child exits or must be stopped
 *     (or sessreap_forget(pid) to stop tracking it without killing)
 *
 *   sessreap_close()
 *
 * The child must not run the host's command before sessreap_launch() has
 * returned: a child that forks first can leave a process behind that the
 * launch record never saw (and, with a systemd scope or cgroup, that was
 * never moved into it).
 *
 * Errors: every call that can fail returns 0 (or a count, where said) or
 * a negative errno, and sessreap_last_error() then describes the failure.
 * No call aborts, exits or writes to stdout. Besides the errnos listed per
 * call, any call that returns int may return -ENOMEM, and -EIO for an
 * internal error (a bug: the message says what failed).
 *
 * Threads: all calls may be made from several threads at once, on one
 * handle or on several. sessreap_close() may race with other calls on the
 * same handle: those fail with -EBADF once the close has begun.
 */

#define SESSREAP_ABI_MAJOR 1
#define SESSREAP_ABI_MINOR 0

/* Returns (major << 16) | minor of the ABI the module implements. A host
 * compiled against a different SESSREAP_ABI_MAJOR must not call anything
 * else. Never fails. */
uint32_t sessreap_abi_version(void);

/* Returns the module's release, e.g. "0.1.0": a static string. Never fails. */
const char *sessreap_version(void);

/* Returns a description of the last failed call made by this thread: a
 * thread-local string, valid until this thread's next sessreap_ call.
 * Returns "" when the last call succeeded. Never NULL. */
const char *sessreap_last_error(void);

/* ---- Opening and closing a handle ------------------------------------- */

typedef struct sessreap_handle sessreap_handle;

/* Receives the module's log lines when the host passes one. priority is a
 * syslog(3) priority (LOG_ERR .. LOG_DEBUG). message is valid only during
 * the call. Called from whichever thread made the sessreap_ call; it must
 * not call back into sessreap. */
typedef void (*sessreap_log_fn)(void *userdata, int priority,
                                const char *message);

/* Skip the system drop-in directories; only built-in defaults,
 * config_dirs and config_json apply. For tests and embedded hosts. */
#define SESSREAP_OPEN_NO_SYSTEM_CONFIG (1u << 0)

struct sessreap_options {
    /* sizeof(struct sessreap_options) as the host compiled it. */
    uint32_t size;
    /* SESSREAP_OPEN_* bits. */
    uint32_t flags;
    /* A JSON document in the drop-in format (see sessreap.d(5)), applied
     * after every drop-in file; NULL for none. Example:
     *   {"teardown": {"grace_ms": 500}} */
    const char *config_json;
    /* Extra drop-in directories, NULL-terminated, applied after every
     * system drop-in, in the order given; NULL for none. */
    const char *const *config_dirs;
    /* Resolve the system drop-in directories under this root; NULL for
     * "/". */
    const char *config_root;
    /* Log sink; NULL to use the configured one (journald or stderr). */
    sessreap_log_fn log_fn;
    void *log_userdata;
};

/* Opens a handle. opts may be NULL for all defaults. The strings in opts
 * are copied; the host keeps ownership. On success stores the handle in
 * *ret and returns 0; *ret is untouched on failure.
 *
 * Returns:
 *   -EINVAL  ret is NULL, opts->size is smaller than the first release's
 *            struct, unknown flags, or the configuration is invalid (the
 *            message names file:line:column and the key)
 *   -EACCES, -EIO, -ELOOP, -ENOENT
 *            a drop-in file or directory could not be read (-ENOENT: a
 *            dangling symlink)
 *   -ENOMEM  out of memory
 *   -EMFILE, -ENFILE
 *            no file descriptor for /proc
 *   -EXDEV   /proc belongs to another PID namespace than the caller's: every
 *            pid read there would name another process */
int sessreap_open(const struct sessreap_options *opts, sessreap_handle **ret);

/* Closes a handle and frees it. Forgets every child still tracked and
 * kills nothing, unless "teardown.on_close" is set, in which case each is
 * torn down first. NULL is a no-op.
 *
 * Returns 0, or the first error of an on_close teardown (the handle is
 * closed either way):
 *   -EBADF   h is not an open handle (already closed)
 *   -ETIMEDOUT
 *            an on_close teardown left survivors */
int sessreap_close(sessreap_handle *h);

/* ---- Launch ----------------------------------------------------------- */

/* Records a child the host has just spawned. Call it after fork and before
 * the child runs the host's command (see the top of this file). The child
 * should be a session leader (setsid(2) or POSIX_SPAWN_SETSID): its
 * session id is then its pid and the sweep layer can find every process
 * of that session. A child left in the host's session is recorded with
 * the sweep off, and a warning says why.
 *
 * name: an optional label (used to name a systemd scope); NULL for none.
 *
 * Records: session id, process group, a pidfd, and (when configured) a
 * systemd scope or cgroup. Once three quarters of RLIMIT_NOFILE are in
 * use it keeps no pidfd and records the start time instead, so tracking
 * many children never takes the host's last descriptors.
 *
 * Returns:
 *   -EBADF   h is not an open handle
 *   -EINVAL  pid is 0, 1, negative or the host's own pid (name is escaped
 *            into a valid unit name, never refused)
 *   -ESRCH   no such process
 *   -EEXIST  pid is already tracked by this handle
 *   -EMFILE, -ENFILE
 *            no descriptor left to read /proc/PID/stat
 *   -ENOMEM  out of memory
 *   -EACCES  the child's /proc entry cannot be read (hidepid, another user) */
int sessreap_launch(sessreap_handle *h, pid_t pid, const char *name);

/* Stops tracking pid without signalling anything.
 *
 * Returns:
 *   -EBADF   h is not an open handle
 *   -ENOENT  pid is not tracked by this handle */
int sessreap_forget(sessreap_handle *h, pid_t pid);

/* ---- Teardown --------------------------------------------------------- */

enum sessreap_layer {
    SESSREAP_LAYER_GROUP = 0,  /* kill(-pgid) of the child's group */
    SESSREAP_LAYER_SWEEP = 1,  /* /proc walk for the child's session */
    SESSREAP_LAYER_SCOPE = 2,  /* systemd scope stopped over D-Bus */
    SESSREAP_LAYER_CGROUP = 3, /* cgroup v2 cgroup.kill */
    SESSREAP_LAYER_COUNT = 4
};

/* Why a layer was skipped or limited (bits of sessreap_report.guards). */
/* The process group is 0, 1 or the host's. */
#define SESSREAP_GUARD_GROUP_ID (1u << 0)
/* The session is 0, 1, the host's, or the child was not a session leader. */
#define SESSREAP_GUARD_SESSION_ID (1u << 1)
/* The session or group id now names another process. */
#define SESSREAP_GUARD_RECYCLED (1u << 2)
/* The unit holds the host. */
#define SESSREAP_GUARD_HOST_UNIT (1u << 3)
/* A process matched an exclusion rule. */
#define SESSREAP_GUARD_EXCLUDED (1u << 4)
/* /proc entries could not be read. */
#define SESSREAP_GUARD_UNREADABLE (1u << 5)
/* The time cap or the pass limit ended the teardown. */
#define SESSREAP_GUARD_CAP (1u << 6)
/* A scope or cgroup layer failed and was skipped. */
#define SESSREAP_GUARD_LAYER_FAILED (1u << 7)

/* Bits of sessreap_report.flags. */
/* Nothing was signalled; the counts say what would have been. */
#define SESSREAP_REPORT_DRY_RUN (1u << 0)

struct sessreap_survivor {
    int32_t pid;
    char state;    /* field 3 of /proc/PID/stat, e.g. 'R', 'S', 'D' */
    char comm[16]; /* command name, NUL-terminated */
};

struct sessreap_report {
    /* In: sizeof(struct sessreap_report) as the host compiled it. */
    uint32_t size;
    /* In: capacity of survivors; 0 when survivors is NULL. */
    uint32_t survivors_cap;
    /* In: a host-owned array the module fills, or NULL. */
    struct sessreap_survivor *survivors;

    /* Out: processes signalled by each layer (for the scope and cgroup
     * layers, the processes the unit or cgroup held when it was killed). */
    uint32_t signalled[SESSREAP_LAYER_COUNT];
    /* Out: SESSREAP_GUARD_* bits. */
    uint32_t guards;
    /* Out: SESSREAP_REPORT_* bits. */
    uint32_t flags;
    /* Out: sweep passes run. */
    uint32_t passes;
    /* Out: processes spared by exclusion rules. */
    uint32_t excluded;
    /* Out: live processes of the session left at the end; the first
     * survivors_cap of them are in survivors. */
    uint32_t survivors_total;
    uint32_t reserved;
    /* Out: wall time the teardown took, in microseconds. */
    uint64_t elapsed_us;
};

/* Tears down a recorded child and then forgets it, whatever the outcome.
 * Runs, each when configured and not stopped by a guard: the systemd
 * scope, the cgroup, the process group (termination signal), the session
 * sweep; waits up to the grace period for every signalled process to
 * exit; then sends the kill signal the same way and sweeps again until no
 * live member is left, the pass limit is reached or the time cap runs
 * out. Never blocks past the cap ("teardown.cap_ms").
 *
 * report may be NULL. When given, report->size must be at least the size
 * of the first release's struct; the module writes no byte past it.
 *
 * Returns 0 when nothing of the child's session is left alive, or:
 *   -EBADF   h is not an open handle
 *   -EINVAL  report->size is too small
 *   -ENOENT  pid is not tracked by this handle (never launched, or
 *            already torn down or forgotten)
 *   -ETIMEDOUT
 *            processes were still alive at the cap; they are counted in
 *            report->survivors_total and the record is forgotten
 *   -ENOMEM, -EMFILE, -ENFILE, -EACCES
 *            the teardown could not complete (no memory, or /proc could not
 *            be walked: no descriptor left, or no access), so nobody can
 *            tell whether the session is gone; guards has
 *            SESSREAP_GUARD_UNREADABLE, the process group was sent the
 *            kill signal, and the record is kept so the call can be made
 *            again */
int sessreap_teardown(sessreap_handle *h, pid_t pid,
                      struct sessreap_report *report);

/* ---- Recovery after a host died ---------------------------------------- */

/* Each launch record is also written under the state directory
 * ("state.dir", default /run/sessreap/state for root, else
 * $XDG_RUNTIME_DIR/sessreap/state) and removed at teardown or forget.
 *
 * Tears down the children recorded by hosts that are gone (their pid no
 * longer names a live process with the recorded start time). A record is
 * skipped, never acted on, when it was written before the last boot (it is
 * deleted) or in another PID namespace; a record whose child's pid now names
 * a process with another start time sweeps nothing (the ids were recycled).
 * Each dead host's journal is claimed by renaming it, so concurrent reapers
 * never tear the same records down twice; a journal whose teardowns could
 * not complete is put back for a later call. report (may be NULL) sums
 * every teardown.
 *
 * With "state.reap_stale_on_open", sessreap_open() does the same for the
 * records of dead hosts that ran the same executable as the caller.
 *
 * Returns the number of records torn down (0 when none, or when the state
 * directory is off), or:
 *   -EBADF   h is not an open handle
 *   -EINVAL  report->size is too small
 *   -ETIMEDOUT
 *            some torn-down session still had processes at the cap
 *   -ENOMEM, -EMFILE, -ENFILE, -EACCES
 *            a teardown could not complete (see sessreap_teardown); its
 *            journal is put back, so a later call tries again */
int sessreap_reap_stale(sessreap_handle *h, struct sessreap_report *report);

/* ---- Checking and showing the configuration ---------------------------- */

/* These read the configuration the way sessreap_open() does with the same
 * opts (config_root, SESSREAP_OPEN_NO_SYSTEM_CONFIG, config_dirs,
 * config_json) and need no handle. opts may be NULL for the defaults. */

/* Stores in *ret_json the effective configuration: a JSON object
 *   {"config": {...}, "origins": {...}}
 * where "config" holds every key, in the drop-in format, and "origins" maps
 * each key path ("teardown.grace_ms", "exclude") to the drop-in file that
 * set it last, "<inline>" for config_json or "<default>". The text is from
 * malloc(3); the caller frees it with free(3). *ret_json is untouched on
 * failure.
 *
 * Returns 0, or:
 *   -EINVAL  ret_json is NULL, opts->size is too small, unknown flags, or
 *            the configuration is invalid (the message names
 *            file:line:column and the key; the first error only)
 *   -EACCES, -EIO, -ELOOP, -ENOENT
 *            a drop-in file or directory could not be read
 *   -ENOMEM  out of memory */
int sessreap_config_show(const struct sessreap_options *opts, char **ret_json);

/* Validates drop-ins and reports every error, not only the first. With
 * files (NULL-terminated paths) it checks each of those on its own, as a
 * drop-in; opts then only has to be valid. With files NULL it checks each
 * file sessreap_open() would read with opts (masked files left out), then
 * config_json. An empty file or a symlink to /dev/null is valid.
 *
 * Stores in *ret_errors a text from malloc(3), one error per line, each
 * ending in a newline ("" when there is none), for the caller to free(3):
 *   FILE:LINE:COL: key.path: expected WHAT, got VALUE
 * A file or directory that cannot be read is an error like any other
 * ("Failed to open FILE: Permission denied"). *ret_errors is untouched on
 * failure.
 *
 * Returns the number of errors (0 when everything is valid), or:
 *   -EINVAL  ret_errors is NULL, opts->size is too small or unknown flags
 *   -ENOMEM  out of memory */
int sessreap_config_check(const struct sessreap_options *opts,
                          const char *const *files, char **ret_errors);

#ifdef __cplusplus
}
#endif

#endif /* SESSREAP_SESSREAP_H */
