#!/bin/sh
# Install Chromium for the report-page tests (tests/test_report.py opens the page in headless Chromium).
# Debian/Ubuntu package "chromium"; needs root (apt-get). Safe to run when it is already there.
# Without root or apt-get it says how and fails (see allowed() below).
set -u
# A failed install fails `make test` (the tests that need chromium would fail anyway): unless
# HIPBACK_TEST_ALLOW_MISSING lists "chromium", which makes those tests skip, with the reason, on purpose.
allowed() { case ",${HIPBACK_TEST_ALLOW_MISSING:-}," in *,chromium,*) return 0 ;; esac; return 1; }
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
    echo "install_chromium: apt-get could not install chromium." >&2
else
    echo "install_chromium: chromium is missing. Install it with: sudo apt-get update && sudo apt-get install -y chromium" >&2
fi
if allowed; then
    echo "install_chromium: HIPBACK_TEST_ALLOW_MISSING lists chromium: the report-page browser tests will be skipped." >&2
    exit 0
fi
echo "install_chromium: the report-page browser tests need it (or set HIPBACK_TEST_ALLOW_MISSING=chromium to skip them)." >&2
exit 1
