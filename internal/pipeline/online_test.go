package pipeline

import (
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ferry-migrate/ferry/extract"
	"github.com/ferry-migrate/ferry/transform"
)

func onlineTable() *transform.TablePlan {
	return &transform.TablePlan{Source: &extract.Table{Schema: "public", Name: "t", PK: []int{0},
		Columns: []extract.Column{{Name: "id"}, {Name: "v"}}}}
}

func vrow(id, v string) extract.Row { return extract.Row{{Text: id}, {Text: v}} }

// The DBLog rule step by step: a change of a transaction the chunk's
// snapshot does not see removes its row (the log's state is newer); a change
// the snapshot sees does not; the rows left are emitted at the watermark in
// key order, numbered from 1.
func TestChunkWindowReconcilesWithTheLog(t *testing.T) {
	tp := onlineTable()
	other := &extract.Table{Schema: "public", Name: "o", PK: []int{0}, Columns: tp.Source.Columns}
	// Snapshot 100:105:102 sees 99, 101, 103, 104; not 102, 105, 106.
	snap := extract.TxSnapshot{Xmin: 100, Xmax: 105, Xip: []uint64{102}}
	rows := []extract.Row{vrow("1", "a"), vrow("2", "b"), vrow("3", "c"), vrow("4", "d"), vrow("5", "e")}
	tests := []struct {
		name    string
		changes []*extract.Change
		want    []string // ids emitted
	}{
		{"no changes", nil, []string{"1", "2", "3", "4", "5"}},
		{"a visible update stays from the chunk", []*extract.Change{
			{Table: tp.Source, Op: extract.OpUpdate, TxID: 101, After: vrow("2", "b")},
		}, []string{"1", "2", "3", "4", "5"}},
		{"invisible update, delete and in-progress transaction win", []*extract.Change{
			{Table: tp.Source, Op: extract.OpUpdate, TxID: 106, After: vrow("2", "B")},
			{Table: tp.Source, Op: extract.OpDelete, TxID: 105, Before: extract.Row{{Text: "4"}, {Unchanged: true}}},
			{Table: tp.Source, Op: extract.OpUpdate, TxID: 102, After: vrow("5", "E")},
		}, []string{"1", "3"}},
		{"a key change removes both keys", []*extract.Change{
			{Table: tp.Source, Op: extract.OpUpdate, TxID: 106, Before: extract.Row{{Text: "1"}, {Unchanged: true}}, After: vrow("3", "x")},
		}, []string{"2", "4", "5"}},
		{"another table's change is not this chunk's", []*extract.Change{
			{Table: other, Op: extract.OpDelete, TxID: 106, Before: vrow("1", "a")},
		}, []string{"1", "2", "3", "4", "5"}},
		{"an invisible truncate empties the chunk", []*extract.Change{
			{Table: tp.Source, Op: extract.OpTruncate, TxID: 107},
		}, nil},
		{"a visible truncate does not", []*extract.Change{
			{Table: tp.Source, Op: extract.OpTruncate, TxID: 99},
		}, []string{"1", "2", "3", "4", "5"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := newChunkWindow("w", tp, rows, snap)
			for _, ch := range tc.changes {
				w.observe(ch)
			}
			out := w.emit(extract.LSN(0x1000), time.Unix(0, 0))
			if len(out) != len(tc.want) {
				t.Fatalf("emitted %d rows, want %v", len(out), tc.want)
			}
			for i, ch := range out {
				if ch.After[0].Text != tc.want[i] || ch.Op != extract.OpRead {
					t.Errorf("row %d: %s %s, want r %s", i, ch.Op, ch.After[0].Text, tc.want[i])
				}
				if ch.Pos != (extract.Position{LSN: 0x0fff, Seq: uint32(i + 1)}) {
					t.Errorf("row %d at %v, want 0/FFF seq %d (just before the watermark)", i, ch.Pos, i+1)
				}
			}
			if len(rows) > 0 && (w.last == nil || w.last[0] != "5") {
				t.Errorf("last key %v, want [5] (progress continues after the chunk's last row read)", w.last)
			}
		})
	}
}

func TestXidRingFindsTransactionsTheSnapshotMisses(t *testing.T) {
	var r xidRing
	snap := extract.TxSnapshot{Xmin: 100, Xmax: 105, Xip: []uint64{102}}
	for _, x := range []uint32{98, 99, 101} {
		r.add(x)
	}
	if x, bad := r.invisibleIn(snap); bad {
		t.Fatalf("xid %d reported invisible", x)
	}
	r.add(102) // applied, but in progress for the snapshot: the race
	if x, bad := r.invisibleIn(snap); !bad || x != 102 {
		t.Fatalf("invisibleIn = %d, %v; want 102, true", x, bad)
	}
	for i := 0; i < len(r.ids); i++ { // 102 falls out of the ring
		r.add(103)
	}
	if _, bad := r.invisibleIn(snap); bad {
		t.Fatal("an old transaction still counts after the ring wrapped")
	}
}

func TestOnlineStateTakesRequestsInOrder(t *testing.T) {
	var o onlineState
	o.reset(nil)
	now := time.Unix(100, 0)
	if r := o.request(now); r != nil {
		t.Fatalf("request with none pending: %+v", r)
	}
	o.reqs = []SnapshotRequest{{ID: "a", Tables: []string{"public.t"}}, {ID: "b", Tables: []string{"public.t"}}}
	if r := o.request(now); r == nil || r.ID != "a" || o.prog.Request != "a" {
		t.Fatalf("first request %+v, progress %+v; want a", r, o.prog)
	}
	o.finished["a"], o.prog = true, nil
	if r := o.request(now); r == nil || r.ID != "b" {
		t.Fatalf("after a: %+v, want b", r)
	}
	// A restart resumes the durable progress; a complete one is not redone.
	o.reset(&SnapshotProgress{Request: "b", Table: 0, After: []string{"7"}, Rows: 7})
	if r := o.request(now); r == nil || r.ID != "b" || o.prog.After[0] != "7" {
		t.Fatalf("resume: %+v %+v", r, o.prog)
	}
	o.reset(&SnapshotProgress{Request: "b", Done: true})
	o.finished = map[string]bool{"b": true}
	o.reqs = o.reqs[1:]
	if r := o.request(now); r != nil {
		t.Fatalf("a complete request started again: %+v", r)
	}
}

// A --keys chunk: a key the chunk did not find is deleted at the watermark,
// unless the log has a newer state of it (then the log's change wins); found
// rows are emitted as before.
func TestChunkWindowDeletesAbsentKeys(t *testing.T) {
	tp := onlineTable()
	snap := extract.TxSnapshot{Xmin: 100, Xmax: 105}
	keys := [][]string{{"2"}, {"9"}, {"10"}, {"9"}}
	tests := []struct {
		name    string
		changes []*extract.Change
		want    []string // "r id" / "d id", in order
	}{
		{"absent keys become deletes", nil, []string{"r 2", "d 9", "d 10"}},
		{"an invisible insert of an absent key wins", []*extract.Change{
			{Table: tp.Source, Op: extract.OpCreate, TxID: 106, After: vrow("10", "x")},
		}, []string{"r 2", "d 9"}},
		{"a visible delete changes nothing", []*extract.Change{
			{Table: tp.Source, Op: extract.OpDelete, TxID: 101, Before: extract.Row{{Text: "9"}, {Unchanged: true}}},
		}, []string{"r 2", "d 9", "d 10"}},
		{"an invisible truncate leaves nothing", []*extract.Change{
			{Table: tp.Source, Op: extract.OpTruncate, TxID: 107},
		}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := newChunkWindow("w", tp, []extract.Row{vrow("2", "b")}, snap)
			if n := w.expectKeys(keys); n != 0 {
				t.Fatalf("expectKeys: %d keys left out, want 0", n)
			}
			for _, ch := range tc.changes {
				w.observe(ch)
			}
			var got []string
			for i, ch := range w.emit(extract.LSN(0x2000), time.Unix(0, 0)) {
				switch ch.Op {
				case extract.OpRead:
					got = append(got, "r "+ch.After[0].Text)
				case extract.OpDelete:
					got = append(got, "d "+ch.Before[0].Text)
					if !ch.Before[1].Unchanged || ch.After != nil {
						t.Errorf("delete %s: want a key-only before-image, got %v / %v", ch.Before[0].Text, ch.Before, ch.After)
					}
				}
				if ch.Pos != (extract.Position{LSN: 0x1fff, Seq: uint32(i + 1)}) {
					t.Errorf("change %d at %v, want seq %d", i, ch.Pos, i+1)
				}
			}
			if strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Errorf("emitted %v, want %v", got, tc.want)
			}
		})
	}
}

func TestRemainingRanges(t *testing.T) {
	k := func(s string) []string { return []string{s} }
	chunks := []extract.Chunk{{Index: 3, Lo: k("30")}, {Index: 0, Hi: k("10")}, {Index: 1, Lo: k("10"), Hi: k("20")}, {Index: 2, Lo: k("20"), Hi: k("30")}}
	tests := []struct {
		name string
		done map[int]int64
		want string
	}{
		{"nothing done: one range, unbounded", nil, "[-∞,+∞)"},
		{"all done", map[int]int64{0: 1, 1: 1, 2: 1, 3: 1}, ""},
		{"a hole in the middle", map[int]int64{1: 5}, "[-∞,10) [20,+∞)"},
		{"ends done", map[int]int64{0: 5, 3: 5}, "[10,30)"},
		{"every other", map[int]int64{0: 5, 2: 5}, "[10,20) [30,+∞)"},
	}
	bound := func(b []string, inf string) string {
		if b == nil {
			return inf
		}
		return b[0]
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var parts []string
			for _, r := range remainingRanges(chunks, tc.done) {
				parts = append(parts, "["+bound(r.From, "-∞")+","+bound(r.Before, "+∞")+")")
			}
			if got := strings.Join(parts, " "); got != tc.want {
				t.Errorf("ranges %q, want %q", got, tc.want)
			}
		})
	}
}

func TestSchemaRefills(t *testing.T) {
	pending := []SnapshotRequest{
		{ID: "1", Tables: []string{"public.a"}, Origin: OriginVerify},
		{ID: "2", Tables: []string{"public.b"}, Origin: OriginSchema},
		{ID: "3", Tables: []string{"public.b", "public.c"}, Origin: OriginSchema},
		{ID: "4", Tables: []string{"public.d"}, Origin: OriginSnapshot},
		{ID: "5", Tables: []string{"public.e"}, Origin: OriginSchema, Keys: [][]string{{"1"}}}, // a partition sweep
	}
	got := SchemaRefills(pending)
	want := map[string]string{"public.b": "2", "public.c": "3"}
	if !maps.Equal(got, want) {
		t.Errorf("SchemaRefills = %v, want %v", got, want)
	}
}

func TestKeptAttributes(t *testing.T) {
	cols := func(names ...string) []SchemaColumn {
		var out []SchemaColumn
		for _, n := range names {
			out = append(out, SchemaColumn{Name: n})
		}
		return out
	}
	for _, tc := range []struct {
		name    string
		changes []SchemaChange
		want    map[string][]string
	}{
		{"none", nil, map[string][]string{}},
		{"dropped and kept", []SchemaChange{{Table: "public.a", Action: "followed", Dropped: []string{"x"}, Kept: []string{"x"}, Columns: cols("id")}},
			map[string][]string{"public.a": {"x"}}},
		{"dropped and re-read", []SchemaChange{{Table: "public.a", Action: "followed", Dropped: []string{"x"}, Refill: "r1", Columns: cols("id")}},
			map[string][]string{}},
		{"a stop keeps nothing", []SchemaChange{{Table: "public.a", Action: "stopped", Dropped: []string{"x"}, Kept: []string{"x"}, Columns: cols("id")}},
			map[string][]string{}},
		{"added again later: compared again", []SchemaChange{
			{Table: "public.a", Action: "followed", Kept: []string{"x"}, Columns: cols("id")},
			{Table: "public.b", Action: "followed", Kept: []string{"y"}, Columns: cols("id")},
			{Table: "public.a", Action: "followed", Added: []SchemaColumn{{Name: "x"}}, Refill: "r2", Columns: cols("id", "x")},
		}, map[string][]string{"public.b": {"y"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := KeptAttributes(tc.changes)
			if !maps.EqualFunc(got, tc.want, slices.Equal) {
				t.Errorf("KeptAttributes = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestChunkRowsOlderThanTheNextCommit: pgoutput reports the watermark at the
// end of its WAL record, where the next record — the commit of a transaction
// written meanwhile — may begin, and that transaction's changes are at
// (H, 1…k). The chunk's rows must be older than all of them: once the chunk
// is applied and recorded, none of the transaction's changes may count as
// already applied (they were skipped and lost when the rows were at (H, i)).
func TestChunkRowsOlderThanTheNextCommit(t *testing.T) {
	tp := onlineTable()
	snap := extract.TxSnapshot{Xmin: 100, Xmax: 100}
	rows := []extract.Row{vrow("1", "a"), vrow("2", "b"), vrow("3", "c"), vrow("4", "d"), vrow("5", "e")}
	const hwm = extract.LSN(0x22770D48)
	out := newChunkWindow("w", tp, rows, snap).emit(hwm, time.Unix(0, 0))
	if len(out) != len(rows) {
		t.Fatalf("emitted %d rows", len(out))
	}
	before := extract.Position{LSN: hwm - 40, Seq: 9} // a commit before the watermark record
	c, _, _, _ := newTestCheckpointer(t, 0, Checkpoint{LSN: hwm - 40, Pos: before})
	last := out[len(out)-1].Pos
	if err := c.applied(t.Context(), last, len(out), 0, time.Time{}, nil); err != nil {
		t.Fatal(err)
	}
	for _, ch := range out {
		if !before.Less(ch.Pos) {
			t.Errorf("row at %v is not newer than the commit before the watermark (%v)", ch.Pos, before)
		}
	}
	for seq := uint32(1); seq <= uint32(len(out))+1; seq++ {
		next := extract.Position{LSN: hwm, Seq: seq}
		if c.durable(next) {
			t.Errorf("change %d of a transaction committed at the watermark's end counts as applied after the chunk (rows up to %v)", seq, last)
		}
	}
}
