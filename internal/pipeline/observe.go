package pipeline

import "time"

// SyncObserver watches sync's apply loop, for metrics. Its methods are called
// from the apply loop: they must return at once and be safe for concurrent
// use. A nil SyncConfig.Observer observes nothing.
type SyncObserver interface {
	// BatchApplied is called after a batch of changes is durable in both
	// targets: changes in it, how long the apply took (the intent record,
	// DynamoDB and Kinesis), and the commit times of its oldest and newest
	// change (zero for an online snapshot's rows alone).
	BatchApplied(changes int, took time.Duration, oldestCommit, newestCommit time.Time)
	// Retry is called before sync retries an operation that failed with a
	// transient error; what names it ("applying a batch", "checkpoint", …).
	Retry(what string)
}

func (s *syncer) observeBatch(b *syncBatch, took time.Duration) {
	if o := s.cfg.Observer; o != nil {
		o.BatchApplied(b.changes, took, b.oldest, b.commitTime)
	}
}

func (s *syncer) observeRetry(what string) {
	if o := s.cfg.Observer; o != nil {
		o.Retry(what)
	}
}
