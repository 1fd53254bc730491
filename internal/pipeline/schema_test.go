package pipeline

import (
	"strings"
	"testing"

	"github.com/ferry-migrate/ferry/extract"
)

func TestDiffTables(t *testing.T) {
	tbl := func(pk []int, cols ...string) *extract.Table {
		t := &extract.Table{Schema: "public", Name: "customer", PK: pk}
		for _, c := range cols {
			name, typ, _ := strings.Cut(c, ":")
			t.Columns = append(t.Columns, extract.Column{Name: name, Type: typ})
		}
		return t
	}
	old := tbl([]int{0}, "id:integer", "email:text", "score:numeric(5,2)", "nick:text")
	tests := []struct {
		name    string
		nt      *extract.Table
		renames map[string]string
		want    string
		key     bool
	}{
		{"nothing", tbl([]int{0}, "id:integer", "email:text", "score:numeric(5,2)", "nick:text"), nil, "", false},
		{"added", tbl([]int{0}, "id:integer", "email:text", "score:numeric(5,2)", "nick:text", "joined:timestamp with time zone"), nil,
			"added column joined (timestamp with time zone)", false},
		{"dropped", tbl([]int{0}, "id:integer", "email:text", "score:numeric(5,2)"), nil, "dropped column nick", false},
		{"renamed, not dropped and added", tbl([]int{0}, "id:integer", "email:text", "score:numeric(5,2)", "alias:text"), map[string]string{"nick": "alias"},
			"renamed column nick to alias", false},
		{"renamed and retyped", tbl([]int{0}, "id:integer", "email:text", "score:numeric(5,2)", "alias:character varying(20)"), map[string]string{"nick": "alias"},
			"renamed column nick to alias; changed the type of alias from text to character varying(20)", false},
		{"retyped", tbl([]int{0}, "id:bigint", "email:text", "score:numeric(7,3)", "nick:text"), nil,
			"changed the type of id from integer to bigint; changed the type of score from numeric(5,2) to numeric(7,3)", false},
		{"the key moved", tbl([]int{1}, "id:integer", "email:text", "score:numeric(5,2)", "nick:text"), nil, "changed the primary key", true},
		{"the key column renamed: the same key", tbl([]int{0}, "cid:integer", "email:text", "score:numeric(5,2)", "nick:text"), map[string]string{"id": "cid"},
			"renamed column id to cid", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := diffTables(old, tc.nt, tc.renames)
			if got := c.Describe(); got != tc.want {
				t.Errorf("Describe() = %q, want %q", got, tc.want)
			}
			if c.KeyChanged != tc.key || c.Empty() != (tc.want == "") {
				t.Errorf("key changed %v, empty %v", c.KeyChanged, c.Empty())
			}
			if len(c.Columns) != len(tc.nt.Columns) {
				t.Errorf("%d columns listed, want %d", len(c.Columns), len(tc.nt.Columns))
			}
		})
	}
	if schemaSignature(old) == schemaSignature(tbl([]int{0}, "id:bigint", "email:text", "score:numeric(5,2)", "nick:text")) {
		t.Error("a type change keeps the signature")
	}
}
