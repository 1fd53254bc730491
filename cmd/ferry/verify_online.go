package main

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"time"

	"github.com/ferry-migrate/ferry/extract"
	"github.com/ferry-migrate/ferry/internal/pipeline"
	"github.com/ferry-migrate/ferry/load"
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
