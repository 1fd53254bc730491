package mappings

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// parser decodes the node tree by hand and collects every problem.
type parser struct {
	file string
	errs []*Error
	// suggested holds, per map node, the known keys offered as "did you
	// mean" for a misspelt key, so that the key is not reported missing too.
	suggested map[*yaml.Node]map[string]bool
}

func (p *parser) pos(n *yaml.Node) Pos { return Pos{File: p.file, Line: n.Line, Col: n.Column} }

func (p *parser) errorf(n *yaml.Node, format string, args ...any) {
	p.errs = append(p.errs, Errorf(p.pos(n), format, args...))
}

// describe says what a node is, for "must be X, got Y" messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a map"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias *" + n.Value + " (aliases are not supported)"
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!null":
			return "nothing"
		case "!!str":
			return "string " + describeScalar(n.Value)
		case "!!bool":
			return n.Value
		case "!!int", "!!float":
			return "number " + n.Value
		default:
			return n.ShortTag() + " " + describeScalar(n.Value)
		}
	}
	return "nothing"
}

// kv is one key and its value in a YAML map.
type kv struct{ key, val *yaml.Node }

// fields reads the map n (of the part described by where, e.g. `in table
// "rental"`), reporting keys that are not plain, unknown or repeated.
func (p *parser) fields(n *yaml.Node, where string, known []string) map[string]kv {
	out := map[string]kv{}
	seen := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			p.errorf(k, "keys %s must be plain words, got %s", where, describe(k))
			continue
		}
		if first, dup := seen[k.Value]; dup {
			p.errorf(k, "duplicate key %q %s (first at line %d)", k.Value, where, first.Line)
			continue
		}
		seen[k.Value] = k
		if !slices.Contains(known, k.Value) {
			best, hint := suggestion(k.Value, known)
			p.errorf(k, "unknown key %q %s (known: %s)%s", k.Value, where, quoteList(known), hint)
			if best != "" {
				if p.suggested == nil {
					p.suggested = map[*yaml.Node]map[string]bool{}
				}
				if p.suggested[n] == nil {
					p.suggested[n] = map[string]bool{}
				}
				p.suggested[n][best] = true
			}
			continue
		}
		out[k.Value] = kv{k, v}
	}
	return out
}

// require reports the keys of f (read from map n) that are missing, unless a
// misspelling of the key was reported already. It returns whether all are there.
func (p *parser) require(n *yaml.Node, f map[string]kv, where string, keys ...string) bool {
	all := true
	for _, k := range keys {
		if _, ok := f[k]; !ok {
			all = false
			if !p.suggested[n][k] {
				p.errorf(n, "missing required key %q %s", k, where)
			}
		}
	}
	return all
}

// isMap reports whether n is a map, else reports "<noun> must be <want>, got …".
func (p *parser) isMap(n *yaml.Node, noun, want string) bool {
	if n.Kind == yaml.MappingNode {
		return true
	}
	p.errorf(n, "%s must be %s, got %s", noun, want, describe(n))
	return false
}

func (p *parser) isList(n *yaml.Node, noun, want string) bool {
	if n.Kind == yaml.SequenceNode {
		return true
	}
	p.errorf(n, "%s must be %s, got %s", noun, want, describe(n))
	return false
}

// str reads a non-empty string scalar; numbers are taken as written.
func (p *parser) str(n *yaml.Node, noun string) (string, bool) {
	if n.Kind != yaml.ScalarNode {
		p.errorf(n, "%s must be a string, got %s", noun, describe(n))
		return "", false
	}
	switch n.ShortTag() {
	case "!!str", "!!int", "!!float":
	default:
		p.errorf(n, "%s must be a string, got %s", noun, describe(n))
		return "", false
	}
	if n.Value == "" {
		p.errorf(n, "%s must not be empty", noun)
		return "", false
	}
	return n.Value, true
}

// defaults are the values a table inherits when it does not set its own.
type defaults struct {
	target             string
	targetPos          Pos
	stream             string
	streamPos          Pos
	onSchemaChange     string
	partitionsDetached string
	keepDropped        bool
}

