#!/usr/bin/env bash
# Mail → alert latency over IMAP IDLE: a private Dovecot (scripts/dovecot-test.sh), the
# release server with one [[alerts.mailbox]], N mails put in one by one; prints, for each,
# the time from just before `doveadm save` to the server's "mail became an alert" log line
# (the alert is stored and sent to everyone online by then).
#
#   scripts/bench-mail.sh [mails]      (default 10; needs target/release/switchboard)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-10}
BIN=${SWITCHBOARD_BIN:-target/release/switchboard}
[ -x "$BIN" ] || { echo "build it first: cargo build --release" >&2; exit 1; }
DIR=$(mktemp -d /tmp/bench-mail.XXXXXX)
chmod 0755 "$DIR" # Dovecot serves mail as nobody: the folder must be searchable
cleanup() {
  [ -n "${SERVER:-}" ] && kill "$SERVER" 2>/dev/null || true
  bash scripts/dovecot-test.sh stop "$DIR/dovecot" >/dev/null 2>&1 || true
  rm -rf "$DIR"
}
trap cleanup EXIT
PORTS=$(bash scripts/dovecot-test.sh start "$DIR/dovecot")
eval "$PORTS"
cat >"$DIR/switchboard.toml" <<TOML
[[alerts.mailbox]]
name = "bench"
protocol = "imap"
host = "127.0.0.1"
port = $IMAP_PORT
tls = "none"
user = "alerts"
password = "secret"
allowed_senders = ["@monitor.example.com"]
audience = { groups = ["engineering"] }
TOML
SWITCHBOARD_LOG="warn,switchboard_mail=info" "$BIN" serve --demo --config "$DIR/switchboard.toml" \
  --http 127.0.0.1:0 --data-dir "$DIR/data" --log-format json >"$DIR/out" 2>"$DIR/log" &
SERVER=$!
for _ in $(seq 100); do grep -q '"mailbox connected"' "$DIR/log" 2>/dev/null && break; sleep 0.1; done
for i in $(seq "$N"); do
  printf 'From: nagios@monitor.example.com\r\nSubject: latency %s\r\nMessage-ID: <bench-%s@monitor.example.com>\r\n\r\nbody\r\n' "$i" "$i" >"$DIR/m.eml"
  date +%s.%N >>"$DIR/sent"
  bash scripts/dovecot-test.sh deliver "$DIR/dovecot" alerts "$DIR/m.eml"
  sleep 1.5
done
sleep 1
python3 - "$DIR" <<'PY'
import datetime, json, sys
d = sys.argv[1]
sent = [float(x) for x in open(f"{d}/sent")]
got = []
for line in open(f"{d}/log"):
    try:
        rec = json.loads(line)
    except ValueError:
        continue
    if rec.get("fields", {}).get("message") == "mail became an alert":
        got.append(datetime.datetime.fromisoformat(rec["timestamp"].replace("Z", "+00:00")).timestamp())
lat = sorted((g - s) * 1000 for s, g in zip(sent, got))
if len(got) != len(sent):
    print(f"only {len(got)} of {len(sent)} mails became alerts", file=sys.stderr)
    sys.exit(1)
print(json.dumps({"test": "mail", "mails": len(lat), "latency_ms": {
    "min": round(lat[0]), "p50": round(lat[len(lat) // 2]), "max": round(lat[-1])}}))
PY
