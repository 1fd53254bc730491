package pipeline

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/ferry-migrate/ferry/extract"
	"github.com/ferry-migrate/ferry/load"
	"github.com/ferry-migrate/ferry/mappings"
	"github.com/ferry-migrate/ferry/transform"
)

// fakeItems is an in-memory DynamoDB table with the conditional writes'
// semantics (load/conditional.go): a write lands only when the stored
// item's _version is older (a delete: not newer).
type fakeItems struct {
	mu    sync.Mutex
	items map[string]load.Item // by pk
	calls []string
	fail  map[string]error // by pk: the error a write of that key returns
}

func newFakeItems() *fakeItems {
	return &fakeItems{items: map[string]load.Item{}, fail: map[string]error{}}
}

func pkOf(it load.Item) string { return it["pk"].(*types.AttributeValueMemberS).Value }

func versionOf(it load.Item) string {
	if v, ok := it["_version"].(*types.AttributeValueMemberN); ok {
		return v.Value
	}
	return ""
}

// older compares versions as ferry writes them (decimal, fixed width per
// position).
func older(a, b string) bool { return len(a) < len(b) || len(a) == len(b) && a < b }

func (f *fakeItems) PutIfNewer(_ context.Context, table string, item load.Item, version string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	k := pkOf(item)
	f.calls = append(f.calls, "put "+k)
	if err := f.fail[k]; err != nil {
		return false, err
	}
	if cur, ok := f.items[k]; ok && !older(versionOf(cur), version) {
		return false, nil
	}
	f.items[k] = item
	return true, nil
}

func (f *fakeItems) DeleteIfNotNewer(_ context.Context, table string, key load.Item, version string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	k := pkOf(key)
	f.calls = append(f.calls, "delete "+k)
	if cur, ok := f.items[k]; ok && older(version, versionOf(cur)) {
		return false, nil
	}
	delete(f.items, k)
	return true, nil
}

func (f *fakeItems) UpdateExistingIfNewer(_ context.Context, table string, key, set load.Item, remove []string, version string) (bool, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	k := pkOf(key)
	f.calls = append(f.calls, "update "+k)
	cur, ok := f.items[k]
	if !ok {
		return false, false, nil
	}
	if !older(versionOf(cur), version) {
		return false, true, nil
	}
	next := load.Item{}
	for a, v := range cur {
		next[a] = v
	}
	for _, r := range remove {
		delete(next, r)
	}
	for a, v := range set {
		next[a] = v
	}
	f.items[k] = next
	return true, true, nil
}

func filmPlan(t *testing.T) *transform.TablePlan {
	t.Helper()
	m, err := mappings.Parse("film.yaml", []byte(`version: 1
defaults: {target: films, stream: film-changes}
tables:
  - source: film
    partition_key: {name: pk, template: "FILM#{film_id}"}
    sort_key: {name: sk, template: "FILM"}
`))
	if err != nil {
		t.Fatal(err)
	}
	src := &extract.Table{Schema: "public", Name: "film", PK: []int{0}, Columns: []extract.Column{
		{Name: "film_id", Type: "integer", Position: 1}, {Name: "title", Type: "text", Position: 2}, {Name: "description", Type: "text", Position: 3}}}
	tp, err := transform.CompileTable(m.Table("public.film"), map[string]*extract.Table{"public.film": src})
	if err != nil {
		t.Fatal(err)
	}
	return tp
}

