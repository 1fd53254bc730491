package ddbjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Decode reads an item in the wire form into the SDK's item type. It is for
// the paths where speed does not matter: tests, and tools that hand items
// built by ferry to code written for the SDK's type.
//
// Why by hand: the SDK's JSON deserializer is internal to smithy-go and
// takes its shapes from the service's schemas; encoding/json does the
// parsing here, this only maps DynamoDB's typed values.
func Decode(data []byte) (map[string]types.AttributeValue, error) {
	var raw map[string]json.RawMessage
	if err := strictUnmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("item: %w", err)
	}
	if raw == nil {
		return nil, errors.New("item: null")
	}
	out := make(map[string]types.AttributeValue, len(raw))
	for name, v := range raw {
		av, err := DecodeValue(v)
		if err != nil {
			return nil, fmt.Errorf("attribute %q: %w", name, err)
		}
		out[name] = av
	}
	return out, nil
}

// DecodeValue reads one typed value ({"S":"…"}, {"L":[…]}, …).
func DecodeValue(data []byte) (types.AttributeValue, error) {
	var typed map[string]json.RawMessage
	if err := strictUnmarshal(data, &typed); err != nil {
		return nil, err
	}
	if len(typed) != 1 {
		return nil, fmt.Errorf("a typed value has exactly one member, not %d", len(typed))
	}
	for t, v := range typed {
		switch t {
		case "S":
			var s string
			err := strictUnmarshal(v, &s)
			return &types.AttributeValueMemberS{Value: s}, err
		case "N":
			var s string
			err := strictUnmarshal(v, &s)
			return &types.AttributeValueMemberN{Value: s}, err
		case "B":
			var b []byte // base64, as encoding/json reads []byte
			err := strictUnmarshal(v, &b)
			return &types.AttributeValueMemberB{Value: b}, err
		case "BOOL":
			var b bool
			err := strictUnmarshal(v, &b)
			return &types.AttributeValueMemberBOOL{Value: b}, err
		case "NULL":
			var b bool
			err := strictUnmarshal(v, &b)
			return &types.AttributeValueMemberNULL{Value: b}, err
		case "SS":
			var l []string
			err := strictUnmarshal(v, &l)
			return &types.AttributeValueMemberSS{Value: l}, err
		case "NS":
			var l []string
			err := strictUnmarshal(v, &l)
			return &types.AttributeValueMemberNS{Value: l}, err
		case "BS":
			var l [][]byte
			err := strictUnmarshal(v, &l)
			return &types.AttributeValueMemberBS{Value: l}, err
		case "L":
			var l []json.RawMessage
			if err := strictUnmarshal(v, &l); err != nil {
				return nil, err
			}
			out := make([]types.AttributeValue, len(l))
			for i, e := range l {
				av, err := DecodeValue(e)
				if err != nil {
					return nil, fmt.Errorf("list element %d: %w", i, err)
				}
				out[i] = av
			}
			return &types.AttributeValueMemberL{Value: out}, nil
		case "M":
			m, err := Decode(v)
			if err != nil {
				return nil, err
			}
			return &types.AttributeValueMemberM{Value: m}, nil
		default:
			return nil, fmt.Errorf("unknown type %q", t)
		}
	}
	panic("unreachable")
}

// strictUnmarshal is json.Unmarshal that refuses a JSON null where a value
// is expected to be present.
func strictUnmarshal(data []byte, v any) error {
	if bytes.Equal(bytes.TrimSpace(data), []byte("null")) {
		return errors.New("unexpected null")
	}
	return json.Unmarshal(data, v)
}
