package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/jackc/pgx/v5"

	"github.com/ferry-migrate/ferry/extract"
	"github.com/ferry-migrate/ferry/internal/pipeline"
	"github.com/ferry-migrate/ferry/internal/testkit"
	"github.com/ferry-migrate/ferry/load"
)

// guardsMapping maps two small Pagila tables (22 rows), so that a backfill
// and a sync start in a moment.
const guardsMapping = `version: 1
defaults:
  target: TARGET
  stream: STREAM
tables:
  - source: language
    partition_key: {name: pk, template: "LANGUAGE#{language_id}"}
    sort_key: {name: sk, template: "LANGUAGE"}
  - source: category
    partition_key: {name: pk, template: "CATEGORY#{category_id}"}
    sort_key: {name: sk, template: "CATEGORY"}
`

// guardsCountry is a third table, appended to guardsMapping.
const guardsCountry = `  - source: country
    partition_key: {name: pk, template: "COUNTRY#{country_id}"}
    sort_key: {name: sk, template: "COUNTRY"}
`

// newGuardsEnv is a backfill environment with guardsMapping (plus extra
// mapping text).
func newGuardsEnv(t *testing.T, extra string) *backfillEnv {
	t.Helper()
	e := newBackfillEnv(t)
	writeGuardsMapping(t, e, e.mapping, extra)
	return e
}

func writeGuardsMapping(t *testing.T, e *backfillEnv, path, extra string) {
	t.Helper()
	m := strings.NewReplacer("TARGET", e.target, "STREAM", e.stream).Replace(guardsMapping) + extra
	if err := os.WriteFile(path, []byte(m), 0o644); err != nil {
		t.Fatal(err)
	}
}

// guardsState is what a backfill could write: its run state, the items and
// the stream's records.
type guardsState struct {
	backfill map[string][]byte
	items    []string
	records  int
}

func readGuardsState(ctx context.Context, t *testing.T, e *backfillEnv) guardsState {
	t.Helper()
	ctl := load.NewControlStore(e.st.DynamoClient(), e.control)
	state, err := ctl.List(ctx, pipeline.StateID(e.slot))
	if err != nil {
		t.Fatal(err)
	}
	items, err := testkit.ScanAll(ctx, e.st.DynamoClient(), e.target)
	if err != nil {
		t.Fatal(err)
	}
	var s guardsState
	s.backfill = state
	for _, it := range items {
		s.items = append(s.items, itemText(it))
	}
	events, err := testkit.ReadStream(ctx, e.st.KinesisClient(), e.stream)
	if err != nil {
		t.Fatal(err)
	}
	s.records = len(events)
	return s
}

// itemText is an item's attributes in sorted order, for comparison.
func itemText(it map[string]types.AttributeValue) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(it)) {
		switch v := it[k].(type) {
		case *types.AttributeValueMemberS:
			parts = append(parts, k+"=S:"+v.Value)
		case *types.AttributeValueMemberN:
			parts = append(parts, k+"=N:"+v.Value)
		default:
			parts = append(parts, fmt.Sprintf("%s=%T", k, v))
		}
	}
	return strings.Join(parts, " ")
}

func (s guardsState) equal(o guardsState) bool {
	slices.Sort(s.items)
	slices.Sort(o.items)
	return maps.EqualFunc(s.backfill, o.backfill, bytes.Equal) && s.records == o.records && slices.Equal(s.items, o.items)
}

