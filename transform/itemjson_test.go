package transform

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/ferry-migrate/ferry/extract"
	"github.com/ferry-migrate/ferry/load/ddbjson"
	"github.com/ferry-migrate/ferry/load/ddbjson/ddbjsontest"
	"github.com/ferry-migrate/ferry/mappings"
)

// The backfill builds its items in DynamoDB's wire form (ItemJSON) instead
// of the SDK's item (Item). These tests hold the two against each other
// through the SDK's own serializer: for every value of the type matrix and
// every fixture row, the wire form is the SDK's serialization of Item, byte
// for byte (attribute order aside, which a JSON object does not have).

// sameAsSDK checks that wire is the SDK's serialization of the SDK item it
// should equal.
func sameAsSDK(t *testing.T, what string, wire []byte, sdk []byte) {
	t.Helper()
	g, err := ddbjsontest.Canonical(wire)
	if err != nil {
		t.Fatalf("%s: wire form %s: %v", what, wire, err)
	}
	w, err := ddbjsontest.Canonical(sdk)
	if err != nil {
		t.Fatalf("%s: SDK form %s: %v", what, sdk, err)
	}
	if !bytes.Equal(g, w) {
		t.Errorf("%s:\n wire %s\n  SDK %s", what, g, w)
	}
}

// valueCase is one value of the type matrix under one conversion.
type valueCase struct {
	name string
	c    converter
	in   string
}

// valueCases gathers the type matrix: TestAttrAuto's, TestAttrConversions',
// TestTypeRules' and TestJSONAttr's values, and strings whose escapes
// matter.
func valueCases(t *testing.T) []valueCase {
	var out []valueCase
	add := func(name string, kind extract.Kind, arr bool, cv mappings.Conversion, in string) {
		out = append(out, valueCase{name, conv(kind, arr, cv), in})
	}
	for _, tt := range attrAutoCases {
		add("auto/"+tt.name, tt.kind, tt.arr, tt.conv, tt.in)
	}
	for _, tt := range attrConversionCases {
		add("conversion/"+tt.name, tt.kind, tt.arr, tt.conv, tt.in)
	}
	for _, tt := range typeRuleCases {
		add("rules/"+tt.name, tt.kind, tt.arr, tt.conv, tt.in)
	}
	for _, in := range []string{`{"b": {"c": [1, "x", true, false, null]}, "a": ""}`, `{"a": 1, "b": [2.50, {"c": null}]}`, `{}`, ` [ ] `,
		`{"": 1, " ": 2}`, `{"A":1,"a":2,"é":4,"\u00e9x":5}`, `"hi \"there\""`, `""`, `-12.3400`, `true`, `null`,
		`["\ud83d\ude00", "\\ud800", "a\u0000b", "\t\n", "\/", "<&>\u2028"]`, nestObjects(31), `{"n": 1E126}`, `{"a": 1, "a": 2}`} {
		add("map/"+in, extract.KindJSON, false, mappings.ConvMap, in)
	}
	for i, s := range []string{"", "plain", `"q" \ b`, "a\nb\rc\td\x01\x1f\x7f", "<a>&amp;", "\u2028\u2029", "日本語 🎬 bıgınt", "bad\xffutf8\xc3", strings.Repeat("x", 5000)} {
		add(fmt.Sprintf("text/%d", i), extract.KindText, false, mappings.ConvAuto, s)
		add(fmt.Sprintf("text[]/%d", i), extract.KindText, true, mappings.ConvAuto, `{"`+strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s)+`",NULL}`)
	}
	return out
}

// TestValueWireMatchesSDK: every value of the type matrix has the same
// wire form whichever way it is built, and is refused alike.
func TestValueWireMatchesSDK(t *testing.T) {
	for _, tc := range valueCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			checkValue(t, tc.c, tc.in)
		})
	}
}

func checkValue(t *testing.T, c converter, in string) {
	t.Helper()
	a, errA := c.attr(in)
	w, errW := c.appendAttr(nil, nil, -1, in)
	// and through a row's encoder, as items are built (canonical forms cached)
	var e rowEnc
	e.init(extract.Row{{Text: in}}, []converter{c})
	we, errWE := c.appendAttr(nil, &e, 0, in)
	if fmt.Sprint(errA) != fmt.Sprint(errW) || fmt.Sprint(errA) != fmt.Sprint(errWE) {
		t.Fatalf("%s %q: refused differently: SDK form %v, wire form %v, wire form through the encoder %v", c.kind, in, errA, errW, errWE)
	}
	if errA != nil {
		return
	}
	sdk, err := ddbjsontest.SDKValue(a)
	if err != nil {
		t.Fatal(err)
	}
	sameAsSDK(t, fmt.Sprintf("%s %q", c.kind, in), w, sdk)
	if !bytes.Equal(w, we) {
		t.Errorf("%s %q: %s through the encoder, %s without", c.kind, in, we, w)
	}
}

// FuzzValueWire: for any text of any kind under any conversion, the wire
// form is the SDK's serialization of the SDK form, or both refuse it.
func FuzzValueWire(f *testing.F) {
	for _, s := range []string{"2.99", "NaN", "2022-05-24 22:53:30.5+02", "2022-05-24", "t", `\x00ff`, `{"a",NULL,{1}}`, "",
		"1e-131", "-$1,234.56", `{"k": [1, {"x": null}]}`, "\xff", "a\"b\\c\n"} {
		f.Add(s)
	}
	kinds := []extract.Kind{extract.KindInt, extract.KindNumeric, extract.KindFloat, extract.KindText, extract.KindBool,
		extract.KindDate, extract.KindTimestamp, extract.KindTimestampTZ, extract.KindTime, extract.KindEnum,
		extract.KindBytea, extract.KindTSVector, extract.KindOther, extract.KindMoney, extract.KindBox, extract.KindJSON}
	convs := []mappings.Conversion{mappings.ConvAuto, mappings.ConvString, mappings.ConvNumber, mappings.ConvEpochMS, mappings.ConvBinary}
	f.Fuzz(func(t *testing.T, s string) {
		for _, k := range kinds {
			for _, arr := range []bool{false, true} {
				for _, cv := range convs {
					checkValue(t, conv(k, arr, cv), s)
				}
			}
		}
		if utf8.ValidString(s) {
			checkValue(t, conv(extract.KindJSON, false, mappings.ConvMap), s)
		}
	})
}

// wireNames lists the attribute names of an item in the wire form, in order.
func wireNames(t *testing.T, data []byte) []string {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(data))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		t.Fatalf("item %s is not an object", data)
	}
	var names []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, tok.(string))
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := dec.Token(); err != nil {
		t.Fatal(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		t.Fatalf("item %s: data after the object", data)
	}
	return names
}

// itemJSONRows are fixture rows for the item tests: TestItem's and rows
// whose values and keys need escapes.
func itemJSONRows() []itemCase {
	rows := itemCases()
	for i, s := range []string{"a#b", `q"uote\back`, "tab\tnl\n", "<&>", "日本語", "bad\xffutf8", "\u2028", "x\x7f"} {
		rows = append(rows, itemCase{name: fmt.Sprintf("note %d", i), table: "note", row: row(fmt.Sprint(i), s, s+"#"+s)})
	}
	rows = append(rows, itemCase{name: "empty strings", table: "note", row: row("1", "a", "")})
	rows = append(rows, itemCase{name: "empty sort key", table: "note", row: row("1", "", "")}) // refused: empty partition key
	rows = append(rows, itemCase{name: "null key", table: "note", row: row("1", `\N`, "b")})
	rows = append(rows, itemCase{name: "bad timestamp", table: "rental", row: row("1", "yesterday", "1", "1", `\N`, "1", "2022-08-23 21:50:12+00")})
	rows = append(rows, itemCase{name: "bad bytea", table: "staff", row: row("1", "Mike", "H", "3", "m", "1", "t", "u", "p", "2022-05-16 15:13:11+00", `\x0`)})
	return rows
}

// TestItemJSONMatchesItem: the wire form of every fixture row is the SDK's
// serialization of its Item, with the same key identity and refusals; the
// attributes come in the order key, columns, GSI keys, _table, _version.
func TestItemJSONMatchesItem(t *testing.T) {
	p := pagilaPlan(t)
	for _, pos := range []extract.Position{testPos, {}} {
		for _, tt := range itemJSONRows() {
			t.Run(fmt.Sprintf("%s@%s", tt.name, pos.Version()), func(t *testing.T) {
				checkItemJSON(t, tablePlan(t, p, tt.table), tt.row, pos)
			})
		}
	}
	tp, err := jsonMapPlan(t, jsonMapYAML)
	if err != nil {
		t.Fatal(err)
	}
	checkItemJSON(t, tp, row("7", `{"b": [1.50, {"c": null}], "a": "x"}`, `{"n": 12345678901234567890123}`, `{"{\"a\": 1}",NULL}`, "t"), testPos)
	checkItemJSON(t, tp, row("8", `{"a": {"b": [1e400]}}`, `{}`, `\N`, "t"), testPos)
}

func checkItemJSON(t *testing.T, tp *TablePlan, r extract.Row, pos extract.Position) {
	t.Helper()
	it, id, err := tp.Item(r, pos)
	wi, wid, werr := tp.ItemJSON(r, pos)
	if fmt.Sprint(err) != fmt.Sprint(werr) {
		t.Fatalf("refused differently: Item %v, ItemJSON %v", err, werr)
	}
	if err != nil {
		if wi.JSON != nil || wid != "" {
			t.Errorf("ItemJSON refused the row but returned %s, %q", wi.JSON, wid)
		}
		return
	}
	if wid != id {
		t.Errorf("key identity %q, Item's %q", wid, id)
	}
	sdk, err := ddbjsontest.SDKItem(it)
	if err != nil {
		t.Fatal(err)
	}
	sameAsSDK(t, "item", wi.JSON, sdk)
	if want := (ddbjson.KeyAttr{Name: tp.PK.Name, Value: attrS(t, it[tp.PK.Name])}); wi.PK != want {
		t.Errorf("PK %+v, want %+v", wi.PK, want)
	}
	if tp.SK == nil {
		if wi.SK != (ddbjson.KeyAttr{}) {
			t.Errorf("SK %+v, the table has no sort key", wi.SK)
		}
	} else if want := (ddbjson.KeyAttr{Name: tp.SK.Name, Value: attrS(t, it[tp.SK.Name])}); wi.SK != want {
		t.Errorf("SK %+v, want %+v", wi.SK, want)
	}
	if err := wi.Valid(); err != nil {
		t.Error(err)
	}
	// The order: key, columns (as mapped), GSI keys, _table, _version.
	var want []string
	want = append(want, tp.PK.Name)
	if tp.SK != nil {
		want = append(want, tp.SK.Name)
	}
	for _, c := range tp.Columns {
		if _, ok := it[c.Name]; ok {
			want = append(want, c.Name)
		}
	}
	for _, n := range tp.GSIAttributes() {
		if _, ok := it[n]; ok {
			want = append(want, n)
		}
	}
	want = append(want, AttrTable, AttrVersion)
	if got := wireNames(t, wi.JSON); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("attribute order %v, want %v", got, want)
	}
	if cap(wi.JSON) != len(wi.JSON) {
		t.Errorf("the item's JSON has room after it (cap %d, len %d): an append would write into another's", cap(wi.JSON), len(wi.JSON))
	}
}
