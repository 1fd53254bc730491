package load

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// VersionAttr is the attribute (type N) that orders the writes of an item.
const VersionAttr = "_version"

// Conditions of the version-guarded writes. A missing _version (no item, or
// an item written without one) never blocks a write.
const (
	condNewer    = "attribute_not_exists(#v) OR #v < :v"
	condNotNewer = "attribute_not_exists(#v) OR #v <= :v"
)

// PutIfNewer puts item with _version set to version (a decimal number)
// unless the stored item has a _version >= version. It returns applied =
// false, and no error, when the stored item is newer or equal. item is not
// modified. Throttling is retried by the SDK.
func (w *DynamoWriter) PutIfNewer(ctx context.Context, table string, item Item, version string) (bool, error) {
	if err := checkVersioned(table, version); err != nil {
		return false, fmt.Errorf("put %s: %w", table, err)
	}
	full := maps.Clone(item)
	full[VersionAttr] = &types.AttributeValueMemberN{Value: version}
	_, err := w.api.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:                 &table,
		Item:                      full,
		ConditionExpression:       aws.String(condNewer),
		ExpressionAttributeNames:  map[string]string{"#v": VersionAttr},
		ExpressionAttributeValues: versionValue(version),
	})
	return conditionalResult(err, "PutItem", table)
}

// DeleteIfNotNewer deletes the item with key unless the stored item has a
// _version > version. It returns applied = false, and no error, when the
// stored item is newer; deleting an absent item is applied. No tombstone is
// left: a later PutIfNewer with an older version can bring the item back.
func (w *DynamoWriter) DeleteIfNotNewer(ctx context.Context, table string, key Item, version string) (bool, error) {
	if err := checkVersioned(table, version); err != nil {
		return false, fmt.Errorf("delete %s: %w", table, err)
	}
	_, err := w.api.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName:                 &table,
		Key:                       key,
		ConditionExpression:       aws.String(condNotNewer),
		ExpressionAttributeNames:  map[string]string{"#v": VersionAttr},
		ExpressionAttributeValues: versionValue(version),
	})
	return conditionalResult(err, "DeleteItem", table)
}

// UpdateIfNewer sets the attributes of set, removes the attributes named in
// remove and sets _version to version on the item with key (creating it if
// absent), unless the stored item has a _version >= version; then it returns
// applied = false and no error. Key attributes in set must equal key (they
// are left out of the update); a _version in set is ignored. Every attribute
// name goes through an expression attribute name, so reserved words are fine.
func (w *DynamoWriter) UpdateIfNewer(ctx context.Context, table string, key, set Item, remove []string, version string) (bool, error) {
	if err := checkVersioned(table, version); err != nil {
		return false, fmt.Errorf("update %s: %w", table, err)
	}
	expr, names, values, err := updateExpression(key, set, remove)
	if err != nil {
		return false, fmt.Errorf("update %s: %w", table, err)
	}
	names["#v"] = VersionAttr
	values[":v"] = &types.AttributeValueMemberN{Value: version}
	_, err = w.api.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 &table,
		Key:                       key,
		UpdateExpression:          &expr,
		ConditionExpression:       aws.String(condNewer),
		ExpressionAttributeNames:  names,
		ExpressionAttributeValues: values,
	})
	return conditionalResult(err, "UpdateItem", table)
}

// updateExpression builds "SET #a0 = :a0, …, #v = :v REMOVE #a3, …" with
// attributes in name order (stable requests, stable tests).
func updateExpression(key, set Item, remove []string) (string, map[string]string, Item, error) {
	names := map[string]string{}
	values := Item{}
	var sets, removes []string
	var errs []error
	n := 0
	for _, name := range slices.Sorted(maps.Keys(set)) {
		if name == VersionAttr {
			continue
		}
		if kv, ok := key[name]; ok {
			if !attrEqual(kv, set[name]) {
				errs = append(errs, fmt.Errorf("set changes key attribute %q", name))
			}
			continue
		}
		p := strconv.Itoa(n)
		n++
		names["#a"+p] = name
		values[":a"+p] = set[name]
		sets = append(sets, "#a"+p+" = :a"+p)
	}
	sets = append(sets, "#v = :v")
	for _, name := range remove {
		_, inKey := key[name]
		_, inSet := set[name]
		switch {
		case inKey || name == VersionAttr:
			errs = append(errs, fmt.Errorf("cannot remove %q", name))
		case inSet:
			errs = append(errs, fmt.Errorf("attribute %q is both set and removed", name))
		default:
			p := strconv.Itoa(n)
			n++
			names["#a"+p] = name
			removes = append(removes, "#a"+p)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return "", nil, nil, fmt.Errorf("%w: %w", ErrInvalidRequest, err)
	}
	expr := "SET " + strings.Join(sets, ", ")
	if len(removes) > 0 {
		expr += " REMOVE " + strings.Join(removes, ", ")
	}
	return expr, names, values, nil
}

func checkVersioned(table, version string) error {
	var errs []error
	if table == "" {
		errs = append(errs, errors.New("no table"))
	}
	if version == "" {
		errs = append(errs, errors.New("no version"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidRequest, err)
	}
	return nil
}

func versionValue(version string) Item {
	return Item{":v": &types.AttributeValueMemberN{Value: version}}
}

// conditionalResult turns a failed condition into applied = false.
func conditionalResult(err error, op, table string) (bool, error) {
	if err == nil {
		return true, nil
	}
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) || apiErrorCode(err) == "ConditionalCheckFailedException" {
		return false, nil
	}
	return false, fmt.Errorf("%s %s: %w", op, table, err)
}

// UpdateExistingIfNewer is UpdateIfNewer that never creates an item: a partial
// update (an UPDATE that left unchanged TOAST values out) must not leave an
// item holding only some columns. exists is false when there was no item.
func (w *DynamoWriter) UpdateExistingIfNewer(ctx context.Context, table string, key, set Item, remove []string, version string) (applied, exists bool, err error) {
	if err := checkVersioned(table, version); err != nil {
		return false, false, fmt.Errorf("update %s: %w", table, err)
	}
	expr, names, values, err := updateExpression(key, set, remove)
	if err != nil {
		return false, false, fmt.Errorf("update %s: %w", table, err)
	}
	names["#v"] = VersionAttr
	values[":v"] = &types.AttributeValueMemberN{Value: version}
	_, err = w.api.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 &table,
		Key:                       key,
		UpdateExpression:          &expr,
		ConditionExpression:       aws.String("attribute_exists(#v) AND #v < :v"),
		ExpressionAttributeNames:  names,
		ExpressionAttributeValues: values,
	})
	applied, err = conditionalResult(err, "UpdateItem", table)
	if err != nil || applied {
		return applied, true, err
	}
	out, err := w.api.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: &table, Key: key, ConsistentRead: aws.Bool(true),
		ProjectionExpression: aws.String("#v"), ExpressionAttributeNames: map[string]string{"#v": VersionAttr},
	})
	if err != nil {
		return false, false, fmt.Errorf("GetItem %s: %w", table, err)
	}
	return false, out.Item != nil, nil
}
