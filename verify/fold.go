package verify

import (
	"encoding/json"
	"fmt"
	"hash/maphash"
	"slices"
	"strings"

	"github.com/ferry-migrate/ferry/extract"
	"github.com/ferry-migrate/ferry/transform"
)

// Event is one decoded Kinesis record of ferry's (Debezium-shaped) envelope.
type Event struct {
	PartitionKey string
	Op           string
	Before       map[string]json.RawMessage
	After        map[string]json.RawMessage
	Schema       string
	Table        string
	Pos          extract.Position
	TxID         uint32 // the source transaction (0 for snapshot reads)
}

// OpSchema is the op of a schema-change record (no row's event: a stream
// check skips it).
const OpSchema = transform.OpSchema

// OpMessage is the op of a message record (no row's event: verify's own
// barriers, see transform.BarrierRecord).
const OpMessage = transform.OpMessage

// DecodeEvent decodes a record's data.
func DecodeEvent(partitionKey string, data []byte) (Event, error) {
	env, err := transform.DecodeRecord(data)
	if err != nil {
		return Event{}, err
	}
	return Event{PartitionKey: partitionKey, Op: env.Op, Before: env.Before, After: env.After,
		Schema: env.Schema, Table: env.Table, Pos: env.Pos, TxID: env.TxID}, nil
}

// FoldTable describes a table whose events are folded: its qualified name,
// mapped columns (as in the events' images) and primary key columns.
type FoldTable struct {
	Name    string // schema.name
	Columns []string
	PK      []string
}

type foldTable struct {
	FoldTable
	cols map[string]int
	// truncs are the positions of the table's truncates (within the cutoff),
	// ascending. They are compared by position, not by the order they were
	// read in: a truncate's record and the rows it removes are on different
	// partition keys, so on different shards, read in no particular order.
	truncs []extract.Position
}

// addTruncate records a truncate at p.
func (t *foldTable) addTruncate(p extract.Position) {
	i, _ := slices.BinarySearchFunc(t.truncs, p, comparePos)
	if i < len(t.truncs) && t.truncs[i] == p {
		return
	}
	t.truncs = slices.Insert(t.truncs, i, p)
}

// truncatedAfter reports whether the table was truncated after position a
// and, when b is not zero, before b.
func (t *foldTable) truncatedAfter(a, b extract.Position) bool {
	i, found := slices.BinarySearchFunc(t.truncs, a, comparePos)
	if found {
		i++
	}
	return i < len(t.truncs) && (b == (extract.Position{}) || t.truncs[i].Less(b))
}

func comparePos(a, b extract.Position) int {
	switch {
	case a.Less(b):
		return -1
	case b.Less(a):
		return 1
	}
	return 0
}

// rowKey identifies a row across events: table and the JSON of its key columns.
func (t *foldTable) rowKey(img map[string]json.RawMessage) (string, bool) {
	var b strings.Builder
	b.WriteString(t.Name)
	for _, c := range t.PK {
		v, ok := img[c]
		if !ok {
			return "", false
		}
		b.WriteByte(0)
		b.Write(v)
	}
	return b.String(), true
}

// keyText renders the key columns of an image as "col=value, col=value".
func (t *foldTable) keyText(img map[string]json.RawMessage) string {
	parts := make([]string, len(t.PK))
	for i, c := range t.PK {
		parts[i] = c + "=" + jsonText(img[c])
	}
	return strings.Join(parts, ", ")
}

// jsonText is a JSON value as text: strings unquoted.
func jsonText(raw json.RawMessage) string {
	if len(raw) > 0 && raw[0] == '"' {
		var s string
		if json.Unmarshal(raw, &s) == nil {
			return s
		}
	}
	return string(raw)
}

// foldState is one row's state folded from its events.
type foldState struct {
	table   *foldTable
	applied extract.Position // the newest event folded into the state
	exists  bool
	vals    []uint64 // per column: hash|1 of the value's JSON; 0 absent
	unknown map[string]bool
	raw     map[string]json.RawMessage // only for kept keys
	keyText string
	partKey string
	last    extract.Position
	// recent are the row's last positions: an event older than last is a
	// duplicate when it is among them (a replay after a crash re-sends a
	// row's events from an earlier one on, up to about a second's worth:
	// sync's --checkpoint-every), an inversion when it is not.
	recent  [8]extract.Position
	nrecent int
	visited bool
}

func (s *foldState) live() bool {
	return s.exists && !s.table.truncatedAfter(s.applied, extract.Position{})
}

func (s *foldState) seen(p extract.Position) bool {
	for i := 0; i < s.nrecent && i < len(s.recent); i++ {
		if s.recent[i] == p {
			return true
		}
	}
	return false
}

