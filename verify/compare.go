// Package verify compares the source with what ferry wrote: every source row is
// passed through the same mapping that wrote it and the resulting item is
// compared with the DynamoDB item, column by column.
package verify

import (
	"bytes"
	"fmt"
	"sort"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/ferry-migrate/ferry/transform"
)

// ColumnDiff is one attribute that differs between the expected and actual item.
type ColumnDiff struct {
	Column string `json:"column"`
	Source string `json:"source"` // expected value, rendered
	Target string `json:"target"` // actual value, rendered ("<missing>" when absent)
}

// CompareItems lists the attributes that differ, sorted by name. Attributes in
// skip (e.g. _version) are not compared. Numbers compare by value (DynamoDB
// normalises "2.90" to "2.9").
func CompareItems(expected, actual transform.Item, skip ...string) []ColumnDiff {
	skipped := map[string]bool{}
	for _, s := range skip {
		skipped[s] = true
	}
	var out []ColumnDiff
	for name, ev := range expected {
		if skipped[name] {
			continue
		}
		av, ok := actual[name]
		if !ok {
			out = append(out, ColumnDiff{Column: name, Source: Render(ev), Target: "<missing>"})
			continue
		}
		if !AttrEqual(ev, av) {
			out = append(out, ColumnDiff{Column: name, Source: Render(ev), Target: Render(av)})
		}
	}
	for name, av := range actual {
		if skipped[name] {
			continue
		}
		if _, ok := expected[name]; !ok {
			out = append(out, ColumnDiff{Column: name, Source: "<missing>", Target: Render(av)})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Column < out[j].Column })
	return out
}

// AttrEqual compares two attribute values exactly (numbers by value).
func AttrEqual(a, b types.AttributeValue) bool {
	switch x := a.(type) {
	case *types.AttributeValueMemberS:
		y, ok := b.(*types.AttributeValueMemberS)
		return ok && x.Value == y.Value
	case *types.AttributeValueMemberN:
		y, ok := b.(*types.AttributeValueMemberN)
		if !ok {
			return false
		}
		c, ok := transform.CompareNumbers(x.Value, y.Value)
		return ok && c == 0
	case *types.AttributeValueMemberB:
		y, ok := b.(*types.AttributeValueMemberB)
		return ok && bytes.Equal(x.Value, y.Value)
	case *types.AttributeValueMemberBOOL:
		y, ok := b.(*types.AttributeValueMemberBOOL)
		return ok && x.Value == y.Value
	case *types.AttributeValueMemberNULL:
		_, ok := b.(*types.AttributeValueMemberNULL)
		return ok
	case *types.AttributeValueMemberL:
		y, ok := b.(*types.AttributeValueMemberL)
		if !ok || len(x.Value) != len(y.Value) {
			return false
		}
		for i := range x.Value {
			if !AttrEqual(x.Value[i], y.Value[i]) {
				return false
			}
		}
		return true
	case *types.AttributeValueMemberM:
		y, ok := b.(*types.AttributeValueMemberM)
		if !ok || len(x.Value) != len(y.Value) {
			return false
		}
		for k, v := range x.Value {
			w, ok := y.Value[k]
			if !ok || !AttrEqual(v, w) {
				return false
			}
		}
		return true
	case *types.AttributeValueMemberSS:
		y, ok := b.(*types.AttributeValueMemberSS)
		return ok && sameSet(x.Value, y.Value)
	case *types.AttributeValueMemberNS:
		y, ok := b.(*types.AttributeValueMemberNS)
		return ok && sameSet(x.Value, y.Value)
	}
	return false
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	m := map[string]int{}
	for _, s := range a {
		m[s]++
	}
	for _, s := range b {
		m[s]--
	}
	for _, n := range m {
		if n != 0 {
			return false
		}
	}
	return true
}

// Render prints an attribute value compactly for reports.
func Render(v types.AttributeValue) string {
	switch x := v.(type) {
	case *types.AttributeValueMemberS:
		return fmt.Sprintf("%q", x.Value)
	case *types.AttributeValueMemberN:
		return x.Value
	case *types.AttributeValueMemberB:
		if len(x.Value) > 16 {
			return fmt.Sprintf("<%d bytes %x…>", len(x.Value), x.Value[:16])
		}
		return fmt.Sprintf("<%d bytes %x>", len(x.Value), x.Value)
	case *types.AttributeValueMemberBOOL:
		return fmt.Sprint(x.Value)
	case *types.AttributeValueMemberNULL:
		return "NULL"
	case *types.AttributeValueMemberL:
		var b bytes.Buffer
		b.WriteByte('[')
		for i, e := range x.Value {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(Render(e))
		}
		b.WriteByte(']')
		return b.String()
	case nil:
		return "<missing>"
	}
	return fmt.Sprintf("%T", v)
}
