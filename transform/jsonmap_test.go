package transform

import (
	"bytes"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/ferry-migrate/ferry/extract"
	"github.com/ferry-migrate/ferry/mappings"
)

// docJSON renders a document attribute back as JSON (test helper): M as an
// object with sorted keys, L an array, S a string, N the number text, BOOL,
// NULL null. It fails on a type a `map` column never writes.
func docJSON(tb testing.TB, v types.AttributeValue) string {
	tb.Helper()
	var b []byte
	var walk func(v types.AttributeValue)
	walk = func(v types.AttributeValue) {
		switch x := v.(type) {
		case *types.AttributeValueMemberM:
			keys := make([]string, 0, len(x.Value))
			for k := range x.Value {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			b = append(b, '{')
			for i, k := range keys {
				if i > 0 {
					b = append(b, ',')
				}
				b = appendJSONString(b, k)
				b = append(b, ':')
				walk(x.Value[k])
			}
			b = append(b, '}')
		case *types.AttributeValueMemberL:
			b = append(b, '[')
			for i, e := range x.Value {
				if i > 0 {
					b = append(b, ',')
				}
				walk(e)
			}
			b = append(b, ']')
		case *types.AttributeValueMemberS:
			b = appendJSONString(b, x.Value)
		case *types.AttributeValueMemberN:
			b = append(b, x.Value...)
		case *types.AttributeValueMemberBOOL:
			b = strconv.AppendBool(b, x.Value)
		case *types.AttributeValueMemberNULL:
			b = append(b, "null"...)
		default:
			tb.Fatalf("a map column wrote %T", v)
		}
	}
	walk(v)
	return string(b)
}

// decodeJSONValue parses one JSON value with numbers kept as json.Number.
func decodeJSONValue(data string) (any, error) {
	d := json.NewDecoder(strings.NewReader(data))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, err
	}
	return v, nil
}

// jsonEqual compares two decoded JSON values, numbers by exact value.
func jsonEqual(a, b any) bool {
	switch x := a.(type) {
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, v := range x {
			w, ok := y[k]
			if !ok || !jsonEqual(v, w) {
				return false
			}
		}
		return true
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !jsonEqual(x[i], y[i]) {
				return false
			}
		}
		return true
	case json.Number:
		y, ok := b.(json.Number)
		if !ok {
			return false
		}
		c, ok := CompareNumbers(string(x), string(y))
		return ok && c == 0
	}
	return a == b // string, bool, nil
}

func nestArrays(n int) string { return strings.Repeat("[", n) + "1" + strings.Repeat("]", n) }

func nestObjects(n int) string { return strings.Repeat(`{"k":`, n) + "1" + strings.Repeat("}", n) }

