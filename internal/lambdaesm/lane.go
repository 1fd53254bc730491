package lambdaesm

import (
	"context"
	"errors"
	"log/slog"
	"time"
)

// lane is one of a shard's ParallelizationFactor concurrent batches: it
// takes the records of its partition keys in order and processes one batch
// at a time. queue is guarded by Mapping.mu.
type lane struct {
	sh    *shard
	n     int
	queue []*record
}

// work is a batch being processed, or a part of one after a bisection or a
// partial failure.
type work struct {
	recs []*record
	// invokes counts the invocations that carried these records (the
	// invocation record's approximateInvokeCount); retries those that count
	// against MaximumRetryAttempts (bisections do not).
	invokes, retries  int
	lastFunctionError bool
}

func (m *Mapping) runLane(ctx context.Context, ln *lane) {
	for {
		batch, err := m.nextBatch(ctx, ln)
		if err != nil {
			return
		}
		m.process(ctx, ln, batch)
	}
}

// nextBatch waits for the lane's next batch: up to BatchSize records within
// the payload limit, taken as soon as it is complete or, when it is not, once
// MaximumBatchingWindowInSeconds have passed since its first record was read
// (at once with the default window of 0).
func (m *Mapping) nextBatch(ctx context.Context, ln *lane) ([]*record, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for {
		if len(ln.queue) > 0 {
			n, complete := batchCut(ln.queue, m.cfg.BatchSize, m.cfg.MaxPayloadBytes)
			wait := time.Until(ln.queue[0].readAt.Add(m.cfg.window()))
			if complete || wait <= 0 || ln.sh.closed {
				batch := ln.queue[:n:n]
				ln.queue = ln.queue[n:]
				return batch, nil
			}
			if err := m.waitLocked(ctx, wait); err != nil {
				return nil, err
			}
			continue
		}
		if err := m.waitLocked(ctx, 0); err != nil {
			return nil, err
		}
	}
}

// process invokes the function with a batch until every record of it is
// processed or discarded, or ctx ends:
//
//   - success: done;
//   - partial batch response: the records before the lowest reported
//     failure are done, the rest is retried;
//   - function error (or a complete-failure response): with
//     BisectBatchOnFunctionError a batch of several records is split in two
//     halves processed in turn (no retry counted), otherwise the batch is
//     retried;
//   - a retry beyond MaximumRetryAttempts discards the records instead, as
//     does MaximumRecordAgeInSeconds for the records that reached it;
//   - an error that is not a function error is retried without counting.
func (m *Mapping) process(ctx context.Context, ln *lane, batch []*record) {
	sh := ln.sh
	log := m.log.With("shard", sh.id, "lane", ln.n)
	queue := []work{{recs: batch}}
	notInvoked := 0 // consecutive errors before invocation, for their backoff
	for len(queue) > 0 {
		w := queue[0]
		queue = queue[1:]
		if w.recs = m.dropExpired(ctx, sh, w); len(w.recs) == 0 {
			continue
		}
		reqID := newRequestID()
		resp, err := m.fn.Invoke(ctx, reqID, eventPayload(w.recs))
		if ctx.Err() != nil {
			return
		}
		var fe *FunctionError
		if err != nil && !errors.As(err, &fe) { // not invoked: retry, not counted
			notInvoked++
			log.Warn("invocation failed before the function ran; retrying", "err", err, "batch", len(w.recs), "attempt", notInvoked)
			if sleepCtx(ctx, m.backoff(notInvoked)) != nil {
				return
			}
			queue = append([]work{w}, queue...)
			continue
		}
		notInvoked = 0
		w.invokes++
		m.mu.Lock()
		sh.invocations++
		if w.retries > 0 {
			sh.retries++
		}
		m.mu.Unlock()

		outcome := batchOutcome{retryFrom: len(w.recs)}
		switch {
		case fe != nil:
			outcome = batchOutcome{failed: true, reason: "function error " + fe.Type + ": " + fe.Message}
		case m.cfg.reportsItemFailures():
			outcome = parseBatchResponse(resp, w.recs)
		}
		w.lastFunctionError = fe != nil
		attrs := []any{"request_id", reqID, "batch", len(w.recs), "first", w.recs[0].seq, "attempt", w.invokes}
		switch {
		case !outcome.failed && outcome.retryFrom == len(w.recs):
			if outcome.reason != "" {
				log.Warn(outcome.reason, attrs...)
			}
			m.mu.Lock()
			m.doneLocked(sh, w.recs)
			m.mu.Unlock()
		case !outcome.failed: // partial: checkpoint before the lowest failure
			m.mu.Lock()
			m.doneLocked(sh, w.recs[:outcome.retryFrom])
			m.mu.Unlock()
			w.recs = w.recs[outcome.retryFrom:]
			log.Info("partial batch failure; retrying from the lowest failed record", append(attrs, "from", w.recs[0].seq)...)
			if !m.retry(ctx, sh, &w, log) {
				continue
			}
			queue = append([]work{w}, queue...)
		case m.cfg.BisectBatchOnFunctionError && len(w.recs) > 1:
			half := len(w.recs) / 2
			log.Info("batch failed; bisecting", append(attrs, "reason", outcome.reason)...)
			a, b := w, w
			a.recs, b.recs = w.recs[:half:half], w.recs[half:]
			queue = append([]work{a, b}, queue...)
		default:
			log.Info("batch failed", append(attrs, "reason", outcome.reason)...)
			if !m.retry(ctx, sh, &w, log) {
				continue
			}
			queue = append([]work{w}, queue...)
		}
	}
}

