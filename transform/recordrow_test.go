package transform

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/ferry-migrate/ferry/extract"
	"github.com/ferry-migrate/ferry/mappings"
)

// checkInverse checks the rule of recordrow.go for one value: when the value
// has an item and an event form, the event form's text converts to the same
// attribute.
func checkInverse(t *testing.T, c converter, text string) {
	t.Helper()
	if !utf8.ValidString(text) {
		return // PostgreSQL's text (server encoding UTF8) is valid UTF-8
	}
	want, err := c.attr(text)
	if err != nil {
		return // refused: no event reaches an applier
	}
	ev, err := c.appendJSON(nil, text)
	if err != nil || !json.Valid(ev) {
		return // integers and floats are written as PostgreSQL gives them: no other text reaches a record
	}
	back, null, err := c.textOfJSON(ev)
	if err != nil || null {
		t.Fatalf("%s %s (arr %v): textOfJSON(%s) = %q, null %v, %v; the event of %q", c.kind, c.conv, c.arr, ev, back, null, err, text)
	}
	got, err := c.attr(back)
	if err != nil {
		t.Fatalf("%s %s (arr %v): %q → event %s → %q, which converts with %v", c.kind, c.conv, c.arr, text, ev, back, err)
	}
	if av(got) != av(want) {
		t.Fatalf("%s %s (arr %v): %q → event %s → %q: item %s, want %s", c.kind, c.conv, c.arr, text, ev, back, av(got), av(want))
	}
}

// TestRecordInverseTypeRules runs every value of docs/types.md's rules through
// the event form and back.
func TestRecordInverseTypeRules(t *testing.T) {
	for _, tt := range typeRuleCases {
		t.Run(tt.name, func(t *testing.T) {
			cv := tt.conv
			if cv == "" {
				cv = mappings.ConvAuto
			}
			checkInverse(t, converter{name: "col", kind: tt.kind, arr: tt.arr, conv: cv}, tt.in)
		})
	}
}

var inverseKinds = []extract.Kind{extract.KindInt, extract.KindNumeric, extract.KindFloat, extract.KindText, extract.KindBool,
	extract.KindDate, extract.KindTimestamp, extract.KindTimestampTZ, extract.KindTime, extract.KindEnum, extract.KindBytea,
	extract.KindTSVector, extract.KindJSON, extract.KindOther, extract.KindMoney, extract.KindBox}

var inverseConvs = []mappings.Conversion{mappings.ConvAuto, mappings.ConvString, mappings.ConvNumber, mappings.ConvEpochMS, mappings.ConvMap, mappings.ConvBinary}

// FuzzRecordInverse: for any value of any kind under any conversion that has
// an item and an event, the event converts back to the same item attribute.
func FuzzRecordInverse(f *testing.F) {
	for _, tt := range typeRuleCases {
		for k, kind := range inverseKinds {
			if kind == tt.kind {
				f.Add(uint8(k), tt.arr, uint8(0), tt.in)
			}
		}
	}
	f.Add(uint8(12), false, uint8(4), `{"a":[1,2.50,{"b":null}],"c":"\u00e9"}`)
	f.Add(uint8(10), true, uint8(1), `{"\\x00ff",NULL}`)
	f.Add(uint8(6), false, uint8(3), "2022-02-15 09:09:17.5")
	f.Fuzz(func(t *testing.T, kind uint8, arr bool, conv uint8, text string) {
		c := converter{name: "col", kind: inverseKinds[int(kind)%len(inverseKinds)], arr: arr, conv: inverseConvs[int(conv)%len(inverseConvs)]}
		if checkConversion(extract.Column{Type: string(c.kind), Kind: c.kind, Array: c.arr}, c.conv) != nil {
			return
		}
		if c.kind == extract.KindBool && !c.arr && text != "t" && text != "f" {
			return // PostgreSQL writes a bool as t or f
		}
		if c.arr && (c.kind == extract.KindInt || c.kind == extract.KindFloat || c.kind == extract.KindBool) {
			return // elements are written as PostgreSQL gives them (the type rules' cases cover these arrays)
		}
		if c.kind == extract.KindBytea && strings.ToLower(text) != text {
			return // PostgreSQL writes bytea's hex in lower case
		}
		if (c.kind == extract.KindInt || c.kind == extract.KindFloat) && !c.arr {
			if text == "" || (text[0] != '-' && (text[0] < '0' || text[0] > '9')) || !json.Valid([]byte(text)) || strings.TrimSpace(text) != text {
				return // PostgreSQL writes numbers, not strings or padding
			}
		}
		checkInverse(t, c, text)
	})
}

