package mappings

import (
	"slices"
	"testing"
)

const patternMapping = `version: 1
defaults: {target: pagila, stream: changes}
tables:
  - source: customer
    partition_key: {name: pk, template: "CUSTOMER#{customer_id}"}
    sort_key: {name: sk, template: "PROFILE"}
  - source: "public.*"
    partition_key: {name: pk, template: "{_table}#{_pk}"}
    sort_key: {name: sk, template: "{_table}"}
    exclude: [audit_*, public.tmp]
`

func TestPatternMatches(t *testing.T) {
	m, err := Parse("p.yaml", []byte(patternMapping))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		table string
		want  bool
	}{
		{"public.review", true},
		{"public.customer", false}, // mapped by its own entry
		{"public.audit_log", false},
		{"public.tmp", false},
		{"public.tmp2", true},
		{"sales.review", false},
	} {
		if got := m.PatternFor(tc.table) != nil; got != tc.want {
			t.Errorf("PatternFor(%s): %v, want %v", tc.table, got, tc.want)
		}
	}
}

func TestExpand(t *testing.T) {
	m, err := Parse("p.yaml", []byte(patternMapping))
	if err != nil {
		t.Fatal(err)
	}
	out, noKey, err := m.Expand(map[string][]string{
		"public.customer": {"customer_id"}, "public.review": {"review_id"}, "public.film_tag": {"film_id", "tag"},
		"public.audit_log": {"id"}, "public.heap": nil, "other.review": {"id"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(noKey, []string{"public.heap"}) {
		t.Errorf("noKey %v", noKey)
	}
	var got []string
	for _, tb := range out.Tables {
		sk := ""
		if tb.SortKey != nil {
			sk = tb.SortKey.Template.Raw
		}
		got = append(got, tb.Source+" "+tb.PartitionKey.Template.Raw+" "+sk)
	}
	want := []string{"customer CUSTOMER#{customer_id} PROFILE", "public.film_tag film_tag#{film_id}#{tag} film_tag", "public.review review#{review_id} review"}
	if !slices.Equal(got, want) {
		t.Errorf("expanded:\n%q\nwant\n%q", got, want)
	}
	if len(out.Patterns) != 1 || out.PatternFor("public.new_table") == nil || !out.HasPatterns() {
		t.Errorf("the expanded mapping lost its pattern: %v", out.Patterns)
	}
	if m.Tables[1].Source != "public.*" || len(m.Tables) != 2 {
		t.Error("Expand changed the mapping it was called on")
	}
	if err := out.Validate(); err != nil {
		t.Errorf("expanded mapping: %v", err)
	}
}
