#!/usr/bin/env bash
# Runs the conformance scenarios against two reference servers from Debian, Prosody (127.0.0.2)
# and ejabberd (127.0.0.3), and against a freshly started Parley (127.0.0.1), then writes
# conformance/RESULTS.md with the three side by side. Installs the servers when missing.
# Everything stays on loopback; nothing is looked up in DNS. Needs root (apt-get, and starting
# the servers as their own users). Runtime files go to $PARLEY_REFERENCE_DIR (default
# /tmp/parley-reference), which is recreated on every run.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
RUN=${PARLEY_REFERENCE_DIR:-/tmp/parley-reference}
REF=$ROOT/conformance/reference
export DEBIAN_FRONTEND=noninteractive

if ! command -v prosody >/dev/null || ! command -v ejabberdctl >/dev/null || ! command -v openssl >/dev/null; then
  apt-get update -qq
  apt-get install -y -qq -o DPkg::Lock::Timeout=600 prosody ejabberd openssl >/dev/null
  # Where an init system runs, the packages start their own instances on the standard ports.
  service prosody stop >/dev/null 2>&1 || true
  service ejabberd stop >/dev/null 2>&1 || true
fi
for address in 127.0.0.2 127.0.0.3; do
  if (exec 3<>"/dev/tcp/$address/5222") 2>/dev/null; then
    echo "something already listens on $address:5222 (a system Prosody or ejabberd?); stop it first" >&2
    exit 1
  fi
done

PIDS=()
cleanup() {
  set +e
  if [ -f "$RUN/prosody/prosody.pid" ]; then kill "$(cat "$RUN/prosody/prosody.pid")" 2>/dev/null; fi
  ejabberd_ctl stop >/dev/null 2>&1
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null; done
  wait 2>/dev/null
}
trap cleanup EXIT

