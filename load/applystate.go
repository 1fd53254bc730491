package load

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// The state the stream appliers (the Lambda function of `sync --apply
// stream`) share in the control table, beside the ControlStore's values:
//
//   - a fence per source table: the version of the newest TRUNCATE applied
//     (attribute "f") and the newest one whose sweep of the table's items has
//     finished ("s"); both only ever grow (conditional writes);
//   - a position per stream shard: the newest source version an invocation
//     applied from it ("v", growing), the shard's last sequence number seen
//     with it ("q"), when ("t", Unix ms) and the records' iterator age then
//     ("a", ms);
//   - the barriers applied (transform.BarrierRecord): one item per barrier
//     id, written by the applier that applied it, read and removed by the
//     verify that published it.
const (
	fenceID       = "applier#fence"
	barrierID     = "applier#barrier"
	shardIDPrefix = "applier#shard#"
	attrFence     = "f"
	attrSwept     = "s"
	attrVersion   = "v"
	attrSeq       = "q"
	attrAt        = "t"
	attrAge       = "a"
)

// Fence is what the appliers know of a table's TRUNCATEs (versions; "" for
// none).
type Fence struct {
	Truncated string // the newest TRUNCATE's version
	Swept     string // the newest TRUNCATE whose sweep finished
}

// ApplyState reads and writes the appliers' shared state.
type ApplyState struct {
	client *dynamodb.Client
	table  string
}

// NewApplyState returns the state kept in control table table.
func NewApplyState(client *dynamodb.Client, table string) *ApplyState {
	if table == "" {
		table = DefaultControlTable
	}
	return &ApplyState{client: client, table: table}
}

// Fence reads table's fence (strongly consistent).
func (a *ApplyState) Fence(ctx context.Context, table string) (Fence, error) {
	out, err := a.client.GetItem(ctx, &dynamodb.GetItemInput{TableName: &a.table, Key: controlKey(fenceID, table), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return Fence{}, fmt.Errorf("control %s: fence of %s: %w", a.table, table, err)
	}
	return Fence{Truncated: numberAttr(out.Item, attrFence), Swept: numberAttr(out.Item, attrSwept)}, nil
}

// RaiseFence records a TRUNCATE of table at version: the fence rises to it
// unless it is already as high (then nothing changes).
func (a *ApplyState) RaiseFence(ctx context.Context, table, version string) error {
	return a.raise(ctx, controlKey(fenceID, table), attrFence, version, nil)
}

// MarkSwept records that the sweep of table's items for the TRUNCATE at
// version finished.
func (a *ApplyState) MarkSwept(ctx context.Context, table, version string) error {
	return a.raise(ctx, controlKey(fenceID, table), attrSwept, version, nil)
}

// ShardPosition is one stream shard's applied position.
type ShardPosition struct {
	Stream, Shard string
	Version       string    // the newest source version applied from the shard
	Sequence      string    // the shard's sequence number applied with it
	At            time.Time // when
	IteratorAge   time.Duration
}

// SaveShardPosition records that the records of a shard up to p.Version were
// applied (by one invocation; with a ParallelizationFactor above 1 others
// may still hold older ones). The position only grows.
func (a *ApplyState) SaveShardPosition(ctx context.Context, p ShardPosition) error {
	extra := map[string]types.AttributeValue{
		attrSeq: &types.AttributeValueMemberS{Value: p.Sequence},
		attrAt:  &types.AttributeValueMemberN{Value: strconv.FormatInt(p.At.UnixMilli(), 10)},
		attrAge: &types.AttributeValueMemberN{Value: strconv.FormatInt(p.IteratorAge.Milliseconds(), 10)},
	}
	return a.raise(ctx, controlKey(shardIDPrefix+p.Stream, p.Shard), attrVersion, p.Version, extra)
}

// ShardPositions lists the recorded positions of stream's shards.
func (a *ApplyState) ShardPositions(ctx context.Context, stream string) ([]ShardPosition, error) {
	var out []ShardPosition
	p := dynamodb.NewQueryPaginator(a.client, &dynamodb.QueryInput{
		TableName:                 &a.table,
		KeyConditionExpression:    aws.String("#id = :id"),
		ExpressionAttributeNames:  map[string]string{"#id": controlID},
		ExpressionAttributeValues: Item{":id": &types.AttributeValueMemberS{Value: shardIDPrefix + stream}},
		ConsistentRead:            aws.Bool(true),
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("control %s: shard positions of %s: %w", a.table, stream, err)
		}
		for _, it := range page.Items {
			sp := ShardPosition{Stream: stream, Version: numberAttr(it, attrVersion)}
			if v, ok := it[controlSK].(*types.AttributeValueMemberS); ok {
				sp.Shard = v.Value
			}
			if v, ok := it[attrSeq].(*types.AttributeValueMemberS); ok {
				sp.Sequence = v.Value
			}
			if ms, err := strconv.ParseInt(numberAttr(it, attrAt), 10, 64); err == nil {
				sp.At = time.UnixMilli(ms)
			}
			if ms, err := strconv.ParseInt(numberAttr(it, attrAge), 10, 64); err == nil {
				sp.IteratorAge = time.Duration(ms) * time.Millisecond
			}
			out = append(out, sp)
		}
	}
	return out, nil
}

// MarkBarrier records that the barrier record id was applied (every record
// before it in its shard's partition key order is).
func (a *ApplyState) MarkBarrier(ctx context.Context, id string, at time.Time) error {
	item := controlKey(barrierID, id)
	item[attrAt] = &types.AttributeValueMemberN{Value: strconv.FormatInt(at.UnixMilli(), 10)}
	if _, err := a.client.PutItem(ctx, &dynamodb.PutItemInput{TableName: &a.table, Item: item}); err != nil {
		return fmt.Errorf("control %s: barrier %s: %w", a.table, id, err)
	}
	return nil
}

// BarrierApplied reports whether an applier recorded barrier id (strongly
// consistent read).
func (a *ApplyState) BarrierApplied(ctx context.Context, id string) (bool, error) {
	out, err := a.client.GetItem(ctx, &dynamodb.GetItemInput{TableName: &a.table, Key: controlKey(barrierID, id), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return false, fmt.Errorf("control %s: barrier %s: %w", a.table, id, err)
	}
	return out.Item != nil, nil
}

// ForgetBarrier removes barrier id's record (the verify that waited for it
// is done with it; an applier delivered the barrier again writes it again,
// which a teardown removes).
func (a *ApplyState) ForgetBarrier(ctx context.Context, id string) error {
	if _, err := a.client.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: &a.table, Key: controlKey(barrierID, id)}); err != nil {
		return fmt.Errorf("control %s: barrier %s: %w", a.table, id, err)
	}
	return nil
}

