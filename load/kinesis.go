package load

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// Kinesis PutRecords limits and writer defaults.
const (
	MaxPutRecordsRecords  = 500
	MaxPutRecordsBytes    = 5 << 20 // data + partition keys, per request
	MaxRecordBytes        = 1 << 20 // data + partition key, per record
	MaxPartitionKeyChars  = 256
	DefaultKinesisWorkers = 4
)

// Record is one Kinesis record.
type Record struct {
	Stream       string
	PartitionKey string
	// ExplicitHashKey, when set, puts the record on the shard whose hash
	// key range holds it instead of the partition key's (a TRUNCATE goes to
	// every shard this way: OpenShardHashKeys).
	ExplicitHashKey string
	Data            []byte
	// Ref is opaque to the writer and returned in failures.
	Ref any
}

func (r Record) size() int { return len(r.Data) + len(r.PartitionKey) }

func (r Record) validate() error {
	var errs []error
	if r.Stream == "" {
		errs = append(errs, errors.New("no stream"))
	}
	if r.PartitionKey == "" {
		errs = append(errs, errors.New("no partition key"))
	}
	if n := utf8.RuneCountInString(r.PartitionKey); n > MaxPartitionKeyChars {
		errs = append(errs, fmt.Errorf("partition key of %d characters, more than %d", n, MaxPartitionKeyChars))
	}
	if r.size() > MaxRecordBytes {
		errs = append(errs, fmt.Errorf("record of %d bytes (data + partition key), more than %d", r.size(), MaxRecordBytes))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("stream %q partition key %q: %w: %w", r.Stream, r.PartitionKey, ErrInvalidRequest, err)
	}
	return nil
}

// RecordFailure is a record that can never be put as it is.
type RecordFailure struct {
	Rec Record
	Err error
}

// KinesisConfig configures a [KinesisWriter].
type KinesisConfig struct {
	// Backoff paces the retries of failed PutRecords entries.
	Backoff Backoff
	// MaxBatchRecords caps the records of one PutRecords call. Default and
	// maximum 500.
	MaxBatchRecords int
	// MaxBatchBytes caps data + partition key bytes of one PutRecords call.
	// Default and maximum 5 MiB.
	MaxBatchBytes int
	// Workers is the number of PutRecords calls in flight per Put call.
	// Default 4.
	Workers int
	// Logger receives retry messages. Default slog.Default().
	Logger *slog.Logger
}

// Validate reports every invalid field, joined.
func (c KinesisConfig) Validate() error {
	var errs []error
	if c.MaxBatchRecords < 0 || c.MaxBatchRecords > MaxPutRecordsRecords {
		errs = append(errs, fmt.Errorf("kinesis: MaxBatchRecords %d outside 0..%d", c.MaxBatchRecords, MaxPutRecordsRecords))
	}
	if c.MaxBatchBytes < 0 || c.MaxBatchBytes > MaxPutRecordsBytes {
		errs = append(errs, fmt.Errorf("kinesis: MaxBatchBytes %d outside 0..%d", c.MaxBatchBytes, MaxPutRecordsBytes))
	}
	if c.Workers < 0 {
		errs = append(errs, fmt.Errorf("kinesis: Workers %d is negative", c.Workers))
	}
	errs = append(errs, c.Backoff.Validate())
	return errors.Join(errs...)
}

