package extract

import "time"

// Op is the kind of a change, with Debezium's letters.
type Op byte

// The operations ferry carries.
const (
	OpRead     Op = 'r' // a snapshot row
	OpCreate   Op = 'c' // INSERT
	OpUpdate   Op = 'u' // UPDATE
	OpDelete   Op = 'd' // DELETE
	OpTruncate Op = 't' // TRUNCATE of the whole table
)

func (o Op) String() string { return string(o) }

// Value is one column value in PostgreSQL's text output form (the form COPY and
// pgoutput both deliver). Null marks SQL NULL; Unchanged marks an unchanged TOAST
// value that an UPDATE did not carry (its Text is empty and must not be used).
type Value struct {
	Text      string
	Null      bool
	Unchanged bool
}

// Row is a tuple aligned with Table.Columns.
type Row []Value

// Change is one row-level event, from the snapshot or from the WAL.
type Change struct {
	Table  *Table
	Op     Op
	Pos    Position
	TxID   uint32
	Commit time.Time // commit time (snapshot: the time the snapshot was taken)
	// Before is the old row when the replica identity provides it (updates that
	// change the key, deletes); for a delete with the default identity it holds
	// only the key columns. Nil when unknown.
	Before Row
	// After is the new row for r/c/u, nil for d/t.
	After Row
}

// Snapshot reports whether the change comes from the initial snapshot.
func (c *Change) Snapshot() bool { return c.Op == OpRead }