// raise sets number attribute attr of the item at key to v (and the extra
// attributes with it) unless it already holds v or more.
func (a *ApplyState) raise(ctx context.Context, key Item, attr, v string, extra map[string]types.AttributeValue) error {
	if !isVersion(v) {
		return fmt.Errorf("control %s: %w: %q is not a version", a.table, ErrInvalidRequest, v)
	}
	names := map[string]string{"#a": attr}
	values := map[string]types.AttributeValue{":v": &types.AttributeValueMemberN{Value: v}}
	expr := "SET #a = :v"
	i := 0
	for name, val := range extra {
		n, p := fmt.Sprintf("#x%d", i), fmt.Sprintf(":x%d", i)
		names[n], values[p] = name, val
		expr += ", " + n + " = " + p
		i++
	}
	_, err := a.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: &a.table, Key: key, UpdateExpression: &expr,
		ConditionExpression:       aws.String("attribute_not_exists(#a) OR #a < :v"),
		ExpressionAttributeNames:  names,
		ExpressionAttributeValues: values,
	})
	if _, err := conditionalResult(err, "UpdateItem", a.table); err != nil {
		return fmt.Errorf("control: %w", err)
	}
	return nil
}

func numberAttr(item Item, name string) string {
	if v, ok := item[name].(*types.AttributeValueMemberN); ok {
		return v.Value
	}
	return ""
}

// isVersion reports whether v is a version: a decimal number DynamoDB's N holds.
func isVersion(v string) bool {
	if v == "" || len(v) > 38 {
		return false
	}
	for i := 0; i < len(v); i++ {
		if v[i] < '0' || v[i] > '9' {
			return false
		}
	}
	return true
}

// StateIDs are the control table ids of the appliers' state for streams (the
// fences of every table, the barriers, the streams' shard positions), for a
// teardown.
func StateIDs(streams []string) []string {
	ids := []string{fenceID, barrierID}
	for _, s := range streams {
		ids = append(ids, shardIDPrefix+s)
	}
	return ids
}
