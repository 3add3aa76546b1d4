#!/usr/bin/env bash
# The system parts the labs use, read from labkit/system_parts.tsv (rows whose install is "book").
# As root on Debian/Ubuntu they are installed with apt-get and the Docker Engine is started;
# anywhere else this script only says what is missing, and the labs fall back to what the host
# has (and say so in their output). `labkit doctor` reports the same rows.
set -u
cd "$(dirname "$0")/.." || exit 1
MANIFEST=labkit/system_parts.tsv

#   bash scripts/setup-system.sh            install what is missing (as root), else say what is
#   bash scripts/setup-system.sh --missing  only print the missing packages, one line
# LABKIT_HIDE_PARTS=book (or a list of programs) counts those as missing, as labkit does.

# present PROGRAM ALSO: a name on PATH, or an absolute path (globs allowed), or one of ALSO
present() {
  local c hide=",${LABKIT_HIDE_PARTS:-},"
  [[ $hide == *,book,* || $hide == *",$1,"* || $hide == *",${1##*/},"* ]] && return 1
  for c in "$1" ${2//,/ }; do
    [ "$c" = - ] && continue
    if [[ $c == /* ]]; then compgen -G "$c" >/dev/null && return 0
    else command -v "$c" >/dev/null 2>&1 && return 0; fi
  done
  return 1
}

missing=()
while IFS=$'\t' read -r program package install _doctor _labs also _without; do
  [[ $program == \#* || $program == program || $install != book ]] && continue
  present "$program" "$also" && continue
  [[ " ${missing[*]-} " == *" $package "* ]] || missing+=("$package")
done < "$MANIFEST"

if [ "${1:-}" = --missing ]; then
  echo "${missing[*]-}"
  exit 0
fi

if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "system: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || {
      echo "system: apt-get could not install everything; the labs will use fallbacks"; }
  else
    echo "system: not installed: ${missing[*]}"
    echo "system: (run 'sudo make setup' on Debian/Ubuntu to install them; the labs fall back"
    echo "system:  to what this host has and say which runtime really ran; 'labkit doctor' says which)"
  fi
fi

# Start the Docker Engine when we may and it is not running yet.
if [ "$(id -u)" = 0 ] && command -v dockerd >/dev/null 2>&1 && ! docker info >/dev/null 2>&1; then
  echo "system: starting dockerd"
  nohup dockerd >/var/log/labkit-dockerd.log 2>&1 &
  for _ in $(seq 1 50); do
    [ -S /var/run/docker.sock ] && docker info >/dev/null 2>&1 && break
    sleep 0.2
  done
fi
exit 0
