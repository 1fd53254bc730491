package extract

import (
	"encoding/json"
	"reflect"
	"testing"
)

var rentalTable = &Table{
	Schema: "public",
	Name:   "rental",
	Columns: []Column{
		{Name: "rental_id", Type: "integer", Kind: KindInt, NotNull: true, Position: 1},
		{Name: "rental_date", Type: "timestamp with time zone", Kind: KindTimestampTZ, NotNull: true, Position: 2},
		{Name: "inventory_id", Type: "integer", Kind: KindInt, NotNull: true, Position: 3},
	},
	PK: []int{0},
}

var paymentTable = &Table{
	Schema: "public",
	Name:   "payment",
	Columns: []Column{
		{Name: "payment_id", Type: "integer", Kind: KindInt, NotNull: true, Position: 1},
		{Name: "amount", Type: "numeric(5,2)", Kind: KindNumeric, NotNull: true, Position: 5},
		{Name: "payment_date", Type: "timestamp with time zone", Kind: KindTimestampTZ, NotNull: true, Position: 6},
	},
	PK:          []int{2, 0}, // PRIMARY KEY (payment_date, payment_id)
	Partitioned: true,
}

var oddTable = &Table{
	Schema: `my"schema`,
	Name:   "Odd Table",
	Columns: []Column{
		{Name: `na"me`, Type: "text", Kind: KindText},
		{Name: "val", Type: `public."bıgınt"`, Kind: KindInt},
	},
	PK: []int{0},
}

var noPKTable = &Table{
	Schema:  "public",
	Name:    "log",
	Columns: []Column{{Name: "line", Type: "text", Kind: KindText}},
}

func TestChunkQuery(t *testing.T) {
	const rentalSelect = `SELECT "rental_id", "rental_date", "inventory_id" FROM "public"."rental"`
	const paymentSelect = `SELECT "payment_id", "amount", "payment_date" FROM "public"."payment"`
	tests := []struct {
		name  string
		table *Table
		chunk Chunk
		want  string
	}{
		{"whole table", rentalTable, Chunk{}, rentalSelect},
		{"no primary key", noPKTable, Chunk{}, `SELECT "line" FROM "public"."log"`},
		{"first chunk", rentalTable, Chunk{Index: 0, Hi: []string{"1001"}},
			rentalSelect + ` WHERE ("rental_id") < ('1001'::integer)`},
		{"middle chunk", rentalTable, Chunk{Index: 1, Lo: []string{"1001"}, Hi: []string{"2001"}},
			rentalSelect + ` WHERE ("rental_id") >= ('1001'::integer) AND ("rental_id") < ('2001'::integer)`},
		{"last chunk", rentalTable, Chunk{Index: 2, Lo: []string{"2001"}},
			rentalSelect + ` WHERE ("rental_id") >= ('2001'::integer)`},
		{"composite key, both bounds", paymentTable, Chunk{Index: 1,
			Lo: []string{"2022-01-29 01:58:52.222594+00", "16051"},
			Hi: []string{"2022-02-01 00:00:00+00", "17000"}},
			paymentSelect + ` WHERE ("payment_date", "payment_id") >= ('2022-01-29 01:58:52.222594+00'::timestamp with time zone, '16051'::integer)` +
				` AND ("payment_date", "payment_id") < ('2022-02-01 00:00:00+00'::timestamp with time zone, '17000'::integer)`},
		{"composite key, open end", paymentTable, Chunk{Index: 2, Lo: []string{"2022-07-01 00:00:00+00", "1"}},
			paymentSelect + ` WHERE ("payment_date", "payment_id") >= ('2022-07-01 00:00:00+00'::timestamp with time zone, '1'::integer)`},
		{"quotes in names and values", oddTable, Chunk{Lo: []string{`O'Brien`}, Hi: []string{`it''s "x"`}},
			`SELECT "na""me", "val" FROM "my""schema"."Odd Table"` +
				` WHERE ("na""me") >= ('O''Brien'::text) AND ("na""me") < ('it''''s "x"'::text)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ChunkQuery(tt.table, tt.chunk); got != tt.want {
				t.Errorf("ChunkQuery:\n got %s\nwant %s", got, tt.want)
			}
		})
	}
}

// Chunks are saved in the checkpoint as JSON: open bounds must stay open.
func TestChunkJSONRoundTrip(t *testing.T) {
	for _, ch := range []Chunk{
		{Index: 0},
		{Index: 0, Hi: []string{"1001"}},
		{Index: 3, Lo: []string{"2022-01-29 01:58:52.222594+00", "16051"}},
		{Index: 4, Lo: []string{"a"}, Hi: []string{"b"}},
	} {
		data, err := json.Marshal(ch)
		if err != nil {
			t.Fatal(err)
		}
		var got Chunk
		if err := json.Unmarshal(data, &got); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, ch) {
			t.Errorf("%s decoded to %+v, want %+v", data, got, ch)
		}
		if ChunkQuery(paymentTable, got) != ChunkQuery(paymentTable, ch) {
			t.Errorf("%s: query changed after a JSON round trip", data)
		}
	}
}

func TestTableHelpers(t *testing.T) {
	if got := paymentTable.PKNames(); !reflect.DeepEqual(got, []string{"payment_date", "payment_id"}) {
		t.Errorf("PKNames = %q", got)
	}
	if got := noPKTable.PKNames(); len(got) != 0 {
		t.Errorf("PKNames of a table without a key = %q", got)
	}
	if got := paymentTable.ColumnIndex("amount"); got != 1 {
		t.Errorf("ColumnIndex(amount) = %d", got)
	}
	if got := paymentTable.ColumnIndex("nope"); got != -1 {
		t.Errorf("ColumnIndex(nope) = %d", got)
	}
	if got := oddTable.QualifiedName(); got != `my"schema.Odd Table` {
		t.Errorf("QualifiedName = %s", got)
	}
	if got := oddTable.Ident(); got != `"my""schema"."Odd Table"` {
		t.Errorf("Ident = %s", got)
	}
	if got := QuoteIdent("bıgınt"); got != `"bıgınt"` {
		t.Errorf("QuoteIdent = %s", got)
	}
}

func TestSortedNames(t *testing.T) {
	tables := map[string]*Table{"public.rental": rentalTable, "public.payment": paymentTable, "a.z": noPKTable}
	if got := SortedNames(tables); !reflect.DeepEqual(got, []string{"a.z", "public.payment", "public.rental"}) {
		t.Errorf("SortedNames = %q", got)
	}
}
