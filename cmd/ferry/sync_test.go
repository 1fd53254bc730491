package main

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ferry-migrate/ferry/extract"
	"github.com/ferry-migrate/ferry/internal/pipeline"
	"github.com/ferry-migrate/ferry/internal/testkit"
	"github.com/ferry-migrate/ferry/internal/workload"
	"github.com/ferry-migrate/ferry/load"
)

// syncProc is a `ferry sync` child process.
type syncProc struct {
	cmd  *exec.Cmd
	done chan error
}

func (e *backfillEnv) startSync(t *testing.T, extra ...string) *syncProc {
	t.Helper()
	args := append([]string{"sync", "--source", e.db, "--mapping", e.mapping, "--slot", e.slot,
		"--control-table", e.control, "--progress", "log", "--heartbeat", "1s"}, extra...)
	cmd := exec.Command(syncBin, args...)
	stderr := &lockedBuffer{} // a copy, checked for race reports
	cmd.Stdout, cmd.Stderr = os.Stderr, io.MultiWriter(os.Stderr, stderr)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &syncProc{cmd: cmd, done: make(chan error, 1)}
	go func() { p.done <- cmd.Wait() }()
	t.Cleanup(func() {
		p.kill()
		err := <-p.done // after a kill, stop or kill9 (which put nil back)
		p.done <- err
		if strings.Contains(stderr.String(), raceWarning) {
			t.Errorf("ferry sync: data race (%v); its output is above", err)
		}
	})
	return p
}

// stop sends SIGTERM and expects a clean exit 0.
func (p *syncProc) stop(t *testing.T) {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		if err != nil {
			t.Fatalf("sync did not exit cleanly on SIGTERM: %v", err)
		}
	case <-time.After(90 * time.Second):
		t.Fatal("sync did not stop within 90s of SIGTERM")
	}
	p.done <- nil
}

func (p *syncProc) kill() {
	// No look at ProcessState, which the Wait goroutine writes: Signal
	// does nothing once the process has been waited for.
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
}

func (p *syncProc) kill9(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-p.done
	p.done <- nil
}

