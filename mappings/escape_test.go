package mappings

import (
	"slices"
	"strings"
	"testing"
)

// render is the rendering rule of transform's key templates, restated over
// plain strings: literals as they are, values escaped when the template has
// several placeholders.
func render(t Template, vals []string) string {
	var b []byte
	i := 0
	for _, p := range t.Parts {
		if p.Column == "" {
			b = append(b, p.Literal...)
			continue
		}
		if t.Escapes() {
			b = AppendEscaped(b, vals[i], t.Separators())
		} else {
			b = append(b, vals[i]...)
		}
		i++
	}
	return string(b)
}

func mustTemplate(t testing.TB, raw string) Template {
	t.Helper()
	tpl, err := ParseTemplate(raw, Pos{File: "m.yaml", Line: 1})
	if err != nil {
		t.Fatal(err)
	}
	return tpl
}

func TestTemplateEscapingIsInjective(t *testing.T) {
	tests := []struct {
		tpl  string
		a, b []string // two different tuples that an unescaped join would render alike
	}{
		{"{a}#{b}#{c}", []string{"1", "x#y", "z"}, []string{"1", "x", "y#z"}},
		{"{a}#{b}", []string{`x\`, "y"}, []string{"x", `\y`}},
		{"{a}#{b}", []string{`x\#`, "y"}, []string{`x\`, "#y"}},
		{"P#{a}::{b}", []string{"x:", "y"}, []string{"x", ":y"}},
		{"{a}|{b}#{c}", []string{"a|b", "c", "d"}, []string{"a", "b#c", "d"}},
		{"{a}#{b}", []string{"é#", ""}, []string{"é", "#"}},
	}
	for _, tc := range tests {
		tpl := mustTemplate(t, tc.tpl)
		ra, rb := render(tpl, tc.a), render(tpl, tc.b)
		if ra == rb {
			t.Errorf("%s: %q and %q both render %q", tc.tpl, tc.a, tc.b, ra)
		}
		for _, vals := range [][]string{tc.a, tc.b} {
			r := render(tpl, vals)
			got, err := tpl.Values(r)
			if err != nil || !slices.Equal(got, vals) {
				t.Errorf("%s: Values(%q) = %q, %v; want %q", tc.tpl, r, got, err, vals)
			}
		}
	}
}

func TestTemplateSingleValueIsNotEscaped(t *testing.T) {
	for _, tc := range []struct{ tpl, val, want string }{
		{"CUSTOMER#{id}", `a#b\c`, `CUSTOMER#a#b\c`},
		{"{id}", "x#y", "x#y"},
		{"A#{id}#B", "#", "A###B"},
	} {
		tpl := mustTemplate(t, tc.tpl)
		if got := render(tpl, []string{tc.val}); got != tc.want {
			t.Errorf("%s(%q) = %q, want %q", tc.tpl, tc.val, got, tc.want)
		}
		if got, err := tpl.Values(tc.want); err != nil || !slices.Equal(got, []string{tc.val}) {
			t.Errorf("%s: Values(%q) = %q, %v", tc.tpl, tc.want, got, err)
		}
	}
}

func TestTemplateValuesRejectsForeignKeys(t *testing.T) {
	for _, tc := range []struct{ tpl, key string }{
		{"RENTAL#{id}", "PAYMENT#1"},
		{"{a}#{b}", "no-separator"},
		{"{a}#{b}", `x#y\`},
		{"A#{id}#B", "A#1#C"},
	} {
		if got, err := mustTemplate(t, tc.tpl).Values(tc.key); err == nil {
			t.Errorf("%s: Values(%q) = %q, want an error", tc.tpl, tc.key, got)
		}
	}
}

func TestDisjoint(t *testing.T) {
	tests := []struct {
		a, b string
		want bool
	}{
		{"RENTAL#{id}", "PAYMENT#{id}", true},
		{"FILM#{id}", "FILM#{id}", false},
		{"FILM", "ACTOR#{id}", true},
		{"FILM", "FILM#{id}", true}, // at least "FILM#" long
		{"FILM#", "FILM#{id}", false},
		{"{id}", "RENTAL#{id}", false},
		{"{id}#A", "{id}#B", true},
		{"X#{id}", "X#{a}#{b}", false},
		{"RENTAL", "RENTAL", false},
		{"RENTAL", "PAYMENT", true},
		{"CUSTOMER#{id}", "CUSTOMERS#{id}", true}, // differ at byte 8
		{"C#{id}", "C#{id}#X", false},
	}
	for _, tc := range tests {
		a, b := mustTemplate(t, tc.a), mustTemplate(t, tc.b)
		if got := Disjoint(a, b); got != tc.want {
			t.Errorf("Disjoint(%q, %q) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
		if got := Disjoint(b, a); got != tc.want {
			t.Errorf("Disjoint(%q, %q) = %v, want %v (not symmetric)", tc.b, tc.a, got, tc.want)
		}
	}
}

func TestSeparatorProblem(t *testing.T) {
	for _, tc := range []struct {
		tpl  string
		want string // substring; "" for none
	}{
		{"{a}#{b}", ""},
		{"{a}#", ""},
		{`{a}\{b}`, "escape"},
		{"{a}→{b}", "non-ASCII"},
		{`{a}\`, ""}, // one placeholder: nothing is escaped
	} {
		got := mustTemplate(t, tc.tpl).separatorProblem()
		if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
			t.Errorf("%s: separatorProblem() = %q, want %q", tc.tpl, got, tc.want)
		}
	}
}

// FuzzTemplateInjective: two tuples render the same key only if they are
// equal, and Values inverts every rendering.
func FuzzTemplateInjective(f *testing.F) {
	f.Add("{a}#{b}#{c}", "x#y", "z", "x", "y#z")
	f.Add("{a}|{b}", `\`, "|", `\|`, "")
	f.Add("K#{a}::{b}", "::", ":", ":", "::")
	f.Fuzz(func(t *testing.T, raw, a1, b1, a2, b2 string) {
		tpl, err := ParseTemplate(raw, Pos{File: "f"})
		if err != nil || len(tpl.Columns()) != 2 {
			return
		}
		if _, _, adj := tpl.adjacentColumns(); adj || tpl.separatorProblem() != "" {
			return
		}
		x, y := []string{a1, b1}, []string{a2, b2}
		rx, ry := render(tpl, x), render(tpl, y)
		if rx == ry && !slices.Equal(x, y) {
			t.Fatalf("%q: %q and %q both render %q", raw, x, y, rx)
		}
		got, err := tpl.Values(rx)
		if err != nil || !slices.Equal(got, x) {
			t.Fatalf("%q: Values(%q) = %q, %v; want %q", raw, rx, got, err, x)
		}
	})
}

// TestAppendEscapedRuns: runs between escapes are copied whole, and the
// result is the byte-by-byte definition's.
func TestAppendEscapedRuns(t *testing.T) {
	slow := func(v, seps string) string {
		var b []byte
		for i := 0; i < len(v); i++ {
			if v[i] == EscapeByte || strings.IndexByte(seps, v[i]) >= 0 {
				b = append(b, EscapeByte)
			}
			b = append(b, v[i])
		}
		return string(b)
	}
	for _, v := range []string{"", "plain", "#", "a#b", "##", string(EscapeByte), "x" + string(EscapeByte) + "#y:", "tail#", "#head", "日本#語"} {
		for _, seps := range []string{"", "#", "#:", ":#/"} {
			if got, want := string(AppendEscaped([]byte("pre"), v, seps)), "pre"+slow(v, seps); got != want {
				t.Errorf("AppendEscaped(%q, %q) = %q, want %q", v, seps, got, want)
			}
		}
	}
}
