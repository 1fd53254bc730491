package extract

import (
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pglogrepl"
)

// EventKind says what a replication Event carries.
type EventKind int

// The kinds of replication events.
const (
	EventBegin     EventKind = iota + 1 // a transaction starts (CommitLSN known in advance)
	EventChange                         // a row change, or a TRUNCATE of one table
	EventCommit                         // the transaction is complete
	EventKeepalive                      // the server is alive; EndLSN is its WAL end
	EventMessage                        // a logical decoding message (heartbeats)
	EventRelation                       // a mapped table's columns changed (a Relation message after DDL)
)

// Event is one decoded item of the replication stream.
type Event struct {
	Kind      EventKind
	Change    *Change // EventChange
	CommitLSN LSN     // Begin, Change, Commit: the transaction's commit LSN
	EndLSN    LSN     // Commit: end of the commit record (what the slot is acknowledged to); Keepalive: server WAL end; non-transactional Message: its LSN
	TxID      uint32
	Time      time.Time // commit time
	Prefix    string    // EventMessage: the message prefix
	Content   string    // EventMessage: the message content
	// Relation is EventRelation's table before and after the change.
	Relation *RelationChange
}

// RelationChange is a mapped table whose Relation message no longer matches
// the table the decoder knew: Old is that table, New the table as the
// message describes it. New's columns are the message's, in its order, then
// Old's generated columns (pgoutput sends none); its column types are known
// by OID only (Type and Kind are Old's for a column whose type did not
// change, else empty): ResolveRelation completes it from the catalogue.
// Rows of the changes that follow are aligned with New.Columns.
type RelationChange struct {
	RelID    uint32
	Old, New *Table
}

type relation struct {
	table  *Table
	colIdx []int // relation column → Table column index (-1: unknown to the catalogue we loaded)
}

// Decoder turns pgoutput (protocol 1) messages into Events. It keeps the
// relation map and the position within the current transaction; it is not safe
// for concurrent use. Changes of relations that are not in tables are skipped.
type Decoder struct {
	tables map[string]*Table
	rels   map[uint32]*relation
	inTx   bool
	lsn    LSN
	xid    uint32
	ctime  time.Time
	seq    uint32
}

// NewDecoder returns a decoder for the given tables (by qualified name).
func NewDecoder(tables map[string]*Table) *Decoder {
	return &Decoder{tables: tables, rels: map[uint32]*relation{}}
}

// Decode decodes one pgoutput message. It returns zero or more events (a
// TRUNCATE of several tables yields one per table).
func (d *Decoder) Decode(data []byte) ([]Event, error) {
	msg, err := parseMessage(data)
	if err != nil {
		return nil, fmt.Errorf("decode pgoutput message: %w", err)
	}
	switch m := msg.(type) {
	case *pglogrepl.RelationMessage:
		if rc := d.relation(m); rc != nil {
			return []Event{{Kind: EventRelation, Relation: rc, CommitLSN: d.lsn, TxID: d.xid, Time: d.ctime}}, nil
		}
		return nil, nil
	case *pglogrepl.BeginMessage:
		d.inTx, d.lsn, d.xid, d.ctime, d.seq = true, LSN(m.FinalLSN), m.Xid, m.CommitTime, 0
		return []Event{{Kind: EventBegin, CommitLSN: d.lsn, TxID: d.xid, Time: d.ctime}}, nil
	case *pglogrepl.CommitMessage:
		if !d.inTx {
			return nil, fmt.Errorf("commit %s without begin", LSN(m.CommitLSN))
		}
		d.inTx = false
		return []Event{{Kind: EventCommit, CommitLSN: LSN(m.CommitLSN), EndLSN: LSN(m.TransactionEndLSN), TxID: d.xid, Time: m.CommitTime}}, nil
	case *pglogrepl.InsertMessage:
		return d.change(m.RelationID, OpCreate, 0, nil, m.Tuple)
	case *pglogrepl.UpdateMessage:
		return d.change(m.RelationID, OpUpdate, m.OldTupleType, m.OldTuple, m.NewTuple)
	case *pglogrepl.DeleteMessage:
		return d.change(m.RelationID, OpDelete, m.OldTupleType, m.OldTuple, nil)
	case *pglogrepl.TruncateMessage:
		var out []Event
		for _, id := range m.RelationIDs {
			rel := d.rels[id]
			if rel == nil || rel.table == nil {
				continue
			}
			ev, err := d.event(&Change{Table: rel.table, Op: OpTruncate})
			if err != nil {
				return nil, err
			}
			out = append(out, ev)
		}
		return out, nil
	case *pglogrepl.LogicalDecodingMessage:
		ev := Event{Kind: EventMessage, Prefix: m.Prefix, Content: string(m.Content), CommitLSN: d.lsn}
		if !m.Transactional {
			// A heartbeat outside any transaction: the position it was written
			// at may be acknowledged once nothing before it is in flight.
			ev.EndLSN = LSN(m.LSN)
		}
		return []Event{ev}, nil
	}
	return nil, nil // type and origin messages carry nothing ferry needs
}

