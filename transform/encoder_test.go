package transform

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/ferry-migrate/ferry/extract"
	"github.com/ferry-migrate/ferry/mappings"
)

// encoded is what an Encoder handed out for one row.
type encoded struct {
	tp      *TablePlan
	row     extract.Row
	pos     extract.Position
	item    []byte
	id      string
	pk, sk  string
	partKey string
	rec     []byte
	err     string
}

// encodeAll runs rows through one Encoder per table, as a backfill worker
// does, the record of each row's read event built after its item.
func encodeAll(t *testing.T, p *Plan, rows []itemCase, pos extract.Position) []encoded {
	t.Helper()
	encs := map[*TablePlan]*Encoder{}
	var out []encoded
	for _, tt := range rows {
		tp := tablePlan(t, p, tt.table)
		enc := encs[tp]
		if enc == nil {
			enc = tp.NewEncoder()
			encs[tp] = enc
		}
		got := encoded{tp: tp, row: tt.row, pos: pos}
		it, id, err := enc.Item(tt.row, pos)
		if err != nil {
			got.err = err.Error()
			out = append(out, got)
			continue
		}
		got.item, got.id, got.pk, got.sk = it.JSON, id, it.PK.Value, it.SK.Value
		ch := &extract.Change{Table: tp.Source, Op: extract.OpRead, Pos: pos, Commit: testCommit, After: tt.row}
		got.partKey, got.rec, err = enc.Record(ch, testSource, testNow)
		if err != nil {
			got.err = "record: " + err.Error()
		}
		out = append(out, got)
	}
	return out
}

// TestEncoderMatchesItemJSONAndRecord: an Encoder gives every row the item
// ItemJSON gives it and the record Record gives it, byte for byte, also
// when one encoder has encoded many rows before (its blocks reused), and
// nothing it handed out changes afterwards.
func TestEncoderMatchesItemJSONAndRecord(t *testing.T) {
	p := pagilaPlan(t)
	var rows []itemCase
	for range 50 { // enough rows to fill several blocks
		rows = append(rows, itemJSONRows()...)
	}
	for _, pos := range []extract.Position{testPos, {}} {
		got := encodeAll(t, p, rows, pos)
		// Checked only after all rows were encoded: later rows must not
		// have written into what earlier ones were given.
		for i, g := range got {
			checkEncoded(t, fmt.Sprintf("row %d (%s)", i, rows[i].name), g)
		}
	}
}

func checkEncoded(t *testing.T, what string, g encoded) {
	t.Helper()
	it, id, err := g.tp.ItemJSON(g.row, g.pos)
	if err != nil {
		if g.err != err.Error() {
			t.Errorf("%s: encoder %q, ItemJSON %v", what, g.err, err)
		}
		return
	}
	ch := &extract.Change{Table: g.tp.Source, Op: extract.OpRead, Pos: g.pos, Commit: testCommit, After: g.row}
	partKey, rec, rerr := g.tp.Record(ch, testSource, testNow)
	if rerr != nil {
		if g.err != "record: "+rerr.Error() {
			t.Errorf("%s: encoder %q, Record %v", what, g.err, rerr)
		}
		return
	}
	if g.err != "" {
		t.Fatalf("%s: encoder refused the row (%s), ItemJSON and Record did not", what, g.err)
	}
	if !bytes.Equal(g.item, it.JSON) || g.id != id || g.pk != it.PK.Value || g.sk != it.SK.Value {
		t.Errorf("%s: item\n  encoder %s (%q)\n ItemJSON %s (%q)", what, g.item, g.id, it.JSON, id)
	}
	if !bytes.Equal(g.rec, rec) || g.partKey != partKey {
		t.Errorf("%s: record\n  encoder %s (%q)\n   Record %s (%q)", what, g.rec, g.partKey, rec, partKey)
	}
	if cap(g.rec) != len(g.rec) {
		t.Errorf("%s: the record has room after it", what)
	}
}

