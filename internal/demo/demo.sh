#!/usr/bin/env bash
# The demo behind `make demo`: on the local stack, plan the Pagila mapping,
# copy everything (backfill), keep DynamoDB and Kinesis in sync while a
# DVD-store workload runs, then show the status and the verification report.
set -euo pipefail
cd "$(dirname "$0")/../.."
FERRY=${FERRY:-bin/ferry}
MAPPING=${MAPPING:-mappings/pagila.yaml}
SECONDS_OF_TRAFFIC=${DEMO_SECONDS:-20}
RATE=${DEMO_RATE:-100}

go run ./internal/stack/cmd/stack reset-demo
# shellcheck disable=SC1091
. ./.local/env
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "ferry plan: the mapping checked against the live schema"
$FERRY plan --source "$FERRY_SOURCE" --mapping "$MAPPING"

step "ferry teardown --targets: start from empty DynamoDB tables and streams"
$FERRY teardown --source "$FERRY_SOURCE" --mapping "$MAPPING" --targets

step "ferry backfill: a consistent, parallel, resumable copy"
$FERRY backfill --source "$FERRY_SOURCE" --mapping "$MAPPING"

step "ferry sync while ferry workload runs ${RATE} transactions/s for ${SECONDS_OF_TRAFFIC}s"
$FERRY sync --source "$FERRY_SOURCE" --mapping "$MAPPING" --status-every 1s > .local/logs/demo-sync.log 2>&1 &
sync_pid=$!
trap 'kill $sync_pid 2>/dev/null || true' EXIT
$FERRY workload --source "$FERRY_SOURCE" --rate "$RATE" --duration "${SECONDS_OF_TRAFFIC}s"
# Let sync apply the last transactions, then stop it the way an operator would.
$FERRY status --source "$FERRY_SOURCE" --mapping "$MAPPING" --counts=false --wait-caught-up 2m
kill -TERM $sync_pid
wait $sync_pid
trap - EXIT
tail -n 3 .local/logs/demo-sync.log

step "ferry status"
$FERRY status --source "$FERRY_SOURCE" --mapping "$MAPPING"

if $FERRY verify --help >/dev/null 2>&1; then
  step "ferry verify: DynamoDB and the Kinesis stream against PostgreSQL"
  $FERRY verify --source "$FERRY_SOURCE" --mapping "$MAPPING" --stream --out .local/verify.html --format html >/dev/null || true
  $FERRY verify --source "$FERRY_SOURCE" --mapping "$MAPPING" --stream
  echo "(an HTML report is in .local/verify.html)"
fi

step "ferry shadow: the application's sixteen reads, on PostgreSQL and on DynamoDB"
$FERRY shadow --source "$FERRY_SOURCE" --mapping "$MAPPING" --samples 20
