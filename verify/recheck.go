package verify

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/ferry-migrate/ferry/extract"
	"github.com/ferry-migrate/ferry/transform"
)

// Re-checks tell a real difference from a row that sync has not applied yet.
//
// A row that differs in the snapshot may simply be changing: sync applies
// the change a moment later, or already applied a newer one. So when sync is
// running, and for every item whose _version is newer than the snapshot, the
// key is re-checked in rounds. A round reads the row from the source (a fresh
// statement, its own snapshot), reads the WAL position L after it, waits
// (bounded) until sync's checkpoint has passed L, so that every change the read
// saw is applied (with `sync --apply stream` the checkpoint says only that
// Kinesis holds the changes: the round then also waits for a barrier record
// on the row's partition key, see transform.BarrierRecord, to be applied),
// reads the item (consistent GetItem), and reads the row again.
// If the two reads of the row agree, the row held still while the item was
// read and the item must equal it: equal means it was in flight, different
// means a real difference. If the reads disagree, the row is still changing and
// the next round tries again; after Rechecks rounds it is reported as in flight.

type outcome int

const (
	outResolved  outcome = iota + 1 // the item now equals the row
	outConfirmed                    // the row held still and the item differs
	outChanging                     // the row changed during every round
	outUnknown                      // could not be re-checked (reason says why)
)

type recheckResult struct {
	outcome  outcome
	expected transform.Item // the item the row makes at the finding's key (nil: none)
	actual   transform.Item // the item in DynamoDB (nil: none)
	reason   string
}

// testHookRound, when set, runs in every re-check round between the first read
// of the rows and the reads of the items.
var testHookRound func(round int)

var errNoSourceKey = errors.New("the source primary key cannot be derived from the item")

// probe is the source's state of a finding's key.
type probe struct {
	item transform.Item
	hash uint64 // 0: no item at this key
	err  error
	// part is the stream partition key of the row's changes (with a
	// Barrier; partErr when it cannot be told).
	part    string
	partErr error
}

// probeSource reads the finding's row and returns the item it makes at the
// finding's key (none when the row is gone or now maps to another key).
func (v *verifier) probeSource(ctx context.Context, f *finding, h *hasher) probe {
	if f.pk == nil {
		return probe{err: errNoSourceKey}
	}
	tp := f.tc.tp
	row, found, err := extract.ReadRowByKey(ctx, v.pc, tp.Source, f.pk)
	if err != nil {
		return probe{err: err}
	}
	var p probe
	if v.cfg.Barrier != nil && tp.Stream != "" {
		p.part, p.partErr = partitionKey(tp, f.pk, row, found)
	}
	if !found {
		return p
	}
	item, id, err := tp.Item(row, extract.Position{})
	if err != nil {
		return probe{err: err}
	}
	if f.keyID != "" && id != f.keyID {
		return p
	}
	p.item, p.hash = item, h.item(item, transform.AttrVersion)|1
	return p
}

// partitionKey is the stream partition key of the row's changes: the row's
// own, or, for a row that is gone, the one its delete had (made of the
// primary key, as the delete's before image is).
func partitionKey(tp *transform.TablePlan, pk []string, row extract.Row, found bool) (string, error) {
	if !found {
		row = make(extract.Row, len(tp.Source.Columns))
		for i := range row {
			row[i].Null = true
		}
		for i, idx := range tp.Source.PK {
			row[idx] = extract.Value{Text: pk[i]}
		}
	}
	part, err := tp.PartitionKey(row)
	if err != nil {
		return "", fmt.Errorf("the row's stream partition key: %w", err)
	}
	return part, nil
}

