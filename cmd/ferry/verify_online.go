package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/ferry-migrate/ferry/extract"
	"github.com/ferry-migrate/ferry/internal/pipeline"
	"github.com/ferry-migrate/ferry/load"
	"github.com/ferry-migrate/ferry/transform"
	"github.com/ferry-migrate/ferry/verify"
)

// repairOnline asks the sync running on slot to re-read the rows with these
// primary keys through its online snapshot (one request per table, origin
// "verify") and waits until sync has recorded every request done. It gives
// up after timeout, or when the slot has been inactive (sync stopped) for a
// few seconds; the requests it made are then withdrawn, so a later sync does
// not repeat a repair that verify finishes itself.
func repairOnline(ctx context.Context, ctl *load.ControlStore, source, slot string, keys map[string][][]string, timeout time.Duration) (err error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	names := make([]string, 0, len(keys))
	for name := range keys {
		names = append(names, name)
	}
	sort.Strings(names)
	var ids []string
	defer func() {
		if err == nil {
			return
		}
		for _, id := range ids { // withdraw what is left (a done one is gone already)
			if derr := ctl.Delete(context.WithoutCancel(ctx), pipeline.SnapshotRecordsID(slot), "request#"+id); derr != nil {
				slog.Warn("verify: could not withdraw the online repair request", "request", id, "err", derr)
			}
		}
	}()
	for i, name := range names {
		now := time.Now()
		// Ids sort by creation time; the index keeps them distinct.
		req := pipeline.SnapshotRequest{ID: fmt.Sprintf("%s-%03d", pipeline.NewSnapshotID(now), i), Tables: []string{name},
			Keys: keys[name], Created: now.UTC(), Origin: pipeline.OriginVerify}
		if err := pipeline.SaveSnapshotRequest(ctx, ctl, slot, req); err != nil {
			return err
		}
		ids = append(ids, req.ID)
	}
	conn, err := extract.Connect(ctx, source)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	const poll = 200 * time.Millisecond
	inactive := 0
	for {
		_, done, err := pipeline.SnapshotRecords(ctx, ctl, slot)
		if err != nil {
			return err
		}
		left := 0
		for _, id := range ids {
			if _, ok := done[id]; !ok {
				left++
			}
		}
		if left == 0 {
			return nil
		}
		info, exists, err := extract.LookupSlot(ctx, conn, slot)
		if err != nil {
			return err
		}
		if !exists || !info.Active {
			if inactive++; inactive >= 25 { // 5 s: not a reconnect
				return fmt.Errorf("sync stopped on slot %s before it re-read the rows (%d of %d requests left)", slot, left, len(ids))
			}
		} else {
			inactive = 0
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("sync did not re-read the rows within %s (%d of %d requests left): %w", timeout, left, len(ids), ctx.Err())
		case <-time.After(poll):
		}
	}
}

// streamBarrier is verify's Barrier (verify.BarrierFunc) for a sync whose
// stream's appliers write DynamoDB (sync --apply stream; its checkpoint says
// so): it publishes one barrier record per mark (transform.BarrierRecord) and
// waits, at most wait, until the appliers have recorded them all; the records
// of the barriers are removed again. With a sync that writes DynamoDB itself
// there is nothing to wait for.
func streamBarrier(ctl *load.ControlStore, state *load.ApplyState, kin *load.KinesisWriter, slot string, wait, poll time.Duration) verify.BarrierFunc {
	return func(ctx context.Context, marks []verify.BarrierMark, lsn extract.LSN) (bool, error) {
		cp, ok, err := pipeline.LoadCheckpoint(ctx, ctl, slot)
		var rnf *types.ResourceNotFoundException
		if errors.As(err, &rnf) {
			return true, nil // no control table: no sync of either kind
		}
		if err != nil || !ok || cp.Apply != pipeline.ApplyStream {
			return true, err
		}
		now := time.Now()
		run := rand.Text()[:12] // ids of this call's barriers: unique without coordination
		ids := make([]string, len(marks))
		recs := make([]load.Record, len(marks))
		for i, m := range marks {
			ids[i] = fmt.Sprintf("verify-%s-%d", run, i)
			recs[i] = load.Record{Stream: m.Stream, PartitionKey: m.PartitionKey, Data: transform.BarrierRecord(ids[i], lsn, now)}
		}
		failed, err := kin.Put(ctx, recs)
		if err == nil && len(failed) > 0 {
			err = fmt.Errorf("%d of %d refused: %w", len(failed), len(recs), failed[0].Err)
		}
		if err != nil {
			return false, fmt.Errorf("publish barrier records: %w", err)
		}
		slog.Info("verify: published barrier records; waiting for the stream's appliers", "barriers", len(ids), "lsn", lsn)
		defer func() {
			for _, id := range ids {
				if err := state.ForgetBarrier(context.WithoutCancel(ctx), id); err != nil {
					slog.Warn("verify: could not remove a barrier's record", "barrier", id, "err", err)
				}
			}
		}()
		deadline := now.Add(wait)
		pending := ids
		for {
			var left []string
			for _, id := range pending {
				applied, err := state.BarrierApplied(ctx, id)
				if err != nil {
					return false, err
				}
				if !applied {
					left = append(left, id)
				}
			}
			if pending = left; len(pending) == 0 {
				slog.Info("verify: the stream's appliers applied the barriers", "barriers", len(ids), "waited", time.Since(now).Round(time.Millisecond))
				return true, nil
			}
			if time.Now().After(deadline) {
				slog.Info("verify: the stream's appliers did not apply every barrier in time", "left", len(pending), "of", len(ids), "wait", wait)
				return false, nil
			}
			select {
			case <-ctx.Done():
				return false, ctx.Err()
			case <-time.After(poll):
			}
		}
	}
}
