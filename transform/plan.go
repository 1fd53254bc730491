package transform

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/ferry-migrate/ferry/extract"
	"github.com/ferry-migrate/ferry/load/ddbjson"
	"github.com/ferry-migrate/ferry/mappings"
)

// Reserved attribute names every item carries.
const (
	AttrTable   = "_table"
	AttrVersion = "_version"
)

// Plan is a mapping compiled against the live source schema.
type Plan struct {
	Mapping *mappings.Mapping
	Tables  []*TablePlan
}

// Table returns the plan of a source table by qualified or bare name, or nil.
func (p *Plan) Table(name string) *TablePlan {
	for _, t := range p.Tables {
		if t.Source.QualifiedName() == name || (t.Source.Schema == "public" && t.Source.Name == name) {
			return t
		}
	}
	return nil
}

// KeyAttr is a key attribute compiled to column indexes.
type KeyAttr struct {
	Name string
	tpl  template
	attr attrName
}

// attrName is an attribute's name in both of an item's forms.
type attrName struct {
	name string // the name (the SDK item's map key)
	wire string // the name as a JSON object key with its colon, for the wire form
}

func newAttrName(name string) attrName {
	return attrName{name: name, wire: string(ddbjson.AppendName(nil, name))}
}

// GSIPlan is a compiled global secondary index.
type GSIPlan struct {
	Name string
	PK   KeyAttr
	SK   *KeyAttr
	when *condition
}

type condition struct {
	col    int
	isNull bool
}

// ColumnPlan is one mapped column.
type ColumnPlan struct {
	Index   int // into the source row
	Name    string
	Type    string // source type as declared
	conv    converter
	jsonKey string // the name as a JSON string and a colon, for records
	attr    attrName
}

// DynamoType is the DynamoDB type letter(s) the column is written as.
func (c ColumnPlan) DynamoType() string {
	if c.conv.arr {
		return "L"
	}
	switch c.conv.conv {
	case mappings.ConvMap:
		return "M (L, S, N, BOOL or NULL for a JSON value that is not an object)"
	case mappings.ConvString:
		return "S"
	case mappings.ConvNumber, mappings.ConvEpochMS:
		if c.conv.kind == extract.KindNumeric {
			return "N (S beyond 38 digits)"
		}
		return "N"
	case mappings.ConvBinary:
		return "B"
	}
	switch c.conv.kind {
	case extract.KindInt, extract.KindFloat, extract.KindMoney:
		return "N"
	case extract.KindNumeric:
		return "N (S beyond 38 digits)"
	case extract.KindBool:
		return "BOOL"
	case extract.KindBytea:
		return "B"
	}
	return "S"
}

// TablePlan is everything needed to turn rows of one source table into items and
// records. It is immutable after Compile and safe for concurrent use.
type TablePlan struct {
	Source  *extract.Table
	Map     *mappings.Table
	Target  string
	Columns []ColumnPlan
	PK      KeyAttr
	SK      *KeyAttr
	GSIs    []GSIPlan
	Stream  string // "" when the table publishes no events
	// Def identifies the mapping text and table definition the plan was
	// compiled from (DefinitionID; "" when the mapping's text is unknown).
	// Records carry it as source.def.
	Def     string
	partKey *template
	all     []converter // converter for every source column (for before/after images)
	hints   encHints    // per-row sizes seen so far (rowEnc)
	// wireTable is the _table attribute in the wire form, with the comma
	// that precedes it: ,"_table":{"S":"rental"}.
	wireTable string
	// templates counts the distinct templates of the table's keys (slots).
	templates int
}

// numberTemplates gives the table's templates of more than a literal their
// slots, one per distinct template (by its text).
func (tp *TablePlan) numberTemplates() {
	slots := map[string]int{}
	number := func(t *template) {
		if len(t.parts) == 1 && t.parts[0].col < 0 {
			return
		}
		n, ok := slots[t.src.Raw]
		if !ok {
			n = len(slots)
			slots[t.src.Raw] = n
		}
		t.slot = n
	}
	number(&tp.PK.tpl)
	if tp.SK != nil {
		number(&tp.SK.tpl)
	}
	for i := range tp.GSIs {
		number(&tp.GSIs[i].PK.tpl)
		if tp.GSIs[i].SK != nil {
			number(&tp.GSIs[i].SK.tpl)
		}
	}
	if tp.partKey != nil {
		number(tp.partKey)
	}
	tp.templates = len(slots)
}

