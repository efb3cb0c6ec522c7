#!/usr/bin/env bash
# Install, upgrade (run it again) or remove (--uninstall [--purge]) the charger on Raspberry Pi OS Bookworm, from
# this clone, as root. Everything comes from the Debian and PyPI registries. `--help` lists the options; the
# README's "Install on a Raspberry Pi" says what it does.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
if [ "$(id -u)" != 0 ]; then
    echo "install.sh: run it as root: sudo $0 $*" >&2
    exit 2
fi
apt=yes
for arg in "$@"; do
    case $arg in --root|--root=*|--uninstall|--no-apt|-h|--help) apt=no ;; esac
done
if [ "$apt" = yes ] && command -v apt-get >/dev/null; then
    # venv for the releases; gcc and the headers because spidev (the pi extra) comes as source only; the
    # CAN tools for `evse probe can` and bring-up by hand.
    echo "install.sh: apt-get install python3-venv python3-dev gcc can-utils"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        python3-venv python3-dev gcc can-utils >/dev/null
fi
args=()
for arg in "$@"; do [ "$arg" = --no-apt ] || args+=("$arg"); done
# The system's Python 3.11 runs the installer straight from this tree: it needs nothing but the standard library.
exec env PYTHONPATH="$here" /usr/bin/python3 -m controller.installer "${args[@]}"
