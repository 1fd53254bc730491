package extract

import (
	"context"
	"fmt"
	"sort"

	"github.com/jackc/pgx/v5"
)

// Querier is what the catalogue reader needs from a connection (a *pgx.Conn or a
// pool); it is called sequentially.
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

type pgType struct {
	oid      uint32
	schema   string
	name     string
	typtype  byte
	baseType uint32
	elem     uint32
	category byte
}

// LoadTables reads every ordinary and partitioned (root) table outside the system
// schemas, with columns resolved to kinds (domains to their base type), primary
// keys, replica identity and row estimates. Partitions are folded into their root.
func LoadTables(ctx context.Context, q Querier) (map[string]*Table, error) {
	return loadTables(ctx, q, nil)
}

// LoadTable reads one table (schema and name as the catalogue spells them)
// as LoadTables reads it, from that table's catalogue rows and the types its
// columns use only: a schema change sync follows costs the same on a
// database of ten tables as on one of ten thousand. found is false when no
// such table exists (dropped or renamed since, or a partition, which
// LoadTables folds into its root).
func LoadTable(ctx context.Context, q Querier, schema, name string) (t *Table, found bool, err error) {
	tables, err := loadTables(ctx, q, &relName{schema, name})
	if err != nil {
		return nil, false, err
	}
	t = tables[(&Table{Schema: schema, Name: name}).QualifiedName()]
	return t, t != nil, nil
}

// relName restricts a catalogue read to one table.
type relName struct{ schema, name string }

// loadTables reads the tables LoadTables describes, or only the one named.
func loadTables(ctx context.Context, q Querier, only *relName) (map[string]*Table, error) {
	sql := `
SELECT c.oid, n.nspname, c.relname, c.relkind = 'p', c.relreplident,
       CASE WHEN c.relkind = 'p' THEN
            coalesce((SELECT sum(greatest(p.reltuples, 0))::bigint FROM pg_inherits i JOIN pg_class p ON p.oid = i.inhrelid WHERE i.inhparent = c.oid), 0)
       ELSE c.reltuples::bigint END
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_'`
	var args []any
	if only != nil {
		sql += ` AND n.nspname = $1 AND c.relname = $2`
		args = []any{only.schema, only.name}
	}
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("read tables: %w", err)
	}
	byOID := map[uint32]*Table{}
	out := map[string]*Table{}
	for rows.Next() {
		var oid uint32
		var ident string
		t := &Table{}
		if err := rows.Scan(&oid, &t.Schema, &t.Name, &t.Partitioned, &ident, &t.EstimatedRows); err != nil {
			rows.Close()
			return nil, fmt.Errorf("read tables: %w", err)
		}
		if ident != "" {
			t.ReplicaIdentity = ident[0]
		}
		byOID[oid] = t
		out[t.QualifiedName()] = t
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read tables: %w", err)
	}
	var rel uint32 // 0: every table's rows; else the one table's
	if only != nil {
		if len(byOID) == 0 {
			return out, nil
		}
		for oid := range byOID {
			rel = oid
		}
	}
	if err := loadColumns(ctx, q, byOID, rel); err != nil {
		return nil, err
	}
	var types map[uint32]pgType
	if only == nil {
		types, err = loadTypes(ctx, q)
	} else {
		var used []uint32
		for _, t := range byOID {
			for _, c := range t.Columns {
				used = append(used, c.TypeOID)
			}
		}
		types, err = loadTypesOf(ctx, q, used)
	}
	if err != nil {
		return nil, err
	}
	for _, t := range byOID {
		for i := range t.Columns {
			c := &t.Columns[i]
			c.Kind, c.Array = resolveKind(types, c.TypeOID)
		}
	}
	if err := loadPrimaryKeys(ctx, q, byOID, rel); err != nil {
		return nil, err
	}
	return out, nil
}

// typeColumns are the pg_type columns resolveKind reads.
const typeColumns = `SELECT t.oid, n.nspname, t.typname, t.typtype, t.typbasetype, t.typelem, t.typcategory
FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace`