func (s *foldState) remember(p extract.Position) {
	s.recent[s.nrecent%len(s.recent)] = p
	s.nrecent++
	s.last = p
}

// Folder folds a stream's events per row, in stream order, the way a consumer
// applying them would: r/c replace the row, u merges its after image (columns
// absent from it, unchanged TOAST values, keep their value), d deletes the
// row, t deletes every row of the table. It also reports duplicate events
// (same row, same lsn+seq) and order inversions (an event older than the row's
// previous one). Not safe for concurrent use.
//
// Memory: per row, 8 bytes per column, the key and 8 recent positions (128
// bytes); raw values only for kept rows.
type Folder struct {
	// Cutoff: events past it are checked for order but not folded, so the state
	// is the stream as of the snapshot (0 folds everything).
	Cutoff extract.LSN
	// Visible, when set, decides instead of Cutoff which changes the source
	// snapshot saw (by transaction: see extract.TxSnapshot); snapshot reads
	// (op r, no transaction) are judged by Cutoff.
	Visible func(txid uint32) bool
	tables  map[string]*foldTable
	keys    map[string]*foldState
	keep    map[string]bool
	max     int

	Events, AfterCutoff, Foreign, Unkeyed int64
	Duplicates, Inversions                int64
	Findings                              []Finding
	Truncated                             bool
}

// NewFolder folds the events of tables; at most maxFindings findings are kept.
func NewFolder(tables []FoldTable, cutoff extract.LSN, maxFindings int) *Folder {
	f := &Folder{Cutoff: cutoff, tables: map[string]*foldTable{}, keys: map[string]*foldState{}, max: maxFindings}
	for _, t := range tables {
		ft := &foldTable{FoldTable: t, cols: map[string]int{}}
		for i, c := range t.Columns {
			ft.cols[c] = i
		}
		f.tables[t.Name] = ft
	}
	return f
}

// Keep restricts the folder to the given row keys, keeping their raw values.
func (f *Folder) Keep(keys map[string]bool) { f.keep = keys }

func (f *Folder) finding(x Finding) {
	var dropped bool
	f.Findings, dropped = keepSmallest(f.Findings, x, f.max, compareFindings)
	f.Truncated = f.Truncated || dropped
}

func posText(p extract.Position) string { return fmt.Sprintf("%s:%d", p.LSN, p.Seq) }

// afterSnapshot reports whether ev is a change the source snapshot did not see.
func (f *Folder) afterSnapshot(ev Event) bool {
	if f.Visible != nil && ev.Op != "r" {
		return !f.Visible(ev.TxID)
	}
	// A snapshot read is at its position: the backfill's at the slot's
	// start, an online snapshot's chunk at its high watermark, after the
	// chunk was read (a chunk read after the source snapshot holds rows the
	// snapshot may not have).
	return f.Cutoff != 0 && ev.Pos.LSN > f.Cutoff
}

// Apply folds one event.
func (f *Folder) Apply(ev Event) {
	t := f.tables[ev.Schema+"."+ev.Table]
	if t == nil {
		if f.keep == nil {
			f.Events++
			f.Foreign++
		}
		return
	}
	if ev.Op == "t" {
		if f.keep == nil {
			f.Events++
		}
		if !f.afterSnapshot(ev) {
			t.addTruncate(ev.Pos)
		}
		return
	}
	img := ev.After
	if ev.Op == "d" {
		img = ev.Before
	}
	key, ok := t.rowKey(img)
	if f.keep != nil && (!ok || !f.keep[key]) {
		return
	}
	f.Events++
	if !ok {
		f.Unkeyed++
		return
	}
	s := f.keys[key]
	if s == nil {
		s = &foldState{table: t, keyText: t.keyText(img)}
		f.keys[key] = s
	}
	s.partKey = ev.PartitionKey
	switch {
	case s.seen(ev.Pos):
		f.Duplicates++
		f.finding(Finding{Kind: KindDuplicate, Table: t.Name, Key: s.keyText, PartitionKey: ev.PartitionKey, Position: posText(ev.Pos)})
	case s.nrecent > 0 && ev.Pos.Less(s.last):
		f.Inversions++
		f.finding(Finding{Kind: KindInversion, Table: t.Name, Key: s.keyText, PartitionKey: ev.PartitionKey,
			Position: posText(ev.Pos), Previous: posText(s.last)})
	}
	s.remember(ev.Pos)
	if f.afterSnapshot(ev) {
		f.AfterCutoff++
		return
	}
	if t.truncatedAfter(s.applied, ev.Pos) { // truncated between its last event and this one
		s.exists = false
		s.vals, s.raw, s.unknown = nil, nil, nil
	}
	if s.applied.Less(ev.Pos) {
		s.applied = ev.Pos
	}
	switch ev.Op {
	case "r", "c":
		s.vals, s.raw, s.unknown = nil, nil, nil
		f.merge(s, key, ev.After)
	case "u":
		var moved *foldState // the row's state under its old key, when the update changes the key
		if ev.Before != nil {
			if old, ok := t.rowKey(ev.Before); ok && old != key {
				moved = f.keys[old]
			}
		}
		if !s.live() {
			s.vals, s.raw, s.unknown = nil, nil, nil
			if moved != nil && moved.live() {
				s.vals, s.unknown = append([]uint64(nil), moved.vals...), moved.unknown
			}
		}
		if moved != nil {
			moved.exists = false
		}
		f.merge(s, key, ev.After)
	case "d":
		s.exists = false
	}
}

