// Package ddbjsontest holds the SDK's own serialization of DynamoDB items
// for tests: the oracle that ferry's wire-form items are held against.
package ddbjsontest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

var errCaptured = errors.New("captured")

// capture is an HTTP client that keeps the last request's body and sends
// nothing.
type capture struct {
	mu   sync.Mutex
	body []byte
}

func (c *capture) Do(r *http.Request) (*http.Response, error) {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.body = b
	c.mu.Unlock()
	return nil, errCaptured
}

var (
	once   sync.Once
	client *dynamodb.Client
	cap_   = &capture{}
	mu     sync.Mutex
)

// SDKItem returns the "Item" member of the body the SDK sends for a PutItem
// of item: the SDK's wire form of the item (attribute order is the SDK's,
// that is Go map order).
func SDKItem(item map[string]types.AttributeValue) ([]byte, error) {
	once.Do(func() {
		client = dynamodb.New(dynamodb.Options{
			Region:           "us-east-1",
			Credentials:      aws.AnonymousCredentials{},
			BaseEndpoint:     aws.String("http://127.0.0.1:1"),
			HTTPClient:       cap_,
			RetryMaxAttempts: 1,
		})
	})
	mu.Lock()
	defer mu.Unlock()
	_, err := client.PutItem(context.Background(), &dynamodb.PutItemInput{TableName: aws.String("t"), Item: item})
	if !errors.Is(err, errCaptured) {
		return nil, fmt.Errorf("PutItem did not reach the HTTP client: %v", err)
	}
	var body struct{ Item json.RawMessage }
	if err := json.Unmarshal(cap_.body, &body); err != nil {
		return nil, fmt.Errorf("SDK body %q: %w", cap_.body, err)
	}
	return body.Item, nil
}

// SDKValue returns the SDK's wire form of one attribute value.
func SDKValue(v types.AttributeValue) ([]byte, error) {
	item, err := SDKItem(map[string]types.AttributeValue{"v": v})
	if err != nil {
		return nil, err
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(item, &m); err != nil {
		return nil, err
	}
	return m["v"], nil
}

// Canonical rewrites a JSON document with the members of every object in
// sorted order and without whitespace, keeping every scalar (strings with
// their escapes, numbers) byte for byte: two wire forms are the same item
// exactly when their canonical forms are equal.
func Canonical(data []byte) ([]byte, error) {
	return appendCanonical(nil, data)
}

func appendCanonical(dst, data []byte) ([]byte, error) {
	data = trimSpace(data)
	if len(data) == 0 {
		return dst, errors.New("empty JSON value")
	}
	switch data[0] {
	case '{':
		var m map[string]json.RawMessage
		if err := json.Unmarshal(data, &m); err != nil {
			return dst, err
		}
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		dst = append(dst, '{')
		for i, k := range keys {
			if i > 0 {
				dst = append(dst, ',')
			}
			kb, _ := json.Marshal(k)
			dst = append(dst, kb...)
			dst = append(dst, ':')
			var err error
			if dst, err = appendCanonical(dst, m[k]); err != nil {
				return dst, err
			}
		}
		return append(dst, '}'), nil
	case '[':
		var l []json.RawMessage
		if err := json.Unmarshal(data, &l); err != nil {
			return dst, err
		}
		dst = append(dst, '[')
		for i, e := range l {
			if i > 0 {
				dst = append(dst, ',')
			}
			var err error
			if dst, err = appendCanonical(dst, e); err != nil {
				return dst, err
			}
		}
		return append(dst, ']'), nil
	}
	if !json.Valid(data) {
		return dst, fmt.Errorf("invalid JSON value %q", data)
	}
	return append(dst, data...), nil
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\n' || b[0] == '\t' || b[0] == '\r') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\n' || b[len(b)-1] == '\t' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}
