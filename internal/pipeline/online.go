package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/ferry-migrate/ferry/extract"
	"github.com/ferry-migrate/ferry/load"
	"github.com/ferry-migrate/ferry/transform"
)

// Online snapshots (after Netflix's DBLog): while sync streams, a table is
// re-read in primary-key chunks without stopping the stream and without ever
// letting a re-read row overtake a newer change of the same row.
//
// Between two transactions of the stream, the apply loop reads one chunk in
// a REPEATABLE READ transaction and notes that transaction's snapshot S
// (pg_current_snapshot(): exactly which transactions the rows reflect), then
// writes a high watermark: a non-transactional logical decoding message,
// decoded at its own WAL position H. Every transaction visible in S ended
// before S was taken, so it reaches the stream before H. Until the stream
// reaches H, every change of a transaction S does not see removes its row
// from the chunk: the log has a newer state of that row. At H, the rows left
// are exactly the state the stream has reached, and they are emitted there as
// `r` changes at position (H-1, i): newer than everything before H, older than
// everything after. Not (H, i): pgoutput reports a message at the end of its
// WAL record, which is where the next record begins — and a transaction whose
// commit record comes right after the watermark has its changes at (H, 1…n)
// too. A chunk flushed at (H, n) once made the replay skip such a
// transaction's first n changes as already applied, and they were lost. The
// watermark record is longer than a byte, so no commit record starts at H-1.
// No table of ours is needed in the user's schema.
//
// One race is closed by hand: a transaction whose commit record precedes the
// read can still be invisible to S (it is removed from the proc array just
// after). If the stream had already passed such a transaction, the chunk
// would be older than what was applied, so a chunk whose snapshot does not
// see a recently applied transaction is dropped and read again.

// SnapshotRequest asks a running sync for an online snapshot.
type SnapshotRequest struct {
	ID     string     `json:"id"`
	Tables []string   `json:"tables"` // qualified source names, in order
	Where  string     `json:"where,omitempty"`
	Keys   [][]string `json:"keys,omitempty"` // primary keys (text values) to re-read; one table
	// Ranges restricts tables to primary-key ranges (by qualified name; a
	// table without an entry is read whole): the chunks a resumed backfill
	// copied without publishing them.
	Ranges  map[string][]KeyRange `json:"ranges,omitempty"`
	Created time.Time             `json:"created"`
	Origin  string                `json:"origin,omitempty"` // who asked: OriginSnapshot, OriginSync, …
}

// The origins of snapshot requests.
const (
	OriginSnapshot = "snapshot" // `ferry snapshot`
	OriginSync     = "sync"     // tables added to the mapping of a running migration
	OriginBackfill = "backfill" // the chunks a resumed backfill did not publish
	OriginVerify   = "verify"   // `ferry verify --repair`
	OriginSchema   = "schema"   // a table whose definition changed (schema.go)
)

// KeyRange is a primary-key range [From, Before) (nil: unbounded), in the key
// columns' text form.
type KeyRange struct {
	From   []string `json:"from,omitempty"`
	Before []string `json:"before,omitempty"`
}

// SnapshotProgress is how far an online snapshot has come; it is part of the
// checkpoint, so it is durable exactly when the rows it counts are.
type SnapshotProgress struct {
	Request  string   `json:"request"`
	Table    int      `json:"table"`           // index into the request's Tables
	Range    int      `json:"range,omitempty"` // index into the table's Ranges
	After    []string `json:"after,omitempty"` // the last primary key done in that table (range)
	KeysDone int      `json:"keys_done,omitempty"`
	Rows     int64    `json:"rows"`   // rows emitted so far
	Chunks   int64    `json:"chunks"` // chunks done so far
	// ChunkRows is the size of the last chunk asked for: SnapshotChunkRows,
	// or fewer while applying that many would take over SnapshotChunkTime.
	ChunkRows int       `json:"chunk_rows,omitempty"`
	Started   time.Time `json:"started"`
	Done      bool      `json:"done,omitempty"`
	// The request's tables and origin, so that its record says what it read.
	Tables []string `json:"tables,omitempty"`
	Origin string   `json:"origin,omitempty"`
}