// TestJSONAttr covers the `map` conversion of json/jsonb values: each JSON
// kind to its DynamoDB type, numbers exact, and each refusal with the path of
// the refused value.
func TestJSONAttr(t *testing.T) {
	tests := []struct {
		name, in string
		want     string // docJSON of the attribute; "" when refused
		top      string // the attribute's type at the top
		err      string // part of the refusal
	}{
		{name: "object", in: `{"b": {"c": [1, "x", true, false, null]}, "a": ""}`, want: `{"a":"","b":{"c":[1,"x",true,false,null]}}`, top: "M"},
		{name: "jsonb text", in: `{"a": 1, "b": [2.50, {"c": null}]}`, want: `{"a":1,"b":[2.50,{"c":null}]}`, top: "M"},
		{name: "empty object", in: `{}`, want: `{}`, top: "M"},
		{name: "empty array", in: ` [ ] `, want: `[]`, top: "L"},
		{name: "empty key", in: `{"": 1, " ": 2}`, want: `{"":1," ":2}`, top: "M"},
		{name: "keys exact", in: `{"A":1,"a":2,"a.b":3,"é":4,"\u00e9x":5}`, want: `{"A":1,"a":2,"a.b":3,"é":4,"éx":5}`, top: "M"},
		{name: "top string", in: `"hi \"there\""`, want: `"hi \"there\""`, top: "S"},
		{name: "top empty string", in: `""`, want: `""`, top: "S"},
		{name: "top number", in: `-12.3400`, want: `-12.3400`, top: "N"},
		{name: "top true", in: `true`, want: `true`, top: "BOOL"},
		{name: "top null", in: `null`, want: `null`, top: "NULL"},
		{name: "top array", in: `[1, [2, [3]], {"x": "y"}]`, want: `[1,[2,[3]],{"x":"y"}]`, top: "L"},
		{name: "numbers exact", in: `[0, -0, 1.50, 1e5, 1E+125, 9.9999999999999999999999999999999999999E+125, 1E-130, ` + digits38 + `, 0.000` + digits38 + `]`,
			want: `[0,-0,1.50,1e5,1E+125,9.9999999999999999999999999999999999999E+125,1E-130,` + digits38 + `,0.000` + digits38 + `]`, top: "L"},
		{name: "big int beyond float64", in: `{"id": 12345678901234567890123}`, want: `{"id":12345678901234567890123}`, top: "M"},
		{name: "escapes", in: `["\ud83d\ude00", "\\ud800", "a\u0000b", "\t\n", "\/"]`, want: "[\"😀\",\"\\\\ud800\",\"a\\u0000b\",\"\\t\\n\",\"/\"]", top: "L"},
		{name: "depth 31", in: nestArrays(31), want: nestArrays(31), top: "L"},
		{name: "depth 31 objects", in: nestObjects(31), want: nestObjects(31), top: "M"},

		{name: "39 digits", in: `{"n": ` + digits39 + `}`, err: "at $.n: number " + digits39 + " is beyond DynamoDB's number range"},
		{name: "too large", in: `[1, {"a b": [1e400]}]`, err: `at $[1]["a b"][0]: number 1e400 is beyond`},
		{name: "too large 1E126", in: `1E126`, err: "at $: number 1E126 is beyond"},
		{name: "too small", in: `{"x": {"y": 1E-131}}`, err: "at $.x.y: number 1E-131 is beyond"},
		{name: "duplicate key", in: `{"a": 1, "a": 2}`, err: `at $: key "a" is written twice in one object`},
		{name: "nested duplicate", in: `{"x": [{"k": 1, "k": 1}]}`, err: `at $.x[0]: key "k" is written twice`},
		{name: "depth 32", in: nestArrays(32), err: "nested deeper than DynamoDB's 31 levels"},
		{name: "depth 32 objects", in: nestObjects(32), err: "nested deeper than DynamoDB's 31 levels"},
		{name: "lone high surrogate", in: `{"s": "a\ud800b"}`, err: `at $.s: string "a\ud800b" holds an unpaired UTF-16 surrogate`},
		{name: "lone low surrogate key", in: `{"\udc00": 1}`, err: "unpaired UTF-16 surrogate"},
		{name: "reversed pair", in: `"\ude00\ud83d"`, err: "unpaired UTF-16 surrogate"},
		{name: "invalid UTF-8", in: "\"\xff\"", err: "not valid UTF-8"},
		{name: "syntax", in: `{"a": }`, err: "json value at $"},
		{name: "trailing data", in: `{} {}`, err: "after the top-level value"},
		{name: "truncated", in: `[1, 2`, err: "json value at $[2]"},
		{name: "empty", in: ``, err: "json value at $"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := jsonAttr(tt.in)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("jsonAttr(%s) = %v, %v; want an error containing %q", tt.in, v, err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("jsonAttr(%s): %v", tt.in, err)
			}
			if got := docJSON(t, v); got != tt.want {
				t.Errorf("jsonAttr(%s) = %s, want %s", tt.in, got, tt.want)
			}
			if got := attrType(v); got != tt.top {
				t.Errorf("jsonAttr(%s) is %s, want %s", tt.in, got, tt.top)
			}
		})
	}
}

func attrType(v types.AttributeValue) string {
	switch v.(type) {
	case *types.AttributeValueMemberM:
		return "M"
	case *types.AttributeValueMemberL:
		return "L"
	case *types.AttributeValueMemberS:
		return "S"
	case *types.AttributeValueMemberN:
		return "N"
	case *types.AttributeValueMemberBOOL:
		return "BOOL"
	case *types.AttributeValueMemberNULL:
		return "NULL"
	}
	return "?"
}

func TestLoneSurrogate(t *testing.T) {
	tests := map[string]bool{
		`"abc"`:                false,
		`"\ud83d\ude00"`:       false,
		`"\uD83D\uDE00"`:       false,
		`"\\ud800"`:            false,
		`"\\\ud800"`:           true,
		`"\ud800"`:             true,
		`"\ud800\u0041"`:       true,
		`"\ud800\\udc00"`:      true,
		`"\udfff"`:             true,
		`"\u00e9\ud83d\ude00"`: false,
		`"x\ud83d"`:            true,
	}
	for lit, want := range tests {
		if got := loneSurrogate(lit); got != want {
			t.Errorf("loneSurrogate(%s) = %v, want %v", lit, got, want)
		}
	}
}

