package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/chromedp/chromedp"

	"github.com/ferry-migrate/ferry/extract"
	"github.com/ferry-migrate/ferry/internal/faultproxy"
	"github.com/ferry-migrate/ferry/internal/stack"
	"github.com/ferry-migrate/ferry/internal/testkit"
)

// One sync child with --metrics-addr, seen from outside as an operator
// would: /metrics scraped during its backfill (rows read per table equal the
// source's) and during the sync under the workload (a burst of DynamoDB
// throttling shows in the throttle counter; the lag falls to zero once the
// workload stops), the status page in headless Chromium (the tables, a
// non-empty lag chart, the slot, the last verify's verdict). Then the stream
// is deleted and sync re-creates it (with --retention) and goes on (its
// metrics show the backfill as the control table recorded it): the
// backfill's events are gone, and verify --stream reports the rows whose
// only events they were as expired, not missing, and exits 0.
func TestMetricsStatusPageAndExpiredStream(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	start := time.Now()
	phase := func(what string) { t.Logf("%5.1fs %s", time.Since(start).Seconds(), what) }
	e := newBackfillEnv(t)
	// The big tables out: a backfill of the rest takes seconds, and the
	// workload still changes customer, address, actor and film.
	e.mapping = withoutTables(t, e.mapping, "rental", "payment", "film_actor", "inventory")
	ddb, err := faultproxy.Start(e.st.DynamoEndpoint, 15)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ddb.Close() })
	e.env = append(os.Environ(), "AWS_ENDPOINT_URL_DYNAMODB="+ddb.URL)
	want := sourceCounts(ctx, t, e)

	p := e.startSyncChild(t, e.db, "--metrics-addr", "127.0.0.1:0", "--status-every", "300ms")
	base := metricsURL(t, p)

	// During the backfill (sync runs it first): rows read, per table.
	m := pollMetrics(t, base, "a scrape during the backfill", func(m metricValues) bool { return m.has("ferry_backfill_rows_read_total{") })
	if m.has("ferry_sync_status_timestamp_seconds") {
		t.Errorf("the first scrape with backfill rows already had sync's status: not scraped during the backfill")
	}
	m = pollMetrics(t, base, "every table copied", func(m metricValues) bool {
		for table := range want {
			if m[`ferry_backfill_table_done{table="`+table+`"}`] != 1 {
				return false
			}
		}
		return m.has("ferry_sync_status_timestamp_seconds")
	})
	phase("backfill scraped")
	var total float64
	for table, n := range want {
		if got := m[`ferry_backfill_rows_read_total{table="`+table+`"}`]; got != float64(n) {
			t.Errorf("ferry_backfill_rows_read_total{table=%q} = %v, want the table's %d rows", table, got, n)
		}
		total += float64(n)
	}
	if m["ferry_dynamodb_items_written_total"] < total || m["ferry_kinesis_records_written_total"] < total {
		t.Errorf("items written %v, records written %v, want at least the %v rows", m["ferry_dynamodb_items_written_total"],
			m["ferry_kinesis_records_written_total"], total)
	}
	if m[`ferry_batch_duration_seconds_count{pipeline="backfill"}`] == 0 {
		t.Error("no backfill batch latency observed")
	}

	// Sync under the workload, with a burst of throttling from DynamoDB.
	stopWorkload := startWorkload(ctx, t, e, 40, 15)
	pollMetrics(t, base, "changes applied", func(m metricValues) bool { return m["ferry_sync_changes_applied_total"] > 0 })
	ddb.SetRules(faultproxy.Rule{Target: "DynamoDB_20120810.", Kind: faultproxy.Throttle, Rate: 0.5})
	m = pollMetrics(t, base, "throttles counted", func(m metricValues) bool { return m[`ferry_throttles_total{service="dynamodb"}`] > 0 })
	ddb.SetRules()
	if injected := ddb.Injected(faultproxy.Throttle); injected == 0 || m[`ferry_retries_total{kind="aws_throttle"}`] == 0 {
		t.Errorf("throttles injected %d, ferry_retries_total{kind=aws_throttle} %v", injected, m[`ferry_retries_total{kind="aws_throttle"}`])
	}
	// The last verify's verdict, recorded in the control table, for the page.
	if code, out, errOut := runFerry(t, e.verifyArgs("--tables", "language")...); code != 0 {
		t.Fatalf("verify --tables language: exit %d\n%s\n%s", code, out, errOut)
	}
	phase("throttles counted, verify recorded")
	checkStatusPage(ctx, t, base, e.slot, len(want))
	phase("status page checked")
	pollMetrics(t, base, "commit-to-applied latency", func(m metricValues) bool {
		return m["ferry_commit_to_applied_seconds_count"] > 0 && m[`ferry_batch_duration_seconds_count{pipeline="sync"}`] > 0
	})

	stopWorkload()
	p.caughtUp(ctx, t, e)
	m = pollMetrics(t, base, "the lag at zero", func(m metricValues) bool {
		return m.has("ferry_sync_lag_seconds") && m["ferry_sync_lag_seconds"] == 0 && m["ferry_sync_lag_bytes"] == 0
	})
	t.Logf("caught up: lag %v s, %v bytes, retained WAL %v bytes, %v changes applied", m["ferry_sync_lag_seconds"], m["ferry_sync_lag_bytes"],
		m["ferry_sync_retained_wal_bytes"], m["ferry_sync_changes_applied_total"])
	p.stop(t)
	phase("lag at zero, sync stopped")

	// The backfill's events expire: the stream is gone, and sync makes a
	// new one (with the retention ferry gives the streams it creates).
	kc := e.st.KinesisClient()
	if err := deleteStream(ctx, kc, e.stream); err != nil {
		t.Fatal(err)
	}
	// (kinesalite, like Kinesis before 2020, allows at most 168 hours.)
	p = e.startSyncChild(t, e.db, "--metrics-addr", "127.0.0.1:0")
	// A sync that did not run the backfill shows it as recorded.
	m = pollMetrics(t, metricsURL(t, p), "the recorded backfill", func(m metricValues) bool { return m.has("ferry_backfill_table_done{") })
	for table, n := range want {
		if m[`ferry_backfill_table_done{table="`+table+`"}`] != 1 || m[`ferry_backfill_rows_read_total{table="`+table+`"}`] != float64(n) {
			t.Errorf("second sync: %s recorded with %v rows, done %v; want %d rows, done", table,
				m[`ferry_backfill_rows_read_total{table="`+table+`"}`], m[`ferry_backfill_table_done{table="`+table+`"}`], n)
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for hours := int32(0); hours != 168; time.Sleep(100 * time.Millisecond) { // poll interval of a bounded wait
		if out, err := kc.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(e.stream)}); err == nil {
			hours = aws.ToInt32(out.StreamDescriptionSummary.RetentionPeriodHours)
		}
		if time.Now().After(deadline) {
			t.Fatalf("the re-created stream keeps its records %d hours, want the default --retention 168h", hours)
		}
	}
	e.runWorkload(ctx, t, 16, 40, 3*time.Second) // changes for the new stream
	p.caughtUp(ctx, t, e)
	p.stop(t)
	phase("second sync stopped")
	code, rep := runVerifyJSON(t, e.verifyArgs("--stream", "--tables", "customer,language")...)
	if len(rep.Streams) != 1 {
		t.Fatalf("verify --stream: %d stream reports", len(rep.Streams))
	}
	sr := rep.Streams[0]
	if code != 0 || rep.Verdict != "consistent" || sr.Missing != 0 || sr.Expired == 0 || sr.Trimmed == "" || sr.Matching == 0 ||
		sr.Expired+sr.Matching != sr.SourceRows {
		t.Errorf("verify --stream after the backfill's events expired: exit %d, verdict %s, stream %s: %d source rows, %d matching, %d expired, %d missing, %d differing (trimmed: %q)\nfindings: %+v",
			code, rep.Verdict, sr.Stream, sr.SourceRows, sr.Matching, sr.Expired, sr.Missing, sr.Differing, sr.Trimmed, sr.Findings)
	}
	phase("verify --stream")
	_, out, _ := runFerry(t, e.verifyArgs("--stream", "--tables", "language")...)
	if !strings.Contains(out, "reported as expired, not missing") {
		t.Errorf("verify --stream text report does not explain the expired rows:\n%s", out)
	}
}

