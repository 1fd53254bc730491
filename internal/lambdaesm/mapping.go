package lambdaesm

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	ktypes "github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// KinesisAPI is the part of the Kinesis client a mapping uses
// (*kinesis.Client satisfies it).
type KinesisAPI interface {
	DescribeStreamSummary(context.Context, *kinesis.DescribeStreamSummaryInput, ...func(*kinesis.Options)) (*kinesis.DescribeStreamSummaryOutput, error)
	ListShards(context.Context, *kinesis.ListShardsInput, ...func(*kinesis.Options)) (*kinesis.ListShardsOutput, error)
	GetShardIterator(context.Context, *kinesis.GetShardIteratorInput, ...func(*kinesis.Options)) (*kinesis.GetShardIteratorOutput, error)
	GetRecords(context.Context, *kinesis.GetRecordsInput, ...func(*kinesis.Options)) (*kinesis.GetRecordsOutput, error)
}

// Invoker invokes the function synchronously (*Runtime satisfies it).
//
// Invoke blocks until the function has returned or ctx ends, and is called
// concurrently, once per concurrent batch. A *FunctionError (errors.As)
// means the function ran and failed; any other error means it may not have
// run: the mapping retries such a batch without counting a retry attempt.
type Invoker interface {
	Invoke(ctx context.Context, requestID string, payload []byte) ([]byte, error)
}

// Mapping is a running event source mapping: it polls every shard of a
// Kinesis stream and invokes a function with batches of records, with the
// semantics listed in the package documentation.
type Mapping struct {
	cfg         MappingConfig
	api         KinesisAPI
	fn          Invoker
	log         *slog.Logger
	streamARN   string
	region      string
	functionARN string
	roleARN     string
	maxPending  int

	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex    // guards the shards' state and changed
	changed chan struct{} // closed (and replaced) at every change of state
	shards  []*shard
}

// StartMapping validates cfg, lists the stream's shards, positions an
// iterator on each at cfg.StartingPosition (so that, with LATEST, records put
// after it returns are delivered), and starts polling. ctx bounds only the
// start; Close stops the mapping.
func StartMapping(ctx context.Context, api KinesisAPI, fn Invoker, cfg MappingConfig) (*Mapping, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("lambdaesm: mapping config: %w", err)
	}
	if cfg.FunctionName == "" {
		cfg.FunctionName = "function"
	}
	m := &Mapping{cfg: cfg, api: api, fn: fn, log: cfg.Logger, changed: make(chan struct{})}
	if m.log == nil {
		m.log = slog.Default()
	}
	m.log = m.log.With("stream", cfg.StreamName)
	m.maxPending = max(2*cfg.BatchSize*cfg.ParallelizationFactor, 100)
	sum, err := api.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(cfg.StreamName)})
	if err != nil {
		return nil, fmt.Errorf("lambdaesm: describe stream %s: %w", cfg.StreamName, err)
	}
	m.streamARN = aws.ToString(sum.StreamDescriptionSummary.StreamARN)
	region, account := arnRegionAccount(m.streamARN)
	m.region = region
	m.functionARN = fmt.Sprintf("arn:aws:lambda:%s:%s:function:%s", region, account, cfg.FunctionName)
	m.roleARN = cfg.ExecutionRoleARN
	if m.roleARN == "" {
		m.roleARN = fmt.Sprintf("arn:aws:iam::%s:role/lambda-role", account)
	}
	ids, err := m.listShards(ctx)
	if err != nil {
		return nil, err
	}
	for _, id := range ids {
		sh := &shard{id: id, kick: make(chan struct{}, 1)}
		if sh.iter, err = m.iterator(ctx, id, ""); err != nil {
			return nil, err
		}
		for n := range cfg.ParallelizationFactor {
			sh.lanes = append(sh.lanes, &lane{sh: sh, n: n})
		}
		m.shards = append(m.shards, sh)
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	m.cancel = cancel
	for _, sh := range m.shards {
		m.wg.Go(func() { m.readShard(runCtx, sh) })
		for _, ln := range sh.lanes {
			m.wg.Go(func() { m.runLane(runCtx, ln) })
		}
	}
	m.log.Info("event source mapping started", "shards", len(m.shards), "batch_size", cfg.BatchSize,
		"window_s", cfg.MaximumBatchingWindowInSeconds, "parallelization", cfg.ParallelizationFactor,
		"starting_position", cfg.StartingPosition)
	return m, nil
}

// arnRegionAccount splits arn:partition:service:region:account:resource.
func arnRegionAccount(arn string) (region, account string) {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) < 6 {
		return "us-east-1", "000000000000"
	}
	return parts[3], parts[4]
}

func (m *Mapping) listShards(ctx context.Context) ([]string, error) {
	var ids []string
	in := &kinesis.ListShardsInput{StreamName: aws.String(m.cfg.StreamName)}
	for {
		out, err := m.api.ListShards(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("lambdaesm: list shards of %s: %w", m.cfg.StreamName, err)
		}
		for _, s := range out.Shards {
			ids = append(ids, aws.ToString(s.ShardId))
		}
		if out.NextToken == nil {
			return ids, nil
		}
		in = &kinesis.ListShardsInput{NextToken: out.NextToken}
	}
}

