package load

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/smithy-go/middleware"

	"github.com/ferry-migrate/ferry/load/ddbjson"
)

// call is one request the fake DynamoDB endpoint received.
type call struct {
	target, contentType, auth string
	body                      []byte
}

// sdkWireClient is a real SDK client talking to an HTTP handler that
// answers each call with the next of replies (status, body); it also
// records the payload hash each attempt was signed with.
func sdkWireClient(t *testing.T, replies ...[2]string) (*dynamodb.Client, *[]call, *[]string) {
	t.Helper()
	var mu sync.Mutex
	var calls []call
	var hashes []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		n := len(calls)
		calls = append(calls, call{r.Header.Get("X-Amz-Target"), r.Header.Get("Content-Type"), r.Header.Get("Authorization"), body})
		mu.Unlock()
		if n >= len(replies) {
			t.Errorf("call %d: no reply left", n+1)
			w.WriteHeader(500)
			return
		}
		w.Header().Set("Content-Type", "application/x-amz-json-1.0")
		status := map[string]int{"200": 200, "400": 400, "500": 500}[replies[n][0]]
		w.WriteHeader(status)
		io.WriteString(w, replies[n][1])
	}))
	t.Cleanup(srv.Close)
	signed := middleware.FinalizeMiddlewareFunc("recordPayloadHash", func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
		mu.Lock()
		hashes = append(hashes, v4.GetPayloadHash(ctx))
		mu.Unlock()
		return next.HandleFinalize(ctx, in)
	})
	client := dynamodb.New(dynamodb.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(srv.URL),
		Credentials:  credentials.NewStaticCredentialsProvider("AKID", "SECRET", ""),
		APIOptions: []func(*middleware.Stack) error{func(s *middleware.Stack) error {
			return s.Finalize.Insert(signed, "Signing", middleware.After)
		}},
	})
	return client, &calls, &hashes
}

func wirePut(table, pk string, seq int) WriteRequest {
	data := ddbjson.AppendName([]byte("{"), "pk")
	data = ddbjson.AppendS(data, pk)
	data = append(data, ',')
	data = ddbjson.AppendName(data, "seq")
	data = ddbjson.AppendN(data, strings.Repeat("9", seq))
	data = append(data, '}')
	return WriteRequest{Table: table, KeyID: pk, Ref: seq, PutJSON: ddbjson.Item{JSON: data, PK: ddbjson.KeyAttr{Name: "pk", Value: pk}}}
}

