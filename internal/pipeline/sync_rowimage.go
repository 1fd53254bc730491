package pipeline

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/ferry-migrate/ferry/extract"
	"github.com/ferry-migrate/ferry/transform"
)

// completeRow makes a change's new row image whole before it becomes an item
// and an event: columns an UPDATE left out as unchanged TOAST where their
// values are known (completeUpdate), and the stored generated columns that
// pgoutput never sends (fillGenerated).
func (s *syncer) completeRow(ctx context.Context, b *syncBatch, tp *transform.TablePlan, ch *extract.Change) error {
	if ch.Op != extract.OpCreate && ch.Op != extract.OpUpdate {
		return nil
	}
	if ch.Op == extract.OpUpdate && missing(tp.Source, ch.After) {
		if err := s.completeUpdate(ctx, b, tp, ch); err != nil {
			return err
		}
	}
	if tp.Source.HasGenerated() {
		return s.fillGenerated(ctx, tp, ch)
	}
	return nil
}

// missing reports whether row leaves out a column other than a generated one.
func missing(t *extract.Table, row extract.Row) bool {
	for i, v := range row {
		if v.Unchanged && i < len(t.Columns) && t.Columns[i].Generated == "" {
			return true
		}
	}
	return false
}

// completeUpdate fills the columns an UPDATE left out as unchanged TOAST
// where their values are known exactly: from the old image (REPLICA
// IDENTITY FULL carries the whole old row, and an unchanged value is the old
// one). When the update moves the row to another item (a key change), the
// create event of the new key and the new item must carry the whole row, so
// what is still missing is taken from the old item (the batch's pending write,
// else DynamoDB), and what the item cannot give back exactly from the source's
// current row (which may already be newer than this change: the later changes
// of the row follow on the stream).
func (s *syncer) completeUpdate(ctx context.Context, b *syncBatch, tp *transform.TablePlan, ch *extract.Change) error {
	ch.After = fillFromBefore(ch.After, ch.Before)
	if !missing(tp.Source, ch.After) || !movesItem(tp, ch) {
		return nil
	}
	oldKey, oldID, err := tp.Key(ch.Before)
	if err == nil {
		var old transform.Item
		if prev := b.fold.writes[tp.Target+"\x00"+oldID]; prev != nil && prev.kind == writePut {
			old = prev.item
		} else if s.cfg.ApplyStream {
			// The stored item may lag the stream (its appliers have not
			// applied the changes published before this one): not a source
			// of the row's values.
		} else if old, err = s.getItem(ctx, tp.Target, oldKey); err != nil {
			return err
		}
		if old != nil {
			ch.After = fillUnchanged(tp, ch.After, old)
		}
	}
	if !missing(tp.Source, ch.After) {
		return nil
	}
	cur, found, err := s.currentRow(ctx, tp, ch.After)
	if err != nil || !found {
		return err // not found: the row is gone again; its delete follows
	}
	ch.After = fillFromBefore(ch.After, cur)
	s.log.Warn("key change without the unchanged TOAST values: took them from the source's current row", "table", tp.Source.QualifiedName(), "key", tp.KeyString(ch.After), "lsn", ch.Pos.LSN)
	return nil
}

// fillFromBefore returns after with its unchanged (left-out) columns taken
// from before where before has them; after itself is not modified.
func fillFromBefore(after, before extract.Row) extract.Row {
	if before == nil {
		return after
	}
	var out extract.Row
	for i, v := range after {
		if !v.Unchanged || i >= len(before) || before[i].Unchanged {
			continue
		}
		if out == nil {
			out = make(extract.Row, len(after))
			copy(out, after)
		}
		out[i] = before[i]
	}
	if out == nil {
		return after
	}
	return out
}

// movesItem reports whether an update changes the row's source primary key
// or its item key.
func movesItem(tp *transform.TablePlan, ch *extract.Change) bool {
	if ch.Before == nil {
		return false // no old key: the default identity sends one only when the key changed
	}
	if primaryKeyChanged(tp, ch) {
		return true
	}
	_, oldID, err1 := tp.Key(ch.Before)
	_, newID, err2 := tp.Key(ch.After)
	return err1 == nil && err2 == nil && oldID != newID
}

// fillGenerated computes the change's stored generated columns from its row
// image (extract.EvalGenerated). A generated column whose inputs the change
// does not carry (unchanged TOAST values, with the default replica identity)
// is taken from the source's current row, which may already be newer than
// this change: the row's later changes follow on the stream and in DynamoDB.
func (s *syncer) fillGenerated(ctx context.Context, tp *transform.TablePlan, ch *extract.Change) error {
	conn, err := s.sourceConn(ctx)
	if err != nil {
		return err
	}
	row, unknown, err := extract.EvalGenerated(ctx, conn, tp.Source, ch.After)
	if err != nil {
		s.closeSourceConn()
		return err
	}
	ch.After = row
	if len(unknown) == 0 {
		return nil
	}
	cur, found, err := s.currentRow(ctx, tp, ch.After)
	if err != nil || !found {
		return err // not found: the row is gone again; its delete follows
	}
	out := make(extract.Row, len(row))
	copy(out, row)
	for _, i := range unknown {
		out[i] = cur[i]
	}
	ch.After = out
	s.log.Warn("generated column reads an unchanged TOAST value: took it from the source's current row", "table", tp.Source.QualifiedName(), "key", tp.KeyString(ch.After), "lsn", ch.Pos.LSN)
	return nil
}

// sourceConn returns the apply loop's own connection to the source (opened
// on first use; only the apply goroutine uses it).
func (s *syncer) sourceConn(ctx context.Context) (*pgx.Conn, error) {
	if s.rowConn != nil && !s.rowConn.IsClosed() {
		return s.rowConn, nil
	}
	conn, err := extract.Connect(ctx, s.cfg.SourceURL)
	if err != nil {
		return nil, fmt.Errorf("connect to the source for row images: %w", err)
	}
	s.rowConn = conn
	return conn, nil
}

// closeSourceConn closes the apply loop's source connection (after an error,
// or at the end of a session); the next use opens a new one.
func (s *syncer) closeSourceConn() {
	if s.rowConn != nil {
		s.rowConn.Close(context.Background())
		s.rowConn = nil
	}
}

// currentRow reads the source's current row with the primary key of key.
func (s *syncer) currentRow(ctx context.Context, tp *transform.TablePlan, key extract.Row) (extract.Row, bool, error) {
	conn, err := s.sourceConn(ctx)
	if err != nil {
		return nil, false, err
	}
	row, _, found, err := extract.ReadByKey(ctx, conn, tp.Source, key)
	if err != nil {
		s.closeSourceConn()
	}
	return row, found, err
}
