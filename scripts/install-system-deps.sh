#!/bin/sh
# Installs the Debian packages accelsim's emulation tests need (qemu-user for qemu-aarch64 and
# qemu-hexagon, the AArch64 cross compiler and glibc, clang/lld/llvm 19 for Hexagon and llvm-mca).
#
# Idempotent and non-interactive: does nothing when every package is installed; installs the missing
# ones with apt-get as root (or through sudo -n); when it cannot (no root, no sudo, no network, not
# Debian) it prints a warning and still exits 0, because the tests then skip with a reason.
# Prints one line saying what it did.

PACKAGES="qemu-user gcc-aarch64-linux-gnu libc6-dev-arm64-cross clang-19 lld-19 llvm-19 chromium"

missing=""
for pkg in $PACKAGES; do
    status=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null)
    if [ "$status" != "installed" ]; then
        missing="$missing $pkg"
    fi
done
missing=${missing# }

if [ -z "$missing" ]; then
    echo "install-system-deps: all present ($PACKAGES)"
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-system-deps: WARNING: missing $missing and no apt-get here; install them by hand (emulation tests will skip)" >&2
    exit 0
fi

if [ "$(id -u)" = "0" ]; then
    SUDO=""
elif command -v sudo >/dev/null 2>&1 && sudo -n true >/dev/null 2>&1; then
    SUDO="sudo -n"
else
    echo "install-system-deps: WARNING: missing $missing; not root and no password-less sudo, so nothing was installed (emulation tests will skip)" >&2
    exit 0
fi

log=$(mktemp "${TMPDIR:-/tmp}/install-system-deps.XXXXXX") || log=/dev/null
export DEBIAN_FRONTEND=noninteractive
# shellcheck disable=SC2086  # $SUDO and $missing are word lists on purpose
if $SUDO apt-get update -q >"$log" 2>&1 \
   && $SUDO apt-get install -y -q --no-install-recommends $missing >>"$log" 2>&1; then
    echo "install-system-deps: installed $missing"
    [ "$log" != /dev/null ] && rm -f "$log"
    exit 0
fi
echo "install-system-deps: WARNING: could not install $missing (apt-get failed: no network or package not in the configured suites; log: $log); emulation tests will skip" >&2
exit 0
