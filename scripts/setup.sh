#!/usr/bin/env bash
# Installs the Debian packages StateLab needs to build (and, with --tests, to test), and
# nothing else: a no-op when everything is present. Used by both README commands.
set -euo pipefail

packages=(cmake ninja-build g++ pkg-config libeigen3-dev nlohmann-json3-dev libcli11-dev libzip-dev
          libopenmpi-dev openmpi-bin libimgui-dev libglfw3-dev libgl-dev libgl1-mesa-dri)
if [[ "${1:-}" == "--tests" ]]; then
  # Xvfb (with xauth for xvfb-run) and Mesa's software OpenGL render the dashboard's screenshot test.
  packages+=(libgtest-dev python3 python3-venv python3-numpy xvfb xauth)
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [[ ${#missing[@]} -eq 0 ]]; then
  echo "setup: all ${#packages[@]} required Debian packages are installed"
  exit 0
fi

echo "setup: installing missing Debian packages: ${missing[*]}"
sudo_cmd=()
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null || { echo "setup: need root or sudo to install ${missing[*]}" >&2; exit 1; }
  sudo_cmd=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
echo "setup: done"
