package lambdaesm

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestClassifyResponse(t *testing.T) {
	t.Parallel()
	const timeout = 3 * time.Second
	tests := []struct {
		name     string
		status   int
		body     string
		elapsed  time.Duration
		wantBody string // when no error
		wantType string // *FunctionError
		wantCall bool   // *InvokeError
	}{
		{name: "batch response", status: 200, body: `{"batchItemFailures":[]}`, wantBody: `{"batchItemFailures":[]}`},
		{name: "null response", status: 200, body: `null`, wantBody: `null`},
		{name: "empty response", status: 200, body: ``, wantBody: ``},
		{name: "error returned by the handler", status: 200, body: `{"errorMessage":"boom","errorType":"BatchError"}`, wantType: "BatchError"},
		{name: "an object with only errorType is a response", status: 200, body: `{"errorType":"x"}`, wantBody: `{"errorType":"x"}`},
		{name: "runtime exit after a panic", status: 502, body: `{"errorMessage":"boom","errorType":"string","stackTrace":[]}`, wantType: "string"},
		{name: "runtime exit without a report", status: 502, body: ``, wantType: TypeExit},
		{name: "timeout", status: 200, body: `Task timed out after 3.00 seconds`, elapsed: 3 * time.Second, wantType: TypeTimeout},
		{name: "not JSON before the timeout", status: 200, body: `hello`, elapsed: time.Second, wantType: TypeInvalidResponse},
		{name: "emulator busy", status: 400, body: ``, wantCall: true},
		{name: "emulator failure", status: 500, body: ``, wantCall: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := classifyResponse(tt.status, []byte(tt.body), tt.elapsed, timeout)
			var fe *FunctionError
			var ie *InvokeError
			switch {
			case tt.wantType != "":
				if !errors.As(err, &fe) || fe.Type != tt.wantType || fe.Status != tt.status {
					t.Errorf("got %s, %v; want function error %s", out, err, tt.wantType)
				}
			case tt.wantCall:
				if !errors.As(err, &ie) || ie.Status != tt.status {
					t.Errorf("got %s, %v; want an invoke error", out, err)
				}
			default:
				if err != nil || string(out) != tt.wantBody {
					t.Errorf("got %s, %v; want %s", out, err, tt.wantBody)
				}
			}
		})
	}
}

func TestParseBatchResponse(t *testing.T) {
	t.Parallel()
	batch := []*record{{seq: "100"}, {seq: "200"}, {seq: "300"}, {seq: "1000"}}
	tests := []struct {
		name      string
		body      string
		retryFrom int
		failed    bool
	}{
		{name: "empty response", body: ``, retryFrom: 4},
		{name: "null response", body: `null`, retryFrom: 4},
		{name: "empty object", body: `{}`, retryFrom: 4},
		{name: "null list", body: `{"batchItemFailures":null}`, retryFrom: 4},
		{name: "empty list", body: `{"batchItemFailures":[]}`, retryFrom: 4},
		{name: "one failure", body: `{"batchItemFailures":[{"itemIdentifier":"300"}]}`, retryFrom: 2},
		{name: "the lowest of several, whatever their order", body: `{"batchItemFailures":[{"itemIdentifier":"1000"},{"itemIdentifier":"200"}]}`, retryFrom: 1},
		{name: "numeric, not lexical, order", body: `{"batchItemFailures":[{"itemIdentifier":"1000"},{"itemIdentifier":"300"}]}`, retryFrom: 2},
		{name: "empty itemIdentifier", body: `{"batchItemFailures":[{"itemIdentifier":"300"},{"itemIdentifier":""}]}`, failed: true},
		{name: "null itemIdentifier", body: `{"batchItemFailures":[{"itemIdentifier":null}]}`, failed: true},
		{name: "bad key name", body: `{"batchItemFailures":[{"itemIdentifer":"300"}]}`, failed: true},
		{name: "not a sequence number of the batch", body: `{"batchItemFailures":[{"itemIdentifier":"999"}]}`, failed: true},
		{name: "not a string", body: `{"batchItemFailures":[{"itemIdentifier":300}]}`, failed: true},
		{name: "not a batch response", body: `"done"`, retryFrom: 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := parseBatchResponse([]byte(tt.body), batch)
			if got.failed != tt.failed || (!tt.failed && got.retryFrom != tt.retryFrom) {
				t.Errorf("got %+v, want retryFrom %d, failed %v", got, tt.retryFrom, tt.failed)
			}
		})
	}
}

