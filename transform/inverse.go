package transform

import (
	"encoding/hex"
	"strings"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/ferry-migrate/ferry/extract"
	"github.com/ferry-migrate/ferry/mappings"
)

// TextOf turns a stored attribute of column col back into PostgreSQL's text
// form, for the kinds of values PostgreSQL stores out of line (TOAST): text-like
// values, bytea and arrays of those. ok is false when the attribute is missing
// or the conversion is not invertible (then the caller must read the source):
// always for a column mapped as map, whose document has lost the JSON text.
func TextOf(tp *TablePlan, col int, v types.AttributeValue) (text string, null bool, ok bool) {
	if v == nil {
		return "", false, false
	}
	c := tp.all[col]
	if c.conv == mappings.ConvMap {
		// A document attribute has lost the JSON text (key order, white space,
		// the written form of numbers), and its NULL may be JSON null or SQL
		// NULL: the source must be read.
		return "", false, false
	}
	if _, isNull := v.(*types.AttributeValueMemberNULL); isNull {
		return "", true, true
	}
	if c.arr {
		l, isList := v.(*types.AttributeValueMemberL)
		if !isList || !textIsCanonical(c.kind) {
			return "", false, false
		}
		delim := extract.ArrayDelimiter(c.kind)
		var b strings.Builder
		b.WriteByte('{')
		for i, e := range l.Value {
			if i > 0 {
				b.WriteByte(delim)
			}
			if _, isNull := e.(*types.AttributeValueMemberNULL); isNull {
				b.WriteString("NULL")
				continue
			}
			s, isS := e.(*types.AttributeValueMemberS)
			if !isS {
				return "", false, false
			}
			b.WriteByte('"')
			b.WriteString(strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s.Value))
			b.WriteByte('"')
		}
		b.WriteByte('}')
		return b.String(), false, true
	}
	switch x := v.(type) {
	case *types.AttributeValueMemberB:
		if c.kind == extract.KindBytea {
			return `\x` + hex.EncodeToString(x.Value), false, true
		}
	case *types.AttributeValueMemberS:
		switch c.kind {
		case extract.KindText, extract.KindJSON, extract.KindTSVector, extract.KindEnum, extract.KindOther, extract.KindTime, extract.KindBox:
			return x.Value, false, true
		}
	case *types.AttributeValueMemberN:
		switch c.kind {
		case extract.KindInt, extract.KindNumeric, extract.KindFloat:
			return x.Value, false, true
		}
	}
	return "", false, false
}

// textIsCanonical reports whether the S form of a value of kind is its
// PostgreSQL text form (dates, timestamps and money are rewritten, bytea is hex
// without its \x).
func textIsCanonical(kind extract.Kind) bool {
	switch kind {
	case extract.KindText, extract.KindJSON, extract.KindTSVector, extract.KindEnum, extract.KindOther,
		extract.KindTime, extract.KindBox, extract.KindInt, extract.KindNumeric, extract.KindFloat:
		return true
	}
	return false
}
