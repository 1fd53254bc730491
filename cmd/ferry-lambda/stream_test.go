package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/jackc/pgx/v5"

	"github.com/ferry-migrate/ferry/internal/faultproxy"
	"github.com/ferry-migrate/ferry/internal/lambdaesm"
	"github.com/ferry-migrate/ferry/internal/stack"
	"github.com/ferry-migrate/ferry/internal/testkit"
	"github.com/ferry-migrate/ferry/internal/workload"
	"github.com/ferry-migrate/ferry/load"
	"github.com/ferry-migrate/ferry/verify"
)

// The binaries the stream tests run: ferry (backfill, plan, sync, verify) and
// the function's bootstrap, built once per test binary.
var bins struct {
	once             sync.Once
	ferry, bootstrap string
	err              error
}

func buildBins(t *testing.T) (ferry, bootstrap string) {
	t.Helper()
	bins.once.Do(func() {
		dir, err := os.MkdirTemp("", "ferry-lambda-bin-")
		if err != nil {
			bins.err = err
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		bins.ferry = filepath.Join(dir, "ferry")
		if out, err := exec.CommandContext(ctx, "go", "build", "-o", bins.ferry, "../ferry").CombinedOutput(); err != nil {
			bins.err = fmt.Errorf("build ferry: %v\n%s", err, out)
			return
		}
		bins.bootstrap = filepath.Join(dir, "fn", "bootstrap")
		bins.err = lambdaesm.BuildBootstrap(ctx, "github.com/ferry-migrate/ferry/cmd/ferry-lambda", bins.bootstrap)
	})
	if bins.err != nil {
		t.Fatal(bins.err)
	}
	return bins.ferry, bins.bootstrap
}

// streamEnv is one test's migration: its own database, table, stream,
// control table and slot on the shared stack.
type streamEnv struct {
	st                                   *stack.Stack
	db, mapping, target, stream, control string
	slot, dir, ferry, bootstrap          string
}

func newStreamEnv(t *testing.T) *streamEnv {
	st := stack.ForTest(t)
	e := &streamEnv{st: st, db: st.TestDatabase(t), target: testkit.Name("pagila_"), stream: testkit.Name("pagila-"),
		control: testkit.Name("ctl_"), slot: testkit.Name("ferry_"), dir: t.TempDir()}
	e.mapping = testkit.PagilaMapping(t, e.target, e.stream)
	e.ferry, e.bootstrap = buildBins(t)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		for _, tbl := range []string{e.target, e.control} {
			_, _ = st.DynamoClient().DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: aws.String(tbl)})
		}
		_, _ = st.KinesisClient().DeleteStream(ctx, &kinesis.DeleteStreamInput{StreamName: aws.String(e.stream)})
	})
	return e
}

// ferryCmd is a ferry command pointed at the stack (the standard AWS chain).
func (e *streamEnv) ferryCmd(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, e.ferry, args...)
	cmd.Env = append(os.Environ(), e.st.Env()...)
	return cmd
}

