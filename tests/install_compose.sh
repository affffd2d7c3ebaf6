#!/bin/sh
# Docker Compose for tests/test_dashboards_models.py (`docker-compose config` validates docker-compose.yml;
# no Docker engine is needed). Debian package "docker-compose"; installed only when missing and running as
# root with apt-get. Otherwise it says how and fails (see allowed() below).
set -u
# A failed install fails `make test` (the tests that need docker-compose would fail anyway): unless
# HIPBACK_TEST_ALLOW_MISSING lists "compose", which makes those tests skip, with the reason, on purpose.
allowed() { case ",${HIPBACK_TEST_ALLOW_MISSING:-}," in *,compose,*) return 0 ;; esac; return 1; }
if command -v docker-compose >/dev/null 2>&1 || docker compose version >/dev/null 2>&1; then
    exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "install_compose: installing the Debian package 'docker-compose' to validate docker-compose.yml ..."
    export DEBIAN_FRONTEND=noninteractive
    if apt-get update -qq && apt-get install -y -qq --no-install-recommends docker-compose >/dev/null; then
        exit 0
    fi
    echo "install_compose: apt-get could not install docker-compose." >&2
else
    echo "install_compose: docker-compose is missing (sudo apt-get install docker-compose)." >&2
fi
if allowed; then
    echo "install_compose: HIPBACK_TEST_ALLOW_MISSING lists compose: the compose check will be skipped." >&2
    exit 0
fi
echo "install_compose: the compose check needs it (or set HIPBACK_TEST_ALLOW_MISSING=compose to skip it)." >&2
exit 1
