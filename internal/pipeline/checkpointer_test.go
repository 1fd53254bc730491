package pipeline

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ferry-migrate/ferry/extract"
)

// fakeCheckpoints records the stored checkpoints; fail makes the next Save
// fail (the control table unreachable).
type fakeCheckpoints struct {
	saved []Checkpoint
	fail  error
}

func (f *fakeCheckpoints) Save(_ context.Context, cp Checkpoint) error {
	if f.fail != nil {
		err := f.fail
		f.fail = nil
		return err
	}
	f.saved = append(f.saved, cp)
	return nil
}

func (f *fakeCheckpoints) last() (Checkpoint, bool) {
	if len(f.saved) == 0 {
		return Checkpoint{}, false
	}
	return f.saved[len(f.saved)-1], true
}

// fakeSlot is a slot that checks the acknowledge-last rule on every Ack: the
// slot never moves past the stored checkpoint's LSN while something applied
// is unrecorded.
type fakeSlot struct {
	t     *testing.T
	ck    *checkpointer
	store *fakeCheckpoints
	acked extract.LSN
}

func (f *fakeSlot) Acked() extract.LSN { return f.acked }

func (f *fakeSlot) Ack(lsn extract.LSN) {
	f.t.Helper()
	stored, _ := f.store.last()
	if lsn > stored.LSN && f.ck.dirty {
		f.t.Errorf("slot acknowledged to %s while applied batches are unrecorded (stored checkpoint at %s)", lsn, stored.LSN)
	}
	if lsn > f.acked {
		f.acked = lsn
	}
}

// clock is a manual clock for the deferred-checkpoint rule.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func newTestCheckpointer(t *testing.T, every time.Duration, cp Checkpoint) (*checkpointer, *fakeCheckpoints, *fakeSlot, *clock) {
	store := &fakeCheckpoints{}
	c := newCheckpointer(store, every, cp)
	clk := &clock{t: time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)}
	c.now = clk.now
	c.savedAt = clk.t
	slot := &fakeSlot{t: t, ck: c, store: store, acked: cp.LSN}
	c.acker = slot
	return c, store, slot, clk
}

func pos(lsn uint64, seq uint32) extract.Position {
	return extract.Position{LSN: extract.LSN(lsn), Seq: seq}
}

// TestCheckpointerDeferredAndAcknowledgeLast: batches applied within the
// interval are recorded by the next stored checkpoint; the slot is
// acknowledged only up to stored checkpoints.
func TestCheckpointerDeferredAndAcknowledgeLast(t *testing.T) {
	ctx := t.Context()
	c, store, slot, clk := newTestCheckpointer(t, time.Second, Checkpoint{LSN: 100, Pos: pos(90, 1)})
	// Two batches within the second: deferred, the slot stays.
	for i, end := range []uint64{200, 300} {
		if err := c.beforeApply(ctx, pos(end-10, 1), false); err != nil {
			t.Fatal(err)
		}
		if err := c.applied(ctx, pos(end-10, 1), 5, extract.LSN(end), clk.t, nil); err != nil {
			t.Fatal(err)
		}
		if len(store.saved) != 0 || slot.acked != 100 {
			t.Fatalf("batch %d: %d stored, slot at %s; want deferred", i, len(store.saved), slot.acked)
		}
	}
	if d, ok := c.checkpointDue(); !ok || d != time.Second {
		t.Errorf("checkpointDue = %s, %v; want 1s, true", d, ok)
	}
	// An idle keepalive must not move the slot past the unrecorded batches.
	c.idle(1000)
	if slot.acked != 100 {
		t.Errorf("keepalive moved the slot to %s with batches unrecorded", slot.acked)
	}
	// Commits of unmapped transactions neither.
	c.commitsOnly(400, nil)
	if slot.acked != 100 {
		t.Errorf("commits moved the slot to %s with batches unrecorded", slot.acked)
	}
	if err := c.saveDeferred(ctx); err != nil {
		t.Fatal(err)
	}
	got, _ := store.last()
	if got.LSN != 400 || got.Pos != pos(290, 1) || got.Changes != 10 || slot.acked != 400 {
		t.Errorf("stored %+v, slot at %s; want LSN 400, pos 290:1, 10 changes, slot at 400", got, slot.acked)
	}
	if _, ok := c.checkpointDue(); ok {
		t.Error("a checkpoint is still due after it was stored")
	}
	// Nothing unrecorded: keepalives and unmapped commits advance the slot
	// without a write.
	c.idle(500)
	c.commitsOnly(600, nil)
	if slot.acked != 600 || len(store.saved) != 1 {
		t.Errorf("slot at %s with %d writes; want 600 and no new write", slot.acked, len(store.saved))
	}
	// Once the interval has passed, a batch is stored at once.
	clk.t = clk.t.Add(2 * time.Second)
	if err := c.applied(ctx, pos(690, 2), 1, 700, clk.t, nil); err != nil {
		t.Fatal(err)
	}
	if got, _ := store.last(); got.LSN != 700 || slot.acked != 700 {
		t.Errorf("stored at %s, slot at %s; want 700 both", got.LSN, slot.acked)
	}
}

