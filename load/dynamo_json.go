package load

import (
	"bytes"
	"context"
	"fmt"
	"slices"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/ferry-migrate/ferry/load/ddbjson"
)

// Requests whose items are already in DynamoDB's JSON wire form
// (WriteRequest.PutJSON) are sent with a body ferry writes itself, through
// the SDK's client all the same: the call goes through the operation's
// whole middleware stack (endpoint resolution, credentials, SigV4 signing,
// retries of throttling and transport errors, response deserialization and
// typed errors), and only the step that turns the input into the body is
// replaced, per call, by [jsonBody].

// jsonBody is the client protocol of one call whose body is given: it lets
// the SDK's protocol prepare the request (method, path, X-Amz-Target,
// Content-Type) from a placeholder input, then sets body as the payload.
// Everything else, the response's deserialization included, is the SDK's.
type jsonBody struct {
	smithyhttp.ClientProtocol
	body []byte
}

// SerializeRequest implements smithyhttp.ClientProtocol.
func (p jsonBody) SerializeRequest(ctx context.Context, op *smithy.OperationSchema, in smithy.Serializable, req *smithyhttp.Request) error {
	if err := p.ClientProtocol.SerializeRequest(ctx, op, in, req); err != nil {
		return err
	}
	// A bytes.Reader is seekable: the SDK hashes it for the signature and
	// rewinds it for each retry.
	r, err := req.SetStream(bytes.NewReader(p.body))
	if err != nil {
		return fmt.Errorf("set request body: %w", err)
	}
	*req = *r
	return nil
}

// withJSONBody is the per-call option that sends body instead of the
// serialized input.
func withJSONBody(body []byte) func(*dynamodb.Options) {
	return func(o *dynamodb.Options) {
		o.Protocol = jsonBody{ClientProtocol: o.Protocol, body: body}
	}
}

// batchWriteJSON sends one BatchWriteItem of puts in the wire form. The
// input carries the tables with no requests: the SDK validates it and binds
// the endpoint parameters (the tables' ARNs) from it, the body is ferry's.
func batchWriteJSON(ctx context.Context, api dynamoAPI, reqs []indexed) (*dynamodb.BatchWriteItemOutput, error) {
	in := &dynamodb.BatchWriteItemInput{RequestItems: make(map[string][]types.WriteRequest, 1)}
	for _, r := range reqs {
		in.RequestItems[r.req.Table] = nil
	}
	return api.BatchWriteItem(ctx, in, withJSONBody(batchBody(reqs)))
}

// batchBody writes {"RequestItems":{"<table>":[{"PutRequest":{"Item":…}},…],…}},
// the requests of each table in their order.
func batchBody(reqs []indexed) []byte {
	const perItem = len(`{"PutRequest":{"Item":}},`)
	n := len(`{"RequestItems":{}}`)
	for _, r := range reqs {
		n += len(r.req.PutJSON.JSON) + perItem
	}
	tables := make([]string, 0, 1)
	for _, r := range reqs {
		if !slices.Contains(tables, r.req.Table) {
			tables = append(tables, r.req.Table)
			n += len(r.req.Table) + 16
		}
	}
	body := make([]byte, 0, n)
	body = append(body, `{"RequestItems":{`...)
	for ti, table := range tables {
		if ti > 0 {
			body = append(body, ',')
		}
		body = ddbjson.AppendName(body, table)
		body = append(body, '[')
		first := true
		for _, r := range reqs {
			if r.req.Table != table {
				continue
			}
			if !first {
				body = append(body, ',')
			}
			first = false
			body = append(body, `{"PutRequest":{"Item":`...)
			body = append(body, r.req.PutJSON.JSON...)
			body = append(body, "}}"...)
		}
		body = append(body, ']')
	}
	return append(body, "}}"...)
}

// putItemJSON writes one item in the wire form with PutItem.
func putItemJSON(ctx context.Context, api dynamoAPI, r WriteRequest) error {
	body := make([]byte, 0, len(r.PutJSON.JSON)+len(r.Table)+32)
	body = append(body, `{"TableName":`...)
	body = ddbjson.AppendString(body, r.Table)
	body = append(body, `,"Item":`...)
	body = append(body, r.PutJSON.JSON...)
	body = append(body, '}')
	table := r.Table
	_, err := api.PutItem(ctx, &dynamodb.PutItemInput{TableName: &table, Item: Item{}}, withJSONBody(body))
	return err
}

// keyMatches reports whether an item DynamoDB returned (an unprocessed put)
// is the item of a put in the wire form: inside a batch keys are distinct,
// so the key identifies it.
func keyMatches(it ddbjson.Item, got Item) bool {
	if !attrIsS(got[it.PK.Name], it.PK.Value) {
		return false
	}
	return it.SK.Name == "" || attrIsS(got[it.SK.Name], it.SK.Value)
}

func attrIsS(v types.AttributeValue, want string) bool {
	s, ok := v.(*types.AttributeValueMemberS)
	return ok && s.Value == want
}
