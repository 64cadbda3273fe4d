#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# Builds the Debian and RPM packages from a copy of the source tree and checks
# them: lintian clean, install, a smoke test of the installed files only,
# purge leaving nothing behind, rpmbuild -bb and rpmlint.
#
# Usage: packaging/ci-package-test.sh [all | deb | rpm]     (default: all)
# Needs root and Debian 12: it installs what it needs with apt-get, and
# installs and purges the sessreap packages on this machine.
# SESSREAP_PKG_OUT=DIR copies the built .deb and .rpm files there.
# Exits 0 when every step passed; the last line says which step failed.
set -eu

mode=${1:-all}
case $mode in
all | deb | rpm) ;;
*) echo "usage: $0 [all | deb | rpm]" >&2; exit 2 ;;
esac
[ "$(id -u)" = 0 ] || { echo "$0: needs root (apt-get, dpkg)" >&2; exit 2; }

src=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/sessreap-pkg.XXXXXX")
version=$(sed -n 's/^project(sessreap VERSION \([0-9.]*\).*/\1/p' "$src/CMakeLists.txt")
tree=$work/src/sessreap-$version
installed_by_us=0
summary=""
current=""

say() { echo "== $*"; }

finish() {
    status=$?
    trap - EXIT
    if [ "$installed_by_us" = 1 ]; then
        say "purging the packages after a failure"
        DEBIAN_FRONTEND=noninteractive apt-get purge -y -q sessreap sessreap-dev >/dev/null 2>&1 || true
    fi
    [ -n "${SESSREAP_PKG_KEEP:-}" ] || rm -rf "$work"
    if [ "$status" = 0 ]; then
        echo "packaging test: all steps passed:$summary"
    else
        echo "packaging test: FAILED at step '$current' (after:$summary)" >&2
    fi
    exit "$status"
}
trap finish EXIT

# step NAME FUNCTION: runs one step, timing it.
step() {
    current=$1
    say "step: $1"
    started=$(date +%s)
    "$2"
    summary="$summary $1 $(($(date +%s) - started))s,"
}

# --- Tools -------------------------------------------------------------------

copy_source() {
    mkdir -p "$tree"
    # The files git knows of (tracked, or new and not ignored); a build
    # directory in the checkout never comes along.
    if git -C "$src" rev-parse --git-dir >/dev/null 2>&1; then
        git -C "$src" ls-files -z --cached --others --exclude-standard |
            (cd "$src" && xargs -0 cp --parents -t "$tree")
    else
        tar -C "$src" --exclude='./build*' --exclude='./obj-*' --exclude=./.git -cf - . |
            tar -C "$tree" -xf -
    fi
    # The RPM's source tarball, made before any build writes into the tree.
    tar -C "$work/src" -czf "$work/sessreap-$version.tar.gz" "sessreap-$version"
}

install_tools() {
    # The Build-Depends come from debian/control itself, so a missing one
    # fails here and not only on a clean builder.
    tools="build-essential lintian rpm rpmlint file mandoc groff-base man-db util-linux perl"
    DEBIAN_FRONTEND=noninteractive apt-get update -q >"$work/apt.log" 2>&1 ||
        { cat "$work/apt.log"; return 1; }
    # shellcheck disable=SC2086 # a list of package names
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $tools \
        >>"$work/apt.log" 2>&1 || { cat "$work/apt.log"; return 1; }
    DEBIAN_FRONTEND=noninteractive apt-get build-dep -y -q "$tree" >>"$work/apt.log" 2>&1 ||
        { cat "$work/apt.log"; return 1; }
}

# --- Debian ------------------------------------------------------------------

purge_old() {
    # A package left installed (by hand, or by a run that died) would hide
    # leftovers of this one.
    if dpkg-query -W -f='${Status}\n' sessreap sessreap-dev 2>/dev/null | grep -qv "not-installed"; then
        say "purging sessreap packages already on this machine"
        DEBIAN_FRONTEND=noninteractive apt-get purge -y -q sessreap sessreap-dev >/dev/null
    fi
}

