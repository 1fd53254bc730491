package mappings

import (
	"fmt"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// keyAttr decodes {name, template}; its Pos is that of the key (the
// "partition_key:" line).
func (p *parser) keyAttr(e kv, noun string) (KeyAttr, bool) {
	k := KeyAttr{Pos: p.pos(e.key)}
	before := len(p.errs)
	if !p.isMap(e.val, noun, "a map {name, template}") {
		return k, false
	}
	where := "in " + noun
	f := p.fields(e.val, where, keyKeys)
	p.require(e.val, f, where, "name", "template")
	if v, ok := f["name"]; ok {
		if s, ok := p.str(v.val, "name of "+noun); ok {
			if len(s) > 255 || !utf8.ValidString(s) {
				p.errorf(v.val, "name of %s is not a valid DynamoDB key attribute name (1-255 bytes of UTF-8)", noun)
			}
			k.Name = s
		}
	}
	if v, ok := f["template"]; ok {
		if s, ok := p.str(v.val, "template of "+noun); ok {
			t, err := ParseTemplate(s, p.pos(v.val))
			if err != nil {
				p.errorf(v.val, "%s: %s", noun, err.(*Error).Msg)
			} else if a, b, adj := t.adjacentColumns(); adj {
				p.errorf(v.val, "%s: template %q has adjacent placeholders {%s}{%s}: put a literal such as \"#\" between them so the key is unambiguous", noun, s, a, b)
			} else if why := t.separatorProblem(); why != "" {
				p.errorf(v.val, "%s: template %q cannot be made unambiguous: %s", noun, s, why)
			}
			k.Template = t
		}
	}
	return k, len(p.errs) == before
}

func (p *parser) gsi(n *yaml.Node, j int, table string) GSI {
	g := GSI{Pos: p.pos(n)}
	noun := fmt.Sprintf("gsi #%d of %s", j+1, table)
	if !p.isMap(n, noun, "a map with keys name, partition_key, sort_key, when") {
		return g
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Value == "name" && v.Kind == yaml.ScalarNode && v.ShortTag() == "!!str" && v.Value != "" {
			noun = fmt.Sprintf("gsi %q of %s", v.Value, table)
			break
		}
	}
	where := "in " + noun
	f := p.fields(n, where, gsiKeys)
	p.require(n, f, where, "name", "partition_key")
	if v, ok := f["name"]; ok {
		if s, ok := p.str(v.val, "name of "+noun); ok {
			if !validAWSName(s, 3, 255) {
				p.errorf(v.val, "gsi name %q is not a valid DynamoDB index name (3-255 characters: letters, digits, _ - .)", s)
			}
			g.Name = s
		}
	}
	if v, ok := f["partition_key"]; ok {
		g.PartitionKey, _ = p.keyAttr(v, "partition_key of "+noun)
	}
	if v, ok := f["sort_key"]; ok {
		if k, ok := p.keyAttr(v, "sort_key of "+noun); ok {
			g.SortKey = &k
		}
	}
	if v, ok := f["when"]; ok {
		if s, ok := p.str(v.val, "when of "+noun); ok {
			c, ok := parseCondition(s)
			if !ok {
				p.errorf(v.val, "when of %s must be \"<column> IS NULL\" or \"<column> IS NOT NULL\", got %q", noun, s)
			} else {
				c.Pos = p.pos(v.val)
				g.When = &c
			}
		}
	}
	return g
}

var conditionRE = regexp.MustCompile(`^\s*(\S+)\s+(?i:is)\s+(?:((?i:not))\s+)?(?i:null)\s*$`)

// parseCondition parses "<column> IS [NOT] NULL", keywords in any case.
func parseCondition(s string) (Condition, bool) {
	m := conditionRE.FindStringSubmatch(s)
	if m == nil || !isIdent(m[1]) {
		return Condition{}, false
	}
	return Condition{Column: m[1], IsNull: m[2] == ""}, true
}

// excludeTables reads a pattern entry's exclude list: table names or globs.
func (p *parser) excludeTables(n *yaml.Node, table string) []string {
	noun := "exclude of " + table
	if !p.isList(n, noun, "a list of table names or patterns") {
		return nil
	}
	var out []string
	for _, item := range n.Content {
		s, ok := p.str(item, "a table in "+noun)
		if !ok {
			continue
		}
		if _, err := path.Match(s, "x"); err != nil || s == "" {
			p.errorf(item, "%s: %q is not a table name or pattern", noun, s)
			continue
		}
		out = append(out, s)
	}
	return out
}

func (p *parser) exclude(n *yaml.Node, table string) []Name {
	noun := "exclude of " + table
	if !p.isList(n, noun, "a list of column names") {
		return nil
	}
	var out []Name
	first := map[string]int{}
	for _, item := range n.Content {
		s, ok := p.str(item, "a column in "+noun)
		if !ok {
			continue
		}
		if !isIdent(s) {
			p.errorf(item, "%s: %q is not a plain column name", noun, s)
			continue
		}
		if line, dup := first[s]; dup {
			p.errorf(item, "column %q is excluded twice in %s (first at line %d)", s, table, line)
			continue
		}
		first[s] = item.Line
		out = append(out, Name{Name: s, Pos: p.pos(item)})
	}
	return out
}

func (p *parser) types(n *yaml.Node, table string) []ColumnType {
	noun := "types of " + table
	if !p.isMap(n, noun, "a map of column: conversion") {
		return nil
	}
	var out []ColumnType
	first := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		col, ok := p.str(k, "a column in "+noun)
		if !ok {
			continue
		}
		if !isIdent(col) {
			p.errorf(k, "%s: %q is not a plain column name", noun, col)
			continue
		}
		if line, dup := first[col]; dup {
			p.errorf(k, "duplicate key %q in %s (first at line %d)", col, noun, line)
			continue
		}
		first[col] = k.Line
		conv, ok := p.str(v, fmt.Sprintf("the type of column %q in %s", col, table))
		if !ok {
			continue
		}
		if !slices.Contains(conversions, conv) {
			p.errorf(v, "unknown conversion %q for column %q in %s (known: %s)%s",
				conv, col, table, quoteList(conversions), suggest(conv, conversions))
			continue
		}
		out = append(out, ColumnType{Column: col, Conv: Conversion(conv), Pos: p.pos(k)})
	}
	return out
}

