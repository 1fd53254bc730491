package extract

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// ExportedSnapshot is a replication slot's consistent point together with the
// snapshot exported when the slot was created. The snapshot can be imported by
// other connections only while this one stays open and idle: call Close after
// the last SnapshotConn has started its transaction and finished reading.
type ExportedSnapshot struct {
	Slot string
	Name string // the exported snapshot's name, for SET TRANSACTION SNAPSHOT
	LSN  LSN    // the slot's consistent point: CDC continues exactly from here
	conn *pgconn.PgConn
}

// CreateSlotSnapshot creates the logical replication slot (pgoutput) with an
// exported snapshot. A temporary slot disappears when Close is called; ferry uses
// one to get a fresh, exactly positioned snapshot when it resumes a backfill.
func CreateSlotSnapshot(ctx context.Context, url, slot string, temporary bool) (*ExportedSnapshot, error) {
	conn, err := ConnectReplication(ctx, url)
	if err != nil {
		return nil, err
	}
	res, err := pglogrepl.CreateReplicationSlot(ctx, conn, slot, "pgoutput", pglogrepl.CreateReplicationSlotOptions{
		Temporary:      temporary,
		SnapshotAction: "EXPORT_SNAPSHOT",
		Mode:           pglogrepl.LogicalReplication,
	})
	if err != nil {
		conn.Close(context.Background())
		return nil, fmt.Errorf("create replication slot %q: %w", slot, err)
	}
	lsn, err := ParseLSN(res.ConsistentPoint)
	if err != nil {
		conn.Close(context.Background())
		return nil, fmt.Errorf("create replication slot %q: %w", slot, err)
	}
	return &ExportedSnapshot{Slot: slot, Name: res.SnapshotName, LSN: lsn, conn: conn}, nil
}

// Close ends the exporting connection (and drops the slot if it was temporary).
func (s *ExportedSnapshot) Close(ctx context.Context) error {
	if s.conn == nil {
		return nil
	}
	err := s.conn.Close(ctx)
	s.conn = nil
	return err
}

// SlotInfo describes an existing replication slot.
type SlotInfo struct {
	Name              string
	Plugin            string
	Active            bool
	ConfirmedFlushLSN LSN
	RestartLSN        LSN
	WALStatus         string
	RetainedBytes     int64
}

// LookupSlot returns the slot's state, or ok=false when it does not exist.
func LookupSlot(ctx context.Context, conn *pgx.Conn, slot string) (info SlotInfo, ok bool, err error) {
	var confirmed, restart *string
	var walStatus *string
	err = conn.QueryRow(ctx, `SELECT slot_name, coalesce(plugin, ''), active, confirmed_flush_lsn::text, restart_lsn::text, wal_status,
	coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn), 0)::bigint
FROM pg_replication_slots WHERE slot_name = $1 AND database = current_database()`, slot).
		Scan(&info.Name, &info.Plugin, &info.Active, &confirmed, &restart, &walStatus, &info.RetainedBytes)
	if errors.Is(err, pgx.ErrNoRows) {
		return SlotInfo{}, false, nil
	}
	if err != nil {
		return SlotInfo{}, false, fmt.Errorf("look up slot %q: %w", slot, err)
	}
	if confirmed != nil {
		info.ConfirmedFlushLSN, _ = ParseLSN(*confirmed)
	}
	if restart != nil {
		info.RestartLSN, _ = ParseLSN(*restart)
	}
	if walStatus != nil {
		info.WALStatus = *walStatus
	}
	return info, true, nil
}

// Chunk is a primary-key range [Lo, Hi) of a table, bounds in the key columns'
// text form; a nil bound is open. A table without a primary key is one chunk.
type Chunk struct {
	Index int      `json:"i"`
	Lo    []string `json:"lo,omitempty"`
	Hi    []string `json:"hi,omitempty"`
}

// ErrSnapshotGone is returned by OpenSnapshotConn when the exported snapshot
// cannot be imported: the session that exported it has ended (or moved on),
// or it never existed.
var ErrSnapshotGone = errors.New("exported snapshot is gone")

// SnapshotConn is a connection reading inside an exported snapshot.
type SnapshotConn struct {
	conn *pgx.Conn
}

