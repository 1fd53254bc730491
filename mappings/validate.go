package mappings

import (
	"fmt"
	"slices"
	"strings"
)

// maxGSIs is DynamoDB's (default) limit of global secondary indexes per table.
const maxGSIs = 20

// reservedAttrs are the attributes ferry writes on every item.
var reservedAttrs = []string{"_table", "_version"}

// Validate checks what can be checked without a database, across tables:
//   - a source table is mapped once, and a GSI name appears once per table;
//   - every template is parsed (built with ParseTemplate);
//   - key attribute names (table and GSI keys) differ from one another within a
//     table, from _table and _version, and from the columns the table's
//     templates, conditions and types name;
//   - tables written to one DynamoDB table use the same partition and sort key
//     attribute names (and all have, or all lack, a sort key);
//   - such tables can be told apart by their keys: for the partition key or for
//     the sort key, neither table's template prefix (the literal text before the
//     first placeholder) is a prefix of the other's;
//   - a GSI name used by several tables of one DynamoDB table has the same
//     attributes everywhere, an attribute plays one role per DynamoDB table, and
//     a DynamoDB table has at most 20 GSIs.
//
// Parse calls it. It returns every problem, each an *Error, joined in file order.
func (m *Mapping) Validate() error {
	var errs []*Error
	if len(m.Tables) == 0 {
		errs = append(errs, Errorf(Pos{File: m.File}, "no tables: a mapping needs at least one table"))
	}
	errs = append(errs, checkShape(m.Tables)...)
	errs = append(errs, validate(m.Tables, m.Tables)...)
	return joinErrors(errs)
}

// validate runs the checks that need little (names) over all tables, and those
// that need whole keys over the tables whose source, target and keys parsed
// soundly, so that one broken table does not cause a cascade of follow-on
// messages.
func validate(all, sound []*Table) []*Error {
	var errs []*Error
	errs = append(errs, checkDuplicates(all)...)
	for _, t := range sound {
		errs = append(errs, checkKeyNames(t)...)
		errs = append(errs, checkPattern(t)...)
	}
	errs = append(errs, checkTargets(sound)...)
	return errs
}

// checkShape catches mappings built in code without what Parse guarantees.
func checkShape(tables []*Table) []*Error {
	var errs []*Error
	tmpl := func(t Template, where string, pos Pos) {
		if len(t.Parts) == 0 {
			errs = append(errs, Errorf(pos, "%s: template %q is not parsed (build it with ParseTemplate)", where, t.Raw))
		}
	}
	key := func(k *KeyAttr, where string) {
		if k.Name == "" {
			errs = append(errs, Errorf(k.Pos, "%s has no attribute name", where))
		}
		tmpl(k.Template, where, k.Pos)
	}
	for _, t := range tables {
		name := fmt.Sprintf("table %q", t.Source)
		if t.Source == "" {
			errs = append(errs, Errorf(t.Pos, "a table has no source"))
		}
		if t.Target == "" {
			errs = append(errs, Errorf(t.Pos, "%s has no target", name))
		}
		key(&t.PartitionKey, "partition_key of "+name)
		if t.SortKey != nil {
			key(t.SortKey, "sort_key of "+name)
		}
		for i := range t.GSIs {
			g := &t.GSIs[i]
			if g.Name == "" {
				errs = append(errs, Errorf(g.Pos, "a gsi of %s has no name", name))
			}
			key(&g.PartitionKey, fmt.Sprintf("partition_key of gsi %q of %s", g.Name, name))
			if g.SortKey != nil {
				key(g.SortKey, fmt.Sprintf("sort_key of gsi %q of %s", g.Name, name))
			}
		}
		if t.Stream != nil && t.Stream.PartitionKey != nil {
			tmpl(*t.Stream.PartitionKey, "partition_key of stream of "+name, t.Stream.Pos)
		}
	}
	return errs
}

// checkDuplicates reports a source table mapped twice and a GSI name repeated
// within a table.
func checkDuplicates(tables []*Table) []*Error {
	var errs []*Error
	first := map[string]*Table{}
	for _, t := range tables {
		if t.Source == "" {
			continue
		}
		id := t.SourceSchema() + "." + t.SourceName()
		f, dup := first[id]
		if !dup {
			first[id] = t
		} else if f.Source == t.Source {
			errs = append(errs, Errorf(t.SourcePos, "source table %q is mapped twice (first at line %d)", t.Source, f.SourcePos.Line))
		} else {
			errs = append(errs, Errorf(t.SourcePos, "source table %q is mapped twice (first at line %d as %q)", t.Source, f.SourcePos.Line, f.Source))
		}
		gsis := map[string]*GSI{}
		for i := range t.GSIs {
			g := &t.GSIs[i]
			if g.Name == "" {
				continue
			}
			if f, dup := gsis[g.Name]; dup {
				errs = append(errs, Errorf(g.Pos, "duplicate gsi %q in table %q (first at line %d)", g.Name, t.Source, f.Pos.Line))
				continue
			}
			gsis[g.Name] = g
		}
	}
	return errs
}

