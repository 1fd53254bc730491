package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/ferry-migrate/ferry/extract"
	"github.com/ferry-migrate/ferry/load"
)

// BackfillRecorded returns the slot's backfill snapshot LSN (where its
// events sit on the streams) and when its state was last recorded (its
// completion, once complete). ok is false when no backfill has run.
func BackfillRecorded(ctx context.Context, ctl *load.ControlStore, slot string) (lsn extract.LSN, at time.Time, complete, ok bool, err error) {
	st, err := newStateStore(ctl, slot).loadRun(ctx)
	if err != nil || st == nil {
		return 0, time.Time{}, false, false, err
	}
	lsn, err = extract.ParseLSN(st.SlotLSN)
	return lsn, st.Created, st.Complete, true, err
}

// VerifyRecord is the outcome of the last `ferry verify` of a slot's
// migration, kept in the control table under id "verify:<slot>", sk "last",
// for the status page and whoever takes over the migration.
type VerifyRecord struct {
	Verdict  string    `json:"verdict"` // consistent, differences, error (the report's verdict)
	Finished time.Time `json:"finished"`
	Tables   int       `json:"tables"`
	Streams  int       `json:"streams,omitempty"`
	// Rows checked, and the rows that differ (missing, extra, differing,
	// unconvertible, dead-lettered) in the tables and streams.
	SourceRows  int64 `json:"source_rows"`
	Differences int64 `json:"differences"`
	// Expired counts the rows whose only events the streams no longer hold.
	Expired int64  `json:"expired,omitempty"`
	Summary string `json:"summary,omitempty"`
}

// VerifyID is the control-table id of a slot's last verify.
func VerifyID(slot string) string { return "verify:" + slot }

// SaveVerifyRecord stores r as the slot's last verify.
func SaveVerifyRecord(ctx context.Context, ctl *load.ControlStore, slot string, r VerifyRecord) error {
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("verify record of slot %s: %w", slot, err)
	}
	if err := ctl.Put(ctx, VerifyID(slot), "last", b); err != nil {
		return fmt.Errorf("save the verify record of slot %s: %w", slot, err)
	}
	return nil
}

// LoadVerifyRecord returns the slot's last verify (nil: none recorded).
func LoadVerifyRecord(ctx context.Context, ctl *load.ControlStore, slot string) (*VerifyRecord, error) {
	b, ok, err := ctl.Get(ctx, VerifyID(slot), "last")
	if err != nil || !ok {
		return nil, err
	}
	var r VerifyRecord
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("verify record of slot %s: %w", slot, err)
	}
	return &r, nil
}

// RecordedTable is one table's backfill as the control table records it.
type RecordedTable struct {
	Table      string
	Rows       int64 // rows of its finished chunks
	Planned    int64 // the row estimate it was planned with
	ChunksDone int
	Chunks     int
}

// RecordedBackfill returns the slot's backfill per table, as recorded (for a
// status page of a sync that did not run the backfill itself), in no
// particular order.
func RecordedBackfill(ctx context.Context, ctl *load.ControlStore, slot string) ([]RecordedTable, error) {
	plans, done, err := newStateStore(ctl, slot).loadAll(ctx)
	if err != nil {
		return nil, fmt.Errorf("backfill state of slot %s: %w", slot, err)
	}
	var out []RecordedTable
	for table, p := range plans {
		rt := RecordedTable{Table: table, Planned: p.Rows, Chunks: len(p.Chunks), ChunksDone: len(done[table])}
		for _, n := range done[table] {
			rt.Rows += n
		}
		out = append(out, rt)
	}
	return out, nil
}
