package extract

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
)

// WatermarkPrefix is the logical decoding message prefix of the high
// watermarks that close an online snapshot's chunk reads (see ReadKeyChunk).
const WatermarkPrefix = "ferry_snapshot"

// EmitWatermark writes a non-transactional logical decoding message with the
// given content and returns its WAL position. A non-transactional message is
// decoded at its own position, between the transactions that committed before
// it and those that commit after: exactly the point in the change stream
// where it was written. It needs no table in the user's schema.
func EmitWatermark(ctx context.Context, q Querier, content string) (LSN, error) {
	rows, err := q.Query(ctx, "SELECT pg_logical_emit_message(false, $1, $2)::text", WatermarkPrefix, content)
	if err != nil {
		return 0, fmt.Errorf("emit watermark: %w", err)
	}
	defer rows.Close()
	var text string
	for rows.Next() {
		if err := rows.Scan(&text); err != nil {
			return 0, fmt.Errorf("emit watermark: %w", err)
		}
	}
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("emit watermark: %w", err)
	}
	return ParseLSN(text)
}

// KeyChunk selects the rows of one chunk of an online snapshot: rows of the
// table after the primary key After (from From, inclusive, when After is nil;
// from the start when both are nil) and below Before (when set), in primary
// key order, at most Limit; or, when Keys is set, exactly the rows with those
// primary keys. Where, when set, is a SQL condition the rows must also meet
// (written by the operator; ferry adds no quoting).
type KeyChunk struct {
	After  []string   // primary key values (text), exclusive lower bound
	From   []string   // inclusive lower bound, used when After is nil
	Before []string   // exclusive upper bound (nil: none)
	Keys   [][]string // primary key values (text) of the rows to read
	Where  string
	Limit  int
}

// Query returns the chunk's SELECT.
func (k KeyChunk) Query(t *Table) string {
	sql := selectAll(t)
	var conds []string
	switch {
	case k.After != nil:
		conds = append(conds, "("+pkList(t)+") > ("+pkLiterals(t, k.After)+")")
	case k.From != nil:
		conds = append(conds, "("+pkList(t)+") >= ("+pkLiterals(t, k.From)+")")
	}
	if k.Before != nil {
		conds = append(conds, "("+pkList(t)+") < ("+pkLiterals(t, k.Before)+")")
	}
	if k.Keys != nil {
		lits := make([]string, len(k.Keys))
		for i, key := range k.Keys {
			lits[i] = "(" + pkLiterals(t, key) + ")"
		}
		conds = append(conds, "("+pkList(t)+") IN ("+strings.Join(lits, ", ")+")")
	}
	if k.Where != "" {
		conds = append(conds, "("+k.Where+")")
	}
	if len(conds) > 0 {
		sql += " WHERE " + strings.Join(conds, " AND ")
	}
	sql += " ORDER BY " + pkList(t)
	if k.Limit > 0 && k.Keys == nil {
		sql += fmt.Sprintf(" LIMIT %d", k.Limit)
	}
	return sql
}

// ReadKeyChunk reads a chunk in one REPEATABLE READ transaction and returns
// its rows (in the text form COPY delivers) with the transaction's snapshot
// (pg_current_snapshot(), taken by the transaction's first statement, so it
// is the snapshot the rows were read in): exactly which transactions the rows
// reflect.
func ReadKeyChunk(ctx context.Context, conn *pgx.Conn, t *Table, k KeyChunk) ([]Row, TxSnapshot, error) {
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, TxSnapshot{}, fmt.Errorf("read chunk of %s: %w", t.QualifiedName(), err)
	}
	defer tx.Rollback(context.Background())
	var xs string
	if err := tx.QueryRow(ctx, "SELECT pg_current_snapshot()::text").Scan(&xs); err != nil {
		return nil, TxSnapshot{}, fmt.Errorf("read chunk of %s: %w", t.QualifiedName(), err)
	}
	snap, err := ParseTxSnapshot(xs)
	if err != nil {
		return nil, TxSnapshot{}, err
	}
	var rows []Row
	w := newCopyRowWriter(len(t.Columns), func(r Row) error {
		rows = append(rows, r)
		return nil
	})
	if _, err := conn.PgConn().CopyTo(ctx, w, "COPY ("+k.Query(t)+") TO STDOUT"); err != nil {
		return nil, TxSnapshot{}, fmt.Errorf("read chunk of %s: %w", t.QualifiedName(), err)
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, TxSnapshot{}, fmt.Errorf("read chunk of %s: %w", t.QualifiedName(), err)
	}
	return rows, snap, nil
}

// CanonicalKeys returns the primary keys as PostgreSQL prints their values
// (an integer key given as "007" is "7"), the form rows are read in: an
// online snapshot compares the keys it was asked for with the rows it found
// by that text, and deletes the items of keys it did not find.
func CanonicalKeys(ctx context.Context, q Querier, t *Table, keys [][]string) ([][]string, error) {
	const batch = 1000
	out := make([][]string, 0, len(keys))
	for start := 0; start < len(keys); start += batch {
		part := keys[start:min(start+batch, len(keys))]
		tuples := make([]string, len(part))
		for i, key := range part {
			cols := make([]string, len(key))
			for j, v := range key {
				cols[j] = "(" + quoteLiteral(v) + "::" + t.Columns[t.PK[j]].Type + ")::text"
			}
			tuples[i] = "(" + strings.Join(cols, ", ") + ")"
		}
		rows, err := q.Query(ctx, "VALUES "+strings.Join(tuples, ", "))
		if err != nil {
			return nil, fmt.Errorf("primary keys of %s: %w", t.QualifiedName(), err)
		}
		for rows.Next() {
			vals, err := rows.Values()
			if err != nil {
				rows.Close()
				return nil, fmt.Errorf("primary keys of %s: %w", t.QualifiedName(), err)
			}
			key := make([]string, len(vals))
			for j, v := range vals {
				s, ok := v.(string)
				if !ok {
					rows.Close()
					return nil, fmt.Errorf("primary keys of %s: NULL in a key", t.QualifiedName())
				}
				key[j] = s
			}
			out = append(out, key)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("primary keys of %s: %w", t.QualifiedName(), err)
		}
	}
	return out, nil
}
