package metrics

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/ferry-migrate/ferry/extract"
	"github.com/ferry-migrate/ferry/internal/pipeline"
	"github.com/ferry-migrate/ferry/load"
)

// recorder is a pipeline.Progress that counts what it was told.
type recorder struct{ starts, adds, dones atomic.Int64 }

func (r *recorder) TableStart(string, int64, int64) { r.starts.Add(1) }
func (r *recorder) Add(string, int64)               { r.adds.Add(1) }
func (r *recorder) TableDone(*pipeline.TableStats)  { r.dones.Add(1) }

func TestBackfillProgress(t *testing.T) {
	cases := []struct {
		name  string
		inner pipeline.Progress
		run   func(p pipeline.Progress)
		want  string
	}{
		{"fresh copy", &recorder{}, func(p pipeline.Progress) {
			p.TableStart("public.actor", 200, 0)
			p.Add("public.actor", 120)
			p.Add("public.actor", 80)
			p.TableDone(&pipeline.TableStats{Table: "public.actor", Rows: 200})
			p.TableStart("public.film", 1000, 0)
			p.Add("public.film", 500)
		}, `
ferry_backfill_rows_read_total{table="public.actor"} 200
ferry_backfill_rows_read_total{table="public.film"} 500
ferry_backfill_table_done{table="public.actor"} 1
ferry_backfill_table_done{table="public.film"} 0
`},
		{"resumed, rows that failed counted at the end", nil, func(p pipeline.Progress) {
			p.TableStart("public.payment", 16000, 10000)
			p.Add("public.payment", 5990)
			p.TableDone(&pipeline.TableStats{Table: "public.payment", Rows: 6000})
		}, `
ferry_backfill_rows_read_total{table="public.payment"} 16000
ferry_backfill_table_done{table="public.payment"} 1
`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := New("backfill", "ferry")
			c.run(m.Progress(c.inner))
			want := "# HELP ferry_backfill_rows_read_total " + descHelp(descRowsRead) + "\n# TYPE ferry_backfill_rows_read_total counter\n" +
				lines(c.want, "ferry_backfill_rows_read_total") +
				"# HELP ferry_backfill_table_done " + descHelp(descTableDone) + "\n# TYPE ferry_backfill_table_done gauge\n" +
				lines(c.want, "ferry_backfill_table_done")
			if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(want), "ferry_backfill_rows_read_total", "ferry_backfill_table_done"); err != nil {
				t.Error(err)
			}
			if r, ok := c.inner.(*recorder); ok && (r.starts.Load() != 2 || r.adds.Load() != 3 || r.dones.Load() != 1) {
				t.Errorf("the wrapped progress saw %d starts, %d adds, %d dones; want 2, 3, 1", r.starts.Load(), r.adds.Load(), r.dones.Load())
			}
		})
	}
}

func descHelp(d interface{ String() string }) string {
	s := d.String()
	_, rest, _ := strings.Cut(s, `help: "`)
	help, _, _ := strings.Cut(rest, `"`)
	return help
}

