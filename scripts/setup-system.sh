#!/usr/bin/env bash
# The system parts the labs use. As root on Debian/Ubuntu they are installed with apt-get and
# the Docker Engine is started; anywhere else this script only says what is missing, and the
# labs fall back to what the host has (and say so in their output).
set -u
PKGS="docker.io runc crun busybox-static etcd-server containernetworking-plugins graphviz chromium iproute2 iptables kmod fonts-wqy-microhei"
declare -A BIN=([docker.io]=dockerd [runc]=runc [crun]=crun [busybox-static]=busybox [etcd-server]=etcd
  [containernetworking-plugins]=/usr/lib/cni/bridge [graphviz]=dot [chromium]=chromium [iproute2]=ip
  [iptables]=iptables [kmod]=modprobe
  [fonts-wqy-microhei]=/usr/share/fonts/truetype/wqy/wqy-microhei.ttc)  # the glossary's Chinese in Chromium

missing=()
for p in $PKGS; do
  b=${BIN[$p]}
  if [[ $b == /* ]]; then [ -e "$b" ] || missing+=("$p"); else command -v "$b" >/dev/null 2>&1 || missing+=("$p"); fi
done

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
    echo "system:  to what this host has and say which runtime really ran)"
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
