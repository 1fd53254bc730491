package transform

import (
	"reflect"
	"strings"
	"testing"
)

// el, nul and sub build expected array elements.
func el(s string) arrayElem            { return arrayElem{text: s} }
func nul() arrayElem                   { return arrayElem{null: true} }
func sub(e ...arrayElem) arrayElem     { return arrayElem{sub: elems(e...)} }
func elems(e ...arrayElem) []arrayElem { return append([]arrayElem{}, e...) }

func TestParseArray(t *testing.T) {
	tests := []struct {
		in   string
		want []arrayElem
	}{
		{`{}`, elems()},
		{`{a}`, elems(el("a"))},
		{`{"Deleted Scenes","Behind the Scenes"}`, elems(el("Deleted Scenes"), el("Behind the Scenes"))},
		{`{Trailers,"Deleted Scenes",NULL}`, elems(el("Trailers"), el("Deleted Scenes"), nul())},
		{`{NULL}`, elems(nul())},
		{`{"NULL"}`, elems(el("NULL"))}, // a quoted NULL is the string
		{`{null}`, elems(el("null"))},   // PostgreSQL writes NULL in capitals
		{`{""}`, elems(el(""))},
		{`{"",""}`, elems(el(""), el(""))},
		{`{"a \"b\" c"}`, elems(el(`a "b" c`))},
		{`{"back\\slash","\\"}`, elems(el(`back\slash`), el(`\`))},
		{`{"a,b","{c}"," lead","trail "}`, elems(el("a,b"), el("{c}"), el(" lead"), el("trail "))},
		{`{1,-2,3.5}`, elems(el("1"), el("-2"), el("3.5"))},
		{`{{1,2},{3,4}}`, elems(sub(el("1"), el("2")), sub(el("3"), el("4")))},
		{`{{NULL,"x"},{}}`, elems(sub(nul(), el("x")), sub())},
		{`{{{1}}}`, elems(sub(sub(el("1"))))},
		{`{"2022-05-24 22:53:30+00"}`, elems(el("2022-05-24 22:53:30+00"))},
		{`{"\\x00ff"}`, elems(el(`\x00ff`))},
		{`{bıgınt,"€ 😀"}`, elems(el("bıgınt"), el("€ 😀"))},
	}
	for _, tt := range tests {
		got, err := parseArray(tt.in)
		if err != nil {
			t.Errorf("parseArray(%q): %v", tt.in, err)
			continue
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("parseArray(%q) = %+v, want %+v", tt.in, got, tt.want)
		}
	}
}

func TestParseArrayErrors(t *testing.T) {
	tests := []struct{ in, want string }{
		{``, "expected '{'"},
		{`abc`, "expected '{'"},
		{`{`, "unterminated"},
		{`{a`, "unterminated"},
		{`{a,`, "unterminated"},
		{`{"a`, "unterminated quoted element"},
		{`{"a\"}`, "unterminated quoted element"},
		{`{"a"b}`, "expected ',' or '}'"},
		{`{{1}x}`, "expected ',' or '}'"},
		{`{a}}`, "trailing text"},
		{`{a} `, "trailing text"},
		{`{{1}`, "unterminated"},
		{`[0:1]`, "array with bounds [0:1]"},
		{`[5:6]={50,60}`, "array with bounds [5:6] (a lower bound other than 1)"},
		{`[2:3][1:2]={{1,2},{3,4}}`, "array with bounds [2:3][1:2]"},
		{`{a,,b}`, "empty unquoted element"},
		{`{,}`, "empty unquoted element"},
		{`{a"b}`, "unexpected '\"' in an unquoted element"},
		{`{a\b}`, "unexpected '\\\\' in an unquoted element"},
		{`{a{b}}`, "unexpected '{' in an unquoted element"},
	}
	for _, tt := range tests {
		got, err := parseArray(tt.in)
		if err == nil {
			t.Errorf("parseArray(%q) = %+v, want an error", tt.in, got)
			continue
		}
		if !strings.Contains(err.Error(), tt.want) {
			t.Errorf("parseArray(%q) error %q, want it to contain %q", tt.in, err, tt.want)
		}
	}
	// Long input is shortened in the message.
	_, err := parseArray("{" + strings.Repeat("a", 500))
	if err == nil || len(err.Error()) > 120 {
		t.Errorf("error for a long array: %v", err)
	}
}

// formatArray writes elements the way PostgreSQL's array_out does: quoted when
// empty, NULL-like or containing special characters, with " and \ escaped.
func formatArray(elems []string, nulls []bool) string {
	var b strings.Builder
	b.WriteByte('{')
	for i, e := range elems {
		if i > 0 {
			b.WriteByte(',')
		}
		if nulls[i] {
			b.WriteString("NULL")
			continue
		}
		if e == "" || strings.EqualFold(e, "NULL") || strings.ContainsAny(e, "{},\"\\ \t\n\r\v\f") {
			b.WriteByte('"')
			for j := 0; j < len(e); j++ {
				if e[j] == '"' || e[j] == '\\' {
					b.WriteByte('\\')
				}
				b.WriteByte(e[j])
			}
			b.WriteByte('"')
			continue
		}
		b.WriteString(e)
	}
	b.WriteByte('}')
	return b.String()
}

func TestFormatArrayHelper(t *testing.T) {
	if got := formatArray([]string{"a b", "NULL", "x", ""}, []bool{false, false, true, false}); got != `{"a b","NULL",NULL,""}` {
		t.Errorf("formatArray = %s", got)
	}
}

func FuzzParseArray(f *testing.F) {
	f.Add("Deleted Scenes\x1fBehind the Scenes", uint8(0))
	f.Add("a\"b\x1fc\\d\x1f\x1fNULL", uint8(4))
	f.Add("{x}\x1f,", uint8(1))
	f.Fuzz(func(t *testing.T, joined string, nullMask uint8) {
		// Round trip: what array_out writes, parseArray reads back in order.
		parts := strings.Split(joined, "\x1f")
		nulls := make([]bool, len(parts))
		for i := range parts {
			nulls[i] = i < 8 && nullMask&(1<<i) != 0
		}
		lit := formatArray(parts, nulls)
		got, err := parseArray(lit)
		if err != nil {
			t.Fatalf("parseArray(%q): %v", lit, err)
		}
		if len(got) != len(parts) {
			t.Fatalf("parseArray(%q) has %d elements, want %d", lit, len(got), len(parts))
		}
		for i, e := range got {
			if e.null != nulls[i] || (!nulls[i] && e.text != parts[i]) || e.sub != nil {
				t.Fatalf("parseArray(%q)[%d] = %+v, want %q (null %v)", lit, i, e, parts[i], nulls[i])
			}
		}
		// And arbitrary input never panics.
		_, _ = parseArray(joined)
	})
}

func BenchmarkParseArray(b *testing.B) {
	for _, bc := range []struct{ name, in string }{
		{"special_features", `{Trailers,Commentaries,"Deleted Scenes","Behind the Scenes"}`},
		{"int100", "{" + strings.TrimSuffix(strings.Repeat("12345,", 100), ",") + "}"},
		{"nested", `{{1,2,3},{4,5,6},{7,8,NULL}}`},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(len(bc.in)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := parseArray(bc.in); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// formatArrayDelim is formatArray with another delimiter (box uses ';'),
// quoting elements that contain it as array_out does.
func formatArrayDelim(elems []string, nulls []bool, delim byte) string {
	var b strings.Builder
	b.WriteByte('{')
	for i, e := range elems {
		if i > 0 {
			b.WriteByte(delim)
		}
		if nulls[i] {
			b.WriteString("NULL")
			continue
		}
		if e == "" || strings.EqualFold(e, "NULL") || strings.ContainsAny(e, "{}\"\\ \t\n\r\v\f"+string(delim)) {
			b.WriteByte('"')
			for j := 0; j < len(e); j++ {
				if e[j] == '"' || e[j] == '\\' {
					b.WriteByte('\\')
				}
				b.WriteByte(e[j])
			}
			b.WriteByte('"')
			continue
		}
		b.WriteString(e)
	}
	b.WriteByte('}')
	return b.String()
}

func TestParseArrayDelim(t *testing.T) {
	tests := []struct {
		in    string
		delim byte
		want  []arrayElem
	}{
		{`{(1,1),(0,0);(2,2),(1,1)}`, ';', elems(el("(1,1),(0,0)"), el("(2,2),(1,1)"))},
		{`{(1,1),(0,0);NULL;"a;b"}`, ';', elems(el("(1,1),(0,0)"), nul(), el("a;b"))},
		{`{{(1,1),(0,0)};{(2,2),(1,1)}}`, ';', elems(sub(el("(1,1),(0,0)")), sub(el("(2,2),(1,1)")))},
		{`{"(0.1,0.2)","(3,4)"}`, ',', elems(el("(0.1,0.2)"), el("(3,4)"))},
	}
	for _, tt := range tests {
		got, err := parseArrayDelim(tt.in, tt.delim)
		if err != nil {
			t.Errorf("parseArrayDelim(%q, %q): %v", tt.in, tt.delim, err)
			continue
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("parseArrayDelim(%q, %q) = %+v, want %+v", tt.in, tt.delim, got, tt.want)
		}
	}
	if _, err := parseArrayDelim(`{a;b}`, ','); err != nil {
		t.Errorf("';' is an ordinary character with ',' as delimiter: %v", err)
	}
}

// FuzzParseArrayDelim round-trips one- and two-dimensional arrays with either
// delimiter: every element comes back exactly, in order, NULLs as NULLs.
func FuzzParseArrayDelim(f *testing.F) {
	f.Add("(1,1),(0,0)\x1f(2,2),(1,1)", uint8(0), true, false)
	f.Add("a\x1fNULL\x1f\x1fb;c", uint8(2), false, true)
	f.Add("\"\\\x1f{}", uint8(0), false, true)
	f.Fuzz(func(t *testing.T, joined string, nullMask uint8, semicolon, twoDim bool) {
		delim := byte(',')
		if semicolon {
			delim = ';'
		}
		parts := strings.Split(joined, "\x1f")
		nulls := make([]bool, len(parts))
		for i := range parts {
			nulls[i] = i < 8 && nullMask&(1<<i) != 0
		}
		lit := formatArrayDelim(parts, nulls, delim)
		if twoDim {
			lit = "{" + lit + string(delim) + lit + "}"
		}
		got, err := parseArrayDelim(lit, delim)
		if err != nil {
			t.Fatalf("parseArrayDelim(%q): %v", lit, err)
		}
		rows := [][]arrayElem{got}
		if twoDim {
			if len(got) != 2 || got[0].sub == nil || got[1].sub == nil {
				t.Fatalf("parseArrayDelim(%q) = %+v, want two sub-arrays", lit, got)
			}
			rows = [][]arrayElem{got[0].sub, got[1].sub}
		}
		for _, row := range rows {
			if len(row) != len(parts) {
				t.Fatalf("parseArrayDelim(%q) has %d elements, want %d", lit, len(row), len(parts))
			}
			for i, e := range row {
				if e.null != nulls[i] || (!nulls[i] && e.text != parts[i]) || e.sub != nil {
					t.Fatalf("parseArrayDelim(%q)[%d] = %+v, want %q (null %v)", lit, i, e, parts[i], nulls[i])
				}
			}
		}
		_, _ = parseArrayDelim(joined, delim) // arbitrary input never panics
	})
}
