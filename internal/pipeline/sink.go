// Package pipeline wires extract, transform and load into ferry's jobs: the
// resumable backfill (and, later, the CDC sync). It owns the run state kept in
// the control table and the whole-batch retry budget.
package pipeline

import (
	"context"
	"fmt"

	"golang.org/x/sync/errgroup"

	"github.com/ferry-migrate/ferry/load"
	"github.com/ferry-migrate/ferry/transform"
)

// Batch is a group of transformed rows of one table on its way to the targets.
type Batch struct {
	Table   *transform.TablePlan
	Writes  []load.WriteRequest
	Records []load.Record
}

// RowFailure is a row that could not be transformed or written, with the reason.
type RowFailure struct {
	Table  string `json:"table"`
	Key    string `json:"key"`
	Reason string `json:"reason"`
}

// Sink receives batches. Write blocks until the batch is durable in every target
// (or failed); the failures it returns name rows that could never be written
// (the rest of the batch is written). An error means nothing can be said about
// the batch and the run stops. Safe for concurrent use.
type Sink interface {
	Write(ctx context.Context, b *Batch) ([]RowFailure, error)
	Stats() SinkStats
}

// SinkStats are cumulative counters of a sink.
type SinkStats struct {
	Items, Records, Retries int64
}

// AWSSink writes items to DynamoDB and records to Kinesis, in parallel.
type AWSSink struct {
	Dynamo  *load.DynamoWriter
	Kinesis *load.KinesisWriter
}

// Write implements Sink.
func (s *AWSSink) Write(ctx context.Context, b *Batch) ([]RowFailure, error) {
	var dFails []load.Failure
	var kFails []load.RecordFailure
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		var err error
		dFails, err = s.Dynamo.Write(gctx, b.Writes)
		return err
	})
	if len(b.Records) > 0 {
		g.Go(func() error {
			var err error
			kFails, err = s.Kinesis.Put(gctx, b.Records)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, fmt.Errorf("write %s batch: %w", b.Table.Source.QualifiedName(), err)
	}
	var out []RowFailure
	for _, f := range dFails {
		out = append(out, RowFailure{Table: b.Table.Source.QualifiedName(), Key: fmt.Sprint(f.Req.Ref), Reason: "DynamoDB: " + f.Err.Error()})
	}
	for _, f := range kFails {
		out = append(out, RowFailure{Table: b.Table.Source.QualifiedName(), Key: fmt.Sprint(f.Rec.Ref), Reason: "Kinesis: " + f.Err.Error()})
	}
	return out, nil
}

// Stats implements Sink.
func (s *AWSSink) Stats() SinkStats {
	d, k := s.Dynamo.Stats(), s.Kinesis.Stats()
	return SinkStats{Items: d.Written, Records: k.Put, Retries: d.Retries + k.Retries}
}

// NullSink discards everything: it measures the source side alone.
type NullSink struct{}

// Write implements Sink.
func (NullSink) Write(context.Context, *Batch) ([]RowFailure, error) { return nil, nil }

// Stats implements Sink.
func (NullSink) Stats() SinkStats { return SinkStats{} }