// iterator returns a shard iterator after sequence number after, or at the
// configured starting position when after is "".
func (m *Mapping) iterator(ctx context.Context, shardID, after string) (*string, error) {
	in := &kinesis.GetShardIteratorInput{StreamName: aws.String(m.cfg.StreamName), ShardId: aws.String(shardID)}
	switch {
	case after != "":
		in.ShardIteratorType = ktypes.ShardIteratorTypeAfterSequenceNumber
		in.StartingSequenceNumber = aws.String(after)
	case m.cfg.StartingPosition == AtTimestamp:
		in.ShardIteratorType = ktypes.ShardIteratorTypeAtTimestamp
		in.Timestamp = aws.Time(m.cfg.StartingPositionTimestamp)
	default:
		in.ShardIteratorType = ktypes.ShardIteratorType(m.cfg.StartingPosition)
	}
	out, err := m.api.GetShardIterator(ctx, in)
	if err != nil {
		return nil, fmt.Errorf("lambdaesm: shard iterator %s/%s: %w", m.cfg.StreamName, shardID, err)
	}
	return out.ShardIterator, nil
}

// Close stops polling and invoking, waits for the mapping's goroutines (an
// invocation in flight is abandoned: its records stay unprocessed), and
// returns nil.
func (m *Mapping) Close() error {
	m.cancel()
	m.wg.Wait()
	return nil
}

// ShardStatus is one shard's progress.
type ShardStatus struct {
	ShardID string
	// Checkpoint is the sequence number up to which every record read has
	// been processed or discarded ("" before the first).
	Checkpoint string
	// IteratorAge is Lambda's IteratorAge metric: how old the last record of
	// the last batch finished was when it finished.
	IteratorAge time.Duration
	// MillisBehindLatest is what the last GetRecords reported.
	MillisBehindLatest int64
	// Pending counts the records read and not yet processed.
	Pending int
	// Invocations, Retries and Discarded count invocations, invocations
	// that were retries (not bisections), and discarded records.
	Invocations, Retries, Discarded int
	// Closed is set once the shard's end has been read.
	Closed bool
}

// Status returns every shard's progress, in ListShards order.
func (m *Mapping) Status() []ShardStatus {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]ShardStatus, 0, len(m.shards))
	for _, sh := range m.shards {
		out = append(out, ShardStatus{
			ShardID: sh.id, Checkpoint: sh.checkpoint, IteratorAge: sh.iteratorAge,
			MillisBehindLatest: sh.millisBehind, Pending: len(sh.entries),
			Invocations: sh.invocations, Retries: sh.retries, Discarded: sh.discarded, Closed: sh.closed,
		})
	}
	return out
}

// Checkpoints returns each shard's checkpoint (see ShardStatus.Checkpoint).
func (m *Mapping) Checkpoints() map[string]string {
	out := map[string]string{}
	for _, st := range m.Status() {
		out[st.ShardID] = st.Checkpoint
	}
	return out
}

// WaitCaughtUp returns once every record put to the stream before the call
// has been processed or discarded: each shard's reader has, since the call,
// read to the end of its shard (nothing more, MillisBehindLatest 0), and no
// record read is pending. It wakes idle readers so that it need not wait for
// their poll interval. It returns ctx's error (with the shards' status) if
// ctx ends first.
func (m *Mapping) WaitCaughtUp(ctx context.Context) error {
	start := time.Now()
	m.mu.Lock()
	for _, sh := range m.shards {
		sh.wake()
	}
	defer m.mu.Unlock()
	for {
		caught := true
		for _, sh := range m.shards {
			if len(sh.entries) > 0 || !(sh.closed || sh.caughtUpAt.After(start)) {
				caught = false
				break
			}
		}
		if caught {
			return nil
		}
		if err := m.waitLocked(ctx, 0); err != nil {
			var b strings.Builder
			for _, sh := range m.shards {
				fmt.Fprintf(&b, " %s: checkpoint %s, pending %d, invocations %d;", sh.id, sh.checkpoint, len(sh.entries), sh.invocations)
			}
			return fmt.Errorf("lambdaesm: mapping of %s not caught up:%s %w", m.cfg.StreamName, b.String(), err)
		}
	}
}

// notifyLocked wakes every waiter on the mapping's state. m.mu is held.
func (m *Mapping) notifyLocked() {
	close(m.changed)
	m.changed = make(chan struct{})
}

// waitLocked waits, with m.mu released, for the next change of state, d
// (when positive), or the end of ctx; m.mu is held again when it returns.
func (m *Mapping) waitLocked(ctx context.Context, d time.Duration) error {
	ch := m.changed
	m.mu.Unlock()
	defer m.mu.Lock()
	var timer <-chan time.Time
	if d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		timer = t.C
	}
	select {
	case <-ch:
	case <-timer:
	case <-ctx.Done():
		return ctx.Err()
	}
	return nil
}

// sleepCtx waits d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// backoff is the wait before retry number n (1-based) of a batch. The
// emulator keeps its own retry loops rather than load.RetryLoop: they model
// the AWS event source mapping's policy (deterministic doubling, no jitter,
// retry counts that drive bisecting and the on-failure destination), not
// ferry's.
func (m *Mapping) backoff(n int) time.Duration {
	d := m.cfg.RetryBackoff
	for i := 1; i < n && d < m.cfg.MaxRetryBackoff; i++ {
		d *= 2
	}
	return min(d, m.cfg.MaxRetryBackoff)
}