// Compile checks the mapping against the source tables and compiles it. Every
// problem is returned (errors.Join of *mappings.Error), each naming file:line.
func Compile(m *mappings.Mapping, source map[string]*extract.Table) (*Plan, error) {
	var errs []error
	p := &Plan{Mapping: m}
	var clean []*TablePlan // tables without errors of their own
	for _, mt := range m.Tables {
		tp, tErrs := compileTable(mt, source)
		errs = append(errs, tErrs...)
		if tp != nil {
			tp.Def = definitionOf(m, tp.Source)
			p.Tables = append(p.Tables, tp)
			if len(tErrs) == 0 {
				clean = append(clean, tp)
			}
		}
	}
	errs = append(errs, checkSharedTargets(clean)...)
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return p, nil
}

// checkSharedTargets refuses two source tables that write one DynamoDB table
// unless their keys can never be equal: their partition key templates (or
// both sort key templates) must differ in a fixed prefix or suffix, such as
// "RENTAL#{rental_id}" and "PAYMENT#{payment_id}". Otherwise a row of one
// table could overwrite an item of the other.
func checkSharedTargets(tables []*TablePlan) []error {
	var errs []error
	for i, a := range tables {
		for _, b := range tables[i+1:] {
			if a.Target != b.Target {
				continue
			}
			ma, mb := a.Map, b.Map
			if mappings.Disjoint(ma.PartitionKey.Template, mb.PartitionKey.Template) {
				continue
			}
			if ma.SortKey != nil && mb.SortKey != nil && mappings.Disjoint(ma.SortKey.Template, mb.SortKey.Template) {
				continue
			}
			sk := func(t *mappings.Table) string {
				if t.SortKey == nil {
					return "none"
				}
				return quote(t.SortKey.Template.Raw)
			}
			errs = append(errs, mappings.Errorf(mb.PartitionKey.Pos,
				"tables %q and %q both write DynamoDB table %q and their keys can collide (partition keys %s and %s, sort keys %s and %s; %s is at %s): give the partition or sort key of one of them a literal prefix or suffix the other cannot have, e.g. %q",
				a.Source.QualifiedName(), b.Source.QualifiedName(), a.Target,
				quote(ma.PartitionKey.Template.Raw), quote(mb.PartitionKey.Template.Raw), sk(ma), sk(mb),
				a.Source.QualifiedName(), ma.PartitionKey.Pos, strings.ToUpper(b.Source.Name)+"#{…}"))
		}
	}
	return errs
}

