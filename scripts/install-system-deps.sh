#!/usr/bin/env bash
# Install what Cypher needs from the system when it is missing, and nothing when it is all there:
# Python's venv module (for $PYTHON, default python3), Node.js with npm, and the library libopaque.so.0 (libopaque 1.0.x);
# with --test-tools, Debian's chromium, nginx and openssl for the tests that run them.
#
# Debian 13 and recent Ubuntu releases ship libopaque0 in their own archive. Debian 12 does not:
# there we add the Debian 13 suite of the archive the machine already uses (read from its apt
# sources, so no mirror is hard-coded) with a low pin, so that only libopaque0 comes from it.
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive
is_root() { [ "$(id -u)" -eq 0 ]; }
apt_updated=no
apt_install() {
    if ! is_root; then
        echo "Missing: $*. Install it as root (apt-get install $*), then run make again." >&2
        exit 1
    fi
    [ "$apt_updated" = yes ] || { apt-get update -qq; apt_updated=yes; }
    apt-get install -y -qq "$@"
}

if [ "${1:-}" = "--test-tools" ]; then
    # For the tests that run the real thing: Debian's Chromium (Playwright drives
    # /usr/bin/chromium) and nginx with openssl (the TLS + auth_request test).
    missing=()
    command -v chromium >/dev/null 2>&1 || missing+=(chromium)
    [ -x /usr/sbin/nginx ] || missing+=(nginx-light)
    command -v openssl >/dev/null 2>&1 || missing+=(openssl)
    [ ${#missing[@]} -eq 0 ] && exit 0
    if is_root; then
        apt_install "${missing[@]}"
        # Installing nginx starts the distribution's own server on port 80; the tests start theirs.
        if command -v service >/dev/null 2>&1; then service nginx stop >/dev/null 2>&1 || true; fi
    else
        echo "Missing ${missing[*]}: their tests will be skipped (as root: apt-get install ${missing[*]})." >&2
    fi
    exit 0
fi

"${PYTHON:-python3}" -c 'import venv, ensurepip' 2>/dev/null || apt_install python3-venv
command -v npm >/dev/null 2>&1 || apt_install nodejs npm

if ldconfig -p 2>/dev/null | grep -q 'libopaque\.so\.0 '; then
    version=$(dpkg-query -W -f='${Version}' libopaque0 2>/dev/null || echo unknown)
    case "$version" in
        0.*) echo "libopaque0 $version is installed, but Cypher needs 1.0.x: upgrade it (apt-get install libopaque0)." >&2; exit 1 ;;
    esac
    exit 0
fi

if ! is_root; then
    cat >&2 <<'MSG'
libopaque.so.0 is missing and this is not root.
Install libopaque 1.0.x as root, then run make again:
  Debian 13 / Ubuntu 24.04 or newer:  apt-get install libopaque0
  Debian 12:                          run this script as root, or see README.md ("libopaque on Debian 12")
MSG
    exit 1
fi

[ "$apt_updated" = yes ] || apt-get update -qq
if apt-cache policy libopaque0 2>/dev/null | grep -q 'Candidate: [0-9]'; then
    apt-get install -y -qq libopaque0
    exit 0
fi

. /etc/os-release
if [ "${ID:-}" != debian ]; then
    echo "libopaque0 is not in this system's archive ($PRETTY_NAME); install libopaque 1.0.x by hand." >&2
    exit 1
fi

# The archive's address, as this machine's own apt sources name it.
archive=$( (cat /etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list 2>/dev/null || true) \
    | grep -oE '^(URIs:[[:space:]]*|deb[[:space:]]+(\[[^]]*\][[:space:]]+)?)[^[:space:]]+' \
    | awk '{print $NF}' | grep -E '/debian/?$' | head -n 1 || true)
if [ -z "$archive" ]; then
    echo "Could not find a Debian archive in /etc/apt/sources*; install libopaque0 1.0.x from Debian 13 by hand." >&2
    exit 1
fi

echo "Adding the Debian 13 (trixie) suite of $archive with a low pin, for libopaque0 only."
cat > /etc/apt/sources.list.d/cypher-trixie.sources <<SRC
Types: deb
URIs: $archive
Suites: trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
cat > /etc/apt/preferences.d/cypher-trixie <<'PIN'
# Nothing comes from trixie unless asked for by name (apt-get install -t trixie ...).
Package: *
Pin: release n=trixie
Pin-Priority: 100
PIN
apt-get update -qq
apt-get install -y -qq -t trixie libopaque0
