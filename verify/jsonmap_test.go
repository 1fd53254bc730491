package verify

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/ferry-migrate/ferry/transform"
)

// TestDocumentAttributes: a json column mapped as `map` is an M of nested M,
// L, S, N, BOOL and NULL. The expected item (numbers as written in the JSON)
// and the stored one (numbers as DynamoDB normalises them) compare equal and
// hash alike; a changed nested value does not.
func TestDocumentAttributes(t *testing.T) {
	doc := func(n1, n2 string, flag bool) types.AttributeValue {
		return &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{
			"":  &types.AttributeValueMemberS{Value: ""},
			"a": &types.AttributeValueMemberL{Value: []types.AttributeValue{&types.AttributeValueMemberN{Value: n1}, &types.AttributeValueMemberNULL{Value: true}}},
			"b": &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{
				"c": &types.AttributeValueMemberN{Value: n2},
				"d": &types.AttributeValueMemberBOOL{Value: flag},
				"e": &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{}},
			}},
		}}
	}
	expected := transform.Item{"pk": &types.AttributeValueMemberS{Value: "DOC#1"}, "doc": doc("1.50", "1e5", true)}
	stored := transform.Item{"pk": &types.AttributeValueMemberS{Value: "DOC#1"}, "doc": doc("1.5", "100000", true)}
	if d := CompareItems(expected, stored); len(d) != 0 {
		t.Errorf("equal documents differ: %+v", d)
	}
	var h hasher
	if a, b := h.item(expected, ""), h.item(stored, ""); a != b {
		t.Errorf("equal documents hash apart: %x %x", a, b)
	}
	for _, changed := range []types.AttributeValue{doc("1.51", "1e5", true), doc("1.50", "1e5", false), doc("1.50", "1e6", true)} {
		other := transform.Item{"pk": expected["pk"], "doc": changed}
		if d := CompareItems(expected, other); len(d) != 1 || d[0].Column != "doc" {
			t.Errorf("changed document: %+v", d)
		}
		if h.item(expected, "") == h.item(other, "") {
			t.Error("changed document hashes alike")
		}
	}
}
