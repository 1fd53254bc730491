package pipeline

import (
	"context"
	"errors"
	"fmt"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/ferry-migrate/ferry/extract"
	"github.com/ferry-migrate/ferry/load"
	"github.com/ferry-migrate/ferry/transform"
)

// syncBatch is the changes applied together: items folded per key, records in
// stream order, and the positions the batch completes.
type syncBatch struct {
	fold    *fold
	records []load.Record // Ref: the index in recChanges
	// recChanges is the change of each record; acked marks the records
	// Kinesis accepted (or that went to the dead-letter file), so a retried
	// flush sends only the others and a key's records stay in order.
	recChanges []*extract.Change
	acked      []bool
	changes    int
	snapRows   int       // of which rows of an online snapshot's chunks
	first      time.Time // arrival of the first change
	maxPos     extract.Position
	ackLSN     extract.LSN // end of the last transaction whose commit is in the batch
	commitLSN  extract.LSN
	commitTime time.Time
	oldest     time.Time // commit time of the oldest change in the batch
	// snap is the online snapshot's progress once this batch (with the rows
	// of its last chunk) is applied; nil when the batch holds no chunk.
	snap *SnapshotProgress
}

func newSyncBatch() *syncBatch { return &syncBatch{fold: newFold()} }

func (b *syncBatch) empty() bool { return b.changes == 0 && b.ackLSN == 0 && b.snap == nil }

// apply consumes events until the channel closes or ctx ends, then flushes.
func (s *syncer) apply(ctx context.Context, events <-chan extract.Event) error {
	b := newSyncBatch()
	inTx := false
	// replayUntil: what was durable when this session started; changes up
	// to it are the replay of a restart or reconnect.
	replayUntil, behindWarned := s.ck.cp.Pos, false
	var txTime time.Time
	linger := time.NewTimer(time.Hour)
	linger.Stop()
	// cpTimer writes a deferred checkpoint once it is due.
	cpTimer := time.NewTimer(time.Hour)
	cpTimer.Stop()
	armCheckpoint := func() {
		if d, ok := s.ck.checkpointDue(); ok {
			cpTimer.Reset(d)
		}
	}
	src := transform.RecordSource{DB: dbName(s.cfg.SourceURL)}
	s.online.reset(s.ck.cp.Snapshot)
	// snapTick wakes an idle loop for the next chunk of an online snapshot.
	snapTick := time.NewTicker(50 * time.Millisecond)
	defer snapTick.Stop()
	finish := func() error {
		if s.ck.replaying(b.maxPos) {
			// The replay has not passed the intent of a run that stopped
			// mid-batch: writing this batch could show an item state older
			// than one that run wrote. The next start replays it.
			return nil
		}
		fctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := s.flush(fctx, b); err != nil {
			return err
		}
		return s.saveDeferred(fctx)
	}
	for {
		var ev extract.Event
		var ok bool
		select {
		case <-ctx.Done():
			return finish()
		case <-linger.C:
			if err := s.flushIfAllowed(ctx, &b, true); err != nil {
				return err
			}
			armCheckpoint()
			continue
		case <-cpTimer.C:
			if err := s.saveDeferred(ctx); err != nil {
				return err
			}
			continue
		case reqs := <-s.snapReqs:
			s.online.reqs = reqs
			continue
		case <-snapTick.C:
			if !inTx && (s.online.prog != nil || len(s.online.reqs) > 0) {
				if err := s.maybeReadChunk(ctx, b); err != nil {
					return err
				}
				if b.snap != nil && b.changes == 0 && len(events) == 0 {
					// A chunk that left no rows: record its progress.
					if err := s.flushIfAllowed(ctx, &b, true); err != nil {
						return err
					}
					armCheckpoint()
				}
			}
			continue
		case ev, ok = <-events:
			if !ok {
				return finish()
			}
		}
		switch ev.Kind {
		case extract.EventBegin:
			inTx, txTime = true, ev.Time
		case extract.EventCommit:
			inTx = false
			s.online.recent.add(ev.TxID)
			b.ackLSN, b.commitLSN, b.commitTime = ev.EndLSN, ev.CommitLSN, ev.Time
			s.noteServerEnd(ev.EndLSN)
		case extract.EventRelation:
			if err := s.onRelation(ctx, b, ev.Relation, ev.CommitLSN); err != nil {
				return err
			}
		case extract.EventKeepalive, extract.EventMessage:
			if ev.Kind == extract.EventMessage && ev.Prefix == extract.WatermarkPrefix && s.online.win != nil && ev.Content == s.online.win.id {
				if err := s.emitWindow(ctx, b, ev.EndLSN, src); err != nil {
					return err
				}
				if b.changes > 0 {
					linger.Reset(s.cfg.Linger)
				}
				break
			}
			if ev.Kind == extract.EventKeepalive {
				s.noteServerEnd(ev.EndLSN)
			}
			if !inTx && b.empty() {
				s.ck.idle(ev.EndLSN)
			}
		case extract.EventChange:
			ch := ev.Change
			if s.ck.durable(ch.Pos) {
				if !replayUntil.Less(ch.Pos) {
					continue // already durable (a replay after a restart)
				}
				// The stream is ordered by commit position: a change behind
				// what this session applied means that order was broken
				// somewhere. Skipping it could lose it; applying it again is
				// harmless (the writes are conditional on the version).
				if !behindWarned {
					behindWarned = true
					s.log.Error("sync: a change arrived behind the position already applied; applying it (writes are version-conditional)",
						"table", ch.Table.QualifiedName(), "lsn", ch.Pos.LSN, "seq", ch.Pos.Seq, "applied_lsn", s.ck.cp.Pos.LSN, "applied_seq", s.ck.cp.Pos.Seq)
				}
			}
			if tp := s.tables[ch.Table.QualifiedName()]; tp != nil {
				// After a schema change the decoder's table is the one its
				// Relation message described; the plan's is the same
				// definition, resolved (onRelation).
				ch.Table = tp.Source
			}
			if s.online.win != nil {
				s.online.win.observe(ch)
			}
			if ch.Op == extract.OpTruncate {
				if err := s.flush(ctx, b); err != nil {
					return err
				}
				if err := s.saveDeferred(ctx); err != nil {
					return err
				}
				b = newSyncBatch()
				if err := s.truncate(ctx, ch, src); err != nil {
					return err
				}
				continue
			}
			if err := s.addChange(ctx, b, ch, src, txTime); err != nil {
				return err
			}
			if b.changes == 1 {
				linger.Reset(s.cfg.Linger)
			}
		}
		if !inTx && (s.online.prog != nil || len(s.online.reqs) > 0) {
			if err := s.maybeReadChunk(ctx, b); err != nil {
				return err
			}
		}
		full := b.changes >= s.cfg.BatchChanges
		idle := len(events) == 0 && !inTx && !b.empty()
		if full || idle {
			if err := s.flushIfAllowed(ctx, &b, full); err != nil {
				return err
			}
			armCheckpoint()
		}
	}
}