// parseMessage is pglogrepl.Parse made safe for malformed input: the library
// indexes into the message without checking its length (an empty message
// panics), and a replication stream must fail with an error naming the
// position, not crash (found by FuzzDecode).
func parseMessage(data []byte) (msg pglogrepl.Message, err error) {
	if len(data) == 0 {
		return nil, errors.New("empty message")
	}
	defer func() {
		if r := recover(); r != nil {
			msg, err = nil, fmt.Errorf("malformed %q message (%d bytes): %v", data[0], len(data), r)
		}
	}()
	return pglogrepl.Parse(data)
}

// relation takes a Relation message (sent before the first change of a
// relation in a session, and again after its definition changed). For a
// mapped table whose columns (names, order, types) differ from the table the
// decoder knows, it switches to the table the message describes and returns
// the change.
func (d *Decoder) relation(m *pglogrepl.RelationMessage) *RelationChange {
	name := m.Namespace + "." + m.RelationName
	t := d.tables[name]
	var rc *RelationChange
	if t != nil && !sameColumns(t, m) {
		nt := relationTable(t, m)
		d.tables[name] = nt
		rc = &RelationChange{RelID: m.RelationID, Old: t, New: nt}
		t = nt
	}
	rel := &relation{table: t, colIdx: make([]int, len(m.Columns))}
	for i, c := range m.Columns {
		rel.colIdx[i] = -1
		if t != nil {
			rel.colIdx[i] = t.ColumnIndex(c.Name)
		}
	}
	d.rels[m.RelationID] = rel
	return rc
}

// sameColumns reports whether the message announces exactly the table's
// non-generated columns, in order, with their types and key membership.
// (A table loaded without type OIDs — tests, old callers — compares by
// name and key only.)
func sameColumns(t *Table, m *pglogrepl.RelationMessage) bool {
	i := 0
	inKey := map[int]bool{}
	for _, k := range t.PK {
		inKey[k] = true
	}
	for j, c := range t.Columns {
		if c.Generated != "" {
			continue
		}
		if i >= len(m.Columns) {
			return false
		}
		mc := m.Columns[i]
		if mc.Name != c.Name || (c.TypeOID != 0 && (mc.DataType != c.TypeOID || mc.TypeModifier != c.TypeMod)) {
			return false
		}
		if t.ReplicaIdentity == 'd' && (mc.Flags == 1) != inKey[j] {
			return false // the primary key changed
		}
		i++
	}
	return i == len(m.Columns)
}

