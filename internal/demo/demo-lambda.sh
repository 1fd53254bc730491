#!/usr/bin/env bash
# The demo behind `make demo-lambda`: as `make demo`, but the DynamoDB writes
# are made by ferry's Lambda applier (cmd/ferry-lambda) under the AWS Lambda
# Runtime Interface Emulator, fed by a Kinesis event source mapping emulator,
# while `ferry sync --apply stream` only publishes. Ends with
# `ferry verify --stream` (exit 0 when consistent). The stack stays up.
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

step "ferry teardown --targets: start from empty DynamoDB tables and streams"
$FERRY teardown --source "$FERRY_SOURCE" --mapping "$MAPPING" --targets

step "ferry backfill: a consistent, parallel, resumable copy (4 shards)"
$FERRY backfill --source "$FERRY_SOURCE" --mapping "$MAPPING" --shards 4 --progress log

go run ./internal/demo/lambda --ferry "$FERRY" --mapping "$MAPPING" --seconds "$SECONDS_OF_TRAFFIC" --rate "$RATE"

step "ferry verify --stream: DynamoDB (written by the function) and the stream against PostgreSQL"
$FERRY verify --source "$FERRY_SOURCE" --mapping "$MAPPING" --stream
