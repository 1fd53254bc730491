// Package pricing prices a migration on AWS from measured inputs: the
// backfill's DynamoDB write units and Kinesis records, the change rate, and a
// table of list prices. It is arithmetic only (no I/O): `ferry plan --aws`
// measures the inputs and prints every figure with the inputs it came from,
// so that a reviewer can recompute each one by hand.
package pricing

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
)

// Prices are list prices in US dollars.
type Prices struct {
	Region string `json:"region"`
	Date   string `json:"date"`   // when the prices were read
	Source string `json:"source"` // where they were read
	// DynamoDB, standard table class.
	DynamoWritePerMillion float64 `json:"dynamodb_on_demand_write_per_million"` // write request units
	DynamoWCUHour         float64 `json:"dynamodb_provisioned_wcu_hour"`
	DynamoStorageGBMonth  float64 `json:"dynamodb_storage_gb_month"`
	// Kinesis Data Streams, provisioned mode.
	KinesisShardHour           float64 `json:"kinesis_shard_hour"`
	KinesisPutPerMillion       float64 `json:"kinesis_put_payload_units_per_million"` // 25 KB units
	KinesisExtendedRetentionSH float64 `json:"kinesis_extended_retention_shard_hour"` // 24 h to 7 days
	// Lambda (x86).
	LambdaRequestsPerMillion float64 `json:"lambda_requests_per_million"`
	LambdaGBSecond           float64 `json:"lambda_gb_second"`
}

// Default are us-east-1 list prices as ferry's authors read them from the
// AWS pricing pages; check them against the pages (or your contract) and
// override with a file (LoadPrices) before relying on a figure.
var Default = Prices{
	Region: "us-east-1",
	Date:   "2025-01-15",
	Source: "https://aws.amazon.com/dynamodb/pricing/on-demand/, https://aws.amazon.com/dynamodb/pricing/provisioned/, " +
		"https://aws.amazon.com/kinesis/data-streams/pricing/, https://aws.amazon.com/lambda/pricing/",
	DynamoWritePerMillion:      0.625,
	DynamoWCUHour:              0.00065,
	DynamoStorageGBMonth:       0.25,
	KinesisShardHour:           0.015,
	KinesisPutPerMillion:       0.014,
	KinesisExtendedRetentionSH: 0.02,
	LambdaRequestsPerMillion:   0.20,
	LambdaGBSecond:             0.0000166667,
}

// LoadPrices reads prices from a JSON file whose keys are Prices' JSON
// names; keys it lacks keep their Default values.
func LoadPrices(path string) (Prices, error) {
	p := Default
	b, err := os.ReadFile(path)
	if err != nil {
		return p, fmt.Errorf("prices: %w", err)
	}
	if err := json.Unmarshal(b, &p); err != nil {
		return p, fmt.Errorf("prices %s: %w", path, err)
	}
	return p, nil
}

// Units of the services.
const (
	WriteUnitBytes    = 1024      // a DynamoDB write unit covers 1 KB of item
	PutUnitBytes      = 25 * 1024 // a Kinesis PUT payload unit covers 25 KB of record
	ShardBytesPerSec  = 1 << 20   // a shard takes 1 MB/s ...
	ShardRecordsPerS  = 1000      // ... and 1,000 records/s
	HoursPerMonth     = 730.0     // AWS's month
	OnDemandStartWCU  = 4000.0    // writes/s a new on-demand table serves at once
	StandardRetention = 24.0      // hours of retention a stream has without extra charge
)

// WriteUnits is the write units of one write of an item of size bytes
// (rounded up to the next KB; at least one).
func WriteUnits(size int) int { return max(1, (size+WriteUnitBytes-1)/WriteUnitBytes) }

// PutUnits is the PUT payload units of a record of size bytes.
func PutUnits(size int) int { return max(1, (size+PutUnitBytes-1)/PutUnitBytes) }

// Table is one mapped table's measured inputs.
type Table struct {
	Name string
	Rows int64
	// WritesPerRow is the write units one row costs (its item's, once per
	// table and once per GSI the item is in: GSIs project all attributes),
	// averaged over the sample.
	WritesPerRow float64
	// RecordBytes and PutUnitsPerRecord are the averages of its Kinesis
	// records (0: the table has no stream).
	RecordBytes       float64
	PutUnitsPerRecord float64
	// ChangesPerSec is its measured rate of inserts, updates and deletes.
	ChangesPerSec float64
}