func (e *streamEnv) run(t *testing.T, args ...string) string {
	t.Helper()
	out, err := e.ferryCmd(t.Context(), args...).CombinedOutput()
	if err != nil {
		t.Fatalf("ferry %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func (e *streamEnv) common() []string {
	return []string{"--source", e.db, "--mapping", e.mapping, "--slot", e.slot, "--control-table", e.control}
}

// startFunction runs the applier under the Runtime Interface Emulator with
// the compiled plan, fed by an event source mapping on the stream.
func (e *streamEnv) startFunction(t *testing.T, mc func(*lambdaesm.MappingConfig), wrap func(*lambdaesm.Runtime) lambdaesm.Invoker, env ...string) (*lambdaesm.Runtime, *lambdaesm.Mapping) {
	t.Helper()
	ctx := t.Context()
	plan := filepath.Join(e.dir, "plan.json")
	e.run(t, "plan", "--compile", "--out", plan, "--source", e.db, "--mapping", e.mapping)
	rt, err := lambdaesm.StartRuntime(ctx, lambdaesm.RuntimeConfig{
		Bootstrap:   e.bootstrap,
		Env:         append(append([]string{EnvPlan + "=" + plan, EnvControlTable + "=" + e.control, EnvWorkers + "=8"}, e.st.Env()...), env...),
		Concurrency: 4,
		Timeout:     60 * time.Second,
		LogDir:      e.dir,
		Logger:      slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close() })
	cfg := lambdaesm.DefaultMappingConfig(e.stream)
	cfg.FunctionResponseTypes = []string{"ReportBatchItemFailures"}
	cfg.BisectBatchOnFunctionError = true
	cfg.ParallelizationFactor = 4
	cfg.BatchSize = 100
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	if mc != nil {
		mc(&cfg)
	}
	var inv lambdaesm.Invoker = rt
	if wrap != nil {
		inv = wrap(rt)
	}
	m, err := lambdaesm.StartMapping(ctx, e.st.KinesisClient(), inv, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return rt, m
}

// startSync runs `ferry sync --apply stream` until the test stops it.
func (e *streamEnv) startSync(t *testing.T, extra ...string) func() {
	t.Helper()
	var out strings.Builder
	cmd := e.ferryCmd(context.Background(), append(append([]string{"sync", "--apply", "stream", "--status-every", "1s"}, e.common()...), extra...)...)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("sync: %v\n%s", err, out.String())
			}
		case <-time.After(time.Minute):
			_ = cmd.Process.Kill()
			t.Errorf("sync did not stop within a minute\n%s", out.String())
		}
	}
	t.Cleanup(stop)
	return stop
}

// hotKey updates one film as fast as rate allows until ctx ends.
func hotKey(ctx context.Context, db string, film int, perSecond int) error {
	conn, err := pgx.Connect(ctx, db)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	tick := time.NewTicker(time.Second / time.Duration(perSecond))
	defer tick.Stop()
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		if _, err := conn.Exec(ctx, "UPDATE film SET rental_duration = $1 WHERE film_id = $2", 3+i%5, film); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
	}
}

// TestApplyStream: `sync --apply stream` with the applier under the emulators
// (4 shards, ParallelizationFactor 4), the DVD-store workload, a hot key
// updated 50 times a second and a TRUNCATE: after catch-up, verify of
// DynamoDB and of the stream is consistent, and no probed item ever went back
// to an older _version.
func TestApplyStream(t *testing.T) {
	t.Parallel()
	runStreamScenario(t, false)
}

// TestApplyStreamUnderFaults: the same under injected faults — the
// invocation fails after the function ran on 10 % of invocations (the mapping
// bisects and retries), the runtime is killed in the middle of a batch now and
// then, DynamoDB throttles 20 % of the function's requests — plus a poison row
// (an item over 400 KB): exact, with the poison row at the on-failure
// destination and dead-lettered in verify's report.
func TestApplyStreamUnderFaults(t *testing.T) {
	t.Parallel()
	runStreamScenario(t, true)
}

