package pipeline

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/ferry-migrate/ferry/extract"
	"github.com/ferry-migrate/ferry/load"
	"github.com/ferry-migrate/ferry/transform"
)

type writeKind int

const (
	writePut writeKind = iota + 1
	writeUpdate
	writeDelete
)

// itemWrite is the net effect of a batch's changes on one DynamoDB item.
type itemWrite struct {
	kind    writeKind
	tp      *transform.TablePlan
	key     transform.Item
	item    transform.Item // put: the whole item; update: the attributes to set
	remove  []string       // update: attributes to remove
	version string
	pos     extract.Position
	row     extract.Row // the newest row image, to re-read the source if needed
	keyText string      // source primary key, for errors
	op      extract.Op  // the newest change's op, for the dead-letter file
	dead    bool        // written to the dead-letter file: not applied again
	first   int         // the earliest input (record) index folded into it (fold.at)
}

// itemFailure is a folded write DynamoDB can never accept as it is (a
// ValidationException, e.g. an item over 400 KB).
type itemFailure struct {
	iw  *itemWrite
	err error
}

// fold keeps, per DynamoDB item, only the newest state a batch leaves it in, so
// that a batch never writes an intermediate state of an item after a newer one
// (also when a batch replays changes that an earlier, crashed run applied).
type fold struct {
	writes map[string]*itemWrite // target + NUL + key identity
	order  []string
	at     int // the index of the input being added (a stream record), for itemWrite.first
}

func newFold() *fold { return &fold{writes: map[string]*itemWrite{}} }

func (f *fold) len() int { return len(f.writes) }

// hasDeletes reports whether the batch deletes an item (a row deleted, or
// the old item of a key change).
func (f *fold) hasDeletes() bool {
	for _, w := range f.writes {
		if w.kind == writeDelete {
			return true
		}
	}
	return false
}

func (f *fold) put(id string, w *itemWrite) {
	w.first = f.at
	prev, ok := f.writes[id]
	if ok {
		w.first = min(w.first, prev.first)
	}
	if !ok {
		f.writes[id] = w
		f.order = append(f.order, id)
		return
	}
	if w.kind == writeUpdate && (prev.kind == writePut || prev.kind == writeUpdate) {
		// Merge a partial update into what came before it.
		merged := make(transform.Item, len(prev.item)+len(w.item))
		for k, v := range prev.item {
			merged[k] = v
		}
		for _, r := range w.remove {
			delete(merged, r)
		}
		for k, v := range w.item {
			merged[k] = v
		}
		w.item = merged
		if prev.kind == writeUpdate {
			w.remove = append(prev.remove, w.remove...)
		} else {
			w.kind = writePut
			w.remove = nil
		}
	}
	f.writes[id] = w
}

// add folds one row change into the batch.
func (f *fold) add(ch *extract.Change, tp *transform.TablePlan) error {
	version := ch.Pos.Version()
	switch ch.Op {
	case extract.OpDelete:
		key, id, err := tp.Key(ch.Before)
		if err != nil {
			return keyErr(tp, ch.Before, err)
		}
		f.put(tp.Target+"\x00"+id, &itemWrite{kind: writeDelete, tp: tp, key: key, version: version, pos: ch.Pos, keyText: tp.KeyString(ch.Before), op: ch.Op})
		return nil
	case extract.OpCreate, extract.OpUpdate, extract.OpRead:
	default:
		return fmt.Errorf("fold: unexpected op %s", ch.Op)
	}
	newKey, newID, err := tp.Key(ch.After)
	if err != nil {
		return err
	}
	if ch.Op == extract.OpUpdate && ch.Before != nil {
		if oldKey, oldID, err := tp.Key(ch.Before); err == nil && oldID != newID {
			// The item key changed: remove the old item, write the new one
			// (completeUpdate has filled its left-out columns already).
			f.put(tp.Target+"\x00"+oldID, &itemWrite{kind: writeDelete, tp: tp, key: oldKey, version: version, pos: ch.Pos, keyText: tp.KeyString(ch.Before), op: extract.OpDelete})
		}
	}
	item, _, err := tp.Item(ch.After, ch.Pos)
	if err != nil {
		return err
	}
	w := &itemWrite{kind: writePut, tp: tp, key: newKey, item: item, version: version, pos: ch.Pos, row: ch.After, keyText: tp.KeyString(ch.After), op: ch.Op}
	if transform.HasUnchanged(ch.After) {
		w.kind = writeUpdate
		w.remove = tp.GSIRemovals(ch.After)
	}
	f.put(tp.Target+"\x00"+newID, w)
	return nil
}

