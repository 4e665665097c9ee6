#!/usr/bin/env bash
# Fetch a real Sendmail for tests/harness/sendmail_lab.py WITHOUT installing it.
#
# Debian's sendmail-bin conflicts with postfix (both provide
# mail-transport-agent), and the tests need Postfix installed, so the Sendmail
# packages are only downloaded with `apt-get download` (Debian's own apt
# sources, nothing else) and unpacked with `dpkg-deb -x` into
#   ${MCPF_SENDMAIL_DIR:-$HOME/.cache/mcp-forensics/sendmail}/root
# Nothing is installed, no maintainer script runs, /etc is not touched.
#
#   sendmail-bin   the sendmail binary (/usr/libexec/sendmail/sendmail), makemap
#   sendmail-base  its companion files
#   sendmail-cf    the m4 macros that build a sendmail.cf from a .mc file
#   m4             GNU m4, to run those macros (a Postfix machine lacks it)
#   libwrap0       a library sendmail links (TCP wrappers) that a Postfix
#                  machine lacks
#
# The sendmail binary is unpacked setgid smmsp/mail; the copy here has that
# bit removed (the lab runs it as root, and a set-id exec would drop
# LD_LIBRARY_PATH, which finds libwrap0 here).
#
# Idempotent: when the tree is there and the binary runs, it does nothing
# (MCPF_SENDMAIL_REFRESH=1 downloads again). Exit status non-zero on failure.
set -euo pipefail

dest="${MCPF_SENDMAIL_DIR:-$HOME/.cache/mcp-forensics/sendmail}"
pkgs=(sendmail-bin sendmail-base sendmail-cf m4 libwrap0)

say() { echo "install_sendmail: $*" >&2; }
die() { echo "install_sendmail: error: $*" >&2; exit 1; }

for tool in apt-get apt-cache dpkg-deb ldd; do
  command -v "$tool" >/dev/null 2>&1 || die "'$tool' not found (this script needs a Debian system with apt)"
done

SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"

# Build a minimal sendmail.cf with the unpacked m4 and macros, and have the
# unpacked sendmail read it in address test mode: prints the version line.
check_tree() { # $1 = tree root; fails if m4, the macros or sendmail do not work
  local root="$1" sm="$1/usr/libexec/sendmail/sendmail" m4="$1/usr/bin/m4"
  local cfdir="$1/usr/share/sendmail/cf" libdir
  [ -x "$sm" ] && [ -x "$m4" ] && [ -f "$cfdir/m4/cf.m4" ] || return 1
  libdir=$(dirname "$(ls "$root"/usr/lib/*/libwrap.so.0 2>/dev/null | head -n1)")
  [ -n "$libdir" ] && [ "$libdir" != . ] || return 1
  if LD_LIBRARY_PATH="$libdir" ldd "$sm" | grep -q 'not found'; then
    LD_LIBRARY_PATH="$libdir" ldd "$sm" | grep 'not found' >&2
    return 1
  fi
  local t out rc=0; t=$(mktemp -d)
  printf "include(\`%s/m4/cf.m4')dnl\nOSTYPE(\`linux')dnl\ndefine(\`confDOMAIN_NAME', \`check.lab.example')dnl\ndefine(\`confSERVICE_SWITCH_FILE', \`%s/switch')dnl\nFEATURE(\`nocanonify')dnl\nMAILER(\`smtp')dnl\n" \
    "$cfdir" "$t" >"$t/check.mc"
  echo 'hosts files' >"$t/switch"
  if ! "$m4" "$t/check.mc" >"$t/check.cf" 2>"$t/m4.err"; then
    cat "$t/m4.err" >&2; rm -rf "$t"; return 1
  fi
  # Sendmail qualifies its host name at start-up; on a machine whose name is
  # not in /etc/hosts that is a DNS lookup (a minute when no server answers).
  # As root, run it as the lab does: a private host name and hosts/resolver
  # files in a private mount namespace, so no DNS query leaves the machine.
  local -a wrap=()
  if [ "$(id -u)" -eq 0 ] && command -v unshare >/dev/null 2>&1; then
    printf '127.0.0.1\tlocalhost check.lab.example check\n' >"$t/hosts"
    printf 'nameserver 127.0.0.1\n' >"$t/resolv.conf"
    printf 'passwd: files\ngroup: files\nhosts: files\n' >"$t/nsswitch.conf"
    wrap=(unshare --mount --uts --propagation private sh -c \
      "hostname check.lab.example && mount --bind '$t/hosts' /etc/hosts && mount --bind '$t/resolv.conf' /etc/resolv.conf && mount --bind '$t/nsswitch.conf' /etc/nsswitch.conf && exec \"\$@\"" sh)
  fi
  out=$(LD_LIBRARY_PATH="$libdir" "${wrap[@]}" "$sm" -C "$t/check.cf" -d0.1 -bt </dev/null 2>&1) || rc=$?
  rm -rf "$t"
  [ "$rc" -eq 0 ] || { echo "$out" >&2; return 1; }
  echo "$out" | grep -m1 '^Version ' | sed 's/^/Sendmail /' || { echo "$out" >&2; return 1; }
}

if [ "${MCPF_SENDMAIL_REFRESH:-0}" != "1" ] && [ -f "$dest/VERSIONS" ] && version=$(check_tree "$dest/root" 2>/dev/null); then
  say "already in $dest ($version); nothing to do (MCPF_SENDMAIL_REFRESH=1 to download again)"
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
find "$work/root" -type f -perm /6000 -exec chmod ug-s {} + || die "could not clear setuid/setgid bits"

version=$(check_tree "$work/root") || die "the unpacked sendmail (or m4 and the sendmail-cf macros) does not run (missing library? see above)"

rm -rf "$dest/root" "$dest/debs"
mv "$work/root" "$dest/root"
mv "$work/debs" "$dest/debs"
mv "$work/VERSIONS" "$dest/VERSIONS"
say "installed into $dest: $version"
sed 's/^/install_sendmail:   /' "$dest/VERSIONS" >&2
