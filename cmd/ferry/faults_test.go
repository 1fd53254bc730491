package main

import (
	"bytes"
	"context"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferry-migrate/ferry/extract"
	"github.com/ferry-migrate/ferry/internal/faultproxy"
	"github.com/ferry-migrate/ferry/internal/stack"
	"github.com/ferry-migrate/ferry/internal/testkit"
	"github.com/ferry-migrate/ferry/internal/workload"
)

// faultEnv puts a fault-injecting proxy in front of each emulator and points
// ferry at them through the standard AWS_ENDPOINT_URL_* settings. The
// checks (checkExact, checkSynced) read the emulators directly.
type faultEnv struct {
	*backfillEnv
	ddb, kin *faultproxy.Proxy
}

func newFaultEnv(t *testing.T, e *backfillEnv, seed uint64) *faultEnv {
	t.Helper()
	ddb, err := faultproxy.Start(e.st.DynamoEndpoint, seed)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ddb.Close() })
	kin, err := faultproxy.Start(e.st.KinesisEndpoint, seed+1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = kin.Close() })
	t.Setenv("AWS_ENDPOINT_URL_DYNAMODB", ddb.URL)
	t.Setenv("AWS_ENDPOINT_URL_KINESIS", kin.URL)
	return &faultEnv{backfillEnv: e, ddb: ddb, kin: kin}
}

func (f *faultEnv) setRules(rules ...faultproxy.Rule) {
	f.ddb.SetRules(rules...)
	f.kin.SetRules(rules...)
}

// faultKinds are the faults each pipeline must shrug off, at 20 % of every
// request to DynamoDB and Kinesis (the control table's included).
var faultKinds = []struct {
	name string
	rule faultproxy.Rule
}{
	{"throttling", faultproxy.Rule{Kind: faultproxy.Throttle, Rate: 0.2}},
	{"partial batches", faultproxy.Rule{Kind: faultproxy.Partial, Rate: 0.2}},
	{"HTTP 500 and 503", faultproxy.Rule{Kind: faultproxy.ServerError, Rate: 0.2}},
	{"connection resets", faultproxy.Rule{Kind: faultproxy.Reset, Rate: 0.2}},
	{"latency spikes", faultproxy.Rule{Kind: faultproxy.Latency, Rate: 0.2, Delay: 150 * time.Millisecond}},
}

