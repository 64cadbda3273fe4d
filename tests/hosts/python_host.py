#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""A minimal host in Python (ctypes): launch a tree with escapees, tear it
down, and check that every pid the tree wrote is gone.

Usage: python_host.py MODULE SCRIPT PIDFILE
"""
import ctypes
import os
import sys

LAYER_COUNT = 4


class Options(ctypes.Structure):
    _fields_ = [
        ("size", ctypes.c_uint32),
        ("flags", ctypes.c_uint32),
        ("config_json", ctypes.c_char_p),
        ("config_dirs", ctypes.POINTER(ctypes.c_char_p)),
        ("config_root", ctypes.c_char_p),
        ("log_fn", ctypes.c_void_p),
        ("log_userdata", ctypes.c_void_p),
    ]


class Survivor(ctypes.Structure):
    _fields_ = [("pid", ctypes.c_int32), ("state", ctypes.c_char), ("comm", ctypes.c_char * 16)]


class Report(ctypes.Structure):
    _fields_ = [
        ("size", ctypes.c_uint32),
        ("survivors_cap", ctypes.c_uint32),
        ("survivors", ctypes.POINTER(Survivor)),
        ("signalled", ctypes.c_uint32 * LAYER_COUNT),
        ("guards", ctypes.c_uint32),
        ("flags", ctypes.c_uint32),
        ("passes", ctypes.c_uint32),
        ("excluded", ctypes.c_uint32),
        ("survivors_total", ctypes.c_uint32),
        ("reserved", ctypes.c_uint32),
        ("elapsed_us", ctypes.c_uint64),
    ]


def load(path):
    lib = ctypes.CDLL(path, mode=os.RTLD_NOW)
    lib.sessreap_abi_version.restype = ctypes.c_uint32
    lib.sessreap_last_error.restype = ctypes.c_char_p
    lib.sessreap_open.argtypes = [ctypes.POINTER(Options), ctypes.POINTER(ctypes.c_void_p)]
    lib.sessreap_launch.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_char_p]
    lib.sessreap_teardown.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.POINTER(Report)]
    lib.sessreap_close.argtypes = [ctypes.c_void_p]
    if lib.sessreap_abi_version() >> 16 != 1:
        sys.exit("python_host: ABI major mismatch")
    return lib


def spawn(argv):
    """fork + setsid + wait for the go byte + exec."""
    ready_r, ready_w = os.pipe()
    go_r, go_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.setsid()
        os.write(ready_w, b"r")
        if os.read(go_r, 1) != b"g":
            os._exit(126)
        os.execvp(argv[0], argv)
    os.close(ready_w)
    os.close(go_r)
    os.read(ready_r, 1)
    return pid, go_w


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            tail = f.read().rsplit(b")", 1)[1]
    except OSError:
        return False
    return tail[1:2] not in (b"Z", b"X")


def main():
    module, script, pidfile = sys.argv[1:4]
    lib = load(module)
    opts = Options(size=ctypes.sizeof(Options), flags=1,
                   config_json=b'{"teardown": {"grace_ms": 300}}')
    handle = ctypes.c_void_p()
    if lib.sessreap_open(ctypes.byref(opts), ctypes.byref(handle)) < 0:
        sys.exit(f"python_host: open: {lib.sessreap_last_error().decode()}")

    pid, go = spawn(["sh", script, pidfile])
    if lib.sessreap_launch(handle, pid, b"python-host") < 0:
        sys.exit(f"python_host: launch: {lib.sessreap_last_error().decode()}")
    os.write(go, b"g")
    os.close(go)

    # Wait without reaping: the leader's pid keeps its session id pinned.
    os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)
    report = Report(size=ctypes.sizeof(Report))
    rc = lib.sessreap_teardown(handle, pid, ctypes.byref(report))
    os.waitpid(pid, 0)
    lib.sessreap_close(handle)

    with open(pidfile) as f:
        pids = [int(line) for line in f if line.strip()]
    survivors = [p for p in pids if alive(p)]
    print(f"python_host: rc {rc}, group {report.signalled[0]}, sweep {report.signalled[1]}, "
          f"{len(pids)} pids checked, survivors {survivors}")
    ok = rc == 0 and len(pids) == 7 and not survivors and report.signalled[1] > 0
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
