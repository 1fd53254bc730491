package mappings

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"

	"gopkg.in/yaml.v3"
)

// AccessPattern is one of the application's reads, as the SQL it runs on
// the source today and the DynamoDB call that replaces it (`ferry shadow`
// runs both and compares the answers).
//
//	access_patterns:
//	  - name: customer_rentals
//	    description: a customer's rentals, newest first
//	    params: [c]
//	    sample: "SELECT customer_id FROM customer"
//	    sql:
//	      - {table: rental, query: "SELECT * FROM rental WHERE customer_id = {c} ORDER BY rental_date DESC, rental_id DESC"}
//	    dynamodb:
//	      index: gsi1
//	      key: {gsi1pk: "CUSTOMER#{c}"}
//	      sort: {gsi1sk: {begins_with: "RENTAL#"}}
//	      order: desc
//
// Placeholders {name} of params are filled with values the sample query
// returns (one column per param, in order): in the SQL as quoted literals,
// in the key templates as text. A call with the table's whole key and no
// index is a GetItem; otherwise a Query.
type AccessPattern struct {
	Name, Description string
	Params            []string
	Sample            string
	SQL               []PatternSQL
	Call              PatternCall
	Pos               Pos
}

// PatternSQL is one statement of a pattern: rows of one mapped table.
type PatternSQL struct {
	Table, Query string
	Pos          Pos
}

// PatternCall is the DynamoDB side of a pattern.
type PatternCall struct {
	Index    string // "" for the table itself
	KeyAttr  string
	Key      Template
	SortAttr string
	SortOp   string     // "" (none), eq, begins_with, between, lt, le, gt, ge
	Sort     []Template // one value, two for between
	Desc     bool
	Limit    int
	Pos      Pos
}

// The sort key conditions of a Query.
var sortOps = []string{"eq", "begins_with", "between", "lt", "le", "gt", "ge"}

