// Package pipeline wires extract, transform and load into ferry's jobs: the
// resumable backfill (and, later, the CDC sync). It owns the run state kept in
// the control table and the whole-batch retry budget.
package pipeline

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/ferry-migrate/ferry/extract"
	"github.com/ferry-migrate/ferry/load"
	"github.com/ferry-migrate/ferry/transform"
)

// Batch is a group of transformed rows of one table on its way to the targets.
type Batch struct {
	Table   *transform.TablePlan
	Writes  []load.WriteRequest
	Records []load.Record
	// Rows are the source rows; a write's or record's Ref, when an int, is
	// the index of its row here (failures then carry the row).
	Rows []extract.Row
}

// RowFailure is a row that could not be transformed or written, with the
// reason. It is also the dead-letter file's line.
type RowFailure struct {
	Table  string `json:"table"`
	Key    string `json:"key"`
	Reason string `json:"reason"`
	Op     string `json:"op,omitempty"`  // r (backfill), c, u, d (sync)
	LSN    string `json:"lsn,omitempty"` // the change's commit LSN (backfill: the snapshot's)
	// Row is the source row, column → text form (null for NULL).
	Row map[string]*string `json:"row,omitempty"`
}

// Sink receives batches. Write blocks until the batch is durable in every target
// (or failed); the failures it returns name rows that could never be written
// (the rest of the batch is written). An error means nothing can be said about
// the batch and the run stops. Safe for concurrent use.
//
// Write also returns what this call did (items written, records put, entries
// retried), counted the way the writers count: a batch sent again counts
// again. The counts are the call's own, so a caller attributes them to the
// batch's table even while other tables' batches are written at once. After
// an error they are what was done before it.
//
// Write must not keep the batch, or anything it refers to (rows, items,
// records, their strings), after it returns: the backfill reuses that
// memory for its next batch. A failure copies what it reports.
type Sink interface {
	Write(ctx context.Context, b *Batch) (SinkStats, []RowFailure, error)
}

// SinkStats counts a sink's work: items written to DynamoDB, records put
// on Kinesis, and the writers' retries of unprocessed items and failed
// entries.
type SinkStats struct {
	Items, Records, Retries int64
}

// Add adds o to s.
func (s *SinkStats) Add(o SinkStats) {
	s.Items += o.Items
	s.Records += o.Records
	s.Retries += o.Retries
}

// AWSSink writes items to DynamoDB and records to Kinesis, in parallel.
//
// It owns the whole-batch retry: when a writer gives up on a batch with a
// transient error (throttling or an outage that outlasted the SDK's and the
// writer's retries), the batch is sent again after a capped backoff — every
// item (the backfill's puts are idempotent) and only the records Kinesis has
// not acknowledged (so a key's records never land out of order).
type AWSSink struct {
	Dynamo  *load.DynamoWriter
	Kinesis *load.KinesisWriter
	// Retry paces whole-batch retries (default: Base 250 ms, Max 10 s,
	// MaxAttempts 30, a few minutes in all).
	Retry  load.Backoff
	Logger *slog.Logger
}

// Write implements Sink.
func (s *AWSSink) Write(ctx context.Context, b *Batch) (SinkStats, []RowFailure, error) {
	retry := s.Retry
	if retry == (load.Backoff{}) {
		retry = load.Backoff{Base: 250 * time.Millisecond, Max: 10 * time.Second, MaxAttempts: 30}
	}
	log := s.Logger
	if log == nil {
		log = slog.Default()
	}
	name := b.Table.Source.QualifiedName()
	writes, recs := b.Writes, b.Records
	var dTally, kTally load.Tally
	counted := func() SinkStats {
		return SinkStats{Items: dTally.Done(), Records: kTally.Done(), Retries: dTally.Retries() + kTally.Retries()}
	}
	acked := make([]bool, len(recs))
	var dFails []load.Failure
	var kFails []load.RecordFailure
	dDone, kDone := len(writes) == 0, len(recs) == 0
	var dErr, kErr error
	err := load.RetryLoop{
		Backoff: retry,
		// Retried while ctx lives and each writer's failure (if any) may
		// pass by itself.
		Retryable: func(error) bool {
			return ctx.Err() == nil && (dErr == nil || load.IsTransient(dErr)) && (kErr == nil || load.IsTransient(kErr))
		},
		OnRetry: func(attempt int, err error) {
			log.Warn("write failed; retrying the batch", "table", name, "attempt", attempt,
				"items", len(writes), "records", len(recs), "err", err)
		},
		GiveUp: func(_, reason error) error { return reason },
	}.Do(ctx, func(int) error {
		dErr, kErr = nil, nil
		g, gctx := errgroup.WithContext(ctx)
		if !dDone {
			g.Go(func() error {
				dFails, dErr = s.Dynamo.WriteCounted(gctx, writes, &dTally)
				return nil
			})
		}
		if !kDone {
			g.Go(func() error {
				var todo []load.Record
				var idx []int
				for i, r := range recs {
					if !acked[i] {
						todo, idx = append(todo, r), append(idx, i)
					}
				}
				a := make([]bool, len(todo))
				kFails, kErr = s.Kinesis.PutAckedCounted(gctx, todo, a, &kTally)
				for j, ok := range a {
					if ok {
						acked[idx[j]] = true
					}
				}
				return nil
			})
		}
		_ = g.Wait()
		dDone = dDone || dErr == nil
		kDone = kDone || kErr == nil
		if dErr != nil {
			return dErr
		}
		return kErr
	})
	if err != nil {
		return counted(), nil, fmt.Errorf("write %s batch: %w", name, err)
	}
	var out []RowFailure
	for _, f := range dFails {
		out = append(out, batchFailure(b, f.Req.Ref, "DynamoDB: "+f.Err.Error()))
	}
	for _, f := range kFails {
		out = append(out, batchFailure(b, f.Rec.Ref, "Kinesis: "+f.Err.Error()))
	}
	return counted(), out, nil
}

// batchFailure names the row of a write or record that failed.
func batchFailure(b *Batch, ref any, reason string) RowFailure {
	f := RowFailure{Table: b.Table.Source.QualifiedName(), Key: fmt.Sprint(ref), Reason: reason}
	if i, ok := ref.(int); ok && i >= 0 && i < len(b.Rows) {
		f.Key = b.Table.KeyString(b.Rows[i])
		f.Row = rowText(b.Table.Source, b.Rows[i])
	}
	return f
}

// NullSink discards everything: it measures the source side alone.
type NullSink struct{}

// Write implements Sink.
func (NullSink) Write(context.Context, *Batch) (SinkStats, []RowFailure, error) {
	return SinkStats{}, nil, nil
}
