package testkit

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/ferry-migrate/ferry/extract"
	"github.com/ferry-migrate/ferry/internal/pipeline"
	"github.com/ferry-migrate/ferry/transform"
	"github.com/ferry-migrate/ferry/verify"
)

// WaitCaughtUp waits until sync has applied every change committed before
// the call (see pipeline.WaitCaughtUp).
func WaitCaughtUp(ctx context.Context, db, slot string, limit time.Duration) error {
	return pipeline.WaitCaughtUp(ctx, db, slot, limit)
}

// FoldStream folds events per partition key in stream order: r/c set the
// row, u merges the columns it carries (unchanged TOAST values are absent),
// d removes it, t removes every row of its table. An event whose position the
// key already had is a duplicate (a replay after a restart re-sends the
// key's events from some earlier one on, in order); one older than the
// key's last that it never had is an inversion. Both are skipped.
func FoldStream(events []Event) (state map[string]map[string]json.RawMessage, duplicates, inversions int) {
	state = map[string]map[string]json.RawMessage{}
	// A truncate's record and the rows it removes are on different partition
	// keys, so different shards, read in no particular order: truncates are
	// applied by position. A row is dropped when a truncate of its table lies
	// between its last event and the next one, or after its last.
	truncs := map[string][]extract.Position{}
	for _, ev := range events {
		if ev.Op == "t" {
			truncs[ev.Source.Table] = append(truncs[ev.Source.Table], eventPos(ev))
		}
	}
	truncated := func(table string, after extract.Position, before *extract.Position) bool {
		for _, p := range truncs[table] {
			if after.Less(p) && (before == nil || p.Less(*before)) {
				return true
			}
		}
		return false
	}
	table := map[string]string{}
	last := map[string]extract.Position{}
	had := map[string]map[extract.Position]bool{}
	for _, ev := range events {
		if ev.Op == "t" || ev.Op == "schema" { // a schema change is no row's
			continue
		}
		pos := eventPos(ev)
		prev, seen := last[ev.PartitionKey]
		if seen && !prev.Less(pos) {
			if had[ev.PartitionKey][pos] {
				duplicates++
			} else {
				inversions++
			}
			continue
		}
		if had[ev.PartitionKey] == nil {
			had[ev.PartitionKey] = map[extract.Position]bool{}
		}
		had[ev.PartitionKey][pos] = true
		if seen && truncated(ev.Source.Table, prev, &pos) {
			delete(state, ev.PartitionKey)
		}
		last[ev.PartitionKey] = pos
		table[ev.PartitionKey] = ev.Source.Table
		switch ev.Op {
		case "r", "c":
			state[ev.PartitionKey] = ev.After
		case "u":
			merged := map[string]json.RawMessage{}
			for k, v := range state[ev.PartitionKey] {
				merged[k] = v
			}
			for k, v := range ev.After {
				merged[k] = v
			}
			state[ev.PartitionKey] = merged
		case "d":
			delete(state, ev.PartitionKey)
		}
	}
	for k := range state {
		if truncated(table[k], last[k], nil) {
			delete(state, k)
		}
	}
	return state, duplicates, inversions
}

func eventPos(ev Event) extract.Position {
	lsn, _ := extract.ParseLSN(ev.Source.LSN)
	return extract.Position{LSN: lsn, Seq: ev.Source.Seq}
}

// CompareStream compares the folded stream with the source rows passed
// through the mapping and returns one line per difference.
func CompareStream(ctx context.Context, db string, plan *transform.Plan, state map[string]map[string]json.RawMessage) ([]string, error) {
	var diffs []string
	seen := map[string]bool{}
	err := verify.SourceItems(ctx, db, plan, func(tp *transform.TablePlan, _ string, row extract.Row, _ transform.Item) error {
		if tp.Stream == "" {
			return nil
		}
		ch := &extract.Change{Table: tp.Source, Op: extract.OpRead, After: row}
		pk, data, err := tp.Record(ch, transform.RecordSource{}, time.Time{})
		if err != nil {
			return err
		}
		var want struct {
			After map[string]json.RawMessage `json:"after"`
		}
		if err := json.Unmarshal(data, &want); err != nil {
			return err
		}
		seen[pk] = true
		got, ok := state[pk]
		if !ok {
			diffs = append(diffs, pk+": missing from the stream")
			return nil
		}
		for col, v := range want.After {
			if !bytes.Equal(got[col], v) {
				diffs = append(diffs, fmt.Sprintf("%s.%s: source %s, stream %s", pk, col, v, got[col]))
			}
		}
		return nil
	})
	for pk := range state {
		if !seen[pk] {
			diffs = append(diffs, pk+": in the stream, not in the source")
		}
	}
	return diffs, err
}
