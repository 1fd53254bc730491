package load

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/ferry-migrate/ferry/extract"
	"github.com/ferry-migrate/ferry/internal/stack"
	"github.com/ferry-migrate/ferry/mappings"
	"github.com/ferry-migrate/ferry/transform"
)

// TestIntegrationJSONMapRoundTrip: an item with a json column mapped as
// `map` (nested maps and lists, an empty key, empty strings, exact numbers)
// is written with PutItem and read back with GetItem as the same document,
// numbers equal by value.
func TestIntegrationJSONMapRoundTrip(t *testing.T) {
	t.Parallel()
	st := stack.ForTest(t)
	ctx := testCtx(t)
	db := st.DynamoClient()
	spec := newTable(t, ctx, db)

	m, err := mappings.Parse("doc.yaml", []byte(`version: 1
tables:
  - source: doc
    target: `+spec.Name+`
    partition_key: {name: pk, template: "DOC#{id}"}
    sort_key: {name: sk, template: "DOC"}
    types: {doc: map}
`))
	if err != nil {
		t.Fatal(err)
	}
	src := &extract.Table{Schema: "public", Name: "doc", PK: []int{0}, Columns: []extract.Column{
		{Name: "id", Type: "integer", Kind: extract.KindInt, Position: 1},
		{Name: "doc", Type: "json", Kind: extract.KindJSON, Position: 2},
	}}
	p, err := transform.Compile(m, map[string]*extract.Table{"public.doc": src})
	if err != nil {
		t.Fatal(err)
	}
	tp := p.Table("doc")
	doc := `{"customer": {"city": "Zürich", "tags": ["a", "", {"deep": [[[1.50]]]}]},
	  "": {"empty key": true}, "n": [12345678901234567890123456789012345678, -0.000001, 1E+125, 1E-130, -0],
	  "nothing": null, "no": false, "e": {}, "l": []}`
	item, _, err := tp.Item(extract.Row{{Text: "1"}, {Text: doc}}, extract.Position{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(spec.Name), Item: item}); err != nil {
		t.Fatalf("PutItem: %v", err)
	}
	out, err := db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(spec.Name), ConsistentRead: aws.Bool(true),
		Key: map[string]types.AttributeValue{"pk": item["pk"], "sk": item["sk"]}})
	if err != nil {
		t.Fatalf("GetItem: %v", err)
	}
	if !docEqual(item["doc"], out.Item["doc"]) {
		t.Errorf("document did not round-trip:\nput %#v\ngot %#v", item["doc"], out.Item["doc"])
	}
}

// docEqual is attrEqual with numbers compared by value (DynamoDB reads 1.50
// back as 1.5).
func docEqual(a, b types.AttributeValue) bool {
	switch x := a.(type) {
	case *types.AttributeValueMemberN:
		y, ok := b.(*types.AttributeValueMemberN)
		if !ok {
			return false
		}
		c, ok := transform.CompareNumbers(x.Value, y.Value)
		return ok && c == 0
	case *types.AttributeValueMemberM:
		y, ok := b.(*types.AttributeValueMemberM)
		if !ok || len(x.Value) != len(y.Value) {
			return false
		}
		for k, v := range x.Value {
			if w, ok := y.Value[k]; !ok || !docEqual(v, w) {
				return false
			}
		}
		return true
	case *types.AttributeValueMemberL:
		y, ok := b.(*types.AttributeValueMemberL)
		if !ok || len(x.Value) != len(y.Value) {
			return false
		}
		for i := range x.Value {
			if !docEqual(x.Value[i], y.Value[i]) {
				return false
			}
		}
		return true
	}
	return attrEqual(a, b)
}
