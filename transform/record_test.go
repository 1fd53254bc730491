package transform

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/ferry-migrate/ferry/extract"
)

var (
	testCommit = time.Date(2022, 5, 24, 22, 53, 30, 123_000_000, time.UTC)
	testNow    = time.Date(2022, 5, 24, 22, 53, 31, 0, time.UTC)
	testSource = RecordSource{DB: "pagila"}
)

func change(tp *TablePlan, op extract.Op, before, after extract.Row) *extract.Change {
	return &extract.Change{Table: tp.Source, Op: op, Pos: testPos, TxID: 771, Commit: testCommit, Before: before, After: after}
}

// decode parses a record strictly: valid JSON, numbers kept as json.Number.
func decode(t *testing.T, data []byte) map[string]any {
	t.Helper()
	if !json.Valid(data) {
		t.Fatalf("record is not valid JSON: %s", data)
	}
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		t.Fatalf("decode %s: %v", data, err)
	}
	return m
}

// TestRecordGolden pins the exact envelope of one change.
func TestRecordGolden(t *testing.T) {
	tp := tablePlan(t, pagilaPlan(t), "film_actor")
	key, data, err := tp.Record(change(tp, extract.OpCreate, nil, filmActorRow), testSource, testNow)
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"op":"c","before":null,"after":{"actor_id":1,"film_id":23,"last_update":"2022-02-15T09:05:03.000000Z"},` +
		`"source":{"db":"pagila","schema":"public","table":"film_actor","lsn":"16/B374D848","seq":3,"txid":771,"ts_ms":1653432810123,"snapshot":false},` +
		`"ts_ms":1653432811000}`
	if string(data) != want {
		t.Errorf("record\n got %s\nwant %s", data, want)
	}
	if key != "film_actor:1:23" {
		t.Errorf("partition key %q, want film_actor:1:23", key)
	}
}

func TestRecord(t *testing.T) {
	p := pagilaPlan(t)
	num := func(s string) json.Number { return json.Number(s) }
	tests := []struct {
		name    string
		table   string
		op      extract.Op
		before  extract.Row
		after   extract.Row
		key     string
		wantB   map[string]any // nil: before must be null
		wantA   map[string]any // nil: after must be null
		snap    bool
		absentA []string // columns that must not be in after
	}{
		{
			name: "snapshot read of a rental", table: "rental", op: extract.OpRead, after: rentalOpen, key: "rental:16050", snap: true,
			wantA: map[string]any{"rental_id": num("16050"), "rental_date": "2022-08-23T21:50:12.000000Z", "inventory_id": num("2666"),
				"customer_id": num("393"), "return_date": nil, "staff_id": num("1"), "last_update": "2022-08-23T21:50:12.000000Z"},
		},
		{
			name: "update with unchanged TOAST column", table: "rental", op: extract.OpUpdate,
			after: row("16050", "2022-08-23 21:50:12+00", "2666", "393", `\U`, "1", "2022-08-24 00:00:00+00"), key: "rental:16050",
			wantA: map[string]any{"rental_id": num("16050"), "rental_date": "2022-08-23T21:50:12.000000Z", "inventory_id": num("2666"),
				"customer_id": num("393"), "staff_id": num("1"), "last_update": "2022-08-24T00:00:00.000000Z"},
			absentA: []string{"return_date"},
		},
		{
			name: "update with full before image", table: "rental", op: extract.OpUpdate, before: rentalOpen, after: rentalReturned, key: "rental:16049",
			wantB: map[string]any{"rental_id": num("16050"), "rental_date": "2022-08-23T21:50:12.000000Z", "inventory_id": num("2666"),
				"customer_id": num("393"), "return_date": nil, "staff_id": num("1"), "last_update": "2022-08-23T21:50:12.000000Z"},
			wantA: map[string]any{"rental_id": num("16049"), "rental_date": "2022-08-23T21:44:32.000000Z", "inventory_id": num("4388"),
				"customer_id": num("393"), "return_date": "2022-08-28T20:10:32.500000Z", "staff_id": num("2"), "last_update": "2022-08-28T20:10:32.500000Z"},
		},
		{
			name: "delete with the key-only before image", table: "rental", op: extract.OpDelete,
			before: row("16050", `\N`, `\N`, `\N`, `\N`, `\N`, `\N`), key: "rental:16050",
			wantB: map[string]any{"rental_id": num("16050"), "rental_date": nil, "inventory_id": nil,
				"customer_id": nil, "return_date": nil, "staff_id": nil, "last_update": nil},
		},
		{
			name: "delete with a key-only old tuple (other columns left out)", table: "rental", op: extract.OpDelete,
			before: row("16050", `\U`, `\U`, `\U`, `\U`, `\U`, `\U`), key: "rental:16050",
			wantB: map[string]any{"rental_id": num("16050")},
		},
		{
			name: "delete of a composite key", table: "film_actor", op: extract.OpDelete,
			before: row("1", "23", `\U`), key: "film_actor:1:23",
			wantB: map[string]any{"actor_id": num("1"), "film_id": num("23")},
		},
		{
			name: "truncate", table: "rental", op: extract.OpTruncate, key: "rental",
		},
		{
			name: "payment: numeric as exact string, custom partition key", table: "payment", op: extract.OpCreate, after: paymentRow, key: "customer:269",
			wantA: map[string]any{"payment_id": num("16051"), "customer_id": num("269"), "staff_id": num("1"), "rental_id": num("98"),
				"amount": "2.99", "payment_date": "2022-01-29T01:58:52.222594Z"},
		},
		{
			name: "film: array, enum, domain, excluded column", table: "film", op: extract.OpCreate, after: filmRow, key: "film:1",
			wantA: map[string]any{"film_id": num("1"), "title": "ACADEMY DINOSAUR", "description": "A Epic Drama of a Feminist",
				"release_year": num("2006"), "language_id": num("1"), "original_language_id": nil, "rental_duration": num("6"),
				"rental_rate": "0.99", "length": num("86"), "replacement_cost": "20.99", "rating": "NC-17",
				"last_update": "2022-09-10T16:46:03.905795Z", "special_features": []any{"Deleted Scenes", "Behind the Scenes", nil}},
			absentA: []string{"fulltext"},
		},
		{
			name: "staff: bytea base64, bool, excluded password", table: "staff", op: extract.OpCreate, after: staffRow, key: "staff:1",
			wantA: map[string]any{"staff_id": num("1"), "first_name": "Mike", "last_name": "Hillyer", "address_id": num("3"),
				"email": "Mike.Hillyer@sakilastaff.com", "store_id": num("1"), "active": true, "username": "Mike",
				"last_update": "2022-05-16T15:13:11.793280Z", "picture": "iVBORw0KWgo="},
			absentA: []string{"password"},
		},
		{
			name: "text with JSON specials", table: "tag", op: extract.OpCreate, after: row("say \"hi\"\n\t\\ <b>&\x01 bıgınt", "1"),
			key:   "tag:say \"hi\"\n\t\\ <b>&\x01 bıgınt",
			wantA: map[string]any{"name": "say \"hi\"\n\t\\ <b>&\x01 bıgınt", "big": num("1")},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tp := tablePlan(t, p, tt.table)
			key, data, err := tp.Record(change(tp, tt.op, tt.before, tt.after), testSource, testNow)
			if err != nil {
				t.Fatalf("Record: %v", err)
			}
			if key != tt.key {
				t.Errorf("partition key %q, want %q", key, tt.key)
			}
			m := decode(t, data)
			if m["op"] != string(tt.op) {
				t.Errorf("op = %v, want %c", m["op"], tt.op)
			}
			for _, img := range []struct {
				name string
				want map[string]any
			}{{"before", tt.wantB}, {"after", tt.wantA}} {
				got, present := m[img.name]
				if !present {
					t.Errorf("%s missing (must be null or an object)", img.name)
					continue
				}
				if img.want == nil {
					if got != nil {
						t.Errorf("%s = %v, want null", img.name, got)
					}
					continue
				}
				if !reflect.DeepEqual(got, img.want) {
					t.Errorf("%s\n got %#v\nwant %#v", img.name, got, img.want)
				}
			}
			if a, ok := m["after"].(map[string]any); ok {
				for _, c := range tt.absentA {
					if _, there := a[c]; there {
						t.Errorf("after has %s, want it absent", c)
					}
				}
			}
			src, _ := m["source"].(map[string]any)
			wantSrc := map[string]any{"db": "pagila", "schema": "public", "table": tt.table, "lsn": "16/B374D848",
				"seq": num("3"), "txid": num("771"), "ts_ms": num("1653432810123"), "snapshot": tt.snap}
			if !reflect.DeepEqual(src, wantSrc) {
				t.Errorf("source\n got %#v\nwant %#v", src, wantSrc)
			}
			if m["ts_ms"] != num("1653432811000") {
				t.Errorf("ts_ms = %v", m["ts_ms"])
			}
			if len(m) != 5 {
				t.Errorf("envelope has keys %v, want op, before, after, source, ts_ms", m)
			}
		})
	}
}

func TestRecordErrors(t *testing.T) {
	p := pagilaPlan(t)
	film := tablePlan(t, p, "film")
	bad := row("1", "T", `\N`, "2006", "1", `\N`, "6", "NaN", "86", "20.99", "G", "2022-09-10 16:46:03+00", "{}", "")
	for _, ch := range []*extract.Change{
		change(film, extract.OpCreate, nil, bad),
		change(film, extract.OpUpdate, bad, filmRow),
		change(film, extract.OpDelete, bad, nil),
	} {
		_, _, err := film.Record(ch, testSource, testNow)
		var ve *ValueError
		var re *RowError
		if !errors.As(err, &ve) || ve.Column != "rental_rate" || !errors.As(err, &re) || re.Key != "film_id=1" {
			t.Errorf("op %c: error %v, want a RowError for film_id=1 wrapping a ValueError for rental_rate", ch.Op, err)
		}
	}
	pay := tablePlan(t, p, "payment")
	_, _, err := pay.Record(change(pay, extract.OpCreate, nil, row("16051", `\N`, "1", "98", "2.99", "2022-01-29 01:58:52+00")), testSource, testNow)
	if err == nil || !strings.Contains(err.Error(), "stream partition key is empty") {
		t.Errorf("NULL column of the partition key template: error %v", err)
	}
}

// TestPartitionKeyLimit: Kinesis partition keys are at most 256 characters and
// must stay valid UTF-8 when cut.
func TestPartitionKeyLimit(t *testing.T) {
	tp := tablePlan(t, pagilaPlan(t), "tag")
	for _, name := range []string{
		strings.Repeat("a", 300),
		"x" + strings.Repeat("é", 200), // "tag:x" is 5 bytes: byte 256 falls inside a character
		strings.Repeat("😀", 100),
	} {
		key, err := tp.PartitionKey(row(name, "1"))
		if err != nil {
			t.Fatal(err)
		}
		if len(key) > 256 || utf8.RuneCountInString(key) > 256 {
			t.Errorf("partition key of %d bytes", len(key))
		}
		if !utf8.ValidString(key) {
			t.Errorf("partition key %q is not valid UTF-8", key)
		}
		if !strings.HasPrefix("tag:"+name, key) || len(key) < 253 {
			t.Errorf("partition key %q is not the longest prefix that fits", key)
		}
	}
}
