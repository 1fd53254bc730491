package jointest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/ferry-migrate/ferry/internal/faultproxy"
	"github.com/ferry-migrate/ferry/internal/pipeline"
	"github.com/ferry-migrate/ferry/internal/stack"
	"github.com/ferry-migrate/ferry/internal/testkit"
	"github.com/ferry-migrate/ferry/internal/workload"
	"github.com/ferry-migrate/ferry/load"
	"github.com/ferry-migrate/ferry/verify"
)

// raceWarning starts each report of the race detector.
const raceWarning = "WARNING: DATA RACE"

// binaries builds ferry twice: with -race for some of the backfill
// processes (the code under test), without for the others, sync and verify
// (as cmd/ferry's tests do: under the race detector ferry needs several
// times the CPU).
func binaries(t *testing.T) (race, plain string) {
	t.Helper()
	dir := t.TempDir()
	race, plain = filepath.Join(dir, "ferry-race"), filepath.Join(dir, "ferry")
	root := filepath.Join(testkit.RepoRoot(), "cmd", "ferry")
	var g sync.WaitGroup
	errs := make([]error, 2)
	for i, args := range [][]string{{"build", "-race", "-o", race, "."}, {"build", "-o", plain, "."}} {
		g.Go(func() {
			cmd := exec.CommandContext(t.Context(), "go", args...)
			cmd.Dir = root
			if out, err := cmd.CombinedOutput(); err != nil {
				errs[i] = fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, out)
			}
		})
	}
	g.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	return race, plain
}

// proc is a ferry child process.
type proc struct {
	name string
	cmd  *exec.Cmd
	mu   *sync.Mutex  // guards out (the env's)
	out  bytes.Buffer // stdout and stderr
	done chan struct{}
	err  error
}