func TestFoldApply(t *testing.T) {
	tp := filmPlan(t)
	v := func(s string) extract.Value { return extract.Value{Text: s} }
	u := extract.Value{Unchanged: true}
	row := func(id, title, desc string) extract.Row { return extract.Row{v(id), v(title), v(desc)} }
	at := func(lsn uint64, seq uint32) extract.Position {
		return extract.Position{LSN: extract.LSN(lsn), Seq: seq}
	}
	ins := func(p extract.Position, r extract.Row) *extract.Change {
		return &extract.Change{Table: tp.Source, Op: extract.OpCreate, Pos: p, After: r}
	}
	upd := func(p extract.Position, before, after extract.Row) *extract.Change {
		return &extract.Change{Table: tp.Source, Op: extract.OpUpdate, Pos: p, Before: before, After: after}
	}
	del := func(p extract.Position, r extract.Row) *extract.Change {
		return &extract.Change{Table: tp.Source, Op: extract.OpDelete, Pos: p, Before: r}
	}
	// stored: items present before the batch (written at position 100).
	stored := func(rows ...extract.Row) map[string]load.Item {
		out := map[string]load.Item{}
		for _, r := range rows {
			it, _, err := tp.Item(r, at(100, 1))
			if err != nil {
				t.Fatal(err)
			}
			out[pkOf(it)] = it
		}
		return out
	}
	tests := []struct {
		name       string
		stored     map[string]load.Item
		changes    []*extract.Change
		want       map[string]string // pk → title ("" = no item)
		wantCalls  []string          // sorted
		hasDeletes bool
		applied    int64
		rereads    int
	}{
		{name: "insert then updates: one put of the last state",
			changes:   []*extract.Change{ins(at(200, 1), row("1", "A", "d")), upd(at(201, 1), nil, row("1", "B", "d")), upd(at(202, 1), nil, row("1", "C", "d"))},
			want:      map[string]string{"FILM#1": "C"},
			wantCalls: []string{"put FILM#1"}, applied: 1},
		{name: "a partial update merges into the put before it",
			changes:   []*extract.Change{ins(at(200, 1), row("1", "A", "long")), upd(at(201, 1), nil, extract.Row{v("1"), v("B"), u})},
			want:      map[string]string{"FILM#1": "B"},
			wantCalls: []string{"put FILM#1"}, applied: 1},
		{name: "a partial update alone is an update of the stored item",
			stored:    stored(row("1", "A", "long")),
			changes:   []*extract.Change{upd(at(200, 1), nil, extract.Row{v("1"), v("B"), u})},
			want:      map[string]string{"FILM#1": "B"},
			wantCalls: []string{"update FILM#1"}, applied: 1},
		{name: "a partial update of a missing item re-reads the row",
			changes:   []*extract.Change{upd(at(200, 1), nil, extract.Row{v("1"), v("B"), u})},
			want:      map[string]string{},
			wantCalls: []string{"update FILM#1"}, applied: 1, rereads: 1},
		{name: "insert then delete: one delete",
			stored:    stored(row("2", "X", "d")),
			changes:   []*extract.Change{ins(at(200, 1), row("1", "A", "d")), del(at(201, 1), row("1", "", ""))},
			want:      map[string]string{"FILM#2": "X"},
			wantCalls: []string{"delete FILM#1"}, hasDeletes: true, applied: 1},
		{name: "a key change deletes the old item and puts the new",
			stored:    stored(row("1", "A", "d")),
			changes:   []*extract.Change{upd(at(200, 1), row("1", "A", "d"), row("7", "A", "d"))},
			want:      map[string]string{"FILM#7": "A"},
			wantCalls: []string{"delete FILM#1", "put FILM#7"}, hasDeletes: true, applied: 2},
		{name: "a replayed older change does not replace a newer item",
			stored:    map[string]load.Item{"FILM#1": func() load.Item { it, _, _ := tp.Item(row("1", "NEW", "d"), at(300, 1)); return it }()},
			changes:   []*extract.Change{upd(at(200, 1), nil, row("1", "OLD", "d"))},
			want:      map[string]string{"FILM#1": "NEW"},
			wantCalls: []string{"put FILM#1"}, applied: 0},
		{name: "a snapshot read folds like an insert",
			changes:   []*extract.Change{{Table: tp.Source, Op: extract.OpRead, Pos: at(200, 1), After: row("3", "R", "d")}},
			want:      map[string]string{"FILM#3": "R"},
			wantCalls: []string{"put FILM#3"}, applied: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFold()
			for _, ch := range tc.changes {
				if err := f.add(ch, tp); err != nil {
					t.Fatal(err)
				}
			}
			if f.hasDeletes() != tc.hasDeletes {
				t.Errorf("hasDeletes %v, want %v", f.hasDeletes(), tc.hasDeletes)
			}
			w := newFakeItems()
			for k, it := range tc.stored {
				w.items[k] = it
			}
			rereads := 0
			applied, fails, err := f.apply(t.Context(), w, 4, func(context.Context, *itemWrite) error { rereads++; return nil })
			if err != nil || len(fails) > 0 {
				t.Fatalf("apply: %v, failures %v", err, fails)
			}
			if applied != tc.applied || rereads != tc.rereads {
				t.Errorf("applied %d, rereads %d; want %d, %d", applied, rereads, tc.applied, tc.rereads)
			}
			sort.Strings(w.calls)
			if strings.Join(w.calls, ",") != strings.Join(tc.wantCalls, ",") {
				t.Errorf("writes %v, want %v", w.calls, tc.wantCalls)
			}
			got := map[string]string{}
			for k, it := range w.items {
				got[k] = it["title"].(*types.AttributeValueMemberS).Value
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("items %v, want %v", got, tc.want)
			}
		})
	}
}

// TestFoldApplyFailures: a write DynamoDB can never accept comes back as a
// failure of its own item (the others are applied); any other error is
// returned.
func TestFoldApplyFailures(t *testing.T) {
	tp := filmPlan(t)
	row := func(id string) extract.Row {
		return extract.Row{{Text: id}, {Text: "T"}, {Text: "d"}}
	}
	for _, tc := range []struct {
		name      string
		err       error
		wantFails int
		wantErr   bool
	}{
		{"permanent: a failure of that item", fmt.Errorf("item too large: %w", load.ErrInvalidRequest), 1, false},
		{"other: the batch fails", errors.New("connection reset"), 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFold()
			for i, id := range []string{"1", "2", "3"} {
				if err := f.add(&extract.Change{Table: tp.Source, Op: extract.OpCreate, Pos: extract.Position{LSN: 200, Seq: uint32(i + 1)}, After: row(id)}, tp); err != nil {
					t.Fatal(err)
				}
			}
			w := newFakeItems()
			w.fail["FILM#2"] = tc.err
			_, fails, err := f.apply(t.Context(), w, 2, nil)
			if (err != nil) != tc.wantErr || len(fails) != tc.wantFails {
				t.Fatalf("err %v, failures %d; want error %v, %d failures", err, len(fails), tc.wantErr, tc.wantFails)
			}
			if len(fails) == 1 && fails[0].iw.keyText != "film_id=2" {
				t.Errorf("failure names %q", fails[0].iw.keyText)
			}
			if len(w.items) != 2 {
				t.Errorf("%d items written, want the 2 others", len(w.items))
			}
		})
	}
}
