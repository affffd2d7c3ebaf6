#!/bin/sh
# Install Chromium for the report-page tests (tests/test_report.py opens the page in headless Chromium).
# Debian/Ubuntu package "chromium"; needs root (apt-get). Safe to run when it is already there.
# Without root or apt-get it only says how; the tests then skip the browser part with that reason.
set -u
if command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ]; then
    exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "install_chromium: installing the Debian package 'chromium' for the report tests ..."
    export DEBIAN_FRONTEND=noninteractive
    if apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium >/dev/null; then
        echo "install_chromium: chromium installed."
        exit 0
    fi
    echo "install_chromium: apt-get could not install chromium; the browser tests will be skipped." >&2
    exit 0
fi
echo "install_chromium: chromium is missing. Install it with: sudo apt-get update && sudo apt-get install -y chromium" >&2
echo "install_chromium: (the report-page browser tests are skipped until then)" >&2
exit 0