func TestBatchCut(t *testing.T) {
	t.Parallel()
	rec := func(n int) *record { return &record{event: []byte(strings.Repeat("x", n))} }
	queue := []*record{rec(10), rec(10), rec(10), rec(10)}
	overhead := len(eventPrefix) + len(eventSuffix)
	tests := []struct {
		name         string
		queue        []*record
		size, bytes  int
		n            int
		wantComplete bool
	}{
		{name: "fewer records than the batch size", queue: queue, size: 10, bytes: 1 << 20, n: 4},
		{name: "batch size reached", queue: queue, size: 3, bytes: 1 << 20, n: 3, wantComplete: true},
		{name: "payload limit reached", queue: queue, size: 10, bytes: overhead + 10 + 11, n: 2, wantComplete: true},
		{name: "a record over the limit still goes alone", queue: []*record{rec(100), rec(1)}, size: 10, bytes: 50, n: 1, wantComplete: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, complete := batchCut(tt.queue, tt.size, tt.bytes)
			if n != tt.n || complete != tt.wantComplete {
				t.Errorf("batchCut = %d, %v; want %d, %v", n, complete, tt.n, tt.wantComplete)
			}
			if got := len(eventPayload(tt.queue[:n])); n > 1 && got > tt.bytes {
				t.Errorf("payload %d bytes over %d", got, tt.bytes)
			}
		})
	}
}

func TestSeqLessAndLanes(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		a, b string
		less bool
	}{{"9", "10", true}, {"10", "9", false}, {"123", "124", true}, {"124", "124", false}, {"0099", "100", true}} {
		if got := seqLess(c.a, c.b); got != c.less {
			t.Errorf("seqLess(%s, %s) = %v", c.a, c.b, got)
		}
	}
	used := map[int]bool{}
	for i := range 100 {
		k := "key-" + string(rune('a'+i%26)) + strings.Repeat("x", i/26)
		l := laneOf(k, 10)
		if l != laneOf(k, 10) || l < 0 || l >= 10 {
			t.Fatalf("laneOf(%s) = %d, not stable or out of range", k, l)
		}
		used[l] = true
	}
	if len(used) < 8 {
		t.Errorf("100 keys use only %d of 10 lanes", len(used))
	}
}

func TestMappingConfigValidate(t *testing.T) {
	t.Parallel()
	if err := DefaultMappingConfig("s").Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	tests := []struct {
		name  string
		mod   func(*MappingConfig)
		field string
	}{
		{"no stream", func(c *MappingConfig) { c.StreamName = "" }, "StreamName"},
		{"batch size 0", func(c *MappingConfig) { c.BatchSize = 0 }, "BatchSize"},
		{"batch size 10001", func(c *MappingConfig) { c.BatchSize = 10001 }, "BatchSize"},
		{"window 301", func(c *MappingConfig) { c.MaximumBatchingWindowInSeconds = 301 }, "MaximumBatchingWindowInSeconds"},
		{"parallelization 11", func(c *MappingConfig) { c.ParallelizationFactor = 11 }, "ParallelizationFactor"},
		{"no starting position", func(c *MappingConfig) { c.StartingPosition = "" }, "StartingPosition"},
		{"AT_TIMESTAMP without a time", func(c *MappingConfig) { c.StartingPosition = AtTimestamp }, "StartingPositionTimestamp"},
		{"unknown response type", func(c *MappingConfig) { c.FunctionResponseTypes = []string{"Partial"} }, "FunctionResponseTypes"},
		{"retries -2", func(c *MappingConfig) { c.MaximumRetryAttempts = -2 }, "MaximumRetryAttempts"},
		{"record age 0", func(c *MappingConfig) { c.MaximumRecordAgeInSeconds = 0 }, "MaximumRecordAgeInSeconds"},
		{"no poll interval", func(c *MappingConfig) { c.PollInterval = 0 }, "PollInterval"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultMappingConfig("s")
			tt.mod(&c)
			if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tt.field+":") {
				t.Errorf("Validate() = %v, want a %s error", err, tt.field)
			}
		})
	}
	var zero MappingConfig
	if err := zero.Validate(); err == nil || strings.Count(err.Error(), "\n") < 4 {
		t.Errorf("a zero config reports %v; want every problem", err)
	}
}