// OpenSnapshotConn connects and starts a read-only REPEATABLE READ transaction
// that imports the snapshot. An empty snapshot name starts a fresh snapshot.
func OpenSnapshotConn(ctx context.Context, url, snapshot string) (*SnapshotConn, error) {
	conn, err := Connect(ctx, url)
	if err != nil {
		return nil, err
	}
	if _, err := conn.Exec(ctx, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"); err != nil {
		conn.Close(ctx)
		return nil, fmt.Errorf("begin snapshot transaction: %w", err)
	}
	if snapshot != "" {
		if _, err := conn.Exec(ctx, "SET TRANSACTION SNAPSHOT "+quoteLiteral(snapshot)); err != nil {
			conn.Close(ctx)
			var pgErr *pgconn.PgError
			// 42704 undefined_object: "snapshot … does not exist" (its
			// session ended); 55000 object_not_in_prerequisite_state:
			// "could not import the requested snapshot" (its transaction
			// ended); 22023 invalid_parameter_value: "invalid snapshot
			// identifier".
			if errors.As(err, &pgErr) && (pgErr.Code == "42704" || pgErr.Code == "55000" || pgErr.Code == "22023") {
				return nil, fmt.Errorf("import snapshot %s: %w (%w)", snapshot, ErrSnapshotGone, err)
			}
			return nil, fmt.Errorf("import snapshot %s: %w", snapshot, err)
		}
	}
	return &SnapshotConn{conn: conn}, nil
}

// Conn exposes the underlying connection (inside the snapshot transaction).
func (c *SnapshotConn) Conn() *pgx.Conn { return c.conn }

// Close ends the transaction and the connection.
func (c *SnapshotConn) Close(ctx context.Context) error {
	return c.conn.Close(ctx)
}

// PlanChunks splits the table into primary-key ranges of about rowsPerChunk rows
// as seen by this snapshot, and counts its rows.
//
// It reads the primary key in order once (an index scan, streamed with COPY)
// and keeps every rowsPerChunk-th key as a bound: each chunk holds exactly
// rowsPerChunk rows but the last. (A count and a row_number() pass cost the
// server about twice as much: as much as copying the whole table.)
func (c *SnapshotConn) PlanChunks(ctx context.Context, t *Table, rowsPerChunk int) ([]Chunk, int64, error) {
	if len(t.PK) == 0 {
		var total int64
		if err := c.conn.QueryRow(ctx, "SELECT count(*) FROM "+t.Ident()).Scan(&total); err != nil {
			return nil, 0, fmt.Errorf("count %s: %w", t.QualifiedName(), err)
		}
		return []Chunk{{Index: 0}}, total, nil
	}
	pk := pkList(t)
	var (
		total  int64
		bounds [][]string
		mem    RowBuffer
	)
	w := newCopyRowWriter(len(t.PK), func(key Row) error {
		total++
		if total > 1 && (total-1)%int64(rowsPerChunk) == 0 {
			b := make([]string, len(key))
			for i, v := range key {
				if v.Null { // a primary key column is never NULL
					return fmt.Errorf("key column %s is NULL", t.Columns[t.PK[i]].Name)
				}
				b[i] = strings.Clone(v.Text)
			}
			bounds = append(bounds, b)
		}
		if total%4096 == 0 {
			mem.Reset() // only the bounds, copied, outlive their row
		}
		return nil
	})
	w.mem = &mem
	sql := "COPY (SELECT " + pk + " FROM " + t.Ident() + " ORDER BY " + pk + ") TO STDOUT"
	if _, err := c.conn.PgConn().CopyTo(ctx, w, sql); err != nil {
		return nil, 0, fmt.Errorf("plan chunks of %s: %w", t.QualifiedName(), err)
	}
	if err := w.Close(); err != nil {
		return nil, 0, fmt.Errorf("plan chunks of %s: %w", t.QualifiedName(), err)
	}
	chunks := make([]Chunk, 0, len(bounds)+1)
	var lo []string
	for _, b := range bounds {
		chunks = append(chunks, Chunk{Index: len(chunks), Lo: lo, Hi: b})
		lo = b
	}
	chunks = append(chunks, Chunk{Index: len(chunks), Lo: lo})
	return chunks, total, nil
}