var (
	accessKeys  = []string{"name", "description", "params", "sample", "sql", "dynamodb"}
	sqlKeys     = []string{"table", "query"}
	callKeys    = []string{"index", "key", "sort", "order", "limit"}
	patternName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*$`)
)

// accessPatterns decodes the top-level access_patterns list.
func (p *parser) accessPatterns(n *yaml.Node) []*AccessPattern {
	if !p.isList(n, "access_patterns", "a list of access patterns") {
		return nil
	}
	var out []*AccessPattern
	for i, item := range n.Content {
		if ap := p.accessPattern(item, i); ap != nil {
			out = append(out, ap)
		}
	}
	return out
}

func (p *parser) accessPattern(n *yaml.Node, i int) *AccessPattern {
	where := fmt.Sprintf("in access pattern #%d", i+1)
	if !p.isMap(n, "access pattern", "a map with keys name, params, sample, sql and dynamodb") {
		return nil
	}
	ap := &AccessPattern{Pos: p.pos(n)}
	f := p.fields(n, where, accessKeys)
	if !p.require(n, f, where, "name", "sql", "dynamodb") {
		return nil
	}
	if s, ok := p.str(f["name"].val, "name "+where); ok {
		if !patternName.MatchString(s) {
			p.errorf(f["name"].val, "access pattern name %q: use lower-case letters, digits, _ and -", s)
		}
		ap.Name = s
		where = fmt.Sprintf("in access pattern %q", s)
	}
	if v, ok := f["description"]; ok {
		ap.Description, _ = p.str(v.val, "description "+where)
	}
	if v, ok := f["params"]; ok && p.isList(v.val, "params "+where, "a list of parameter names") {
		for _, pn := range v.val.Content {
			if s, ok := p.str(pn, "a param "+where); ok {
				if !isIdent(s) || slices.Contains(ap.Params, s) {
					p.errorf(pn, "param %q %s: a plain name, once", s, where)
				}
				ap.Params = append(ap.Params, s)
			}
		}
	}
	if v, ok := f["sample"]; ok {
		ap.Sample, _ = p.str(v.val, "sample "+where)
	}
	if len(ap.Params) > 0 && ap.Sample == "" {
		p.errorf(n, "access pattern %q has params but no sample query to draw their values from", ap.Name)
	}
	if v := f["sql"].val; p.isList(v, "sql "+where, "a list of {table, query}") {
		for _, s := range v.Content {
			if !p.isMap(s, "sql "+where, "a map with keys table and query") {
				continue
			}
			sf := p.fields(s, "in sql "+where, sqlKeys)
			if !p.require(s, sf, "in sql "+where, "table", "query") {
				continue
			}
			st := PatternSQL{Pos: p.pos(s)}
			st.Table, _ = p.str(sf["table"].val, "table of sql "+where)
			st.Query, _ = p.str(sf["query"].val, "query of sql "+where)
			p.checkPlaceholders(sf["query"].val, st.Query, ap.Params, where)
			ap.SQL = append(ap.SQL, st)
		}
	}
	ap.Call = p.patternCall(f["dynamodb"].val, where, ap.Params)
	return ap
}

var placeholder = regexp.MustCompile(`\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// checkPlaceholders reports {name}s in text that are not params.
func (p *parser) checkPlaceholders(n *yaml.Node, text string, params []string, where string) {
	for _, m := range placeholder.FindAllStringSubmatch(text, -1) {
		if !slices.Contains(params, m[1]) {
			p.errorf(n, "{%s} %s is not one of its params (%s)", m[1], where, quoteList(params))
		}
	}
}

func (p *parser) patternCall(n *yaml.Node, where string, params []string) PatternCall {
	c := PatternCall{Pos: p.pos(n)}
	where = "dynamodb " + where
	if !p.isMap(n, where, "a map with keys index, key, sort, order and limit") {
		return c
	}
	f := p.fields(n, "in "+where, callKeys)
	if !p.require(n, f, "in "+where, "key") {
		return c
	}
	if v, ok := f["index"]; ok {
		c.Index, _ = p.str(v.val, "index "+where)
	}
	template := func(v *yaml.Node, noun string) (Template, bool) {
		s, ok := p.str(v, noun)
		if !ok {
			return Template{}, false
		}
		t, err := ParseTemplate(s, p.pos(v))
		if err != nil {
			p.errorf(v, "%s: %v", noun, err)
			return Template{}, false
		}
		for _, col := range t.Columns() {
			if !slices.Contains(params, col) {
				p.errorf(v, "%s: {%s} is not one of the pattern's params (%s)", noun, col, quoteList(params))
			}
		}
		return t, true
	}
	if v := f["key"].val; p.isMap(v, "key "+where, "a map of one key attribute to its value") {
		if len(v.Content) != 2 {
			p.errorf(v, "key %s must name exactly one attribute (the partition key)", where)
		} else {
			c.KeyAttr = v.Content[0].Value
			c.Key, _ = template(v.Content[1], "key "+c.KeyAttr+" "+where)
		}
	}
	if v, ok := f["sort"]; ok && p.isMap(v.val, "sort "+where, "a map of the sort key attribute to its condition") {
		if len(v.val.Content) != 2 {
			p.errorf(v.val, "sort %s must name exactly one attribute (the sort key)", where)
		} else {
			c.SortAttr = v.val.Content[0].Value
			cond := v.val.Content[1]
			noun := "sort " + c.SortAttr + " " + where
			switch {
			case cond.Kind == yaml.ScalarNode:
				c.SortOp = "eq"
				if t, ok := template(cond, noun); ok {
					c.Sort = []Template{t}
				}
			case p.isMap(cond, noun, "a value or {op: value}: "+quoteList(sortOps)) && len(cond.Content) == 2:
				c.SortOp = cond.Content[0].Value
				if !slices.Contains(sortOps, c.SortOp) {
					p.errorf(cond.Content[0], "%s: unknown condition %q (known: %s)", noun, c.SortOp, quoteList(sortOps))
					break
				}
				val := cond.Content[1]
				if c.SortOp == "between" {
					if !p.isList(val, noun, "a list of two values") || len(val.Content) != 2 {
						p.errorf(val, "%s: between takes two values", noun)
						break
					}
					for _, b := range val.Content {
						if t, ok := template(b, noun); ok {
							c.Sort = append(c.Sort, t)
						}
					}
				} else if t, ok := template(val, noun); ok {
					c.Sort = []Template{t}
				}
			default:
				p.errorf(cond, "%s must be a value or one condition", noun)
			}
		}
	}
	if v, ok := f["order"]; ok {
		switch s, _ := p.str(v.val, "order "+where); s {
		case "asc":
		case "desc":
			c.Desc = true
		default:
			p.errorf(v.val, "order %s must be asc or desc, not %q", where, s)
		}
	}
	if v, ok := f["limit"]; ok {
		s, _ := p.str(v.val, "limit "+where)
		if l, err := strconv.Atoi(s); err != nil || l < 1 {
			p.errorf(v.val, "limit %s must be a positive number, not %q", where, s)
		} else {
			c.Limit = l
		}
	}
	return c
}

// IsGet reports whether the call is a GetItem: the table's key, no index,
// the sort key (if any) compared for equality.
func (c *PatternCall) IsGet() bool {
	return c.Index == "" && (c.SortOp == "" || c.SortOp == "eq") && c.Limit == 0 && !c.Desc
}

// checkAccessPatterns checks the patterns against the tables: the tables
// they read are mapped and share one target, the index exists there, and
// the key conditions name that index's key attributes.
func checkAccessPatterns(aps []*AccessPattern, tables []*Table) []*Error {
	var errs []*Error
	seen := map[string]*AccessPattern{}
	byName := map[string]*Table{}
	for _, t := range tables {
		byName[t.SourceSchema()+"."+t.SourceName()] = t
		byName[t.Source] = t
	}
	for _, ap := range aps {
		if f, dup := seen[ap.Name]; dup {
			errs = append(errs, Errorf(ap.Pos, "access pattern %q is declared twice (first at line %d)", ap.Name, f.Pos.Line))
			continue
		}
		seen[ap.Name] = ap
		var target string
		var mapped []*Table
		for _, s := range ap.SQL {
			t := byName[s.Table]
			if t == nil {
				schema, name := splitSource(s.Table)
				t = byName[schema+"."+name]
			}
			if t == nil {
				// Not an error: a mapping cut down to some tables keeps its
				// patterns; ferry shadow skips those that read other tables.
				continue
			}
			if target != "" && t.Target != target {
				errs = append(errs, Errorf(s.Pos, "access pattern %q reads tables of two DynamoDB tables (%s and %s): one call reads one table", ap.Name, target, t.Target))
			}
			target = t.Target
			mapped = append(mapped, t)
		}
		if len(mapped) == 0 {
			continue
		}
		c := &ap.Call
		pk, sk := mapped[0].PartitionKey.Name, ""
		if mapped[0].SortKey != nil {
			sk = mapped[0].SortKey.Name
		}
		if c.Index != "" {
			found := false
			for _, t := range tables {
				if t.Target != target {
					continue
				}
				for _, g := range t.GSIs {
					if g.Name == c.Index {
						found, pk, sk = true, g.PartitionKey.Name, ""
						if g.SortKey != nil {
							sk = g.SortKey.Name
						}
					}
				}
			}
			if !found {
				errs = append(errs, Errorf(c.Pos, "access pattern %q queries index %q, which DynamoDB table %q does not have", ap.Name, c.Index, target))
				continue
			}
		}
		on := "table " + target
		if c.Index != "" {
			on = "index " + c.Index
		}
		if c.KeyAttr != "" && c.KeyAttr != pk {
			errs = append(errs, Errorf(c.Key.Pos, "access pattern %q: key condition on %q, which is not the partition key of %s (%q)", ap.Name, c.KeyAttr, on, pk))
		}
		if c.SortAttr != "" && c.SortAttr != sk {
			errs = append(errs, Errorf(c.Pos, "access pattern %q: sort condition on %q, which is not the sort key of %s (%q)", ap.Name, c.SortAttr, on, sk))
		}
	}
	return errs
}
