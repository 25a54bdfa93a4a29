#!/usr/bin/env bash
# Installs Debian's chromium when missing: the report.html test (tests/html_report.rs)
# opens the page in headless Chromium. Run as root (CI container) or with sudo available.
set -euo pipefail
if command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ]; then
    echo "chromium present: $(chromium --version 2>/dev/null || echo /usr/bin/chromium)"
    exit 0
fi
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends chromium
chromium --version