// stream decodes a table's stream: a name, false, or {name, partition_key}; e is
// nil when the table does not set one.
func (p *parser) stream(e *kv, table string, d *defaults) *Stream {
	noun := "stream of " + table
	if e == nil {
		if d.stream == "" {
			return nil
		}
		return &Stream{Name: d.stream, Pos: d.streamPos}
	}
	n := e.val
	const want = "a stream name, a map {name, partition_key} or false"
	switch {
	case n.Kind == yaml.ScalarNode && n.ShortTag() == "!!bool":
		if v, err := strconv.ParseBool(strings.ToLower(n.Value)); err == nil && !v {
			return nil
		}
		p.errorf(n, "%s must be %s, got %s", noun, want, describe(n))
		return nil
	case n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null":
		p.errorf(n, "%s must be %s, got %s", noun, want, describe(n))
		return nil
	case n.Kind == yaml.ScalarNode:
		s, ok := p.str(n, noun)
		if !ok || !p.streamName(n, s, noun) {
			return nil
		}
		return &Stream{Name: s, Pos: p.pos(n)}
	case n.Kind != yaml.MappingNode:
		p.errorf(n, "%s must be %s, got %s", noun, want, describe(n))
		return nil
	}
	where := "in " + noun
	f := p.fields(n, where, streamKeys)
	s := &Stream{Pos: p.pos(n)}
	if v, ok := f["name"]; ok {
		if name, ok := p.str(v.val, "name of "+noun); ok && p.streamName(v.val, name, "name of "+noun) {
			s.Name = name
		}
	} else if d.stream != "" {
		s.Name = d.stream
	} else {
		p.errorf(n, "missing required key \"name\" %s (and defaults sets no stream)", where)
	}
	if v, ok := f["partition_key"]; ok {
		if raw, ok := p.str(v.val, "partition_key of "+noun); ok {
			t, err := ParseTemplate(raw, p.pos(v.val))
			if err != nil {
				p.errorf(v.val, "partition_key of %s: %s", noun, err.(*Error).Msg)
			} else {
				s.PartitionKey = &t
			}
		}
	}
	return s
}