// withoutTables writes a copy of the mapping file without the tables'
// entries and returns its path.
func withoutTables(t *testing.T, path string, tables ...string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	for _, table := range tables {
		text, _ = cutTable(t, text, table)
	}
	out := filepath.Join(t.TempDir(), "mapping.yaml")
	if err := os.WriteFile(out, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return out
}

// sourceCounts returns each mapped table's row count.
func sourceCounts(ctx context.Context, t *testing.T, e *backfillEnv) map[string]int64 {
	t.Helper()
	conn, err := extract.Connect(ctx, e.db)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	out := map[string]int64{}
	for _, tp := range e.plan(ctx, t).Tables {
		var n int64
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM "+tp.Source.Ident()).Scan(&n); err != nil {
			t.Fatal(err)
		}
		out[tp.Source.QualifiedName()] = n
	}
	return out
}

var servingURL = regexp.MustCompile(`metrics: serving [^\n]*url=(http://[0-9.:]+)/`)

// metricsURL waits (bounded) for the child's log line naming the address it
// serves metrics on.
func metricsURL(t *testing.T, p *syncChild) string {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		if m := servingURL.FindStringSubmatch(p.err.String()); m != nil {
			return m[1]
		}
		select {
		case <-p.done:
			t.Fatalf("sync exited (%d) before serving metrics\n%s\n%s", p.code, p.out.String(), p.err.String())
		case <-time.After(50 * time.Millisecond): // poll interval of a bounded wait
		}
		if time.Now().After(deadline) {
			t.Fatalf("no metrics address logged within a minute\n%s", p.err.String())
		}
	}
}

