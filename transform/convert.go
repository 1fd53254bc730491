// Package transform turns source rows and changes into DynamoDB items and Kinesis
// records, driven by a mapping. It is pure: no I/O, no clocks except those passed
// in, so every rule here is unit-tested.
package transform

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"math/big"
	"strconv"
	"strings"
	"unsafe"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/ferry-migrate/ferry/extract"
	"github.com/ferry-migrate/ferry/load/ddbjson"
	"github.com/ferry-migrate/ferry/mappings"
)

// ValueError is a value that the target cannot hold under the mapping's rules.
type ValueError struct {
	Column string
	Reason string
}

func (e *ValueError) Error() string { return fmt.Sprintf("column %s: %s", e.Column, e.Reason) }

// converter converts one column's text form. It is chosen once per column when a
// plan is compiled, so the per-row path does no type dispatch beyond a switch.
type converter struct {
	name string
	kind extract.Kind
	arr  bool
	conv mappings.Conversion
}

// canonical returns the string form used in keys, S attributes and JSON strings:
// ISO 8601 for dates and times, exact digits for numbers, hex for bytea.
func canonical(kind extract.Kind, text string) (string, error) {
	switch kind {
	case extract.KindTimestamp:
		return isoTimestamp(text, false)
	case extract.KindTimestampTZ:
		return isoTimestamp(text, true)
	case extract.KindDate:
		return isoDate(text)
	case extract.KindNumeric, extract.KindFloat:
		if err := checkFinite(text); err != nil {
			return "", err
		}
		return text, nil
	case extract.KindMoney:
		return moneyDecimal(text)
	}
	return text, nil
}

// moneyDecimal turns money's text form under lc_monetary C ("-$1,234.56",
// pinned for every connection) into its exact decimal ("-1234.56"). Any other
// form means the setting did not take (a pooler that drops startup
// parameters, say) and is refused rather than guessed at.
func moneyDecimal(text string) (string, error) {
	s := text
	neg := strings.HasPrefix(s, "-")
	if neg {
		s = s[1:]
	}
	s, ok := strings.CutPrefix(s, "$")
	whole, frac, dot := strings.Cut(s, ".")
	if !ok || !dot || len(frac) != 2 || !isDigit(frac[0]) || !isDigit(frac[1]) || whole == "" {
		return "", fmt.Errorf("unexpected money form %q (want lc_monetary C: -$1,234.56)", text)
	}
	out := make([]byte, 0, len(text))
	if neg {
		out = append(out, '-')
	}
	for i := 0; i < len(whole); i++ {
		switch c := whole[i]; {
		case isDigit(c):
			out = append(out, c)
		case c == ',' && i > 0 && i < len(whole)-1:
		default:
			return "", fmt.Errorf("unexpected money form %q (want lc_monetary C: -$1,234.56)", text)
		}
	}
	out = append(out, '.')
	out = append(out, frac...)
	return string(out), nil
}

func checkFinite(text string) error {
	switch text {
	case "NaN", "Infinity", "-Infinity":
		return fmt.Errorf("%s is not a number DynamoDB can hold", text)
	}
	return nil
}

// numberFitsN reports whether a decimal string fits DynamoDB's N type: at most 38
// significant digits, magnitude between 1E-130 and 9.9999999999999999999999999999999999999E+125.
func numberFitsN(text string) bool {
	return plainDecimal(text) || numberFitsExact(text)
}

// numberFitsExact is numberFitsN for any decimal form (exponents, leading
// zeros, more than 38 digits of which some are zeros).
func numberFitsExact(text string) bool {
	s := strings.TrimLeft(text, "+-")
	mant, expPart, hasExp := strings.Cut(strings.ToLower(s), "e")
	exp := 0
	if hasExp {
		e, err := strconv.Atoi(expPart)
		if err != nil {
			return false
		}
		exp = e
	}
	intPart, fracPart, _ := strings.Cut(mant, ".")
	digits := strings.TrimLeft(intPart+fracPart, "0")
	if digits == "" {
		return true // zero
	}
	lead := len(intPart+fracPart) - len(digits) // leading zeros
	// decimal exponent of the leading significant digit
	mag := len(intPart) - lead - 1 + exp
	digits = strings.TrimRight(digits, "0")
	return len(digits) <= 38 && mag <= 125 && mag >= -130
}

