package mappings

import (
	"fmt"
	"path"
	"slices"
	"strings"
)

// Pattern entries. A table entry whose source holds a glob ("public.*",
// "sales.order_*") maps every table it matches that no other entry names and
// that its exclude list (table names or globs, for a pattern entry) does not
// name: the tables that exist when the plan is compiled and, while sync runs,
// the tables created later (sync adds them to the migration online). Its
// key templates are written once for all of them with two placeholders of
// their own:
//
//	{_table}  the table's name (a literal in each table's templates;
//	          schema.name outside the public schema), and
//	{_pk}     its primary key's columns, "{a}#{b}" for a key (a, b).
//
// The partition or the sort key template must hold {_table}, so that the
// tables a pattern maps never share an item key.

// Placeholders of pattern entries.
const (
	PlaceholderTable = "_table"
	PlaceholderPK    = "_pk"
)

// IsPattern reports whether the entry maps the tables its source matches.
func (t *Table) IsPattern() bool { return strings.ContainsAny(t.Source, "*?[") }

// patternOf returns the entry's source as a glob over "schema.table".
func (t *Table) patternOf() string {
	if strings.Contains(t.Source, ".") {
		return t.Source
	}
	return "public." + t.Source
}

// Matches reports whether the pattern entry maps the table (schema.name):
// its source matches and its exclude list does not.
func (t *Table) Matches(qualified string) bool {
	if !t.IsPattern() {
		return false
	}
	if ok, _ := path.Match(t.patternOf(), qualified); !ok {
		return false
	}
	_, name := splitSource(qualified)
	for _, ex := range t.ExcludeTables {
		p := ex
		if !strings.Contains(p, ".") {
			if ok, _ := path.Match(p, name); ok {
				return false
			}
			continue
		}
		if ok, _ := path.Match(p, qualified); ok {
			return false
		}
	}
	return true
}

// PatternFor returns the pattern entry that maps a table no other entry
// names (the first that matches), or nil.
func (m *Mapping) PatternFor(qualified string) *Table {
	if m.Table(qualified) != nil {
		return nil
	}
	for _, t := range append(slices.Clip(m.Tables), m.Patterns...) {
		if t.Matches(qualified) {
			return t
		}
	}
	return nil
}

// HasPatterns reports whether the mapping has pattern entries.
func (m *Mapping) HasPatterns() bool {
	return len(m.Patterns) > 0 || slices.ContainsFunc(m.Tables, (*Table).IsPattern)
}

// Expand returns the mapping with its pattern entries replaced by one entry
// per table they map. tables are the source's tables (schema.name) with
// their primary key columns; a table that a pattern matches but that has no
// primary key cannot be mapped, and is returned in noKey. The mapping itself
// is not changed.
func (m *Mapping) Expand(tables map[string][]string) (out *Mapping, noKey []string, err error) {
	out = &Mapping{File: m.File, Version: m.Version, Text: m.Text, AccessPatterns: m.AccessPatterns}
	names := make([]string, 0, len(tables))
	for n := range tables {
		names = append(names, n)
	}
	slices.Sort(names)
	out.Patterns = slices.Clone(m.Patterns)
	for _, t := range m.Tables {
		if t.IsPattern() {
			out.Patterns = append(out.Patterns, t)
		} else {
			out.Tables = append(out.Tables, t)
		}
	}
	for _, n := range names {
		p := m.PatternFor(n)
		if p == nil {
			continue
		}
		if len(tables[n]) == 0 {
			noKey = append(noKey, n)
			continue
		}
		t, err := p.Instance(n, tables[n])
		if err != nil {
			return nil, nil, err
		}
		out.Tables = append(out.Tables, t)
	}
	return out, noKey, nil
}

// Instance is the pattern entry written out for one table (schema.name)
// with the given primary key columns.
func (t *Table) Instance(qualified string, pk []string) (*Table, error) {
	schema, name := splitSource(qualified)
	it := *t
	it.Source = QuoteIdent(schema) + "." + QuoteIdent(name)
	if isIdent(schema) && isIdent(name) {
		it.Source = schema + "." + name
	}
	it.ExcludeTables = nil
	// Outside public, the schema too: tables of two schemas never share keys.
	label := name
	if schema != "public" {
		label = schema + "." + name
	}
	lit := strings.NewReplacer("{", "{{", "}", "}}").Replace(label)
	cols := make([]string, len(pk))
	for i, c := range pk {
		cols[i] = "{" + c + "}"
	}
	expand := func(k KeyAttr) (KeyAttr, error) {
		raw := strings.ReplaceAll(k.Template.Raw, "{"+PlaceholderTable+"}", lit)
		raw = strings.ReplaceAll(raw, "{"+PlaceholderPK+"}", strings.Join(cols, "#"))
		tpl, err := ParseTemplate(raw, k.Template.Pos)
		if err != nil {
			return k, fmt.Errorf("%s: pattern %q for table %s: %w", k.Template.Pos, t.Source, qualified, err)
		}
		k.Template = tpl
		return k, nil
	}
	var err error
	if it.PartitionKey, err = expand(t.PartitionKey); err != nil {
		return nil, err
	}
	if t.SortKey != nil {
		sk, err := expand(*t.SortKey)
		if err != nil {
			return nil, err
		}
		it.SortKey = &sk
	}
	it.GSIs = make([]GSI, len(t.GSIs))
	for i, g := range t.GSIs {
		if g.PartitionKey, err = expand(g.PartitionKey); err != nil {
			return nil, err
		}
		if g.SortKey != nil {
			sk, err := expand(*g.SortKey)
			if err != nil {
				return nil, err
			}
			g.SortKey = &sk
		}
		it.GSIs[i] = g
	}
	if t.Stream != nil && t.Stream.PartitionKey != nil {
		s := *t.Stream
		k, err := expand(KeyAttr{Template: *s.PartitionKey})
		if err != nil {
			return nil, err
		}
		s.PartitionKey = &k.Template
		it.Stream = &s
	}
	return &it, nil
}

// checkPattern checks a pattern entry's own rules.
func checkPattern(t *Table) []*Error {
	if !t.IsPattern() {
		return nil
	}
	if _, err := path.Match(t.patternOf(), "public.x"); err != nil {
		return []*Error{Errorf(t.SourcePos, "source %q: bad pattern: %v", t.Source, err)}
	}
	has := func(k *KeyAttr) bool { return k != nil && slices.Contains(k.Template.Columns(), PlaceholderTable) }
	if !has(&t.PartitionKey) && !has(t.SortKey) {
		return []*Error{Errorf(t.PartitionKey.Pos, "pattern entry %q: its partition_key or sort_key template must hold {%s}, so that the tables it maps never share an item key",
			t.Source, PlaceholderTable)}
	}
	return nil
}
