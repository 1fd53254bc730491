package extract

import (
	"strings"
	"testing"
	"time"
)

// relationMsgTyped is relationMsg with a type OID and key flag per column.
func relationMsgTyped(id uint32, schema, name string, cols ...Column) msg {
	m := msg{'R'}.u32(id).str(schema).str(name).u8('d').u16(uint16(len(cols)))
	for _, c := range cols {
		flags := byte(0)
		if c.Position == 1 { // tests mark key columns with Position 1
			flags = 1
		}
		m = m.u8(flags).str(c.Name).u32(c.TypeOID).u32(uint32(c.TypeMod))
	}
	return m
}

// The decoder notices a Relation message that no longer matches the table it
// knows (a column added, dropped, retyped, the key moved), switches to the
// announced definition, aligns the rows that follow with it and says so once.
func TestDecodeRelationChanges(t *testing.T) {
	base := func() *Table {
		return &Table{Schema: "public", Name: "film", PK: []int{0}, ReplicaIdentity: 'd', Columns: []Column{
			{Name: "film_id", Kind: KindInt, Type: "integer", TypeOID: 23, TypeMod: -1, Position: 1},
			{Name: "title", Kind: KindText, Type: "text", TypeOID: 25, TypeMod: -1, Position: 2},
			{Name: "len", Kind: KindInt, Type: "integer", TypeOID: 23, TypeMod: -1, Position: 3},
			{Name: "twice", Kind: KindInt, Type: "integer", TypeOID: 23, TypeMod: -1, Position: 4, Generated: "len * 2", GeneratedFrom: []int{2}},
		}}
	}
	key := func(name string, oid uint32) Column {
		return Column{Name: name, TypeOID: oid, TypeMod: -1, Position: 1}
	}
	col := func(name string, oid uint32) Column { return Column{Name: name, TypeOID: oid, TypeMod: -1} }
	tests := []struct {
		name    string
		cols    []Column
		changed bool
		want    string // New's columns: name:type (generated ones last)
		pk      string
		row     string // the insert that follows, as decoded
	}{
		{"the same definition", []Column{key("film_id", 23), col("title", 25), col("len", 23)}, false, "", "", "1|t|3|~"},
		{"a column added", []Column{key("film_id", 23), col("title", 25), col("len", 23), col("rating", 1043)}, true,
			"film_id:integer title:text len:integer rating: twice:integer", "film_id", "1|t|3|G|~"},
		{"a column dropped", []Column{key("film_id", 23), col("len", 23)}, true,
			"film_id:integer len:integer twice:integer", "film_id", "1|t|~"},
		{"a type changed", []Column{key("film_id", 23), col("title", 25), col("len", 20)}, true,
			"film_id:integer title:text len: twice:integer", "film_id", "1|t|3|~"},
		{"the key moved", []Column{col("film_id", 23), key("title", 25), col("len", 23)}, true,
			"film_id:integer title:text len:integer twice:integer", "title", "1|t|3|~"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := NewDecoder(map[string]*Table{"public.film": base()})
			at := time.Unix(1700000000, 0)
			var events []Event
			vals := []string{"1", "t", "3", "G"}[:len(tc.cols)]
			for _, m := range []msg{beginMsg(0x100, at, 7), relationMsgTyped(9, "public", "film", tc.cols...), insertMsg(9, vals...),
				relationMsgTyped(9, "public", "film", tc.cols...), insertMsg(9, vals...), commitMsg(0x100, 0x108, at)} {
				evs, err := d.Decode(m)
				if err != nil {
					t.Fatal(err)
				}
				events = append(events, evs...)
			}
			var rel []*RelationChange
			var rows []string
			for _, ev := range events {
				switch ev.Kind {
				case EventRelation:
					rel = append(rel, ev.Relation)
					if ev.CommitLSN != 0x100 {
						t.Errorf("relation event at %s, want the transaction's commit LSN", ev.CommitLSN)
					}
				case EventChange:
					rows = append(rows, rowText(ev.Change.After))
					if len(ev.Change.After) != len(ev.Change.Table.Columns) {
						t.Errorf("row of %d values for a table of %d columns", len(ev.Change.After), len(ev.Change.Table.Columns))
					}
				}
			}
			if !tc.changed {
				if len(rel) != 0 {
					t.Fatalf("%d relation events for an unchanged table", len(rel))
				}
			} else {
				if len(rel) != 1 {
					t.Fatalf("%d relation events, want one (the repeated message changes nothing more)", len(rel))
				}
				var got []string
				for _, c := range rel[0].New.Columns {
					got = append(got, c.Name+":"+c.Type)
				}
				if strings.Join(got, " ") != tc.want {
					t.Errorf("new columns %q, want %q", strings.Join(got, " "), tc.want)
				}
				if pk := strings.Join(rel[0].New.PKNames(), ","); pk != tc.pk {
					t.Errorf("new primary key %q, want %q", pk, tc.pk)
				}
				if rel[0].Old.ColumnIndex("twice") != 3 || rel[0].New.Columns[len(rel[0].New.Columns)-1].Name != "twice" {
					t.Error("the generated column is not kept last")
				}
				if g := rel[0].New.Columns[len(rel[0].New.Columns)-1]; tc.name != "a column dropped" && (len(g.GeneratedFrom) != 1 || rel[0].New.Columns[g.GeneratedFrom[0]].Name != "len") {
					t.Errorf("the generated column reads %v, want len", g.GeneratedFrom)
				}
			}
			if len(rows) != 2 || rows[0] != tc.row || rows[1] != tc.row {
				t.Fatalf("rows %q, want two inserts %q", rows, tc.row)
			}
		})
	}
}

// A composite primary key declared in another order than its columns keeps
// its order when a Relation message (which flags key columns in column
// order) announces another change.
func TestDecodeRelationKeepsKeyOrder(t *testing.T) {
	pay := &Table{Schema: "public", Name: "payment", PK: []int{2, 0}, ReplicaIdentity: 'd', Columns: []Column{
		{Name: "payment_id", Type: "integer", TypeOID: 23, TypeMod: -1, Position: 1},
		{Name: "amount", Type: "numeric(5,2)", TypeOID: 1700, TypeMod: 327686, Position: 2},
		{Name: "payment_date", Type: "timestamp with time zone", TypeOID: 1184, TypeMod: -1, Position: 3},
	}}
	d := NewDecoder(map[string]*Table{"public.payment": pay})
	at := time.Unix(1700000000, 0)
	cols := []Column{{Name: "payment_id", TypeOID: 23, TypeMod: -1, Position: 1}, {Name: "amount", TypeOID: 1700, TypeMod: 458755},
		{Name: "payment_date", TypeOID: 1184, TypeMod: -1, Position: 1}}
	var rel *RelationChange
	for _, m := range []msg{beginMsg(0x100, at, 7), relationMsgTyped(9, "public", "payment", cols...)} {
		evs, err := d.Decode(m)
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range evs {
			if ev.Kind == EventRelation {
				rel = ev.Relation
			}
		}
	}
	if rel == nil {
		t.Fatal("a numeric's new scale is not announced")
	}
	if got := strings.Join(rel.New.PKNames(), ","); got != "payment_date,payment_id" {
		t.Errorf("primary key %s, want payment_date,payment_id", got)
	}
}
