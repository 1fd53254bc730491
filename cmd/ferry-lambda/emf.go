package main

import (
	"encoding/json"
	"time"

	"github.com/ferry-migrate/ferry/internal/pipeline"
)

// The function's metrics, as CloudWatch embedded metric format (EMF) log
// lines: one JSON object per invocation on standard output, which Lambda
// sends to CloudWatch Logs, where they become metrics in namespace
// emfNamespace, by function, stream and shard. Written by hand because an
// EMF line is one small JSON document (the spec:
// https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html)
// and AWS publishes EMF client libraries for Node.js, Python, Java and .NET,
// not for Go.
const emfNamespace = "ferry"

// emfMetric is one metric of an EMF line: its name and CloudWatch unit.
type emfMetric struct {
	Name string `json:"Name"`
	Unit string `json:"Unit"`
}

// emfMetrics are the metrics every line carries, with their units (the
// README's table lists them).
var emfMetrics = []emfMetric{
	{"ferry_lambda_records", "Count"},        // records in the invocation
	{"ferry_lambda_items_written", "Count"},  // conditional writes that changed an item
	{"ferry_lambda_items_skipped", "Count"},  // writes an item already newer than them made moot
	{"ferry_lambda_changes_fenced", "Count"}, // changes a TRUNCATE had already removed
	{"ferry_lambda_dead_letters", "Count"},   // changes DynamoDB can never hold
	{"ferry_lambda_records_failed", "Count"}, // records reported failed (delivered again)
	{"ferry_lambda_batch_duration", "Milliseconds"},
	{"ferry_lambda_iterator_age", "Milliseconds"}, // now − the last record's arrival
	{"ferry_lambda_applied_lsn", "None"},          // the newest source LSN applied (byte offset)
}

// emfLine is the EMF line of one invocation on one shard.
func emfLine(now time.Time, function, stream, shard string, records int, res pipeline.BatchResult, took, iteratorAge time.Duration, appliedLSN uint64) []byte {
	failed := 0
	if res.Failed >= 0 {
		failed = records - res.Failed
	}
	doc := map[string]any{
		"_aws": map[string]any{
			"Timestamp": now.UnixMilli(),
			"CloudWatchMetrics": []any{map[string]any{
				"Namespace":  emfNamespace,
				"Dimensions": [][]string{{"FunctionName", "Stream", "Shard"}},
				"Metrics":    emfMetrics,
			}},
		},
		"FunctionName":                function,
		"Stream":                      stream,
		"Shard":                       shard,
		"ferry_lambda_records":        records,
		"ferry_lambda_items_written":  res.Applied,
		"ferry_lambda_items_skipped":  res.Skipped,
		"ferry_lambda_changes_fenced": res.Fenced,
		"ferry_lambda_dead_letters":   res.Dead,
		"ferry_lambda_records_failed": failed,
		"ferry_lambda_batch_duration": took.Milliseconds(),
		"ferry_lambda_iterator_age":   iteratorAge.Milliseconds(),
		"ferry_lambda_applied_lsn":    appliedLSN,
	}
	line, _ := json.Marshal(doc) // maps of strings and numbers: cannot fail
	return append(line, '\n')
}
