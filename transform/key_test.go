package transform

import (
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Rows that an unescaped "#" join renders alike get distinct item keys, and
// the sort key's inverse gives back each row's values.
func TestKeysAreInjective(t *testing.T) {
	m := pagilaMapping(t)
	src := sourceTables()
	src["public.note"].PK = []int{0, 1, 2}
	note := findTable(m, "note")
	note.PartitionKey = key(t, "pk", "{id}", lineNote+1)
	note.SortKey = keyp(t, "sk", "{a}#{b}", lineNote+2)
	tp := tablePlan(t, compile(t, m, src), "note")
	rows := [][]string{
		{"1", "x#y", "z"},
		{"1", "x", "y#z"},
		{"1", `x\`, "#z"},
		{"1", `x\#`, "z"},
		{"1", "x", `\#z`},
		{"1", "", "#"},
		{"1", "#", ""},
		{"1", "ü#", " "},
	}
	seen := map[string]int{}
	for i, vals := range rows {
		_, id, err := tp.Key(row(vals...))
		if err != nil {
			t.Fatalf("Key(%q): %v", vals, err)
		}
		if j, dup := seen[id]; dup {
			t.Errorf("rows %q and %q share the item key %q", rows[j], vals, id)
		}
		seen[id] = i
		key, _, _ := tp.Key(row(vals...))
		cols, got, err := tp.SK.Values(attrS(t, key["sk"]))
		if err != nil || !slices.Equal(cols, []string{"a", "b"}) || !slices.Equal(got, vals[1:]) {
			t.Errorf("SK.Values of %q = %q %q, %v; want [a b] %q", vals, cols, got, err, vals[1:])
		}
	}
}

func attrS(t *testing.T, v types.AttributeValue) string {
	t.Helper()
	s, ok := v.(*types.AttributeValueMemberS)
	if !ok {
		t.Fatalf("attribute %#v is not S", v)
	}
	return s.Value
}
