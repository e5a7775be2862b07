#!/usr/bin/env bash
# make demo: a fleetscan server on loopback with a fresh database, one
# worker per bundled demo cluster snapshot, a local webhook receiver with a
# notifier posting to it, a fleet scan, the notifications it caused, its
# summary and the worst findings. Every process it starts is stopped on
# exit, Ctrl-C included. With KEEP=1 (make demo KEEP=1) a demo that
# succeeded keeps the server, its workers, the receiver and the data
# running until Ctrl-C, and prints the console's address, tokens to sign
# in with and the commands to explore it. Needs the binaries of
# `make build` in .tmp/bin.
set -euo pipefail

cd "$(dirname "$0")/../.."
bin=.tmp/bin
demo=deploy/demo
work=$(mktemp -d "${TMPDIR:-/tmp}/fleetscan-demo.XXXXXX")
pids=()

cleanup() {
	local status=$?
	for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
	for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
	if [ "$status" -eq 130 ]; then
		echo "stopped every process the demo started and removed its data" >&2
	elif [ "$status" -ne 0 ]; then
		echo >&2
		echo "demo failed (exit $status); last lines of the logs:" >&2
		for log in "$work"/*.log; do
			[ -f "$log" ] || continue
			echo "--- $(basename "$log")" >&2
			tail -n 15 "$log" >&2
		done
	fi
	rm -rf "$work"
	exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

step() { printf '\n==> %s\n' "$*"; }

step "Starting fleetscan-server on 127.0.0.1 with a development TLS certificate (data in $work/data)"
"$bin/fleetscan-server" --data-dir "$work/data" --listen 127.0.0.1:0 --dev-tls \
	--address-file "$work/addr" --web-listen 127.0.0.1:0 --web-address-file "$work/webaddr" >"$work/server.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do
	[ -s "$work/addr" ] && break
	kill -0 "${pids[0]}" 2>/dev/null || { echo "fleetscan-server exited" >&2; exit 1; }
	sleep 0.1
done
[ -s "$work/addr" ] || { echo "fleetscan-server did not start within 10 s" >&2; exit 1; }
export FLEETSCAN_SERVER=$(cat "$work/addr")
export FLEETSCAN_TOKEN_FILE="$work/data/operator.token"
export FLEETSCAN_CA="$work/data/tls/ca.crt"
echo "listening on $FLEETSCAN_SERVER (TLS, CA $FLEETSCAN_CA); operator token in $FLEETSCAN_TOKEN_FILE"

step "Registering the demo clusters and starting one worker per cluster"
while IFS=$'\t' read -r id tenant labels; do
	case "$id" in ''|'#'*) continue ;; esac
	args=()
	IFS=, read -ra kv <<<"$labels"
	for l in "${kv[@]}"; do args+=(--label "$l"); done
	"$bin/fleetscan" cluster register "$id" --tenant "$tenant" "${args[@]}" \
		--join-token-file "$work/$id.token"
	"$bin/fleetscan-worker" --server "$FLEETSCAN_SERVER" --ca "$FLEETSCAN_CA" --cluster-id "$id" \
		--token-file "$work/$id.token" --credential-file "$work/$id.credential" --snapshot "$demo/clusters/$id" >"$work/worker-$id.log" 2>&1 &
	pids+=($!)
done <"$demo/fleet.tsv"
"$bin/fleetscan" cluster list

step "Notifications: a local webhook receiver, and a notifier that posts to it (docs/notifications.md)"
# The receiver verifies every request with the secret in receiver.secret,
# which the notifier writes when it is created: it may start first.
"$bin/fleetscan" notifier receive --listen 127.0.0.1:0 --address-file "$work/receiver.addr" \
	--secret-file "$work/receiver.secret" >"$work/receiver.log" 2>"$work/receiver-errors.log" &
pids+=($!)
receiver_pid=$!
for _ in $(seq 100); do
	[ -s "$work/receiver.addr" ] && break
	kill -0 "$receiver_pid" 2>/dev/null || { echo "fleetscan notifier receive exited" >&2; exit 1; }
	sleep 0.1
done
[ -s "$work/receiver.addr" ] || { echo "fleetscan notifier receive did not start within 10 s" >&2; exit 1; }
receiver="http://$(cat "$work/receiver.addr")/"
echo "fleetscan notifier receive listens on $receiver (its output in $work/receiver.log)"
"$bin/fleetscan" notifier create demo-receiver --webhook "$receiver" --secret-file "$work/receiver.secret"
"$bin/fleetscan" notifier test demo-receiver

step "Scanning the whole fleet"
"$bin/fleetscan" scan start --all --wait --timeout 2m

step "What the receiver printed: the scan's new findings at high or worse, one event per cluster"
# A job's events are in the outbox when the scan ends; the dispatcher
# delivers them at once. Wait until none is pending (header line only).
for _ in $(seq 150); do
	[ "$("$bin/fleetscan" notifier deliveries --state pending | wc -l)" -le 1 ] && break
	sleep 0.2
done
cat "$work/receiver.log"
echo
"$bin/fleetscan" notifier deliveries

step "The fleet's worst findings"
"$bin/fleetscan" findings list --severity high --limit 15

step "Clusters ranked by posture score (docs/posture-score.md)"
"$bin/fleetscan" compare --checks 8

step "The console: the same API, in a browser"
console="https://$(cat "$work/webaddr")/"
for tenant in acme globex; do
	"$bin/fleetscan" token create --name "$tenant-console" --tenant "$tenant" --secret-file "$work/$tenant.token" >/dev/null
done
if [ "${KEEP:-}" = 1 ]; then
	echo "Open $console"
else
	echo "Open $console while the demo runs (make demo KEEP=1 keeps it running until Ctrl-C)"
fi
cat <<CONSOLE
(the certificate is the demo's own: let the browser proceed, or trust $FLEETSCAN_CA)
and sign in with a token:
  the operator, who sees the whole fleet:  $(cat "$FLEETSCAN_TOKEN_FILE")
  tenant acme, who sees only its clusters:  $(cat "$work/acme.token")
  tenant globex:                            $(cat "$work/globex.token")
CONSOLE

if [ "${KEEP:-}" = 1 ]; then
	step "Kept running: the server (pid ${pids[0]}), its workers, the receiver (pid $receiver_pid) and the data in $work"
	cat <<EXPLORE
Explore it with the CLI (built in $bin) in another terminal:

  export FLEETSCAN_SERVER=$FLEETSCAN_SERVER
  export FLEETSCAN_TOKEN_FILE=$FLEETSCAN_TOKEN_FILE
  export FLEETSCAN_CA=$FLEETSCAN_CA
  $bin/fleetscan cluster list
  $bin/fleetscan findings list --cluster acme-dev --severity high
  $bin/fleetscan scan start --all --wait          # a second scan: then diff and trend have history
  $bin/fleetscan summary --fleet
  $bin/fleetscan trend --fleet --since 1d
  $bin/fleetscan notifier deliveries               # what the receiver was sent; it prints to $work/receiver.log


Press Ctrl-C here to stop it and remove its data.
EXPLORE
	# Until Ctrl-C. A terminal's Ctrl-C reaches the server too, which then
	# shuts down cleanly (status 0); any other end of it is a failure.
	status=0
	wait "${pids[0]}" || status=$?
	if [ "$status" -ne 0 ]; then
		echo "fleetscan-server exited with status $status" >&2
		exit 1
	fi
	exit 130
fi

step "Done: every process the demo started is stopped"
echo "See deploy/demo/README.md for what is wrong in each cluster, and README.md to run it for real."
echo "make demo KEEP=1 keeps the server, the receiver, the console and the data running until Ctrl-C, to explore."