func (c KinesisConfig) withDefaults() KinesisConfig {
	if c.MaxBatchRecords <= 0 || c.MaxBatchRecords > MaxPutRecordsRecords {
		c.MaxBatchRecords = MaxPutRecordsRecords
	}
	if c.MaxBatchBytes <= 0 || c.MaxBatchBytes > MaxPutRecordsBytes {
		c.MaxBatchBytes = MaxPutRecordsBytes
	}
	if c.Workers <= 0 {
		c.Workers = DefaultKinesisWorkers
	}
	c.Backoff = c.Backoff.withDefaults()
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// KinesisStats counts a writer's work since it was created.
type KinesisStats struct {
	Put     int64 // records accepted
	Retries int64 // retries of failed entries
	Batches int64 // PutRecords calls
}

// kinesisAPI is the part of *kinesis.Client the writer uses. Implementations
// must be safe for concurrent use.
type kinesisAPI interface {
	PutRecords(context.Context, *kinesis.PutRecordsInput, ...func(*kinesis.Options)) (*kinesis.PutRecordsOutput, error)
}

// KinesisWriter publishes records to Kinesis. It is safe for concurrent use.
type KinesisWriter struct {
	api kinesisAPI
	cfg KinesisConfig

	putCount, retries, batches atomic.Int64
	batchSeq                   atomic.Int64
}

// NewKinesisWriter returns a writer using client; zero config fields take
// their defaults.
func NewKinesisWriter(client *kinesis.Client, cfg KinesisConfig) *KinesisWriter {
	return newKinesisWriter(client, cfg)
}

func newKinesisWriter(api kinesisAPI, cfg KinesisConfig) *KinesisWriter {
	return &KinesisWriter{api: api, cfg: cfg.withDefaults()}
}

// Stats returns the counters so far.
func (w *KinesisWriter) Stats() KinesisStats {
	return KinesisStats{Put: w.putCount.Load(), Retries: w.retries.Load(), Batches: w.batches.Load()}
}

type batchDone struct {
	b   *kbatch
	err error
}

// Put publishes records so that, per (Stream, PartitionKey), they land in
// the given order, even across partial failures: a PutRecords call never
// holds two records of one partition key, and a failed entry is retried
// (with the Backoff) before any later record of its key is sent. A call
// holds one stream, at most MaxBatchRecords records and MaxBatchBytes bytes;
// up to Workers calls are in flight. Records that can never be put (over
// 1 MiB, no partition key, …) are returned as failures, in input order,
// without being sent.
//
// Put blocks until every record is in or failed; on ctx cancellation, a
// non-retryable error or an exhausted retry budget it returns an error, and
// the records not yet acknowledged may or may not have been put. It is safe
// for concurrent use; concurrent calls do not order against each other.
func (w *KinesisWriter) Put(ctx context.Context, recs []Record) ([]RecordFailure, error) {
	return w.put(ctx, recs, nil, nil)
}

// PutAcked is Put that also sets acked[i] when Kinesis accepted recs[i]
// (acked must be as long as recs). After an error, sending again only the
// records not acked keeps per-key order: a key's record is only ever sent
// after its earlier records were acked, so a resend can duplicate a record
// but never place it after a later one of its key.
func (w *KinesisWriter) PutAcked(ctx context.Context, recs []Record, acked []bool) ([]RecordFailure, error) {
	return w.PutAckedCounted(ctx, recs, acked, nil)
}

// PutAckedCounted is PutAcked that also counts the records it put and the
// retries it made in t (nil: not counted), as well as in the writer's
// Stats. A call that returns an error has counted what it did before it
// stopped.
func (w *KinesisWriter) PutAckedCounted(ctx context.Context, recs []Record, acked []bool, t *Tally) ([]RecordFailure, error) {
	if len(acked) != len(recs) {
		return nil, fmt.Errorf("kinesis: PutAcked with %d flags for %d records", len(acked), len(recs))
	}
	return w.put(ctx, recs, acked, t)
}

func (w *KinesisWriter) put(ctx context.Context, recs []Record, acked []bool, t *Tally) ([]RecordFailure, error) {
	var failures []RecordFailure
	sched := newKScheduler(recs, w.cfg.MaxBatchRecords, w.cfg.MaxBatchBytes)
	for i, r := range recs {
		if err := r.validate(); err != nil {
			failures = append(failures, RecordFailure{Rec: r, Err: err})
			continue
		}
		sched.add(i)
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan batchDone)
	inflight := 0
	var firstErr error
	for {
		for firstErr == nil && inflight < w.cfg.Workers {
			b := sched.next()
			if b == nil {
				break
			}
			inflight++
			go func() { done <- batchDone{b, w.sendBatch(ctx, b, acked, t)} }()
		}
		if inflight == 0 {
			break
		}
		d := <-done
		inflight--
		sched.complete(d.b)
		if d.err != nil && firstErr == nil {
			firstErr = d.err
			cancel()
		}
	}
	return failures, firstErr
}

// sendBatch puts a batch (distinct partition keys), resending failed entries
// until all are in or the retry budget is spent. Only the failed entries are
// resent; an error of the whole call ends it.
func (w *KinesisWriter) sendBatch(ctx context.Context, b *kbatch, acked []bool, t *Tally) error {
	id := w.batchSeq.Add(1)
	pending, pendingIdx := b.recs, b.idx
	lastCode := ""
	return RetryLoop{
		Backoff:   w.cfg.Backoff,
		Retryable: func(err error) bool { return errors.Is(err, errUnprocessed) },
		OnRetry: func(attempt int, _ error) {
			w.cfg.Logger.LogAttrs(ctx, slog.LevelDebug, "kinesis: retrying failed records",
				slog.String("stream", b.stream), slog.Int64("batch", id), slog.Int("attempt", attempt),
				slog.Int("records", len(pending)), slog.String("error_code", lastCode))
		},
		GiveUp: func(_, reason error) error {
			return fmt.Errorf("kinesis batch %d (stream %s): %d records not put (last error %s): %w",
				id, b.stream, len(pending), lastCode, reason)
		},
	}.Do(ctx, func(attempt int) error {
		if attempt > 0 {
			w.retries.Add(1)
			t.addRetry()
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("kinesis batch %d (stream %s): %w", id, b.stream, err)
		}
		entries := make([]types.PutRecordsRequestEntry, len(pending))
		for i, r := range pending {
			entries[i] = types.PutRecordsRequestEntry{Data: r.Data, PartitionKey: &r.PartitionKey}
			if r.ExplicitHashKey != "" {
				entries[i].ExplicitHashKey = &r.ExplicitHashKey
			}
		}
		w.batches.Add(1)
		out, err := w.api.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: &b.stream, Records: entries})
		if err != nil {
			return fmt.Errorf("kinesis batch %d (stream %s): PutRecords: %w", id, b.stream, err)
		}
		if len(out.Records) != len(pending) {
			return fmt.Errorf("kinesis batch %d (stream %s): PutRecords answered %d entries for %d records",
				id, b.stream, len(out.Records), len(pending))
		}
		var failed []*Record
		var failedIdx []int
		for i, res := range out.Records {
			if res.ErrorCode != nil && *res.ErrorCode != "" {
				failed = append(failed, pending[i])
				failedIdx = append(failedIdx, pendingIdx[i])
				lastCode = *res.ErrorCode
			} else if acked != nil {
				acked[pendingIdx[i]] = true
			}
		}
		w.putCount.Add(int64(len(pending) - len(failed)))
		t.addDone(int64(len(pending) - len(failed)))
		if len(failed) == 0 {
			return nil
		}
		pending, pendingIdx = failed, failedIdx
		return errUnprocessed
	})
}
