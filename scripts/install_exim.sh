#!/usr/bin/env bash
# Fetch a real Exim for tests/harness/exim_lab.py WITHOUT installing it.
#
# Debian's exim4-daemon-light conflicts with postfix (both provide
# mail-transport-agent), and the tests need Postfix installed, so the Exim
# packages are only downloaded with `apt-get download` (Debian's own apt
# sources, nothing else) and unpacked with `dpkg-deb -x` into
#   ${MCPF_EXIM_DIR:-$HOME/.cache/mcp-forensics/exim}/root
# Nothing is installed, no maintainer script runs, /etc is not touched.
#
#   exim4-daemon-light  the exim4 binary
#   exim4-base          its companion tools (exim_dumpdb, exigrep, eximstats...)
#   libidn12            a library exim4 links that a Postfix machine lacks
#   libnss-wrapper      exim4 looks up its compiled-in user "Debian-exim" before
#                       reading any configuration; the lab gives it a private
#                       passwd/group through nss_wrapper instead of adding a
#                       user to /etc/passwd
#
# The exim4 binary is unpacked setuid root; the copy here has that bit removed
# (the lab runs it as root, and a setuid exec would drop LD_LIBRARY_PATH and
# LD_PRELOAD in Exim's own re-executions).
#
# Idempotent: when the tree is there and the binary runs, it does nothing
# (MCPF_EXIM_REFRESH=1 downloads again). Exit status non-zero on failure.
set -euo pipefail

dest="${MCPF_EXIM_DIR:-$HOME/.cache/mcp-forensics/exim}"
pkgs=(exim4-daemon-light exim4-base libidn12 libnss-wrapper)

say() { echo "install_exim: $*" >&2; }
die() { echo "install_exim: error: $*" >&2; exit 1; }

for tool in apt-get apt-cache dpkg-deb ldd; do
  command -v "$tool" >/dev/null 2>&1 || die "'$tool' not found (this script needs a Debian system with apt)"
done

SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"

# Run the unpacked exim4 the way the lab does: its libraries, and a passwd
# that knows its compiled-in user.
check_tree() { # $1 = tree root; prints the version line, fails if it does not run
  local root="$1" exim="$1/usr/sbin/exim4" libdir nss
  [ -x "$exim" ] || return 1
  nss=$(ls "$root"/usr/lib/*/libnss_wrapper.so 2>/dev/null | head -n1) || true
  [ -n "$nss" ] || return 1
  libdir=$(dirname "$nss")
  if LD_LIBRARY_PATH="$libdir" ldd "$exim" | grep -q 'not found'; then
    LD_LIBRARY_PATH="$libdir" ldd "$exim" | grep 'not found' >&2
    return 1
  fi
  local t; t=$(mktemp -d)
  printf 'root:x:0:0:root:/root:/bin/sh\nDebian-exim:x:60999:60999::/nonexistent:/usr/sbin/nologin\n' >"$t/passwd"
  printf 'root:x:0:\nDebian-exim:x:60999:\n' >"$t/group"
  local out rc=0
  out=$(LD_LIBRARY_PATH="$libdir" LD_PRELOAD="$nss" NSS_WRAPPER_PASSWD="$t/passwd" NSS_WRAPPER_GROUP="$t/group" \
        "$exim" -C /dev/null -bV 2>&1) || rc=$?
  rm -rf "$t"
  [ "$rc" -eq 0 ] || { echo "$out" >&2; return 1; }
  echo "$out" | grep -m1 '^Exim version' || { echo "$out" >&2; return 1; }
}

if [ "${MCPF_EXIM_REFRESH:-0}" != "1" ] && [ -f "$dest/VERSIONS" ] && version=$(check_tree "$dest/root" 2>/dev/null); then
  say "already in $dest ($version); nothing to do (MCPF_EXIM_REFRESH=1 to download again)"
  exit 0
fi

mkdir -p "$dest"
# Download into a temporary directory (apt-get download runs its fetcher as
# _apt when it can: let it write there; $dest may be under a 0700 home), and
# assemble the new tree next to the old one, swapped in only once it runs.
dl=$(mktemp -d)
work=$(mktemp -d "$dest/.stage.XXXXXX")
trap 'rm -rf "$dl" "$work"' EXIT
if [ "$(id -u)" -eq 0 ] && id _apt >/dev/null 2>&1; then chown _apt "$dl"; fi

say "downloading ${pkgs[*]} with apt-get download (Debian's apt sources) into $dl"
if ! (cd "$dl" && apt-get download -q "${pkgs[@]}" >&2); then
  say "apt-get download failed; refreshing the package lists (apt-get update) and retrying"
  $SUDO apt-get update -qq >&2 || die "apt-get update failed"
  (cd "$dl" && apt-get download -q "${pkgs[@]}" >&2) || die "apt-get download ${pkgs[*]} failed"
fi

mkdir -p "$work/root" "$work/debs"
: >"$work/VERSIONS"
for p in "${pkgs[@]}"; do
  deb=$(ls "$dl"/"${p}"_*.deb 2>/dev/null | head -n1) || true
  [ -n "$deb" ] || die "no .deb for $p after apt-get download"
  v=$(dpkg-deb -f "$deb" Version)
  a=$(dpkg-deb -f "$deb" Architecture)
  say "unpacking $p $v ($a) with dpkg-deb -x"
  dpkg-deb -x "$deb" "$work/root" || die "dpkg-deb -x $deb failed"
  echo "$p $v $a" >>"$work/VERSIONS"
  mv "$deb" "$work/debs/"
done

# No setuid/setgid files in a cache directory (see the header).
find "$work/root" -type f -perm /6000 -exec chmod ug-s {} + || die "could not clear setuid bits"

version=$(check_tree "$work/root") || die "the unpacked exim4 does not run (missing library? see above)"

rm -rf "$dest/root" "$dest/debs"
mv "$work/root" "$dest/root"
mv "$work/debs" "$dest/debs"
mv "$work/VERSIONS" "$dest/VERSIONS"
say "installed into $dest: $version"
sed 's/^/install_exim:   /' "$dest/VERSIONS" >&2