// keyUse is one key attribute of a table and the role it plays.
type keyUse struct {
	attr *KeyAttr
	role string // "partition key", "sort key", `gsi "g" partition key`, …
}

func keyUses(t *Table) []keyUse {
	uses := []keyUse{{&t.PartitionKey, "partition key"}}
	if t.SortKey != nil {
		uses = append(uses, keyUse{t.SortKey, "sort key"})
	}
	for i := range t.GSIs {
		g := &t.GSIs[i]
		uses = append(uses, keyUse{&g.PartitionKey, fmt.Sprintf("gsi %q partition key", g.Name)})
		if g.SortKey != nil {
			uses = append(uses, keyUse{g.SortKey, fmt.Sprintf("gsi %q sort key", g.Name)})
		}
	}
	return uses
}

// checkKeyNames reports key attribute names that collide within a table.
func checkKeyNames(t *Table) []*Error {
	var errs []*Error
	columns := map[string]bool{}
	addTemplate := func(tp Template) {
		for _, c := range tp.Columns() {
			columns[c] = true
		}
	}
	for _, u := range keyUses(t) {
		addTemplate(u.attr.Template)
	}
	for _, g := range t.GSIs {
		if g.When != nil {
			columns[g.When.Column] = true
		}
	}
	for _, ct := range t.Types {
		columns[ct.Column] = true
	}
	if t.Stream != nil && t.Stream.PartitionKey != nil {
		addTemplate(*t.Stream.PartitionKey)
	}
	for _, ex := range t.Exclude {
		delete(columns, ex.Name)
	}
	seen := map[string]keyUse{}
	for _, u := range keyUses(t) {
		name := u.attr.Name
		switch {
		case name == reservedAttrs[0] || name == reservedAttrs[1]:
			errs = append(errs, Errorf(u.attr.Pos, "the %s attribute of table %q is named %q, which is reserved: ferry writes %s on every item",
				u.role, t.Source, name, strings.Join(reservedAttrs, " and ")))
		case columns[name]:
			errs = append(errs, Errorf(u.attr.Pos, "the %s attribute of table %q is named %q, like a source column: items carry every column under its own name",
				u.role, t.Source, name))
		}
		if first, dup := seen[name]; dup {
			errs = append(errs, Errorf(u.attr.Pos, "key attribute %q of table %q is both the %s (line %d) and the %s",
				name, t.Source, first.role, first.attr.Pos.Line, u.role))
			continue
		}
		seen[name] = u
	}
	return errs
}

// checkTargets checks the tables written to one DynamoDB table against each other.
func checkTargets(tables []*Table) []*Error {
	var order []string
	groups := map[string][]*Table{}
	for _, t := range tables {
		if _, ok := groups[t.Target]; !ok {
			order = append(order, t.Target)
		}
		groups[t.Target] = append(groups[t.Target], t)
	}
	var errs []*Error
	for _, target := range order {
		g := groups[target]
		errs = append(errs, checkKeyAttrs(target, g)...)
		errs = append(errs, checkKeySpaces(target, g)...)
		errs = append(errs, checkGSIs(target, g)...)
	}
	return errs
}

// checkKeyAttrs: one DynamoDB table has one partition key and one sort key.
func checkKeyAttrs(target string, g []*Table) []*Error {
	var errs []*Error
	first := g[0]
	for _, t := range g[1:] {
		if t.PartitionKey.Name != first.PartitionKey.Name {
			errs = append(errs, Errorf(t.PartitionKey.Pos,
				"table %q names its partition key attribute %q, but table %q (line %d) names it %q: tables written to DynamoDB table %q must use the same key attribute names",
				t.Source, t.PartitionKey.Name, first.Source, first.PartitionKey.Pos.Line, first.PartitionKey.Name, target))
		}
		switch {
		case first.SortKey != nil && t.SortKey == nil:
			errs = append(errs, Errorf(t.PartitionKey.Pos,
				"table %q has no sort_key, but table %q (line %d) has sort key %q: tables written to DynamoDB table %q must all have a sort key or all lack one",
				t.Source, first.Source, first.SortKey.Pos.Line, first.SortKey.Name, target))
		case first.SortKey == nil && t.SortKey != nil:
			errs = append(errs, Errorf(t.SortKey.Pos,
				"table %q has sort key %q, but table %q (line %d) has none: tables written to DynamoDB table %q must all have a sort key or all lack one",
				t.Source, t.SortKey.Name, first.Source, first.Pos.Line, target))
		case first.SortKey != nil && t.SortKey.Name != first.SortKey.Name:
			errs = append(errs, Errorf(t.SortKey.Pos,
				"table %q names its sort key attribute %q, but table %q (line %d) names it %q: tables written to DynamoDB table %q must use the same key attribute names",
				t.Source, t.SortKey.Name, first.Source, first.SortKey.Pos.Line, first.SortKey.Name, target))
		}
	}
	return errs
}

