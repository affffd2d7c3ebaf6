#!/bin/sh
# Docker Compose for tests/test_dashboards_models.py (`docker-compose config` validates docker-compose.yml;
# no Docker engine is needed). Debian package "docker-compose"; installed only when missing and running as
# root with apt-get. Otherwise it says how, and that test is skipped.
set -u
if command -v docker-compose >/dev/null 2>&1 || docker compose version >/dev/null 2>&1; then
    exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "install_compose: installing the Debian package 'docker-compose' to validate docker-compose.yml ..."
    export DEBIAN_FRONTEND=noninteractive
    if apt-get update -qq && apt-get install -y -qq --no-install-recommends docker-compose >/dev/null; then
        exit 0
    fi
    echo "install_compose: apt-get could not install docker-compose; the compose check will be skipped." >&2
    exit 0
fi
echo "install_compose: docker-compose is missing (sudo apt-get install docker-compose); the compose check is skipped." >&2
exit 0