// fillUnchanged completes a row whose unchanged TOAST columns were left out,
// from the stored item's attributes (in their text form, via the mapping's
// inverse for the types that TOAST: text-like values, arrays and bytea).
func fillUnchanged(tp *transform.TablePlan, row extract.Row, old transform.Item) extract.Row {
	out := make(extract.Row, len(row))
	copy(out, row)
	for i, v := range out {
		if !v.Unchanged || tp.Source.Columns[i].Generated != "" {
			continue // generated columns are computed, never copied from an old item
		}
		name := tp.Source.Columns[i].Name
		if text, null, ok := transform.TextOf(tp, i, old[name]); ok {
			out[i] = extract.Value{Text: text, Null: null}
		}
	}
	return out
}

func keyErr(tp *transform.TablePlan, row extract.Row, err error) error {
	if cols := tp.KeyColumnsOutsidePK(); len(cols) > 0 && tp.Source.ReplicaIdentity != 'f' {
		return fmt.Errorf("%w; the key of %s uses %v, which a DELETE only carries with REPLICA IDENTITY FULL", err, tp.Source.QualifiedName(), cols)
	}
	return err
}

// itemWriter is what the apply path needs of DynamoDB: writes conditional on
// the stored item's version (load.DynamoWriter; a fake in unit tests).
type itemWriter interface {
	PutIfNewer(ctx context.Context, table string, item load.Item, version string) (bool, error)
	DeleteIfNotNewer(ctx context.Context, table string, key load.Item, version string) (bool, error)
	UpdateExistingIfNewer(ctx context.Context, table string, key, set load.Item, remove []string, version string) (applied, exists bool, err error)
}

// apply writes the folded items with version-conditional writes, up to workers
// at once. A write the stored item is newer than is skipped (that is the point).
// Writes DynamoDB rejects as invalid come back as failures (the rest are
// applied); any other error is returned, joined.
func (f *fold) apply(ctx context.Context, w itemWriter, workers int, reread func(ctx context.Context, iw *itemWrite) error) (int64, []itemFailure, error) {
	sem := make(chan struct{}, workers)
	errs := make(chan error, len(f.order))
	var applied int64
	results := make(chan bool, len(f.order))
	var mu sync.Mutex
	var fails []itemFailure
	for _, id := range f.order {
		iw := f.writes[id]
		if iw.dead {
			continue
		}
		sem <- struct{}{}
		go func() {
			defer func() { <-sem }()
			ok, err := applyOne(ctx, w, iw, reread)
			if err != nil && load.IsPermanent(err) {
				mu.Lock()
				fails = append(fails, itemFailure{iw, err})
				mu.Unlock()
				err = nil
			}
			results <- ok
			errs <- err
		}()
	}
	for i := 0; i < cap(sem); i++ {
		sem <- struct{}{}
	}
	close(errs)
	close(results)
	for ok := range results {
		if ok {
			applied++
		}
	}
	var all []error
	for err := range errs {
		if err != nil {
			all = append(all, err)
		}
	}
	return applied, fails, errors.Join(all...)
}

func applyOne(ctx context.Context, w itemWriter, iw *itemWrite, reread func(context.Context, *itemWrite) error) (bool, error) {
	table := iw.tp.Target
	var ok bool
	var err error
	switch iw.kind {
	case writePut:
		ok, err = w.PutIfNewer(ctx, table, iw.item, iw.version)
	case writeDelete:
		ok, err = w.DeleteIfNotNewer(ctx, table, iw.key, iw.version)
	case writeUpdate:
		var exists bool
		ok, exists, err = w.UpdateExistingIfNewer(ctx, table, iw.key, iw.item, iw.remove, iw.version)
		if err == nil && !exists {
			// A partial update for an item that is not there (deleted behind
			// ferry's back): re-read the whole row from the source instead.
			return true, reread(ctx, iw)
		}
	}
	if err != nil {
		return false, fmt.Errorf("%s (%s) → %s: %w", iw.tp.Source.QualifiedName(), iw.keyText, table, err)
	}
	return ok, nil
}
