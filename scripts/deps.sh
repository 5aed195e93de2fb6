#!/usr/bin/env bash
# Installs the Debian packages dtbench needs, only when one is missing. Not root: prints the command.
set -euo pipefail
packages=(g++ make git openmpi-bin libopenmpi-dev libucx-dev libfccp-dev libcli11-dev libxxhash-dev nlohmann-json3-dev
          libgtest-dev libgmock-dev libbenchmark-dev
          slurmctld slurmd slurm-client munge libpmix-dev chromium python3 python3-pandas
          clang libclang-rt-dev iproute2 fio)  # make fuzz (libFuzzer), multinode.sh (ip netns), ckpt vs fio,
                                               # tools.sh (--tidy read back by Debian's pandas)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
cmd="apt-get install -y --no-install-recommends ${missing[*]}"
if [ "$(id -u)" != 0 ]; then
  echo "dtbench: missing packages: ${missing[*]}" >&2
  echo "run as root: apt-get update && $cmd" >&2
  exit 1
fi
echo "dtbench: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
$cmd