// flushIfAllowed flushes unless the batch has not yet replayed past the
// intent of a crashed run (then the fold could write an item state older than
// one that run already wrote).
func (s *syncer) flushIfAllowed(ctx context.Context, b **syncBatch, force bool) error {
	if !s.ck.mayFlush((*b).maxPos, (*b).changes, force, s.cfg.BatchChanges) {
		return nil
	}
	if err := s.flush(ctx, *b); err != nil {
		return err
	}
	*b = newSyncBatch()
	s.ck.flushed()
	return nil
}

func (s *syncer) addChange(ctx context.Context, b *syncBatch, ch *extract.Change, src transform.RecordSource, txTime time.Time) error {
	tp := s.tables[ch.Table.QualifiedName()]
	if tp == nil {
		return nil
	}
	if err := s.completeRow(ctx, b, tp, ch); err != nil {
		return fmt.Errorf("%s of %s (%s) at %s: %w", ch.Op, tp.Source.QualifiedName(), tp.KeyString(ch.After), ch.Pos.LSN, err)
	}
	if err := b.add(tp, ch, src, txTime, time.Now()); err != nil {
		var rc *refusedChange
		if errors.As(err, &rc) {
			return s.badChange(ctx, tp, ch, rc.err)
		}
		return err
	}
	if b.changes == 1 {
		s.pendingSince.CompareAndSwap(0, txTime.UnixNano())
	}
	return nil
}

// add is the batcher: it turns one change (its row image complete) into its
// records and folds it into the batch's item writes, with no I/O. A change
// that cannot be turned into its events or item (a *refusedChange, for the
// error policy) leaves nothing half-added to the batch.
func (b *syncBatch) add(tp *transform.TablePlan, ch *extract.Change, src transform.RecordSource, txTime, now time.Time) error {
	var recs []load.Record
	if tp.Stream != "" {
		events := []*extract.Change{ch}
		if ch.Op == extract.OpUpdate && primaryKeyChanged(tp, ch) {
			// Like Debezium: a key change is a delete of the old key and a
			// create of the new one, each in its own key's order.
			del, cre := *ch, *ch
			del.Op, del.After = extract.OpDelete, nil
			cre.Op, cre.Before = extract.OpCreate, nil
			events = []*extract.Change{&del, &cre}
		}
		for _, ev := range events {
			pk, data, err := tp.Record(ev, src, now)
			if err != nil {
				return &refusedChange{err}
			}
			recs = append(recs, load.Record{Stream: tp.Stream, PartitionKey: pk, Data: data})
		}
	}
	if err := b.fold.add(ch, tp); err != nil {
		var re *transform.RowError
		if errors.As(err, &re) {
			return &refusedChange{err}
		}
		return fmt.Errorf("%s at %s: %w", ch.Op, ch.Pos.LSN, err)
	}
	for _, r := range recs {
		r.Ref = len(b.recChanges)
		b.records = append(b.records, r)
		b.recChanges = append(b.recChanges, ch)
	}
	if b.changes == 0 {
		b.first, b.oldest = now, txTime
	}
	b.changes++
	b.maxPos = ch.Pos
	return nil
}