func lines(text, prefix string) string {
	var b strings.Builder
	for _, l := range strings.Split(strings.TrimSpace(text), "\n") {
		if strings.HasPrefix(l, prefix+"{") || strings.HasPrefix(l, prefix+" ") {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

func TestSyncStatusGauges(t *testing.T) {
	m := New("sync", "ferry")
	m.SetWALBudget(1 << 30)
	commit := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	cases := []struct {
		name string
		st   pipeline.SyncStatus
		want map[string]float64
	}{
		{"behind", pipeline.SyncStatus{Changes: 40, LagBytes: 4096, LagSeconds: 2.5, RetainedWAL: 1 << 20, Acked: extract.LSN(0x1_0000_0010), LastCommit: commit,
			Snapshot: &pipeline.SnapshotProgress{Rows: 500, Chunks: 2}}, map[string]float64{
			"ferry_sync_changes_applied_total": 40, "ferry_sync_lag_bytes": 4096, "ferry_sync_lag_seconds": 2.5,
			"ferry_sync_retained_wal_bytes": 1 << 20, "ferry_sync_wal_budget_bytes": 1 << 30, "ferry_sync_applied_lsn_bytes": 0x1_0000_0010,
			"ferry_sync_last_commit_timestamp_seconds": float64(commit.Unix()), "ferry_online_snapshot_rows_total": 500,
			"ferry_online_snapshot_chunks_total": 2, "ferry_online_snapshot_active": 1,
		}},
		{"caught up", pipeline.SyncStatus{Changes: 90, LagBytes: -5, Acked: 0x20}, map[string]float64{
			"ferry_sync_changes_applied_total": 90, "ferry_sync_lag_bytes": 0, "ferry_sync_lag_seconds": 0, "ferry_online_snapshot_active": 0,
		}},
	}
	var seen []pipeline.SyncStatus
	status := m.SyncStatus(func(st pipeline.SyncStatus) { seen = append(seen, st) })
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			status(c.st)
			for name, want := range c.want {
				if got := gathered(t, m, name, nil); got != want {
					t.Errorf("%s = %v, want %v", name, got, want)
				}
			}
		})
	}
	if len(seen) != len(cases) {
		t.Errorf("the wrapped status callback saw %d statuses, want %d", len(seen), len(cases))
	}
}

// gathered returns the value of the one metric of that name (and labels).
func gathered(t *testing.T, m *Metrics, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metric:
		for _, mt := range mf.GetMetric() {
			for _, lp := range mt.GetLabel() {
				if want, ok := labels[lp.GetName()]; ok && want != lp.GetValue() {
					continue metric
				}
			}
			switch {
			case mt.Counter != nil:
				return mt.Counter.GetValue()
			case mt.Gauge != nil:
				return mt.Gauge.GetValue()
			case mt.Histogram != nil:
				return float64(mt.Histogram.GetSampleCount())
			}
		}
	}
	t.Fatalf("no metric %s %v", name, labels)
	return 0
}

func TestAttemptKind(t *testing.T) {
	resp := func(code int, err error) error {
		return &smithyhttp.ResponseError{Response: &smithyhttp.Response{Response: &http.Response{StatusCode: code}}, Err: err}
	}
	cases := []struct {
		name string
		err  error
		want string
	}{
		{"DynamoDB throttled", resp(400, &smithy.GenericAPIError{Code: "ProvisionedThroughputExceededException"}), "throttle"},
		{"Kinesis throttled", resp(400, &smithy.GenericAPIError{Code: "ThrottlingException"}), "throttle"},
		{"server error", resp(503, &smithy.GenericAPIError{Code: "ServiceUnavailable"}), "server_error"},
		{"failed condition", resp(400, &smithy.GenericAPIError{Code: "ConditionalCheckFailedException"}), ""},
		{"connection reset", &net.OpError{Op: "read", Err: errors.New("connection reset by peer")}, "transport"},
		{"cancelled", fmt.Errorf("request: %w", context.Canceled), ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := attemptKind(c.err); got != c.want {
				t.Errorf("attemptKind(%v) = %q, want %q", c.err, got, c.want)
			}
		})
	}
}