func sha(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// TestJSONBodyThroughSDK: a batch in the wire form goes through the SDK's
// client: its body is ferry's, signed (the payload hash is the body's),
// retried by the SDK after a server error with the same body, and its
// UnprocessedItems (parsed by the SDK) are sent again by the writer.
func TestJSONBodyThroughSDK(t *testing.T) {
	a, b := wirePut("t1", "A", 1), wirePut("t2", `B"<é>`, 2)
	unprocessedB := `{"UnprocessedItems":{"t2":[{"PutRequest":{"Item":` + string(b.PutJSON.JSON) + `}}]}}`
	client, calls, hashes := sdkWireClient(t,
		[2]string{"500", `{"__type":"com.amazonaws.dynamodb.v20120810#InternalServerError","message":"boom"}`},
		[2]string{"200", unprocessedB},
		[2]string{"200", `{"UnprocessedItems":{}}`})
	w := NewDynamoWriter(client, DynamoConfig{Logger: testLogger(t), Backoff: fastBackoff()})
	failures, err := w.Write(context.Background(), []WriteRequest{a, b})
	if err != nil || len(failures) > 0 {
		t.Fatalf("Write: %v, %v", failures, err)
	}
	if st := w.Stats(); st.Written != 2 || st.Retries != 1 || st.Batches != 2 {
		t.Errorf("stats %+v, want 2 written, 1 retry, 2 batches", st)
	}
	if len(*calls) != 3 {
		t.Fatalf("%d calls, want 3", len(*calls))
	}
	want := []string{
		`{"RequestItems":{"t1":[{"PutRequest":{"Item":` + string(a.PutJSON.JSON) + `}}],"t2":[{"PutRequest":{"Item":` + string(b.PutJSON.JSON) + `}}]}}`,
		"", // the SDK's retry: the same body
		`{"RequestItems":{"t2":[{"PutRequest":{"Item":` + string(b.PutJSON.JSON) + `}}]}}`,
	}
	want[1] = want[0]
	for i, c := range *calls {
		if string(c.body) != want[i] {
			t.Errorf("call %d body\n got %s\nwant %s", i+1, c.body, want[i])
		}
		if !json.Valid(c.body) {
			t.Errorf("call %d: body is not JSON", i+1)
		}
		if c.target != "DynamoDB_20120810.BatchWriteItem" || c.contentType != "application/x-amz-json-1.0" {
			t.Errorf("call %d: X-Amz-Target %q, Content-Type %q", i+1, c.target, c.contentType)
		}
		if !strings.HasPrefix(c.auth, "AWS4-HMAC-SHA256 Credential=AKID/") {
			t.Errorf("call %d: Authorization %q", i+1, c.auth)
		}
		if i < len(*hashes) && (*hashes)[i] != sha(c.body) {
			t.Errorf("call %d: signed payload hash %s, body's %s", i+1, (*hashes)[i], sha(c.body))
		}
	}
	if len(*hashes) != 3 {
		t.Errorf("%d signed attempts, want 3", len(*hashes))
	}
}

// TestJSONBodyRejectedItem: a batch DynamoDB refuses as invalid is written
// item by item with PutItem (the body ferry's); the item still refused is
// a Failure, the other is written.
func TestJSONBodyRejectedItem(t *testing.T) {
	a, b := wirePut("t1", "A", 1), wirePut("t1", "B", 2)
	invalid := `{"__type":"com.amazon.coral.validate#ValidationException","message":"Item size has exceeded the maximum allowed size"}`
	client, calls, _ := sdkWireClient(t,
		[2]string{"400", invalid},
		[2]string{"400", invalid},
		[2]string{"200", `{}`})
	w := NewDynamoWriter(client, DynamoConfig{Logger: testLogger(t), Backoff: fastBackoff()})
	failures, err := w.Write(context.Background(), []WriteRequest{a, b})
	if err != nil {
		t.Fatal(err)
	}
	if len(failures) != 1 || failures[0].Req.Ref != 1 || !isValidation(failures[0].Err) {
		t.Fatalf("failures %v, want item A with a ValidationException", failures)
	}
	if st := w.Stats(); st.Written != 1 {
		t.Errorf("stats %+v, want 1 written", st)
	}
	for i, want := range []struct{ target, body string }{
		{"DynamoDB_20120810.BatchWriteItem", ""},
		{"DynamoDB_20120810.PutItem", `{"TableName":"t1","Item":` + string(a.PutJSON.JSON) + `}`},
		{"DynamoDB_20120810.PutItem", `{"TableName":"t1","Item":` + string(b.PutJSON.JSON) + `}`},
	} {
		c := (*calls)[i]
		if c.target != want.target || want.body != "" && string(c.body) != want.body {
			t.Errorf("call %d: %s %s, want %s %s", i+1, c.target, c.body, want.target, want.body)
		}
	}
}

func TestDynamoWriteInvalidWire(t *testing.T) {
	w := newDynamoWriter(newFakeDynamo(0), DynamoConfig{Logger: testLogger(t), Backoff: fastBackoff()})
	both := wirePut("t", "1", 1)
	both.Put = Item{}
	noKey := wirePut("t", "2", 2)
	noKey.PutJSON.PK = ddbjson.KeyAttr{}
	notObject := wirePut("t", "3", 3)
	notObject.PutJSON.JSON = []byte(`[]`)
	failures, err := w.Write(context.Background(), []WriteRequest{both, noKey, notObject, wirePut("t", "4", 4)})
	if err != nil {
		t.Fatal(err)
	}
	if len(failures) != 3 {
		t.Fatalf("%d failures, want 3: %v", len(failures), failures)
	}
	for _, f := range failures {
		if !errors.Is(f.Err, ErrInvalidRequest) {
			t.Errorf("%v does not wrap ErrInvalidRequest", f.Err)
		}
	}
}

func TestUnprocessedMatchingWire(t *testing.T) {
	var pending []indexed
	for i := range 4 {
		pending = append(pending, indexed{i, wire(t, putReq("t", i, i))})
	}
	um := requestItems([]indexed{{3, putReq("t", 3, 3)}, {1, putReq("t", 1, 1)}})
	if got := unprocessed(pending, um); len(got) != 2 || got[0].i != 1 || got[1].i != 3 {
		t.Fatalf("unprocessed = %v, want requests 1, 3", got)
	}
	other := requestItems([]indexed{{1, putReq("u", 1, 1)}}) // another table: no match
	if got := unprocessed(pending, other); len(got) != len(pending) {
		t.Fatalf("unmatched entry: %d pending, want all %d", len(got), len(pending))
	}
}

func TestBatchesKeepWireApart(t *testing.T) {
	var reqs []indexed
	for i := range 60 {
		r := putReq("t", i, i)
		if i%2 == 0 {
			r = wire(t, r)
		}
		reqs = append(reqs, indexed{i, r})
	}
	bs := batches(reqs)
	total := 0
	for _, b := range bs {
		if len(b) > MaxBatchWriteItems {
			t.Errorf("batch of %d", len(b))
		}
		for _, r := range b {
			if (r.req.PutJSON.JSON != nil) != (b[0].req.PutJSON.JSON != nil) {
				t.Fatalf("a batch mixes the forms")
			}
		}
		total += len(b)
	}
	if total != 60 || len(bs) != 4 {
		t.Errorf("%d requests in %d batches, want 60 in 4", total, len(bs))
	}
}