// waitAppliers waits, after sync's checkpoint passed lsn, for the stream's
// appliers to apply the changes of the findings' rows (Config.Barrier).
// ok is false when they did not in time.
func (v *verifier) waitAppliers(ctx context.Context, pending []*finding, probes []probe, lsn extract.LSN) (bool, error) {
	if v.cfg.Barrier == nil {
		return true, nil
	}
	seen := map[BarrierMark]bool{}
	var marks []BarrierMark
	for i, f := range pending {
		if probes[i].part == "" {
			continue
		}
		m := BarrierMark{Stream: f.tc.tp.Stream, PartitionKey: probes[i].part}
		if !seen[m] {
			seen[m] = true
			marks = append(marks, m)
		}
	}
	if len(marks) == 0 {
		return true, nil
	}
	return v.cfg.Barrier(ctx, marks, lsn)
}

// getItem reads an item with a strongly consistent GetItem (nil when absent).
func (v *verifier) getItem(ctx context.Context, table string, key transform.Item) (transform.Item, error) {
	out, err := v.cfg.Dynamo.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(table), Key: key, ConsistentRead: aws.Bool(true)})
	if err != nil {
		return nil, fmt.Errorf("get item %s from %s: %w", itemKeyString(renderKey(key)), table, err)
	}
	return out.Item, nil
}

// waitCheckpoint polls sync's checkpoint until it reaches lsn, for at most
// Wait. ok is false when it did not (cp is the last checkpoint seen).
func (v *verifier) waitCheckpoint(ctx context.Context, lsn extract.LSN) (cp extract.LSN, ok bool, err error) {
	deadline := time.Now().Add(v.cfg.Wait)
	for {
		c, found, err := v.cfg.Checkpoint(ctx)
		if err != nil {
			return 0, false, err
		}
		// sync acknowledges the slot only past what both targets and its
		// checkpoint hold, and an idle sync advances the slot (heartbeats)
		// without rewriting its checkpoint: the slot's confirmed position
		// counts as applied too.
		if v.cfg.Slot != "" {
			info, ok, err := extract.LookupSlot(ctx, v.pc, v.cfg.Slot)
			if err != nil {
				return 0, false, err
			}
			if ok && info.ConfirmedFlushLSN > c {
				c, found = info.ConfirmedFlushLSN, true
			}
		}
		if found {
			cp = c
			v.rep.Sync.CheckpointLSN = c.String()
			if c >= lsn {
				return cp, true, nil
			}
		}
		if time.Now().After(deadline) {
			return cp, false, nil
		}
		t := time.NewTimer(v.cfg.Poll)
		select {
		case <-ctx.Done():
			t.Stop()
			return cp, false, ctx.Err()
		case <-t.C:
		}
	}
}

// recheck re-checks the findings' keys in rounds (see above); waitSync waits for
// sync's checkpoint in each round. An error means nothing could be decided.
func (v *verifier) recheck(ctx context.Context, fs []*finding, waitSync bool) (map[*finding]*recheckResult, error) {
	res := map[*finding]*recheckResult{}
	var h hasher
	pending := fs
	// While sync runs, a difference is confirmed only by two rounds in a
	// row: a transaction that commits between a round's probes may be
	// applied only partly when the item is read (sync flushes long
	// transactions in parts), and the next round, which waits past the
	// second probe, sees it whole.
	confirmedOnce := map[*finding]bool{}
	for round := 0; round < v.cfg.Rechecks && len(pending) > 0; round++ {
		first := make([]probe, len(pending))
		for i, f := range pending {
			first[i] = v.probeSource(ctx, f, &h)
		}
		if waitSync || v.cfg.Barrier != nil {
			lsn, err := extract.CurrentWALInsertLSN(ctx, v.pc)
			if err != nil {
				return nil, err
			}
			if waitSync {
				cp, ok, err := v.waitCheckpoint(ctx, lsn)
				if err != nil {
					return nil, err
				}
				if !ok {
					for _, f := range pending {
						res[f] = &recheckResult{outcome: outUnknown, reason: fmt.Sprintf(
							"not re-checked: sync's checkpoint (%s) did not reach %s within %s", cp, lsn, v.cfg.Wait)}
					}
					return res, nil
				}
			}
			// With the stream's appliers, also once sync stopped: they go
			// on applying what it published.
			if ok, err := v.waitAppliers(ctx, pending, first, lsn); err != nil {
				return nil, err
			} else if !ok {
				for _, f := range pending {
					res[f] = &recheckResult{outcome: outUnknown, reason: fmt.Sprintf(
						"not re-checked: the stream's appliers (sync --apply stream) did not apply the changes before %s within %s", lsn, v.cfg.Wait)}
				}
				return res, nil
			}
		}
		if testHookRound != nil {
			testHookRound(round)
		}
		var next []*finding
		for i, f := range pending {
			r := &recheckResult{}
			res[f] = r
			actual, err := v.getItem(ctx, f.tc.tp.Target, f.itemKey)
			if err != nil {
				return nil, err
			}
			second := v.probeSource(ctx, f, &h)
			r.expected, r.actual = second.item, actual
			switch {
			case first[i].err != nil || second.err != nil:
				r.outcome, r.reason = outUnknown, "not re-checked: "+errors.Join(first[i].err, second.err).Error()
			case first[i].partErr != nil:
				r.outcome, r.reason = outUnknown, "not re-checked (sync --apply stream): "+first[i].partErr.Error()
			case first[i].hash != second.hash:
				r.outcome = outChanging
				next = append(next, f)
			case second.item == nil && actual == nil:
				r.outcome = outResolved
			case second.item == nil || actual == nil:
				r.outcome = outConfirmed
			case len(CompareItems(second.item, actual, transform.AttrVersion)) == 0:
				r.outcome = outResolved
			default:
				r.outcome = outConfirmed
			}
			if r.outcome == outConfirmed && waitSync && !confirmedOnce[f] && round+1 < v.cfg.Rechecks {
				confirmedOnce[f] = true
				next = append(next, f)
			}
		}
		pending = next
	}
	return res, nil
}