// The middleware sees every attempt: two throttled answers, then success,
// count two throttles of DynamoDB although the call succeeds.
func TestAWSMiddlewareCountsThrottledAttempts(t *testing.T) {
	var calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/x-amz-json-1.0")
		if calls.Add(1) <= 2 {
			w.WriteHeader(http.StatusBadRequest)
			_, _ = io.WriteString(w, `{"__type":"com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException","message":"slow down"}`)
			return
		}
		_, _ = io.WriteString(w, `{"TableNames":[]}`)
	}))
	defer srv.Close()
	m := New("sync", "ferry")
	cfg := aws.Config{
		Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("k", "s", ""),
		BaseEndpoint: aws.String(srv.URL),
		Retryer: func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) {
				o.MaxAttempts = 5
				o.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return time.Millisecond, nil })
			})
		},
		APIOptions: nil,
	}
	cfg.APIOptions = append(cfg.APIOptions, m.AWSMiddleware)
	if _, err := dynamodb.NewFromConfig(cfg).ListTables(t.Context(), &dynamodb.ListTablesInput{}); err != nil {
		t.Fatal(err)
	}
	if got := gathered(t, m, "ferry_throttles_total", map[string]string{"service": "dynamodb"}); got != 2 {
		t.Errorf("ferry_throttles_total{service=dynamodb} = %v, want 2", got)
	}
	if got := gathered(t, m, "ferry_retries_total", map[string]string{"kind": "aws_throttle"}); got != 2 {
		t.Errorf("ferry_retries_total{kind=aws_throttle} = %v, want 2", got)
	}
	if got := gathered(t, m, "ferry_throttles_total", map[string]string{"service": "kinesis"}); got != 0 {
		t.Errorf("ferry_throttles_total{service=kinesis} = %v, want 0 (present from the start)", got)
	}
}

func TestSyncObserver(t *testing.T) {
	m := New("sync", "ferry")
	now := time.Date(2026, 1, 1, 0, 0, 10, 0, time.UTC)
	m.now = func() time.Time { return now }
	m.BatchApplied(10, 30*time.Millisecond, now.Add(-2*time.Second), now.Add(-time.Second))
	m.BatchApplied(0, 5*time.Millisecond, time.Time{}, time.Time{}) // an online snapshot's chunk alone
	for _, what := range []string{"applying a batch", "applying a batch", "checkpoint", "read item of public.film"} {
		m.Retry(what)
	}
	cases := []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"ferry_batch_duration_seconds", map[string]string{"pipeline": "sync"}, 2},
		{"ferry_commit_to_applied_seconds", nil, 1},
		{"ferry_retries_total", map[string]string{"kind": "sync_batch"}, 2},
		{"ferry_retries_total", map[string]string{"kind": "sync_checkpoint"}, 1},
		{"ferry_retries_total", map[string]string{"kind": "sync_other"}, 1},
	}
	for _, c := range cases {
		if got := gathered(t, m, c.name, c.labels); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
}

func TestRing(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	cases := []struct {
		name  string
		n     int
		every time.Duration
		adds  []time.Duration // offsets from t0
		want  []time.Duration
	}{
		{"empty", 3, 10 * time.Second, nil, nil},
		{"one sample per interval, the latest beside them", 5, 10 * time.Second, []time.Duration{0, 2 * time.Second, 10 * time.Second, 14 * time.Second},
			[]time.Duration{0, 10 * time.Second, 14 * time.Second}},
		{"wraps around, oldest first", 3, time.Second, []time.Duration{0, time.Second, 2 * time.Second, 3 * time.Second, 4 * time.Second},
			[]time.Duration{2 * time.Second, 3 * time.Second, 4 * time.Second}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := newRing(c.n, c.every)
			for _, d := range c.adds {
				r.add(LagSample{Time: t0.Add(d)})
			}
			got := r.list()
			if len(got) != len(c.want) {
				t.Fatalf("%d samples, want %d: %v", len(got), len(c.want), got)
			}
			for i := range got {
				if !got[i].Time.Equal(t0.Add(c.want[i])) {
					t.Errorf("sample %d at %v, want %v", i, got[i].Time.Sub(t0), c.want[i])
				}
			}
		})
	}
}

