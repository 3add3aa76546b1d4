#!/usr/bin/env bash
# Fresh-machine check: do what a new Debian machine does with this book, before resolving an
# issue that adds a system part.
#
#   sudo make fresh-check            (or: sudo bash scripts/fresh-check.sh [REPO])
#
# 1. stops the services the book starts (dockerd, containerd, any etcd);
# 2. purges the Debian packages the book installs (the "book" rows of labkit/system_parts.tsv) and
#    what apt installed with them, except a package whose purge would also remove one installed by
#    hand outside that list (it says which);
# 3. clones REPO (default: this checkout's committed HEAD) into a `mktemp -d` folder (mode 0700,
#    so tests that run as another user must not need to read it);
# 4. runs the README's two commands there, `make book` then `make test`, and prints each one's
#    elapsed time and pytest's summary line.
#
# It changes the whole machine: never run it on a machine others are working on.
set -uo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
repo="${1:-$here}"
manifest="$here/labkit/system_parts.tsv"

if [ "$(id -u)" != 0 ]; then
  echo "fresh-check: run it as root (it purges packages and stops services)" >&2
  exit 2
fi
command -v git >/dev/null || { echo "fresh-check: needs git" >&2; exit 2; }

# --- 1. stop what the book started -------------------------------------------------------------
stop() {  # stop NAME: the service, or else every process with exactly that name
  local name=$1 pids
  if command -v systemctl >/dev/null && systemctl is-active --quiet "$name" 2>/dev/null; then
    systemctl stop "$name"
  fi
  pids=$(pidof "$name" 2>/dev/null || true)
  [ -n "$pids" ] || return 0
  echo "fresh-check: stopping $name ($pids)"
  # shellcheck disable=SC2086 # one word per pid
  kill $pids 2>/dev/null || true
  for _ in $(seq 1 50); do pidof "$name" >/dev/null || return 0; sleep 0.2; done
  # shellcheck disable=SC2046 # one word per pid
  kill -9 $(pidof "$name") 2>/dev/null || true
}
for name in dockerd containerd containerd-shim-runc-v2 etcd; do stop "$name"; done
rm -f /var/run/docker.sock /var/run/docker.pid

# --- 2. purge the book's packages ---------------------------------------------------------------
mapfile -t book_pkgs < <(awk -F'\t' '!/^#/ && $1 != "program" && $3 == "book" && $2 != "-" {print $2}' "$manifest" | awk '!seen[$0]++')
auto=" $(apt-mark showauto 2>/dev/null | tr '\n' ' ') "   # dependencies apt installed along the way
purge=()
for pkg in "${book_pkgs[@]}"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || continue
  # what would go with it: the book's own packages and automatically installed ones may
  others=$(apt-get -s purge "$pkg" 2>/dev/null | awk '/^Purg /{print $2}' | while read -r p; do
    [[ " ${book_pkgs[*]} " == *" $p "* || $auto == *" $p "* ]] || echo "$p"; done | tr '\n' ' ')
  if [ -n "$others" ]; then
    echo "fresh-check: keeping $pkg: purging it would also remove $others"
  else
    purge+=("$pkg")
  fi
done
if [ ${#purge[@]} -gt 0 ]; then
  echo "fresh-check: purging ${purge[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq "${purge[@]}" >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get autoremove --purge -y -qq >/dev/null
fi

# --- 3. a clean clone in a folder only root can read --------------------------------------------
work=$(mktemp -d)          # mode 0700
chmod 0700 "$work"
git clone -q "$repo" "$work/book" || { echo "fresh-check: git clone $repo failed" >&2; exit 1; }
echo "fresh-check: cloned $repo ($(git -C "$work/book" rev-parse --short HEAD)) into $work/book"

# --- 4. the README's two commands ---------------------------------------------------------------
# A new Debian 12 has only its own Python (3.11.2): make the venv from it where it is there, so
# the pinned packages are checked against the Python a reader has, not a newer one installed here.
if [ -x /usr/bin/python3 ] && [ -z "${PYTHON:-}" ]; then
  export PYTHON=/usr/bin/python3
  echo "fresh-check: the venv is made from $PYTHON ($($PYTHON --version 2>&1))"
fi
status=0
run() {  # run NAME: make NAME in the clone, timed; its log in $work/NAME.log
  local t0=$SECONDS rc
  (cd "$work/book" && make "$1") >"$work/$1.log" 2>&1
  rc=$?
  printf 'fresh-check: make %-5s exit %d after %d s (log: %s)\n' "$1" "$rc" $((SECONDS - t0)) "$work/$1.log"
  [ "$rc" = 0 ] || { status=1; tail -n 30 "$work/$1.log"; }
  return "$rc"
}
run book && run test
summary=$(grep -E '^=+ .*(passed|failed|error).* =+$' "$work/test.log" 2>/dev/null | tail -n 1)
echo "fresh-check: test summary: ${summary:-(none: make test did not reach pytest)}"
echo "fresh-check: $([ $status = 0 ] && echo PASSED || echo FAILED); the clone stays in $work"
exit $status