// mapping decodes the top level. It returns the tables read (also those with
// problems, for the checks that need little) and the ones whose keys are sound,
// for the checks across tables.
func (p *parser) mapping(n *yaml.Node) (*Mapping, []*Table) {
	if !p.isMap(n, "a mapping file", "a map with keys version, defaults and tables") {
		return nil, nil
	}
	m := &Mapping{File: p.file}
	const where = "at the top level"
	f := p.fields(n, where, topKeys)
	p.require(n, f, where, "version", "tables")
	if v, ok := f["version"]; ok {
		p.version(m, v.val)
	}
	var d defaults
	if v, ok := f["defaults"]; ok {
		d = p.defaults(v.val)
	}
	var sound []*Table
	if v, ok := f["tables"]; ok && p.isList(v.val, "tables", "a list of tables") {
		if len(v.val.Content) == 0 {
			p.errorf(v.val, "tables must list at least one table")
		}
		for i, item := range v.val.Content {
			t, ok := p.table(item, i, &d)
			if t != nil {
				m.Tables = append(m.Tables, t)
				if ok {
					sound = append(sound, t)
				}
			}
		}
	}
	if v, ok := f["access_patterns"]; ok {
		m.AccessPatterns = p.accessPatterns(v.val)
	}
	return m, sound
}

func (p *parser) version(m *Mapping, n *yaml.Node) {
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" {
		p.errorf(n, "version must be the number 1, got %s", describe(n))
		return
	}
	if v, err := strconv.ParseInt(n.Value, 0, 64); err != nil || v != 1 {
		p.errorf(n, "unsupported version %s (this ferry reads version 1)", n.Value)
		return
	}
	m.Version = 1
}

func (p *parser) defaults(n *yaml.Node) defaults {
	var d defaults
	if !p.isMap(n, "defaults", "a map with keys target and stream") {
		return d
	}
	f := p.fields(n, "in defaults", defaultKeys)
	if v, ok := f["target"]; ok {
		if s, ok := p.str(v.val, "target in defaults"); ok && p.tableName(v.val, s, "target in defaults") {
			d.target, d.targetPos = s, p.pos(v.val)
		}
	}
	if v, ok := f["stream"]; ok {
		if s, ok := p.str(v.val, "stream in defaults"); ok && p.streamName(v.val, s, "stream in defaults") {
			d.stream, d.streamPos = s, p.pos(v.val)
		}
	}
	if v, ok := f["on_schema_change"]; ok {
		d.onSchemaChange = p.schemaPolicy(v.val, "on_schema_change in defaults")
	}
	if v, ok := f["partitions_detached"]; ok {
		d.partitionsDetached = p.oneOf(v.val, "partitions_detached in defaults", PartitionsDelete, PartitionsKeep)
	}
	if v, ok := f["keep_dropped"]; ok {
		d.keepDropped = p.boolean(v.val, "keep_dropped in defaults")
	}
	return d
}

// boolean reads true or false (false when it is neither).
func (p *parser) boolean(n *yaml.Node, where string) bool {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!bool" {
		if b, err := strconv.ParseBool(n.Value); err == nil {
			return b
		}
	}
	p.errorf(n, "%s must be true or false, not %q", where, n.Value)
	return false
}

// oneOf reads a value that must be one of allowed ("" when it is not).
func (p *parser) oneOf(n *yaml.Node, where string, allowed ...string) string {
	s, ok := p.str(n, where)
	if !ok {
		return ""
	}
	if !slices.Contains(allowed, s) {
		p.errorf(n, "%s must be %s, not %q", where, strings.Join(allowed, " or "), s)
		return ""
	}
	return s
}

// schemaPolicy reads an on_schema_change value ("" when it is not valid).
func (p *parser) schemaPolicy(n *yaml.Node, where string) string {
	s, ok := p.str(n, where)
	if !ok {
		return ""
	}
	if s != SchemaFollow && s != SchemaStop {
		p.errorf(n, "%s must be %s or %s, not %q", where, SchemaFollow, SchemaStop, s)
		return ""
	}
	return s
}