// metricValues are the samples of one scrape: `name{labels}` → value.
type metricValues map[string]float64

func (m metricValues) has(prefix string) bool {
	for k := range m {
		if strings.HasPrefix(k, prefix) {
			return true
		}
	}
	return false
}

func scrape(base string) (metricValues, error) {
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return nil, fmt.Errorf("GET /metrics: %s: %s", resp.Status, b)
	}
	out := metricValues{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			return nil, fmt.Errorf("metrics line %q: %w", line, err)
		}
		out[line[:i]] = v
	}
	return out, sc.Err()
}

// pollMetrics scrapes every 50 ms until ok holds (bounded: a minute).
func pollMetrics(t *testing.T, base, what string, ok func(metricValues) bool) metricValues {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		m, err := scrape(base)
		if err == nil && ok(m) {
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not seen on /metrics within a minute (last scrape: %v)\n%v", what, err, m)
		}
		time.Sleep(50 * time.Millisecond) // poll interval of a bounded wait
	}
}

// checkStatusPage loads the status page in headless Chromium and waits
// (bounded) until it shows every table, a lag chart with points, the slot
// active and the last verify's verdict.
func checkStatusPage(ctx context.Context, t *testing.T, base, slot string, tables int) {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.NoSandbox, chromedp.Flag("disable-dev-shm-usage", true))
	actx, cancel := chromedp.NewExecAllocator(ctx, opts...)
	defer cancel()
	bctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	// The first run starts the browser: no timeout on its context (it would
	// stop the browser); the later ones are bounded.
	if err := chromedp.Do(bctx, chromedp.Navigate(base+"/")); err != nil {
		t.Fatalf("status page in headless Chromium (apt-get install chromium; .ci/install-deps does): %v", err)
	}
	wctx, cancel := context.WithTimeout(bctx, 60*time.Second)
	defer cancel()
	ready := fmt.Sprintf(`document.querySelectorAll("#tables tr[data-table]").length >= %d &&
		document.getElementById("lag-line").getAttribute("points") !== "" &&
		document.getElementById("slot").textContent.includes("state: active") &&
		document.getElementById("verify").textContent.includes("verdict")`, tables)
	type shown struct {
		Rows   []string `json:"rows"`
		Points string   `json:"points"`
		Slot   string   `json:"slot"`
		Verify string   `json:"verify"`
		WAL    string   `json:"wal"`
		Body   string   `json:"body"`
	}
	read := chromedp.Evaluate[shown](`({
		rows: Array.from(document.querySelectorAll("#tables tr[data-table]")).map(r => r.dataset.table),
		points: document.getElementById("lag-line").getAttribute("points"),
		slot: document.getElementById("slot").textContent,
		verify: document.getElementById("verify").textContent,
		wal: document.getElementById("wal-text").textContent,
		body: document.body.innerText,
	})`)
	if _, err := chromedp.Run(wctx, chromedp.Poll[bool](ready, chromedp.WithPollingTimeout(50*time.Second))); err != nil {
		pg, _ := chromedp.Run(bctx, read)
		t.Fatalf("status page did not show the tables, the lag chart, the active slot and the last verify: %v\n%s", err, pg.Body)
	}
	pg, err := chromedp.Run(wctx, read)
	if err != nil {
		t.Fatal(err)
	}
	if len(pg.Rows) != tables || !strings.Contains(strings.Join(pg.Rows, " "), "public.customer") {
		t.Errorf("status page lists tables %q, want the %d mapped tables", pg.Rows, tables)
	}
	if n := len(strings.Fields(pg.Points)); n < 2 {
		t.Errorf("lag chart has %d points (%q), want a line", n, pg.Points)
	}
	if !strings.Contains(pg.Slot, slot) || !strings.Contains(pg.Slot, "state: active") {
		t.Errorf("status page slot: %q, want %s active", pg.Slot, slot)
	}
	if !strings.Contains(pg.Verify, "verdict: consistent") {
		t.Errorf("status page last verify: %q, want consistent", pg.Verify)
	}
	if !strings.Contains(pg.WAL, "budget") {
		t.Errorf("status page retained WAL: %q, want it against the budget", pg.WAL)
	}
}