// exec runs SQL statements on the test database, each in its own transaction.
func (e *backfillEnv) exec(ctx context.Context, t *testing.T, stmts ...string) {
	t.Helper()
	conn, err := extract.Connect(ctx, e.db)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	for _, s := range stmts {
		if _, err := conn.Exec(ctx, s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

// waitStreaming waits (bounded) until the backfill has completed (sync runs it
// first when needed) and sync has caught up with the source.
func (e *backfillEnv) waitStreaming(ctx context.Context, t *testing.T) {
	t.Helper()
	ctl := load.NewControlStore(e.st.DynamoClient(), e.control)
	deadline := time.Now().Add(3 * time.Minute)
	for {
		_, complete, _, err := pipeline.SnapshotPosition(ctx, ctl, e.slot)
		if err != nil && !isNotFound(err) {
			t.Fatal(err)
		}
		if complete {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("backfill did not complete within 3 minutes")
		}
		select { // poll interval of a bounded wait
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
	if err := testkit.WaitCaughtUp(ctx, e.db, e.slot, 3*time.Minute); err != nil {
		t.Fatal(err)
	}
}

// checkSynced waits for sync to catch up, then asserts that DynamoDB and the
// folded stream equal the source exactly.
func (e *backfillEnv) checkSynced(ctx context.Context, t *testing.T) {
	t.Helper()
	e.waitStreaming(ctx, t)
	e.checkExact(ctx, t, 0)
	e.checkStream(ctx, t)
}

// checkStream asserts that the stream, folded per key, equals the source rows
// passed through the mapping, with no per-key order inversion.
func (e *backfillEnv) checkStream(ctx context.Context, t *testing.T) {
	t.Helper()
	events, err := testkit.ReadStream(ctx, e.st.KinesisClient(), e.stream)
	if err != nil {
		t.Fatal(err)
	}
	state, _, inversions := testkit.FoldStream(events)
	if inversions > 0 {
		t.Errorf("%d per-key order inversions on the stream", inversions)
	}
	diffs, err := testkit.CompareStream(ctx, e.db, e.plan(ctx, t), state)
	if err != nil {
		t.Fatal(err)
	}
	for i, d := range diffs {
		if i == 10 {
			t.Errorf("... %d stream differences in all", len(diffs))
			break
		}
		t.Errorf("stream: %s", d)
	}
}

func TestSyncAppliesEveryKindOfChange(t *testing.T) {
	t.Parallel()
	e := newBackfillEnv(t)
	ctx := t.Context()
	p := e.startSync(t) // no backfill yet: sync copies first, then streams
	e.waitStreaming(ctx, t)
	month := time.Now().UTC().AddDate(1, 0, 0)
	from := time.Date(month.Year(), month.Month(), 1, 0, 0, 0, 0, time.UTC)
	part := fmt.Sprintf("payment_p%04d_%02d", from.Year(), from.Month())
	long := "A 10 KB description "
	for len(long) < 10240 {
		long += "of a film that is long enough to be stored out of line; "
	}
	e.exec(ctx, t,
		// a 10 KB description, then an update of another column (unchanged TOAST)
		"UPDATE film SET description = '"+long+"' WHERE film_id = 7",
		"UPDATE film SET rental_rate = 5.99 WHERE film_id = 7",
		// a primary-key change cascading into child tables (film_actor)
		"UPDATE actor SET actor_id = 90001 WHERE actor_id = 3",
		// deletes on composite keys
		"DELETE FROM film_actor WHERE actor_id = 1 AND film_id = 1",
		"DELETE FROM film_category WHERE film_id = 2",
		// an aborted transaction leaves no trace
		"BEGIN; INSERT INTO actor (first_name, last_name) VALUES ('NEVER', 'COMMITTED'); ROLLBACK",
		// a payment partition created after sync started, and rows in it
		fmt.Sprintf("CREATE TABLE %s PARTITION OF payment FOR VALUES FROM ('%s') TO ('%s')", part,
			from.Format(time.DateOnly), from.AddDate(0, 1, 0).Format(time.DateOnly)),
		fmt.Sprintf("INSERT INTO payment (customer_id, staff_id, rental_id, amount, payment_date) VALUES (1, 1, 1, 3.99, '%s'), (2, 2, 2, 0.99, '%s')",
			from.Add(time.Hour).Format(time.RFC3339), from.Add(2*time.Hour).Format(time.RFC3339)),
	)
	if _, err := workload.UpdateAllRentals(ctx, e.db); err != nil { // one transaction over every rental
		t.Fatal(err)
	}
	if _, err := workload.ChangeCustomerID(ctx, e.db, 5); err != nil {
		t.Fatal(err)
	}
	if err := workload.AbortedTransaction(ctx, e.db); err != nil {
		t.Fatal(err)
	}
	e.checkSynced(ctx, t)

	// The workload at 200 transactions/s for a minute.
	secs := 60
	if s, err := strconv.Atoi(os.Getenv("FERRY_TEST_WORKLOAD_SECONDS")); err == nil {
		secs = s
	}
	st, err := workload.Run(ctx, workload.Config{SourceURL: e.db, Rate: 200, Duration: time.Duration(secs) * time.Second, Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("workload: %+v", st)
	e.checkSynced(ctx, t)
	p.stop(t)
}

func TestSyncTruncate(t *testing.T) {
	t.Parallel()
	e := newBackfillEnv(t)
	ctx := t.Context()
	p := e.startSync(t)
	e.waitStreaming(ctx, t)
	e.exec(ctx, t, "TRUNCATE film_category", "INSERT INTO film_category (film_id, category_id) VALUES (1, 2), (3, 4)")
	e.checkSynced(ctx, t)
	p.stop(t)
}

func TestSyncAppliesChangesMadeWhileStopped(t *testing.T) {
	t.Parallel()
	e := newBackfillEnv(t)
	ctx := t.Context()
	p := e.startSync(t)
	e.waitStreaming(ctx, t)
	p.stop(t)
	e.exec(ctx, t,
		"UPDATE customer SET email = 'stopped@example.com' WHERE customer_id = 10",
		"INSERT INTO category (name) VALUES ('Documentary 2')",
		"DELETE FROM payment WHERE payment_id = 17503")
	p = e.startSync(t)
	e.checkSynced(ctx, t)
	p.stop(t)
}

func TestSyncSurvivesKill9UnderWorkload(t *testing.T) {
	t.Parallel()
	e := newBackfillEnv(t)
	ctx := t.Context()
	code, out, errOut := runFerry(t, e.args()...)
	if code != 0 {
		t.Fatalf("backfill exit %d\n%s\n%s", code, out, errOut)
	}
	wctx, stopWorkload := context.WithCancel(ctx)
	defer stopWorkload()
	wdone := make(chan error, 1)
	go func() {
		_, err := workload.Run(wctx, workload.Config{SourceURL: e.db, Rate: 100, Seed: 11})
		wdone <- err
	}()
	stopWatch := testkit.WatchVersions(ctx, e.st.DynamoClient(), e.target, 300)
	rng := rand.New(rand.NewPCG(1, 2))
	ctl := load.NewControlStore(e.st.DynamoClient(), e.control)
	p := e.startSync(t)
	for i := 0; i < 5; i++ {
		// Kill without warning at a random moment: after a random number of
		// changes has been applied by this run.
		waitApplied(ctx, t, ctl, e.slot, int64(20+rng.IntN(400)))
		p.kill9(t)
		p = e.startSync(t)
	}
	waitApplied(ctx, t, ctl, e.slot, 50)
	stopWorkload()
	if err := <-wdone; err != nil && err != context.Canceled {
		t.Fatal(err)
	}
	e.checkSynced(ctx, t)
	p.stop(t)
	if regress := stopWatch(); len(regress) > 0 {
		for _, r := range regress {
			t.Error(r)
		}
	}
}

// waitApplied waits (bounded) until the stored checkpoint has counted n more
// changes than when it was called.
func waitApplied(ctx context.Context, t *testing.T, ctl *load.ControlStore, slot string, n int64) {
	t.Helper()
	start := int64(-1)
	deadline := time.Now().Add(3 * time.Minute)
	for time.Now().Before(deadline) {
		cp, ok, err := pipeline.LoadCheckpoint(ctx, ctl, slot)
		if err != nil && !isNotFound(err) {
			t.Fatal(err)
		}
		var c int64
		if ok {
			c = cp.Changes
		}
		if start < 0 {
			start = c
		} else if c-start >= n {
			return
		}
		select { // poll interval of a bounded wait
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Fatalf("sync applied fewer than %d changes in 3 minutes", n)
}
