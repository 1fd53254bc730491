package pipeline

import (
	"context"
	"sort"
	"time"

	"github.com/ferry-migrate/ferry/extract"
)

// A resumed backfill reads its remaining chunks at a new snapshot, later than
// the slot's consistent point where sync starts. Written to DynamoDB that is
// exact (sync's replay of older changes loses the version check), but their
// `r` events published then would precede, on Kinesis, the older changes of
// the same rows that sync publishes when it replays the slot: consumers
// would see a row go back in time (per-key inversions).
//
// So a resumed run writes DynamoDB only, and hands the stream's part to
// sync: before copying, it stores an online snapshot request (origin
// "backfill") for exactly the chunks it is about to copy. Sync reads them
// again between watermarks (online.go) and publishes them where they belong
// in the stream; DynamoDB receives the same rows again at a newer version.
// The cost is a second read of the resumed part only.

// handOffStream stores the request for the chunks of streamed tables that
// this run will copy (not yet done; a table not yet planned is read whole).
// A pending request of an earlier resumed run already covers what it listed:
// those tables are left out. It returns nil when nothing is needed.
func handOffStream(ctx context.Context, cfg *BackfillConfig, plans map[string]*chunkPlan, done map[string]map[int]int64) (*SnapshotRequest, error) {
	pending, _, err := SnapshotRecords(ctx, cfg.Control, cfg.Slot)
	if err != nil {
		return nil, err
	}
	covered := map[string]bool{}
	for _, r := range pending {
		if r.Origin == OriginBackfill {
			for _, t := range r.Tables {
				covered[t] = true
			}
		}
	}
	now := time.Now()
	req := &SnapshotRequest{ID: NewSnapshotID(now), Created: now.UTC(), Origin: OriginBackfill, Ranges: map[string][]KeyRange{}}
	for _, tp := range cfg.Plan.Tables {
		name := tp.Source.QualifiedName()
		if tp.Stream == "" || covered[name] {
			continue
		}
		p := plans[name]
		if p == nil {
			req.Tables = append(req.Tables, name) // not planned yet: all of it
			continue
		}
		if r := remainingRanges(p.Chunks, done[name]); len(r) > 0 {
			req.Tables = append(req.Tables, name)
			req.Ranges[name] = r
		}
	}
	if len(req.Tables) == 0 {
		return nil, nil
	}
	if err := SaveSnapshotRequest(ctx, cfg.Control, cfg.Slot, *req); err != nil {
		return nil, err
	}
	cfg.Logger.Info("resumed backfill: its rows go to DynamoDB now and to Kinesis through sync's online snapshot, in order",
		"request", req.ID, "tables", len(req.Tables))
	return req, nil
}

// remainingRanges returns the key ranges of the chunks not done, adjacent
// ones merged.
func remainingRanges(chunks []extract.Chunk, done map[int]int64) []KeyRange {
	sorted := append([]extract.Chunk(nil), chunks...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Index < sorted[j].Index })
	var out []KeyRange
	contiguous := false
	for _, ch := range sorted {
		if _, ok := done[ch.Index]; ok {
			contiguous = false
			continue
		}
		if contiguous {
			out[len(out)-1].Before = ch.Hi
		} else {
			out = append(out, KeyRange{From: ch.Lo, Before: ch.Hi})
		}
		contiguous = true
	}
	return out
}