// jsonMapPlan compiles a mapping with `types: {doc: map, docb: map}` for a
// table with a json and a jsonb column.
func jsonMapPlan(t *testing.T, yaml string) (*TablePlan, error) {
	t.Helper()
	src := map[string]*extract.Table{"public.doc": {Schema: "public", Name: "doc", PK: []int{0}, Columns: []extract.Column{
		{Name: "id", Type: "integer", Kind: extract.KindInt, Position: 1},
		{Name: "doc", Type: "json", Kind: extract.KindJSON, Position: 2},
		{Name: "docb", Type: "jsonb", Kind: extract.KindJSON, Position: 3},
		{Name: "docs", Type: "jsonb[]", Kind: extract.KindJSON, Array: true, Position: 4},
		{Name: "title", Type: "text", Kind: extract.KindText, Position: 5},
	}}}
	m, err := mappings.Parse("doc.yaml", []byte(yaml))
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	p, err := Compile(m, src)
	if err != nil {
		return nil, err
	}
	return tablePlan(t, p, "doc"), nil
}

const jsonMapYAML = `version: 1
tables:
  - source: doc
    target: docs
    partition_key: {name: pk, template: "DOC#{id}"}
    types: {doc: map, docb: map}
    stream: doc-changes
`

// TestJSONMapItemAndRecord: a mapped json/jsonb column is a document in the
// item, the event embeds the JSON as written, a refused value names the
// column and the JSON path in both, and the plan names the type.
func TestJSONMapItemAndRecord(t *testing.T) {
	tp, err := jsonMapPlan(t, jsonMapYAML)
	if err != nil {
		t.Fatal(err)
	}
	r := row("7", `{"b": [1.50, {"c": null}], "a": "x"}`, `{"n": 12345678901234567890123}`, `{"{\"a\": 1}"}`, "t")
	item, _, err := tp.Item(r, testPos)
	if err != nil {
		t.Fatal(err)
	}
	if got := docJSON(t, item["doc"]); got != `{"a":"x","b":[1.50,{"c":null}]}` {
		t.Errorf("doc = %s", got)
	}
	if got := docJSON(t, item["docb"]); got != `{"n":12345678901234567890123}` {
		t.Errorf("docb = %s", got)
	}
	if got := av(item["docs"]); got != `L[S:{"a": 1}]` { // jsonb[] stays a list of texts
		t.Errorf("docs = %s", got)
	}
	_, data, err := tp.Record(change(tp, extract.OpCreate, nil, r), testSource, testNow)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(data, []byte(`"doc":{"b": [1.50, {"c": null}], "a": "x"},"docb":{"n": 12345678901234567890123}`)) {
		t.Errorf("record does not embed the JSON as written: %s", data)
	}

	for _, c := range tp.Columns {
		want := "S"
		switch c.Name {
		case "doc", "docb":
			want = "M (L, S, N, BOOL or NULL for a JSON value that is not an object)"
		case "id":
			want = "N"
		case "docs":
			want = "L"
		}
		if got := c.DynamoType(); got != want {
			t.Errorf("DynamoType(%s) = %q, want %q", c.Name, got, want)
		}
	}

	bad := row("8", `{"a": {"b": [1e400]}}`, `{}`, `\N`, "t")
	var ve *ValueError
	if _, _, err := tp.Item(bad, testPos); !errors.As(err, &ve) || ve.Column != "doc" || !strings.Contains(ve.Reason, "$.a.b[0]") {
		t.Errorf("Item(1e400) = %v; want a ValueError of column doc naming $.a.b[0]", err)
	}
	if _, _, err := tp.Record(change(tp, extract.OpCreate, nil, bad), testSource, testNow); !errors.As(err, &ve) || ve.Column != "doc" {
		t.Errorf("Record(1e400) = %v; want a ValueError of column doc", err)
	}
	dup := row("9", `{"a": 1, "a": 2}`, `{}`, `\N`, "t")
	if _, _, err := tp.Item(dup, testPos); !errors.As(err, &ve) || !strings.Contains(ve.Reason, "written twice") {
		t.Errorf("Item(duplicate key) = %v", err)
	}
	// The default stays S with the exact text.
	tpAuto, err := jsonMapPlan(t, strings.Replace(jsonMapYAML, "types: {doc: map, docb: map}", "types: {}", 1))
	if err != nil {
		t.Fatal(err)
	}
	item, _, err = tpAuto.Item(dup, testPos)
	if err != nil || av(item["doc"]) != `S:{"a": 1, "a": 2}` {
		t.Errorf("auto json = %v, %v; want the exact text as S", av(item["doc"]), err)
	}
}

