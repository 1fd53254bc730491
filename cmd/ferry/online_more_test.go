package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/ferry-migrate/ferry/extract"
	"github.com/ferry-migrate/ferry/internal/pipeline"
	"github.com/ferry-migrate/ferry/internal/testkit"
	"github.com/ferry-migrate/ferry/internal/workload"
	"github.com/ferry-migrate/ferry/load"
)

// The online snapshot's other uses, each under the DVD-store workload: a
// table added to the mapping of a running migration, a backfill resumed
// after kill -9 while the source takes writes, and verify --repair while sync
// runs. Every ferry run is a child process.

// startWorkload runs the DVD-store workload on the test database until the
// returned stop is called (stop reports the workload's error).
func startWorkload(ctx context.Context, t *testing.T, e *backfillEnv, rate float64, seed int64) (stop func()) {
	t.Helper()
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		_, err := workload.Run(wctx, workload.Config{SourceURL: e.db, Rate: rate, Seed: seed})
		done <- err
	}()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil && err != context.Canceled {
			t.Errorf("workload: %v", err)
		}
	}
	t.Cleanup(stop)
	return stop
}

// cutTable splits a mapping file's text into the text without one table's
// entry and that entry (the last entry cannot be cut).
func cutTable(t *testing.T, text, table string) (rest, entry string) {
	t.Helper()
	start := strings.Index(text, "\n  - source: "+table+"\n")
	if start < 0 {
		t.Fatalf("mapping: no entry for %s", table)
	}
	end := strings.Index(text[start+1:], "\n  - source: ")
	if end < 0 {
		t.Fatalf("mapping: %s is the last entry", table)
	}
	end += start + 1
	return text[:start] + text[end:], text[start:end]
}

// rewriteMapping writes a copy of the mapping file without one table's entry
// (or with it moved to the end, when last is true) and returns its path.
func rewriteMapping(t *testing.T, path, table string, last bool) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	rest, entry := cutTable(t, string(data), table)
	if last {
		rest = strings.TrimRight(rest, "\n") + entry + "\n"
	}
	out := filepath.Join(t.TempDir(), table+"-"+strconv.FormatBool(last)+".yaml")
	if err := os.WriteFile(out, []byte(rest), 0o644); err != nil {
		t.Fatal(err)
	}
	return out
}

