package transform

import (
	"errors"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/ferry-migrate/ferry/extract"
)

var testPos = extract.Position{LSN: 0x16B374D848, Seq: 3}

// items renders an item as attribute name → av() form.
func items(it Item) map[string]string {
	out := make(map[string]string, len(it))
	for k, v := range it {
		out[k] = av(v)
	}
	return out
}

func diffItems(t *testing.T, got, want map[string]string) {
	t.Helper()
	var keys []string
	for k := range got {
		keys = append(keys, k)
	}
	for k := range want {
		if _, ok := got[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		g, gok := got[k]
		w, wok := want[k]
		switch {
		case !gok:
			t.Errorf("attribute %s missing, want %s", k, w)
		case !wok:
			t.Errorf("attribute %s = %s, want it absent", k, g)
		case g != w:
			t.Errorf("attribute %s = %s, want %s", k, g, w)
		}
	}
}

// itemCase is a row of a fixture table and the item it becomes.
type itemCase struct {
	name  string
	table string
	row   extract.Row
	want  map[string]string // attribute name → av() form
	id    string
}

func itemCases() []itemCase {
	version := "N:" + testPos.Version()
	return []itemCase{
		{
			name: "open rental: sparse gsi2 present, gsi3 absent (return_date NULL)", table: "rental", row: rentalOpen,
			want: map[string]string{
				"pk": "S:CUSTOMER#393", "sk": "S:RENTAL#2022-08-23T21:50:12.000000Z#16050",
				"gsi1pk": "S:RENTAL#16050", "gsi1sk": "S:RENTAL",
				"gsi2pk": "S:OPEN#STAFF#1", "gsi2sk": "S:RENTAL#2022-08-23T21:50:12.000000Z#16050",
				"rental_id": "N:16050", "rental_date": "S:2022-08-23T21:50:12.000000Z", "inventory_id": "N:2666",
				"customer_id": "N:393", "return_date": "NULL:true", "staff_id": "N:1",
				"last_update": "S:2022-08-23T21:50:12.000000Z",
				"_table":      "S:rental", "_version": version,
			},
			id: "CUSTOMER#393\x00RENTAL#2022-08-23T21:50:12.000000Z#16050",
		},
		{
			name: "returned rental: gsi2's condition fails, gsi3 present", table: "rental", row: rentalReturned,
			want: map[string]string{
				"pk": "S:CUSTOMER#393", "sk": "S:RENTAL#2022-08-23T21:44:32.000000Z#16049",
				"gsi1pk": "S:RENTAL#16049", "gsi1sk": "S:RENTAL",
				"gsi3pk": "S:INVENTORY#4388", "gsi3sk": "S:RETURNED#2022-08-28T20:10:32.500000Z",
				"rental_id": "N:16049", "rental_date": "S:2022-08-23T21:44:32.000000Z", "inventory_id": "N:4388",
				"customer_id": "N:393", "return_date": "S:2022-08-28T20:10:32.500000Z", "staff_id": "N:2",
				"last_update": "S:2022-08-28T20:10:32.500000Z",
				"_table":      "S:rental", "_version": version,
			},
			id: "CUSTOMER#393\x00RENTAL#2022-08-23T21:44:32.000000Z#16049",
		},
		{
			name: "unchanged TOAST column left out, with the GSIs that need it", table: "rental",
			row: row("16050", "2022-08-23 21:50:12+00", "2666", "393", `\U`, "1", "2022-08-23 21:50:12+00"),
			want: map[string]string{
				"pk": "S:CUSTOMER#393", "sk": "S:RENTAL#2022-08-23T21:50:12.000000Z#16050",
				"gsi1pk": "S:RENTAL#16050", "gsi1sk": "S:RENTAL",
				"rental_id": "N:16050", "rental_date": "S:2022-08-23T21:50:12.000000Z", "inventory_id": "N:2666",
				"customer_id": "N:393", "staff_id": "N:1",
				"last_update": "S:2022-08-23T21:50:12.000000Z",
				"_table":      "S:rental", "_version": version,
			},
			id: "CUSTOMER#393\x00RENTAL#2022-08-23T21:50:12.000000Z#16050",
		},
		{
			name: "GSI left out when a template column is NULL", table: "rental",
			row: row("16050", "2022-08-23 21:50:12+00", "2666", "393", `\N`, `\N`, "2022-08-23 21:50:12+00"),
			want: map[string]string{
				"pk": "S:CUSTOMER#393", "sk": "S:RENTAL#2022-08-23T21:50:12.000000Z#16050",
				"gsi1pk": "S:RENTAL#16050", "gsi1sk": "S:RENTAL",
				"rental_id": "N:16050", "rental_date": "S:2022-08-23T21:50:12.000000Z", "inventory_id": "N:2666",
				"customer_id": "N:393", "return_date": "NULL:true", "staff_id": "NULL:true",
				"last_update": "S:2022-08-23T21:50:12.000000Z",
				"_table":      "S:rental", "_version": version,
			},
			id: "CUSTOMER#393\x00RENTAL#2022-08-23T21:50:12.000000Z#16050",
		},
		{
			name: "payment: composite key, numeric exact", table: "payment", row: paymentRow,
			want: map[string]string{
				"pk": "S:CUSTOMER#269", "sk": "S:PAYMENT#2022-01-29T01:58:52.222594Z#16051",
				"payment_id": "N:16051", "customer_id": "N:269", "staff_id": "N:1", "rental_id": "N:98",
				"amount": "N:2.99", "payment_date": "S:2022-01-29T01:58:52.222594Z",
				"_table": "S:payment", "_version": version,
			},
			id: "CUSTOMER#269\x00PAYMENT#2022-01-29T01:58:52.222594Z#16051",
		},
		{
			name: "film_actor: composite key", table: "film_actor", row: filmActorRow,
			want: map[string]string{
				"pk": "S:FILM#23", "sk": "S:ACTOR#1", "gsi1pk": "S:ACTOR#1", "gsi1sk": "S:FILM#23",
				"actor_id": "N:1", "film_id": "N:23", "last_update": "S:2022-02-15T09:05:03.000000Z",
				"_table": "S:film_actor", "_version": version,
			},
			id: "FILM#23\x00ACTOR#1",
		},
		{
			name: "film: enum, domain, array, excluded tsvector", table: "film", row: filmRow,
			want: map[string]string{
				"pk": "S:FILM#1", "sk": "S:FILM",
				"film_id": "N:1", "title": "S:ACADEMY DINOSAUR", "description": "S:A Epic Drama of a Feminist",
				"release_year": "N:2006", "language_id": "N:1", "original_language_id": "NULL:true",
				"rental_duration": "N:6", "rental_rate": "N:0.99", "length": "N:86", "replacement_cost": "N:20.99",
				"rating": "S:NC-17", "last_update": "S:2022-09-10T16:46:03.905795Z",
				"special_features": "L[S:Deleted Scenes, S:Behind the Scenes, NULL:true]",
				"_table":           "S:film", "_version": version,
			},
			id: "FILM#1\x00FILM",
		},
		{
			name: "staff: conversions, bytea, excluded password, no sort key", table: "staff", row: staffRow,
			want: map[string]string{
				"pk":       "S:STAFF#1",
				"staff_id": "N:1", "first_name": "S:Mike", "last_name": "S:Hillyer", "address_id": "N:3",
				"email": "S:Mike.Hillyer@sakilastaff.com", "store_id": "N:1", "active": "N:1", "username": "S:Mike",
				"last_update": "N:1652713991793", "picture": "B:89504e470d0a5a0a",
				"_table": "S:staff", "_version": version,
			},
			id: "STAFF#1",
		},
		{
			name: "domain bıgınt", table: "tag", row: row("x", "9223372036854775807"),
			want: map[string]string{"id": "S:TAG#x", "name": "S:x", "big": "N:9223372036854775807",
				"_table": "S:tag", "_version": version},
			id: "TAG#x",
		},
	}
}

func TestItem(t *testing.T) {
	p := pagilaPlan(t)
	for _, tt := range itemCases() {
		t.Run(tt.name, func(t *testing.T) {
			tp := tablePlan(t, p, tt.table)
			it, id, err := tp.Item(tt.row, testPos)
			if err != nil {
				t.Fatalf("Item: %v", err)
			}
			diffItems(t, items(it), tt.want)
			if id != tt.id {
				t.Errorf("id = %q, want %q", id, tt.id)
			}
			// Key returns exactly the key attributes and the same id.
			k, kid, err := tp.Key(tt.row)
			if err != nil {
				t.Fatalf("Key: %v", err)
			}
			if kid != id {
				t.Errorf("Key id = %q, Item id = %q", kid, id)
			}
			wantKey := map[string]string{tp.PK.Name: tt.want[tp.PK.Name]}
			if tp.SK != nil {
				wantKey[tp.SK.Name] = tt.want[tp.SK.Name]
			}
			if got := items(k); !reflect.DeepEqual(got, wantKey) {
				t.Errorf("Key = %v, want %v", got, wantKey)
			}
		})
	}
}

// Snapshot rows of a slot at LSN 0 (never in practice, but the type allows it) still get a version.
func TestItemVersionZeroLSN(t *testing.T) {
	tp := tablePlan(t, pagilaPlan(t), "film_actor")
	it, _, err := tp.Item(filmActorRow, extract.Position{})
	if err != nil {
		t.Fatal(err)
	}
	if got := av(it[AttrVersion]); got != "N:0" {
		t.Errorf("_version at position 0 = %s, want N:0", got)
	}
}

func TestKeyErrors(t *testing.T) {
	long := func(n int) string { return strings.Repeat("x", n) }
	tests := []struct {
		name  string
		table string
		row   extract.Row
		err   string // substring
		key   string // RowError.Key
	}{
		{"NULL partition key column", "rental", row("16050", "2022-08-23 21:50:12+00", "2666", `\N`, `\N`, "1", "2022-08-23 21:50:12+00"),
			"partition key pk is empty", "rental_id=16050"},
		{"unchanged partition key column", "rental", row("16050", "2022-08-23 21:50:12+00", "2666", `\U`, `\N`, "1", "2022-08-23 21:50:12+00"),
			"partition key pk is empty", "rental_id=16050"},
		{"NULL sort key column", "rental", row("16050", `\N`, "2666", "393", `\N`, "1", "2022-08-23 21:50:12+00"),
			"sort key sk is empty", "rental_id=16050"},
		{"empty partition key", "note", row("1", "", "b"), "partition key pk is empty", "id=1"},
		{"partition key too long", "note", row("1", long(2049), "b"), "partition key pk is 2049 bytes, DynamoDB allows 2048", "id=1"},
		{"sort key too long", "note", row("1", "a", long(1023)), "sort key sk is 1025 bytes, DynamoDB allows 1024", "id=1"},
		{"key value without a DynamoDB form", "rental", row("16050", "infinity", "2666", "393", `\N`, "1", "2022-08-23 21:50:12+00"),
			"column rental_date: timestamp \"infinity\" has no DynamoDB form", "rental_id=16050"},
		{"composite source key in the message", "payment", row("16051", `\N`, "1", "98", "2.99", "2022-01-29 01:58:52.222594+00"),
			"partition key pk is empty", "payment_date=2022-01-29 01:58:52.222594+00, payment_id=16051"},
	}
	p := pagilaPlan(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tp := tablePlan(t, p, tt.table)
			for what, f := range map[string]func() error{
				"Key":  func() error { _, _, err := tp.Key(tt.row); return err },
				"Item": func() error { _, _, err := tp.Item(tt.row, testPos); return err },
			} {
				err := f()
				if err == nil {
					t.Fatalf("%s: no error", what)
				}
				if !strings.Contains(err.Error(), tt.err) {
					t.Errorf("%s error %q, want it to contain %q", what, err, tt.err)
				}
				var re *RowError
				if !errors.As(err, &re) {
					t.Fatalf("%s error %T is not a *RowError", what, err)
				}
				if re.Table != "public."+tt.table || re.Key != tt.key {
					t.Errorf("%s RowError table %q key %q, want %q %q", what, re.Table, re.Key, "public."+tt.table, tt.key)
				}
			}
		})
	}
	// At the limits exactly, the keys are fine.
	tp := tablePlan(t, p, "note")
	if _, _, err := tp.Key(row("1", long(2048), long(1022))); err != nil {
		t.Errorf("keys of 2048 and 1024 bytes: %v", err)
	}
}

