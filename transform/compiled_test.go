package transform

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferry-migrate/ferry/extract"
	"github.com/ferry-migrate/ferry/mappings"
)

const compiledMapping = `version: 1
defaults: {target: pagila, stream: pagila-changes}
tables:
  - source: film
    partition_key: {name: pk, template: "FILM#{film_id}"}
    sort_key: {name: sk, template: "FILM"}
  - source: "public.*"
    exclude: [film, tag]
    partition_key: {name: pk, template: "{_table}#{_pk}"}
    sort_key: {name: sk, template: "ROW"}
`

// TestCompiledPlanRoundTrip: a plan written by `plan --compile` and read back
// without the source gives the same tables, items and records as the plan
// compiled against the catalogue.
func TestCompiledPlanRoundTrip(t *testing.T) {
	src := sourceTables()
	m, err := mappings.Parse("m.yaml", []byte(compiledMapping))
	if err != nil {
		t.Fatal(err)
	}
	pks := map[string][]string{}
	for n, tb := range src {
		pks[n] = tb.PKNames()
	}
	expanded, _, err := m.Expand(pks)
	if err != nil {
		t.Fatal(err)
	}
	want, err := Compile(expanded, src)
	if err != nil {
		t.Fatal(err)
	}
	data, err := json.Marshal(NewCompiledPlan("m.yaml", []byte(compiledMapping), want, time.Now()))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "plan.json")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := LoadCompiledPlan(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Tables) != len(want.Tables) {
		t.Fatalf("%d tables, want %d", len(got.Tables), len(want.Tables))
	}
	rows := map[string]extract.Row{
		"public.film": {{Text: "7"}, {Text: "AIRPLANE SIERRA"}, {Text: "A touching saga"}, {Text: "2006"}, {Text: "1"}, {Null: true},
			{Text: "6"}, {Text: "4.99"}, {Text: "62"}, {Text: "28.99"}, {Text: "PG-13"}, {Text: "2022-09-10 16:46:03.905795+00"},
			{Text: `{Trailers,"Deleted Scenes"}`}, {Text: "'airplan':1 'sierra':2"}},
		"public.note":   {{Text: "1"}, {Text: "a"}, {Null: true}},
		"public.rental": {{Text: "1"}, {Text: "2022-05-24 22:53:30+00"}, {Text: "367"}, {Text: "130"}, {Null: true}, {Text: "1"}, {Text: "2022-02-15 09:57:20+00"}},
	}
	pos := extract.Position{LSN: 0x16B374D848, Seq: 3}
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	for _, wt := range want.Tables {
		name := wt.Source.QualifiedName()
		gt := got.Table(name)
		if gt == nil {
			t.Errorf("%s missing from the compiled plan", name)
			continue
		}
		if gt.Target != wt.Target || gt.Stream != wt.Stream {
			t.Errorf("%s: target/stream %s/%s, want %s/%s", name, gt.Target, gt.Stream, wt.Target, wt.Stream)
		}
		row, ok := rows[name]
		if !ok {
			continue
		}
		wi, _, err1 := wt.Item(row, pos)
		gi, _, err2 := gt.Item(row, pos)
		if err1 != nil || err2 != nil {
			t.Fatalf("%s: %v / %v", name, err1, err2)
		}
		if len(wi) != len(gi) {
			t.Errorf("%s: item of %d attributes, want %d", name, len(gi), len(wi))
		}
		ch := &extract.Change{Table: wt.Source, Op: extract.OpCreate, Pos: pos, After: row, Commit: now}
		_, wr, err1 := wt.Record(ch, RecordSource{DB: "pagila"}, now)
		ch.Table = gt.Source
		_, gr, err2 := gt.Record(ch, RecordSource{DB: "pagila"}, now)
		if err1 != nil || err2 != nil || !bytes.Equal(wr, gr) {
			t.Errorf("%s: record\n%s\nwant\n%s (%v, %v)", name, gr, wr, err1, err2)
		}
		wj, _ := json.Marshal(wi)
		gj, _ := json.Marshal(gi)
		if !bytes.Equal(wj, gj) {
			t.Errorf("%s: item\n%s\nwant\n%s", name, gj, wj)
		}
	}
}

func TestCompiledPlanErrors(t *testing.T) {
	src := sourceTables()
	good := func() *CompiledPlan {
		return &CompiledPlan{Version: CompiledVersion, MappingFile: "m.yaml", Mapping: compiledMapping,
			Tables: []*extract.Table{src["public.film"], src["public.note"], src["public.tag"]}}
	}
	if _, err := good().Compile(); err != nil {
		t.Fatalf("the good plan: %v", err)
	}
	tests := []struct {
		name string
		edit func(c *CompiledPlan)
		want string
	}{
		{"a newer format", func(c *CompiledPlan) { c.Version = 2 }, "version 2"},
		{"a mapping that does not parse", func(c *CompiledPlan) { c.Mapping = "version: 1\ntables: [" }, "m.yaml"},
		{"a mapped table missing", func(c *CompiledPlan) { c.Tables = c.Tables[1:] }, "film"},
		{"a key column out of range", func(c *CompiledPlan) {
			t := *c.Tables[1]
			t.PK = []int{9}
			c.Tables[1] = &t
		}, "out of range"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := good()
			tc.edit(c)
			_, err := c.Compile()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err %v, want one naming %q", err, tc.want)
			}
		})
	}
}