func runStreamScenario(t *testing.T, faults bool) {
	e := newStreamEnv(t)
	ctx := t.Context()
	start := time.Now()
	phase := func(what string) { t.Logf("%6.1fs %s", time.Since(start).Seconds(), what) }
	e.run(t, append([]string{"backfill", "--shards", "4", "--progress", "log"}, e.common()...)...)
	phase("backfilled")
	var env []string
	var inv *faultyInvoker
	var gate *gateInvoker
	dest := &lambdaesm.FileDestination{Path: filepath.Join(e.dir, "on-failure.jsonl")}
	if faults {
		proxy, err := faultproxy.Start(e.st.DynamoEndpoint, 7, faultproxy.Rule{Target: "DynamoDB_20120810.", Kind: faultproxy.Throttle, Rate: 0.2})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { proxy.Close() })
		env = append(env, "AWS_ENDPOINT_URL_DYNAMODB="+proxy.URL)
		defer func() {
			if n := proxy.Injected(faultproxy.Throttle); n == 0 {
				t.Errorf("no throttling was injected")
			} else {
				t.Logf("throttled requests: %d", n)
			}
		}()
	}
	_, m := e.startFunction(t, func(c *lambdaesm.MappingConfig) {
		c.StartingPosition = lambdaesm.Latest
		if faults {
			c.MaximumRetryAttempts = 3
			c.OnFailure = dest
		}
	}, func(rt *lambdaesm.Runtime) lambdaesm.Invoker {
		if !faults {
			gate = &gateInvoker{inner: rt}
			return gate
		}
		inv = &faultyInvoker{rt: rt, bootstrap: e.bootstrap, failRate: 0.1, killEvery: 20}
		return inv
	}, env...)
	stopSync := e.startSync(t)
	probe := testkit.WatchVersions(ctx, e.st.DynamoClient(), e.target, 200)
	phase("function and sync started")

	wctx, stopLoad := context.WithCancel(ctx)
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	wg.Add(2)
	go func() {
		defer wg.Done()
		if _, err := workload.Run(wctx, workload.Config{SourceURL: e.db, Rate: 100, Seed: 12}); err != nil && wctx.Err() == nil {
			errs <- err
		}
	}()
	go func() { defer wg.Done(); errs <- hotKey(wctx, e.db, 7, 50) }()
	pause := func(d time.Duration) {
		select {
		case <-time.After(d):
		case <-ctx.Done():
		}
	}
	pause(4 * time.Second)
	conn, err := pgx.Connect(ctx, e.db)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	stmts := []string{"TRUNCATE film_category", "INSERT INTO film_category (film_id, category_id) VALUES (1, 2), (3, 4)",
		// Schema changes, with the function's plan compiled before them: the
		// records made after them name their definitions, which the
		// function reads from the control table (no new deployment).
		"ALTER TABLE customer ADD COLUMN nickname text DEFAULT 'pal'",
		"UPDATE customer SET nickname = 'n' || customer_id WHERE customer_id <= 5",
		"ALTER TABLE customer ALTER COLUMN create_date TYPE timestamp without time zone",
		"UPDATE customer SET create_date = create_date + interval '90 minutes' WHERE customer_id BETWEEN 6 AND 10",
	}
	if faults {
		// An item DynamoDB can never hold (over 400 KB).
		stmts = append(stmts, "UPDATE film SET description = repeat('x', 450000) WHERE film_id = 20")
	}
	for _, q := range stmts {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	pause(2 * time.Second)
	if _, err := conn.Exec(ctx, "ALTER TABLE customer DROP COLUMN nickname"); err != nil {
		t.Fatal(err)
	}
	pause(2 * time.Second)
	stopLoad()
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	phase("workload stopped")
	if err := testkit.WaitCaughtUp(ctx, e.db, e.slot, 3*time.Minute); err != nil {
		t.Fatal(err)
	}
	phase("sync caught up")
	// Bounded: a record the function can never apply (e.g. one made with a
	// definition it cannot find) holds its shard forever. About 10 s
	// alone, 100 s under faults.
	cctx, cancel := context.WithTimeout(ctx, 6*time.Minute)
	defer cancel()
	if err := m.WaitCaughtUp(cctx); err != nil {
		t.Fatal(err)
	}
	phase("function caught up")
	if regress := probe(); len(regress) > 0 {
		for _, r := range regress {
			t.Error(r)
		}
	}
	if !faults {
		e.verifyBehindFunction(t, gate, 1, nil)
		phase("verified while the function lagged behind a running sync")
		e.verifyBehindFunction(t, gate, 2, stopSync)
		phase("verified while the function lagged behind a stopped sync")
	}
	stopSync()
	e.checkApplied(t, "public.film_category")
	rep := e.verify(t)
	phase("verified")
	if !faults {
		if rep.Verdict != "consistent" {
			t.Errorf("verify: %s, want consistent: %+v", rep.Verdict, rep.Totals)
		}
		return
	}
	if inv.failed.Load() == 0 || inv.killed.Load() == 0 {
		t.Errorf("faults injected: %d failed invocations, %d runtimes killed; want some of each", inv.failed.Load(), inv.killed.Load())
	}
	t.Logf("invocations %d, failed after running %d, runtimes killed %d", inv.calls.Load(), inv.failed.Load(), inv.killed.Load())
	// Exact but for the poison row, which is dead-lettered (DynamoDB) and
	// on the stream (its event is there).
	tot := rep.Totals
	if tot.Missing != 0 || tot.Extra != 0 || tot.Differing != 0 || tot.Unconvertible != 0 || tot.DeadLettered != 1 {
		t.Errorf("verify totals %+v, want only the poison row, dead-lettered", tot)
		e.logLines(t, "film_id=20", "dead")
	}
	for _, tr := range rep.Tables {
		for _, f := range tr.Findings {
			if f.Kind == "dead_lettered" && (f.Table != "public.film" || f.Key != "film_id=20") {
				t.Errorf("dead-lettered %s %s, want public.film film_id=20", f.Table, f.Key)
			}
		}
	}
	for _, sr := range rep.Streams {
		if sr.Verdict != "consistent" {
			t.Errorf("stream %s: %s", sr.Stream, sr.Verdict)
		}
	}
	recs, err := dest.Records()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) == 0 {
		t.Errorf("nothing reached the on-failure destination; the poison row's record should have")
	}
}

