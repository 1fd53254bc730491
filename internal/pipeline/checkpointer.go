package pipeline

import (
	"context"
	"time"

	"github.com/ferry-migrate/ferry/extract"
	"github.com/ferry-migrate/ferry/load"
)

// checkpointer keeps the rules that make sync exact through crashes, apart
// from the code that reads the stream (the batcher) and the code that writes
// a batch (the applier):
//
//   - Acknowledge last. The slot is acknowledged up to a checkpoint's LSN only
//     once that checkpoint is stored; beyond it only while nothing applied is
//     unrecorded (commits of transactions that touched nothing mapped, and
//     keepalives of an idle stream).
//   - Intent. A batch that deletes items is preceded by a stored checkpoint
//     naming the batch's end (Intent): after a crash mid-batch, the replay
//     does not write a batch that ends before it (the fold of a part could
//     put back, older, an item the crashed run deleted), unless the batch
//     grows past 4× the batch size (memory comes first; a replayed write is
//     still conditional on the version).
//   - Deferred. A batch applied within every of the last stored checkpoint is
//     recorded by the next one (at most every later, before the next batch
//     with deletes, or when sync stops); the slot is not acknowledged past it
//     until then.
//
// It does no I/O of its own beyond its two small interfaces, so its rules are
// tested on fakes in milliseconds (checkpointer_test.go).
type checkpointer struct {
	store checkpointStore
	acker slotAcker // the session's replication stream (set at each session start)
	every time.Duration
	now   func() time.Time
	// afterSave runs after each stored checkpoint (the records of finished
	// online snapshots, the status).
	afterSave func(ctx context.Context) error

	cp      Checkpoint // everything applied (ahead of the stored one when dirty)
	dirty   bool
	savedAt time.Time
	// intent: the end of a batch that may have been partly applied (by a
	// crashed run, or by this one until the batch is applied).
	intent extract.Position
}

// checkpointStore stores a slot's checkpoint durably (the control table).
type checkpointStore interface {
	Save(ctx context.Context, cp Checkpoint) error
}

// slotAcker acknowledges the replication slot (extract.ReplicationStream).
type slotAcker interface {
	Ack(lsn extract.LSN)
	Acked() extract.LSN
}

// controlCheckpoints is the control table's checkpointStore for one slot.
type controlCheckpoints struct {
	ctl   *load.ControlStore
	slot  string
	apply string // Checkpoint.Apply
}

func (c controlCheckpoints) Save(ctx context.Context, cp Checkpoint) error {
	cp.Apply = c.apply
	return SaveCheckpoint(ctx, c.ctl, c.slot, cp)
}

func newCheckpointer(store checkpointStore, every time.Duration, cp Checkpoint) *checkpointer {
	return &checkpointer{store: store, every: every, now: time.Now, cp: cp, intent: cp.Intent}
}

// replaying reports whether a batch ending at maxPos ends before the intent
// of a run that stopped mid-batch (writing it could show an item state older
// than one that run wrote).
func (c *checkpointer) replaying(maxPos extract.Position) bool {
	return c.intent != (extract.Position{}) && maxPos.Less(c.intent)
}

// mayFlush reports whether a batch of changes ending at maxPos may be written
// now (see replaying; force with 4× the batch size overrides it).
func (c *checkpointer) mayFlush(maxPos extract.Position, changes int, force bool, batchChanges int) bool {
	return !c.replaying(maxPos) || force && changes >= 4*batchChanges
}

// flushed: a batch was written (by flushIfAllowed's rule); the replay is over.
func (c *checkpointer) flushed() { c.intent = extract.Position{} }

// durable reports whether the change at pos is already applied (a replay).
func (c *checkpointer) durable(pos extract.Position) bool { return !c.cp.Pos.Less(pos) }

// commitsOnly records a batch that holds no change: commits of transactions
// that touched nothing mapped (acknowledged without a checkpoint write: the
// stored one stays valid, just older, unless a deferred one must be written
// first) and, with snap, the progress of an online snapshot chunk that left
// no rows.
func (c *checkpointer) commitsOnly(ackLSN extract.LSN, snap *SnapshotProgress) {
	if snap != nil {
		c.cp.Snapshot, c.dirty = snap, true
	}
	if ackLSN > c.cp.LSN {
		c.cp.LSN = ackLSN
		if !c.dirty {
			c.acker.Ack(ackLSN)
		}
	}
}

// beforeApply runs before a batch ending at maxPos is written: with deletes,
// the intent record is stored first. An online snapshot chunk in the batch
// advances the snapshot's progress only once the batch is applied (the intent
// keeps the old progress: a crash in between reads the chunk again).
func (c *checkpointer) beforeApply(ctx context.Context, maxPos extract.Position, deletes bool) error {
	if deletes {
		icp := c.cp
		icp.Intent = maxPos
		if err := c.save(ctx, icp); err != nil {
			return err
		}
	}
	if c.intent.Less(maxPos) {
		// Until this batch is applied, a reconnect must replay past it.
		c.intent = maxPos
	}
	return nil
}

// applied records a batch made durable in both targets: stored now when the
// last stored checkpoint is every old, else deferred.
func (c *checkpointer) applied(ctx context.Context, maxPos extract.Position, changes int, ackLSN extract.LSN, commitTime time.Time, snap *SnapshotProgress) error {
	cp := c.cp
	if snap != nil {
		cp.Snapshot = snap
	}
	cp.Pos = maxPos
	cp.Changes += int64(changes)
	if ackLSN > cp.LSN {
		cp.LSN, cp.CommitTime = ackLSN, commitTime
	}
	cp.Intent = extract.Position{}
	if c.now().Sub(c.savedAt) >= c.every {
		if err := c.save(ctx, cp); err != nil {
			return err
		}
	} else {
		c.cp, c.dirty = cp, true
	}
	if !maxPos.Less(c.intent) {
		c.intent = extract.Position{}
	}
	return nil
}

// idle acknowledges a position of the stream (a keepalive's WAL end, a
// heartbeat) when nothing of ours is in flight or unrecorded: an idle (or
// elsewhere busy) source then retains no WAL. The caller knows that no
// change is pending in a batch.
func (c *checkpointer) idle(lsn extract.LSN) {
	if !c.dirty && lsn > c.acker.Acked() {
		c.acker.Ack(lsn)
	}
}

// saveDeferred stores the checkpoint of batches applied since the last
// stored one, if there are any.
func (c *checkpointer) saveDeferred(ctx context.Context) error {
	if !c.dirty {
		return nil
	}
	return c.save(ctx, c.cp)
}

// checkpointDue returns how long until a deferred checkpoint is due (ok is
// false when none is).
func (c *checkpointer) checkpointDue() (time.Duration, bool) {
	if !c.dirty {
		return 0, false
	}
	return max(0, c.savedAt.Add(c.every).Sub(c.now())), true
}

// save stores cp, makes it the current one, then acknowledges the slot up to
// it — in that order (acknowledge last).
func (c *checkpointer) save(ctx context.Context, cp Checkpoint) error {
	cp.Updated = c.now().UTC()
	if err := c.store.Save(ctx, cp); err != nil {
		return err
	}
	c.cp, c.dirty, c.savedAt = cp, false, c.now()
	c.acker.Ack(cp.LSN)
	if c.afterSave != nil {
		return c.afterSave(ctx)
	}
	return nil
}
