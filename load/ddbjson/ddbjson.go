// Package ddbjson writes DynamoDB items in the JSON wire form of the DynamoDB
// API (the awsJson1_0 protocol), in which an item is an object of attribute
// names to typed values:
//
//	{"pk":{"S":"RENTAL#1"},"rental_id":{"N":"1"},"staff_id":{"NULL":true}}
//
// The backfill builds its items directly in this form (transform) and the
// DynamoDB writer sends them as the body of BatchWriteItem (load), so that
// the hot path never builds the SDK's map[string]types.AttributeValue with
// one boxed value per attribute: that map alone cost more CPU per row than
// PostgreSQL's COPY spends producing the row (BENCHMARKS.md).
//
// Every function writes what the SDK's own serializer writes for the same
// value (string escapes included: invalid UTF-8 becomes U+FFFD, as the SDK
// does), so an item has one wire form whichever way it was built; the tests
// hold the two side by side.
package ddbjson

import (
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"slices"
	"unicode/utf8"
	"unsafe"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Item is an item in DynamoDB's JSON wire form, with its primary key.
type Item struct {
	// JSON is the item: a JSON object of attribute names to typed values.
	JSON []byte
	// PK and SK are the item's key attributes (SK.Name is "" when the table
	// has no sort key). ferry's keys are rendered templates, so always S.
	// The writer finds an unprocessed put by them.
	PK, SK KeyAttr
}

// KeyAttr is a key attribute of type S: its name and value.
type KeyAttr struct {
	Name, Value string
}

// Valid reports why an item cannot be sent, or nil.
func (it Item) Valid() error {
	var errs []error
	if len(it.JSON) < 2 || it.JSON[0] != '{' || it.JSON[len(it.JSON)-1] != '}' {
		errs = append(errs, errors.New("item JSON is not an object"))
	}
	if it.PK.Name == "" {
		errs = append(errs, errors.New("item has no partition key attribute"))
	}
	return errors.Join(errs...)
}

// AppendString appends s as a JSON string exactly as the SDK's serializer
// writes it: '"', '\\' and control characters escaped (\n, \r, \t by name,
// the others and DEL as \u00XX), U+2028 and U+2029 escaped, each byte of
// invalid UTF-8 replaced by U+FFFD, everything else as it is.
//
// Why by hand: the SDK's encoder is internal to smithy-go, and
// encoding/json both escapes differently (<, >, &) and allocates per value.
func AppendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	// Eight bytes at a time while none needs a look (most strings: keys,
	// timestamps, numbers, plain text), then byte by byte.
	i := 0
	if len(s) >= 8 {
		p := unsafe.Pointer(unsafe.StringData(s))
		for ; i+8 <= len(s); i += 8 {
			if special(*(*uint64)(unsafe.Add(p, i))) {
				break
			}
		}
	}
	start := 0
	for i < len(s) {
		b := s[i]
		if b < utf8.RuneSelf {
			if safe[b] {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '"', '\\':
				dst = append(dst, '\\', b)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xf])
			}
			i++
			start = i
			continue
		}
		c, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case c == utf8.RuneError && size == 1:
			dst = append(dst, s[start:i]...)
			dst = append(dst, "\ufffd"...)
		case c == '\u2028' || c == '\u2029':
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[c&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

const hexDigits = "0123456789abcdef"

// special reports whether one of the 8 bytes of w (any order) is not
// written as it is: below 0x20, '"', '\\', DEL or not ASCII.
func special(w uint64) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	q, b, d := w^(ones*'"'), w^(ones*'\\'), w^(ones*0x7f) // a zero byte where w has '"', '\\', DEL
	// x-ones & ^x has the high bit of a zero byte of x set (and w-0x20s & ^w
	// that of a byte below 0x20), exactly when there is one.
	return (w|(w-ones*0x20)&^w|(q-ones)&^q|(b-ones)&^b|(d-ones)&^d)&highs != 0
}

// safe marks the ASCII bytes written as they are inside a JSON string.
var safe = func() (t [utf8.RuneSelf]bool) {
	for b := 0x20; b < utf8.RuneSelf; b++ {
		t[b] = b != '"' && b != '\\' && b != 0x7f
	}
	return t
}()

// AppendS appends a typed S value: {"S":"…"}.
func AppendS(dst []byte, s string) []byte {
	dst = append(dst, `{"S":`...)
	dst = AppendString(dst, s)
	return append(dst, '}')
}