// verify runs `ferry verify --stream --format json` and decodes its report.
func (e *streamEnv) verify(t *testing.T) verify.Report {
	t.Helper()
	out, err := e.ferryCmd(t.Context(), append([]string{"verify", "--stream", "--format", "json"}, e.common()...)...).Output()
	var rep verify.Report
	if jerr := json.Unmarshal(out, &rep); jerr != nil {
		t.Fatalf("verify: %v, report %v\n%s", err, jerr, out)
	}
	t.Logf("verify: %s, totals %+v", rep.Verdict, rep.Totals)
	return rep
}

// verifyBehindFunction: verify while sync is caught up and the function is
// behind it is exact, sync running or stopped (then by stop). sync's
// checkpoint says only that Kinesis holds the changes; verify re-checks the
// rows that differ once the function applied them, which it learns from
// barrier records on the rows' partition keys. The function is held (gate)
// while a few films and customers change, and let go only once verify has
// published its barriers: a verify that did not wait for them would read
// the items before the function wrote them.
func (e *streamEnv) verifyBehindFunction(t *testing.T, gate *gateInvoker, n int, stop func()) {
	t.Helper()
	ctx := t.Context()
	gate.hold()
	defer gate.release()
	conn, err := pgx.Connect(ctx, e.db)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	for _, q := range []string{
		"UPDATE film SET rental_rate = rental_rate + 1 WHERE film_id <= 5",
		"UPDATE customer SET email = 'moved.' || email WHERE customer_id <= 5",
	} {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	if err := testkit.WaitCaughtUp(ctx, e.db, e.slot, time.Minute); err != nil {
		t.Fatal(err)
	}
	if stop != nil {
		stop()
	}
	var stdout bytes.Buffer
	cmd := e.ferryCmd(ctx, append([]string{"verify", "--format", "json", "--tables", "film,customer"}, e.common()...)...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = &stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var log strings.Builder
	published := false
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		log.WriteString(sc.Text() + "\n")
		if strings.Contains(sc.Text(), "published barrier records") {
			published = true
			gate.release()
		}
	}
	err = cmd.Wait()
	var rep verify.Report
	if jerr := json.Unmarshal(stdout.Bytes(), &rep); jerr != nil {
		t.Fatalf("verify: %v, report %v\n%s", err, jerr, log.String())
	}
	if err != nil || rep.Verdict != verify.VerdictConsistent || !published {
		t.Errorf("verify %d while the function lags: %v, verdict %s, totals %+v, barriers published %v", n, err, rep.Verdict, rep.Totals, published)
		for _, tb := range rep.Tables {
			for _, f := range tb.Findings {
				t.Errorf("  %s %s (%s): %s", f.Kind, f.Table, f.Key, f.Reason)
			}
		}
		t.Log(log.String())
	}
	t.Logf("verify %d while the function lags: %s, %d rows matching", n, rep.Verdict, rep.Totals.Matching)
}

// gateInvoker holds the function's invocations while held.
type gateInvoker struct {
	inner lambdaesm.Invoker
	mu    sync.Mutex
	held  chan struct{} // nil: not held
}

func (g *gateInvoker) hold() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.held == nil {
		g.held = make(chan struct{})
	}
}