// refusedChange is a change the batcher cannot turn into its record or
// item (a value or key the target cannot hold): the error policy decides.
type refusedChange struct{ err error }

func (e *refusedChange) Error() string { return e.err.Error() }
func (e *refusedChange) Unwrap() error { return e.err }

// badChange applies the error policy to a change that cannot be transformed
// (a value or key the target cannot hold): stop names it, skip dead-letters it.
func (s *syncer) badChange(ctx context.Context, tp *transform.TablePlan, ch *extract.Change, err error) error {
	f := changeFailure(tp, ch, err)
	if s.cfg.OnError != OnErrorSkip {
		return &rowStopError{f: f}
	}
	return s.deadLetter(ctx, f)
}

// deadLetter writes a skipped row to the dead-letter file and records it in
// the control table, before its position can be acknowledged (after a crash
// it may be written again).
func (s *syncer) deadLetter(ctx context.Context, f RowFailure) error {
	if err := s.cfg.DeadLetter.Write(ctx, f, s.cfg.Control); err != nil {
		return err
	}
	s.log.Warn("change skipped (--on-error=skip): written to the dead-letter file", "table", f.Table, "key", f.Key,
		"op", f.Op, "lsn", f.LSN, "reason", f.Reason, "file", s.cfg.DeadLetter.Path)
	return nil
}

// rowStopError stops sync at a change that can never be written, under
// --on-error=stop. It names the table and key; the change is not acknowledged.
type rowStopError struct {
	f    RowFailure
	more int // other changes of the same batch that failed too
}

func (e *rowStopError) Error() string {
	also := ""
	if e.more > 0 {
		also = fmt.Sprintf(" (and %d more changes of the same batch)", e.more)
	}
	return fmt.Sprintf("table %s, key (%s), %s at %s: %s%s; stopped before acknowledging it (--on-error=stop); the change is read again when sync restarts, so change the mapping (exclude or convert the column) and start sync again, or start it with --on-error=skip to write such changes to the dead-letter file",
		e.f.Table, e.f.Key, opName(e.f.Op), e.f.LSN, e.f.Reason, also)
}

func opName(op string) string {
	switch op {
	case "c":
		return "insert"
	case "u":
		return "update"
	case "d":
		return "delete"
	case "t":
		return "truncate"
	}
	return "change"
}

// flush makes the batch durable in both targets, then checkpoints, then
// acknowledges the slot — in that order (acknowledge last). A transient
// failure (throttling, an outage of DynamoDB or Kinesis) is retried with
// capped backoff until it passes or ctx ends: sync falls behind, then
// catches up.
func (s *syncer) flush(ctx context.Context, b *syncBatch) error {
	start := time.Now()
	if err := s.withRetry(ctx, "applying a batch", func() error { return s.flushOnce(ctx, b) }); err != nil {
		return err
	}
	if b.snapRows > 0 {
		// Every attempt counts: a retried batch paused sync that long.
		s.online.sizer.observe(b.changes, time.Since(start))
	}
	return nil
}

