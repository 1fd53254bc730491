package extract

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
)

// EnsurePublication creates the publication for the tables (publishing
// partitioned tables through their root, so rows of every partition, including
// ones created later, arrive under the root's name), or brings an existing one
// up to date: missing tables added, publish_via_partition_root switched on.
// It must run before the slot is created: pgoutput looks publications up in the
// catalogue as of each change.
func EnsurePublication(ctx context.Context, conn *pgx.Conn, name string, tables []*Table) error {
	var viaRoot, allTables bool
	err := conn.QueryRow(ctx, "SELECT pubviaroot, puballtables FROM pg_publication WHERE pubname = $1", name).Scan(&viaRoot, &allTables)
	if errors.Is(err, pgx.ErrNoRows) {
		idents := make([]string, len(tables))
		for i, t := range tables {
			idents[i] = t.Ident()
		}
		sql := fmt.Sprintf("CREATE PUBLICATION %s FOR TABLE %s WITH (publish_via_partition_root = true)", QuoteIdent(name), strings.Join(idents, ", "))
		if _, err := conn.Exec(ctx, sql); err != nil {
			return fmt.Errorf("create publication %s: %w", name, err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("look up publication %s: %w", name, err)
	}
	if !viaRoot {
		if _, err := conn.Exec(ctx, "ALTER PUBLICATION "+QuoteIdent(name)+" SET (publish_via_partition_root = true)"); err != nil {
			return fmt.Errorf("publication %s: set publish_via_partition_root: %w", name, err)
		}
	}
	if allTables {
		return nil
	}
	rows, err := conn.Query(ctx, `SELECT n.nspname || '.' || c.relname FROM pg_publication_rel pr
JOIN pg_publication p ON p.oid = pr.prpubid JOIN pg_class c ON c.oid = pr.prrelid JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE p.pubname = $1`, name)
	if err != nil {
		return fmt.Errorf("tables of publication %s: %w", name, err)
	}
	have := map[string]bool{}
	for rows.Next() {
		var qn string
		if err := rows.Scan(&qn); err != nil {
			rows.Close()
			return fmt.Errorf("tables of publication %s: %w", name, err)
		}
		have[qn] = true
	}
	rows.Close()
	for _, t := range tables {
		if have[t.QualifiedName()] {
			continue
		}
		if _, err := conn.Exec(ctx, "ALTER PUBLICATION "+QuoteIdent(name)+" ADD TABLE "+t.Ident()); err != nil {
			return fmt.Errorf("publication %s: add table %s: %w", name, t.QualifiedName(), err)
		}
	}
	return nil
}

// PublishedTables returns the qualified names of the tables the publication
// publishes as pgoutput resolves them (pg_publication_tables: FOR ALL TABLES,
// TABLES IN SCHEMA and partition roots included); exists is false when there
// is no such publication.
func PublishedTables(ctx context.Context, conn *pgx.Conn, name string) (tables map[string]bool, exists bool, err error) {
	var one int
	err = conn.QueryRow(ctx, "SELECT 1 FROM pg_publication WHERE pubname = $1", name).Scan(&one)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("look up publication %s: %w", name, err)
	}
	rows, err := conn.Query(ctx, "SELECT schemaname || '.' || tablename FROM pg_publication_tables WHERE pubname = $1", name)
	if err != nil {
		return nil, true, fmt.Errorf("tables of publication %s: %w", name, err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, true, fmt.Errorf("tables of publication %s: %w", name, err)
	}
	tables = make(map[string]bool, len(names))
	for _, n := range names {
		tables[n] = true
	}
	return tables, true, nil
}

// CurrentXmax returns the xmax of a new snapshot: every transaction that had
// started when it was taken has an id below it, so once a later snapshot's
// xmin reaches it, all of them have ended.
func CurrentXmax(ctx context.Context, q Querier) (uint64, error) {
	rows, err := q.Query(ctx, "SELECT pg_snapshot_xmax(pg_current_snapshot())::text")
	if err != nil {
		return 0, fmt.Errorf("current snapshot xmax: %w", err)
	}
	texts, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return 0, fmt.Errorf("current snapshot xmax: %w", err)
	}
	if len(texts) != 1 {
		return 0, fmt.Errorf("current snapshot xmax: %d rows", len(texts))
	}
	var x uint64
	if _, err := fmt.Sscan(texts[0], &x); err != nil {
		return 0, fmt.Errorf("current snapshot xmax %q: %w", texts[0], err)
	}
	return x, nil
}

// DropPublication removes the publication if it exists.
func DropPublication(ctx context.Context, conn *pgx.Conn, name string) error {
	if _, err := conn.Exec(ctx, "DROP PUBLICATION IF EXISTS "+QuoteIdent(name)); err != nil {
		return fmt.Errorf("drop publication %s: %w", name, err)
	}
	return nil
}

// EmitHeartbeat writes a non-transactional logical decoding message, so that a
// slot on an otherwise idle database (or one busy only in other databases)
// sees WAL of its own and can be acknowledged forward.
func EmitHeartbeat(ctx context.Context, conn *pgx.Conn) error {
	if _, err := conn.Exec(ctx, "SELECT pg_logical_emit_message(false, 'ferry_heartbeat', now()::text)"); err != nil {
		return fmt.Errorf("emit heartbeat: %w", err)
	}
	return nil
}

// CurrentWALLSN returns pg_current_wal_lsn(), the WAL write position: a lower
// bound of the commits that happen after the call (see CurrentWALInsertLSN for
// an upper bound of those before it).
func CurrentWALLSN(ctx context.Context, q Querier) (LSN, error) {
	return walPosition(ctx, q, "pg_current_wal_lsn")
}

// CurrentWALInsertLSN returns pg_current_wal_insert_lsn(): an upper bound of
// the commit records of every transaction visible to a snapshot taken before
// the call. pg_current_wal_lsn() (the write position) is not: with
// synchronous_commit off a transaction is visible before its commit record is
// written, so a wait for "applied past the write position" can end before a
// visible commit is applied.
func CurrentWALInsertLSN(ctx context.Context, q Querier) (LSN, error) {
	return walPosition(ctx, q, "pg_current_wal_insert_lsn")
}

// walPosition calls one of PostgreSQL's WAL position functions (a constant).
func walPosition(ctx context.Context, q Querier, fn string) (LSN, error) {
	rows, err := q.Query(ctx, "SELECT "+fn+"()::text")
	if err != nil {
		return 0, fmt.Errorf("current WAL position (%s): %w", fn, err)
	}
	defer rows.Close()
	var s string
	for rows.Next() {
		if err := rows.Scan(&s); err != nil {
			return 0, fmt.Errorf("current WAL position (%s): %w", fn, err)
		}
	}
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("current WAL position (%s): %w", fn, err)
	}
	return ParseLSN(s)
}
