package extract

import "strings"

// Kind is the family a column's type belongs to once domains are resolved to their
// base type; it decides how transform converts the text form.
type Kind string

// The kinds of column ferry converts exactly.
const (
	KindInt         Kind = "int"         // int2, int4, int8 (and domains over them)
	KindNumeric     Kind = "numeric"     // numeric/decimal, exact
	KindFloat       Kind = "float"       // float4, float8
	KindText        Kind = "text"        // text, varchar, char, name, citext, uuid, ...
	KindBool        Kind = "bool"        // boolean
	KindDate        Kind = "date"        // date
	KindTimestamp   Kind = "timestamp"   // timestamp without time zone
	KindTimestampTZ Kind = "timestamptz" // timestamp with time zone
	KindTime        Kind = "time"        // time, timetz, interval: kept as text
	KindEnum        Kind = "enum"        // user-defined enum: its label
	KindBytea       Kind = "bytea"       // binary
	KindTSVector    Kind = "tsvector"    // text search vector: its text form
	KindJSON        Kind = "json"        // json, jsonb: kept as text
	KindOther       Kind = "other"       // anything else: the text form
)

// Column describes one column of a source table.
type Column struct {
	Name     string
	Type     string // the declared type as format_type prints it, e.g. "public.year", "text[]"
	Kind     Kind   // element kind for arrays
	Array    bool   // one-dimensional array of Kind
	NotNull  bool
	Position int // attnum
	// TypeOID and TypeMod are pg_attribute's atttypid and atttypmod, as
	// pgoutput's Relation message announces them (a change of either is a
	// schema change; see Decoder).
	TypeOID uint32
	TypeMod int32
	// Generated is the expression of a GENERATED ALWAYS AS (…) STORED
	// column ("" for other columns). pgoutput (PostgreSQL 15) leaves such
	// columns out of every change; see EvalGenerated.
	Generated string
	// GeneratedFrom lists the indexes (into Table.Columns) of the columns
	// the expression reads.
	GeneratedFrom []int
	generatedFrom []int // attnums, resolved into GeneratedFrom
}

// Table describes a source table (for a partitioned table: the root, which stands
// for all its partitions).
type Table struct {
	Schema  string
	Name    string
	Columns []Column
	// PK lists indexes into Columns of the primary key, in key order.
	PK []int
	// Partitioned is true for a partitioned root; reads go through the root.
	Partitioned bool
	// ReplicaIdentity is pg_class.relreplident: d(efault), f(ull), i(ndex), n(othing).
	ReplicaIdentity byte
	// EstimatedRows is pg_class.reltuples summed over partitions (-1 if unknown).
	EstimatedRows int64
}

// QualifiedName is schema.name as written in a mapping (without quoting).
func (t *Table) QualifiedName() string { return t.Schema + "." + t.Name }

// Ident returns the table name quoted for SQL.
func (t *Table) Ident() string { return QuoteIdent(t.Schema) + "." + QuoteIdent(t.Name) }

// ColumnIndex returns the index of the named column or -1.
func (t *Table) ColumnIndex(name string) int {
	for i := range t.Columns {
		if t.Columns[i].Name == name {
			return i
		}
	}
	return -1
}

// PKNames returns the primary key column names in key order.
func (t *Table) PKNames() []string {
	out := make([]string, len(t.PK))
	for i, c := range t.PK {
		out[i] = t.Columns[c].Name
	}
	return out
}

// QuoteIdent quotes an SQL identifier.
func QuoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }
