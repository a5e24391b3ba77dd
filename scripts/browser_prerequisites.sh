#!/usr/bin/env bash
# The browser tier needs Debian's Chromium and CJK fonts (zh-HK screens). As root they
# are installed when missing; otherwise one line says what to install, and the tier fails.
set -euo pipefail
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
dpkg -s fonts-noto-cjk >/dev/null 2>&1 || missing+=(fonts-noto-cjk)
command -v npm >/dev/null 2>&1 || { echo "browser tier: Node.js 20+ and npm are required (apt-get install nodejs npm)" >&2; exit 2; }
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "browser tier: install ${missing[*]} (sudo apt-get install ${missing[*]})" >&2
  exit 2
fi
echo "browser tier: installing ${missing[*]} from Debian"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
