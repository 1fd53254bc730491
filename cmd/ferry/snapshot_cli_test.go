package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/ferry-migrate/ferry/extract"
	"github.com/ferry-migrate/ferry/internal/pipeline"
	"github.com/ferry-migrate/ferry/load"
)

// These tests cover the CLI side of online snapshots: what `ferry snapshot`
// refuses, the request it writes, --wait and status. No sync runs: a slot of
// test_decoding held by a replication connection of the test stands for a
// running sync, and the test writes the progress sync would.

func (e *backfillEnv) snapshotArgs(extra ...string) []string {
	return append([]string{"snapshot", "--source", e.db, "--mapping", e.mapping, "--slot", e.slot, "--control-table", e.control}, extra...)
}

func (e *backfillEnv) controlStore(ctx context.Context, t *testing.T) *load.ControlStore {
	t.Helper()
	ctl := load.NewControlStore(e.st.DynamoClient(), e.control)
	if err := ctl.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	return ctl
}

// snapshotRecords returns the slot's pending requests and finished snapshots.
func (e *backfillEnv) snapshotRecords(ctx context.Context, t *testing.T, ctl *load.ControlStore) ([]pipeline.SnapshotRequest, map[string]pipeline.SnapshotProgress) {
	t.Helper()
	pending, done, err := pipeline.SnapshotRecords(ctx, ctl, e.slot)
	if err != nil {
		t.Fatal(err)
	}
	return pending, done
}

// createSlot creates the environment's slot (test_decoding: no publication
// needed), inactive, and drops it at the end of the test.
func (e *backfillEnv) createSlot(ctx context.Context, t *testing.T) {
	t.Helper()
	e.exec(ctx, t, "SELECT pg_create_logical_replication_slot('"+e.slot+"', 'test_decoding')")
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		e.waitSlotState(ctx, t, false)
		e.exec(ctx, t, "SELECT pg_drop_replication_slot('"+e.slot+"')")
	})
}

// holdSlot streams from the slot on a replication connection, so that the
// slot is active as under a running sync, until the returned func is called.
func (e *backfillEnv) holdSlot(ctx context.Context, t *testing.T) (release func()) {
	t.Helper()
	cfg, err := pgconn.ParseConfig(e.db)
	if err != nil {
		t.Fatal(err)
	}
	cfg.RuntimeParams["replication"] = "database"
	conn, err := pgconn.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := pglogrepl.StartReplication(ctx, conn, e.slot, 0, pglogrepl.StartReplicationOptions{}); err != nil {
		conn.Close(ctx)
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { // standby status updates, so the walsender does not time out
		tick := time.NewTicker(5 * time.Second)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				_ = pglogrepl.SendStandbyStatusUpdate(ctx, conn, pglogrepl.StandbyStatusUpdate{})
			}
		}
	})
	e.waitSlotState(ctx, t, true)
	var once sync.Once
	release = func() {
		once.Do(func() {
			close(stop)
			wg.Wait()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			conn.Close(ctx)
			e.waitSlotState(ctx, t, false)
		})
	}
	t.Cleanup(release)
	return release
}

