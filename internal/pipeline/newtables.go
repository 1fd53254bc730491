package pipeline

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/ferry-migrate/ferry/extract"
	"github.com/ferry-migrate/ferry/transform"
)

// TablesCreatedError ends a sync whose mapping has pattern entries when
// tables they map have been created: sync stops cleanly (everything applied
// and checkpointed) so that the caller compiles the plan again with them and
// starts sync again, which adds them to the publication and snapshots them
// online (as for tables added to the mapping).
type TablesCreatedError struct {
	Tables []string
}

func (e *TablesCreatedError) Error() string {
	return "tables created that the mapping's patterns map: " + strings.Join(e.Tables, ", ")
}

// checkNewTables looks for tables a pattern entry maps that the plan lacks.
// A matching table without a primary key cannot be migrated: it is named in
// a warning (once).
func (s *syncer) checkNewTables(ctx context.Context, conn *pgx.Conn) error {
	m := s.cfg.Plan.Mapping
	if !m.HasPatterns() {
		return nil
	}
	rows, err := conn.Query(ctx, `
		SELECT n.nspname || '.' || c.relname,
		       EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary)
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
		  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\_%'
		ORDER BY 1`)
	if err != nil {
		return fmt.Errorf("list tables: %w", err)
	}
	type tbl struct {
		name  string
		hasPK bool
	}
	all, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (tbl, error) {
		var t tbl
		err := r.Scan(&t.name, &t.hasPK)
		return t, err
	})
	if err != nil {
		return fmt.Errorf("list tables: %w", err)
	}
	plans := s.planSnapshot()
	var created []string
	for _, t := range all {
		if _, ok := plans[t.name]; ok || m.PatternFor(t.name) == nil {
			continue
		}
		if !t.hasPK {
			if !s.noKeyWarned[t.name] {
				s.log.Warn("a table matches a pattern entry of the mapping but has no primary key: not migrated", "table", t.name)
				s.noKeyWarned[t.name] = true
			}
			continue
		}
		created = append(created, t.name)
	}
	if len(created) > 0 {
		// Only tables the pattern can map: one that does not compile (a
		// column named like ferry's attributes, a conversion that does not
		// fit) would stop every start; it is named in a warning instead.
		defs, err := extract.LoadTables(ctx, conn)
		if err != nil {
			return err
		}
		ok := created[:0]
		for _, name := range created {
			def := defs[name]
			var cerr error
			if def == nil {
				cerr = fmt.Errorf("not in the catalogue any more")
			} else if mt, err := m.PatternFor(name).Instance(name, def.PKNames()); err != nil {
				cerr = err
			} else if _, err := transform.CompileTable(mt, defs); err != nil {
				cerr = err
			}
			if cerr != nil {
				if !s.noKeyWarned[name] {
					s.log.Warn("a table matches a pattern entry of the mapping but cannot be mapped: not migrated", "table", name, "err", cerr)
					s.noKeyWarned[name] = true
				}
				continue
			}
			ok = append(ok, name)
		}
		created = ok
	}
	if len(created) > 0 {
		s.log.Info("tables created that the mapping's patterns map: sync stops to add them, and starts again", "tables", created)
		return &TablesCreatedError{Tables: created}
	}
	return nil
}
