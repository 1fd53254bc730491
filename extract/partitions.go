package extract

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
)

// Partition is a leaf partition of a partitioned table.
type Partition struct {
	OID  uint32 `json:"oid"`
	Name string `json:"name"` // schema.name
	// FileNode is pg_class.relfilenode: TRUNCATE gives the partition a new
	// one (so do rewrites: ALTER COLUMN TYPE, VACUUM FULL, CLUSTER).
	FileNode uint32 `json:"filenode"`
}

// Partitions is a partitioned table's leaf partitions by OID.
type Partitions map[uint32]Partition

// LeafPartitions returns the leaf partitions of the table (its quoted name,
// Table.Ident), or nil when the table is not partitioned (or no longer
// exists).
//
// pgoutput publishes a partitioned table's changes through its root (ferry's
// publication sets publish_via_partition_root), but not what changes the set
// of its rows without a row change: DETACH PARTITION, DROP of a partition,
// TRUNCATE of one partition, ATTACH PARTITION of a filled table. Sync
// compares this set, polled, with the last one it saw.
func LeafPartitions(ctx context.Context, q Querier, ident string) (Partitions, error) {
	table := ident
	rows, err := q.Query(ctx, `
		SELECT c.oid, n.nspname || '.' || c.relname, c.relfilenode
		FROM pg_class r
		CROSS JOIN LATERAL pg_partition_tree(r.oid) t
		JOIN pg_class c ON c.oid = t.relid
		JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE r.oid = to_regclass($1) AND r.relkind = 'p' AND t.isleaf`, ident)
	if err != nil {
		return nil, fmt.Errorf("partitions of %s: %w", table, err)
	}
	parts, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Partition, error) {
		var p Partition
		err := r.Scan(&p.OID, &p.Name, &p.FileNode)
		return p, err
	})
	if err != nil {
		return nil, fmt.Errorf("partitions of %s: %w", table, err)
	}
	if len(parts) == 0 {
		return nil, nil
	}
	out := Partitions{}
	for _, p := range parts {
		out[p.OID] = p
	}
	return out, nil
}

// PartitionChanges is what differs between two sets of a table's partitions.
type PartitionChanges struct {
	Gone      []Partition // detached or dropped
	Rewritten []Partition // a new relfilenode: truncated, or rewritten
	Added     []Partition // created or attached
}

// Empty reports whether nothing changed.
func (c PartitionChanges) Empty() bool {
	return len(c.Gone)+len(c.Rewritten)+len(c.Added) == 0
}

// ComparePartitions returns what changed from old to cur (by OID: a renamed
// partition is the same partition).
func ComparePartitions(old, cur Partitions) PartitionChanges {
	var c PartitionChanges
	for oid, p := range old {
		n, ok := cur[oid]
		switch {
		case !ok:
			c.Gone = append(c.Gone, p)
		case n.FileNode != p.FileNode:
			c.Rewritten = append(c.Rewritten, n)
		}
	}
	for oid, p := range cur {
		if _, ok := old[oid]; !ok {
			c.Added = append(c.Added, p)
		}
	}
	for _, l := range [][]Partition{c.Gone, c.Rewritten, c.Added} {
		slices.SortFunc(l, func(a, b Partition) int { return cmp.Compare(a.Name, b.Name) })
	}
	return c
}

// HasRows reports whether the partition (by OID) holds a row.
func HasRows(ctx context.Context, q Querier, oid uint32) (bool, error) {
	var name string
	rows, err := q.Query(ctx, "SELECT $1::oid::regclass::text", oid)
	if err != nil {
		return false, fmt.Errorf("partition %d: %w", oid, err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil || len(names) != 1 {
		return false, fmt.Errorf("partition %d: %v", oid, err)
	}
	name = names[0]
	rows, err = q.Query(ctx, "SELECT EXISTS (SELECT 1 FROM ONLY "+name+")")
	if err != nil {
		return false, fmt.Errorf("rows of %s: %w", name, err)
	}
	has, err := pgx.CollectRows(rows, pgx.RowTo[bool])
	if err != nil || len(has) != 1 {
		return false, fmt.Errorf("rows of %s: %v", name, err)
	}
	return has[0], nil
}

// MissingKeys returns those of the primary keys (text values) that no row
// of the table has now, in the form PostgreSQL prints them (see
// CanonicalKeys). It asks in batches of 500 keys.
func MissingKeys(ctx context.Context, q Querier, t *Table, keys [][]string) ([][]string, error) {
	const batch = 500
	var missing [][]string
	cols := make([]string, len(t.PK))
	match := make([]string, len(t.PK))
	for i, idx := range t.PK {
		cols[i] = "k" + strconv.Itoa(i)
		match[i] = "r." + QuoteIdent(t.Columns[idx].Name) + " = v." + cols[i]
	}
	for start := 0; start < len(keys); start += batch {
		part := keys[start:min(start+batch, len(keys))]
		tuples := make([]string, len(part))
		for i, key := range part {
			if len(key) != len(t.PK) {
				return nil, fmt.Errorf("primary key of %s: %d values, the key has %d columns", t.QualifiedName(), len(key), len(t.PK))
			}
			tuples[i] = "(" + strconv.Itoa(start+i) + ", " + pkLiterals(t, key) + ")"
		}
		sql := "SELECT v.i FROM (VALUES " + strings.Join(tuples, ", ") + ") AS v(i, " + strings.Join(cols, ", ") +
			") WHERE NOT EXISTS (SELECT 1 FROM " + t.Ident() + " r WHERE " + strings.Join(match, " AND ") + ") ORDER BY v.i"
		rows, err := q.Query(ctx, sql)
		if err != nil {
			return nil, fmt.Errorf("primary keys of %s: %w", t.QualifiedName(), err)
		}
		idx, err := pgx.CollectRows(rows, pgx.RowTo[int32])
		if err != nil {
			return nil, fmt.Errorf("primary keys of %s: %w", t.QualifiedName(), err)
		}
		for _, i := range idx {
			missing = append(missing, keys[i])
		}
	}
	if len(missing) == 0 {
		return nil, nil
	}
	return CanonicalKeys(ctx, q, t, missing)
}