// plainDecimal reports whether text is an optionally negative decimal of at
// most 38 digits without exponent ("16050", "-2.99"): the form of almost every
// integer and numeric value, which fits N without further analysis.
func plainDecimal(text string) bool {
	s := text
	if len(s) > 0 && s[0] == '-' {
		s = s[1:]
	}
	if len(s) == 0 || len(s) > 39 {
		return false
	}
	digits, dot := 0, false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9':
			digits++
		case c == '.' && !dot && i > 0 && i < len(s)-1:
			dot = true
		default:
			return false
		}
	}
	return digits <= 38
}

// attr converts one non-null column value to an attribute value.
func (c *converter) attr(text string) (types.AttributeValue, error) {
	return c.attrEnc(nil, -1, text)
}

// valueType is the DynamoDB type a column value converts to.
type valueType uint8

const (
	typeS    valueType = iota // s
	typeN                     // s: the number's decimal form
	typeB                     // b
	typeBool                  // s: "t" or "f"
	typeDoc                   // doc: an L or M, built as SDK values
)

// value is one converted column value, before it takes the SDK's form
// (attrEnc) or the wire form (appendAttr): the conversion rules are
// written once, in convert.
type value struct {
	t   valueType
	s   string
	b   []byte
	doc types.AttributeValue
}

// attrEnc is attr taking its values from a row's encoder when e is not nil
// (text is then the value of source column col; col < 0 for an array
// element, which is not cached).
func (c *converter) attrEnc(e *rowEnc, col int, text string) (types.AttributeValue, error) {
	v, err := c.convert(e, col, text)
	if err != nil {
		return nil, err
	}
	switch v.t {
	case typeS:
		return e.newS(v.s), nil
	case typeN:
		return e.newN(v.s), nil
	case typeB:
		return &types.AttributeValueMemberB{Value: v.b}, nil
	case typeBool:
		return &types.AttributeValueMemberBOOL{Value: v.s == "t"}, nil
	}
	return v.doc, nil
}

// appendAttr appends the wire form of a column value (see attrEnc).
func (c *converter) appendAttr(dst []byte, e *rowEnc, col int, text string) ([]byte, error) {
	v, err := c.convert(e, col, text)
	if err != nil {
		return dst, err
	}
	switch v.t {
	case typeS:
		return ddbjson.AppendS(dst, v.s), nil
	case typeN:
		return ddbjson.AppendN(dst, v.s), nil
	case typeB:
		return ddbjson.AppendB(dst, v.b), nil
	case typeBool:
		return ddbjson.AppendBool(dst, v.s == "t"), nil
	}
	return ddbjson.AppendAttributeValue(dst, v.doc)
}

// convert applies the mapping's conversion to one non-null value: the
// rules of docs/types.md.
func (c *converter) convert(e *rowEnc, col int, text string) (value, error) {
	if c.arr {
		elems, err := parseArrayDelim(text, extract.ArrayDelimiter(c.kind))
		if err != nil {
			return value{}, err
		}
		el := converter{name: c.name, kind: c.kind, conv: c.conv}
		l, err := el.listAttr(elems)
		return value{t: typeDoc, doc: l}, err
	}
	switch c.conv {
	case mappings.ConvMap:
		doc, err := jsonAttr(text) // json/jsonb only (checkConversion)
		return value{t: typeDoc, doc: doc}, err
	case mappings.ConvString:
		if c.kind == extract.KindBytea {
			return value{t: typeS, s: strings.TrimPrefix(text, `\x`)}, nil
		}
		s, err := e.canonicalOf(col, c.kind, text)
		return value{t: typeS, s: s}, err
	case mappings.ConvNumber:
		switch c.kind {
		case extract.KindBool:
			if text == "t" {
				return value{t: typeN, s: "1"}, nil
			}
			return value{t: typeN, s: "0"}, nil
		case extract.KindMoney:
			return c.money(e, col, text)
		}
		return c.number(text)
	case mappings.ConvEpochMS:
		ms, err := epochMillis(c.kind, text)
		if err != nil {
			return value{}, err
		}
		return value{t: typeN, s: e.appendInt(ms)}, nil
	}
	switch c.kind {
	case extract.KindInt, extract.KindNumeric, extract.KindFloat:
		return c.number(text)
	case extract.KindMoney:
		return c.money(e, col, text)
	case extract.KindBool:
		return value{t: typeBool, s: text}, nil
	case extract.KindBytea:
		b, err := decodeBytea(text)
		return value{t: typeB, b: b}, err
	}
	s, err := e.canonicalOf(col, c.kind, text)
	return value{t: typeS, s: s}, err
}

