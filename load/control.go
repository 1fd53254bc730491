package load

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// DefaultControlTable is the control store's table unless told otherwise.
const DefaultControlTable = "ferry_control"

// Control table attributes: partition key, sort key, value.
const (
	controlID    = "id"
	controlSK    = "sk"
	controlValue = "v"
)

// ControlStore is a small durable key-value store in a DynamoDB table
// (partition key "id", sort key "sk", both S; the value in B attribute "v"),
// for checkpoints and other control data. Reads are strongly consistent.
// It is safe for concurrent use; a Put replaces the value unconditionally.
type ControlStore struct {
	client *dynamodb.Client
	table  string
}

// NewControlStore returns a store in table ("" means DefaultControlTable).
func NewControlStore(client *dynamodb.Client, table string) *ControlStore {
	if table == "" {
		table = DefaultControlTable
	}
	return &ControlStore{client: client, table: table}
}

// Table returns the store's table name.
func (c *ControlStore) Table() string { return c.table }

// Ensure creates the table (on-demand) if it is missing and waits until it
// is ACTIVE; an existing table with another key schema is an error.
func (c *ControlStore) Ensure(ctx context.Context) error {
	return EnsureTables(ctx, c.client, []TableSpec{{Name: c.table, Key: KeySchema{PK: controlID, SK: controlSK}}})
}

func (c *ControlStore) key(id, sk string) (Item, error) {
	if id == "" || sk == "" {
		return nil, fmt.Errorf("control %s: %w: empty id or sk (id %q, sk %q)", c.table, ErrInvalidRequest, id, sk)
	}
	return controlKey(id, sk), nil
}

// controlKey is the key of the control table's item (id, sk), shared by
// [ControlStore] and [ApplyState]. It does not check for empty parts.
func controlKey(id, sk string) Item {
	return Item{
		controlID: &types.AttributeValueMemberS{Value: id},
		controlSK: &types.AttributeValueMemberS{Value: sk},
	}
}

// Put stores value under (id, sk), replacing any previous value. An empty
// value is stored without the "v" attribute and read back as empty.
func (c *ControlStore) Put(ctx context.Context, id, sk string, value []byte) error {
	item, err := c.key(id, sk)
	if err != nil {
		return err
	}
	if len(value) > 0 {
		item[controlValue] = &types.AttributeValueMemberB{Value: value}
	}
	if _, err := c.client.PutItem(ctx, &dynamodb.PutItemInput{TableName: &c.table, Item: item}); err != nil {
		return fmt.Errorf("control %s: put %s/%s: %w", c.table, id, sk, err)
	}
	return nil
}

// Get reads the value under (id, sk); found is false when there is none.
func (c *ControlStore) Get(ctx context.Context, id, sk string) (value []byte, found bool, err error) {
	key, err := c.key(id, sk)
	if err != nil {
		return nil, false, err
	}
	out, err := c.client.GetItem(ctx, &dynamodb.GetItemInput{TableName: &c.table, Key: key, ConsistentRead: aws.Bool(true)})
	if err != nil {
		return nil, false, fmt.Errorf("control %s: get %s/%s: %w", c.table, id, sk, err)
	}
	if out.Item == nil {
		return nil, false, nil
	}
	v, err := itemValue(out.Item)
	if err != nil {
		return nil, false, fmt.Errorf("control %s: get %s/%s: %w", c.table, id, sk, err)
	}
	return v, true, nil
}

func itemValue(item Item) ([]byte, error) {
	switch v := item[controlValue].(type) {
	case nil:
		return []byte{}, nil
	case *types.AttributeValueMemberB:
		return v.Value, nil
	default:
		return nil, fmt.Errorf("attribute %q is %T, want B", controlValue, v)
	}
}

// List returns every value under id, by sk.
func (c *ControlStore) List(ctx context.Context, id string) (map[string][]byte, error) {
	values := map[string][]byte{}
	err := c.query(ctx, id, false, func(item Item) error {
		sk, ok := item[controlSK].(*types.AttributeValueMemberS)
		if !ok {
			return fmt.Errorf("item without S attribute %q", controlSK)
		}
		v, err := itemValue(item)
		if err != nil {
			return fmt.Errorf("sk %s: %w", sk.Value, err)
		}
		values[sk.Value] = v
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("control %s: list %s: %w", c.table, id, err)
	}
	return values, nil
}

// query calls fn for every item under id (only the key when keysOnly),
// following pagination, with consistent reads.
func (c *ControlStore) query(ctx context.Context, id string, keysOnly bool, fn func(Item) error) error {
	if id == "" {
		return fmt.Errorf("%w: empty id", ErrInvalidRequest)
	}
	in := &dynamodb.QueryInput{
		TableName:                 &c.table,
		KeyConditionExpression:    aws.String("#id = :id"),
		ExpressionAttributeNames:  map[string]string{"#id": controlID},
		ExpressionAttributeValues: Item{":id": &types.AttributeValueMemberS{Value: id}},
		ConsistentRead:            aws.Bool(true),
	}
	if keysOnly {
		in.ProjectionExpression = aws.String("#id, #sk")
		in.ExpressionAttributeNames["#sk"] = controlSK
	}
	p := dynamodb.NewQueryPaginator(c.client, in)
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return err
		}
		for _, item := range page.Items {
			if err := fn(item); err != nil {
				return err
			}
		}
	}
	return nil
}

// Delete removes the value under (id, sk); deleting nothing is no error.
func (c *ControlStore) Delete(ctx context.Context, id, sk string) error {
	key, err := c.key(id, sk)
	if err != nil {
		return err
	}
	if _, err := c.client.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: &c.table, Key: key}); err != nil {
		return fmt.Errorf("control %s: delete %s/%s: %w", c.table, id, sk, err)
	}
	return nil
}

// DeleteAll removes every value under id.
func (c *ControlStore) DeleteAll(ctx context.Context, id string) error {
	var reqs []WriteRequest
	err := c.query(ctx, id, true, func(key Item) error {
		sk, _ := key[controlSK].(*types.AttributeValueMemberS)
		if sk == nil {
			return fmt.Errorf("item without S attribute %q", controlSK)
		}
		reqs = append(reqs, WriteRequest{Table: c.table, KeyID: sk.Value, Delete: key})
		return nil
	})
	if err != nil {
		return fmt.Errorf("control %s: delete all %s: %w", c.table, id, err)
	}
	failures, err := newDynamoWriter(c.client, DynamoConfig{}).Write(ctx, reqs)
	if err == nil && len(failures) > 0 {
		err = failures[0].Err
	}
	if err != nil {
		return fmt.Errorf("control %s: delete all %s: %w", c.table, id, err)
	}
	return nil
}
