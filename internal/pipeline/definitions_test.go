package pipeline

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/ferry-migrate/ferry/extract"
	"github.com/ferry-migrate/ferry/load"
	"github.com/ferry-migrate/ferry/mappings"
	"github.com/ferry-migrate/ferry/transform"
)

// fakeValues is the control table's values in memory.
type fakeValues struct {
	mu   sync.Mutex
	m    map[string][]byte
	gets int
}

func (f *fakeValues) Put(_ context.Context, id, sk string, v []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.m[id+"/"+sk] = v
	return nil
}

func (f *fakeValues) Get(_ context.Context, id, sk string) ([]byte, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.gets++
	v, ok := f.m[id+"/"+sk]
	return v, ok, nil
}

const filmMapping = `version: 1
defaults: {target: films, stream: film-changes}
tables:
  - source: film
    partition_key: {name: pk, template: "FILM#{film_id}"}
    sort_key: {name: sk, template: "FILM"}
`

// filmDef is the film table with the columns (name, type) after film_id.
func filmDef(cols ...string) *extract.Table {
	t := &extract.Table{Schema: "public", Name: "film", PK: []int{0}, EstimatedRows: 1000,
		Columns: []extract.Column{{Name: "film_id", Type: "integer", Kind: extract.KindInt, Position: 1}}}
	for i := 0; i < len(cols); i += 2 {
		kind := extract.KindText
		if cols[i+1] == "integer" {
			kind = extract.KindInt
		}
		t.Columns = append(t.Columns, extract.Column{Name: cols[i], Type: cols[i+1], Kind: kind, Position: len(t.Columns) + 1})
	}
	return t
}

func compileFilm(t *testing.T, mapping string, def *extract.Table) *transform.Plan {
	t.Helper()
	m, err := mappings.Parse("film.yaml", []byte(mapping))
	if err != nil {
		t.Fatal(err)
	}
	p, err := transform.Compile(m, map[string]*extract.Table{"public.film": def})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestStreamApplyDefinitions: a record is applied with the definition it
// was made with, read from the control table when the applier was deployed
// with another; the deployed plan alone would fail or diverge, and a
// definition nobody stored fails the record.
func TestStreamApplyDefinitions(t *testing.T) {
	deployed := filmDef("title", "text", "description", "text", "length", "text")
	type rowOf struct {
		op  extract.Op
		def *extract.Table
		row []string // after film_id
	}
	for _, tc := range []struct {
		name    string
		mapping string // of the records ("" the deployed one)
		recs    []rowOf
		store   bool // sync stored the records' definitions
		want    map[string]string
		absent  []string
		wantErr any // the first record's failure, errors.As target
	}{
		{name: "a column added", store: true,
			recs: []rowOf{{extract.OpCreate, filmDef("title", "text", "description", "text", "length", "text", "rating", "text"), []string{"A", "d", "90", "PG"}}},
			want: map[string]string{"title": "S:A", "rating": "S:PG"}},
		{name: "a column dropped after an item was written whole", store: true,
			recs: []rowOf{
				{extract.OpCreate, deployed, []string{"A", "long", "90"}},
				{extract.OpUpdate, filmDef("title", "text", "length", "text"), []string{"B", "90"}},
			},
			want: map[string]string{"title": "S:B"}, absent: []string{"description"}},
		{name: "a column retyped", store: true,
			recs: []rowOf{{extract.OpCreate, filmDef("title", "text", "description", "text", "length", "integer"), []string{"A", "d", "90"}}},
			want: map[string]string{"length": "N:90"}},
		{name: "the mapping edited", store: true, mapping: filmMapping + "    exclude: [description]\n",
			recs: []rowOf{{extract.OpCreate, deployed, []string{"A", "d", "90"}}},
			want: map[string]string{"title": "S:A"}, absent: []string{"description"}},
		{name: "a definition nobody stored", store: false,
			recs:    []rowOf{{extract.OpCreate, filmDef("title", "text", "description", "text", "length", "integer"), []string{"A", "d", "90"}}},
			wantErr: new(*UnknownDefinitionError)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mapping := tc.mapping
			if mapping == "" {
				mapping = filmMapping
			}
			store := &fakeValues{m: map[string][]byte{}}
			items := newFakeItems()
			a, err := NewStreamApplier(StreamApplierConfig{
				Plan: compileFilm(t, filmMapping, deployed), Writer: items, State: newFakeState(), Definitions: store,
				Backoff: load.Backoff{Base: time.Millisecond, Max: time.Millisecond, MaxAttempts: 2},
				Logger:  slog.New(slog.NewTextHandler(io.Discard, nil)),
			})
			if err != nil {
				t.Fatal(err)
			}
			var recs []StreamRecord
			for i, r := range tc.recs {
				p := compileFilm(t, mapping, r.def)
				if tc.store {
					if err := StoreDefinitions(t.Context(), store, p.Mapping, p.Tables); err != nil {
						t.Fatal(err)
					}
				}
				tp := p.Tables[0]
				row := extract.Row{{Text: "1"}}
				for _, v := range r.row {
					row = append(row, extract.Value{Text: v})
				}
				ch := &extract.Change{Table: tp.Source, Op: r.op, Pos: at(uint64(100+i), 1), After: row, Commit: time.Unix(1, 0)}
				pk, data, err := tp.Record(ch, transform.RecordSource{DB: "pagila"}, time.Unix(2, 0))
				if err != nil {
					t.Fatal(err)
				}
				recs = append(recs, StreamRecord{Stream: "film-changes", Shard: "shardId-0", Sequence: "1", PartitionKey: pk, Data: data})
			}
			res, err := a.Apply(t.Context(), recs)
			if err != nil {
				t.Fatal(err)
			}
			if tc.wantErr != nil {
				if res.Failed != 0 || !errors.As(res.FailReason, tc.wantErr) {
					t.Fatalf("failed at %d with %v, want the first record failed with %T", res.Failed, res.FailReason, tc.wantErr)
				}
				if len(items.items) != 0 {
					t.Errorf("items written: %v", items.items)
				}
				return
			}
			if res.Failed >= 0 {
				t.Fatalf("record %d failed: %v", res.Failed, res.FailReason)
			}
			it := items.items["FILM#1"]
			if it == nil {
				t.Fatalf("no item FILM#1; items %v", items.items)
			}
			for name, want := range tc.want {
				var got string
				switch v := it[name].(type) {
				case *types.AttributeValueMemberS:
					got = "S:" + v.Value
				case *types.AttributeValueMemberN:
					got = "N:" + v.Value
				default:
					got = "missing"
				}
				if got != want {
					t.Errorf("%s = %s, want %s", name, got, want)
				}
			}
			for _, name := range tc.absent {
				if _, ok := it[name]; ok {
					t.Errorf("the item keeps %s, which its definition no longer has", name)
				}
			}
			// Another delivery reads nothing more: the plans are kept.
			gets := store.gets
			if _, err := a.Apply(t.Context(), recs); err != nil {
				t.Fatal(err)
			}
			if store.gets != gets {
				t.Errorf("a second delivery read the control table %d more times", store.gets-gets)
			}
		})
	}
}