// TestCheckpointerIntent: a batch with deletes is preceded by a stored
// intent naming its end, with the old position and snapshot progress; a
// run restarted from it does not write a batch ending before the intent
// (unless forced at 4× the batch size); a failed store applies nothing.
func TestCheckpointerIntent(t *testing.T) {
	ctx := t.Context()
	old := &SnapshotProgress{Request: "r1", Chunks: 1}
	c, store, slot, clk := newTestCheckpointer(t, time.Hour, Checkpoint{LSN: 100, Pos: pos(90, 1), Snapshot: old})
	store.fail = errors.New("control table unreachable")
	if err := c.beforeApply(ctx, pos(190, 3), true); err == nil {
		t.Fatal("beforeApply passed with the intent not stored")
	}
	if err := c.beforeApply(ctx, pos(190, 3), true); err != nil {
		t.Fatal(err)
	}
	icp, _ := store.last()
	if icp.Intent != pos(190, 3) || icp.Pos != pos(90, 1) || icp.LSN != 100 || icp.Snapshot != old {
		t.Fatalf("intent record %+v: want intent 190:3 over the old position, LSN and snapshot progress", icp)
	}
	if slot.acked != 100 {
		t.Errorf("the intent moved the slot to %s", slot.acked)
	}
	// The batch applied: recorded (deferred, the interval is an hour) and
	// the intent is over.
	next := &SnapshotProgress{Request: "r1", Chunks: 2}
	if err := c.applied(ctx, pos(190, 3), 4, 200, clk.t, next); err != nil {
		t.Fatal(err)
	}
	if c.replaying(pos(150, 1)) || c.cp.Intent != (extract.Position{}) || c.cp.Snapshot != next {
		t.Errorf("after the batch: replaying %v, intent %v, snapshot %+v", c.replaying(pos(150, 1)), c.cp.Intent, c.cp.Snapshot)
	}

	// A run restarted from the intent record.
	r, _, _, _ := newTestCheckpointer(t, time.Hour, icp)
	tests := []struct {
		name    string
		maxPos  extract.Position
		changes int
		force   bool
		want    bool
	}{
		{"before the intent: wait", pos(150, 1), 10, false, false},
		{"before the intent, forced but small: wait", pos(150, 1), 10, true, false},
		{"before the intent, forced at 4x the batch: write", pos(150, 1), 400, true, true},
		{"at the intent: write", pos(190, 3), 10, false, true},
		{"past the intent: write", pos(195, 1), 1, false, true},
	}
	for _, tc := range tests {
		if got := r.mayFlush(tc.maxPos, tc.changes, tc.force, 100); got != tc.want {
			t.Errorf("%s: mayFlush = %v, want %v", tc.name, got, tc.want)
		}
	}
	if !r.durable(pos(90, 1)) || r.durable(pos(90, 2)) {
		t.Error("durable: changes up to the stored position are the replay, later ones are not")
	}
	r.flushed()
	if r.replaying(pos(150, 1)) {
		t.Error("still replaying after a batch was written")
	}
}

// TestCheckpointerSnapshotOnlyChunk: a chunk that left no rows records its
// progress like a batch (deferred), and keeps the slot until recorded.
func TestCheckpointerSnapshotOnlyChunk(t *testing.T) {
	c, store, slot, _ := newTestCheckpointer(t, time.Hour, Checkpoint{LSN: 100, Pos: pos(90, 1)})
	p := &SnapshotProgress{Request: "r1", Chunks: 1}
	c.commitsOnly(150, p)
	if slot.acked != 100 || !c.dirty || c.cp.Snapshot != p {
		t.Fatalf("slot at %s, dirty %v: the progress must be recorded before the slot moves", slot.acked, c.dirty)
	}
	afterSaves := 0
	c.afterSave = func(context.Context) error { afterSaves++; return nil }
	if err := c.saveDeferred(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got, _ := store.last(); got.Snapshot != p || got.LSN != 150 || slot.acked != 150 || afterSaves != 1 {
		t.Errorf("stored %+v, slot at %s, afterSave ran %d times", got, slot.acked, afterSaves)
	}
}
