package pricing

import (
	"math"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Max(1, math.Abs(b)) }

// The worked example of the Kinesis Data Streams pricing page (provisioned
// mode): producers put 100 records/s of 35 KB each, 3.4 MB/s: 4 shards at
// $0.015 an hour are $0.06 an hour; a 35 KB record is 2 PUT payload units,
// 200 units/s are 720,000 an hour, $0.01008 an hour at $0.014 per million.
func TestKinesisWorkedExample(t *testing.T) {
	const recordBytes = 35 * 1024
	if u := PutUnits(recordBytes); u != 2 {
		t.Fatalf("PUT units of 35 KB: %d, want 2", u)
	}
	if s := Shards(100*recordBytes, 100); s != 4 {
		t.Fatalf("shards for 100 × 35 KB/s: %d, want 4", s)
	}
	e := Compute(Inputs{Tables: []Table{{Name: "t", Rows: 1, WritesPerRow: 1, RecordBytes: recordBytes, PutUnitsPerRecord: 2, ChangesPerSec: 100}},
		RetentionHours: 24}, Default)
	if e.CDCShards != 4 {
		t.Errorf("CDC shards %d, want 4", e.CDCShards)
	}
	if got, want := e.CDCKinesisShardMonth/HoursPerMonth, 0.06; !near(got, want) {
		t.Errorf("shard cost per hour %v, want %v", got, want)
	}
	if got, want := e.CDCKinesisPutMonth/HoursPerMonth, 0.01008; !near(got, want) {
		t.Errorf("PUT cost per hour %v, want %v", got, want)
	}
	if e.CDCRetentionMonth != 0 {
		t.Errorf("24 h retention costs %v, want 0", e.CDCRetentionMonth)
	}
	e = Compute(Inputs{Tables: []Table{{Rows: 1, WritesPerRow: 1, RecordBytes: recordBytes, PutUnitsPerRecord: 2, ChangesPerSec: 100}},
		RetentionHours: 168}, Default)
	if got, want := e.CDCRetentionMonth, 4*HoursPerMonth*0.02; !near(got, want) {
		t.Errorf("7-day retention %v, want %v", got, want)
	}
}

// DynamoDB's write units: an item of 3.5 KB takes 4 write units (the
// developer guide's example); a 500-byte item 1.
func TestWriteUnits(t *testing.T) {
	for _, tc := range []struct{ size, want int }{{0, 1}, {500, 1}, {1024, 1}, {1025, 2}, {3584, 4}, {400 * 1024, 400}} {
		if got := WriteUnits(tc.size); got != tc.want {
			t.Errorf("WriteUnits(%d) = %d, want %d", tc.size, got, tc.want)
		}
	}
}

// A backfill of 1,000,000 rows of 3 write units each (an item of 1.5 KB in
// its table and one GSI... counted by the caller) costs 3 million write
// request units on demand; provisioned, 3e6 unit-seconds = 833.3 WCU-hours.
func TestBackfillArithmetic(t *testing.T) {
	in := Inputs{Tables: []Table{{Rows: 1_000_000, WritesPerRow: 3}}, WarmWCU: 40000, WALBytesPerSec: 1000, BackfillHours: 1}
	e := Compute(in, Default)
	if !near(e.WriteUnits, 3e6) || !near(e.BackfillOnDemand, 3*0.625) || !near(e.BackfillProvisioned, 3e6/3600*0.00065) {
		t.Errorf("write units %v, on demand $%v, provisioned $%v", e.WriteUnits, e.BackfillOnDemand, e.BackfillProvisioned)
	}
	if !near(e.HoursAtStart, 3e6/4000/3600) || !near(e.HoursWarm, 3e6/40000/3600) {
		t.Errorf("hours at start %v, warm %v", e.HoursAtStart, e.HoursWarm)
	}
	if !near(e.WALRetainedAtStart, 1000*3e6/4000) {
		t.Errorf("WAL retained %v", e.WALRetainedAtStart)
	}
	if e.BackfillShards != 0 || e.CDCShards != 0 {
		t.Errorf("a table without a stream needs no shards: %d %d", e.BackfillShards, e.CDCShards)
	}
}

func TestLambdaArithmetic(t *testing.T) {
	// 100 changes/s in batches of 100: one invocation a second, 2.628M a
	// month; 200 ms at 512 MB each.
	e := Compute(Inputs{Tables: []Table{{Rows: 1, WritesPerRow: 1, ChangesPerSec: 100}}, LambdaBatch: 100, LambdaMemoryMB: 512, LambdaMillis: 200}, Default)
	inv := HoursPerMonth * 3600
	want := inv/1e6*0.20 + inv*0.2*0.5*0.0000166667
	if !near(e.CDCLambdaMonth, want) {
		t.Errorf("Lambda per month $%v, want $%v", e.CDCLambdaMonth, want)
	}
}

func TestItemSize(t *testing.T) {
	item := map[string]types.AttributeValue{
		"pk":    &types.AttributeValueMemberS{Value: "RENTAL#1"},                                                                      // 2 + 8
		"n":     &types.AttributeValueMemberN{Value: "12345"},                                                                         // 1 + 4
		"small": &types.AttributeValueMemberN{Value: "0.50"},                                                                          // 5 + 2
		"ok":    &types.AttributeValueMemberBOOL{Value: true},                                                                         // 2 + 1
		"none":  &types.AttributeValueMemberNULL{Value: true},                                                                         // 4 + 1
		"m":     &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{"a": &types.AttributeValueMemberS{Value: "xy"}}}, // 1 + 3 + (1+2+1)
	}
	if got, want := ItemSize(item), 10+5+7+3+5+8; got != want {
		t.Errorf("ItemSize = %d, want %d", got, want)
	}
}