func TestItemValueErrors(t *testing.T) {
	p := pagilaPlan(t)
	tests := []struct {
		table, column string
		row           extract.Row
	}{
		{"film", "rental_rate", row("1", "T", `\N`, "2006", "1", `\N`, "6", "NaN", "86", "20.99", "G", "2022-09-10 16:46:03+00", "{}", "")},
		{"film", "special_features", row("1", "T", `\N`, "2006", "1", `\N`, "6", "0.99", "86", "20.99", "G", "2022-09-10 16:46:03+00", "{x", "")},
		{"staff", "picture", row("1", "M", "H", "3", `\N`, "1", "t", "M", `\N`, "2022-05-16 15:13:11+00", `\xZZ`)},
		{"staff", "last_update", row("1", "M", "H", "3", `\N`, "1", "t", "M", `\N`, "infinity", `\N`)},
		{"rental", "return_date", row("16050", "2022-08-23 21:50:12+00", "2666", "393", "infinity", "1", "2022-08-23 21:50:12+00")},
	}
	for _, tt := range tests {
		_, _, err := tablePlan(t, p, tt.table).Item(tt.row, testPos)
		var ve *ValueError
		if !errors.As(err, &ve) {
			t.Errorf("%s.%s: error %v, want a *ValueError", tt.table, tt.column, err)
			continue
		}
		if ve.Column != tt.column {
			t.Errorf("%s: ValueError names column %q, want %q (%v)", tt.table, ve.Column, tt.column, err)
		}
		var re *RowError
		if !errors.As(err, &re) || re.Table != "public."+tt.table {
			t.Errorf("%s.%s: error %v does not name the table", tt.table, tt.column, err)
		}
	}
}