// number is the N form of an integer, numeric or float. A numeric beyond N's
// range keeps every digit as S (the documented rule for numeric); a float
// beyond it (1e308, the subnormal 5e-324) is refused: one float column is one
// DynamoDB type, and mapping it as string keeps every value, as S.
func (c *converter) number(text string) (value, error) {
	if err := checkFinite(text); err != nil {
		return value{}, err
	}
	if c.kind == extract.KindFloat {
		if err := floatFitsN(text); err != nil {
			return value{}, err
		}
		return value{t: typeN, s: text}, nil
	}
	if numberFitsN(text) {
		return value{t: typeN, s: text}, nil
	}
	if c.kind == extract.KindNumeric {
		// Beyond DynamoDB's 38 digits: keep every digit as a string rather than round.
		return value{t: typeS, s: text}, nil
	}
	return value{}, errBeyondN(text)
}

// money is the N form of a money value: its exact decimal (at most 19 digits,
// so it always fits).
func (c *converter) money(e *rowEnc, col int, text string) (value, error) {
	s, err := e.canonicalOf(col, c.kind, text)
	return value{t: typeN, s: s}, err
}

func errBeyondN(text string) error {
	return fmt.Errorf("%s is beyond DynamoDB's number range (38 digits, magnitude 1E-130 to 9.99E+125); map the column as string to keep it as text", text)
}

// floatFitsN reports why a finite float's text cannot be an N: beyond N's
// range, or -0, which N has no form for (DynamoDB reads it back as 0).
func floatFitsN(text string) error {
	if text == "-0" {
		return fmt.Errorf("float -0 has no DynamoDB number form (it would read back as 0); map the column as string to keep it as text")
	}
	if !numberFitsN(text) {
		return errBeyondN(text)
	}
	return nil
}

func (c *converter) listAttr(elems []arrayElem) (types.AttributeValue, error) {
	l := make([]types.AttributeValue, len(elems))
	for i, e := range elems {
		switch {
		case e.sub != nil:
			v, err := c.listAttr(e.sub)
			if err != nil {
				return nil, err
			}
			l[i] = v
		case e.null:
			l[i] = &types.AttributeValueMemberNULL{Value: true}
		default:
			v, err := c.attr(e.text)
			if err != nil {
				return nil, err
			}
			l[i] = v
		}
	}
	return &types.AttributeValueMemberL{Value: l}, nil
}

func decodeBytea(text string) ([]byte, error) {
	if !strings.HasPrefix(text, `\x`) {
		return nil, fmt.Errorf("bytea not in hex form")
	}
	b, err := hex.DecodeString(text[2:])
	if err != nil {
		return nil, fmt.Errorf("bytea: %w", err)
	}
	return b, nil
}

// appendJSON appends the event (Kinesis) form of a non-null value: integers and
// floats as JSON numbers, numeric as a string of its exact digits, bool, bytea
// as base64, arrays as arrays, everything else as its canonical string.
func (c *converter) appendJSON(dst []byte, text string) ([]byte, error) {
	return c.appendJSONEnc(dst, nil, -1, text)
}

