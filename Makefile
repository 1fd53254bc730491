# ferry — see README.md. The two commands: `make demo` and `make test`.
GO      ?= go
BIN     := bin/ferry
MAPPING ?= mappings/pagila.yaml

.PHONY: up down demo test vet fmt build bench clean

build:
	$(GO) build -o $(BIN) ./cmd/ferry

# Local stack: PostgreSQL 15 (Pagila), dynalite, kinesalite on 127.0.0.1.
# After `make up`: source .local/env
up:
	$(GO) run ./internal/stack/cmd/stack up

down:
	$(GO) run ./internal/stack/cmd/stack down

# The main job on the local stack: plan, then a fresh backfill of Pagila into
# DynamoDB + Kinesis, then the summary.
demo: build up
	@. ./.local/env && set -e && \
	echo "== ferry plan" && $(BIN) plan --source "$$FERRY_SOURCE" --mapping $(MAPPING) && \
	echo "== ferry teardown (start the demo from scratch)" && $(BIN) teardown --source "$$FERRY_SOURCE" --mapping $(MAPPING) --targets && \
	echo "== ferry backfill" && $(BIN) backfill --source "$$FERRY_SOURCE" --mapping $(MAPPING)

fmt:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

# All tests, integration tests included (they start/reuse the local stack).
test: fmt vet
	$(GO) test -race -count=1 -timeout 20m ./...

clean:
	rm -rf bin