// The control-table records of online snapshots: requests ("request#ID")
// and finished snapshots ("done#ID", the final progress), under
// "snapshot:<slot>".
func snapshotID(slot string) string { return "snapshot:" + slot }

// SnapshotRecordsID is the control-table id of a slot's online snapshot
// requests and records (teardown removes them).
func SnapshotRecordsID(slot string) string { return snapshotID(slot) }

// SaveSnapshotRequest stores a request for the sync of slot.
func SaveSnapshotRequest(ctx context.Context, ctl *load.ControlStore, slot string, r SnapshotRequest) error {
	b, _ := json.Marshal(r)
	if err := ctl.Put(ctx, snapshotID(slot), "request#"+r.ID, b); err != nil {
		return fmt.Errorf("save snapshot request %s: %w", r.ID, err)
	}
	return nil
}

// SnapshotRecords returns the pending requests (oldest first) and the
// finished snapshots (by request id) of slot.
func SnapshotRecords(ctx context.Context, ctl *load.ControlStore, slot string) ([]SnapshotRequest, map[string]SnapshotProgress, error) {
	all, err := ctl.List(ctx, snapshotID(slot))
	if err != nil {
		return nil, nil, fmt.Errorf("read snapshot requests: %w", err)
	}
	var reqs []SnapshotRequest
	done := map[string]SnapshotProgress{}
	for sk, v := range all {
		switch {
		case strings.HasPrefix(sk, "request#"):
			var r SnapshotRequest
			if err := json.Unmarshal(v, &r); err != nil {
				return nil, nil, fmt.Errorf("snapshot request %s: %w", sk, err)
			}
			reqs = append(reqs, r)
		case strings.HasPrefix(sk, "done#"):
			var p SnapshotProgress
			if err := json.Unmarshal(v, &p); err != nil {
				return nil, nil, fmt.Errorf("snapshot record %s: %w", sk, err)
			}
			done[strings.TrimPrefix(sk, "done#")] = p
		}
	}
	sort.Slice(reqs, func(i, j int) bool { return reqs[i].ID < reqs[j].ID })
	return reqs, done, nil
}

// SchemaRefills returns the tables that pending requests queued by schema
// changes re-read, each with the (oldest) request's id.
func SchemaRefills(pending []SnapshotRequest) map[string]string {
	out := map[string]string{}
	for _, r := range pending {
		if r.Origin != OriginSchema || r.Keys != nil {
			continue // a key sweep (partitions) re-reads keys, not the table's definition
		}
		for _, t := range r.Tables {
			if _, ok := out[t]; !ok {
				out[t] = r.ID
			}
		}
	}
	return out
}

// NewSnapshotID returns a request id that sorts by creation time.
func NewSnapshotID(now time.Time) string {
	return now.UTC().Format("20060102T150405.000000000Z")
}

// chunkWindow is a chunk between its read and its high watermark.
type chunkWindow struct {
	id    string // the watermark's content
	tp    *transform.TablePlan
	snap  extract.TxSnapshot
	rows  map[string]extract.Row // primary key text → row, still to emit
	order []string               // primary keys in read order
	// absent are the keys asked for (a --keys snapshot) that the chunk did
	// not find: unless the log brings a newer state, their items are
	// deleted at the watermark (the row is gone at the snapshot).
	absent map[string][]string
	last   []string // primary key of the last row read
	read   int      // rows read (the chunk's size)
	limit  int      // rows asked for: fewer read means the table (range) is done
}

// pkText is a row's primary key as one string (the key columns' text joined
// by NUL, which no PostgreSQL text value holds).
func pkText(t *extract.Table, row extract.Row) (string, bool) {
	var b strings.Builder
	for i, idx := range t.PK {
		if idx >= len(row) || row[idx].Unchanged || row[idx].Null {
			return "", false
		}
		if i > 0 {
			b.WriteByte(0)
		}
		b.WriteString(row[idx].Text)
	}
	return b.String(), true
}

