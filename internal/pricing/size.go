package pricing

import (
	"strings"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// ItemSize is an item's size as DynamoDB bills it: each attribute's name
// (UTF-8 bytes) plus its value's size (see AttrSize).
func ItemSize(item map[string]types.AttributeValue) int {
	n := 0
	for name, v := range item {
		n += len(name) + AttrSize(v)
	}
	return n
}

// AttrSize is a value's size by DynamoDB's rules: strings and binaries
// their length; a number about one byte per two significant digits plus
// one; booleans and nulls one byte; lists and maps 3 bytes plus their
// elements (a map's names too) plus one byte per element; sets their
// elements.
func AttrSize(v types.AttributeValue) int {
	switch x := v.(type) {
	case *types.AttributeValueMemberS:
		return len(x.Value)
	case *types.AttributeValueMemberN:
		return numberSize(x.Value)
	case *types.AttributeValueMemberB:
		return len(x.Value)
	case *types.AttributeValueMemberBOOL, *types.AttributeValueMemberNULL:
		return 1
	case *types.AttributeValueMemberSS:
		n := 0
		for _, s := range x.Value {
			n += len(s)
		}
		return n
	case *types.AttributeValueMemberNS:
		n := 0
		for _, s := range x.Value {
			n += numberSize(s)
		}
		return n
	case *types.AttributeValueMemberBS:
		n := 0
		for _, b := range x.Value {
			n += len(b)
		}
		return n
	case *types.AttributeValueMemberL:
		n := 3
		for _, e := range x.Value {
			n += AttrSize(e) + 1
		}
		return n
	case *types.AttributeValueMemberM:
		n := 3
		for k, e := range x.Value {
			n += len(k) + AttrSize(e) + 1
		}
		return n
	}
	return 0
}

// numberSize: leading and trailing zeros are not stored; two significant
// digits per byte, plus one byte.
func numberSize(s string) int {
	s = strings.TrimLeft(s, "+-")
	if i := strings.IndexAny(s, "eE"); i >= 0 {
		s = s[:i]
	}
	digits := strings.Replace(s, ".", "", 1)
	digits = strings.TrimLeft(digits, "0")
	if strings.Contains(s, ".") {
		digits = strings.TrimRight(digits, "0")
	} else {
		digits = strings.TrimRight(digits, "0") // trailing zeros of an integer are an exponent
	}
	return (len(digits)+1)/2 + 1
}