// appendJSONEnc is appendJSON taking the canonical forms of dates, times
// and money from a row's encoder when e is not nil (text is then the value
// of source column col of e's row), so that a row's record does not convert
// again what its item converted.
func (c *converter) appendJSONEnc(dst []byte, e *rowEnc, col int, text string) ([]byte, error) {
	if c.arr {
		elems, err := parseArrayDelim(text, extract.ArrayDelimiter(c.kind))
		if err != nil {
			return dst, err
		}
		el := converter{name: c.name, kind: c.kind, conv: c.conv}
		return el.appendJSONList(dst, elems)
	}
	switch c.kind {
	case extract.KindInt:
		return append(dst, text...), nil
	case extract.KindFloat:
		if err := checkFinite(text); err != nil {
			return dst, err
		}
		if c.conv != mappings.ConvString {
			if err := floatFitsN(text); err != nil {
				return dst, err // the item refuses it too: one rule for the row
			}
		}
		return append(dst, text...), nil
	case extract.KindBool:
		if text == "t" {
			return append(dst, "true"...), nil
		}
		return append(dst, "false"...), nil
	case extract.KindBytea:
		b, err := decodeBytea(text)
		if err != nil {
			return dst, err
		}
		dst = append(dst, '"')
		dst = base64.StdEncoding.AppendEncode(dst, b)
		return append(dst, '"'), nil
	case extract.KindJSON:
		if c.conv == mappings.ConvMap {
			// Under map the event embeds the JSON value itself, as written
			// (numbers exact); a value the item refuses is refused here too:
			// one rule for the row.
			if _, err := jsonAttr(text); err != nil {
				return dst, err
			}
			return append(dst, text...), nil
		}
		// Otherwise a JSON string holding the exact text, as Debezium's
		// io.debezium.data.Json: JSON null ("null") and SQL NULL (null)
		// stay apart, and json's duplicate keys and key order reach the
		// consumer as written.
		return appendJSONString(dst, text), nil
	case extract.KindTimestamp, extract.KindTimestampTZ:
		if e != nil && col >= 0 {
			s, err := e.canonical(col) // ISO 8601: nothing to escape
			if err != nil {
				return dst, err
			}
			dst = append(dst, '"')
			dst = append(dst, s...)
			return append(dst, '"'), nil
		}
		dst = append(dst, '"')
		dst, err := appendISOTimestamp(dst, text, c.kind == extract.KindTimestampTZ)
		if err != nil {
			return dst, err
		}
		return append(dst, '"'), nil
	}
	s, err := e.canonicalOf(col, c.kind, text)
	if err != nil {
		return dst, err
	}
	return appendJSONString(dst, s), nil
}

func (c *converter) appendJSONList(dst []byte, elems []arrayElem) ([]byte, error) {
	dst = append(dst, '[')
	for i, e := range elems {
		if i > 0 {
			dst = append(dst, ',')
		}
		var err error
		switch {
		case e.sub != nil:
			dst, err = c.appendJSONList(dst, e.sub)
		case e.null:
			dst = append(dst, "null"...)
		default:
			dst, err = c.appendJSON(dst, e.text)
		}
		if err != nil {
			return dst, err
		}
	}
	return append(dst, ']'), nil
}

// appendJSONString writes s as a JSON string. Hand-written because records are
// built per row on the hot path; encoding/json would allocate per value.
func appendJSONString(dst []byte, s string) []byte {
	const hexdig = "0123456789abcdef"
	dst = append(dst, '"')
	// Eight bytes at a time while none is escaped, then byte by byte.
	i := 0
	if len(s) >= 8 {
		p := unsafe.Pointer(unsafe.StringData(s))
		for ; i+8 <= len(s); i += 8 {
			if escapedJSON(*(*uint64)(unsafe.Add(p, i))) {
				break
			}
		}
	}
	start := 0
	for ; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
			continue
		}
		dst = append(dst, s[start:i]...)
		switch c {
		case '"', '\\':
			dst = append(dst, '\\', c)
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		case '\t':
			dst = append(dst, '\\', 't')
		default:
			dst = append(dst, '\\', 'u', '0', '0', hexdig[c>>4], hexdig[c&0xf])
		}
		start = i + 1
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// escapedJSON reports whether one of the 8 bytes of w is one appendJSONString
// escapes: below 0x20, '"', '\\', '<', '>' or '&'.
func escapedJSON(w uint64) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	// x-ones & ^x has the high bit of a zero byte of x set (and w-0x20s & ^w
	// that of a byte below 0x20), exactly when there is one.
	q, b, l, g, a := w^(ones*'"'), w^(ones*'\\'), w^(ones*'<'), w^(ones*'>'), w^(ones*'&')
	return ((w-ones*0x20)&^w|(q-ones)&^q|(b-ones)&^b|(l-ones)&^l|(g-ones)&^g|(a-ones)&^a)&highs != 0
}

// CompareNumbers compares two decimal strings exactly (used by verify, where
// DynamoDB hands back normalised numbers: "2.90" comes back as "2.9").
func CompareNumbers(a, b string) (int, bool) {
	x, ok1 := new(big.Rat).SetString(a)
	y, ok2 := new(big.Rat).SetString(b)
	if !ok1 || !ok2 {
		return 0, false
	}
	return x.Cmp(y), true
}