// merge sets the columns present in img.
func (f *Folder) merge(s *foldState, key string, img map[string]json.RawMessage) {
	t := s.table
	s.exists = true
	if s.vals == nil {
		s.vals = make([]uint64, len(t.Columns))
	}
	for name, raw := range img {
		i, ok := t.cols[name]
		if !ok {
			if s.unknown == nil {
				s.unknown = map[string]bool{}
			}
			s.unknown[name] = true
			continue
		}
		s.vals[i] = valueHash(raw)
		if f.keep != nil && f.keep[key] {
			if s.raw == nil {
				s.raw = map[string]json.RawMessage{}
			}
			s.raw[name] = raw
		}
	}
}

func valueHash(raw json.RawMessage) uint64 { return maphash.Bytes(itemSeed, raw) | 1 }

// Compare checks one source row's image (its after image as the mapping
// renders it) against the folded state. It returns the row key, whether the
// row differs, and the finding (kind missing or differs; its Columns carry the
// source values, with "?" for the stream's, see Fill).
func (f *Folder) Compare(table string, img map[string]json.RawMessage) (key string, fd *Finding) {
	t := f.tables[table]
	if t == nil {
		return "", nil
	}
	key, ok := t.rowKey(img)
	if !ok {
		return "", &Finding{Kind: KindMissing, Table: table, Key: t.keyText(img), Reason: "source image lacks key columns"}
	}
	s := f.keys[key]
	if s == nil || !s.live() {
		if s != nil {
			s.visited = true
		}
		return key, &Finding{Kind: KindMissing, Table: table, Key: t.keyText(img), Reason: "no event leaves this row in the stream"}
	}
	s.visited = true
	var diffs []ColumnDiff
	for i, c := range t.Columns {
		raw, ok := img[c]
		var h uint64
		if ok {
			h = valueHash(raw)
		}
		if h != s.vals[i] {
			src := "<absent>"
			if ok {
				src = string(raw)
			}
			diffs = append(diffs, ColumnDiff{Column: c, Source: src, Target: "?"})
		}
	}
	for c := range s.unknown {
		diffs = append(diffs, ColumnDiff{Column: c, Source: "<not mapped>", Target: "?"})
	}
	if len(diffs) == 0 {
		return key, nil
	}
	sortDiffs(diffs)
	return key, &Finding{Kind: KindDiffers, Table: table, Key: s.keyText, PartitionKey: s.partKey, Columns: diffs, rowKey: key}
}

// Leftovers calls fn for every row the stream leaves in existence that no
// source row was compared with (call after every source row was compared).
func (f *Folder) Leftovers(fn func(Finding)) {
	for _, s := range f.keys {
		if s.live() && !s.visited {
			fn(Finding{Kind: KindExtra, Table: s.table.Name, Key: s.keyText, PartitionKey: s.partKey,
				Reason: "the stream leaves a row the source does not have"})
		}
	}
}

// Keys is the number of rows the stream has events for.
func (f *Folder) Keys() int64 { return int64(len(f.keys)) }

// Fill sets the stream values of a differs finding from a folder that kept
// the row's raw values.
func (f *Folder) Fill(key string, fd *Finding) {
	s := f.keys[key]
	for i := range fd.Columns {
		c := &fd.Columns[i]
		if s == nil {
			c.Target = "<absent>"
			continue
		}
		if raw, ok := s.raw[c.Column]; ok {
			c.Target = string(raw)
		} else {
			c.Target = "<absent>"
		}
	}
}

func sortDiffs(d []ColumnDiff) {
	for i := 1; i < len(d); i++ {
		for j := i; j > 0 && d[j].Column < d[j-1].Column; j-- {
			d[j], d[j-1] = d[j-1], d[j]
		}
	}
}
