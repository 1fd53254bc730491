package extract

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
)

// ReadRowByKey reads the row of t whose primary key columns have the given text
// values (in key order), with every column in table order and in the text form
// COPY and pgoutput deliver (the output functions under ferry's session
// settings). found is false when no such row exists. It runs one statement, so
// it sees the statement's snapshot (or the transaction's, inside one).
func ReadRowByKey(ctx context.Context, q Querier, t *Table, key []string) (row Row, found bool, err error) {
	if len(t.PK) == 0 || len(key) != len(t.PK) {
		return nil, false, fmt.Errorf("read %s by key: want %d key values, have %d", t.QualifiedName(), len(t.PK), len(key))
	}
	cols := make([]string, len(t.Columns))
	for i, c := range t.Columns {
		cols[i] = QuoteIdent(c.Name)
	}
	sql := "SELECT " + strings.Join(cols, ", ") + " FROM " + t.Ident() + " WHERE (" + pkList(t) + ") = (" + pkLiterals(t, key) + ")"
	rows, err := q.Query(ctx, sql, pgx.QueryResultFormats{pgx.TextFormatCode})
	if err != nil {
		return nil, false, fmt.Errorf("read %s by key: %w", t.QualifiedName(), err)
	}
	defer rows.Close()
	for rows.Next() {
		raw := rows.RawValues()
		row = make(Row, len(raw))
		for i, v := range raw {
			if v == nil {
				row[i] = Value{Null: true}
			} else {
				row[i] = Value{Text: string(v)}
			}
		}
		found = true
	}
	if err := rows.Err(); err != nil {
		return nil, false, fmt.Errorf("read %s by key: %w", t.QualifiedName(), err)
	}
	return row, found, nil
}

// ExportSnapshot exports the transaction's snapshot (for OpenSnapshotConn on
// other connections) and returns its name, pg_current_wal_insert_lsn() and
// pg_current_snapshot() read in the same statement. Called as the
// transaction's first statement, that statement takes the snapshot: every
// transaction the snapshot sees committed before the returned LSN, and the
// returned TxSnapshot says exactly which ones it sees.
func (c *SnapshotConn) ExportSnapshot(ctx context.Context) (name string, lsn LSN, snap TxSnapshot, err error) {
	var s, xs string
	if err := c.conn.QueryRow(ctx, "SELECT pg_export_snapshot(), pg_current_wal_insert_lsn()::text, pg_current_snapshot()::text").Scan(&name, &s, &xs); err != nil {
		return "", 0, TxSnapshot{}, fmt.Errorf("export snapshot: %w", err)
	}
	if lsn, err = ParseLSN(s); err != nil {
		return "", 0, TxSnapshot{}, fmt.Errorf("export snapshot: %w", err)
	}
	if snap, err = ParseTxSnapshot(xs); err != nil {
		return "", 0, TxSnapshot{}, fmt.Errorf("export snapshot: %w", err)
	}
	return name, lsn, snap, nil
}
