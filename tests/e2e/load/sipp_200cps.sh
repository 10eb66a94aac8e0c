#!/bin/sh
# Load: sipp's built-in UAC at 200 calls/s for 60 s against our UAS
# (tests/e2e/src/bin/e2e-uas.rs: sip-net + media-net, answers, plays a tone,
# receives RTP). Each call lasts HOLD_MS (default 1000 ms), so about
# 200 calls are up at once. sipp's final statistics screen is printed.
#
#   tests/e2e/load/sipp_200cps.sh [rate] [seconds] [hold_ms]
set -eu
RATE=${1:-200}
SECONDS_TOTAL=${2:-60}
HOLD_MS=${3:-1000}
PORT=${SIP_PORT:-5080}
CALLS=$((RATE * SECONDS_TOTAL))
cd "$(dirname "$0")/../../.."
CARGO_BUILD_JOBS=${CARGO_BUILD_JOBS:-1} cargo build --release -q -p switchboard-e2e --bin e2e-uas
WORK=$(mktemp -d)
trap 'kill $UAS 2>/dev/null; rm -rf "$WORK"' EXIT
target/release/e2e-uas "$PORT" > "$WORK/uas.log" 2>&1 &
UAS=$!
# Wait (bounded) until the UAS says it listens.
for _ in $(seq 1 100); do grep -q listening "$WORK/uas.log" && break; sleep 0.1; done
grep -q listening "$WORK/uas.log" || { cat "$WORK/uas.log"; exit 1; }
cd "$WORK"
set +e
sipp 127.0.0.1:"$PORT" -sn uac -i 127.0.0.1 -p 5090 -r "$RATE" -m "$CALLS" -d "$HOLD_MS" \
    -l $((RATE * 5)) -timeout $((SECONDS_TOTAL + 60))s -timeout_error -nostdin \
    -trace_stat -fd 10 -trace_screen > sipp.out 2>&1
RC=$?
set -e
cat ./*_screen.log 2>/dev/null || tail -60 sipp.out
echo "--- UAS: $(tail -1 uas.log)"
echo "--- sipp exit code $RC"
exit $RC
