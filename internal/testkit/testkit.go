// Package testkit holds what integration tests share: isolated copies of the
// Pagila mapping, and readers that fetch everything a run wrote to DynamoDB and
// Kinesis so tests can compare it with the source.
package testkit

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	ktypes "github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// Name returns prefix followed by random hex, for isolated slots, tables, streams.
func Name(prefix string) string {
	b := make([]byte, 5)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// RepoRoot is the repository's root directory.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// PagilaMapping writes a copy of mappings/pagila.yaml whose DynamoDB table and
// Kinesis stream are the given names, and returns its path.
func PagilaMapping(t testing.TB, target, stream string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(RepoRoot(), "mappings", "pagila.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	s := strings.Replace(string(data), "\n  target: pagila\n", "\n  target: "+target+"\n", 1)
	s = strings.Replace(s, "\n  stream: pagila-changes\n", "\n  stream: "+stream+"\n", 1)
	if s == string(data) {
		t.Fatal("pagila.yaml: defaults.target/stream lines not found")
	}
	path := filepath.Join(t.TempDir(), "pagila.yaml")
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// ScanAll reads every item of a DynamoDB table with a parallel scan.
func ScanAll(ctx context.Context, client *dynamodb.Client, table string) ([]map[string]types.AttributeValue, error) {
	var out []map[string]types.AttributeValue
	p := dynamodb.NewScanPaginator(client, &dynamodb.ScanInput{TableName: aws.String(table), ConsistentRead: aws.Bool(true)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("scan %s: %w", table, err)
		}
		out = append(out, page.Items...)
	}
	return out, nil
}

// Event is a decoded Kinesis record of ferry's envelope, as it is on the
// wire. It is decoded here rather than with transform.DecodeRecord (the
// decoder behind verify.DecodeEvent) on purpose: tests inspect the wire form
// (source.db, the LSN text as written), and ReadStream must also read
// records that are not ferry envelopes (the fault proxy's test reads back the
// partition keys of plain JSON records), which DecodeRecord rightly rejects
// (no LSN, unknown op).
type Event struct {
	PartitionKey string
	Shard        string
	Seq          string
	Op           string                     `json:"op"`
	Before       map[string]json.RawMessage `json:"before"`
	After        map[string]json.RawMessage `json:"after"`
	Source       struct {
		DB       string `json:"db"`
		Schema   string `json:"schema"`
		Table    string `json:"table"`
		LSN      string `json:"lsn"`
		Seq      uint32 `json:"seq"`
		Snapshot bool   `json:"snapshot"`
	} `json:"source"`
}

// ReadStream reads every record of every shard of a stream, in shard order.
func ReadStream(ctx context.Context, client *kinesis.Client, stream string) ([]Event, error) {
	shards, err := client.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String(stream)})
	if err != nil {
		return nil, fmt.Errorf("list shards of %s: %w", stream, err)
	}
	var out []Event
	for _, sh := range shards.Shards {
		it, err := client.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{
			StreamName: aws.String(stream), ShardId: sh.ShardId, ShardIteratorType: ktypes.ShardIteratorTypeTrimHorizon,
		})
		if err != nil {
			return nil, fmt.Errorf("shard iterator %s: %w", *sh.ShardId, err)
		}
		iter := it.ShardIterator
		for iter != nil {
			res, err := client.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: iter, Limit: aws.Int32(10000)})
			if err != nil {
				return nil, fmt.Errorf("get records %s: %w", *sh.ShardId, err)
			}
			for _, r := range res.Records {
				var e Event
				if err := json.Unmarshal(r.Data, &e); err != nil {
					return nil, fmt.Errorf("record %s: %w", *r.SequenceNumber, err)
				}
				e.PartitionKey, e.Shard, e.Seq = *r.PartitionKey, *sh.ShardId, *r.SequenceNumber
				out = append(out, e)
			}
			if len(res.Records) == 0 { // the emulator returns every record it holds; empty means the end
				break
			}
			iter = res.NextShardIterator
		}
	}
	return out, nil
}

// CountBy counts items by their _table attribute.
func CountBy(items []map[string]types.AttributeValue) map[string]int {
	out := map[string]int{}
	for _, it := range items {
		if s, ok := it["_table"].(*types.AttributeValueMemberS); ok {
			out[s.Value]++
		} else {
			out["<no _table>"]++
		}
	}
	return out
}

// SortedKeys returns the map's keys sorted.
func SortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
