package lambdaesm

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	ktypes "github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/ferry-migrate/ferry/internal/stack"
	"github.com/ferry-migrate/ferry/load"
)

// testBootstrap is internal/testfn built as a bootstrap, once per test binary.
var testBootstrap string

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	dir, err := os.MkdirTemp("", "lambdaesm-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	testBootstrap = filepath.Join(dir, "bootstrap")
	if err := BuildBootstrap(ctx, "./internal/testfn", testBootstrap); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if _, err := BuildRIE(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}

// directive is internal/testfn's Directive: what the function does with a record.
type directive struct {
	ID           string `json:"id"`
	Fail         bool   `json:"fail,omitempty"`
	EmptyFailure bool   `json:"emptyFailure,omitempty"`
	Error        bool   `json:"error,omitempty"`
	Panic        bool   `json:"panic,omitempty"`
	Times        int    `json:"times,omitempty"`
	SleepMS      int    `json:"sleepMs,omitempty"`
	Pad          string `json:"pad,omitempty"`
}

// invocation is a line of internal/testfn's log.
type invocation struct {
	PID    int               `json:"pid"`
	Start  time.Time         `json:"start"`
	End    time.Time         `json:"end"`
	Event  json.RawMessage   `json:"event"`
	Result string            `json:"result"`
	Failed []string          `json:"failed"`
	Env    map[string]string `json:"env"`
	ev     events.KinesisEvent
}

func (inv invocation) ids() []string {
	var out []string
	for _, r := range inv.ev.Records {
		var d directive
		_ = json.Unmarshal(r.Kinesis.Data, &d)
		out = append(out, d.ID)
	}
	return out
}

func (inv invocation) keys() []string {
	var out []string
	for _, r := range inv.ev.Records {
		out = append(out, r.Kinesis.PartitionKey)
	}
	return out
}

// fn is a function (internal/testfn) running in a Runtime, with its log.
type fn struct {
	rt  *Runtime
	log string
}

// startFn starts internal/testfn in n environments; the runtime stops with the test.
func startFn(t *testing.T, n int, timeout time.Duration, env ...string) *fn {
	t.Helper()
	dir := t.TempDir()
	logPath := filepath.Join(dir, "invocations.jsonl")
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	rt, err := StartRuntime(ctx, RuntimeConfig{
		Bootstrap:   testBootstrap,
		Concurrency: n,
		Timeout:     timeout,
		Env:         append([]string{"TESTFN_LOG=" + logPath}, env...),
		LogDir:      dir,
		Logger:      slog.New(slog.NewTextHandler(t.Output(), nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		rt.Close()
		if t.Failed() {
			logs, _ := filepath.Glob(filepath.Join(dir, "env-*.log"))
			for _, l := range logs {
				data, _ := os.ReadFile(l)
				t.Logf("%s:\n%s", filepath.Base(l), tail(string(data), 3000))
			}
		}
	})
	return &fn{rt: rt, log: logPath}
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

// invocations reads the function's log, in the order the invocations ended.
func (f *fn) invocations(t *testing.T) []invocation {
	t.Helper()
	file, err := os.Open(f.log)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	var out []invocation
	sc := bufio.NewScanner(file)
	sc.Buffer(nil, 64<<20)
	for sc.Scan() {
		var inv invocation
		if err := json.Unmarshal(sc.Bytes(), &inv); err != nil {
			t.Fatalf("function log: %v", err)
		}
		if err := json.Unmarshal(inv.Event, &inv.ev); err != nil {
			t.Fatalf("function log event: %v", err)
		}
		out = append(out, inv)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// batches lists each invocation's record ids, in log order.
func (f *fn) batches(t *testing.T) [][]string {
	var out [][]string
	for _, inv := range f.invocations(t) {
		out = append(out, inv.ids())
	}
	return out
}

// testStream creates a stream of n shards in the local stack's kinesalite,
// deleted when the test ends.
func testStream(t *testing.T, shards int) (*kinesis.Client, string) {
	t.Helper()
	st := stack.ForTest(t)
	kc := st.KinesisClient()
	name := randomName("esm-")
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	if err := load.EnsureStreams(ctx, kc, []string{name}, shards); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, _ = kc.DeleteStream(ctx, &kinesis.DeleteStreamInput{StreamName: aws.String(name)})
	})
	return kc, name
}

// put is a record to put: its partition key and directive.
type put struct {
	key string
	d   directive
}

// putted is where a record landed.
type putted struct {
	id, key, shard, seq string
}

// putRecords puts records with one PutRecords call (kinesalite keeps their
// order) and returns where each landed.
func putRecords(t *testing.T, kc *kinesis.Client, stream string, recs ...put) []putted {
	t.Helper()
	var entries []ktypes.PutRecordsRequestEntry
	for _, r := range recs {
		data, err := json.Marshal(r.d)
		if err != nil {
			t.Fatal(err)
		}
		entries = append(entries, ktypes.PutRecordsRequestEntry{Data: data, PartitionKey: aws.String(r.key)})
	}
	// One attempt: an SDK retry of a PutRecords that kinesalite did apply
	// would put the records twice (seen once under load).
	out, err := kc.PutRecords(t.Context(), &kinesis.PutRecordsInput{StreamName: aws.String(stream), Records: entries},
		func(o *kinesis.Options) { o.RetryMaxAttempts = 1 })
	if err != nil {
		t.Fatalf("PutRecords: %v", err)
	}
	if aws.ToInt32(out.FailedRecordCount) != 0 {
		t.Fatalf("PutRecords: %d failed", aws.ToInt32(out.FailedRecordCount))
	}
	var res []putted
	for i, r := range out.Records {
		res = append(res, putted{id: recs[i].d.ID, key: recs[i].key, shard: aws.ToString(r.ShardId), seq: aws.ToString(r.SequenceNumber)})
	}
	return res
}

// records makes n records r<from>…r<from+n-1> on key, with directives
// changed by mod (by id).
func records(key string, from, n int, mod map[string]directive) []put {
	var out []put
	for i := from; i < from+n; i++ {
		id := fmt.Sprintf("r%d", i)
		d := directive{ID: id}
		if m, ok := mod[id]; ok {
			d = m
			d.ID = id
		}
		out = append(out, put{key: key, d: d})
	}
	return out
}

// testMapping returns a mapping config for tests: fast polls and backoffs.
func testMapping(stream string) MappingConfig {
	cfg := DefaultMappingConfig(stream)
	cfg.PollInterval = 50 * time.Millisecond
	cfg.RetryBackoff = 10 * time.Millisecond
	cfg.MaxRetryBackoff = 200 * time.Millisecond
	return cfg
}

// startMapping starts a mapping, closed when the test ends.
func startMapping(t *testing.T, kc KinesisAPI, inv Invoker, cfg MappingConfig) *Mapping {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cfg.Logger = slog.New(slog.NewTextHandler(t.Output(), nil))
	m, err := StartMapping(ctx, kc, inv, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// waitCaughtUp waits for the mapping, at most limit.
func waitCaughtUp(t *testing.T, m *Mapping, limit time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), limit)
	defer cancel()
	if err := m.WaitCaughtUp(ctx); err != nil {
		t.Fatal(err)
	}
}

func joinBatches(b [][]string) string {
	var parts []string
	for _, x := range b {
		parts = append(parts, "["+strings.Join(x, " ")+"]")
	}
	return strings.Join(parts, " ")
}

func randomName(prefix string) string {
	b := make([]byte, 5)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}
