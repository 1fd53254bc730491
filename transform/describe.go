package transform

import (
	"strings"

	"github.com/ferry-migrate/ferry/extract"
	"github.com/ferry-migrate/ferry/mappings"
)

// The descriptions below are what `ferry plan` prints per column: the
// Kinesis JSON form and the values refused. They restate the rules of
// convert.go (docs/types.md has the whole table); a test checks them against
// the conversion itself.

// EventType is the JSON form of the column's values in a Kinesis record's
// before/after images.
func (c ColumnPlan) EventType() string {
	if c.conv.arr {
		el := ColumnPlan{conv: converter{kind: c.conv.kind, conv: c.conv.conv}}
		return "array of " + el.EventType()
	}
	switch c.conv.kind {
	case extract.KindInt:
		return "number"
	case extract.KindFloat:
		return "number"
	case extract.KindBool:
		return "true/false"
	case extract.KindBytea:
		return "string (base64)"
	case extract.KindNumeric, extract.KindMoney:
		return "string (exact digits)"
	case extract.KindDate, extract.KindTimestamp, extract.KindTimestampTZ:
		return "string (ISO 8601)"
	case extract.KindJSON:
		if c.conv.conv == mappings.ConvMap {
			return "JSON (embedded)"
		}
		return "string (the JSON text)"
	}
	return "string"
}

// Refused lists the values of the column that no item or record can hold
// (their rows are refused by the --on-error policy), "" when there are none.
func (c ColumnPlan) Refused() string {
	var out []string
	switch c.conv.kind {
	case extract.KindNumeric:
		out = append(out, "NaN, ±Infinity")
	case extract.KindFloat:
		out = append(out, "NaN, ±Infinity")
		if c.conv.conv != mappings.ConvString {
			out = append(out, "beyond N's range, -0")
		}
	case extract.KindDate, extract.KindTimestamp, extract.KindTimestampTZ:
		out = append(out, "±infinity")
	case extract.KindMoney:
		out = append(out, "a form other than lc_monetary=C's")
	case extract.KindJSON:
		if c.conv.conv == mappings.ConvMap {
			out = append(out, "numbers beyond N, duplicate keys, nesting beyond 32")
		}
	}
	if c.conv.arr {
		out = append(out, "lower bound ≠ 1")
	}
	return strings.Join(out, "; ")
}

// Generated is the expression of a stored generated column ("" otherwise);
// sync computes such a column from each change's row (pgoutput leaves it
// out).
func (tp *TablePlan) Generated(c ColumnPlan) string {
	return tp.Source.Columns[c.Index].Generated
}

// EscapesValues reports whether a key attribute's template escapes its values
// (it has several placeholders; see mappings.Template.Separators).
func (k KeyAttr) EscapesValues() bool { return k.tpl.esc }
