package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/ferry-migrate/ferry/transform"
)

// printPublication prints the publication's line of `ferry status`: whether it
// exists, how many tables it publishes, and the mapped tables it lacks (a
// table mapped after the backfill created the publication: the next sync
// start adds it and snapshots it online). pg_publication_tables resolves FOR ALL TABLES, FOR
// TABLES IN SCHEMA and publish_via_partition_root as pgoutput does.
func printPublication(ctx context.Context, conn *pgx.Conn, w io.Writer, name string, plan *transform.Plan) error {
	var allTables, viaRoot bool
	err := conn.QueryRow(ctx, "SELECT puballtables, pubviaroot FROM pg_publication WHERE pubname = $1", name).Scan(&allTables, &viaRoot)
	if errors.Is(err, pgx.ErrNoRows) {
		fmt.Fprintf(w, "publication %s: does not exist (backfill creates it)\n", name)
		return nil
	}
	if err != nil {
		return fmt.Errorf("look up publication %s: %w", name, err)
	}
	rows, err := conn.Query(ctx, "SELECT schemaname || '.' || tablename FROM pg_publication_tables WHERE pubname = $1", name)
	if err != nil {
		return fmt.Errorf("tables of publication %s: %w", name, err)
	}
	published, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("tables of publication %s: %w", name, err)
	}
	have := make(map[string]bool, len(published))
	for _, qn := range published {
		have[qn] = true
	}
	var missing []string
	for _, tp := range plan.Tables {
		if qn := tp.Source.QualifiedName(); !have[qn] {
			missing = append(missing, qn)
		}
	}
	var notes []string
	if allTables {
		notes = append(notes, "FOR ALL TABLES")
	}
	if !viaRoot {
		notes = append(notes, "publish_via_partition_root off")
	}
	if len(missing) > 0 {
		notes = append(notes, "missing: "+strings.Join(missing, ", ")+"; the next sync start adds them and snapshots them online")
	}
	line := fmt.Sprintf("publication %s: %d tables", name, len(published))
	if len(notes) > 0 {
		line += " (" + strings.Join(notes, "; ") + ")"
	}
	fmt.Fprintln(w, line)
	return nil
}