func compileTable(mt *mappings.Table, source map[string]*extract.Table) (*TablePlan, []error) {
	qn := mt.SourceSchema() + "." + mt.SourceName()
	st := source[qn]
	if st == nil {
		return nil, []error{mappings.Errorf(mt.SourcePos, "table %q does not exist in the source database%s", mt.Source, suggest(mt.SourceName(), sourceNames(source)))}
	}
	var errs []error
	errf := func(pos mappings.Pos, format string, args ...any) {
		errs = append(errs, mappings.Errorf(pos, format, args...))
	}
	colNames := make([]string, len(st.Columns))
	for i, c := range st.Columns {
		colNames[i] = c.Name
	}
	lookup := func(name string, pos mappings.Pos, what string) int {
		i := st.ColumnIndex(name)
		if i < 0 {
			errf(pos, "%s names column %q, which table %q does not have%s", what, name, qn, suggest(name, colNames))
		}
		return i
	}
	tp := &TablePlan{Source: st, Map: mt, Target: mt.Target}
	if len(st.PK) == 0 {
		errf(mt.SourcePos, "table %q has no primary key: ferry needs one to identify rows (add a primary key)", qn)
	}
	excluded := map[string]bool{}
	for _, ex := range mt.Exclude {
		if lookup(ex.Name, ex.Pos, "exclude") >= 0 {
			excluded[ex.Name] = true
		}
		for _, k := range st.PKNames() {
			if k == ex.Name {
				errf(ex.Pos, "primary key column %q of %q cannot be excluded", k, qn)
			}
		}
	}
	convs := map[string]mappings.Conversion{}
	for _, ct := range mt.Types {
		i := lookup(ct.Column, ct.Pos, "types")
		if i < 0 {
			continue
		}
		if err := checkConversion(st.Columns[i], ct.Conv); err != nil {
			errf(ct.Pos, "column %q: %v", ct.Column, err)
		}
		convs[ct.Column] = ct.Conv
	}
	tp.all = make([]converter, len(st.Columns))
	for i, c := range st.Columns {
		conv := convs[c.Name]
		if conv == "" {
			conv = mappings.ConvAuto
		}
		tp.all[i] = converter{name: c.Name, kind: c.Kind, arr: c.Array, conv: conv}
		if excluded[c.Name] {
			continue
		}
		tp.Columns = append(tp.Columns, ColumnPlan{Index: i, Name: c.Name, Type: c.Type, conv: tp.all[i],
			jsonKey: string(append(appendJSONString(nil, c.Name), ':')), attr: newAttrName(c.Name)})
	}
	tp.wireTable = string(ddbjson.AppendS(ddbjson.AppendName([]byte(","), AttrTable), st.Name))
	compileKey := func(k mappings.KeyAttr) KeyAttr {
		return KeyAttr{Name: k.Name, tpl: compileTemplate(k.Template, st, tp.all, lookup), attr: newAttrName(k.Name)}
	}
	tp.PK = compileKey(mt.PartitionKey)
	if mt.SortKey != nil {
		sk := compileKey(*mt.SortKey)
		tp.SK = &sk
	}
	for _, g := range mt.GSIs {
		gp := GSIPlan{Name: g.Name, PK: compileKey(g.PartitionKey)}
		if g.SortKey != nil {
			sk := compileKey(*g.SortKey)
			gp.SK = &sk
		}
		if g.When != nil {
			if i := lookup(g.When.Column, g.When.Pos, "when"); i >= 0 {
				gp.when = &condition{col: i, isNull: g.When.IsNull}
			}
		}
		tp.GSIs = append(tp.GSIs, gp)
	}
	// The item key must identify the row: every primary key column in pk or sk.
	inKey := map[string]bool{}
	for _, c := range mt.PartitionKey.Template.Columns() {
		inKey[c] = true
	}
	if mt.SortKey != nil {
		for _, c := range mt.SortKey.Template.Columns() {
			inKey[c] = true
		}
	}
	for _, k := range st.PKNames() {
		if !inKey[k] {
			errf(mt.PartitionKey.Pos, "key templates of %q do not use primary key column %q: two rows could write one item (add {%s} to the partition or sort key)", qn, k, k)
		}
	}
	reserved := map[string]string{AttrTable: "reserved", AttrVersion: "reserved", mt.PartitionKey.Name: "the partition key"}
	if mt.SortKey != nil {
		reserved[mt.SortKey.Name] = "the sort key"
	}
	for _, g := range mt.GSIs {
		reserved[g.PartitionKey.Name] = "a key of index " + g.Name
		if g.SortKey != nil {
			reserved[g.SortKey.Name] = "a key of index " + g.Name
		}
	}
	for _, c := range tp.Columns {
		if what, ok := reserved[c.Name]; ok {
			errf(mt.Pos, "column %q of %q has the same name as %s attribute; rename the key attribute or exclude the column", c.Name, qn, what)
		}
	}
	if mt.Stream != nil {
		tp.Stream = mt.Stream.Name
		if mt.Stream.PartitionKey != nil {
			t := compileTemplate(*mt.Stream.PartitionKey, st, tp.all, lookup)
			tp.partKey = &t
		}
	}
	tp.numberTemplates()
	return tp, errs
}

