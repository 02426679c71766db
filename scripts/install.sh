#!/usr/bin/env bash
# Installs pgpool and kvproxy as services: the binaries, systemd units, logrotate
# files, /etc/default files and default configurations (configurations and
# /etc/default files only where none exist yet, so an upgrade keeps yours).
#
#   scripts/install.sh [--prefix /usr] [--destdir DIR] [--sysconfdir /etc]
#                      [--unitdir PREFIX/lib/systemd/system] [--binaries DIR]
#
# --binaries takes prebuilt pgpool and kvproxy from DIR; without it they are built
# with go. With --destdir everything goes under DIR (a staging tree: no users are
# created and systemd is not told). Otherwise, as root, it creates the system users
# postgres and nutcracker if missing and runs systemctl daemon-reload; it never
# enables or starts a service.
set -euo pipefail

prefix=/usr
destdir=
sysconfdir=/etc
unitdir=
binaries=

usage() { sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; }
while (($#)); do
  case "$1" in
    --prefix) prefix=$2; shift 2 ;;
    --prefix=*) prefix=${1#*=}; shift ;;
    --destdir) destdir=$2; shift 2 ;;
    --destdir=*) destdir=${1#*=}; shift ;;
    --sysconfdir) sysconfdir=$2; shift 2 ;;
    --sysconfdir=*) sysconfdir=${1#*=}; shift ;;
    --unitdir) unitdir=$2; shift 2 ;;
    --unitdir=*) unitdir=${1#*=}; shift ;;
    --binaries) binaries=$2; shift 2 ;;
    --binaries=*) binaries=${1#*=}; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "install.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
  esac
done
destdir=${destdir:-${DESTDIR:-}}
unitdir=${unitdir:-$prefix/lib/systemd/system}
sbindir=$prefix/sbin

root=$(cd "$(dirname "$0")/.." && pwd)
pkg=$root/packaging

if [ -z "$binaries" ]; then
  binaries=$(mktemp -d)
  trap 'rm -rf "$binaries"' EXIT
  (cd "$root" && go build -o "$binaries/pgpool" ./cmd/pgpool && go build -o "$binaries/kvproxy" ./cmd/kvproxy)
fi
for b in pgpool kvproxy; do
  [ -x "$binaries/$b" ] || { echo "install.sh: $binaries/$b: no such executable" >&2; exit 1; }
done

# keep FILE DEST MODE: install FILE as DEST unless DEST exists.
keep() {
  if [ -e "$destdir$2" ]; then
    echo "install.sh: keeping $2"
  else
    install -D -m "$3" "$1" "$destdir$2"
  fi
}

install -d "$destdir$sbindir" "$destdir$unitdir" "$destdir$sysconfdir/logrotate.d"
install -m 0755 "$binaries/pgpool" "$destdir$sbindir/pgpool"
install -m 0755 "$binaries/kvproxy" "$destdir$sbindir/kvproxy"
for u in pgpool kvproxy; do
  sed -e "s|@SBINDIR@|$sbindir|g" -e "s|/etc/|$sysconfdir/|g" "$pkg/systemd/$u.service" > "$destdir$unitdir/$u.service"
  chmod 0644 "$destdir$unitdir/$u.service"
  install -m 0644 "$pkg/logrotate/$u" "$destdir$sysconfdir/logrotate.d/$u"
done
keep "$pkg/default/pgpool" "$sysconfdir/default/pgpool" 0644
keep "$pkg/default/kvproxy" "$sysconfdir/default/kvproxy" 0644
keep "$pkg/config/pgbouncer.ini" "$sysconfdir/pgpool/pgbouncer.ini" 0644
keep "$pkg/config/userlist.txt" "$sysconfdir/pgpool/userlist.txt" 0640
keep "$pkg/config/nutcracker.yml" "$sysconfdir/nutcracker/nutcracker.yml" 0644

if [ -z "$destdir" ] && [ "$(id -u)" -eq 0 ]; then
  id postgres >/dev/null 2>&1 ||
    useradd --system --home-dir /var/lib/postgresql --no-create-home --shell /bin/bash postgres
  id nutcracker >/dev/null 2>&1 ||
    useradd --system --user-group --home-dir /nonexistent --no-create-home --shell /usr/sbin/nologin nutcracker
  chgrp postgres "$sysconfdir/pgpool/userlist.txt" || true
  if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
    systemctl daemon-reload
  fi
fi
echo "install.sh: installed pgpool and kvproxy under ${destdir:-/}$prefix"
