// Command ferry-lambda is ferry's applier function: the bootstrap of a
// provided.al2023 AWS Lambda function that a Kinesis event source mapping
// invokes with the records `ferry sync --apply stream` publishes. It writes
// them to DynamoDB with the same version-conditional writes as `ferry sync`'s
// direct mode, and reports the records it could not apply as batch item
// failures (ReportBatchItemFailures).
package main

import (
	"log/slog"
	"os"
)

func main() {
	cfg, err := configFromEnv(os.Getenv)
	if err != nil {
		slog.Error("ferry-lambda: configuration", "err", err)
		os.Exit(2)
	}
	_ = cfg
}
