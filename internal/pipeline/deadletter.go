package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"sync"

	"github.com/ferry-migrate/ferry/extract"
	"github.com/ferry-migrate/ferry/load"
	"github.com/ferry-migrate/ferry/transform"
)

// ErrorPolicy says what backfill and sync do with a row that can never be
// written (an item over 400 KB, a record over 1 MiB, a value or key the
// target cannot hold).
type ErrorPolicy string

// The error policies.
const (
	// OnErrorStop (the default): backfill finishes the copy, lists the rows,
	// leaves their chunks pending and exits 1; sync stops with an error naming
	// the table and key, before acknowledging the change.
	OnErrorStop ErrorPolicy = "stop"
	// OnErrorSkip writes the row to the dead-letter file, counts it, and goes
	// on: backfill marks the chunk done, sync acknowledges past it.
	OnErrorSkip ErrorPolicy = "skip"
)

// DefaultDeadLetter is the dead-letter file used when none is configured.
const DefaultDeadLetter = "ferry-dead-letter.jsonl"

// DeadLetter appends skipped rows to a JSON-lines file, one object per row:
// {"table","key","reason","op","lsn","row":{column: text or null}}. The file
// is created on the first row (a clean run leaves none) and each line is
// synced before Write returns, so a skipped row is on disk before its
// position is acknowledged. Safe for concurrent use.
type DeadLetter struct {
	Path string

	mu sync.Mutex
	f  *os.File
	n  int64
}

// NewDeadLetter returns a dead-letter file at path (default DefaultDeadLetter).
func NewDeadLetter(path string) *DeadLetter {
	if path == "" {
		path = DefaultDeadLetter
	}
	return &DeadLetter{Path: path}
}

// Write appends one row to the file and, when ctl is not nil, records it in
// the control table (RecordDeadLetter), in that order: both hold the row
// before the caller marks its chunk done or acknowledges its change.
func (d *DeadLetter) Write(ctx context.Context, f RowFailure, ctl *load.ControlStore) error {
	if err := d.append(f); err != nil {
		return err
	}
	if ctl == nil { // a nil *ControlStore in the interface would not be nil
		return nil
	}
	return RecordDeadLetter(ctx, ctl, f)
}

// append appends one row to the file, synced.
func (d *DeadLetter) append(f RowFailure) error {
	line, err := json.Marshal(f)
	if err != nil {
		return fmt.Errorf("dead-letter %s: %w", d.Path, err)
	}
	line = append(line, '\n')
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.f == nil {
		if d.f, err = os.OpenFile(d.Path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600); err != nil {
			return fmt.Errorf("dead-letter file: %w", err)
		}
	}
	if _, err := d.f.Write(line); err != nil {
		return fmt.Errorf("dead-letter %s: %w", d.Path, err)
	}
	if err := d.f.Sync(); err != nil {
		return fmt.Errorf("dead-letter %s: %w", d.Path, err)
	}
	d.n++
	return nil
}

// Count returns the rows written by this process.
func (d *DeadLetter) Count() int64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.n
}

// Close closes the file (if one was created).
func (d *DeadLetter) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.f == nil {
		return nil
	}
	err := d.f.Close()
	d.f = nil
	return err
}

// DeadLetterID is the control table id under which dead letters are
// recorded (sk: table NUL key; value: the RowFailure as JSON), by backfill
// and sync beside their files and by the stream appliers, which have no
// file. The name is the one the appliers used first.
const DeadLetterID = "applier#deadletter"

// maxRecordedDeadLetter is the largest dead letter kept whole in the
// control table (an item holds at most 400 KB, keys and names included).
const maxRecordedDeadLetter = 350 << 10

// RecordDeadLetter records f in the control table, where verify reads the
// dead letters of every process (backfill workers on other machines, sync,
// the stream appliers) without their files. A row recorded twice (a chunk
// copied again after its lease was lost, a change replayed after a crash)
// stays one item. A row too large for an item is left out; the table, key
// and reason still name it.
func RecordDeadLetter(ctx context.Context, ctl valuePutter, f RowFailure) error {
	data, err := json.Marshal(f)
	if err != nil {
		return fmt.Errorf("dead letter of %s (%s): %w", f.Table, f.Key, err)
	}
	if len(data) > maxRecordedDeadLetter {
		f.Row = nil
		f.Reason += " (the row is left out of this dead letter: too large for the control table)"
		if data, err = json.Marshal(f); err != nil {
			return fmt.Errorf("dead letter of %s (%s): %w", f.Table, f.Key, err)
		}
	}
	if err := ctl.Put(ctx, DeadLetterID, f.Table+"\x00"+f.Key, data); err != nil {
		return fmt.Errorf("record the dead letter of %s (%s) in the control table: %w", f.Table, f.Key, err)
	}
	return nil
}

// rowText renders a row as column → text (nil for NULL), leaving out the
// columns a change did not carry (unchanged TOAST values).
func rowText(t *extract.Table, row extract.Row) map[string]*string {
	if row == nil {
		return nil
	}
	out := make(map[string]*string, len(row))
	for i, v := range row {
		if i >= len(t.Columns) || v.Unchanged {
			continue
		}
		if v.Null {
			out[t.Columns[i].Name] = nil
			continue
		}
		s := strings.Clone(v.Text) // the row's memory is used again after its batch
		out[t.Columns[i].Name] = &s
	}
	return out
}

// changeFailure describes a change that can never be written.
func changeFailure(tp *transform.TablePlan, ch *extract.Change, err error) RowFailure {
	row := ch.After
	if row == nil {
		row = ch.Before
	}
	f := rowFailure(tp.Source.QualifiedName(), tp.KeyString(row), err)
	f.Op, f.LSN, f.Row = ch.Op.String(), ch.Pos.LSN.String(), rowText(tp.Source, row)
	return f
}