func checkConversion(c extract.Column, conv mappings.Conversion) error {
	if conv == mappings.ConvMap {
		if c.Kind != extract.KindJSON {
			return fmt.Errorf("cannot convert %s to map: only a json or jsonb column holds a JSON document", c.Type)
		}
		if c.Array {
			return fmt.Errorf("%s is an array: map applies to a json or jsonb column, not to the elements of an array (keep it auto: a list of the JSON texts as S)", c.Type)
		}
		return nil
	}
	if c.Array && conv != mappings.ConvAuto && conv != mappings.ConvString {
		return fmt.Errorf("%s is an array: only auto or string conversions apply to its elements", c.Type)
	}
	switch conv {
	case mappings.ConvAuto, mappings.ConvString:
		return nil
	case mappings.ConvNumber:
		switch c.Kind {
		case extract.KindInt, extract.KindNumeric, extract.KindFloat, extract.KindBool, extract.KindMoney:
			return nil
		}
	case mappings.ConvEpochMS:
		switch c.Kind {
		case extract.KindDate, extract.KindTimestamp, extract.KindTimestampTZ:
			return nil
		}
	case mappings.ConvBinary:
		if c.Kind == extract.KindBytea {
			return nil
		}
	}
	return fmt.Errorf("cannot convert %s to %s", c.Type, conv)
}

func sourceNames(source map[string]*extract.Table) []string {
	out := make([]string, 0, len(source))
	for _, t := range source {
		out = append(out, t.Name, t.QualifiedName())
	}
	sort.Strings(out)
	return out
}

// suggest returns ` (did you mean "x"?)` for the closest candidate, if close.
func suggest(name string, candidates []string) string {
	best, bestD := "", 1<<30
	for _, c := range candidates {
		if d := editDistance(name, c); d < bestD {
			best, bestD = c, d
		}
	}
	if best != "" && bestD <= max(2, len(name)/3) {
		return fmt.Sprintf(" (did you mean %q?)", best)
	}
	return ""
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// Targets describes the DynamoDB tables a plan writes: key attribute names and
// GSIs, merged over the source tables that share a target.
type Targets map[string]*TargetSpec

// TargetSpec is one DynamoDB table's key design.
type TargetSpec struct {
	Name string
	PK   string
	SK   string
	GSIs map[string][2]string // index name → partition, sort attribute
}

// Targets returns the DynamoDB tables the plan writes.
func (p *Plan) Targets() Targets {
	out := Targets{}
	for _, t := range p.Tables {
		ts := out[t.Target]
		if ts == nil {
			ts = &TargetSpec{Name: t.Target, PK: t.PK.Name, GSIs: map[string][2]string{}}
			if t.SK != nil {
				ts.SK = t.SK.Name
			}
			out[t.Target] = ts
		}
		for _, g := range t.GSIs {
			k := [2]string{g.PK.Name, ""}
			if g.SK != nil {
				k[1] = g.SK.Name
			}
			ts.GSIs[g.Name] = k
		}
	}
	return out
}

// Streams returns the Kinesis streams the plan publishes to, sorted.
func (p *Plan) Streams() []string {
	seen := map[string]bool{}
	var out []string
	for _, t := range p.Tables {
		if t.Stream != "" && !seen[t.Stream] {
			seen[t.Stream] = true
			out = append(out, t.Stream)
		}
	}
	sort.Strings(out)
	return out
}

// Names returns the source tables of the plan, qualified, in mapping order.
func (p *Plan) Names() []string {
	out := make([]string, len(p.Tables))
	for i, t := range p.Tables {
		out[i] = t.Source.QualifiedName()
	}
	return out
}

// Restrict keeps only the named tables (bare or qualified names).
func (p *Plan) Restrict(names []string) (*Plan, error) {
	q := &Plan{Mapping: p.Mapping}
	var missing []string
	for _, n := range names {
		t := p.Table(strings.TrimSpace(n))
		if t == nil {
			missing = append(missing, n)
			continue
		}
		q.Tables = append(q.Tables, t)
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("--tables: %s not in the mapping (mapped: %s)", strings.Join(missing, ", "), strings.Join(p.Names(), ", "))
	}
	return q, nil
}