// retry counts a retry of w and waits its backoff; when the retries are
// exhausted it discards w's records instead and returns false.
func (m *Mapping) retry(ctx context.Context, sh *shard, w *work, log *slog.Logger) bool {
	if m.cfg.MaximumRetryAttempts >= 0 && w.retries >= m.cfg.MaximumRetryAttempts {
		m.discard(ctx, sh, *w, ConditionRetryAttemptsExhausted, log)
		return false
	}
	w.retries++
	return sleepCtx(ctx, m.backoff(w.retries)) == nil
}

// dropExpired discards the records of w that are older than
// MaximumRecordAgeInSeconds (a prefix: arrival times grow along a shard) and
// returns the others.
func (m *Mapping) dropExpired(ctx context.Context, sh *shard, w work) []*record {
	if m.cfg.MaximumRecordAgeInSeconds < 0 {
		return w.recs
	}
	maxAge := time.Duration(m.cfg.MaximumRecordAgeInSeconds) * time.Second
	n := 0
	for n < len(w.recs) && time.Since(w.recs[n].arrival) > maxAge {
		n++
	}
	if n == 0 {
		return w.recs
	}
	expired := w
	expired.recs = w.recs[:n]
	m.discard(ctx, sh, expired, ConditionRecordAgeExceeded, m.log.With("shard", sh.id))
	return w.recs[n:]
}

// discard sends w's invocation record to the on-failure destination
// (retrying until it is stored or ctx ends) and then marks its records done.
func (m *Mapping) discard(ctx context.Context, sh *shard, w work, condition string, log *slog.Logger) {
	rec := m.invocationRecord(sh, w, condition)
	log.Warn("discarding records", "condition", condition, "batch", len(w.recs),
		"start", rec.KinesisBatchInfo.StartSequenceNumber, "end", rec.KinesisBatchInfo.EndSequenceNumber,
		"invokes", w.invokes)
	if m.cfg.OnFailure != nil {
		for attempt := 1; ; attempt++ {
			err := m.cfg.OnFailure.Send(ctx, rec)
			if err == nil {
				break
			}
			if ctx.Err() != nil {
				return
			}
			log.Warn("on-failure destination failed; retrying", "err", err, "attempt", attempt)
			if sleepCtx(ctx, m.backoff(attempt)) != nil {
				return
			}
		}
	}
	m.mu.Lock()
	sh.discarded += len(w.recs)
	m.doneLocked(sh, w.recs)
	m.mu.Unlock()
}

func (m *Mapping) invocationRecord(sh *shard, w work, condition string) InvocationRecord {
	var rec InvocationRecord
	first, last := w.recs[0], w.recs[len(w.recs)-1]
	rec.RequestContext.RequestID = newRequestID()
	rec.RequestContext.FunctionARN = m.functionARN
	rec.RequestContext.Condition = condition
	rec.RequestContext.ApproximateInvokeCount = w.invokes
	rec.ResponseContext.StatusCode = 200
	rec.ResponseContext.ExecutedVersion = "$LATEST"
	if w.lastFunctionError {
		rec.ResponseContext.FunctionError = "Unhandled"
	}
	rec.Version = "1.0"
	rec.Timestamp = isoMillis(time.Now())
	rec.KinesisBatchInfo = KinesisBatchInfo{
		ShardID:                         sh.id,
		StartSequenceNumber:             first.seq,
		EndSequenceNumber:               last.seq,
		ApproximateArrivalOfFirstRecord: isoMillis(first.arrival),
		ApproximateArrivalOfLastRecord:  isoMillis(last.arrival),
		BatchSize:                       len(w.recs),
		StreamARN:                       m.streamARN,
	}
	rec.Payload = eventPayload(w.recs)
	return rec
}

func isoMillis(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }
