package mappings

import (
	"strings"
	"testing"
)

func TestParseSource(t *testing.T) {
	tests := []struct {
		in, schema, name, err string
	}{
		{in: "rental", schema: "public", name: "rental"},
		{in: "sales.order_line", schema: "sales", name: "order_line"},
		{in: "Orders", schema: "public", name: "Orders"},
		{in: "bıgınt", schema: "public", name: "bıgınt"},
		{in: `"Order Lines"`, schema: "public", name: "Order Lines"},
		{in: `public."a.b"`, schema: "public", name: "a.b"},
		{in: `"my schema"."x""y"`, schema: "my schema", name: `x"y`},
		{in: `"a.b".c`, schema: "a.b", name: "c"},
		{in: "a.b.c", err: "3 dot-separated names"},
		{in: "order-lines", err: `"order-lines" is not a plain name (quote it: "order-lines")`},
		{in: `"ab`, err: "unclosed quote"},
		{in: `""`, err: "empty quoted name"},
		{in: `"a"b`, err: `expected "." and a table name after "a"`},
		{in: `a.`, err: `expected "." and a table name after "a"`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			s, n, err := parseSource(tt.in)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil || s != tt.schema || n != tt.name {
				t.Errorf("= %q %q %v, want %q %q", s, n, err, tt.schema, tt.name)
			}
			tb := &Table{Source: tt.in}
			if tb.SourceSchema() != tt.schema || tb.SourceName() != tt.name {
				t.Errorf("Table: %q %q", tb.SourceSchema(), tb.SourceName())
			}
		})
	}
}

// TestQuoteRoundTrip: any name, quoted by QuoteIdent/QuoteSource, reads back
// as itself as a source and as a template placeholder.
func TestQuoteRoundTrip(t *testing.T) {
	names := []string{"a", "Order ID", "a-b", "a.b", `x"y`, `""`, "}{", "{x}", "ünï cödé", "1st", "pk", "a$b", "$a", "x\\y", " ", "日本"}
	for _, schema := range []string{"public", "sales", "My Schema", "a.b"} {
		for _, n := range names {
			src := QuoteSource(schema, n)
			s, got, err := parseSource(src)
			if err != nil || s != schema || got != n {
				t.Errorf("source %s: %q %q %v, want %q %q", src, s, got, err, schema, n)
			}
		}
	}
	for _, n := range names {
		raw := "K#{" + QuoteIdent(n) + "}#{id}"
		tp, err := ParseTemplate(raw, Pos{})
		if err != nil {
			t.Errorf("%s: %v", raw, err)
			continue
		}
		if c := tp.Columns(); len(c) != 2 || c[0] != n || c[1] != "id" {
			t.Errorf("%s: columns %q", raw, c)
		}
	}
}

func FuzzQuoteIdent(f *testing.F) {
	for _, s := range []string{"a", "Order ID", `x"y`, "}{", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, n string) {
		if n == "" {
			return
		}
		tp, err := ParseTemplate("{"+QuoteIdent(n)+"}", Pos{})
		if err != nil {
			t.Fatalf("%q: %v", n, err)
		}
		if c := tp.Columns(); len(c) != 1 || c[0] != n {
			t.Fatalf("%q: columns %q", n, c)
		}
	})
}
