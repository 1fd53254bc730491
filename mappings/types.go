// Package mappings defines ferry's YAML mapping format: which source tables go to
// which DynamoDB table, how keys and GSIs are built from column templates, which
// columns are left out or converted, and where change events are published. It
// parses strictly (every error names file:line) and validates what can be checked
// without a database; checks against the live schema live in transform.
package mappings

import "fmt"

// Pos is a place in a mapping file.
type Pos struct {
	File string
	Line int
	Col  int
}

func (p Pos) String() string {
	if p.Line == 0 {
		return p.File
	}
	return fmt.Sprintf("%s:%d", p.File, p.Line)
}

// Error is one problem found in a mapping, at a place.
type Error struct {
	Pos Pos
	Msg string
}

func (e *Error) Error() string { return e.Pos.String() + ": " + e.Msg }

// Errorf builds an *Error.
func Errorf(pos Pos, format string, args ...any) *Error {
	return &Error{Pos: pos, Msg: fmt.Sprintf(format, args...)}
}

// Part is one piece of a template: a literal or a column placeholder.
type Part struct {
	Literal string
	Column  string // non-empty for a {column} placeholder
}

// Template is a string such as "CUSTOMER#{customer_id}": literals and {column}
// placeholders. A literal '{' or '}' is written doubled ("{{", "}}").
type Template struct {
	Raw   string
	Parts []Part
	Pos   Pos
}

// Columns lists the placeholder column names in order of appearance.
func (t Template) Columns() []string {
	var out []string
	for _, p := range t.Parts {
		if p.Column != "" {
			out = append(out, p.Column)
		}
	}
	return out
}

// Prefix returns the literal text before the first placeholder (the whole
// template when it has none).
func (t Template) Prefix() string {
	s := ""
	for _, p := range t.Parts {
		if p.Column != "" {
			break
		}
		s += p.Literal
	}
	return s
}

// KeyAttr is a key attribute of the table or of a GSI: its attribute name and the
// template that builds its string value.
type KeyAttr struct {
	Name     string
	Template Template
	Pos      Pos
}

// Condition restricts when a GSI's key attributes are written (a sparse index):
// the GSI attributes are present only when Column IS NULL (IsNull) or IS NOT NULL.
type Condition struct {
	Column string
	IsNull bool
	Pos    Pos
}

// GSI is a global secondary index of the target table. Its key attributes are
// written on an item only when every placeholder column is non-NULL and the
// condition (if any) holds.
type GSI struct {
	Name         string
	PartitionKey KeyAttr
	SortKey      *KeyAttr
	When         *Condition
	Pos          Pos
}

// Conversion names how a column's value is stored in DynamoDB.
type Conversion string

// The conversions a mapping may ask for; ConvAuto (the default) follows the
// PostgreSQL type (see transform and docs/types.md, which lists each type's
// form and the values refused).
const (
	ConvAuto    Conversion = "auto"
	ConvString  Conversion = "string"   // the canonical text form (ISO 8601 dates, money's decimal), as S; keeps every float
	ConvNumber  Conversion = "number"   // N (integers, numeric, float, money, bool as 0/1)
	ConvEpochMS Conversion = "epoch_ms" // date/timestamp/timestamptz as N milliseconds since 1970 UTC
	ConvBinary  Conversion = "binary"   // bytea as B (the default for bytea)
	ConvMap     Conversion = "map"      // json/jsonb as a DynamoDB document: object M, array L, string S, number N, true/false BOOL, null NULL
)

// ColumnType overrides the conversion of one column.
type ColumnType struct {
	Column string
	Conv   Conversion
	Pos    Pos
}

// Name is a column name with the place it was written.
type Name struct {
	Name string
	Pos  Pos
}

// Stream is where a table's change events go.
type Stream struct {
	Name string
	// PartitionKey is the Kinesis partition key template; empty means the default:
	// the table name and the primary key values ("rental:16050", "film_actor:1:23").
	PartitionKey *Template
	Pos          Pos
}

// Table maps one source table.
type Table struct {
	// Source is the source table as written ("customer" or "public.customer").
	Source    string
	SourcePos Pos
	// Target is the DynamoDB table name.
	Target       string
	TargetPos    Pos
	PartitionKey KeyAttr
	SortKey      *KeyAttr
	GSIs         []GSI
	Exclude      []Name
	// ExcludeTables are, for a pattern entry (IsPattern), the tables (names
	// or globs, "audit_*" or "public.tmp_*") it does not map; its exclude
	// list in the file.
	ExcludeTables []string
	Types         []ColumnType
	Stream        *Stream // nil: no events for this table
	// OnSchemaChange is what sync does when the table's columns change
	// while it runs: SchemaFollow (the default) or SchemaStop.
	OnSchemaChange string
	// PartitionsDetached is what sync does with the items of a partition
	// detached or dropped from the (partitioned) table: PartitionsDelete
	// (the default) or PartitionsKeep.
	PartitionsDetached string
	// KeepDropped keeps a dropped column's attribute on the items written
	// before the drop (default false: the table's items are rewritten
	// without it).
	KeepDropped bool
	Pos         Pos
}

// The on_schema_change policies.
const (
	SchemaFollow = "follow"
	SchemaStop   = "stop"
)

// The partitions_detached policies.
const (
	PartitionsDelete = "delete"
	PartitionsKeep   = "keep"
)

// SourceSchema returns the schema part of Source ("public" when omitted).
func (t *Table) SourceSchema() string {
	s, _ := splitSource(t.Source)
	return s
}

// SourceName returns the table part of Source.
func (t *Table) SourceName() string {
	_, n := splitSource(t.Source)
	return n
}

func splitSource(s string) (schema, name string) {
	if schema, name, err := parseSource(s); err == nil {
		return schema, name
	}
	for i := 0; i < len(s); i++ {
		if s[i] == '.' {
			return s[:i], s[i+1:]
		}
	}
	return "public", s
}

// Mapping is a parsed mapping file.
type Mapping struct {
	File    string
	Version int
	// Text is the file's text as parsed: a compiled plan, and the table
	// definitions sync stores for the stream appliers, carry it.
	Text   []byte
	Tables []*Table
	// AccessPatterns are the application's reads (ferry shadow).
	AccessPatterns []*AccessPattern
	// Patterns are the pattern entries of a mapping that Expand wrote out
	// (Tables then holds their tables); a parsed mapping has them in Tables.
	Patterns []*Table
}

// Table returns the mapping of the source table (schema.name or name), or nil.
func (m *Mapping) Table(source string) *Table {
	s, n := splitSource(source)
	for _, t := range m.Tables {
		if t.SourceSchema() == s && t.SourceName() == n {
			return t
		}
	}
	return nil
}