// waitSnapshotOf waits (bounded) for the done record of the slot's snapshot
// of the given origin and returns it with the number of done records.
func waitSnapshotOf(ctx context.Context, t *testing.T, ctl *load.ControlStore, slot, origin string) (pipeline.SnapshotProgress, int) {
	t.Helper()
	deadline := time.Now().Add(6 * time.Minute)
	for time.Now().Before(deadline) {
		_, done, err := pipeline.SnapshotRecords(ctx, ctl, slot)
		if err != nil && !isNotFound(err) {
			t.Fatal(err)
		}
		for _, d := range done {
			if d.Origin == origin {
				return d, len(done)
			}
		}
		select { // poll interval of a bounded wait
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
	t.Fatalf("no online snapshot of origin %q finished within 6 minutes", origin)
	return pipeline.SnapshotProgress{}, 0
}

// countRows counts a table's rows on the test database.
func (e *backfillEnv) countRows(ctx context.Context, t *testing.T, table string) int64 {
	t.Helper()
	conn, err := extract.Connect(ctx, e.db)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var n int64
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM "+table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// A table added to the mapping of a running migration: sync, restarted with
// the new mapping, adds it to the publication and snapshots it online while
// the workload runs; no other table is read again, and afterwards DynamoDB
// and the folded stream equal the source.
func TestTableAddedToRunningMigration(t *testing.T) {
	t.Parallel()
	e := newBackfillEnv(t)
	ctx := t.Context()
	full := e.mapping
	e.mapping = rewriteMapping(t, full, "film_actor", false)
	tmFerry(ctx, t, 0, "backfill without film_actor", e.args()...)
	ctl := load.NewControlStore(e.st.DynamoClient(), e.control)
	p := e.startSync(t)
	e.waitStreaming(ctx, t)
	stopWorkload := startWorkload(ctx, t, e, 60, 41)
	waitApplied(ctx, t, ctl, e.slot, 100) // film_actor changes are written, not streamed
	p.stop(t)

	e.mapping = full
	status := tmFerry(ctx, t, 0, "status", "status", "--source", e.db, "--mapping", e.mapping, "--slot", e.slot,
		"--control-table", e.control, "--counts=false")
	if !strings.Contains(status, "missing: public.film_actor") {
		t.Errorf("status does not name the table the publication lacks:\n%s", status)
	}
	p = e.startSync(t)
	done, records := waitSnapshotOf(ctx, t, ctl, e.slot, pipeline.OriginSync)
	stopWorkload()
	rows := e.countRows(ctx, t, "film_actor")
	t.Logf("added table: snapshot %s of %v: %d rows in %d chunks; film_actor has %d rows now", done.Request, done.Tables, done.Rows, done.Chunks, rows)
	if len(done.Tables) != 1 || done.Tables[0] != "public.film_actor" || records != 1 {
		t.Errorf("snapshots done: %d, the added one read %v; want one, of public.film_actor only", records, done.Tables)
	}
	// The workload deletes and inserts film_actor rows while the snapshot
	// runs: its count is near today's, not equal.
	if done.Rows < rows*9/10 || done.Rows > rows*11/10 {
		t.Errorf("the added table's snapshot emitted %d rows, want about the %d rows there are", done.Rows, rows)
	}
	e.checkSynced(ctx, t)
	tmFerry(ctx, t, 0, "verify --stream", "verify", "--source", e.db, "--mapping", e.mapping, "--slot", e.slot,
		"--control-table", e.control, "--stream")
	p.stop(t)
}

// A backfill killed with -9 while the source takes writes, run again, then
// sync: the resumed chunks reach Kinesis through sync's online snapshot, so
// the stream has no per-key order inversion and its fold equals the source.
func TestResumedBackfillUnderWritesKeepsStreamOrder(t *testing.T) {
	t.Parallel()
	e := newBackfillEnv(t)
	ctx := t.Context()
	ctl := load.NewControlStore(e.st.DynamoClient(), e.control)
	stopWorkload := startWorkload(ctx, t, e, 60, 43)
	// A short lease: the run again takes over the chunks the killed one held.
	args := e.args("--chunk-rows", "300", "--workers", "2", "--lease", "2s")
	cmd := exec.Command(ferryBin, args...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Killed with 25 chunks (of about 165) left: the resumed part is the
	// tail of the queue (whichever tables the backfill copies last; the
	// workload writes to most of them), small enough for sync to re-read
	// quickly.
	var mapped []string
	for _, tp := range e.plan(ctx, t).Tables {
		mapped = append(mapped, tp.Source.QualifiedName())
	}
	waitChunksLeft(ctx, t, ctl, e.slot, cmd, len(mapped), 25)
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	left := tablesLeft(ctx, t, ctl, e.slot, mapped)

	out := tmFerry(ctx, t, 0, "resumed backfill", args...)
	if !strings.Contains(out, "resumed") || !strings.Contains(out, "Sync publishes them") {
		t.Errorf("the resumed backfill does not say its rows reach Kinesis through sync:\n%s", out)
	}
	// Chunks of 1000 rows: this test does not measure the lag.
	p := e.startSync(t, "--snapshot-chunk-rows", "1000")
	done, _ := waitSnapshotOf(ctx, t, ctl, e.slot, pipeline.OriginBackfill)
	t.Logf("resumed chunks published by sync: %v, %d rows in %d chunks", done.Tables, done.Rows, done.Chunks)
	handed := slices.Sorted(slices.Values(done.Tables))
	if !slices.Equal(handed, left) || done.Rows == 0 || done.Rows > pagilaRows/2 {
		t.Errorf("the backfill handed %v (%d rows) to sync, want exactly the tables with chunks left at the kill, %v, "+
			"and not the rows of the chunks done before it", handed, done.Rows, left)
	}
	stopWorkload()
	e.checkSynced(ctx, t)
	tmFerry(ctx, t, 0, "verify --stream", "verify", "--source", e.db, "--mapping", e.mapping, "--slot", e.slot,
		"--control-table", e.control, "--stream")
	p.stop(t)
}

// waitChunksLeft waits (bounded) until the backfill child has planned all
// its tables and has at most left chunks not done.
func waitChunksLeft(ctx context.Context, t *testing.T, ctl *load.ControlStore, slot string, cmd *exec.Cmd, tables, left int) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		rec, err := pipeline.RecordedBackfill(ctx, ctl, slot)
		if err != nil && !isNotFound(err) {
			t.Fatal(err)
		}
		chunks, done := 0, 0
		for _, r := range rec {
			chunks += r.Chunks
			done += r.ChunksDone
		}
		if len(rec) == tables && chunks-done <= left {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("backfill made no progress")
		}
		if cmd.ProcessState != nil {
			t.Fatal("backfill ended before it could be killed")
		}
		time.Sleep(20 * time.Millisecond) // polling interval of a bounded wait, not a synchronisation stand-in
	}
}

// tablesLeft returns, sorted, the tables of which the recorded backfill has
// chunks not done (or no plan).
func tablesLeft(ctx context.Context, t *testing.T, ctl *load.ControlStore, slot string, tables []string) []string {
	t.Helper()
	rec, err := pipeline.RecordedBackfill(ctx, ctl, slot)
	if err != nil {
		t.Fatal(err)
	}
	finished := map[string]bool{}
	for _, r := range rec {
		finished[r.Table] = r.ChunksDone == r.Chunks
	}
	var out []string
	for _, name := range tables {
		if !finished[name] {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// verify --repair while sync runs under the workload: three damaged items
// (one changed, one deleted, one that no row explains) are re-read through
// sync's online snapshot, so DynamoDB is fixed and the stream carries the
// repaired rows; afterwards both equal the source.
func TestVerifyRepairThroughSync(t *testing.T) {
	t.Parallel()
	e := newBackfillEnv(t)
	ctx := t.Context()
	tmFerry(ctx, t, 0, "backfill", e.args()...)
	ctl := load.NewControlStore(e.st.DynamoClient(), e.control)
	p := e.startSync(t)
	e.waitStreaming(ctx, t)
	stopWorkload := startWorkload(ctx, t, e, 60, 47)
	waitApplied(ctx, t, ctl, e.slot, 100)

	// Actors, categories and languages: rows the workload leaves alone.
	ddb := e.st.DynamoClient()
	key := func(pk, sk string) map[string]types.AttributeValue {
		return map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: pk}, "sk": &types.AttributeValueMemberS{Value: sk}}
	}
	if _, err := ddb.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: aws.String(e.target), Key: key("CATEGORY#3", "CATEGORY"),
		UpdateExpression: aws.String("SET #n = :v"), ExpressionAttributeNames: map[string]string{"#n": "name"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":v": &types.AttributeValueMemberS{Value: "damaged"}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := ddb.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String(e.target), Key: key("ACTOR#7", "ACTOR")}); err != nil {
		t.Fatal(err)
	}
	extra := key("ACTOR#9999", "ACTOR")
	extra["_table"] = &types.AttributeValueMemberS{Value: "actor"}
	extra["actor_id"] = &types.AttributeValueMemberN{Value: "9999"}
	extra["_version"] = &types.AttributeValueMemberN{Value: "1"}
	if _, err := ddb.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(e.target), Item: extra}); err != nil {
		t.Fatal(err)
	}
	conn, err := extract.Connect(ctx, e.db)
	if err != nil {
		t.Fatal(err)
	}
	damagedAt, err := extract.CurrentWALLSN(ctx, conn)
	conn.Close(context.Background())
	if err != nil {
		t.Fatal(err)
	}

	// Its own bound: on a loaded machine sync's lag, and so the repair, can
	// take longer than tmFerry's three minutes.
	vctx, cancel := context.WithTimeout(ctx, 8*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(vctx, ferryBin, "verify", "--source", e.db, "--mapping", e.mapping, "--slot", e.slot,
		"--control-table", e.control, "--repair", "--format", "json")
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); cmd.ProcessState == nil {
		t.Fatalf("verify --repair did not run: %v", err)
	}
	code, out, errOut := cmd.ProcessState.ExitCode(), stdout.String(), stderr.String()
	if code != 0 {
		t.Fatalf("verify --repair exit %d\n%s\n%s", code, out, errOut)
	}
	var rep struct {
		Repair *struct {
			Attempted, Fixed int
			NotFixed         int `json:"not_fixed"`
			Via              string
		}
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("report: %v\n%s", err, out)
	}
	if rep.Repair == nil || rep.Repair.Fixed < 3 || rep.Repair.NotFixed != 0 || rep.Repair.Via != "online_snapshot" {
		t.Fatalf("repair summary %+v, want 3 or more fixed, none left, through the online snapshot\n%s", rep.Repair, errOut)
	}
	_, done, err := pipeline.SnapshotRecords(ctx, ctl, e.slot)
	if err != nil {
		t.Fatal(err)
	}
	var verifyRows int64
	for _, d := range done {
		if d.Origin == pipeline.OriginVerify {
			verifyRows += d.Rows
		}
	}
	if verifyRows < 3 {
		t.Errorf("the repair's online snapshots emitted %d rows and deletes, want the 3 damaged keys", verifyRows)
	}
	stopWorkload()
	e.checkSynced(ctx, t)

	// The stream heard of the repair: an r event for each row re-read, a
	// delete for the key the source lacks, all after the damage.
	events, err := testkit.ReadStream(ctx, e.st.KinesisClient(), e.stream)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"category 3": "r", "actor 7": "r", "actor 9999": "d"}
	for _, ev := range events {
		row := ev.After
		if ev.Op == "d" {
			row = ev.Before
		}
		id := ""
		switch ev.Source.Table {
		case "category":
			id = "category " + string(row["category_id"])
		case "actor":
			id = "actor " + string(row["actor_id"])
		}
		lsn, err := extract.ParseLSN(ev.Source.LSN)
		if err != nil {
			t.Fatalf("event of %s: %v", id, err)
		}
		if op, ok := want[id]; ok && op == ev.Op && lsn > damagedAt {
			delete(want, id)
		}
	}
	for id, op := range want {
		t.Errorf("no %s event for %s on the stream after the repair", op, id)
	}
	p.stop(t)
}