func (g *gateInvoker) release() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.held != nil {
		close(g.held)
		g.held = nil
	}
}

func (g *gateInvoker) Invoke(ctx context.Context, id string, payload []byte) ([]byte, error) {
	g.mu.Lock()
	held := g.held
	g.mu.Unlock()
	if held != nil {
		select {
		case <-held:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return g.inner.Invoke(ctx, id, payload)
}

// logLines logs the function's log lines that contain any of words.
func (e *streamEnv) logLines(t *testing.T, words ...string) {
	logs, _ := filepath.Glob(filepath.Join(e.dir, "env-*.log"))
	for _, l := range logs {
		data, _ := os.ReadFile(l)
		for _, line := range strings.Split(string(data), "\n") {
			for _, w := range words {
				if strings.Contains(line, w) {
					t.Log(line[:min(len(line), 600)])
					break
				}
			}
		}
	}
}

// faultyInvoker invokes the function, then reports a function error for a
// share of the invocations (the function ran: its writes happened), and
// kills the runtime in the middle of every killEvery-th invocation.
type faultyInvoker struct {
	rt        *lambdaesm.Runtime
	bootstrap string
	failRate  float64
	killEvery int64
	calls     atomic.Int64
	failed    atomic.Int64
	killed    atomic.Int64
}

func (f *faultyInvoker) Invoke(ctx context.Context, id string, payload []byte) ([]byte, error) {
	n := f.calls.Add(1)
	if n%f.killEvery == 0 {
		go func() {
			time.Sleep(5 * time.Millisecond)
			if killProcesses(f.bootstrap) > 0 {
				f.killed.Add(1)
			}
		}()
	}
	out, err := f.rt.Invoke(ctx, id, payload)
	if err == nil && rand.Float64() < f.failRate {
		f.failed.Add(1)
		return nil, &lambdaesm.FunctionError{RequestID: id, Type: "Injected", Message: "injected after the function ran"}
	}
	return out, err
}

// killProcesses sends SIGKILL to every process running the executable path
// and returns how many it found.
func killProcesses(path string) int {
	n := 0
	exes, _ := filepath.Glob("/proc/[0-9]*/exe")
	for _, exe := range exes {
		if target, err := os.Readlink(exe); err == nil && target == path {
			pid, err := strconv.Atoi(filepath.Base(filepath.Dir(exe)))
			if err == nil && syscall.Kill(pid, syscall.SIGKILL) == nil {
				n++
			}
		}
	}
	return n
}

// checkApplied asserts that the function applied the stream: every shard has
// an applied position, and the TRUNCATEs of the tables named were swept.
func (e *streamEnv) checkApplied(t *testing.T, truncated ...string) {
	t.Helper()
	state := load.NewApplyState(e.st.DynamoClient(), e.control)
	pos, err := state.ShardPositions(t.Context(), e.stream)
	if err != nil {
		t.Fatal(err)
	}
	if len(pos) != 4 {
		t.Errorf("applied positions of %d shards, want 4 (every shard had changes and a TRUNCATE): %+v", len(pos), pos)
	}
	status := e.run(t, append([]string{"status"}, e.common()...)...)
	if want := "applier on stream " + e.stream + " (sync --apply stream): 4 shards with applied changes"; !strings.Contains(status, want) {
		t.Errorf("ferry status does not show the applier (%q):\n%s", want, status)
	}
	for _, name := range truncated {
		f, err := state.Fence(t.Context(), name)
		if err != nil {
			t.Fatal(err)
		}
		if f.Truncated == "" || f.Swept != f.Truncated {
			t.Errorf("fence of %s: %+v, want a TRUNCATE applied and swept", name, f)
		}
	}
}