// disjoint reports whether neither prefix is a prefix of the other, so no value
// of one template can equal a value of the other.
func disjoint(a, b string) bool {
	return !strings.HasPrefix(a, b) && !strings.HasPrefix(b, a)
}

// checkKeySpaces: two tables must not be able to write the same item key.
func checkKeySpaces(target string, g []*Table) []*Error {
	var errs []*Error
	// A pattern entry's tables are checked once written out (their keys
	// start with their names; transform checks them against the others).
	g = slices.DeleteFunc(slices.Clone(g), (*Table).IsPattern)
	for j, b := range g {
		for _, a := range g[:j] {
			pa, pb := a.PartitionKey.Template.Prefix(), b.PartitionKey.Template.Prefix()
			if disjoint(pa, pb) {
				continue
			}
			if a.SortKey != nil && b.SortKey != nil {
				sa, sb := a.SortKey.Template.Prefix(), b.SortKey.Template.Prefix()
				if disjoint(sa, sb) {
					continue
				}
				errs = append(errs, Errorf(b.PartitionKey.Pos,
					"tables %q (line %d) and %q write one key space of DynamoDB table %q without a discriminator: partition key prefixes %q and %q overlap, and so do sort key prefixes %q and %q; start a key template of each with its own literal, such as %q",
					a.Source, a.Pos.Line, b.Source, target, pa, pb, sa, sb, discriminator(b)))
				continue
			}
			errs = append(errs, Errorf(b.PartitionKey.Pos,
				"tables %q (line %d) and %q write one key space of DynamoDB table %q without a discriminator: partition key prefixes %q and %q overlap and there is no sort key to tell them apart; start the partition key template of each with its own literal, such as %q",
				a.Source, a.Pos.Line, b.Source, target, pa, pb, discriminator(b)))
		}
	}
	return errs
}

// discriminator suggests a literal prefix for a table: "RENTAL#".
func discriminator(t *Table) string { return strings.ToUpper(t.SourceName()) + "#" }

// checkGSIs: one GSI name means one pair of attributes, an attribute has one
// role, and DynamoDB's limit on the number of GSIs holds.
func checkGSIs(target string, g []*Table) []*Error {
	var errs []*Error
	type def struct {
		table *Table
		gsi   *GSI
	}
	gsis := map[string]def{}
	count := 0
	type role struct {
		role  string
		table *Table
		pos   Pos
	}
	roles := map[string]role{}
	for _, t := range g {
		for i := range t.GSIs {
			x := &t.GSIs[i]
			f, ok := gsis[x.Name]
			if !ok {
				gsis[x.Name] = def{t, x}
				count++
				if count == maxGSIs+1 {
					errs = append(errs, Errorf(x.Pos, "gsi %q of table %q makes %d GSIs on DynamoDB table %q: DynamoDB allows at most %d",
						x.Name, t.Source, count, target, maxGSIs))
				}
				continue
			}
			if f.table != t && gsiAttrs(f.gsi) != gsiAttrs(x) {
				errs = append(errs, Errorf(x.Pos,
					"gsi %q of table %q has key attributes %s, but table %q (line %d) gives gsi %q key attributes %s: one index of DynamoDB table %q has one pair of key attributes",
					x.Name, t.Source, gsiAttrs(x), f.table.Source, f.gsi.Pos.Line, x.Name, gsiAttrs(f.gsi), target))
			}
		}
		for _, u := range keyUses(t) {
			r, ok := roles[u.attr.Name]
			if !ok {
				roles[u.attr.Name] = role{u.role, t, u.attr.Pos}
				continue
			}
			if r.table != t && r.role != u.role {
				errs = append(errs, Errorf(u.attr.Pos,
					"key attribute %q is the %s in table %q but the %s in table %q (line %d): an attribute of DynamoDB table %q has one role",
					u.attr.Name, u.role, t.Source, r.role, r.table.Source, r.pos.Line, target))
			}
		}
	}
	return errs
}

// gsiAttrs formats a GSI's key attributes: "(gsi1pk, gsi1sk)" or "(gsi1pk, no sort key)".
func gsiAttrs(g *GSI) string {
	sk := "no sort key"
	if g.SortKey != nil {
		sk = g.SortKey.Name
	}
	return "(" + g.PartitionKey.Name + ", " + sk + ")"
}