// AppendN appends a typed N value, {"N":"…"} (escaped as a string is,
// although a number's decimal form has nothing to escape: what DynamoDB
// receives must not depend on the value having been checked).
func AppendN(dst []byte, n string) []byte {
	for i := 0; i < len(n); i++ {
		if !numberByte[n[i]] {
			dst = append(dst, `{"N":`...)
			dst = AppendString(dst, n)
			return append(dst, '}')
		}
	}
	dst = append(dst, `{"N":"`...)
	dst = append(dst, n...)
	return append(dst, `"}`...)
}

// numberByte marks the bytes of a number's decimal form, which a JSON string
// holds as they are.
var numberByte = func() (t [256]bool) {
	for _, c := range []byte("0123456789+-.eE") {
		t[c] = true
	}
	return t
}()

// AppendB appends a typed B value: {"B":"<base64>"}.
func AppendB(dst []byte, b []byte) []byte {
	dst = append(dst, `{"B":"`...)
	dst = base64.StdEncoding.AppendEncode(dst, b)
	return append(dst, `"}`...)
}

// AppendBool appends a typed BOOL value.
func AppendBool(dst []byte, v bool) []byte {
	if v {
		return append(dst, `{"BOOL":true}`...)
	}
	return append(dst, `{"BOOL":false}`...)
}

// AppendNull appends the typed NULL value.
func AppendNull(dst []byte) []byte { return append(dst, `{"NULL":true}`...) }

// AppendName appends an attribute name as an object key with its colon.
func AppendName(dst []byte, name string) []byte {
	return append(AppendString(dst, name), ':')
}

// AppendAttributeValue appends an SDK attribute value in its wire form
// (map keys in sorted order). It is the path for the values that are
// documents (L, M) and for items that were built as SDK maps.
func AppendAttributeValue(dst []byte, v types.AttributeValue) ([]byte, error) {
	switch v := v.(type) {
	case *types.AttributeValueMemberS:
		return AppendS(dst, v.Value), nil
	case *types.AttributeValueMemberN:
		return AppendN(dst, v.Value), nil
	case *types.AttributeValueMemberB:
		return AppendB(dst, v.Value), nil
	case *types.AttributeValueMemberBOOL:
		return AppendBool(dst, v.Value), nil
	case *types.AttributeValueMemberNULL:
		if v.Value {
			return AppendNull(dst), nil
		}
		return append(dst, `{"NULL":false}`...), nil
	case *types.AttributeValueMemberSS:
		dst = append(dst, `{"SS":[`...)
		for i, s := range v.Value {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = AppendString(dst, s)
		}
		return append(dst, "]}"...), nil
	case *types.AttributeValueMemberNS:
		dst = append(dst, `{"NS":[`...)
		for i, s := range v.Value {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = AppendString(dst, s)
		}
		return append(dst, "]}"...), nil
	case *types.AttributeValueMemberBS:
		dst = append(dst, `{"BS":[`...)
		for i, b := range v.Value {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, '"')
			dst = base64.StdEncoding.AppendEncode(dst, b)
			dst = append(dst, '"')
		}
		return append(dst, "]}"...), nil
	case *types.AttributeValueMemberL:
		dst = append(dst, `{"L":[`...)
		for i, e := range v.Value {
			if i > 0 {
				dst = append(dst, ',')
			}
			var err error
			if dst, err = AppendAttributeValue(dst, e); err != nil {
				return dst, fmt.Errorf("list element %d: %w", i, err)
			}
		}
		return append(dst, "]}"...), nil
	case *types.AttributeValueMemberM:
		dst = append(dst, `{"M":`...)
		dst, err := AppendItem(dst, v.Value)
		if err != nil {
			return dst, err
		}
		return append(dst, '}'), nil
	case nil:
		return dst, errors.New("nil attribute value")
	}
	return dst, fmt.Errorf("attribute value of type %T has no wire form here", v)
}

// AppendItem appends an SDK item (or map value) as a JSON object, its
// attributes in sorted order.
func AppendItem(dst []byte, item map[string]types.AttributeValue) ([]byte, error) {
	dst = append(dst, '{')
	for i, name := range slices.Sorted(maps.Keys(item)) {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = AppendName(dst, name)
		var err error
		if dst, err = AppendAttributeValue(dst, item[name]); err != nil {
			return dst, fmt.Errorf("attribute %q: %w", name, err)
		}
	}
	return append(dst, '}'), nil
}