// recheckFindings re-checks what may be in flight and updates the findings:
// resolved ones are dropped, confirmed ones carry the fresh values, the rest
// become in flight.
func (v *verifier) recheckFindings(ctx context.Context) error {
	// Sync may have started (or stopped) since the snapshot: look again.
	if err := v.syncState(ctx); err != nil {
		return err
	}
	var fs []*finding
	for _, tc := range v.tables {
		for _, f := range tc.findings {
			switch f.Kind {
			case KindMissing, KindDiffers, KindExtra:
			default:
				continue
			}
			newer := f.hasVer && f.version.LSN >= v.lsnBefore
			// The stream's appliers may still be applying what a
			// stopped sync published: re-checked too.
			if v.syncRunning || newer || v.cfg.Barrier != nil {
				fs = append(fs, f)
			}
		}
	}
	if len(fs) == 0 {
		return nil
	}
	v.cfg.Logger.Info("verify: re-checking keys that may be in flight", "keys", len(fs), "sync_running", v.syncRunning)
	res, err := v.recheck(ctx, fs, v.syncRunning)
	if err != nil {
		return fmt.Errorf("re-check: %w", err)
	}
	for _, f := range fs {
		r := res[f]
		switch r.outcome {
		case outResolved:
			f.tc.setKind(f, "")
		case outConfirmed:
			v.confirm(f, r)
		case outChanging:
			f.tc.setKind(f, KindInFlight)
			f.Reason = fmt.Sprintf("still changing after %d re-checks", v.cfg.Rechecks)
			if r.expected != nil && r.actual != nil {
				f.Columns = CompareItems(r.expected, r.actual, transform.AttrVersion)
			}
		case outUnknown:
			f.Reason = r.reason
		}
	}
	return nil
}

// confirm updates a finding with the values of its last re-check.
func (v *verifier) confirm(f *finding, r *recheckResult) {
	kind := KindDiffers
	f.Columns = nil
	switch {
	case r.actual == nil:
		kind = KindMissing
	case r.expected == nil:
		kind = KindExtra
	default:
		f.Columns = CompareItems(r.expected, r.actual, transform.AttrVersion)
	}
	if r.actual != nil {
		f.version, f.hasVer = itemVersion(r.actual)
	}
	if kind != f.Kind {
		f.tc.setKind(f, kind)
	}
}
