package load

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"golang.org/x/sync/errgroup"
)

// benchRequests are n puts to a table, every tenth key written twice (so
// that batching must split rounds to keep per-key order).
func benchRequests(n int) []WriteRequest {
	reqs := make([]WriteRequest, 0, n)
	for i := range n {
		k := i
		if i%10 == 9 {
			k = i - 1
		}
		id := "RENTAL#" + strconv.Itoa(k)
		reqs = append(reqs, WriteRequest{Table: "pagila", KeyID: id + "\x00RENTAL", Put: Item{
			"pk": &types.AttributeValueMemberS{Value: id}, "sk": &types.AttributeValueMemberS{Value: "RENTAL"},
			"rental_id": &types.AttributeValueMemberN{Value: strconv.Itoa(k)}, "seq": &types.AttributeValueMemberN{Value: strconv.Itoa(i)},
		}})
	}
	return reqs
}

// BenchmarkSplitRounds: grouping writes into rounds of distinct keys, per write.
func BenchmarkSplitRounds(b *testing.B) {
	reqs := benchRequests(10000)
	in := make([]indexed, len(reqs))
	for i, r := range reqs {
		in[i] = indexed{req: r}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i += len(in) {
		if len(splitRounds(in)) != 2 {
			b.Fatal("want 2 rounds")
		}
	}
}

// BenchmarkDynamoWriterBatching: the writer's own cost (rounds, batches of 25,
// request building, bookkeeping) against an in-memory fake, per write.
func BenchmarkDynamoWriterBatching(b *testing.B) {
	reqs := benchRequests(10000)
	w := newDynamoWriter(newFakeDynamo(0), DynamoConfig{Workers: 8})
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i += len(reqs) {
		if f, err := w.Write(ctx, reqs); err != nil || len(f) > 0 {
			b.Fatal(f, err)
		}
	}
}

// benchWire is benchRequests with every put in the wire form.
func benchWire(b *testing.B, n int) []WriteRequest {
	reqs := benchRequests(n)
	for i := range reqs {
		reqs[i] = wire(b, reqs[i])
	}
	return reqs
}

// BenchmarkDynamoWriterSDK* are the writer's whole client-side cost per
// write, through the real SDK client (serialization or ferry's body,
// signing, HTTP, response parsing) against a local endpoint that accepts
// everything at once: the items as SDK maps (serialized by the SDK) and in
// the wire form (the backfill's, sent as written). The bare loop is the
// same calls without the writer (BenchmarkBareBatchWriteSDK).
func BenchmarkDynamoWriterSDKMaps(b *testing.B) {
	benchWriterSDK(b, benchRequests(10000))
}

func BenchmarkDynamoWriterSDKWire(b *testing.B) {
	benchWriterSDK(b, benchWire(b, 10000))
}

func benchWriterSDK(b *testing.B, reqs []WriteRequest) {
	client := acceptingClient(b)
	w := NewDynamoWriter(client, DynamoConfig{Workers: 8})
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i += len(reqs) {
		if f, err := w.Write(ctx, reqs); err != nil || len(f) > 0 {
			b.Fatal(f, err)
		}
	}
}

// BenchmarkBareBatchWriteSDK: 8 goroutines sending BatchWriteItem calls of
// 25 SDK items through the same client, nothing else: the floor of the
// writer with SDK items.
func BenchmarkBareBatchWriteSDK(b *testing.B) {
	reqs := benchRequests(10000)
	var batches [][]types.WriteRequest
	for i := 0; i < len(reqs); i += MaxBatchWriteItems {
		var batch []types.WriteRequest
		for _, r := range reqs[i:min(i+MaxBatchWriteItems, len(reqs))] {
			batch = append(batch, types.WriteRequest{PutRequest: &types.PutRequest{Item: r.Put}})
		}
		batches = append(batches, batch)
	}
	client := acceptingClient(b)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i += len(reqs) {
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(8)
		for _, batch := range batches {
			g.Go(func() error {
				_, err := client.BatchWriteItem(gctx, &dynamodb.BatchWriteItemInput{RequestItems: map[string][]types.WriteRequest{"pagila": batch}})
				return err
			})
		}
		if err := g.Wait(); err != nil {
			b.Fatal(err)
		}
	}
}

// acceptingClient is an SDK client whose endpoint answers every call with
// "nothing unprocessed" after reading the request.
func acceptingClient(b *testing.B) *dynamodb.Client {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/x-amz-json-1.0")
		io.WriteString(w, `{"UnprocessedItems":{}}`)
	}))
	b.Cleanup(srv.Close)
	return dynamodb.New(dynamodb.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(srv.URL),
		Credentials:  credentials.NewStaticCredentialsProvider("AKID", "SECRET", ""),
		HTTPClient:   &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}},
	})
}