func (s *syncer) flushOnce(ctx context.Context, b *syncBatch) error {
	if b.empty() {
		return nil
	}
	if b.snap != nil {
		s.replaceSnapshotProgress(b.snap)
	}
	if b.changes == 0 {
		s.ck.commitsOnly(b.ackLSN, b.snap)
		return nil
	}
	start := time.Now()
	if err := s.ck.beforeApply(ctx, b.maxPos, b.fold.hasDeletes()); err != nil {
		return err
	}
	if len(b.acked) != len(b.records) {
		b.acked = make([]bool, len(b.records))
	}
	var dFails []itemFailure
	var kFails []load.RecordFailure
	var dTook, kTook time.Duration
	applyStart := time.Now()
	g, gctx := errgroup.WithContext(ctx)
	if !s.cfg.ApplyStream { // else the stream's appliers write the items
		g.Go(func() error {
			var err error
			_, dFails, err = b.fold.apply(gctx, s.cfg.Dynamo, s.cfg.ApplyWorkers, s.reread)
			dTook = time.Since(applyStart)
			return err
		})
	}
	var todo []load.Record
	for i, r := range b.records {
		if !b.acked[i] {
			todo = append(todo, r)
		}
	}
	if len(todo) > 0 {
		g.Go(func() error {
			acked := make([]bool, len(todo))
			var err error
			kFails, err = s.cfg.Kinesis.PutAcked(gctx, todo, acked)
			kTook = time.Since(applyStart)
			for j, ok := range acked {
				if ok {
					b.acked[todo[j].Ref.(int)] = true
				}
			}
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return fmt.Errorf("apply batch ending at %s: %w", b.maxPos.LSN, err)
	}
	if err := s.rowFailures(ctx, b, dFails, kFails); err != nil {
		return err
	}
	// Where a batch's time goes (FERRY_DEBUG=1): the intent record
	// before it, DynamoDB's and Kinesis' share (in parallel).
	s.observeBatch(b, time.Since(start))
	s.log.Debug("batch applied", "changes", b.changes, "items", b.fold.len(), "records", len(todo),
		"intent", applyStart.Sub(start).Round(time.Microsecond), "dynamodb", dTook.Round(time.Microsecond),
		"kinesis", kTook.Round(time.Microsecond))
	// Durable in both targets: recorded now, or (deferred) by the next
	// checkpoint write — at most CheckpointEvery later, before the next
	// batch with deletes, or when sync stops.
	if err := s.ck.applied(ctx, b.maxPos, b.changes, b.ackLSN, b.commitTime, b.snap); err != nil {
		return err
	}
	s.pendingSince.Store(0)
	s.mu.Lock()
	s.status.Changes += int64(b.changes)
	if b.commitLSN != 0 {
		s.status.LastCommitLSN, s.status.LastCommit = b.commitLSN, b.commitTime
	}
	s.mu.Unlock()
	return nil
}

// saveDeferred writes the checkpoint of batches applied since the last
// write, if there are any (retried while the failure is transient).
func (s *syncer) saveDeferred(ctx context.Context) error {
	return s.withRetry(ctx, "checkpoint", func() error { return s.ck.saveDeferred(ctx) })
}

// rowFailures applies the error policy to the items and records of a batch
// that the targets can never accept (the rest of the batch is durable).
func (s *syncer) rowFailures(ctx context.Context, b *syncBatch, dFails []itemFailure, kFails []load.RecordFailure) error {
	var fails []RowFailure
	for _, f := range dFails {
		iw := f.iw
		fails = append(fails, RowFailure{Table: iw.tp.Source.QualifiedName(), Key: iw.keyText, Reason: "DynamoDB: " + f.err.Error(),
			Op: iw.op.String(), LSN: iw.pos.LSN.String(), Row: rowText(iw.tp.Source, iw.row)})
	}
	for _, f := range kFails {
		i := f.Rec.Ref.(int)
		ch := b.recChanges[i]
		tp := s.tables[ch.Table.QualifiedName()]
		fails = append(fails, changeFailure(tp, ch, fmt.Errorf("Kinesis: %w", f.Err)))
	}
	if len(fails) == 0 {
		return nil
	}
	if s.cfg.OnError != OnErrorSkip {
		for _, f := range fails[1:] {
			s.log.Error("change cannot be written", "table", f.Table, "key", f.Key, "op", f.Op, "lsn", f.LSN, "reason", f.Reason)
		}
		return &rowStopError{f: fails[0], more: len(fails) - 1}
	}
	for _, f := range fails {
		if err := s.deadLetter(ctx, f); err != nil {
			return err
		}
	}
	for _, f := range dFails {
		f.iw.dead = true
	}
	for _, f := range kFails {
		b.acked[f.Rec.Ref.(int)] = true
	}
	return nil
}

func (s *syncer) noteServerEnd(lsn extract.LSN) {
	for {
		cur := s.serverEnd.Load()
		if uint64(lsn) <= cur || s.serverEnd.CompareAndSwap(cur, uint64(lsn)) {
			return
		}
	}
}

// primaryKeyChanged reports whether an update changed the source primary key
// (the old key tuple is only sent when it did).
func primaryKeyChanged(tp *transform.TablePlan, ch *extract.Change) bool {
	if ch.Before == nil {
		return false
	}
	for _, i := range tp.Source.PK {
		b, a := ch.Before[i], ch.After[i]
		if b.Unchanged || a.Unchanged {
			continue
		}
		if b.Null != a.Null || b.Text != a.Text {
			return true
		}
	}
	return false
}
