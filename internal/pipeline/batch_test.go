package pipeline

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ferry-migrate/ferry/extract"
	"github.com/ferry-migrate/ferry/transform"
)

// TestBatchAdd: the batcher turns changes into records (a key change into a
// delete of the old key and a create of the new, like Debezium) and item
// writes, in stream order, with no I/O; a change it cannot turn into its
// record or item is refused whole (nothing of it is left in the batch).
func TestBatchAdd(t *testing.T) {
	tp := filmPlan(t)
	src := transform.RecordSource{DB: "pagila"}
	v := func(s string) extract.Value { return extract.Value{Text: s} }
	row := func(id, title string) extract.Row { return extract.Row{v(id), v(title), v("d")} }
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	type rec struct{ Op, Key string }
	tests := []struct {
		name    string
		changes []*extract.Change
		refused int // index of the change that is refused, -1 for none
		records []rec
		writes  int
	}{
		{"insert and update of one key: two records, one write",
			[]*extract.Change{
				{Table: tp.Source, Op: extract.OpCreate, Pos: extract.Position{LSN: 10, Seq: 1}, After: row("1", "A")},
				{Table: tp.Source, Op: extract.OpUpdate, Pos: extract.Position{LSN: 20, Seq: 1}, After: row("1", "B")},
			}, -1, []rec{{"c", "1"}, {"u", "1"}}, 1},
		{"a key change: delete of the old key, create of the new",
			[]*extract.Change{
				{Table: tp.Source, Op: extract.OpUpdate, Pos: extract.Position{LSN: 10, Seq: 1}, Before: row("1", "A"), After: row("2", "A")},
			}, -1, []rec{{"d", "1"}, {"c", "2"}}, 2},
		{"a NULL key is refused whole, the batch keeps the others",
			[]*extract.Change{
				{Table: tp.Source, Op: extract.OpCreate, Pos: extract.Position{LSN: 10, Seq: 1}, After: row("1", "A")},
				{Table: tp.Source, Op: extract.OpCreate, Pos: extract.Position{LSN: 20, Seq: 1}, After: extract.Row{{Null: true}, v("X"), v("d")}},
			}, 1, []rec{{"c", "1"}}, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := newSyncBatch()
			var last extract.Position
			for i, ch := range tc.changes {
				err := b.add(tp, ch, src, now, now)
				var rc *refusedChange
				if i == tc.refused {
					if !errors.As(err, &rc) {
						t.Fatalf("change %d: err %v, want a refusedChange", i, err)
					}
					continue
				}
				if err != nil {
					t.Fatalf("change %d: %v", i, err)
				}
				last = ch.Pos
			}
			var got []rec
			for _, r := range b.records {
				var ev struct {
					Op            string
					Before, After map[string]json.RawMessage
				}
				if err := json.Unmarshal(r.Data, &ev); err != nil {
					t.Fatal(err)
				}
				img := ev.After
				if img == nil {
					img = ev.Before
				}
				got = append(got, rec{ev.Op, strings.Trim(string(img["film_id"]), `"`)})
				if r.Stream != "film-changes" || r.PartitionKey == "" {
					t.Errorf("record %+v: stream or partition key", r)
				}
			}
			if len(got) != len(tc.records) {
				t.Fatalf("records %v, want %v", got, tc.records)
			}
			for i := range got {
				if got[i] != tc.records[i] {
					t.Errorf("record %d: %v, want %v", i, got[i], tc.records[i])
				}
			}
			accepted := len(tc.changes)
			if tc.refused >= 0 {
				accepted--
			}
			if b.fold.len() != tc.writes || b.changes != accepted || b.maxPos != last {
				t.Errorf("writes %d, changes %d, maxPos %v; want %d, %d, %v", b.fold.len(), b.changes, b.maxPos, tc.writes, accepted, last)
			}
		})
	}
}