// loadTypes reads every type.
func loadTypes(ctx context.Context, q Querier) (map[uint32]pgType, error) {
	return scanTypes(q.Query(ctx, typeColumns))
}

// loadTypesOf reads the types oids name and every type they lead to (a
// domain's base type, an array's element), which is all resolveKind follows.
func loadTypesOf(ctx context.Context, q Querier, oids []uint32) (map[uint32]pgType, error) {
	if len(oids) == 0 {
		return map[uint32]pgType{}, nil
	}
	ids := make([]int64, len(oids)) // int8[]: every driver encodes it; cast to oid in SQL
	for i, o := range oids {
		ids[i] = int64(o)
	}
	return scanTypes(q.Query(ctx, `WITH RECURSIVE need(oid) AS (
    SELECT unnest($1::int8[])::oid
  UNION
    SELECT x.oid FROM pg_type p JOIN need ON p.oid = need.oid
    CROSS JOIN LATERAL (VALUES (p.typbasetype), (p.typelem)) AS x(oid) WHERE x.oid <> 0
)
`+typeColumns+`
WHERE t.oid IN (SELECT oid FROM need)`, ids))
}

func scanTypes(rows pgx.Rows, err error) (map[uint32]pgType, error) {
	if err != nil {
		return nil, fmt.Errorf("read types: %w", err)
	}
	defer rows.Close()
	out := map[uint32]pgType{}
	for rows.Next() {
		var t pgType
		var typtype, category string
		if err := rows.Scan(&t.oid, &t.schema, &t.name, &typtype, &t.baseType, &t.elem, &category); err != nil {
			return nil, fmt.Errorf("read types: %w", err)
		}
		t.typtype, t.category = typtype[0], category[0]
		out[t.oid] = t
	}
	return out, rows.Err()
}

// loadColumns reads the columns of the tables in byOID (of rel only, when
// not 0), their kinds left to resolve.
func loadColumns(ctx context.Context, q Querier, byOID map[uint32]*Table, rel uint32) error {
	// A filter of its own, not "$1 = 0 OR …": the planner uses the
	// catalogue's index on attrelid only for a plain condition.
	filter, args := "", []any(nil)
	if rel != 0 {
		filter, args = "\n  AND a.attrelid = $1::oid", []any{rel}
	}
	rows, err := q.Query(ctx, `SELECT a.attrelid, a.attname, a.attnum, a.attnotnull, a.atttypid, a.atttypmod, format_type(a.atttypid, a.atttypmod),
       coalesce(CASE WHEN a.attgenerated = 's' THEN pg_get_expr(d.adbin, d.adrelid) END, ''),
       coalesce(CASE WHEN a.attgenerated = 's' THEN (SELECT array_to_string(array_agg(dep.refobjsubid ORDER BY dep.refobjsubid), ' ')
            FROM pg_depend dep WHERE dep.classid = 'pg_attrdef'::regclass AND dep.objid = d.oid
             AND dep.refclassid = 'pg_class'::regclass AND dep.refobjid = a.attrelid AND dep.refobjsubid > 0 AND dep.refobjsubid <> a.attnum) END, '')
FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped`+filter+`
ORDER BY a.attrelid, a.attnum`, args...)
	if err != nil {
		return fmt.Errorf("read columns: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var rel, typ uint32
		var c Column
		var pos int16
		var deps string
		if err := rows.Scan(&rel, &c.Name, &pos, &c.NotNull, &typ, &c.TypeMod, &c.Type, &c.Generated, &deps); err != nil {
			return fmt.Errorf("read columns: %w", err)
		}
		t := byOID[rel]
		if t == nil {
			continue
		}
		c.Position, c.TypeOID = int(pos), typ
		for _, f := range splitFields(deps) {
			var n int
			fmt.Sscan(f, &n)
			c.generatedFrom = append(c.generatedFrom, n)
		}
		t.Columns = append(t.Columns, c)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read columns: %w", err)
	}
	for _, t := range byOID {
		t.resolveGenerated()
	}
	return nil
}

// loadPrimaryKeys reads the primary keys of the tables in byOID (of rel
// only, when not 0).
func loadPrimaryKeys(ctx context.Context, q Querier, byOID map[uint32]*Table, rel uint32) error {
	sql, args := `SELECT i.indrelid, array_to_string(i.indkey, ' ') FROM pg_index i WHERE i.indisprimary`, []any(nil)
	if rel != 0 {
		sql, args = sql+` AND i.indrelid = $1::oid`, []any{rel}
	}
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return fmt.Errorf("read primary keys: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var rel uint32
		var keys string
		if err := rows.Scan(&rel, &keys); err != nil {
			return fmt.Errorf("read primary keys: %w", err)
		}
		t := byOID[rel]
		if t == nil {
			continue
		}
		var attnums []int
		for _, f := range splitFields(keys) {
			var n int
			fmt.Sscan(f, &n)
			attnums = append(attnums, n)
		}
		t.PK = t.PK[:0]
		for _, n := range attnums {
			for i, c := range t.Columns {
				if c.Position == n {
					t.PK = append(t.PK, i)
				}
			}
		}
	}
	return rows.Err()
}

func splitFields(s string) []string {
	var out []string
	start := -1
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == ' ' {
			if start >= 0 {
				out = append(out, s[start:i])
				start = -1
			}
		} else if start < 0 {
			start = i
		}
	}
	return out
}