// TestRowOfRecord: a change's record, decoded and turned back into rows,
// builds the same item and the same record as the change itself, also when an
// update left a column out.
func TestRowOfRecord(t *testing.T) {
	p := pagilaPlan(t)
	for _, tc := range []struct {
		table     string
		row       extract.Row
		unchanged int // a column an update leaves out
	}{
		{"staff", staffRow, 10},
		{"film", filmRow, 12},
		{"payment", paymentRow, 4},
		{"rental", rentalReturned, 4},
	} {
		t.Run(tc.table, func(t *testing.T) { checkRowOf(t, tablePlan(t, p, tc.table), tc.row, tc.unchanged) })
	}
}

func checkRowOf(t *testing.T, tp *TablePlan, row extract.Row, unchanged int) {
	partial := append(extract.Row(nil), row...)
	partial[unchanged] = extract.Value{Unchanged: true}
	pos := extract.Position{LSN: 0x16B374D848, Seq: 3}
	for _, tc := range []struct {
		name string
		ch   *extract.Change
	}{
		{"insert", &extract.Change{Table: tp.Source, Op: extract.OpCreate, Pos: pos, After: row}},
		{"update leaving out bytea", &extract.Change{Table: tp.Source, Op: extract.OpUpdate, Pos: pos, After: partial}},
		{"delete", &extract.Change{Table: tp.Source, Op: extract.OpDelete, Pos: pos, Before: row}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, data, err := tp.Record(tc.ch, RecordSource{DB: "pagila"}, time.Unix(1, 0))
			if err != nil {
				t.Fatal(err)
			}
			var rec struct{ Before, After map[string]json.RawMessage }
			if err := json.Unmarshal(data, &rec); err != nil {
				t.Fatal(err)
			}
			img, src := rec.After, tc.ch.After
			if tc.ch.Op == extract.OpDelete {
				img, src = rec.Before, tc.ch.Before
			}
			back, err := tp.RowOf(img)
			if err != nil {
				t.Fatal(err)
			}
			if HasUnchanged(back) != HasUnchanged(src) {
				t.Errorf("unchanged columns: %v, want %v", HasUnchanged(back), HasUnchanged(src))
			}
			want, _, err1 := tp.Item(src, pos)
			got, _, err2 := tp.Item(back, pos)
			if err1 != nil || err2 != nil {
				t.Fatal(err1, err2)
			}
			if !reflect.DeepEqual(itemText(got), itemText(want)) {
				t.Errorf("item from the record\n %v\nwant\n %v", itemText(got), itemText(want))
			}
			ch2 := *tc.ch
			if tc.ch.Op == extract.OpDelete {
				ch2.Before = back
			} else {
				ch2.After = back
			}
			_, data2, err := tp.Record(&ch2, RecordSource{DB: "pagila"}, time.Unix(1, 0))
			if err != nil || string(data2) != string(data) {
				t.Errorf("record from the inverted row\n %s\nwant\n %s (%v)", data2, data, err)
			}
		})
	}
	if err := tp.RecordsInvertible(); err != nil {
		t.Errorf("RecordsInvertible: %v", err)
	}
}

func itemText(it Item) map[string]string {
	out := map[string]string{}
	for k, v := range it {
		out[k] = av(v)
	}
	return out
}