// TestJSONMapRefusedColumns: map on a column that is not json/jsonb, or on an
// array of json, is refused naming the mapping's file:line.
func TestJSONMapRefusedColumns(t *testing.T) {
	tests := []struct{ types, want string }{
		{"{title: map}", `doc.yaml:6: column "title": cannot convert text to map: only a json or jsonb column holds a JSON document`},
		{"{id: map}", `doc.yaml:6: column "id": cannot convert integer to map`},
		{"{docs: map}", `doc.yaml:6: column "docs": jsonb[] is an array: map applies to a json or jsonb column`},
	}
	for _, tt := range tests {
		_, err := jsonMapPlan(t, strings.Replace(jsonMapYAML, "{doc: map, docb: map}", tt.types, 1))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("types %s: %v; want %q", tt.types, err, tt.want)
		}
	}
	for _, tt := range []struct {
		col  extract.Column
		conv mappings.Conversion
		ok   bool
	}{
		{extract.Column{Type: "json", Kind: extract.KindJSON}, mappings.ConvMap, true},
		{extract.Column{Type: "jsonb", Kind: extract.KindJSON}, mappings.ConvMap, true},
		{extract.Column{Type: "jsonb", Kind: extract.KindJSON}, mappings.ConvString, true},
		{extract.Column{Type: "json[]", Kind: extract.KindJSON, Array: true}, mappings.ConvMap, false},
		{extract.Column{Type: "hstore", Kind: extract.KindOther}, mappings.ConvMap, false},
		{extract.Column{Type: "bytea", Kind: extract.KindBytea}, mappings.ConvMap, false},
	} {
		if err := checkConversion(tt.col, tt.conv); (err == nil) != tt.ok {
			t.Errorf("checkConversion(%s, %s) = %v, want ok=%v", tt.col.Type, tt.conv, err, tt.ok)
		}
	}
}

// TestJSONMapTextOf: the stored document cannot give back the JSON text (key
// order, white space, the written numbers; a NULL may be JSON null), so
// TextOf declines and sync reads the source.
func TestJSONMapTextOf(t *testing.T) {
	tp, err := jsonMapPlan(t, jsonMapYAML)
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range []string{`{"b": 1, "a": 2}`, `"text"`, `null`, `[1]`, `2.50`} {
		v, err := tp.ColumnAttr(1, in)
		if err != nil {
			t.Fatal(err)
		}
		if text, null, ok := TextOf(tp, 1, v); ok {
			t.Errorf("TextOf(map %s) = %q, %v, true; want ok=false", in, text, null)
		}
	}
	if _, _, ok := TextOf(tp, 1, &types.AttributeValueMemberNULL{Value: true}); ok {
		t.Error("TextOf(map column, NULL) ok; a NULL of a map column may be JSON null")
	}
	// The unmapped text column still inverts.
	if text, _, ok := TextOf(tp, 4, &types.AttributeValueMemberS{Value: "x"}); !ok || text != "x" {
		t.Errorf("TextOf(text) = %q, %v", text, ok)
	}
}

// FuzzJSONAttr: the conversion never panics, accepts only valid JSON, refuses
// valid JSON only for a documented reason, and what it accepts renders back
// to an equal JSON value (numbers compared exactly).
func FuzzJSONAttr(f *testing.F) {
	for _, s := range []string{
		`{"a": 1, "b": [true, null, "x"], "c": {"d": 1.50}}`, `[]`, `{}`, `""`, `-0`, `1e400`, `{"a":1,"a":2}`,
		`"\ud800"`, `"\ud83d\ude00"`, `{"": {"": ""}}`, nestArrays(31), nestArrays(32), `[1,`, `{"a" 1}`,
		`12345678901234567890123456789012345678901`, `0.0000000000000000000000000000000000000000001`,
	} {
		f.Add(s)
	}
	documented := []string{"beyond DynamoDB's number range", "written twice", "nested deeper", "unpaired UTF-16 surrogate"}
	f.Fuzz(func(t *testing.T, in string) {
		v, err := jsonAttr(in)
		valid := json.Valid([]byte(in)) && utf8.ValidString(in)
		if err != nil {
			if valid && !slices.ContainsFunc(documented, func(s string) bool { return strings.Contains(err.Error(), s) }) {
				t.Fatalf("jsonAttr(%q) refused valid JSON: %v", in, err)
			}
			return
		}
		if !valid {
			t.Fatalf("jsonAttr(%q) accepted invalid JSON", in)
		}
		back := docJSON(t, v)
		want, err1 := decodeJSONValue(in)
		got, err2 := decodeJSONValue(back)
		if err1 != nil || err2 != nil {
			t.Fatalf("decode %q / %q: %v / %v", in, back, err1, err2)
		}
		if !jsonEqual(want, got) {
			t.Fatalf("jsonAttr(%q) renders back as %s", in, back)
		}
	})
}