// relationTable is the table as the message describes it (see RelationChange).
func relationTable(old *Table, m *pglogrepl.RelationMessage) *Table {
	nt := *old
	nt.Columns, nt.PK = nil, nil
	for _, mc := range m.Columns {
		c := Column{Name: mc.Name, TypeOID: mc.DataType, TypeMod: mc.TypeModifier}
		if i := old.ColumnIndex(mc.Name); i >= 0 {
			oc := old.Columns[i]
			c.NotNull, c.Position = oc.NotNull, oc.Position
			if oc.TypeOID == mc.DataType && oc.TypeMod == mc.TypeModifier {
				c.Type, c.Kind, c.Array = oc.Type, oc.Kind, oc.Array
			}
		}
		if mc.Flags == 1 && old.ReplicaIdentity == 'd' {
			nt.PK = append(nt.PK, len(nt.Columns))
		}
		nt.Columns = append(nt.Columns, c)
	}
	for _, oc := range old.Columns {
		if oc.Generated == "" {
			continue
		}
		gc := oc
		gc.GeneratedFrom = nil
		for _, i := range oc.GeneratedFrom {
			if j := nt.ColumnIndex(old.Columns[i].Name); j >= 0 {
				gc.GeneratedFrom = append(gc.GeneratedFrom, j)
			}
		}
		nt.Columns = append(nt.Columns, gc)
	}
	// The message flags key columns in column order; the key's own order
	// (PRIMARY KEY (payment_date, payment_id)) is kept when its columns are
	// the same. Under another replica identity the flags mark that identity
	// (every column for FULL, an index's for USING INDEX), not the primary
	// key: the key is kept by name.
	var keep []int
	for _, k := range old.PK {
		if i := nt.ColumnIndex(old.Columns[k].Name); i >= 0 {
			keep = append(keep, i)
		}
	}
	if old.ReplicaIdentity != 'd' || sameSet(keep, nt.PK) {
		nt.PK = keep
	}
	return &nt
}

func sameSet(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	in := map[int]bool{}
	for _, x := range a {
		in[x] = true
	}
	for _, x := range b {
		if !in[x] {
			return false
		}
	}
	return true
}

func (d *Decoder) change(relID uint32, op Op, oldType uint8, oldTuple, newTuple *pglogrepl.TupleData) ([]Event, error) {
	rel := d.rels[relID]
	if rel == nil {
		return nil, fmt.Errorf("change for relation %d before its relation message", relID)
	}
	if rel.table == nil {
		return nil, nil
	}
	ch := &Change{Table: rel.table, Op: op}
	if newTuple != nil {
		ch.After = rel.row(newTuple, false)
	}
	if oldTuple != nil {
		ch.Before = rel.row(oldTuple, oldType == 'K')
	}
	ev, err := d.event(ch)
	if err != nil {
		return nil, err
	}
	return []Event{ev}, nil
}

func (d *Decoder) event(ch *Change) (Event, error) {
	if !d.inTx {
		return Event{}, fmt.Errorf("%s change on %s outside a transaction", ch.Op, ch.Table.QualifiedName())
	}
	if d.seq == MaxSeq {
		return Event{}, fmt.Errorf("transaction %d at %s has more than %d changes", d.xid, d.lsn, MaxSeq)
	}
	d.seq++
	ch.Pos = Position{LSN: d.lsn, Seq: d.seq}
	ch.TxID, ch.Commit = d.xid, d.ctime
	return Event{Kind: EventChange, Change: ch, CommitLSN: d.lsn, TxID: d.xid, Time: d.ctime}, nil
}

// row converts a tuple to a Row aligned with the table's columns. Columns the
// tuple does not carry are marked Unchanged (absent): for a key-only old tuple
// ('K') that is every column outside the replica identity.
func (r *relation) row(t *pglogrepl.TupleData, keyOnly bool) Row {
	row := make(Row, len(r.table.Columns))
	for i := range row {
		row[i].Unchanged = true
	}
	for i, c := range t.Columns {
		if i >= len(r.colIdx) || r.colIdx[i] < 0 {
			continue
		}
		v := &row[r.colIdx[i]]
		switch c.DataType {
		case pglogrepl.TupleDataTypeNull:
			if keyOnly {
				continue // not part of the key: stays absent
			}
			*v = Value{Null: true}
		case pglogrepl.TupleDataTypeToast:
			*v = Value{Unchanged: true}
		default:
			*v = Value{Text: string(c.Data)}
		}
	}
	return row
}