// resolveKind follows domains to their base type and arrays to their element.
func resolveKind(types map[uint32]pgType, oid uint32) (Kind, bool) {
	array := false
	for depth := 0; depth < 16; depth++ {
		t, ok := types[oid]
		if !ok {
			return KindOther, array
		}
		switch {
		case t.typtype == 'd':
			oid = t.baseType
			continue
		case t.schema == "pg_catalog" && (t.name == "int2vector" || t.name == "oidvector"):
			// Category A with an element type, but written "1 2 3", not as an array.
			return KindOther, array
		case t.category == 'A' && t.elem != 0 && !array:
			array = true
			oid = t.elem
			continue
		case t.typtype == 'e':
			return KindEnum, array
		}
		if t.schema != "pg_catalog" {
			return KindOther, array
		}
		return builtinKind(t.name), array
	}
	return KindOther, array
}

func builtinKind(name string) Kind {
	switch name {
	case "int2", "int4", "int8", "oid":
		return KindInt
	case "numeric":
		return KindNumeric
	case "float4", "float8":
		return KindFloat
	case "text", "varchar", "bpchar", "name", "char", "uuid", "citext", "inet", "cidr", "macaddr":
		return KindText
	case "bool":
		return KindBool
	case "date":
		return KindDate
	case "timestamp":
		return KindTimestamp
	case "timestamptz":
		return KindTimestampTZ
	case "time", "timetz", "interval":
		return KindTime
	case "bytea":
		return KindBytea
	case "money":
		return KindMoney
	case "box":
		return KindBox
	case "tsvector":
		return KindTSVector
	case "json", "jsonb":
		return KindJSON
	}
	return KindOther
}

// SortedNames returns the qualified names of tables in a stable order.
func SortedNames(tables map[string]*Table) []string {
	out := make([]string, 0, len(tables))
	for n := range tables {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// LargestRowBytes returns the largest row of the table as stored (pg_column_size
// of the whole row, TOAST included), sampling 1% of tables with over a million rows.
func LargestRowBytes(ctx context.Context, q Querier, t *Table) (int64, error) {
	sample := ""
	if t.EstimatedRows > 1_000_000 {
		sample = " TABLESAMPLE SYSTEM (1)"
	}
	rows, err := q.Query(ctx, "SELECT coalesce(max(pg_column_size(x.*)), 0)::bigint FROM "+t.Ident()+" AS x"+sample)
	if err != nil {
		return 0, fmt.Errorf("size rows of %s: %w", t.QualifiedName(), err)
	}
	defer rows.Close()
	var n int64
	for rows.Next() {
		if err := rows.Scan(&n); err != nil {
			return 0, fmt.Errorf("size rows of %s: %w", t.QualifiedName(), err)
		}
	}
	return n, rows.Err()
}
