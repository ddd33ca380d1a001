#!/usr/bin/env bash
# The one command that runs every test: unit and integration tests on SQLite and
# PostgreSQL, end-to-end tests of the binary, and the web client in headless Chromium.
# It installs what the tests need (Debian packages, npm packages) on a fresh machine.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# --- Debian packages: promtool (metrics lint) and Chromium (web client tests).
missing=()
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v psql >/dev/null 2>&1 || missing+=(postgresql-client)
# Real mail servers and Alertmanager for the alert sources (scripts/dovecot-test.sh,
# scripts/alertmanager-test.sh start private instances on loopback).
{ [ -x /usr/sbin/dovecot ] && [ -x /usr/lib/dovecot/imap ] && [ -x /usr/lib/dovecot/pop3 ]; } || missing+=(dovecot-core dovecot-imapd dovecot-pop3d)
[ -x /usr/bin/prometheus-alertmanager ] || missing+=(prometheus-alertmanager)
command -v jq >/dev/null 2>&1 || missing+=(jq)
command -v curl >/dev/null 2>&1 || missing+=(curl)
command -v openssl >/dev/null 2>&1 || missing+=(openssl) # self-signed certificates for the mailbox TLS tests
if [ ${#missing[@]} -gt 0 ]; then
  echo "==> installing ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# --- PostgreSQL: already running on these machines (127.0.0.1:5432, trust auth); start
# the packaged cluster if it is not.
if ! pg_isready -q -h 127.0.0.1 -p 5432; then
  echo "==> starting PostgreSQL"
  as_root pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start
  for _ in $(seq 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
fi
# Databases left by interrupted earlier runs (each test makes and drops its own).
for db in $(psql -h 127.0.0.1 -U postgres -d postgres -Atc "SELECT datname FROM pg_database WHERE datname LIKE 'sb_test_%'"); do
  psql -h 127.0.0.1 -U postgres -d postgres -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" || true
done

# --- Rust: formatting, then every crate's tests (integration tests run on both backends).
echo "==> cargo fmt --check, cargo clippy"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --quiet -- -D warnings
echo "==> cargo test"
cargo test --workspace --all-targets

# --- The web client in headless Chromium, against the built binary.
echo "==> browser tests"
(
  cd tests/browser
  npm ci --no-audit --no-fund --loglevel=error
  SWITCHBOARD_BIN="$PWD/../../target/debug/switchboard" node --test
)
echo "==> all tests passed"
