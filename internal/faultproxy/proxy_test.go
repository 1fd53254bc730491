package faultproxy

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	ktypes "github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"

	"github.com/ferry-migrate/ferry/internal/stack"
	"github.com/ferry-migrate/ferry/internal/testkit"
)

func dynamoVia(st *stack.Stack, url string) *dynamodb.Client {
	return dynamodb.NewFromConfig(st.AWSConfig(), func(o *dynamodb.Options) {
		o.BaseEndpoint = aws.String(url)
		o.RetryMaxAttempts = 1
	})
}

func kinesisVia(st *stack.Stack, url string) *kinesis.Client {
	return kinesis.NewFromConfig(st.AWSConfig(), func(o *kinesis.Options) {
		o.BaseEndpoint = aws.String(url)
		o.RetryMaxAttempts = 1
	})
}

func TestPartialBatchWriteItem(t *testing.T) {
	st := stack.ForTest(t)
	ctx := t.Context()
	p, err := Start(st.DynamoEndpoint, 1, Rule{Target: "DynamoDB_20120810.BatchWriteItem", Kind: Partial, Rate: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	direct := st.DynamoClient()
	table := testkit.Name("fp_")
	if _, err := direct.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:            aws.String(table),
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String("pk"), AttributeType: types.ScalarAttributeTypeS}},
		KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String("pk"), KeyType: types.KeyTypeHash}},
		BillingMode:          types.BillingModePayPerRequest,
	}); err != nil {
		t.Fatal(err)
	}
	defer direct.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: aws.String(table)})
	waitTable(ctx, t, direct, table)

	c := dynamoVia(st, p.URL)
	var reqs []types.WriteRequest
	for i := 0; i < 25; i++ {
		reqs = append(reqs, types.WriteRequest{PutRequest: &types.PutRequest{Item: map[string]types.AttributeValue{
			"pk": &types.AttributeValueMemberS{Value: "k" + strconv.Itoa(i)}, "n": &types.AttributeValueMemberN{Value: strconv.Itoa(i)}}}})
	}
	// The SDK checks the CRC32 of the rewritten answer: an error here would
	// mean the proxy left a stale checksum.
	out, err := c.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{RequestItems: map[string][]types.WriteRequest{table: reqs}})
	if err != nil {
		t.Fatal(err)
	}
	unproc := out.UnprocessedItems[table]
	if len(unproc) == 0 || len(unproc) == 25 && p.Requests()["DynamoDB_20120810.BatchWriteItem"] == 0 {
		t.Fatalf("%d unprocessed items", len(unproc))
	}
	items, err := testkit.ScanAll(ctx, direct, table)
	if err != nil {
		t.Fatal(err)
	}
	if len(items)+len(unproc) != 25 {
		t.Fatalf("%d written + %d unprocessed, want 25", len(items), len(unproc))
	}
	written := map[string]bool{}
	for _, it := range items {
		written[it["pk"].(*types.AttributeValueMemberS).Value] = true
	}
	for _, u := range unproc {
		k := u.PutRequest.Item["pk"].(*types.AttributeValueMemberS).Value
		if written[k] {
			t.Errorf("%s reported unprocessed but written", k)
		}
	}
	if got := p.Injected(Partial); got != int64(len(unproc)) {
		t.Errorf("counted %d partial entries, returned %d", got, len(unproc))
	}
	// Resending the unprocessed items until none is left writes them all.
	p.SetRules(Rule{Target: "DynamoDB_20120810.BatchWriteItem", Kind: Partial, Rate: 0.5})
	for i := 0; len(unproc) > 0 && i < 50; i++ {
		out, err := c.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{RequestItems: map[string][]types.WriteRequest{table: unproc}})
		if err != nil {
			t.Fatal(err)
		}
		unproc = out.UnprocessedItems[table]
	}
	if items, _ := testkit.ScanAll(ctx, direct, table); len(items) != 25 || len(unproc) != 0 {
		t.Fatalf("%d items after retries, %d still unprocessed", len(items), len(unproc))
	}
}

