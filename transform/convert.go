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
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/ferry-migrate/ferry/extract"
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
		if strings.HasSuffix(text, "infinity") {
			return "", fmt.Errorf("date %q has no DynamoDB form", text)
		}
		return text, nil
	case extract.KindNumeric, extract.KindFloat:
		if err := checkFinite(text); err != nil {
			return "", err
		}
		return text, nil
	}
	return text, nil
}

func checkFinite(text string) error {
	switch text {
	case "NaN", "Infinity", "-Infinity":
		return fmt.Errorf("%s is not a number DynamoDB can hold", text)
	}
	return nil
}

// isoTimestamp turns PostgreSQL's ISO output ("2022-02-15 09:09:17.5+00", with
// the session in UTC) into "2022-02-15T09:09:17.500000Z" (tz) or without Z.
func isoTimestamp(text string, tz bool) (string, error) {
	b, err := appendISOTimestamp(make([]byte, 0, 28), text, tz)
	return string(b), err
}

// appendISOTimestamp appends isoTimestamp's form of text to dst. The form
// never needs JSON escaping.
func appendISOTimestamp(dst []byte, text string, tz bool) ([]byte, error) {
	if strings.HasSuffix(text, "infinity") {
		return dst, fmt.Errorf("timestamp %q has no DynamoDB form", text)
	}
	if len(text) < 19 || text[10] != ' ' {
		return dst, fmt.Errorf("unexpected timestamp form %q", text)
	}
	s := text
	bc := false
	if strings.HasSuffix(s, " BC") {
		bc = true
		s = s[:len(s)-3]
	}
	if tz {
		i := strings.LastIndexAny(s, "+-")
		if i < 19 {
			return dst, fmt.Errorf("timestamptz %q without offset", text)
		}
		zone := s[i:]
		s = s[:i]
		if zone != "+00" && zone != "+00:00" {
			// The session runs in UTC; any other offset means a foreign session setting.
			t, err := parseTimestampTZ(text)
			if err != nil {
				return dst, fmt.Errorf("unexpected timestamptz form %q", text)
			}
			return t.UTC().AppendFormat(dst, "2006-01-02T15:04:05.000000Z"), nil
		}
	}
	dst = append(dst, s[:10]...)
	dst = append(dst, 'T')
	dst = append(dst, s[11:19]...)
	dst = append(dst, '.')
	frac := ""
	if len(s) > 19 && s[19] == '.' {
		frac = s[20:]
	}
	dst = append(dst, frac...)
	for i := len(frac); i < 6; i++ {
		dst = append(dst, '0')
	}
	if tz {
		dst = append(dst, 'Z')
	}
	if bc {
		dst = append(dst, " BC"...)
	}
	return dst, nil
}

// parseTimestampTZ parses PostgreSQL's ISO timestamptz output. The offset is
// "+HH", "+HH:MM" for zones such as Asia/Kolkata, or "+HH:MM:SS" for historic
// local mean times; Go's "-07" layout alone accepts only the first.
func parseTimestampTZ(text string) (time.Time, error) {
	t, err := time.Parse("2006-01-02 15:04:05.999999-07", text)
	if err != nil {
		if t2, err2 := time.Parse("2006-01-02 15:04:05.999999-07:00", text); err2 == nil {
			return t2, nil
		}
		if t2, err2 := time.Parse("2006-01-02 15:04:05.999999-07:00:00", text); err2 == nil {
			return t2, nil
		}
	}
	return t, err
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

// attrEnc is attr taking its values from a row's encoder when e is not nil
// (text is then the value of source column col; col < 0 for an array
// element, which is not cached).
func (c *converter) attrEnc(e *rowEnc, col int, text string) (types.AttributeValue, error) {
	if c.arr {
		elems, err := parseArray(text)
		if err != nil {
			return nil, err
		}
		el := converter{name: c.name, kind: c.kind, conv: c.conv}
		return el.listAttr(elems)
	}
	switch c.conv {
	case mappings.ConvString:
		if c.kind == extract.KindBytea {
			return e.newS(strings.TrimPrefix(text, `\x`)), nil
		}
		s, err := e.canonicalOf(col, c.kind, text)
		if err != nil {
			return nil, err
		}
		return e.newS(s), nil
	case mappings.ConvNumber:
		if c.kind == extract.KindBool {
			if text == "t" {
				return e.newN("1"), nil
			}
			return e.newN("0"), nil
		}
		return c.number(e, text)
	case mappings.ConvEpochMS:
		ms, err := epochMillis(c.kind, text)
		if err != nil {
			return nil, err
		}
		return e.newN(e.appendInt(ms)), nil
	}
	switch c.kind {
	case extract.KindInt, extract.KindNumeric, extract.KindFloat:
		return c.number(e, text)
	case extract.KindBool:
		return &types.AttributeValueMemberBOOL{Value: text == "t"}, nil
	case extract.KindBytea:
		b, err := decodeBytea(text)
		if err != nil {
			return nil, err
		}
		return &types.AttributeValueMemberB{Value: b}, nil
	}
	s, err := e.canonicalOf(col, c.kind, text)
	if err != nil {
		return nil, err
	}
	return e.newS(s), nil
}

func (c *converter) number(e *rowEnc, text string) (types.AttributeValue, error) {
	if err := checkFinite(text); err != nil {
		return nil, err
	}
	if numberFitsN(text) {
		return e.newN(text), nil
	}
	// Beyond DynamoDB's 38 digits: keep every digit as a string rather than round.
	return e.newS(text), nil
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

func epochMillis(kind extract.Kind, text string) (int64, error) {
	var layout string
	switch kind {
	case extract.KindDate:
		layout = "2006-01-02"
	case extract.KindTimestamp:
		layout = "2006-01-02 15:04:05.999999"
	case extract.KindTimestampTZ:
		t, err := parseTimestampTZ(text)
		if err != nil {
			return 0, fmt.Errorf("parse %s %q: %w", kind, text, err)
		}
		return t.UnixMilli(), nil
	default:
		return 0, fmt.Errorf("epoch_ms needs a date or timestamp")
	}
	t, err := time.Parse(layout, text)
	if err != nil {
		return 0, fmt.Errorf("parse %s %q: %w", kind, text, err)
	}
	return t.UnixMilli(), nil
}

// appendJSON appends the event (Kinesis) form of a non-null value: integers and
// floats as JSON numbers, numeric as a string of its exact digits, bool, bytea
// as base64, arrays as arrays, everything else as its canonical string.
func (c *converter) appendJSON(dst []byte, text string) ([]byte, error) {
	if c.arr {
		elems, err := parseArray(text)
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
		return append(dst, text...), nil
	case extract.KindTimestamp, extract.KindTimestampTZ:
		dst = append(dst, '"')
		dst, err := appendISOTimestamp(dst, text, c.kind == extract.KindTimestampTZ)
		if err != nil {
			return dst, err
		}
		return append(dst, '"'), nil
	}
	s, err := canonical(c.kind, text)
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
	start := 0
	for i := 0; i < len(s); i++ {
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