// TestDefinitionID: the ID follows the mapping's text and everything of the
// definition but the row estimate; a record carries it.
func TestDefinitionID(t *testing.T) {
	base := filmDef("title", "text")
	id := transform.DefinitionID([]byte(filmMapping), base)
	moved := *base
	moved.EstimatedRows = 5
	if transform.DefinitionID([]byte(filmMapping), &moved) != id {
		t.Error("the row estimate changed the ID")
	}
	for name, other := range map[string]string{
		"retyped":        transform.DefinitionID([]byte(filmMapping), filmDef("title", "varchar(10)")),
		"added":          transform.DefinitionID([]byte(filmMapping), filmDef("title", "text", "x", "text")),
		"mapping edited": transform.DefinitionID([]byte(filmMapping+"\n"), base),
	} {
		if other == id {
			t.Errorf("%s: the same ID", name)
		}
	}
	p := compileFilm(t, filmMapping, base)
	if p.Tables[0].Def != id {
		t.Fatalf("compiled plan's Def %q, want %q", p.Tables[0].Def, id)
	}
	ch := &extract.Change{Table: base, Op: extract.OpCreate, Pos: at(5, 1), After: extract.Row{{Text: "1"}, {Text: "A"}}, Commit: time.Unix(1, 0)}
	_, data, err := p.Tables[0].Record(ch, transform.RecordSource{DB: "pagila"}, time.Unix(2, 0))
	if err != nil {
		t.Fatal(err)
	}
	env, err := transform.DecodeRecord(data)
	if err != nil || env.Def != id {
		t.Fatalf("the record's def %q (%v), want %q: %s", env.Def, err, id, data)
	}
}