func TestGSIAttributes(t *testing.T) {
	p := pagilaPlan(t)
	if got := tablePlan(t, p, "rental").GSIAttributes(); !reflect.DeepEqual(got, []string{"gsi1pk", "gsi1sk", "gsi2pk", "gsi2sk", "gsi3pk", "gsi3sk"}) {
		t.Errorf("rental GSIAttributes = %q", got)
	}
	if got := tablePlan(t, p, "staff").GSIAttributes(); len(got) != 0 {
		t.Errorf("staff GSIAttributes = %q", got)
	}
}

// TestItemConcurrent uses one plan from many goroutines (run with -race): a
// TablePlan is documented as safe for concurrent use.
func TestItemConcurrent(t *testing.T) {
	tp := tablePlan(t, pagilaPlan(t), "film")
	done := make(chan error)
	for g := 0; g < 8; g++ {
		go func() {
			var err error
			for i := 0; i < 200 && err == nil; i++ {
				_, _, err = tp.Item(filmRow, testPos)
				if err == nil {
					_, _, err = tp.Record(&extract.Change{Table: tp.Source, Op: extract.OpCreate, After: filmRow}, RecordSource{DB: "pagila"}, testNow)
				}
			}
			done <- err
		}()
	}
	for g := 0; g < 8; g++ {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}

func TestGSIWhenIsNotNull(t *testing.T) {
	m := pagilaMapping(t)
	when := findTable(m, "rental").GSIs[1].When
	when.IsNull = false // gsi2: returned rentals only
	tp := tablePlan(t, compile(t, m, sourceTables()), "rental")
	tests := []struct {
		name string
		row  extract.Row
		want bool
	}{
		{"returned", rentalReturned, true},
		{"open", rentalOpen, false},
		{"unknown (unchanged TOAST)", row("16050", "2022-08-23 21:50:12+00", "2666", "393", `\U`, "1", "2022-08-23 21:50:12+00"), false},
	}
	for _, tt := range tests {
		it, _, err := tp.Item(tt.row, testPos)
		if err != nil {
			t.Fatal(err)
		}
		_, pk := it["gsi2pk"]
		_, sk := it["gsi2sk"]
		if pk != tt.want || sk != tt.want {
			t.Errorf("%s: gsi2pk present %v, gsi2sk present %v, want %v", tt.name, pk, sk, tt.want)
		}
	}
}