// table decodes one entry of tables (nil when it is not a map). keysOK is true
// when its source, target and keys are sound, whatever else is wrong in it.
func (p *parser) table(n *yaml.Node, i int, d *defaults) (t *Table, keysOK bool) {
	name := fmt.Sprintf("table #%d", i+1)
	if !p.isMap(n, name, "a map with keys source, target, partition_key, …") {
		return nil, false
	}
	for j := 0; j+1 < len(n.Content); j += 2 {
		k, v := n.Content[j], n.Content[j+1]
		if k.Value == "source" && v.Kind == yaml.ScalarNode && v.ShortTag() == "!!str" && v.Value != "" {
			name = fmt.Sprintf("table %q", v.Value)
			break
		}
	}
	where := "in " + name
	t = &Table{Pos: p.pos(n)}
	f := p.fields(n, where, tableKeys)
	// keysOK: source, target and every key parsed, so that the checks across
	// tables can use this table even if something else in it is wrong.
	keysOK = p.require(n, f, where, "source", "partition_key")

	if v, ok := f["source"]; ok {
		if s, ok := p.str(v.val, "source of "+name); ok {
			t.Source, t.SourcePos = s, p.pos(v.val)
			if !t.IsPattern() {
				keysOK = p.sourceName(v.val, s) && keysOK
			}
		}
	}
	switch v, ok := f["target"]; {
	case ok:
		if s, ok := p.str(v.val, "target of "+name); ok && p.tableName(v.val, s, "target of "+name) {
			t.Target, t.TargetPos = s, p.pos(v.val)
		}
	case d.target != "":
		t.Target, t.TargetPos = d.target, d.targetPos
	default:
		p.errorf(n, "missing required key \"target\" %s (and defaults sets no target)", where)
	}
	if v, ok := f["partition_key"]; ok {
		var ok bool
		t.PartitionKey, ok = p.keyAttr(v, "partition_key of "+name)
		keysOK = ok && keysOK
	}
	if v, ok := f["sort_key"]; ok {
		k, ok := p.keyAttr(v, "sort_key of "+name)
		t.SortKey = &k
		keysOK = ok && keysOK
	}
	if v, ok := f["gsis"]; ok {
		before := len(p.errs)
		if p.isList(v.val, "gsis of "+name, "a list of indexes") {
			for j, item := range v.val.Content {
				t.GSIs = append(t.GSIs, p.gsi(item, j, name))
			}
		}
		keysOK = len(p.errs) == before && keysOK
	}
	keysOK = keysOK && t.Source != "" && t.Target != ""
	if v, ok := f["exclude"]; ok && t.IsPattern() {
		t.ExcludeTables = p.excludeTables(v.val, name)
	} else if ok {
		t.Exclude = p.exclude(v.val, name)
	}
	if v, ok := f["types"]; ok {
		t.Types = p.types(v.val, name)
	}
	var sv *kv
	if v, ok := f["stream"]; ok {
		sv = &v
	}
	t.Stream = p.stream(sv, name, d)
	t.OnSchemaChange = d.onSchemaChange
	if v, ok := f["on_schema_change"]; ok {
		t.OnSchemaChange = p.schemaPolicy(v.val, "on_schema_change of "+name)
	}
	if t.OnSchemaChange == "" {
		t.OnSchemaChange = SchemaFollow
	}
	t.PartitionsDetached = d.partitionsDetached
	if v, ok := f["partitions_detached"]; ok {
		t.PartitionsDetached = p.oneOf(v.val, "partitions_detached of "+name, PartitionsDelete, PartitionsKeep)
	}
	if t.PartitionsDetached == "" {
		t.PartitionsDetached = PartitionsDelete
	}
	t.KeepDropped = d.keepDropped
	if v, ok := f["keep_dropped"]; ok {
		t.KeepDropped = p.boolean(v.val, "keep_dropped of "+name)
	}
	for _, ct := range t.Types {
		for _, ex := range t.Exclude {
			if ct.Column == ex.Name {
				p.errs = append(p.errs, Errorf(ct.Pos,
					"column %q %s is excluded (line %d) and also given a type", ct.Column, where, ex.Pos.Line))
			}
		}
	}
	return t, keysOK
}
