package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferry-migrate/ferry/internal/pipeline"
)

// TestEMFLine checks an invocation's line against the embedded metric
// format: every declared metric is a top-level number, every dimension a
// top-level string, the timestamp in milliseconds; and the README lists
// every metric.
func TestEMFLine(t *testing.T) {
	now := time.UnixMilli(1_780_000_000_123)
	line := emfLine(now, "ferry-applier", "pagila-changes", "shardId-000000000002", 100,
		pipeline.BatchResult{Failed: 60, Applied: 50, Skipped: 9, Fenced: 1, Dead: 1}, 850*time.Millisecond, 2*time.Second, 0x16B374D848)
	if !strings.HasSuffix(string(line), "}\n") || strings.Count(string(line), "\n") != 1 {
		t.Fatalf("not one JSON line: %q", line)
	}
	var doc map[string]any
	if err := json.Unmarshal(line, &doc); err != nil {
		t.Fatal(err)
	}
	aws := doc["_aws"].(map[string]any)
	if ts := aws["Timestamp"].(float64); int64(ts) != now.UnixMilli() {
		t.Errorf("Timestamp %v, want %d", ts, now.UnixMilli())
	}
	dirs := aws["CloudWatchMetrics"].([]any)
	if len(dirs) != 1 {
		t.Fatalf("%d metric directives", len(dirs))
	}
	dir := dirs[0].(map[string]any)
	if dir["Namespace"] != "ferry" {
		t.Errorf("namespace %v", dir["Namespace"])
	}
	for _, set := range dir["Dimensions"].([]any) {
		for _, d := range set.([]any) {
			if _, ok := doc[d.(string)].(string); !ok {
				t.Errorf("dimension %v is not a top-level string", d)
			}
		}
	}
	want := map[string]float64{"ferry_lambda_records": 100, "ferry_lambda_items_written": 50, "ferry_lambda_records_failed": 40,
		"ferry_lambda_batch_duration": 850, "ferry_lambda_iterator_age": 2000, "ferry_lambda_applied_lsn": 0x16B374D848}
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range dir["Metrics"].([]any) {
		name := m.(map[string]any)["Name"].(string)
		v, ok := doc[name].(float64)
		if !ok {
			t.Errorf("metric %s is not a top-level number", name)
		}
		if w, ok := want[name]; ok && v != w {
			t.Errorf("%s = %v, want %v", name, v, w)
		}
		if !strings.Contains(string(readme), "`"+name+"`") {
			t.Errorf("README does not list the Lambda metric %s", name)
		}
	}
}