// waitSlotActive waits (bounded) until sync streams from the slot and
// returns the walsender's pid; it fails at once if sync exits.
func waitSlotActive(ctx context.Context, t *testing.T, e *backfillEnv, p *syncChild) int32 {
	t.Helper()
	conn, err := extract.Connect(ctx, e.db)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	deadline := time.Now().Add(time.Minute)
	for {
		var pid *int32
		// Streaming, not the connection of sync's own backfill that created
		// the slot and exports its snapshot (active too).
		err := conn.QueryRow(ctx, `SELECT s.active_pid FROM pg_replication_slots s JOIN pg_stat_activity a ON a.pid = s.active_pid
WHERE s.slot_name = $1 AND a.query ILIKE 'START_REPLICATION%'`, e.slot).Scan(&pid)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			t.Fatal(err)
		}
		if pid != nil {
			return *pid
		}
		if time.Now().After(deadline) {
			t.Fatalf("slot %s not active within a minute of starting sync", e.slot)
		}
		select { // poll interval of a bounded wait
		case <-p.done:
			t.Fatalf("sync exited (%d) before streaming\n%s\n%s", p.code, p.out.String(), p.err.String())
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// TestBackfillRefusedWhileSyncRuns: sync runs its own first backfill (its
// slot is not active yet then); while it streams, a plain backfill and a
// backfill --restart exit 2 naming the slot and the walsender's pid, and
// write nothing; sync goes on streaming.
func TestBackfillRefusedWhileSyncRuns(t *testing.T) {
	t.Parallel() // every ferry run is a child process
	ctx := t.Context()
	e := newGuardsEnv(t, "")
	p := e.startSyncChild(t, e.db) // no backfill yet: sync copies first
	pid := waitSlotActive(ctx, t, e, p)
	p.caughtUp(ctx, t, e)
	if !strings.Contains(p.out.String(), "No completed backfill for this slot: copying first.") {
		t.Errorf("sync did not run the backfill first:\n%s", p.out.String())
	}
	conn, err := extract.Connect(ctx, e.db)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	before := readGuardsState(ctx, t, e)
	if len(before.items) != 22 || before.records != 22 {
		t.Fatalf("after sync's backfill: %d items, %d records, want 22 each", len(before.items), before.records)
	}

	for _, r := range []ferryRun{
		{"backfill", e.args(), 2, []string{fmt.Sprintf("sync is running on slot %s (pid %d): a backfill now would", e.slot, pid),
			"stop sync first, or use `ferry snapshot` to re-read tables online"}},
		{"backfill --tables", e.args("--tables", "language"), 2, []string{fmt.Sprintf("sync is running on slot %s (pid %d)", e.slot, pid)}},
		{"backfill --restart", e.args("--restart"), 2, []string{fmt.Sprintf("slot %s is in use by another process (pid %d", e.slot, pid)}},
	} {
		code, out, errOut := tmFerryCode(ctx, t, r.args...)
		if code != r.code {
			t.Errorf("%s: exit %d, want %d\n%s\n%s", r.name, code, r.code, out, errOut)
		}
		for _, w := range r.want {
			if !strings.Contains(errOut, w) {
				t.Errorf("%s: stderr does not say %q:\n%s", r.name, w, errOut)
			}
		}
		if strings.Contains(errOut, "could not start") {
			t.Errorf("%s: the refusal is reported as a failure to start:\n%s", r.name, errOut)
		}
	}
	if after := readGuardsState(ctx, t, e); !before.equal(after) {
		t.Errorf("the refused backfills wrote: state %d→%d entries, items %d→%d, records %d→%d",
			len(before.backfill), len(after.backfill), len(before.items), len(after.items), before.records, after.records)
	}
	var left int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_replication_slots WHERE slot_name LIKE $1", e.slot+"_tmp_%").Scan(&left); err != nil || left != 0 {
		t.Errorf("temporary slots of %s: %d (%v)", e.slot, left, err)
	}

	// The sync goes on streaming.
	e.exec(ctx, t, "UPDATE language SET name = 'Klingon' WHERE language_id = 6")
	p.caughtUp(ctx, t, e)
	e.checkExact(ctx, t, 22)
	p.stop(t)
}

// TestSlotActiveError: the guard's error is ErrSlotInUse to errors.Is and
// a *SlotActiveError to errors.As, through wrapping.
func TestSlotActiveError(t *testing.T) {
	err := fmt.Errorf("backfill: %w", &pipeline.SlotActiveError{Slot: "s", PID: 7})
	var active *pipeline.SlotActiveError
	if !errors.Is(err, pipeline.ErrSlotInUse) || !errors.As(err, &active) || active.PID != 7 {
		t.Errorf("%v: not ErrSlotInUse / *SlotActiveError", err)
	}
	if ec := exitCode(usageError{err}, new(bytes.Buffer)); ec != exitUsage {
		t.Errorf("exit %d, want %d", ec, exitUsage)
	}
}

// TestSyncHasNoTablesFlag: sync has no --tables (a subset sync would
// acknowledge the other tables' changes without applying them): the flag is
// an unknown flag, exit 2, and sync's help does not offer it.
func TestSyncHasNoTablesFlag(t *testing.T) {
	t.Parallel() // child processes only
	ctx := t.Context()
	code, out, errOut := tmFerryCode(ctx, t, "sync", "--source", "postgres://127.0.0.1:1/none", "--mapping", "none.yaml", "--tables", "language")
	if code != 2 || !strings.Contains(out+errOut, "flag provided but not defined: -tables") {
		t.Errorf("sync --tables: exit %d, want 2 and an unknown flag\n%s\n%s", code, out, errOut)
	}
	_, help, _ := tmFerryCode(ctx, t, "sync", "--help")
	if !strings.Contains(help, "-restart") || strings.Contains(help, "  -tables") {
		t.Errorf("sync --help offers -tables (or lacks the backfill flags):\n%s", help)
	}
	if _, help, _ = tmFerryCode(ctx, t, "backfill", "--help"); !strings.Contains(help, "  -tables") {
		t.Errorf("backfill --help lacks -tables:\n%s", help)
	}
}

// TestStatusPublication: status prints the publication's line: absent before
// the backfill, its tables after, and a table mapped after the backfill as
// missing from it.
func TestStatusPublication(t *testing.T) {
	t.Parallel() // child processes only
	ctx := t.Context()
	e := newGuardsEnv(t, "")
	status := func(what, mapping string, extra ...string) string {
		t.Helper()
		args := append([]string{"status", "--source", e.db, "--mapping", mapping, "--slot", e.slot,
			"--control-table", e.control, "--counts=false"}, extra...)
		return tmFerry(ctx, t, 0, what, args...)
	}
	wantLine := func(what, out, line string) {
		t.Helper()
		for _, l := range strings.Split(out, "\n") {
			if l == line {
				return
			}
		}
		t.Errorf("%s: no line %q in\n%s", what, line, out)
	}
	wantLine("status before the backfill", status("status before the backfill", e.mapping), "publication ferry: does not exist (backfill creates it)")
	tmFerry(ctx, t, 0, "backfill", e.args()...)
	wantLine("status after the backfill", status("status after the backfill", e.mapping), "publication ferry: 2 tables")

	later := filepath.Join(t.TempDir(), "later.yaml")
	writeGuardsMapping(t, e, later, guardsCountry)
	wantLine("status with a table mapped later", status("status with a table mapped later", later),
		"publication ferry: 2 tables (missing: public.country; the next sync start adds them and snapshots them online)")
	wantLine("status --publication other", status("status --publication other", e.mapping, "--publication", "other"),
		"publication other: does not exist (backfill creates it)")
}
