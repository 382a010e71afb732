#!/usr/bin/env bash
# Installs the Debian packages Banyan's tests run for real (idempotent, quiet).
#   prometheus  the real Prometheus and promtool of the system tests
#   prometheus-node-exporter  the reference the agent's collectors are compared with
#   prometheus-pushgateway    the reference the node's push API is compared with
#   prometheus-alertmanager   where the roots' alerts go (events)
#   graphviz    dot draws the picture that `banyan topology render --format dot` prints
#   chromium    renders `banyan bench --plot out.png` (a headless screenshot of the HTML plot)
#   victoria-metrics  a second remote_write receiver (test/system/remote-write-victoriametrics.test.ts)
#   slurm-wlm, munge  a one-node Slurm whose prolog and epilog run deploy/slurm/* (test/serial/slurm.test.ts)
#   slurmdbd, mariadb-server  its accounting, where a job's AdminComment and sacct/sreport live
#               (test/serial/job-card.test.ts)
#   rpm, cpio   rpmbuild makes the .rpm of `npm run package`; rpm2cpio and cpio unpack it in its test
#   tzdata      the zone files the agent names its zone from, as node_exporter does (time-zone test)
#   iproute2, nftables  the emulated hosts of `banyan bench --hosts netns` (namespaces, a bridge, tc) and
#               their faults (nftables bridge rules: partitions, loss) (test/serial/lab.test.ts)
#   iptables, gcc, libnetfilter-queue-dev  the bench's `latency` scenario (NFQUEUE and the small
#               delayer it compiles); faketime  its `skew` scenario (a node's clock ±30 s)
#   debootstrap, systemd-container  the systemd test (test/serial/systemd.test.ts): a Debian root file
#               system booted with systemd-nspawn; systemd-container at the installed systemd's own
#               version (a newer one would upgrade the machine's systemd)
#   openssl     crafted certificates of the tree TLS name checks (test/unit/wire/certificate-names.test.ts)
# Nothing is started: tests start each program themselves on 127.0.0.1 and stop it by PID.
set -euo pipefail

PACKAGES=(prometheus prometheus-node-exporter prometheus-pushgateway prometheus-alertmanager graphviz chromium victoria-metrics slurm-wlm munge slurmdbd mariadb-server rpm cpio tzdata iproute2 nftables iptables gcc libnetfilter-queue-dev faketime debootstrap systemd-container openssl)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "system deps: all present (${PACKAGES[*]})"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "system deps: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
  SUDO="sudo"
fi
echo "system deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >/dev/null
# systemd-container must match the systemd installed (the same source package): installed on its own,
# pinned, so that a version missing from the index fails that one package with a clear line, not all.
others=()
container=""
for p in "${missing[@]}"; do
  if [ "$p" = systemd-container ]; then container=yes; else others+=("$p"); fi
done
if [ ${#others[@]} -gt 0 ]; then
  $SUDO apt-get install -y -qq --no-install-recommends "${others[@]}" >/dev/null
fi
if [ -n "$container" ]; then
  systemd_version=$(dpkg-query -W -f='${Version}' systemd 2>/dev/null || true)
  if [ -z "$systemd_version" ]; then
    echo "system deps: systemd is not installed; the systemd test needs it and systemd-container at its version" >&2
    exit 1
  fi
  if ! $SUDO apt-get install -y -qq --no-install-recommends "systemd-container=$systemd_version" >/dev/null; then
    echo "system deps: systemd-container=$systemd_version (the installed systemd's version) is not in the package index: the systemd test needs it (a newer one would upgrade this machine's systemd)" >&2
    exit 1
  fi
fi
echo "system deps: installed ${missing[*]}"