// goroutineBaseline returns a check that fails the test when goroutines of
// ferry's own (its packages, pgx, pglogrepl) are still running after the run,
// or, with count, when more goroutines run than before it, once the proxies'
// idle connections are closed. The count is only meaningful while the test
// made no AWS clients of its own in between (their idle connections hold
// goroutines of their own).
func goroutineBaseline(t *testing.T, count bool, proxies ...*faultproxy.Proxy) func() {
	// The signal package's loop goroutine starts with the first Notify (the
	// CLI's) and lives as long as the process: start it before counting.
	_, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	stop()
	before := runtime.NumGoroutine()
	existing := make(map[string]bool)
	for _, g := range goroutineDump() {
		existing[goroutineID(g)] = true
	}
	return func() {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for {
			for _, p := range proxies {
				p.DropIdle()
			}
			leaked := ferryGoroutines(existing)
			n := runtime.NumGoroutine()
			if len(leaked) == 0 && (!count || n <= before) {
				return
			}
			if time.Now().After(deadline) {
				if len(leaked) > 0 {
					t.Fatalf("goroutine leak: %d of ferry's still run after it returned:\n%s", len(leaked), strings.Join(leaked, "\n\n"))
				}
				var b bytes.Buffer
				_ = pprof.Lookup("goroutine").WriteTo(&b, 1)
				t.Fatalf("goroutine leak: %d running, %d before the run\n%s", n, before, b.String())
			}
			// Bounded poll: goroutines end asynchronously once their
			// connection is closed or their context is done.
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// goroutineDump returns the stack of every running goroutine, one per entry.
func goroutineDump() []string {
	var b bytes.Buffer
	_ = pprof.Lookup("goroutine").WriteTo(&b, 2)
	return strings.Split(strings.TrimSpace(b.String()), "\n\n")
}

// goroutineID returns the "goroutine N" header of a goroutineDump entry.
func goroutineID(g string) string {
	head, _, _ := strings.Cut(g, " [")
	return head
}

// ferryGoroutines lists the running goroutines that execute ferry's packages
// or the PostgreSQL driver and were not running at the baseline (existing,
// keyed by goroutineID), other than the tests' own, the proxies' and the
// local stack's (its process reapers live as long as the test binary, and
// start whenever the first test of the binary starts the stack).
func ferryGoroutines(existing map[string]bool) []string {
	var out []string
	for _, g := range goroutineDump() {
		if existing[goroutineID(g)] {
			continue
		}
		if !strings.Contains(g, "ferry-migrate/ferry/") && !strings.Contains(g, "jackc/") {
			continue
		}
		if strings.Contains(g, "ferry/cmd/ferry.Test") || strings.Contains(g, "ferry/cmd/ferry.testMain") ||
			strings.Contains(g, "ferry/internal/faultproxy") || strings.Contains(g, "ferry/internal/stack.") ||
			strings.Contains(g, "ferry/cmd/ferry.ferryGoroutines") || strings.Contains(g, "ferry/cmd/ferry.goroutineDump") {
			continue
		}
		out = append(out, g)
	}
	return out
}

// TestBackfillUnderFaults: with 20 % of the requests failing in each way
// production fails, backfill still ends in the exact state, with one r event
// per row on the stream, no per-key order inversion and no goroutine left.
func TestBackfillUnderFaults(t *testing.T) {
	// Not parallel: t.Setenv, and the leak check counts every goroutine of
	// this process.
	tables := []string{"film", "film_category", "actor", "category", "language", "customer", "store"}
	for i, kind := range faultKinds {
		t.Run(kind.name, func(t *testing.T) {
			e := newBackfillEnv(t)
			e.tables = tables
			f := newFaultEnv(t, e, uint64(100+i))
			ctx := t.Context()
			f.setRules(kind.rule)
			leaks := goroutineBaseline(t, true, f.ddb, f.kin)
			// In-process: the leak check counts this process's goroutines.
			code, out, errOut := runFerryInProcess(t, e.args("--tables", strings.Join(tables, ","))...)
			if code != 0 {
				t.Fatalf("backfill under %s: exit %d\n%s\n%s\nfaults: dynamodb %s; kinesis %s", kind.name, code, out, errOut, f.ddb, f.kin)
			}
			leaks()
			if f.ddb.Injected(kind.rule.Kind) == 0 || f.kin.Injected(kind.rule.Kind) == 0 {
				t.Fatalf("no %s injected: dynamodb %s; kinesis %s", kind.rule.Kind, f.ddb, f.kin)
			}
			t.Logf("faults: dynamodb %s; kinesis %s", f.ddb, f.kin)
			e.checkExact(ctx, t, 0)
			e.checkStream(ctx, t)
		})
	}
}

// shrink keeps the first 3,000 rentals and their payments (about 20,000 rows
// in all instead of 46,273), so that the many exactness checks of the fault
// tests stay quick; the workload tolerates the gaps.
func (e *backfillEnv) shrink(ctx context.Context, t *testing.T) {
	t.Helper()
	e.exec(ctx, t, "DELETE FROM payment WHERE rental_id > 3000", "DELETE FROM rental WHERE rental_id > 3000")
}

// inProcessSync runs `ferry sync` in this process until stop is called.
type inProcessSync struct {
	cancel context.CancelFunc
	done   chan int
	out    *lockedBuffer
}

func (e *backfillEnv) startSyncInProcess(t *testing.T, extra ...string) *inProcessSync {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	p := &inProcessSync{cancel: cancel, done: make(chan int, 1), out: &lockedBuffer{}}
	args := append([]string{"sync", "--source", e.db, "--mapping", e.mapping, "--slot", e.slot,
		"--control-table", e.control, "--progress", "log", "--heartbeat", "1s"}, extra...)
	go func() { p.done <- runContext(ctx, args, p.out, p.out) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-p.done:
		case <-time.After(2 * time.Minute):
		}
	})
	return p
}

// stop cancels sync (as SIGTERM does) and expects exit 0 within a bound.
func (p *inProcessSync) stop(t *testing.T) {
	t.Helper()
	p.cancel()
	select {
	case code := <-p.done:
		if code != 0 {
			t.Fatalf("sync exit %d after cancel\n%s", code, p.out)
		}
		p.done <- code
	case <-time.After(2 * time.Minute):
		t.Fatalf("sync did not stop within 2 minutes of cancel\n%s", p.out)
	}
}

// running fails the test when sync has exited.
func (p *inProcessSync) running(t *testing.T) {
	t.Helper()
	select {
	case code := <-p.done:
		p.done <- code
		t.Fatalf("sync exited with %d while it should run\n%s", code, p.out)
	default:
	}
}

// logOnFailure logs the end of sync's output when t fails.
func (p *inProcessSync) logOnFailure(t *testing.T) {
	t.Cleanup(func() {
		if t.Failed() {
			lines := strings.Split(p.out.String(), "\n")
			if len(lines) > 120 {
				lines = lines[len(lines)-120:]
			}
			t.Logf("sync output (last %d lines):\n%s", len(lines), strings.Join(lines, "\n"))
		}
	})
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// runWorkload runs DVD-store traffic for d (bounded) and fails on its errors.
func (e *backfillEnv) runWorkload(ctx context.Context, t *testing.T, seed int64, rate float64, d time.Duration) {
	t.Helper()
	if _, err := workload.Run(ctx, workload.Config{SourceURL: e.db, Rate: rate, Duration: d, Seed: seed, Workers: 2}); err != nil {
		t.Fatalf("workload: %v", err)
	}
}

// TestSyncUnderFaults runs one sync through the proxies while the workload
// runs, one fault kind after the other at 20 %, then with its walsender
// terminated twice, then through a 30 s outage of DynamoDB and Kinesis: after
// each phase DynamoDB and the folded stream equal the source exactly, and the
// sync that ran through all of it stops cleanly without leaving goroutines.
func TestSyncUnderFaults(t *testing.T) {
	// Not parallel: t.Setenv, sync in-process, and the leak check sees every
	// goroutine of this process.
	e := newBackfillEnv(t)
	f := newFaultEnv(t, e, 7)
	ctx := t.Context()
	e.shrink(ctx, t)
	if code, out, errOut := runFerry(t, e.args()...); code != 0 {
		t.Fatalf("backfill exit %d\n%s\n%s", code, out, errOut)
	}
	leaks := goroutineBaseline(t, false, f.ddb, f.kin)
	p := e.startSyncInProcess(t)
	e.waitStreaming(ctx, t)
	for i, kind := range faultKinds {
		t.Run(kind.name, func(t *testing.T) {
			p.logOnFailure(t)
			f.setRules(kind.rule)
			defer f.setRules()
			before := f.ddb.Injected(kind.rule.Kind) + f.kin.Injected(kind.rule.Kind)
			e.runWorkload(ctx, t, int64(20+i), 40, 4*time.Second)
			e.checkSynced(ctx, t)
			p.running(t)
			if f.ddb.Injected(kind.rule.Kind)+f.kin.Injected(kind.rule.Kind) == before {
				t.Fatalf("no %s injected: dynamodb %s; kinesis %s", kind.rule.Kind, f.ddb, f.kin)
			}
		})
	}
	t.Run("walsender terminated", func(t *testing.T) {
		p.logOnFailure(t)
		wctx, cancel := context.WithCancel(ctx)
		defer cancel()
		wdone := make(chan error, 1)
		go func() {
			_, err := workload.Run(wctx, workload.Config{SourceURL: e.db, Rate: 40, Seed: 31, Workers: 2})
			wdone <- err
		}()
		for range 2 {
			e.terminateWalsender(ctx, t)
		}
		cancel()
		if err := <-wdone; err != nil && err != context.Canceled {
			t.Fatal(err)
		}
		e.checkSynced(ctx, t)
		p.running(t)
		if !strings.Contains(p.out.String(), "reconnecting from the checkpoint") {
			t.Errorf("sync did not log its reconnect:\n%s", p.out)
		}
	})
	t.Run("30 s outages of Kinesis, then DynamoDB", func(t *testing.T) {
		p.logOnFailure(t)
		// Kinesis goes down first; while it is still down (its batch is
		// being retried), DynamoDB goes down for 30 s too: sync falls
		// behind for about 35 s, then catches up.
		f.kin.OutageFor(30*time.Second, faultproxy.OutageReset)
		e.runWorkload(ctx, t, 41, 40, 5*time.Second)
		f.ddb.OutageFor(30*time.Second, faultproxy.OutageUnavailable)
		e.runWorkload(ctx, t, 42, 40, 2*time.Second)
		e.checkSynced(ctx, t)
		p.running(t)
		if f.ddb.Injected(faultproxy.Outage) == 0 || f.kin.Injected(faultproxy.Outage) == 0 {
			t.Fatalf("an outage refused nothing: dynamodb %s; kinesis %s", f.ddb, f.kin)
		}
		if !strings.Contains(p.out.String(), "retrying") {
			t.Errorf("sync did not log that it waits out the outage")
		}
	})
	p.stop(t)
	leaks()
}

// terminateWalsender ends the walsender serving the slot, as a failover or an
// administrator does, and waits (bounded) until sync streams again.
func (e *backfillEnv) terminateWalsender(ctx context.Context, t *testing.T) {
	t.Helper()
	conn, err := extract.Connect(ctx, e.db)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	pidOf := func() int {
		var pid *int32
		if err := conn.QueryRow(ctx, "SELECT active_pid FROM pg_replication_slots WHERE slot_name = $1", e.slot).Scan(&pid); err != nil {
			t.Fatal(err)
		}
		if pid == nil {
			return 0
		}
		return int(*pid)
	}
	deadline := time.Now().Add(time.Minute)
	old := 0
	for old == 0 {
		if old = pidOf(); old == 0 && time.Now().After(deadline) {
			t.Fatal("no walsender serves the slot")
		}
		time.Sleep(50 * time.Millisecond) // bounded poll
	}
	var ok bool
	if err := conn.QueryRow(ctx, "SELECT pg_terminate_backend($1)", old).Scan(&ok); err != nil || !ok {
		t.Fatalf("terminate walsender %d: %v %v", old, ok, err)
	}
	for {
		if pid := pidOf(); pid != 0 && pid != old {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("sync did not reconnect within a minute of its walsender's end")
		}
		time.Sleep(50 * time.Millisecond) // bounded poll
	}
}

// TestSyncSurvivesPostgresRestart restarts PostgreSQL (a private stack: the
// shared one serves other tests) under sync twice, with changes committed
// before, while and after it is down: sync reconnects with backoff and ends
// exact.
func TestSyncSurvivesPostgresRestart(t *testing.T) {
	// Not parallel: t.Setenv and sync in-process (runContext).
	dir, err := os.MkdirTemp("", "ferry-restart-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil { // the postgres user must reach it
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = stack.Down(context.Background(), dir)
		_ = os.RemoveAll(dir)
	})
	ctx := t.Context()
	st, err := stack.Up(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("AWS_ENDPOINT_URL_DYNAMODB", st.DynamoEndpoint)
	t.Setenv("AWS_ENDPOINT_URL_KINESIS", st.KinesisEndpoint)
	e := &backfillEnv{st: st, db: st.SourceURL, target: testkit.Name("pagila_"), stream: testkit.Name("pagila-"),
		slot: testkit.Name("ferry_"), control: testkit.Name("ctl_")}
	e.mapping = testkit.PagilaMapping(t, e.target, e.stream)
	e.shrink(ctx, t)
	if code, out, errOut := runFerry(t, e.args()...); code != 0 {
		t.Fatalf("backfill exit %d\n%s\n%s", code, out, errOut)
	}
	p := e.startSyncInProcess(t)
	e.waitStreaming(ctx, t)
	for i := range 2 {
		e.runWorkload(ctx, t, int64(50+i), 40, 2*time.Second)
		if err := st.RestartPostgres(ctx); err != nil {
			t.Fatal(err)
		}
		e.runWorkload(ctx, t, int64(60+i), 40, 2*time.Second)
		e.checkSynced(ctx, t)
		p.running(t)
	}
	if n := strings.Count(p.out.String(), "reconnecting from the checkpoint"); n < 2 {
		t.Errorf("sync logged %d reconnects, want at least 2:\n%s", n, p.out)
	}
	p.stop(t)
}

// TestWrongCredentials: AWS refusing the credentials (the emulators accept
// any, so the proxy answers as AWS does) stops backfill at once with exit 2,
// the service's message and no secret, before any slot or state is made.
func TestWrongCredentials(t *testing.T) {
	// Not parallel: t.Setenv.
	e := newBackfillEnv(t)
	f := newFaultEnv(t, e, 9)
	ctx := t.Context()
	const secret = "wrongSecretKeyDoNotPrint0123456789"
	t.Setenv("AWS_SECRET_ACCESS_KEY", secret)
	for _, p := range []*faultproxy.Proxy{f.ddb, f.kin} {
		f.setRules()
		p.SetRules(faultproxy.Rule{Kind: faultproxy.Unauthorized, Rate: 1})
		code, out, errOut := runFerry(t, e.args()...)
		if code != 2 {
			t.Fatalf("backfill with refused credentials: exit %d, want 2\n%s\n%s", code, out, errOut)
		}
		if !strings.Contains(errOut, "UnrecognizedClientException") || !strings.Contains(errOut, "security token") {
			t.Errorf("the error does not say the credentials were refused:\n%s", errOut)
		}
		if strings.Contains(out+errOut, secret) {
			t.Errorf("the secret key was printed:\n%s\n%s", out, errOut)
		}
	}
	conn, err := extract.Connect(ctx, e.db)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, exists, err := extract.LookupSlot(ctx, conn, e.slot); err != nil || exists {
		t.Errorf("a slot was created although AWS refused the credentials (exists %v, %v)", exists, err)
	}
}

// TestBackfillOverTLS: ferry talks to PostgreSQL over TLS with the URL's
// sslmode (verify-full against the stack's certificate), replication
// connection included.
func TestBackfillOverTLS(t *testing.T) {
	t.Parallel()
	e := newBackfillEnv(t)
	ctx := t.Context()
	e.tables = []string{"language", "category"}
	tlsURL := strings.Replace(e.db, "sslmode=disable", "sslmode=verify-full&sslrootcert="+e.st.CACertFile(), 1)
	if tlsURL == e.db {
		t.Fatalf("test database URL %s has no sslmode=disable to replace", e.db)
	}
	if code, out, errOut := runFerry(t, e.args("--source", tlsURL, "--tables", "language,category")...); code != 0 {
		t.Fatalf("backfill over TLS: exit %d\n%s\n%s", code, out, errOut)
	}
	e.checkExact(ctx, t, 0)
	wrong := strings.Replace(e.db, "sslmode=disable", "sslmode=verify-full&sslrootcert=/nonexistent/root.crt", 1)
	if code, _, errOut := runFerry(t, "plan", "--source", wrong, "--mapping", e.mapping); code != 2 {
		t.Errorf("plan with an unreadable root certificate: exit %d, want 2\n%s", code, errOut)
	}
}