// Inputs are everything an estimate is computed from.
type Inputs struct {
	Tables []Table
	// WALBytesPerSec is the source's WAL rate over the measured window.
	WALBytesPerSec float64
	// BackfillHours is the backfill duration the shards are sized for.
	BackfillHours float64
	// WarmWCU is the write rate a warmed (or provisioned) table sustains.
	WarmWCU float64
	// RetentionHours is the streams' retention.
	RetentionHours float64
	// Streams is the number of streams (each has at least one shard).
	Streams int
	// Lambda applier (stream mode): records per invocation, memory, and the
	// duration of one invocation.
	LambdaBatch    float64
	LambdaMemoryMB float64
	LambdaMillis   float64
}

// Estimate is the priced migration.
type Estimate struct {
	Rows, WriteUnits, Records, PutUnits, RecordBytes float64

	BackfillOnDemand    float64 // $ for WriteUnits at on-demand
	BackfillProvisioned float64 // $ for WriteUnits at provisioned capacity (for the duration they take)
	HoursAtStart        float64 // backfill duration at OnDemandStartWCU
	HoursWarm           float64 // ... at WarmWCU
	BackfillShards      int     // shards to take the records within BackfillHours
	WALRetainedAtStart  float64 // bytes the slot retains during the copy (at start capacity)
	WALRetainedWarm     float64

	ChangesPerSec, CDCWriteUnitsPerSec, CDCBytesPerSec float64
	CDCShards                                          int
	CDCDynamoMonth                                     float64 // on-demand writes
	CDCKinesisShardMonth                               float64
	CDCKinesisPutMonth                                 float64
	CDCRetentionMonth                                  float64 // extended retention, beyond 24 h
	CDCLambdaMonth                                     float64
}

// Compute prices the inputs.
func Compute(in Inputs, p Prices) Estimate {
	var e Estimate
	var cdcPut float64
	for _, t := range in.Tables {
		rows := float64(t.Rows)
		e.Rows += rows
		e.WriteUnits += rows * t.WritesPerRow
		if t.RecordBytes > 0 {
			e.Records += rows
			e.PutUnits += rows * t.PutUnitsPerRecord
			e.RecordBytes += rows * t.RecordBytes
			e.CDCBytesPerSec += t.ChangesPerSec * t.RecordBytes
			cdcPut += t.ChangesPerSec * t.PutUnitsPerRecord
		}
		e.ChangesPerSec += t.ChangesPerSec
		e.CDCWriteUnitsPerSec += t.ChangesPerSec * t.WritesPerRow
	}
	e.BackfillOnDemand = e.WriteUnits / 1e6 * p.DynamoWritePerMillion
	// Provisioned at R WCU for WriteUnits/R seconds: the cost does not
	// depend on R (while the table is provisioned for the copy only).
	e.BackfillProvisioned = e.WriteUnits / 3600 * p.DynamoWCUHour
	e.HoursAtStart = e.WriteUnits / OnDemandStartWCU / 3600
	if in.WarmWCU > 0 {
		e.HoursWarm = e.WriteUnits / in.WarmWCU / 3600
	}
	if in.BackfillHours > 0 {
		secs := in.BackfillHours * 3600
		e.BackfillShards = Shards(e.RecordBytes/secs, e.Records/secs)
	}
	e.WALRetainedAtStart = in.WALBytesPerSec * e.HoursAtStart * 3600
	e.WALRetainedWarm = in.WALBytesPerSec * e.HoursWarm * 3600

	month := HoursPerMonth * 3600
	e.CDCDynamoMonth = e.CDCWriteUnitsPerSec * month / 1e6 * p.DynamoWritePerMillion
	if e.Records > 0 {
		e.CDCShards = max(1, in.Streams, Shards(e.CDCBytesPerSec, e.ChangesPerSec))
		e.CDCKinesisShardMonth = float64(e.CDCShards) * HoursPerMonth * p.KinesisShardHour
		e.CDCKinesisPutMonth = cdcPut * month / 1e6 * p.KinesisPutPerMillion
		if in.RetentionHours > StandardRetention {
			e.CDCRetentionMonth = float64(e.CDCShards) * HoursPerMonth * p.KinesisExtendedRetentionSH
		}
	}
	if in.LambdaBatch > 0 && e.ChangesPerSec > 0 {
		invocations := e.ChangesPerSec / in.LambdaBatch * month
		e.CDCLambdaMonth = invocations/1e6*p.LambdaRequestsPerMillion +
			invocations*in.LambdaMillis/1000*in.LambdaMemoryMB/1024*p.LambdaGBSecond
	}
	return e
}

// Shards is the shards a stream needs for a byte rate and a record rate.
func Shards(bytesPerSec, recordsPerSec float64) int {
	return int(math.Max(math.Ceil(bytesPerSec/ShardBytesPerSec), math.Ceil(recordsPerSec/ShardRecordsPerS)))
}