build_deb() {
    (cd "$tree" && dpkg-buildpackage -us -uc -b) >"$work/deb-build.log" 2>&1 ||
        { tail -n 60 "$work/deb-build.log"; return 1; }
    grep -E "tests passed|tests failed" "$work/deb-build.log" || true
    ls "$work/src"/*.deb
}

run_lintian() {
    # Errors and warnings fail; info tags are printed too, so that a new
    # one is seen, and each override in debian/ says why it is there.
    changes=$(ls "$work/src"/sessreap_"$version"-*_"$(dpkg --print-architecture)".changes)
    status=0
    lintian --fail-on error,warning --display-info --pedantic "$changes" \
        >"$work/lintian.log" 2>&1 || status=$?
    grep -v "running with root privileges" "$work/lintian.log" >"$work/lintian.tags" || true
    if [ -s "$work/lintian.tags" ]; then
        cat "$work/lintian.tags"
    else
        echo "lintian: no tags (errors, warnings, info, pedantic) on $(basename "$changes")"
    fi
    [ "$status" = 0 ] || echo "lintian exited $status: errors or warnings above"
    return "$status"
}

install_debs() {
    # The paths the packages hold, and which of them existed before, so that
    # after the purge anything new that is left can be told apart.
    for deb in "$work/src"/sessreap_*.deb "$work/src"/sessreap-dev_*.deb; do
        dpkg-deb --fsys-tarfile "$deb" | tar -tf - | sed 's|^\./|/|; s|/$||' | grep -v '^/*$'
    done | sort -u >"$work/deb-paths"
    while read -r path; do
        [ -e "$path" ] && echo "$path"
    done <"$work/deb-paths" >"$work/existed-before"

    installed_by_us=1
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
        "$work/src"/sessreap_*.deb "$work/src"/sessreap-dev_*.deb >"$work/install.log" 2>&1 ||
        { cat "$work/install.log"; return 1; }
    dpkg -L sessreap sessreap-dev | grep -vx '/\.' | sort -u >"$work/dpkg-L"
    wc -l <"$work/dpkg-L" | sed 's/$/ paths installed/'
}

smoke_test() {
    # Nothing from the build: a clean environment, / as the working
    # directory, and the tools from PATH.
    env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root sh -eu -c '
        cd /
        host=$(command -v sessreap-host)
        [ "$host" = /usr/bin/sessreap-host ] || { echo "sessreap-host is $host"; exit 1; }
        module=$(pkg-config --variable=module sessreap)
        [ -f "$module" ] || { echo "pkg-config names $module, which is missing"; exit 1; }
        version=$(sessreap-host --version)
        echo "$version"
        echo "$version" | grep -q "^module $module [0-9]" ||
            { echo "sessreap-host does not load $module by default"; exit 1; }
    ' || return 1

    # A command that leaves an escapee in a process group of its own, one that
    # ignores SIGTERM, and exits 3; all in a private PID namespace, so that
    # whatever is killed cannot be outside it.
    unshare --pid --fork --mount-proc true 2>/dev/null ||
        { echo "unshare --pid --fork --mount-proc is not permitted here"; return 1; }
    # The escapee writes its pid only once it has left the group, and the
    # command waits for that, so the escape has happened before teardown.
    cat >"$work/escapee.sh" <<'SCRIPT'
perl -e '$SIG{TERM} = "IGNORE"; setpgrp(0, 0);
    open(my $f, ">", $ARGV[0]) or die; print $f "$$\n"; close($f);
    exec "sleep", "300"' "$1" &
while [ ! -s "$1" ]; do sleep 0.05; done
exit 3
SCRIPT
    cat >"$work/smoke.sh" <<'SCRIPT'
cd /
status=0
sessreap-host run --verbose --grace 300 -- sh "$1" "$2" || status=$?
[ "$status" = 3 ] || { echo "sessreap-host exited $status, not the command's 3"; exit 1; }
pid=$(cat "$2")
if [ -e "/proc/$pid" ] && ! grep -q "^State:.*Z" "/proc/$pid/status"; then
    echo "escapee $pid survived: $(tr '\0' ' ' <"/proc/$pid/cmdline")"
    exit 1
fi
echo "escapee $pid (own process group, ignores SIGTERM) was reaped by the installed module"
SCRIPT
    env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin unshare --pid --fork --mount-proc --kill-child \
        sh -u "$work/smoke.sh" "$work/escapee.sh" "$work/escapee.pid" || return 1

    check_config

    # The installed man pages render, and the external host builds against
    # the installed sessreap-dev with nothing from the build tree.
    for page in /usr/share/man/man1/sessreap-host.1.gz /usr/share/man/man5/sessreap.d.5.gz \
        /usr/share/man/man8/sessreap.8.gz; do
        zcat "$page" >"$work/$(basename "$page" .gz)"
        MANWIDTH=80 man -l "$page" >/dev/null 2>"$work/man.err"
        [ ! -s "$work/man.err" ] || { cat "$work/man.err"; return 1; }
    done
    sh "$tree/packaging/man/lint.sh" "$work"/sessreap-host.1 "$work"/sessreap.d.5 "$work"/sessreap.8
    external_host_installed
}

check_config() {
    # config --check lands with the configuration loader; until then this
    # sessreap-host has no such subcommand and the step says so.
    if ! sessreap-host --help | grep -Eq '(^|[[:space:]])config([[:space:]]|$)'; then
        echo "sessreap-host has no 'config' subcommand yet: config --check not run"
        return 0
    fi
    files=$(find /usr/lib/sessreap/sessreap.d /etc/sessreap/sessreap.d -name '*.json' 2>/dev/null ||
        true)
    printf '{"teardown": {"grace_ms": 500}}\n' >"$work/good.json"
    printf '{"teardown": {"grace_ms": "soon"}}\n' >"$work/bad.json"
    # shellcheck disable=SC2086 # file names without spaces, from find
    sessreap-host config --check $files "$work/good.json" ||
        { echo "config --check rejected the installed drop-ins"; return 1; }
    if sessreap-host config --check "$work/bad.json" >/dev/null 2>&1; then
        echo "config --check accepted an invalid drop-in"
        return 1
    fi
    sessreap-host config >/dev/null || { echo "sessreap-host config failed"; return 1; }
    echo "config --check: installed drop-ins valid, an invalid one rejected"
}

external_host_installed() {
    cc -std=c99 -Wall -Wextra -pedantic -Werror $(pkg-config --cflags sessreap) \
        -DSESSREAP_EXTERNAL_MODULE="\"$(pkg-config --variable=module sessreap)\"" \
        "$tree/tests/external-host/host.c" -o "$work/host-installed" -ldl
    "$work/host-installed"
    cmake -S "$tree/tests/external-host" -B "$work/host-cmake" >"$work/host-cmake.log" 2>&1 &&
        cmake --build "$work/host-cmake" >>"$work/host-cmake.log" 2>&1 ||
        { cat "$work/host-cmake.log"; return 1; }
    "$work/host-cmake/external-host"
}

purge_debs() {
    DEBIAN_FRONTEND=noninteractive apt-get purge -y -q sessreap sessreap-dev >"$work/purge.log" 2>&1 ||
        { cat "$work/purge.log"; return 1; }
    installed_by_us=0
    if dpkg-query -W -f='${Status}\n' sessreap sessreap-dev 2>/dev/null | grep -qv "not-installed"; then
        echo "dpkg still knows the packages:"
        dpkg-query -W -f='${Package} ${Status}\n' sessreap sessreap-dev
        return 1
    fi
    left=0
    while read -r path; do
        [ -e "$path" ] || [ -L "$path" ] || continue
        grep -qxF "$path" "$work/existed-before" && continue
        echo "left behind: $path"
        left=$((left + 1))
    done <"$work/dpkg-L"
    [ "$left" = 0 ] || return 1
    echo "purged: none of the $(wc -l <"$work/dpkg-L") installed paths is left"
}

# --- RPM ---------------------------------------------------------------------

build_rpm() {
    top=$work/rpm
    mkdir -p "$top/SOURCES"
    cp "$work/sessreap-$version.tar.gz" "$top/SOURCES/"
    # Debian cannot satisfy the RPM BuildRequires (they are not RPM
    # packages here), so --nodeps; the Debian packages installed above
    # provide the same things. Debian's rpm runs brp-compress with /bin/sh,
    # which is dash there, and it needs bash (read -d), so the man pages
    # would stay uncompressed: the same post-install steps, under bash.
    post="bash /usr/lib/rpm/brp-compress %{_prefix}; /usr/lib/rpm/brp-elfperms;"
    post="$post /usr/lib/rpm/brp-strip /usr/bin/strip;"
    post="$post /usr/lib/rpm/brp-strip-comment-note /usr/bin/strip /usr/bin/objdump"
    rpmbuild -bb --nodeps --define "_topdir $top" --define "__os_install_post $post" \
        --define "packager sessreap developers <sessreap@example.invalid>" \
        "$tree/packaging/rpm/sessreap.spec" >"$work/rpm-build.log" 2>&1 ||
        { tail -n 60 "$work/rpm-build.log"; return 1; }
    grep -E "tests passed|tests failed" "$work/rpm-build.log" || true
    find "$top/RPMS" -name '*.rpm' | sort | tee "$work/rpms"
    for name in sessreap sessreap-devel; do
        grep -q "/$name-$version-" "$work/rpms" || { echo "no $name RPM"; return 1; }
    done
    for rpm in $(grep -v debug "$work/rpms"); do
        echo "$(basename "$rpm"):"
        rpm -qlp "$rpm" | sed 's/^/  /'
    done
}

run_rpmlint() {
    command -v rpmlint >/dev/null || { echo "rpmlint is not installed: skipped"; return 0; }
    # Errors fail; warnings are printed (no URL, for one). rpmlint.toml
    # says why each of its exceptions is there.
    # shellcheck disable=SC2046 # a list of file names
    rpmlint -c "$tree/packaging/rpm/rpmlint.toml" \
        "$tree/packaging/rpm/sessreap.spec" $(grep -v debug "$work/rpms") \
        >"$work/rpmlint.log" 2>&1 || true
    cat "$work/rpmlint.log"
    ! grep -q ": E: " "$work/rpmlint.log"
}

# --- Main --------------------------------------------------------------------

copy_out() {
    [ -n "${SESSREAP_PKG_OUT:-}" ] || return 0
    mkdir -p "$SESSREAP_PKG_OUT"
    find "$work/src" "$work/rpm" -maxdepth 3 \( -name '*.deb' -o -name '*.rpm' \) \
        -exec cp -t "$SESSREAP_PKG_OUT" {} + 2>/dev/null || true
    say "packages copied to $SESSREAP_PKG_OUT"
}

say "sessreap $version packaging test ($mode) in $work"
step copy-source copy_source
step install-tools install_tools
if [ "$mode" != rpm ]; then
    step purge-old purge_old
    step deb-build build_deb
    step lintian run_lintian
    step install install_debs
    step smoke-test smoke_test
    step purge purge_debs
fi
if [ "$mode" != deb ]; then
    step rpm-build build_rpm
    step rpmlint run_rpmlint
fi
copy_out