func (e *backfillEnv) waitSlotState(ctx context.Context, t *testing.T, active bool) {
	t.Helper()
	conn, err := extract.Connect(ctx, e.db)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	for deadline := time.Now().Add(30 * time.Second); ; {
		info, exists, err := extract.LookupSlot(ctx, conn, e.slot)
		if err != nil {
			t.Fatal(err)
		}
		if exists && info.Active == active {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("slot %s: active=%v after 30s (exists=%v), want active=%v", e.slot, info.Active, exists, active)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func writeTestFile(t *testing.T, name, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// snapshotRun is one `ferry snapshot` run that must exit 2 with stderr
// matching want.
type snapshotRun struct {
	name string
	args []string
	want string
}

func (e *backfillEnv) checkRefused(t *testing.T, runs []snapshotRun) {
	t.Helper()
	for _, r := range runs {
		code, out, errOut := runFerry(t, e.snapshotArgs(r.args...)...)
		if code != 2 {
			t.Errorf("%s: exit %d, want 2\n%s\n%s", r.name, code, out, errOut)
		}
		if !regexp.MustCompile(r.want).MatchString(errOut) {
			t.Errorf("%s: stderr does not match %s:\n%s", r.name, r.want, errOut)
		}
	}
}

// TestSnapshotWithoutSyncExits2 asks for a snapshot while no sync runs: the
// slot missing, then there but inactive. Exit 2 naming the slot and what to
// do; no request is written.
func TestSnapshotWithoutSyncExits2(t *testing.T) {
	t.Parallel()
	e := newBackfillEnv(t)
	ctx := t.Context()
	ctl := e.controlStore(ctx, t)
	e.checkRefused(t, []snapshotRun{{"no slot", []string{"--tables", "film"},
		`no sync is running on slot ` + e.slot + ` \(the replication slot does not exist\): start ` + "`ferry sync`" + ` first; the snapshot is taken by the running sync`}})
	e.createSlot(ctx, t)
	e.checkRefused(t, []snapshotRun{{"inactive slot", []string{"--tables", "film,rental", "--wait"},
		`no sync is running on slot ` + e.slot + ` \(the replication slot is not active\): start ` + "`ferry sync`" + ` first`}})
	if pending, done := e.snapshotRecords(ctx, t, ctl); len(pending)+len(done) > 0 {
		t.Errorf("records written without a running sync: %+v %+v", pending, done)
	}
}

// TestSnapshotFlagErrors: every refused flag exits 2 naming the problem, and
// writes no request, with sync running or not.
func TestSnapshotFlagErrors(t *testing.T) {
	t.Parallel()
	e := newBackfillEnv(t)
	ctx := t.Context()
	ctl := e.controlStore(ctx, t)
	keys := writeTestFile(t, "keys.tsv", "1\t1\n\n2\n")
	empty := writeTestFile(t, "empty.tsv", "\n\n")
	e.checkRefused(t, []snapshotRun{
		{"no --tables", nil, `--tables is required \(or FERRY_TABLES\)`},
		{"empty --tables", []string{"--tables", " , "}, `--tables names no table`},
		{"table not mapped", []string{"--tables", "film,nosuch"}, `--tables: nosuch not in the mapping \(mapped: .*public\.film`},
		{"table twice", []string{"--tables", "film,public.film"}, `--tables: public\.film is named twice`},
		{"--keys with two tables", []string{"--tables", "film,rental", "--keys", keys}, `--keys needs exactly one table in --tables, not 2 \(film, rental\)`},
		{"--keys field count", []string{"--tables", "film_actor", "--keys", keys}, regexp.QuoteMeta(keys) + `:3: 1 field, want 2 \(actor_id, film_id, separated by a TAB\)`},
		{"--keys missing file", []string{"--tables", "film", "--keys", keys + ".nosuch"}, `--keys: open .*no such file`},
		{"--keys empty", []string{"--tables", "film", "--keys", empty}, `--keys .*: no keys in the file`},
		{"unexpected argument", []string{"--tables", "film", "extra"}, `unexpected argument "extra"`},
	})
	if code, _, errOut := runFerry(t, "snapshot", "--source", e.db, "--tables", "film"); code != 2 || !strings.Contains(errOut, "--mapping is required") {
		t.Errorf("no --mapping: exit %d\n%s", code, errOut)
	}

	// With sync running, the SQL is checked on the source before anything is written.
	e.createSlot(ctx, t)
	e.holdSlot(ctx, t)
	badKeys := writeTestFile(t, "bad.tsv", "1\n\nx\n")
	e.checkRefused(t, []snapshotRun{
		{"--where unknown column", []string{"--tables", "film,rental", "--where", "rental_date > now()"},
			`--where does not fit table public\.film: .*column "rental_date" does not exist`},
		{"--where syntax", []string{"--tables", "film", "--where", "film_id >"}, `--where does not fit table public\.film: .*syntax error`},
		{"--where with a second statement", []string{"--tables", "film", "--where", "true); DROP TABLE film; --"}, `--where does not fit table public\.film`},
		{"--keys value of the wrong type", []string{"--tables", "film", "--keys", badKeys},
			regexp.QuoteMeta(badKeys) + `:3: not a primary key of public\.film \(film_id\): .*invalid input syntax for type integer: "x"`},
	})
	e.exec(ctx, t, "SELECT 1 FROM film LIMIT 1") // still there
	if pending, done := e.snapshotRecords(ctx, t, ctl); len(pending)+len(done) > 0 {
		t.Errorf("records written for refused requests: %+v %+v", pending, done)
	}
}

// requestID returns the id `ferry snapshot` printed.
func requestID(t *testing.T, out string) string {
	t.Helper()
	m := regexp.MustCompile(`snapshot (\S+) requested: `).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no request id in:\n%s", out)
	}
	return m[1]
}

// The control-table records sync writes (internal/pipeline/online.go).
func snapshotRecordID(slot string) string { return "snapshot:" + slot }

func (e *backfillEnv) finishSnapshot(ctx context.Context, t *testing.T, ctl *load.ControlStore, p pipeline.SnapshotProgress) {
	t.Helper()
	p.Done = true
	b, _ := json.Marshal(p)
	if err := ctl.Put(ctx, snapshotRecordID(e.slot), "done#"+p.Request, b); err != nil {
		t.Fatal(err)
	}
	if err := ctl.Delete(ctx, snapshotRecordID(e.slot), "request#"+p.Request); err != nil {
		t.Fatal(err)
	}
}

func (e *backfillEnv) saveProgress(ctx context.Context, t *testing.T, ctl *load.ControlStore, p *pipeline.SnapshotProgress) {
	t.Helper()
	if err := pipeline.SaveCheckpoint(ctx, ctl, e.slot, pipeline.Checkpoint{Updated: time.Now(), Snapshot: p}); err != nil {
		t.Fatal(err)
	}
}

// waitFor waits (bounded) until out holds want.
func waitOutput(t *testing.T, out *lockedBuffer, want string) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !strings.Contains(out.String(), want); {
		if time.Now().After(deadline) {
			t.Fatalf("output does not say %q within 30s:\n%s", want, out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// snapshotWait is a `ferry snapshot --wait` running in-process.
type snapshotWait struct {
	out    lockedBuffer
	cancel context.CancelFunc
	done   chan int
}

func (e *backfillEnv) startSnapshotWait(t *testing.T, extra ...string) *snapshotWait {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	w := &snapshotWait{cancel: cancel, done: make(chan int, 1)}
	go func() {
		w.done <- runContext(ctx, e.snapshotArgs(append(extra, "--wait")...), &w.out, &w.out)
	}()
	t.Cleanup(func() {
		cancel()
		<-w.done
	})
	return w
}

func (w *snapshotWait) exit(t *testing.T) int {
	t.Helper()
	select {
	case code := <-w.done:
		w.done <- code
		return code
	case <-time.After(30 * time.Second):
		t.Fatalf("ferry snapshot --wait did not return within 30s:\n%s", w.out.String())
		return -1
	}
}

// TestSnapshotRequestWaitAndStatus writes requests as a running sync would
// see them, follows one with --wait through the progress sync records (and a
// stop of sync), and reads them back in status.
func TestSnapshotRequestWaitAndStatus(t *testing.T) {
	// Not parallel: --wait runs in-process (runContext), and the "1m…s"
	// durations it checks allow a minute for the whole test.
	e := newBackfillEnv(t)
	ctx := t.Context()
	ctl := e.controlStore(ctx, t)
	e.createSlot(ctx, t)
	release := e.holdSlot(ctx, t)

	keys := writeTestFile(t, "keys.tsv", "1\t1\r\n\n1\t23\n")
	before := time.Now().UTC()
	code, out, errOut := runFerry(t, e.snapshotArgs("--tables", "film_actor", "--keys", keys, "--where", "actor_id < 100")...)
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	id1 := requestID(t, out)
	if !strings.Contains(out, "2 keys of public.film_actor") {
		t.Errorf("output does not say what is re-read:\n%s", out)
	}
	pending, _ := e.snapshotRecords(ctx, t, ctl)
	if len(pending) != 1 {
		t.Fatalf("pending requests: %+v", pending)
	}
	r := pending[0]
	want := pipeline.SnapshotRequest{ID: id1, Tables: []string{"public.film_actor"}, Where: "actor_id < 100",
		Keys: [][]string{{"1", "1"}, {"1", "23"}}, Origin: "snapshot", Created: r.Created}
	if r.Created.Before(before.Add(-time.Second)) || r.Created.After(time.Now().Add(time.Second)) {
		t.Errorf("request created %s, run at %s", r.Created, before)
	}
	got, _ := json.Marshal(r)
	if wantJSON, _ := json.Marshal(want); string(got) != string(wantJSON) {
		t.Errorf("request\n %s\nwant\n %s", got, wantJSON)
	}
	code, out, errOut = runFerry(t, e.snapshotArgs("--tables", "payment")...)
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	id2 := requestID(t, out)

	// --wait for a third request, queued behind two; SIGINT stops following.
	w := e.startSnapshotWait(t, "--tables", "rental,public.film")
	waitOutput(t, &w.out, "queued behind 2 requests")
	w.cancel()
	if code := w.exit(t); code != 0 {
		t.Fatalf("--wait on SIGINT: exit %d, want 0\n%s", code, w.out.String())
	}
	id3 := requestID(t, w.out.String())
	if !strings.Contains(w.out.String(), "stopped following: snapshot "+id3+" is still running in sync") {
		t.Errorf("--wait on SIGINT:\n%s", w.out.String())
	}
	pending, _ = e.snapshotRecords(ctx, t, ctl)
	var ids []string
	for _, r := range pending {
		ids = append(ids, r.ID)
	}
	if !slices.Equal(ids, []string{id1, id2, id3}) {
		t.Fatalf("pending %v, want %s %s %s", ids, id1, id2, id3)
	}

	// Follow a fourth through its progress; the first three finish meanwhile.
	w = e.startSnapshotWait(t, "--tables", "rental,film")
	waitOutput(t, &w.out, "queued behind 3 requests")
	id4 := requestID(t, w.out.String())
	started := time.Now().Add(-time.Minute)
	e.finishSnapshot(ctx, t, ctl, pipeline.SnapshotProgress{Request: id1, KeysDone: 2, Rows: 2, Chunks: 1, Started: started})
	e.finishSnapshot(ctx, t, ctl, pipeline.SnapshotProgress{Request: id2, Rows: 16049, Chunks: 4, Started: started})
	e.finishSnapshot(ctx, t, ctl, pipeline.SnapshotProgress{Request: id3, Table: 1, Rows: 17044, Chunks: 5, Started: started})
	waitOutput(t, &w.out, "snapshot "+id4+": queued, next")
	p := &pipeline.SnapshotProgress{Request: id4, After: []string{"4000"}, Rows: 4000, Chunks: 8, Started: started}
	e.saveProgress(ctx, t, ctl, p)
	waitOutput(t, &w.out, "snapshot "+id4+": table public.rental (1/2), 4000 rows, 8 chunks\n")

	e.exec(ctx, t, "ANALYZE rental", "ANALYZE film") // row estimates for the ETA
	code, out, errOut = runFerry(t, "status", "--source", e.db, "--mapping", e.mapping, "--slot", e.slot, "--control-table", e.control, "--counts=false")
	if code != 0 {
		t.Fatalf("status: exit %d\n%s\n%s", code, out, errOut)
	}
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^sync checkpoint: `),
		regexp.MustCompile(`(?m)^online snapshot ` + id4 + `: table public\.rental \(1/2\), 4000 rows, 8 chunks, started \S+ \(1m\d+s ago\), ETA \S+ \(\d+ rows/s, ~\d+ rows in all\)$`),
		regexp.MustCompile(`(?m)^online snapshot ` + id3 + `: done, 17044 rows in 5 chunks, started `),
		regexp.MustCompile(`(?m)^online snapshot ` + id1 + `: done, 2 rows in 1 chunk, started `),
	} {
		if !want.MatchString(out) {
			t.Errorf("status does not match %s:\n%s", want, out)
		}
	}
	t.Logf("status:\n%s", out)
	if strings.Index(out, id3) > strings.Index(out, id1) {
		t.Errorf("status lists finished snapshots oldest first:\n%s", out)
	}

	// sync stops: --wait says so once and goes on waiting.
	release()
	waitOutput(t, &w.out, "snapshot "+id4+": no sync is running on slot "+e.slot+": still waiting")
	p.Table, p.Rows, p.Chunks = 1, 16500, 9
	e.saveProgress(ctx, t, ctl, p)
	waitOutput(t, &w.out, "snapshot "+id4+": table public.film (2/2), 16500 rows, 9 chunks\n")
	code, out, _ = runFerry(t, "status", "--source", e.db, "--mapping", e.mapping, "--slot", e.slot, "--control-table", e.control, "--counts=false")
	if code != 0 || !strings.Contains(out, "16500 rows, 9 chunks, started ") || !strings.Contains(out, "paused: no sync is running") {
		t.Errorf("status while sync is stopped: exit %d\n%s", code, out)
	}
	e.finishSnapshot(ctx, t, ctl, pipeline.SnapshotProgress{Request: id4, Table: 1, Rows: 17044, Chunks: 10, Started: started})
	if code := w.exit(t); code != 0 {
		t.Fatalf("--wait: exit %d\n%s", code, w.out.String())
	}
	all := w.out.String()
	t.Logf("--wait:\n%s", all)
	if !regexp.MustCompile(`snapshot ` + id4 + ` done: 2 tables, 17044 rows in 10 chunks, 1m\d+s\n`).MatchString(all) {
		t.Errorf("--wait summary:\n%s", all)
	}
	if n := strings.Count(all, "no sync is running"); n != 1 {
		t.Errorf("--wait says %d times that sync stopped:\n%s", n, all)
	}
}
