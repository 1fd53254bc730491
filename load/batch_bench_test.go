package load

import (
	"context"
	"strconv"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
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
