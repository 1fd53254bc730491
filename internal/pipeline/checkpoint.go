package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/ferry-migrate/ferry/extract"
	"github.com/ferry-migrate/ferry/load"
)

// Checkpoint is sync's durable position: every change of a transaction that
// committed at or before LSN is durable in DynamoDB and Kinesis. It is kept in
// the control table under id "sync:<slot>", sk "checkpoint", and written before
// the slot is advanced (acknowledge last).
type Checkpoint struct {
	// LSN is the end of the last fully applied transaction: the slot is
	// acknowledged up to here and streaming resumes from here.
	LSN     extract.LSN `json:"-"`
	LSNText string      `json:"lsn"`
	// Pos is the last change made durable (inside a transaction that may be
	// only partly applied): on resume, changes at or before it are skipped.
	Pos        extract.Position `json:"-"`
	PosVersion string           `json:"pos"`
	// Intent is the end of the batch being applied when the checkpoint was
	// written ahead of it: after a crash, changes up to Intent may already be
	// in DynamoDB, so the first batch replays at least that far before writing.
	Intent        extract.Position `json:"-"`
	IntentVersion string           `json:"intent,omitempty"`
	// CommitTime is the commit time of the last applied transaction.
	CommitTime time.Time `json:"commit_time"`
	Updated    time.Time `json:"updated"`
	// Changes is the number of changes applied since sync first started.
	Changes int64 `json:"changes"`
	// Snapshot is the progress of the online snapshot under way (nil when
	// none is): recorded with the rows it counts, so that a restarted sync
	// resumes the snapshot at the chunk after the last durable one.
	Snapshot *SnapshotProgress `json:"snapshot,omitempty"`
	// Apply is "stream" when sync runs with --apply stream: then the
	// checkpoint says Kinesis holds the changes, and the stream's appliers
	// write DynamoDB (verify waits for them with barrier records).
	Apply string `json:"apply,omitempty"`
}

// ApplyStream is Checkpoint.Apply of a sync whose stream's appliers write
// DynamoDB.
const ApplyStream = "stream"

// CheckpointID is the control-table id of a slot's sync checkpoint.
func CheckpointID(slot string) string { return "sync:" + slot }

// LoadCheckpoint returns the stored checkpoint of a slot; ok is false when sync
// has never checkpointed.
func LoadCheckpoint(ctx context.Context, ctl *load.ControlStore, slot string) (cp Checkpoint, ok bool, err error) {
	b, ok, err := ctl.Get(ctx, CheckpointID(slot), "checkpoint")
	if err != nil || !ok {
		return Checkpoint{}, false, err
	}
	if err := json.Unmarshal(b, &cp); err != nil {
		return Checkpoint{}, false, fmt.Errorf("checkpoint of slot %s: %w", slot, err)
	}
	if cp.LSN, err = extract.ParseLSN(cp.LSNText); err != nil {
		return Checkpoint{}, false, fmt.Errorf("checkpoint of slot %s: %w", slot, err)
	}
	if cp.Pos, err = extract.ParseVersion(cp.PosVersion); err != nil {
		return Checkpoint{}, false, fmt.Errorf("checkpoint of slot %s: %w", slot, err)
	}
	if cp.IntentVersion != "" {
		if cp.Intent, err = extract.ParseVersion(cp.IntentVersion); err != nil {
			return Checkpoint{}, false, fmt.Errorf("checkpoint of slot %s: %w", slot, err)
		}
	}
	return cp, true, nil
}

// SaveCheckpoint stores the checkpoint durably.
func SaveCheckpoint(ctx context.Context, ctl *load.ControlStore, slot string, cp Checkpoint) error {
	cp.LSNText = cp.LSN.String()
	cp.PosVersion = cp.Pos.Version()
	cp.IntentVersion = ""
	if cp.Intent != (extract.Position{}) {
		cp.IntentVersion = cp.Intent.Version()
	}
	b, _ := json.Marshal(cp)
	if err := ctl.Put(ctx, CheckpointID(slot), "checkpoint", b); err != nil {
		return fmt.Errorf("save checkpoint %s of slot %s: %w", cp.LSN, slot, err)
	}
	return nil
}