# Waits (at most 60 s) until something listens on host:port.
wait_port() {
  for _ in $(seq 1 120); do
    if (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; then return 0; fi
    sleep 0.5
  done
  echo "nothing listens on $1:$2" >&2
  return 1
}

# A self-signed certificate for a domain: cert and key PEM files in a directory.
make_cert() {
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 -subj "/CN=$1" \
    -addext "subjectAltName=DNS:$1" -addext "basicConstraints=critical,CA:TRUE" \
    -keyout "$2/$1.key" -out "$2/$1.crt" 2>/dev/null
}

rm -rf "$RUN"
mkdir -p "$RUN"/{prosody/certs,prosody/data,ejabberd/spool,ejabberd/upload,ejabberd/logs,ejabberd/config,results}
echo "nameserver 127.0.0.1" > "$RUN/resolv.conf"
# Prosody and ejabberd federate for the scenarios across servers (rfc6121-s2s, --peer-*): each
# finds the other by /etc/hosts and the RFC 6120 fallback to port 5269 (no SRV, no DNS server).
for entry in "127.0.0.2 prosody.test" "127.0.0.3 ejabberd.test"; do
  grep -qE "^${entry%% *}[[:space:]]+${entry#* }([[:space:]]|\$)" /etc/hosts || echo "$entry" >> /etc/hosts
done
ACCOUNTS=alice:pass-alice,bob:pass-bob,carol:pass-carol

# --- Prosody ---------------------------------------------------------------------------------
make_cert prosody.test "$RUN/prosody/certs"
sed "s|@RUN@|$RUN|g" "$REF/prosody.cfg.lua" > "$RUN/prosody/prosody.cfg.lua"
chown -R prosody:prosody "$RUN/prosody"
chmod 755 "$RUN"
as_prosody() { setpriv --reuid=prosody --regid=prosody --init-groups env HOME=/var/lib/prosody "$@"; }
as_prosody prosody --config "$RUN/prosody/prosody.cfg.lua" -D
wait_port 127.0.0.2 5222
for pair in ${ACCOUNTS//,/ }; do
  as_prosody prosodyctl --config "$RUN/prosody/prosody.cfg.lua" register "${pair%%:*}" prosody.test "${pair#*:}"
done

# --- ejabberd --------------------------------------------------------------------------------
make_cert ejabberd.test "$RUN/ejabberd"
cat "$RUN/ejabberd/ejabberd.test.crt" "$RUN/ejabberd/ejabberd.test.key" > "$RUN/ejabberd/ejabberd.test.pem"
sed "s|@RUN@|$RUN|g" "$REF/ejabberd.yml" > "$RUN/ejabberd/config/ejabberd.yml"
sed "s|@RUN@|$RUN|g" "$REF/ejabberdctl.cfg" > "$RUN/ejabberd/config/ejabberdctl.cfg"
cp "$REF/inetrc" "$RUN/ejabberd/config/inetrc"
chown -R ejabberd:ejabberd "$RUN/ejabberd"
ejabberd_ctl() {
  ejabberdctl --config-dir "$RUN/ejabberd/config" --config "$RUN/ejabberd/config/ejabberd.yml" \
    --ctl-config "$RUN/ejabberd/config/ejabberdctl.cfg" --spool "$RUN/ejabberd/spool" --logs "$RUN/ejabberd/logs" "$@"
}
ejabberd_ctl start
ejabberd_ctl started
wait_port 127.0.0.3 5222
for pair in ${ACCOUNTS//,/ }; do
  ejabberd_ctl register "${pair%%:*}" ejabberd.test "${pair#*:}"
done

# --- Parley ----------------------------------------------------------------------------------
# With a second Parley (parley-peer.test) federating with it for the scenarios across servers.
node --import tsx spec/conformance/parley-server.ts "$RUN/parley-ca.pem" "$RUN/parley-peer-ca.pem" > "$RUN/parley.json" 2> "$RUN/parley.err" &
PIDS+=($!)
for _ in $(seq 1 60); do [ -s "$RUN/parley.json" ] && break; sleep 0.5; done
PARLEY_PORT=$(node -e 'console.log(JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).port)' "$RUN/parley.json")
PARLEY_DTLS=$(node -e 'console.log(JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).directTlsPort)' "$RUN/parley.json")
PARLEY_HTTP=$(node -e 'console.log(JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).httpPort)' "$RUN/parley.json")
PARLEY_PEER=$(node -e 'console.log(JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).peerPort)' "$RUN/parley.json")

# --- Runs ------------------------------------------------------------------------------------
run() {
  local name=$1; shift
  echo
  echo "=== $name ==="
  node --import tsx conformance/cli.ts --name "$name" --accounts "$ACCOUNTS" \
    --json "$RUN/results/$name.json" --junit "$RUN/results/$name.junit.xml" "$@" || true
}
run Parley --host 127.0.0.1 --port "$PARLEY_PORT" --direct-tls-port "$PARLEY_DTLS" --domain localhost --ca "$RUN/parley-ca.pem" \
  --websocket-url "ws://127.0.0.1:$PARLEY_HTTP/xmpp-websocket" --bosh-url "http://127.0.0.1:$PARLEY_HTTP/http-bind" \
  --peer-port "$PARLEY_PEER" --peer-domain parley-peer.test --peer-accounts "$ACCOUNTS" --peer-ca "$RUN/parley-peer-ca.pem"
run Prosody --host 127.0.0.2 --port 5222 --direct-tls-port 5223 --domain prosody.test --ca "$RUN/prosody/certs/prosody.test.crt" \
  --websocket-url ws://127.0.0.2:5280/xmpp-websocket --bosh-url http://127.0.0.2:5280/http-bind \
  --peer-host 127.0.0.3 --peer-domain ejabberd.test --peer-accounts "$ACCOUNTS" --peer-ca "$RUN/ejabberd/ejabberd.test.crt"
run ejabberd --host 127.0.0.3 --port 5222 --direct-tls-port 5223 --domain ejabberd.test --ca "$RUN/ejabberd/ejabberd.test.crt" \
  --websocket-url ws://127.0.0.3:5280/ws --bosh-url http://127.0.0.3:5280/http-bind \
  --peer-host 127.0.0.2 --peer-domain prosody.test --peer-accounts "$ACCOUNTS" --peer-ca "$RUN/prosody/certs/prosody.test.crt"

node --import tsx conformance/reference/results.ts "$RUN/results/Parley.json" "$RUN/results/Prosody.json" "$RUN/results/ejabberd.json" \
  > conformance/RESULTS.md
echo
echo "wrote conformance/RESULTS.md (JUnit files in $RUN/results)"