func pkValues(t *extract.Table, row extract.Row) []string {
	out := make([]string, len(t.PK))
	for i, idx := range t.PK {
		out[i] = row[idx].Text
	}
	return out
}

func newChunkWindow(id string, tp *transform.TablePlan, rows []extract.Row, snap extract.TxSnapshot) *chunkWindow {
	w := &chunkWindow{id: id, tp: tp, snap: snap, rows: make(map[string]extract.Row, len(rows)), read: len(rows)}
	for _, r := range rows {
		if k, ok := pkText(tp.Source, r); ok {
			w.rows[k] = r
			w.order = append(w.order, k)
		}
	}
	if len(rows) > 0 {
		w.last = pkValues(tp.Source, rows[len(rows)-1])
	}
	return w
}

// expectKeys notes the keys the chunk asked for: those it did not find are
// absent (deleted at the watermark). A table whose item key needs columns
// outside the primary key cannot be deleted by primary key: its absent keys
// are left (and counted in the returned number).
func (w *chunkWindow) expectKeys(keys [][]string) (unkeyed int) {
	for _, key := range keys {
		k := strings.Join(key, "\x00")
		if _, found := w.rows[k]; found {
			continue
		}
		if len(w.tp.KeyColumnsOutsidePK()) > 0 {
			unkeyed++
			continue
		}
		if w.absent == nil {
			w.absent = map[string][]string{}
		}
		if _, dup := w.absent[k]; !dup {
			w.absent[k] = key
			w.order = append(w.order, k)
		}
	}
	return unkeyed
}

// observe takes a change of the stream that precedes the window's high
// watermark: a change of a transaction the chunk's snapshot does not see
// carries a newer state of its row than the chunk, so the row leaves the
// chunk (the log's state wins).
func (w *chunkWindow) observe(ch *extract.Change) {
	if ch.Table != w.tp.Source || w.snap.Visible(ch.TxID) {
		return
	}
	if ch.Op == extract.OpTruncate {
		clear(w.rows)
		clear(w.absent)
		return
	}
	for _, row := range []extract.Row{ch.Before, ch.After} {
		if k, ok := pkText(w.tp.Source, row); ok {
			delete(w.rows, k)
			delete(w.absent, k)
		}
	}
}

// emit returns the rows left as snapshot changes just before the high
// watermark hwm (at hwm-1: see the top of this file),
// and the absent keys left as deletes (shaped like a delete under the default
// replica identity: the key columns, the others left out).
func (w *chunkWindow) emit(hwm extract.LSN, at time.Time) []*extract.Change {
	var out []*extract.Change
	at0 := hwm - 1 // see the top of this file: a commit may start at hwm
	for _, k := range w.order {
		pos := extract.Position{LSN: at0, Seq: uint32(len(out) + 1)}
		if row, ok := w.rows[k]; ok {
			out = append(out, &extract.Change{Table: w.tp.Source, Op: extract.OpRead, Pos: pos, Commit: at, After: row})
		} else if key, ok := w.absent[k]; ok {
			before := make(extract.Row, len(w.tp.Source.Columns))
			for i := range before {
				before[i].Unchanged = true
			}
			for i, idx := range w.tp.Source.PK {
				before[idx] = extract.Value{Text: key[i]}
			}
			out = append(out, &extract.Change{Table: w.tp.Source, Op: extract.OpDelete, Pos: pos, Commit: at, Before: before})
		}
	}
	return out
}

// xidRing remembers the ids of the last transactions the stream delivered.
type xidRing struct {
	ids  [1024]uint32
	n    int
	full bool
}

func (r *xidRing) add(x uint32) {
	r.ids[r.n] = x
	r.n++
	if r.n == len(r.ids) {
		r.n, r.full = 0, true
	}
}

// invisibleIn reports whether a remembered transaction is not visible to
// snap (then a chunk read in snap is older than what was applied).
func (r *xidRing) invisibleIn(snap extract.TxSnapshot) (uint32, bool) {
	n := r.n
	if r.full {
		n = len(r.ids)
	}
	for _, x := range r.ids[:n] {
		if !snap.Visible(x) {
			return x, true
		}
	}
	return 0, false
}