func TestPartialPutRecordsAligned(t *testing.T) {
	st := stack.ForTest(t)
	ctx := t.Context()
	p, err := Start(st.KinesisEndpoint, 2, Rule{Target: "Kinesis_20131202.PutRecords", Kind: Partial, Rate: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	direct := st.KinesisClient()
	stream := testkit.Name("fp-")
	if _, err := direct.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String(stream), ShardCount: aws.Int32(1)}); err != nil {
		t.Fatal(err)
	}
	defer direct.DeleteStream(context.Background(), &kinesis.DeleteStreamInput{StreamName: aws.String(stream)})
	waitStream(ctx, t, direct, stream)

	c := kinesisVia(st, p.URL)
	var entries []ktypes.PutRecordsRequestEntry
	for i := 0; i < 40; i++ {
		entries = append(entries, ktypes.PutRecordsRequestEntry{Data: []byte(fmt.Sprintf(`{"i":%d}`, i)), PartitionKey: aws.String("k" + strconv.Itoa(i))})
	}
	out, err := c.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String(stream), Records: entries})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Records) != len(entries) {
		t.Fatalf("%d answers for %d records", len(out.Records), len(entries))
	}
	okKeys := map[string]bool{}
	failed := 0
	for i, r := range out.Records {
		if r.ErrorCode != nil {
			failed++
			if *r.ErrorCode != "ProvisionedThroughputExceededException" {
				t.Errorf("entry %d: error code %s", i, *r.ErrorCode)
			}
			continue
		}
		if r.SequenceNumber == nil {
			t.Errorf("entry %d: neither error nor sequence number", i)
		}
		okKeys["k"+strconv.Itoa(i)] = true
	}
	if failed == 0 || int(aws.ToInt32(out.FailedRecordCount)) != failed {
		t.Errorf("failed %d, FailedRecordCount %d", failed, aws.ToInt32(out.FailedRecordCount))
	}
	events, err := testkit.ReadStream(ctx, direct, stream)
	if err != nil && len(events) == 0 {
		// The records are not ferry envelopes; read the partition keys only.
		t.Log(err)
	}
	got := map[string]bool{}
	for _, e := range events {
		got[e.PartitionKey] = true
	}
	if len(got) != len(okKeys) {
		t.Errorf("stream holds %d keys, the answer acknowledged %d", len(got), len(okKeys))
	}
	for k := range got {
		if !okKeys[k] {
			t.Errorf("record %s on the stream but reported failed", k)
		}
	}
}

func TestThrottleResetServerErrorOutage(t *testing.T) {
	st := stack.ForTest(t)
	ctx := t.Context()
	p, err := Start(st.KinesisEndpoint, 3)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	c := kinesisVia(st, p.URL)
	call := func() error {
		_, err := c.ListStreams(ctx, &kinesis.ListStreamsInput{Limit: aws.Int32(1)})
		return err
	}
	if err := call(); err != nil {
		t.Fatalf("transparent proxy: %v", err)
	}
	p.SetRules(Rule{Kind: Throttle, Rate: 1})
	for _, want := range []string{"ThrottlingException", "ProvisionedThroughputExceededException"} {
		var ae smithy.APIError
		if err := call(); !errors.As(err, &ae) || ae.ErrorCode() != want {
			t.Errorf("throttle: got %v, want %s", err, want)
		}
	}
	p.SetRules(Rule{Kind: ServerError, Rate: 1})
	if err := call(); err == nil {
		t.Error("server error: no error")
	}
	p.SetRules(Rule{Kind: Reset, Rate: 1})
	if err := call(); err == nil {
		t.Error("reset: no error")
	}
	p.SetRules(Rule{Kind: Latency, Rate: 1, Delay: 200 * time.Millisecond})
	start := time.Now()
	if err := call(); err != nil || time.Since(start) < 200*time.Millisecond {
		t.Errorf("latency: err %v after %v", err, time.Since(start))
	}
	p.SetRules()
	p.OutageFor(300*time.Millisecond, OutageUnavailable)
	if err := call(); err == nil {
		t.Error("outage: no error")
	}
	time.Sleep(350 * time.Millisecond) // the outage's own length, not a synchronisation stand-in
	if err := call(); err != nil {
		t.Errorf("after the outage: %v", err)
	}
	if p.Injected(Throttle) != 2 || p.Injected(Outage) != 1 || p.Injected(Reset) != 1 || p.Injected(ServerError) != 1 || p.Injected(Latency) != 1 {
		t.Errorf("counts: %s", p)
	}
}

func waitTable(ctx context.Context, t *testing.T, c *dynamodb.Client, table string) {
	t.Helper()
	w := dynamodb.NewTableExistsWaiter(c, func(o *dynamodb.TableExistsWaiterOptions) { o.MinDelay = 10 * time.Millisecond })
	if err := w.Wait(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(table)}, 30*time.Second); err != nil {
		t.Fatal(err)
	}
}

func waitStream(ctx context.Context, t *testing.T, c *kinesis.Client, stream string) {
	t.Helper()
	w := kinesis.NewStreamExistsWaiter(c, func(o *kinesis.StreamExistsWaiterOptions) { o.MinDelay = 10 * time.Millisecond })
	if err := w.Wait(ctx, &kinesis.DescribeStreamInput{StreamName: aws.String(stream)}, 30*time.Second); err != nil {
		t.Fatal(err)
	}
}