func TestHandler(t *testing.T) {
	m := New("sync", "ferry_x")
	m.Progress(nil).TableStart("public.actor", 200, 0)
	m.SyncStatus(nil)(pipeline.SyncStatus{LagSeconds: 1.5, RetainedWAL: 100})
	m.SetSlotSource(func(context.Context) (*SlotState, error) {
		return &SlotState{Name: "ferry_x", Exists: true, Active: true}, nil
	})
	m.SetVerifySource(func(context.Context) (*pipeline.VerifyRecord, error) {
		return nil, errors.New("control table unreachable")
	})
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	get := func(path string) (string, string) {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s: %s", path, resp.Status)
		}
		return resp.Header.Get("Content-Type"), string(b)
	}
	if ct, body := get("/"); !strings.HasPrefix(ct, "text/html") || !strings.Contains(body, `id="lag-line"`) || strings.Contains(body, "http://") && strings.Contains(body, "<script src") {
		t.Errorf("GET /: %s, a page without the chart or with external assets", ct)
	}
	if _, body := get("/metrics"); !strings.Contains(body, "ferry_sync_lag_seconds 1.5") {
		t.Errorf("GET /metrics lacks the lag:\n%s", body)
	}
	_, body := get("/status.json")
	var st Status
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatal(err)
	}
	if st.Slot != "ferry_x" || len(st.Tables) != 1 || st.Sync == nil || st.Sync.LagSeconds != 1.5 || len(st.Lag) != 1 ||
		st.SlotNow == nil || !st.SlotNow.Active || st.Verify != nil || len(st.Errors) != 1 {
		t.Errorf("status.json: %s", body)
	}
	resp, err := http.Get(srv.URL + "/nothing")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /nothing: %s, want 404", resp.Status)
	}
}

func TestSeedBackfill(t *testing.T) {
	m := New("sync", "ferry")
	m.Progress(nil).TableStart("public.film", 1000, 0) // a live table wins over its record
	m.SeedBackfill([]pipeline.RecordedTable{
		{Table: "public.rental", Rows: 16044, Planned: 16000, ChunksDone: 4, Chunks: 4},
		{Table: "public.actor", Rows: 100, Planned: 200, ChunksDone: 1, Chunks: 2},
		{Table: "public.film", Rows: 1000, Planned: 1000, ChunksDone: 1, Chunks: 1},
	})
	cases := []struct {
		table      string
		read, done float64
	}{
		{"public.rental", 16044, 1},
		{"public.actor", 100, 0},
		{"public.film", 0, 0},
	}
	for _, c := range cases {
		l := map[string]string{"table": c.table}
		if got := gathered(t, m, "ferry_backfill_rows_read_total", l); got != c.read {
			t.Errorf("%s: rows read %v, want %v", c.table, got, c.read)
		}
		if got := gathered(t, m, "ferry_backfill_table_done", l); got != c.done {
			t.Errorf("%s: done %v, want %v", c.table, got, c.done)
		}
	}
	var order []string
	for _, tp := range m.Status(t.Context()).Tables {
		order = append(order, tp.Table)
	}
	if strings.Join(order, " ") != "public.film public.actor public.rental" {
		t.Errorf("status page order %q: live tables first, then the recorded ones by name", order)
	}
}

// Writers replaced (sync starts again with new ones when it adds tables)
// keep their counts: the counters only grow.
func TestWatchWritersKeepsCounts(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/x-amz-json-1.0")
		_, _ = io.WriteString(w, `{"UnprocessedItems":{}}`)
	}))
	defer srv.Close()
	client := dynamodb.NewFromConfig(aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("k", "s", ""),
		BaseEndpoint: aws.String(srv.URL)})
	write := func(w *load.DynamoWriter, n int) {
		var reqs []load.WriteRequest
		for i := range n {
			id := fmt.Sprint(i)
			reqs = append(reqs, load.WriteRequest{Table: "t", KeyID: id, Put: load.Item{"pk": &types.AttributeValueMemberS{Value: id}}})
		}
		if _, err := w.Write(t.Context(), reqs); err != nil {
			t.Fatal(err)
		}
	}
	m := New("sync", "ferry")
	first := load.NewDynamoWriter(client, load.DynamoConfig{})
	m.WatchWriters(first, nil)
	write(first, 3)
	second := load.NewDynamoWriter(client, load.DynamoConfig{})
	m.WatchWriters(second, nil)
	write(second, 2)
	if got := gathered(t, m, "ferry_dynamodb_items_written_total", nil); got != 5 {
		t.Errorf("ferry_dynamodb_items_written_total = %v, want 5 (3 by the replaced writer)", got)
	}
}