// ChunkQuery is the SELECT that reads one chunk with all columns in table order.
func ChunkQuery(t *Table, ch Chunk) string {
	sql := selectAll(t)
	var conds []string
	if ch.Lo != nil {
		conds = append(conds, "("+pkList(t)+") >= ("+pkLiterals(t, ch.Lo)+")")
	}
	if ch.Hi != nil {
		conds = append(conds, "("+pkList(t)+") < ("+pkLiterals(t, ch.Hi)+")")
	}
	if len(conds) > 0 {
		sql += " WHERE " + strings.Join(conds, " AND ")
	}
	return sql
}

// ReadChunk streams the chunk's rows (all columns, in table order) to emit, one
// at a time: memory does not depend on the chunk's size. emit may block; an
// error from emit stops the read and is returned.
func (c *SnapshotConn) ReadChunk(ctx context.Context, t *Table, ch Chunk, emit func(Row) error) (int64, error) {
	return c.ReadChunkInto(ctx, t, ch, nil, emit)
}

// ReadChunkInto is ReadChunk keeping the rows in mem (see RowBuffer: they
// are valid until its Reset, which emit may call between rows it no longer
// uses); nil mem allocates every row.
func (c *SnapshotConn) ReadChunkInto(ctx context.Context, t *Table, ch Chunk, mem *RowBuffer, emit func(Row) error) (int64, error) {
	w := newCopyRowWriter(len(t.Columns), emit)
	w.mem = mem
	if _, err := c.conn.PgConn().CopyTo(ctx, w, "COPY ("+ChunkQuery(t, ch)+") TO STDOUT"); err != nil {
		return w.rows, fmt.Errorf("read %s chunk %d: %w", t.QualifiedName(), ch.Index, err)
	}
	if err := w.Close(); err != nil {
		return w.rows, fmt.Errorf("read %s chunk %d: %w", t.QualifiedName(), ch.Index, err)
	}
	return w.rows, nil
}

// selectAll is "SELECT <every column, in table order> FROM <table>".
func selectAll(t *Table) string {
	cols := make([]string, len(t.Columns))
	for i, c := range t.Columns {
		cols[i] = QuoteIdent(c.Name)
	}
	return "SELECT " + strings.Join(cols, ", ") + " FROM " + t.Ident()
}

func pkList(t *Table) string {
	names := make([]string, len(t.PK))
	for i, idx := range t.PK {
		names[i] = QuoteIdent(t.Columns[idx].Name)
	}
	return strings.Join(names, ", ")
}

func pkLiterals(t *Table, vals []string) string {
	out := make([]string, len(vals))
	for i, v := range vals {
		out[i] = quoteLiteral(v) + "::" + t.Columns[t.PK[i]].Type
	}
	return strings.Join(out, ", ")
}

func quoteLiteral(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}

// ReadByKey reads the current row with the primary key of key (a row whose
// key columns are set) and the WAL position read first in the same snapshot.
func ReadByKey(ctx context.Context, conn *pgx.Conn, t *Table, key Row) (Row, LSN, bool, error) {
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, 0, false, fmt.Errorf("read %s by key: %w", t.QualifiedName(), err)
	}
	defer tx.Rollback(context.Background())
	lsn, err := CurrentWALLSN(ctx, tx)
	if err != nil {
		return nil, 0, false, err
	}
	vals := make([]string, len(t.PK))
	for i, idx := range t.PK {
		vals[i] = key[idx].Text
	}
	cols := make([]string, len(t.Columns))
	for i, c := range t.Columns {
		cols[i] = QuoteIdent(c.Name)
	}
	sql := "COPY (SELECT " + strings.Join(cols, ", ") + " FROM " + t.Ident() + " WHERE (" + pkList(t) + ") = (" + pkLiterals(t, vals) + ")) TO STDOUT"
	var found Row
	w := newCopyRowWriter(len(t.Columns), func(r Row) error { found = r; return nil })
	if _, err := conn.PgConn().CopyTo(ctx, w, sql); err != nil {
		return nil, 0, false, fmt.Errorf("read %s by key: %w", t.QualifiedName(), err)
	}
	return found, lsn, found != nil, nil
}
