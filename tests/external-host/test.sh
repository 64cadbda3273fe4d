#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# Installs a sessreap build tree into a staging directory (DESTDIR), builds
# the host in this directory against it twice, through pkg-config and through
# CMake's find_package, and runs both builds.
# Usage: test.sh BUILD_DIR WORK_DIR      (CC: the C compiler, default cc)
set -eu
build=$(cd "$1" && pwd)
work=$2
here=$(cd "$(dirname "$0")" && pwd)
cc=${CC:-cc}

fail() {
    echo "external-host test: FAILED: $*" >&2
    exit 1
}

rm -rf "$work"
mkdir -p "$work"
work=$(cd "$work" && pwd)
dest=$work/dest
DESTDIR=$dest cmake --install "$build" >"$work/install.log" 2>&1 ||
    { cat "$work/install.log" >&2; fail "cmake --install"; }

pc=$(find "$dest" -name sessreap.pc -path '*/pkgconfig/*' | head -n 1)
[ -n "$pc" ] || fail "no sessreap.pc under $dest"

# Through pkg-config. PKG_CONFIG_LIBDIR leaves out the system's .pc files,
# so an installed sessreap-dev cannot stand in; the sysroot maps the
# installed paths into the staging directory.
PKG_CONFIG_LIBDIR=$(dirname "$pc")
PKG_CONFIG_SYSROOT_DIR=$dest
export PKG_CONFIG_LIBDIR PKG_CONFIG_SYSROOT_DIR
cflags=$(pkg-config --cflags sessreap)
module=$(pkg-config --variable=module sessreap)
prefix=$(PKG_CONFIG_SYSROOT_DIR= pkg-config --variable=prefix sessreap)
unset PKG_CONFIG_LIBDIR PKG_CONFIG_SYSROOT_DIR
# pkgconf maps variables into the sysroot too; freedesktop pkg-config only
# maps -I and -L.
case $module in
"$dest"/*) ;;
*) module=$dest$module ;;
esac
case $cflags in
*"-I$dest/"*) ;;
*) fail "pkg-config --cflags gave '$cflags', not a directory under $dest" ;;
esac
[ -f "$module" ] || fail "pkg-config's module variable names '$module', which does not exist"

# shellcheck disable=SC2086 # cflags is a list of flags
"$cc" -std=c99 -Wall -Wextra -pedantic -Werror $cflags \
    -DSESSREAP_EXTERNAL_MODULE="\"$module\"" "$here/host.c" -o "$work/host-pkg-config" -ldl ||
    fail "building with pkg-config's flags"

# Through CMake: the package is found from the prefix inside the staging
# directory, and its paths are relative to where its files are. CMake looks
# in lib64 only on platforms that use it (FIND_LIBRARY_USE_LIB64_PATHS): an
# RPM layout built on Debian is found through sessreap_DIR instead.
config_dir=$(dirname "$(find "$dest" -name sessreap-config.cmake | head -n 1)")
set -- -DCMAKE_PREFIX_PATH="$dest$prefix" -DCMAKE_C_COMPILER="$cc"
case $config_dir in
*/lib64/*) set -- "$@" -Dsessreap_DIR="$config_dir" ;;
esac
cmake -S "$here" -B "$work/build-cmake" "$@" >"$work/cmake.log" 2>&1 ||
    { cat "$work/cmake.log" >&2; fail "configuring with find_package(sessreap)"; }
cmake --build "$work/build-cmake" >>"$work/cmake.log" 2>&1 ||
    { cat "$work/cmake.log" >&2; fail "building with find_package(sessreap)"; }

for host in "$work/host-pkg-config" "$work/build-cmake/external-host"; do
    out=$("$host") || fail "$host exited with status $?"
    echo "$out"
    case $out in
    "external-host: $dest/"*) ;;
    *) fail "$host did not load the module from the staging directory" ;;
    esac
done
echo "external-host test: built through pkg-config and CMake against $dest, both ran"