// tail is the last n lines the process printed.
func (p *proc) tail(n int) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	lines := strings.Split(strings.TrimRight(p.out.String(), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// env is one test's migration on the shared stack.
type env struct {
	st                                   *stack.Stack
	db, mapping, target, stream, control string
	slot, race, plain                    string
	mu                                   sync.Mutex          // guards procs' output while they run
	extraEnv                             map[string][]string // by process name
}

func (e *env) common() []string {
	return []string{"--source", e.db, "--mapping", e.mapping, "--slot", e.slot, "--control-table", e.control}
}

// start runs ferry (bin) with args as a child process.
func (e *env) start(t *testing.T, name, bin string, args ...string) *proc {
	t.Helper()
	p := &proc{name: name, mu: &e.mu, done: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Env = append(append(os.Environ(), e.st.Env()...), e.extraEnv[name]...)
	p.cmd.Stdout, p.cmd.Stderr = &lockedWriter{mu: &e.mu, w: &p.out}, &lockedWriter{mu: &e.mu, w: &p.out}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

func (e *env) output(p *proc) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return p.out.String()
}

// kill ends p with SIGKILL and waits for it.
func (e *env) kill(t *testing.T, p *proc) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatalf("kill %s: %v", p.name, err)
	}
	<-p.done
	t.Logf("%s killed with -9", p.name)
}

// wait waits (bounded) for p to exit 0 and returns its output.
func (e *env) wait(t *testing.T, p *proc, limit time.Duration) string {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(limit):
		t.Fatalf("%s still running after %s\n%s", p.name, limit, e.output(p))
	}
	out := e.output(p)
	if p.err != nil || strings.Contains(out, raceWarning) {
		t.Fatalf("%s: %v\n%s", p.name, p.err, out)
	}
	return out
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

// waitFor polls the control table (or another observable state) until
// cond holds; every poll is bounded and a failed process ends the wait.
func waitFor(t *testing.T, what string, limit time.Duration, cond func() bool, alive ...*proc) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		for _, p := range alive {
			select {
			case <-p.done:
				t.Fatalf("waiting for %s: %s ended (%v)", what, p.name, p.err)
			default:
			}
		}
		if time.Now().After(deadline) {
			var out strings.Builder
			for _, p := range alive {
				fmt.Fprintf(&out, "\n%s's last lines:\n%s", p.name, p.tail(30))
			}
			t.Fatalf("%s: not within %s%s", what, limit, out.String())
		}
		select { // poll interval of a bounded wait on the control table
		case <-t.Context().Done():
			t.Fatal(t.Context().Err())
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// TestBackfillSharedByWorkers: a coordinator and three --join workers
// backfill Pagila ×3 while the DVD-store workload writes; one worker and
// then the coordinator are killed with -9 while they hold chunks (the
// coordinator is run again and resumes). Every chunk is recorded done
// once, sync catches up, and verify --stream finds DynamoDB and the stream
// exact, without an inversion.
func TestBackfillSharedByWorkers(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	start := time.Now()
	phase := func(what string) { t.Logf("%6.1fs %s", time.Since(start).Seconds(), what) }
	st := stack.ForTest(t)
	e := &env{st: st, db: st.TestDatabase(t), target: testkit.Name("join_"), stream: testkit.Name("join-"),
		control: testkit.Name("ctl_"), slot: testkit.Name("ferry_")}
	e.mapping = testkit.PagilaMapping(t, e.target, e.stream)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		for _, tbl := range []string{e.target, e.control} {
			_, _ = st.DynamoClient().DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: aws.String(tbl)})
		}
		_, _ = st.KinesisClient().DeleteStream(ctx, &kinesis.DeleteStreamInput{StreamName: aws.String(e.stream)})
	})
	var built sync.WaitGroup
	built.Go(func() { e.race, e.plain = binaries(t) })
	if _, err := workload.Scale(ctx, workload.ScaleConfig{SourceURL: e.db, Factor: 3}); err != nil {
		t.Fatal(err)
	}
	built.Wait()
	if t.Failed() {
		return
	}
	phase("Pagila scaled ×3, ferry built")

	wctx, stopWorkload := context.WithCancel(ctx)
	defer stopWorkload()
	wdone := make(chan error, 1)
	go func() {
		_, err := workload.Run(wctx, workload.Config{SourceURL: e.db, Rate: 40, Seed: 13})
		wdone <- err
	}()

	ctl := load.NewControlStore(st.DynamoClient(), e.control)
	stateID := pipeline.StateID(e.slot)
	leases, err := load.NewLeaseStore(ctl, stateID, "test", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	// holds reports whether worker holds a chunk's lease now.
	holds := func(worker string) bool {
		all, err := leases.List(ctx)
		if err != nil {
			return false // the control table is created by the coordinator
		}
		for _, l := range all {
			if l.Owner == worker {
				return true
			}
		}
		return false
	}
	activity := func() *pipeline.BackfillActivity {
		a, err := pipeline.Activity(ctx, ctl, e.slot)
		if err != nil {
			return &pipeline.BackfillActivity{}
		}
		return a
	}
	backfill := func(name string, extra ...string) []string {
		return append(append([]string{"backfill"}, e.common()...), append([]string{"--chunk-rows", "1500", "--lease", "3s",
			"--progress", "log", "--worker-name", name}, extra...)...)
	}

	// The code under test runs under the race detector in the first
	// coordinator and in w2; the others are built without it to keep the
	// test within its CPU budget (on two cores, beside the other suites).
	coord := e.start(t, "coordinator", e.race, backfill("coord1", "--workers", "2")...)
	waitFor(t, "the coordinator publishes its snapshot", time.Minute, func() bool {
		_, ok, err := ctl.Get(ctx, stateID, "live")
		return err == nil && ok
	}, coord)
	phase("coordinator exported its snapshot")
	// w3 reaches DynamoDB (targets and control table) through a proxy that
	// cuts it off for longer than a lease, mid-copy.
	proxy, err := faultproxy.Start(st.DynamoEndpoint, 3)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { proxy.Close() })
	e.extraEnv = map[string][]string{"w3": {"AWS_ENDPOINT_URL_DYNAMODB=" + proxy.URL}}
	workers := map[string]*proc{}
	for _, name := range []string{"w1", "w2", "w3"} {
		bin := e.plain
		if name == "w2" {
			bin = e.race
		}
		workers[name] = e.start(t, name, bin, backfill(name, "--join", "--workers", "1")...)
	}
	waitFor(t, "w1 holds a chunk", time.Minute, func() bool { return holds("w1") }, workers["w1"])
	e.kill(t, workers["w1"])
	phase("w1 killed holding a chunk")
	waitFor(t, "w3 holds a chunk", time.Minute, func() bool { return holds("w3") }, workers["w3"])
	proxy.OutageFor(5*time.Second, faultproxy.OutageUnavailable)
	phase("w3 cut off from DynamoDB for 5 s (leases last 3 s)")
	// Killed late (two thirds done): the rows the resumed coordinator
	// copies reach Kinesis through sync's second read, the slow part.
	waitFor(t, "the joined workers record chunks and the coordinator holds one, two thirds done", 2*time.Minute, func() bool {
		a := activity()
		return a.DoneBy["w2"] > 0 && a.DoneBy["w3"] > 0 && 3*a.ChunksDone >= 2*a.ChunksPlanned &&
			slices.ContainsFunc(a.Held, func(l load.Lease) bool { return l.Owner == "coord1" })
	}, coord)
	e.kill(t, coord)
	phase("coordinator killed holding a chunk")
	a := activity()
	if a.ChunksDone >= a.ChunksPlanned && a.ChunksPlanned > 0 {
		t.Fatalf("the copy ended before the coordinator was killed (%d of %d chunks): the test kills nothing mid-copy", a.ChunksDone, a.ChunksPlanned)
	}

	coord = e.start(t, "coordinator (resumed)", e.plain, backfill("coord2", "--workers", "2")...)
	out := e.wait(t, coord, 3*time.Minute)
	phase("resumed coordinator done")
	if !strings.Contains(out, "resumed") {
		t.Errorf("the coordinator run again did not resume:\n%s", out)
	}
	for _, name := range []string{"w2", "w3"} {
		e.wait(t, workers[name], time.Minute)
	}
	phase("joined workers done")
	for _, name := range []string{"w2", "w3"} {
		out := e.output(workers[name])
		t.Logf("%s: %s\n%d leases lost while copying", name, lastLines(out, 3), strings.Count(out, "chunk lease lost while copying"))
	}
	if n := proxy.Injected(faultproxy.Outage); n == 0 || !strings.Contains(e.output(workers["w3"]), "chunk lease lost while copying") {
		t.Errorf("w3 was cut off from DynamoDB (%d requests refused) holding a chunk, yet lost no lease", n)
	}
	stopWorkload()
	if err := <-wdone; err != nil && err != context.Canceled {
		t.Fatal(err)
	}

	// Every chunk is recorded done once, by the worker that held it last:
	// the per-worker counts add up to the chunks, and each worker that
	// ended counted as many as the control table credits it with.
	a = activity()
	total := int64(0)
	for _, n := range a.DoneBy {
		total += n
	}
	if a.ChunksPlanned == 0 || a.ChunksDone != a.ChunksPlanned || total != int64(a.ChunksPlanned) {
		t.Errorf("chunks: %d planned, %d done, %d by worker (%v)", a.ChunksPlanned, a.ChunksDone, total, a.DoneBy)
	}
	want := fmt.Sprintf("Chunks recorded done: %d of %d", a.ChunksPlanned, a.ChunksPlanned)
	if !strings.Contains(out, want) {
		t.Errorf("the coordinator's summary lacks %q:\n%s", want, out)
	}
	for _, w := range a.Workers {
		if w.Ended && w.Chunks != a.DoneBy[w.Worker] {
			t.Errorf("worker %s counted %d chunks, the control table credits it with %d", w.Worker, w.Chunks, a.DoneBy[w.Worker])
		}
	}
	if a.DoneBy["w2"] == 0 || a.DoneBy["w3"] == 0 || a.DoneBy["coord2"] == 0 {
		t.Errorf("chunks by worker %v: want some by w2, w3 and the resumed coordinator", a.DoneBy)
	}
	t.Logf("chunks %d (%d rows), by worker %v", a.ChunksDone, a.RowsDone, a.DoneBy)
	for _, name := range slices.Sorted(maps.Keys(a.DoneBy)) {
		if !slices.Contains([]string{"coord1", "coord2", "w1", "w2", "w3"}, name) {
			t.Errorf("chunks recorded by an unknown worker %q", name)
		}
	}

	// Sync catches up (and publishes the resumed run's rows on the stream
	// through its online snapshot), then verify compares everything.
	sync := e.start(t, "sync", e.plain, append([]string{"sync", "--status-every", "1s", "--snapshot-chunk-rows", "5000"}, e.common()...)...)
	if strings.Contains(out, "Sync publishes them") {
		// Bound by dynalite's conditional writes: ~32,000 rows, 40-50 s
		// with the test alone; more than 3 minutes once in CI, beside
		// cmd/ferry and cmd/ferry-lambda on 2 cores.
		waitFor(t, "sync publishes the resumed backfill's rows", 8*time.Minute, func() bool {
			_, done, err := pipeline.SnapshotRecords(ctx, ctl, e.slot)
			if err != nil {
				return false
			}
			for _, d := range done {
				if d.Origin == pipeline.OriginBackfill {
					return true
				}
			}
			return false
		}, sync)
	}
	if err := testkit.WaitCaughtUp(ctx, e.db, e.slot, 2*time.Minute); err != nil {
		t.Fatalf("%v\n%s", err, e.output(sync))
	}
	phase("sync caught up")
	vcmd := exec.CommandContext(ctx, e.plain, append([]string{"verify", "--stream", "--format", "json"}, e.common()...)...)
	vcmd.Env = append(os.Environ(), e.st.Env()...)
	var verrb bytes.Buffer
	vcmd.Stderr = &verrb
	vout, verr := vcmd.Output()
	var rep verify.Report
	if err := json.Unmarshal(vout, &rep); err != nil {
		t.Fatalf("verify: %v, report %v\n%s\n%s", verr, err, vout, verrb.String())
	}
	phase("verified")
	if rep.Verdict != verify.VerdictConsistent {
		t.Errorf("verify: %s, totals %+v", rep.Verdict, rep.Totals)
		for _, tr := range rep.Tables {
			for _, f := range tr.Findings[:min(len(tr.Findings), 5)] {
				t.Errorf("  %s %s (%s): %s", f.Kind, f.Table, f.Key, f.Reason)
			}
		}
	}
	if len(rep.Streams) == 0 {
		t.Errorf("verify compared no stream")
	}
	for _, s := range rep.Streams {
		if s.Inversions != 0 || s.Verdict != verify.VerdictConsistent {
			t.Errorf("stream %s: %s, %d inversions, %d missing, %d differing", s.Stream, s.Verdict, s.Inversions, s.Missing, s.Differing)
		}
	}
	if err := sync.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	e.wait(t, sync, time.Minute)
}

// lastLines returns the last n lines of out.
func lastLines(out string, n int) string {
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