func TestDescribeRequest(t *testing.T) {
	t.Parallel()
	k := func(v ...string) []string { return v }
	tests := []struct {
		req  pipeline.SnapshotRequest
		want string
	}{
		{pipeline.SnapshotRequest{Tables: []string{"public.rental", "public.payment"}, Origin: pipeline.OriginSnapshot}, "public.rental, public.payment"},
		{pipeline.SnapshotRequest{Tables: []string{"public.film_actor"}, Origin: pipeline.OriginSync}, "public.film_actor; tables added to the mapping"},
		{pipeline.SnapshotRequest{Tables: []string{"public.payment", "public.film"}, Origin: pipeline.OriginBackfill,
			Ranges: map[string][]pipeline.KeyRange{"public.payment": {{From: k("1"), Before: k("9")}, {From: k("20")}}}},
			"public.payment, public.film in 2 key ranges; a resumed backfill's rows, for the stream"},
		{pipeline.SnapshotRequest{Tables: []string{"public.actor"}, Keys: [][]string{k("7"), k("9999")}, Origin: pipeline.OriginVerify},
			"2 keys of public.actor; verify --repair"},
	}
	for _, tc := range tests {
		if got := describeRequest(tc.req); got != tc.want {
			t.Errorf("describeRequest(%+v) = %q, want %q", tc.req, got, tc.want)
		}
	}
}
