package extract

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// ResolveRelation completes the table of a RelationChange from the
// catalogue: the declared type and kind of every column whose type the
// message announced by OID only, and NOT NULL and attnum from the current
// definition. The column list and order stay the message's (the rows that
// follow are aligned with it), so a catalogue that has already moved on (a
// later DDL) changes nothing but those details.
//
// renames maps a column of the old table that the message lacks to the
// column the message added at the same attnum: pgoutput names columns only,
// so a rename is told from a drop and an add by the attribute number, which
// a rename keeps and ADD COLUMN never reuses.
//
// old is the table as sync applied it so far (resolved: its attnums known);
// the change's own Old may be a definition announced earlier and not
// resolved.
func ResolveRelation(ctx context.Context, q Querier, old *Table, rc *RelationChange) (t *Table, renames map[string]string, err error) {
	// One table's catalogue rows, not the whole catalogue: sync's apply loop
	// waits for this at every schema change.
	cur, _, err := LoadTable(ctx, q, rc.New.Schema, rc.New.Name) // nil: dropped or renamed since
	if err != nil {
		return nil, nil, err
	}
	var announced []uint32 // the types the message names by OID only
	for _, c := range rc.New.Columns {
		if c.Generated == "" && c.Type == "" {
			announced = append(announced, c.TypeOID)
		}
	}
	types, err := loadTypesOf(ctx, q, announced)
	if err != nil {
		return nil, nil, err
	}
	nt := *rc.New
	nt.Columns = append([]Column(nil), rc.New.Columns...)
	for i := range nt.Columns {
		c := &nt.Columns[i]
		if c.Generated != "" {
			if cur != nil {
				if j := cur.ColumnIndex(c.Name); j >= 0 && cur.Columns[j].Generated != "" {
					cc := cur.Columns[j]
					c.Generated, c.Type, c.Kind, c.Array, c.TypeOID, c.TypeMod = cc.Generated, cc.Type, cc.Kind, cc.Array, cc.TypeOID, cc.TypeMod
				}
			}
			continue
		}
		if c.Type == "" {
			if c.Type, err = formatType(ctx, q, c.TypeOID, c.TypeMod); err != nil {
				return nil, nil, err
			}
			c.Kind, c.Array = resolveKind(types, c.TypeOID)
		}
		if cur != nil {
			if j := cur.ColumnIndex(c.Name); j >= 0 {
				c.NotNull, c.Position = cur.Columns[j].NotNull, cur.Columns[j].Position
			}
		}
	}
	renames = map[string]string{}
	if cur != nil {
		for _, o := range old.Columns {
			if o.Generated != "" || o.Position == 0 || nt.ColumnIndex(o.Name) >= 0 {
				continue
			}
			for _, cc := range cur.Columns {
				if cc.Position == o.Position && cc.Name != o.Name && old.ColumnIndex(cc.Name) < 0 && nt.ColumnIndex(cc.Name) >= 0 {
					renames[o.Name] = cc.Name
				}
			}
		}
	}
	return &nt, renames, nil
}

// formatType is format_type(oid, typmod): the type as a column declaration
// names it.
func formatType(ctx context.Context, q Querier, oid uint32, typmod int32) (string, error) {
	rows, err := q.Query(ctx, "SELECT format_type($1::oid, $2::int4)", oid, typmod)
	if err != nil {
		return "", fmt.Errorf("type %d: %w", oid, err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil || len(names) != 1 {
		return "", fmt.Errorf("type %d: %v", oid, err)
	}
	return names[0], nil
}