// --retention outside Kinesis' range and a --metrics-addr that cannot be
// bound are usage errors (exit 2) that name the flag.
func TestMetricsAndRetentionFlags(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	db := stack.ForTest(t).TestDatabase(t)
	mapping := testkit.PagilaMapping(t, testkit.Name("pagila_"), testkit.Name("pagila-"))
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"retention under a day", []string{"backfill", "--source", "postgres://x", "--mapping", "m.yaml", "--retention", "5h"}, "--retention must be whole hours from 24h to 8760h"},
		{"retention not in hours", []string{"sync", "--source", "postgres://x", "--mapping", "m.yaml", "--retention", "36h30m"}, "--retention must be whole hours"},
		{"retention over a year", []string{"backfill", "--source", "postgres://x", "--mapping", "m.yaml", "--retention", "9000h"}, "not 9000h0m0s"},
		{"metrics address taken", []string{"backfill", "--source", db, "--mapping", mapping, "--sink", "null", "--metrics-addr", ln.Addr().String()},
			"--metrics-addr: metrics address " + ln.Addr().String()},
	}
	for _, c := range cases {
		code, out, errOut := tmFerryCode(ctx, t, c.args...)
		if code != 2 || !strings.Contains(errOut, c.want) {
			t.Errorf("%s: exit %d, want 2 with %q\n%s\n%s", c.name, code, c.want, out, errOut)
		}
	}
}
