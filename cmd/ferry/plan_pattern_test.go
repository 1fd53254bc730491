package main

import (
	"testing"

	"github.com/ferry-migrate/ferry/extract"
	"github.com/ferry-migrate/ferry/mappings"
)

// plan --generate --pattern-target: one pattern entry per schema, which maps
// the tables created there later and parses with the generated mapping.
func TestPatternEntries(t *testing.T) {
	tables := map[string]*extract.Table{
		"public.a":       {Schema: "public", Name: "a"},
		"sales.b":        {Schema: "sales", Name: "b"},
		"My Schema.T":    {Schema: "My Schema", Name: "T"},
		"sales.b_detail": {Schema: "sales", Name: "b_detail"},
	}
	text := "version: 1\ndefaults: {target: things}\ntables:\n  - source: a\n    partition_key: {name: pk, template: \"A#{id}\"}\n    sort_key: {name: sk, template: \"A\"}\n" +
		string(patternEntries(tables, "later"))
	m, err := mappings.Parse("generated.yaml", []byte(text))
	if err != nil {
		t.Fatalf("%v\n%s", err, text)
	}
	if err := m.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		table string
		want  bool
	}{
		{"public.a", false}, // its own entry
		{"public.new", true},
		{"sales.new", true},
		{"My Schema.new", true},
		{"other.new", false},
	} {
		p := m.PatternFor(tc.table)
		if (p != nil) != tc.want {
			t.Errorf("PatternFor(%s) = %v, want a pattern: %v", tc.table, p, tc.want)
		}
		if p != nil && p.Target != "later" {
			t.Errorf("%s: target %s", tc.table, p.Target)
		}
	}
}
