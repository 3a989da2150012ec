# Shared by packaging/install-server and packaging/install-terminal (sourced, not run).
# docs/install.md says what the installers do; this file holds how:
#   - every change to the machine goes through act/put_file/put_text, which in --dry-run
#     print one "would: ..." line each and change nothing (reads and checks still run, so
#     the dry run shows what this machine would get, e.g. "skip: user pos exists");
#   - the platform is read from /etc/os-release, /etc/rpi-issue and dpkg, each overridable
#     for tests: POS_INSTALL_OS_RELEASE, POS_INSTALL_RPI_ISSUE, POS_INSTALL_ARCH.
# Exit codes: 0 done, 1 a step failed, 2 usage, unsupported platform or not root.
# shellcheck shell=bash disable=SC2034,SC2154  # (variables shared with the scripts)

set -euo pipefail

POS_USER=pos
POS_PREFIX=/opt/pos            # the venv: /opt/pos/.venv (the systemd units run from it)
POS_ETC=/etc/pos               # settings and secrets, 0640 root:pos
POS_VAR=/var/lib/pos           # databases
POS_BACKUPS=/var/backups/pos   # pos-backup.service writes here
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dry_run=0
wheel=""

say() { echo "$prog: $*" >&2; }
die() { say "$1"; exit "${2:-1}"; }

act() {  # a command that changes the machine
  if [ "$dry_run" -eq 1 ]; then
    echo "would: $*"
  else
    echo "+ $*" >&2
    "$@"
  fi
}

skip() { echo "skip: $*"; }

put_file() {  # put_file SRC DEST MODE [OWNER:GROUP]: install a file shipped in packaging/
  local src=$1 dest=$2 mode=$3 owner=${4:-root:root}
  [ -f "$here/$src" ] || die "missing $src in $here (a checkout or the release's sdist)"
  act install -D -m "$mode" -o "${owner%%:*}" -g "${owner##*:}" "$here/$src" "$dest"
}

put_text() {  # put_text DEST MODE OWNER:GROUP SUMMARY <<< TEXT: write a generated file
  local dest=$1 mode=$2 owner=$3 summary=$4 text
  text=$(cat)
  if [ "$dry_run" -eq 1 ]; then
    echo "would: write $dest (mode $mode, $owner): $summary"
    return 0
  fi
  echo "+ write $dest ($summary)" >&2
  install -d -m 0755 "$(dirname "$dest")"
  local tmp
  tmp=$(mktemp "$dest.XXXXXX")
  printf '%s\n' "$text" >"$tmp"
  chown "$owner" "$tmp"
  chmod "$mode" "$tmp"
  mv "$tmp" "$dest"
}

detect_platform() {
  # Sets os_name (for messages) and arch; refuses, with exit 2, what the installers do not
  # support. PySide6-Essentials (the till's Qt, a dependency of the wheel) publishes arm64
  # wheels for glibc 2.39 and newer only, so an arm64 machine needs a Debian 13 base
  # (Raspberry Pi OS 13 "trixie"); Debian 12's glibc is 2.36.
  local release=${POS_INSTALL_OS_RELEASE:-/etc/os-release}
  local rpi_issue=${POS_INSTALL_RPI_ISSUE:-/etc/rpi-issue}
  arch=${POS_INSTALL_ARCH:-$(dpkg --print-architecture 2>/dev/null || uname -m)}
  [ -r "$release" ] || die "cannot read $release: not a Debian system" 2
  local id version
  # shellcheck source=/dev/null
  id=$(. "$release" && echo "${ID:-}")
  # shellcheck source=/dev/null
  version=$(. "$release" && echo "${VERSION_ID:-}")
  if [ -e "$rpi_issue" ] || [ "$id" = raspbian ]; then
    os_name="Raspberry Pi OS $version"
  else
    os_name="${id^} $version"
  fi
  case "$id" in
    debian|raspbian) ;;
    *) die "unsupported system: $os_name ($arch); supported: Debian 12 (amd64), Debian 13 and Raspberry Pi OS 13 (amd64, arm64)" 2 ;;
  esac
  case "$arch" in
    amd64|x86_64) arch=amd64 ;;
    arm64|aarch64) arch=arm64 ;;
    *) die "unsupported architecture $arch on $os_name; supported: amd64 and arm64 (64-bit Raspberry Pi OS, not the 32-bit armhf one)" 2 ;;
  esac
  case "$version:$arch" in
    12:amd64|13:amd64|13:arm64) ;;
    12:arm64) die "unsupported system: $os_name on arm64; the till's Qt (PySide6) has arm64 wheels for glibc 2.39+ only: install Raspberry Pi OS 13 (trixie) or Debian 13" 2 ;;
    *) die "unsupported system: $os_name ($arch); supported: Debian 12 (amd64), Debian 13 and Raspberry Pi OS 13 (amd64, arm64)" 2 ;;
  esac
  say "installing on $os_name ($arch)"
}

need_root() {
  if [ "$dry_run" -eq 0 ] && [ "$(id -u)" -ne 0 ]; then
    die "run as root (sudo $prog ...), or add --dry-run to see what it would do" 2
  fi
}

find_wheel() {  # the wheel to install: --wheel, else the newest one packaging/build-release made
  if [ -z "$wheel" ]; then
    # shellcheck disable=SC2012  # our own file names: no spaces or newlines
    wheel=$(ls -1t "$here"/dist/cafeteria_pos-*-py3-none-any.whl 2>/dev/null | head -n1 || true)
  fi
  if [ -z "$wheel" ] || [ ! -f "$wheel" ]; then
    if [ "$dry_run" -eq 1 ]; then
      wheel=${wheel:-"$here/dist/cafeteria_pos-<version>-py3-none-any.whl"}
      say "no wheel at $wheel yet (packaging/build-release makes it)"
    else
      die "no wheel to install: run packaging/build-release first, or pass --wheel FILE" 2
    fi
  fi
}

apt_install() {
  act apt-get update
  act env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@"
}

ensure_dirs() {  # ensure_dirs MODE OWNER:GROUP DIR...
  local mode=$1 owner=$2
  shift 2
  local d
  for d in "$@"; do
    act install -d -m "$mode" -o "${owner%%:*}" -g "${owner##*:}" "$d"
  done
}

install_venv() {  # install_venv REQUIREMENT: the venv the units run from, the wheel inside
  if [ -x "$POS_PREFIX/.venv/bin/python" ]; then
    skip "venv $POS_PREFIX/.venv exists (upgrading the package in it)"
  else
    act python3 -m venv "$POS_PREFIX/.venv"
  fi
  act "$POS_PREFIX/.venv/bin/pip" install --disable-pip-version-check --upgrade "$1"
}

parse_common() {  # parse_common "$@": sets dry_run, wheel; leaves the rest in rest_args
  rest_args=()
  while [ $# -gt 0 ]; do
    case "$1" in
      --dry-run) dry_run=1; shift ;;
      --wheel) wheel=${2:?--wheel needs a file}; shift 2 ;;
      -h|--help) usage; exit 0 ;;
      *) rest_args+=("$1"); shift ;;
    esac
  done
}