// TestEncoderWideTable: a table wider than the encoder's inline columns.
func TestEncoderWideTable(t *testing.T) {
	const n = inlineCols + 6
	cols := make([]extract.Column, n)
	var yamlTypes []string
	for i := range cols {
		cols[i] = extract.Column{Name: fmt.Sprintf("c%02d", i), Type: "timestamp with time zone", Kind: extract.KindTimestampTZ, Position: i + 1}
		if i > 0 && i%3 == 0 {
			yamlTypes = append(yamlTypes, fmt.Sprintf("c%02d: epoch_ms", i))
		}
	}
	cols[0] = extract.Column{Name: "id", Type: "integer", Kind: extract.KindInt, Position: 1}
	src := map[string]*extract.Table{"public.wide": {Schema: "public", Name: "wide", PK: []int{0}, Columns: cols}}
	m, err := mappings.Parse("wide.yaml", []byte(`version: 1
tables:
  - source: wide
    target: wide
    partition_key: {name: pk, template: "W#{id}"}
    sort_key: {name: sk, template: "{c29}#{c03}"}
    types: {`+strings.Join(yamlTypes, ", ")+`}
    stream: wide-changes
`))
	if err != nil {
		t.Fatal(err)
	}
	p, err := Compile(m, src)
	if err != nil {
		t.Fatal(err)
	}
	var rows []itemCase
	for r := range 200 {
		vals := []string{fmt.Sprint(r)}
		for i := 1; i < n; i++ {
			switch {
			case (r+i)%7 == 0:
				vals = append(vals, `\N`)
			default:
				vals = append(vals, fmt.Sprintf("2022-%02d-%02d 10:%02d:%02d.%d+0%d", 1+i%12, 1+r%28, i, r%60, r%7, r%3))
			}
		}
		rows = append(rows, itemCase{name: fmt.Sprint(r), table: "wide", row: row(vals...)})
	}
	for i, g := range encodeAll(t, p, rows, testPos) {
		checkEncoded(t, fmt.Sprintf("wide row %d", i), g)
	}
}

// TestEncoderConcurrent: encoders of one table in parallel (they share the
// table's size hints only).
func TestEncoderConcurrent(t *testing.T) {
	p := pagilaPlan(t)
	rows := itemJSONRows()
	var wg sync.WaitGroup
	results := make([][]encoded, 4)
	for w := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var all []itemCase
			for range 20 {
				all = append(all, rows...)
			}
			results[w] = encodeAll(t, p, all, testPos)
		}()
	}
	wg.Wait()
	for w, res := range results {
		for i, g := range res {
			checkEncoded(t, fmt.Sprintf("worker %d row %d", w, i), g)
		}
	}
}

// TestEncoderRecordOfAnotherRow: a record whose After is not the encoder's
// current row is built without its canonical forms (and still right).
func TestEncoderRecordOfAnotherRow(t *testing.T) {
	tp := tablePlan(t, pagilaPlan(t), "rental")
	enc := tp.NewEncoder()
	if _, _, err := enc.Item(rentalOpen, testPos); err != nil {
		t.Fatal(err)
	}
	ch := &extract.Change{Table: tp.Source, Op: extract.OpUpdate, Pos: testPos, Commit: testCommit, Before: rentalOpen, After: rentalReturned}
	pk, data, err := enc.Record(ch, testSource, testNow)
	if err != nil {
		t.Fatal(err)
	}
	wpk, want, err := tp.Record(ch, testSource, testNow)
	if err != nil {
		t.Fatal(err)
	}
	if pk != wpk || !bytes.Equal(data, want) {
		t.Errorf("record of another row\n got %s %s\nwant %s %s", pk, data, wpk, want)
	}
	if !strings.Contains(string(data), `"return_date":"2022-08-28T20:10:32.500000Z"`) {
		t.Errorf("record %s", data)
	}
}

// TestEncoderReset: after Reset the encoder builds the same items and
// records into the memory it used before, allocating nothing per row.
func TestEncoderReset(t *testing.T) {
	p := pagilaPlan(t)
	tp := tablePlan(t, p, "rental")
	enc := tp.NewEncoder()
	rows := []extract.Row{rentalOpen, rentalReturned}
	encode := func() (items, recs [][]byte) {
		for range 100 {
			for _, r := range rows {
				it, _, err := enc.Item(r, testPos)
				if err != nil {
					t.Fatal(err)
				}
				ch := &extract.Change{Table: tp.Source, Op: extract.OpRead, Pos: testPos, Commit: testCommit, After: r}
				_, rec, err := enc.Record(ch, testSource, testNow)
				if err != nil {
					t.Fatal(err)
				}
				items, recs = append(items, bytes.Clone(it.JSON)), append(recs, bytes.Clone(rec))
			}
		}
		return items, recs
	}
	items1, recs1 := encode()
	enc.Reset()
	items2, recs2 := encode()
	for i := range items1 {
		if !bytes.Equal(items1[i], items2[i]) || !bytes.Equal(recs1[i], recs2[i]) {
			t.Fatalf("row %d differs after Reset:\n%s\n%s", i, items1[i], items2[i])
		}
	}
	ch := &extract.Change{Table: tp.Source, Op: extract.OpRead, Pos: testPos, Commit: testCommit, After: rentalOpen}
	allocs := testing.AllocsPerRun(50, func() {
		enc.Reset()
		for range 200 {
			if _, _, err := enc.Item(rentalOpen, testPos); err != nil {
				t.Fatal(err)
			}
			if _, _, err := enc.Record(ch, testSource, testNow); err != nil {
				t.Fatal(err)
			}
		}
	})
	if allocs > 0 {
		t.Errorf("%v allocations per 200 rows after Reset", allocs)
	}
}
