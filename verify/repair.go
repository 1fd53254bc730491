package verify

import (
	"context"
	"fmt"
	"strings"

	"github.com/ferry-migrate/ferry/extract"
	"github.com/ferry-migrate/ferry/transform"
)

// repairVersion is the _version a repair writes when it read the source after
// the WAL position lsn.
//
// A repair races with sync: it must never replace an item that sync wrote from
// a change the repair's read did not see, and a change the read did see must
// not later replace the repair with an older state. lsn is read *before* the
// row (in its own statement), so:
//
//   - a change the read did not see commits after lsn was read, so its commit
//     LSN is >= lsn and its version is above ours: PutIfNewer leaves sync's
//     item alone, and sync's later write replaces ours. That is why the version
//     is just below lsn (lsn-1 with the largest sequence number): a change
//     whose commit record starts exactly at lsn must still win.
//   - a change the read saw and that committed before lsn has a lower version:
//     replaying it after the repair is rejected.
//   - a change the read saw that committed between lsn and the read has a
//     higher version; if sync replays it after the repair it writes that
//     change's state, and then the newer changes that follow it, which sync
//     replays too: the item converges to the source, never to an older state.
//
// Reading the position after the row instead would let a change that committed
// between the read and the position (invisible to the read, with a version
// below ours) be overwritten by the repair's stale row.
//
// The one gap is a transaction whose commit record precedes lsn but which was
// not yet visible when the row was read (the milliseconds a commit spends
// flushing its WAL): the repair could write the older row over it. The
// re-verification that follows every repair reads the source again and reports
// such a key as not fixed, so it is never silently wrong.
func repairVersion(lsn extract.LSN) string {
	if lsn == 0 {
		return extract.Position{}.Version()
	}
	return extract.Position{LSN: lsn - 1, Seq: extract.MaxSeq}.Version()
}

// repair rewrites every listed difference from a fresh read of the source,
// then re-verifies those keys.
func (v *verifier) repair(ctx context.Context) error {
	sum := &RepairSummary{}
	v.rep.Repair = sum
	var todo []*finding
	for _, tc := range v.tables {
		for _, f := range tc.findings {
			switch f.Kind {
			case KindMissing, KindDiffers, KindExtra:
				todo = append(todo, f)
			}
		}
	}
	for _, tc := range v.extra {
		for _, f := range tc.findings {
			f.Repair = "not_fixed"
			f.Reason = "item of no mapped table: left alone (delete it yourself if it does not belong there)"
			sum.Attempted++
			sum.NotFixed++
		}
	}
	if len(todo) == 0 {
		return nil
	}
	v.cfg.Logger.Info("verify: repairing", "keys", len(todo))
	sum.Attempted += len(todo)
	failed := map[*finding]string{}
	direct := todo
	sum.Via = "direct"
	if v.syncRunning && v.cfg.OnlineRepair != nil {
		var err error
		if direct, err = v.repairOnline(ctx, todo); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			v.cfg.Logger.Warn("verify: the online repair did not finish; repairing DynamoDB directly (the stream does not hear of it)", "err", err)
			direct = todo
		} else {
			sum.Via = "online_snapshot"
		}
	}
	for _, f := range direct {
		if err := v.repairOne(ctx, f); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			failed[f] = err.Error()
		}
	}
	res, err := v.recheck(ctx, todo, v.syncRunning)
	if err != nil {
		return fmt.Errorf("re-verify repaired keys: %w", err)
	}
	for _, f := range todo {
		r := res[f]
		switch {
		case failed[f] != "":
			f.Repair, f.Reason = "not_fixed", "repair failed: "+failed[f]
		case r.outcome == outResolved:
			f.Repair = "fixed"
		default:
			f.Repair = "not_fixed"
			switch {
			case r.reason != "":
				f.Reason = r.reason
			case r.outcome == outChanging:
				f.Reason = "the row kept changing while it was repaired"
			case r.expected != nil && r.actual != nil:
				f.Reason = fmt.Sprintf("still differs after the repair (%d columns); the stored item may be newer than the source read", len(CompareItems(r.expected, r.actual, transform.AttrVersion)))
			default:
				f.Reason = "still differs after the repair"
			}
		}
		if f.Repair == "fixed" {
			sum.Fixed++
		} else {
			sum.NotFixed++
		}
	}
	return nil
}

// repairOnline re-reads the findings' rows through the running sync's online
// snapshot (OnlineRepair): sync reads them between watermarks and applies
// them to DynamoDB and Kinesis in stream order, and a key the source no
// longer has is deleted there, unless a newer change comes first. It returns
// the findings that still need a direct repair: those without a source key,
// and extra items (their row, if any, may now map to another item, which
// sync's re-read does not remove; repairOne does, version-guarded).
func (v *verifier) repairOnline(ctx context.Context, todo []*finding) ([]*finding, error) {
	keys := map[string][][]string{}
	seen := map[string]bool{}
	var direct []*finding
	for _, f := range todo {
		if f.pk == nil || f.Kind == KindExtra {
			direct = append(direct, f)
		}
		if f.pk == nil {
			continue
		}
		name := f.tc.tp.Source.QualifiedName()
		id := name + "\x00" + strings.Join(f.pk, "\x00")
		if !seen[id] {
			seen[id] = true
			keys[name] = append(keys[name], f.pk)
		}
	}
	if len(keys) == 0 {
		return direct, nil
	}
	v.cfg.Logger.Info("verify: re-reading the differing rows through sync's online snapshot", "tables", len(keys), "keys", len(seen))
	if err := v.cfg.OnlineRepair(ctx, keys); err != nil {
		return nil, err
	}
	return direct, nil
}

// repairOne re-reads the finding's row and writes its item (or deletes the
// item when no row maps to its key), guarded by repairVersion.
func (v *verifier) repairOne(ctx context.Context, f *finding) error {
	tp := f.tc.tp
	lsn, err := extract.CurrentWALLSN(ctx, v.pc)
	if err != nil {
		return err
	}
	version := repairVersion(lsn)
	var row extract.Row
	found := false
	if f.pk != nil {
		if row, found, err = extract.ReadRowByKey(ctx, v.pc, tp.Source, f.pk); err != nil {
			return err
		}
	}
	if found {
		item, id, err := tp.Item(row, extract.Position{})
		if err != nil {
			return err
		}
		if _, err := v.writer.PutIfNewer(ctx, tp.Target, item, version); err != nil {
			return err
		}
		if f.keyID == "" || id == f.keyID || f.itemKey == nil {
			return nil
		}
		// The row now maps to another key: the item at the old key goes.
	}
	if f.itemKey == nil {
		return nil
	}
	_, err = v.writer.DeleteIfNotNewer(ctx, tp.Target, f.itemKey, version)
	return err
}
