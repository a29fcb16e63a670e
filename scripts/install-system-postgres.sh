#!/bin/sh
# Install Debian's PostgreSQL server binaries (no cluster is started): the tests use them as
# an independent "external" server reached through DATABASE_URL.
set -e
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends postgresql >/dev/null
