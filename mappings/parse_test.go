package mappings

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// TestBadMappings parses every testdata/bad/NAME.yaml and compares the error
// text with testdata/bad/NAME.golden (go test -run TestBadMappings -update
// rewrites them).
func TestBadMappings(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "bad", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 12 {
		t.Fatalf("only %d bad mappings under testdata/bad", len(files))
	}
	for _, path := range files {
		name := strings.TrimSuffix(filepath.Base(path), ".yaml")
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			m, err := Parse(filepath.Base(path), data)
			if err == nil {
				t.Fatalf("Parse succeeded, want an error")
			}
			if m != nil {
				t.Errorf("Parse returned a Mapping with its error")
			}
			errs := Errors(err)
			if len(errs) == 0 {
				t.Fatalf("no *Error in %v", err)
			}
			lines := strings.Split(err.Error(), "\n")
			if len(errs) != len(lines) {
				t.Errorf("%d *Error values, %d lines of text", len(errs), len(lines))
			}
			for i, e := range errs {
				if e.Pos.File != filepath.Base(path) {
					t.Errorf("error %d: file %q", i, e.Pos.File)
				}
				if e.Pos.Line == 0 && name != "empty" {
					t.Errorf("error %d has no line: %v", i, e)
				}
				if i > 0 && e.Pos.Line < errs[i-1].Pos.Line {
					t.Errorf("errors not in line order: %v before %v", errs[i-1], e)
				}
			}
			var first *Error
			if !errors.As(err, &first) {
				t.Errorf("errors.As(*Error) fails on %v", err)
			}
			golden := strings.TrimSuffix(path, ".yaml") + ".golden"
			got := err.Error() + "\n"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("error text differs from %s\n got:\n%s\nwant:\n%s", golden, got, want)
			}
		})
	}
}

func TestGoodMappings(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "good", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	files = append(files, "pagila.yaml")
	for _, path := range files {
		t.Run(filepath.Base(path), func(t *testing.T) {
			m, err := Load(path)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if err := m.Validate(); err != nil {
				t.Errorf("Validate: %v", err)
			}
			if m.File != path || m.Version != 1 {
				t.Errorf("File %q Version %d", m.File, m.Version)
			}
		})
	}
}

func TestExample(t *testing.T) {
	m, err := Load(filepath.Join("testdata", "good", "example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	const f = "testdata/good/example.yaml"
	if len(m.Tables) != 4 {
		t.Fatalf("%d tables", len(m.Tables))
	}
	c := m.Table("public.customer")
	if c == nil || c != m.Table("customer") {
		t.Fatalf("Table(customer) = %v", c)
	}
	if c.Source != "customer" || c.SourcePos != (Pos{f, 6, 13}) || c.Pos != (Pos{f, 6, 5}) {
		t.Errorf("source %q at %v, table at %v", c.Source, c.SourcePos, c.Pos)
	}
	if c.Target != "pagila" || c.TargetPos.Line != 7 {
		t.Errorf("target %q at %v", c.Target, c.TargetPos)
	}
	wantPK := KeyAttr{Name: "pk", Pos: Pos{f, 8, 5}, Template: Template{
		Raw: "CUSTOMER#{customer_id}", Pos: Pos{f, 8, 41},
		Parts: []Part{{Literal: "CUSTOMER#"}, {Column: "customer_id"}},
	}}
	if !reflect.DeepEqual(c.PartitionKey, wantPK) {
		t.Errorf("partition key\n got %+v\nwant %+v", c.PartitionKey, wantPK)
	}
	if c.SortKey == nil || c.SortKey.Name != "sk" || c.SortKey.Template.Prefix() != "PROFILE" {
		t.Errorf("sort key %+v", c.SortKey)
	}
	if len(c.GSIs) != 1 {
		t.Fatalf("gsis %+v", c.GSIs)
	}
	g := c.GSIs[0]
	if g.Name != "gsi1" || g.Pos.Line != 11 || g.PartitionKey.Name != "gsi1pk" || g.SortKey == nil ||
		!reflect.DeepEqual(g.SortKey.Template.Columns(), []string{"last_name", "customer_id"}) {
		t.Errorf("gsi %+v", g)
	}
	if g.When == nil || *g.When != (Condition{Column: "email", IsNull: false, Pos: Pos{f, 14, 15}}) {
		t.Errorf("when %+v", g.When)
	}
	if !reflect.DeepEqual(c.Exclude, []Name{{"activebool", Pos{f, 15, 15}}}) {
		t.Errorf("exclude %+v", c.Exclude)
	}
	wantTypes := []ColumnType{{"create_date", ConvEpochMS, Pos{f, 16, 13}}, {"active", ConvNumber, Pos{f, 16, 36}}}
	if !reflect.DeepEqual(c.Types, wantTypes) {
		t.Errorf("types %+v", c.Types)
	}
	if c.Stream == nil || c.Stream.Name != "pagila-changes" || c.Stream.PartitionKey == nil ||
		c.Stream.PartitionKey.Raw != "customer#{customer_id}" {
		t.Errorf("stream %+v", c.Stream)
	}

	r := m.Table("rental")
	if r == nil || r.SourceSchema() != "public" || r.Target != "pagila" || r.TargetPos.Line != 3 || r.Stream != nil {
		t.Errorf("rental %+v", r)
	}
	p := m.Table("payment")
	if p.Stream == nil || p.Stream.Name != "other-stream" || p.Stream.PartitionKey != nil {
		t.Errorf("payment stream %+v", p.Stream)
	}
	if p.PartitionKey.Pos.Line != 23 || p.PartitionKey.Template.Pos.Line != 25 || p.SortKey.Template.Raw != "PAYMENT#{payment_date}#{payment_id}" {
		t.Errorf("payment keys %+v %+v", p.PartitionKey, p.SortKey)
	}
	s := m.Table("store")
	if s.Target != "stores" || s.SortKey != nil || s.PartitionKey.Template.Prefix() != "{literal}#" {
		t.Errorf("store %+v", s)
	}
	if s.Stream == nil || s.Stream.Name != "pagila-changes" || s.Stream.PartitionKey.Raw != "store:{store_id}" {
		t.Errorf("store stream %+v", s.Stream)
	}
}

func TestPagila(t *testing.T) {
	m, err := Load("pagila.yaml")
	if err != nil {
		t.Fatal(err)
	}
	// The 15 tables of Pagila; payment's monthly partitions are not mapped.
	want := []string{"actor", "address", "category", "city", "country", "customer", "film", "film_actor",
		"film_category", "inventory", "language", "payment", "rental", "staff", "store"}
	var got []string
	for _, tb := range m.Tables {
		got = append(got, tb.Source)
	}
	if len(got) != len(want) {
		t.Fatalf("tables %v", got)
	}
	for _, w := range want {
		if m.Table(w) == nil {
			t.Errorf("table %s not mapped", w)
		}
	}
	// Every primary key column appears in pk or sk, so rows never share an item.
	primary := map[string][]string{
		"actor": {"actor_id"}, "address": {"address_id"}, "category": {"category_id"}, "city": {"city_id"},
		"country": {"country_id"}, "customer": {"customer_id"}, "film": {"film_id"},
		"film_actor": {"actor_id", "film_id"}, "film_category": {"film_id", "category_id"},
		"inventory": {"inventory_id"}, "language": {"language_id"}, "payment": {"payment_date", "payment_id"},
		"rental": {"rental_id"}, "staff": {"staff_id"}, "store": {"store_id"},
	}
	for _, tb := range m.Tables {
		if tb.Target != "pagila" || tb.PartitionKey.Name != "pk" || tb.SortKey == nil || tb.SortKey.Name != "sk" {
			t.Errorf("%s: target %q keys %q/%v", tb.Source, tb.Target, tb.PartitionKey.Name, tb.SortKey)
			continue
		}
		if tb.Stream == nil || tb.Stream.Name != "pagila-changes" || tb.Stream.PartitionKey != nil {
			t.Errorf("%s: stream %+v", tb.Source, tb.Stream)
		}
		cols := map[string]bool{}
		for _, c := range append(tb.PartitionKey.Template.Columns(), tb.SortKey.Template.Columns()...) {
			cols[c] = true
		}
		for _, c := range primary[tb.Source] {
			if !cols[c] {
				t.Errorf("%s: primary key column %s is not in pk/sk", tb.Source, c)
			}
		}
		for _, g := range tb.GSIs {
			wantPK, wantSK := g.Name+"pk", g.Name+"sk"
			if g.PartitionKey.Name != wantPK || g.SortKey == nil || g.SortKey.Name != wantSK {
				t.Errorf("%s: gsi %s attributes %s", tb.Source, g.Name, gsiAttrs(&g))
			}
		}
		if len(tb.Types) != 0 {
			t.Errorf("%s: types %v", tb.Source, tb.Types)
		}
		wantExclude := 0
		if tb.Source == "film" {
			wantExclude = 1
			if tb.Exclude[0].Name != "fulltext" {
				t.Errorf("film excludes %v", tb.Exclude)
			}
		}
		if len(tb.Exclude) != wantExclude {
			t.Errorf("%s: exclude %v", tb.Source, tb.Exclude)
		}
	}
	open := m.Table("rental").GSIs[1]
	if open.Name != "gsi2" || open.When == nil || open.When.Column != "return_date" || !open.When.IsNull {
		t.Errorf("open rentals index %+v", open)
	}
}

func TestParseTemplate(t *testing.T) {
	pos := Pos{File: "f.yaml", Line: 3}
	L := func(s string) Part { return Part{Literal: s} }
	C := func(s string) Part { return Part{Column: s} }
	tests := []struct {
		raw     string
		parts   []Part
		prefix  string
		columns []string
		err     string
	}{
		{raw: "PROFILE", parts: []Part{L("PROFILE")}, prefix: "PROFILE"},
		{raw: "CUSTOMER#{customer_id}", parts: []Part{L("CUSTOMER#"), C("customer_id")}, prefix: "CUSTOMER#", columns: []string{"customer_id"}},
		{raw: "{rental_date}#{rental_id}", parts: []Part{C("rental_date"), L("#"), C("rental_id")}, prefix: "", columns: []string{"rental_date", "rental_id"}},
		{raw: "{a}{b}", parts: []Part{C("a"), C("b")}, columns: []string{"a", "b"}},
		{raw: "{{literal}}", parts: []Part{L("{literal}")}, prefix: "{literal}"},
		{raw: "{{{id}}}", parts: []Part{L("{"), C("id"), L("}")}, prefix: "{", columns: []string{"id"}},
		{raw: "A{{B#{x}#}}", parts: []Part{L("A{B#"), C("x"), L("#}")}, prefix: "A{B#", columns: []string{"x"}},
		{raw: "X#{_a$1}", parts: []Part{L("X#"), C("_a$1")}, prefix: "X#", columns: []string{"_a$1"}},
		{raw: "Ü#{bıgınt}", parts: []Part{L("Ü#"), C("bıgınt")}, prefix: "Ü#", columns: []string{"bıgınt"}},
		{raw: "", err: `f.yaml:3: empty template`},
		{raw: "A#{id", err: `f.yaml:3: bad template "A#{id": unclosed "{" at offset 2 (write "{{" for a literal brace)`},
		{raw: "A#{}", err: `f.yaml:3: bad template "A#{}": empty placeholder "{}" at offset 2`},
		{raw: "A}", err: `f.yaml:3: bad template "A}": unbalanced "}" at offset 1 (write "}}" for a literal brace)`},
		{raw: "}}}", err: `f.yaml:3: bad template "}}}": unbalanced "}" at offset 2 (write "}}" for a literal brace)`},
		{raw: "{a b}", err: `f.yaml:3: bad template "{a b}": placeholder {a b} is not a plain column name (a letter or _ followed by letters, digits, _ or $; quote any other name: {"a b"})`},
		{raw: "{1a}", err: `f.yaml:3: bad template "{1a}": placeholder {1a} is not a plain column name (a letter or _ followed by letters, digits, _ or $; quote any other name: {"1a"})`},
		{raw: "{a{b}", err: `f.yaml:3: bad template "{a{b}": placeholder {a{b} is not a plain column name (a letter or _ followed by letters, digits, _ or $; quote any other name: {"a{b"})`},
		// Quoted placeholders name any column, as SQL's quoted identifiers do.
		{raw: "{\"a\"}", parts: []Part{C("a")}, columns: []string{"a"}},
		{raw: "ORDER#{\"Order ID\"}", parts: []Part{L("ORDER#"), C("Order ID")}, prefix: "ORDER#", columns: []string{"Order ID"}},
		{raw: "{\"a-b\"}#{\"x\"\"y\"}", parts: []Part{C("a-b"), L("#"), C(`x"y`)}, columns: []string{"a-b", `x"y`}},
		{raw: "{\"}{\"}#{{x}}", parts: []Part{C("}{"), L("#{x}")}, columns: []string{"}{"}},
		{raw: "{\"ünï cödé\"}", parts: []Part{C("ünï cödé")}, columns: []string{"ünï cödé"}},
		{raw: "{\"\"}", err: `f.yaml:3: bad template "{\"\"}": placeholder at offset 0: empty quoted name ""`},
		{raw: "A{\"ab}", err: `f.yaml:3: bad template "A{\"ab}": placeholder at offset 1: unclosed quote in "\"ab}" (write "" for a quote inside a quoted name)`},
		{raw: "{\"a\"b}", err: `f.yaml:3: bad template "{\"a\"b}": quoted placeholder at offset 0 must end with "}" right after its closing quote`},
		{raw: "{\"a\"", err: `f.yaml:3: bad template "{\"a\"": quoted placeholder at offset 0 must end with "}" right after its closing quote`},
	}
	for _, tt := range tests {
		t.Run(tt.raw, func(t *testing.T) {
			got, err := ParseTemplate(tt.raw, pos)
			if tt.err != "" {
				var e *Error
				if err == nil || !errors.As(err, &e) || err.Error() != tt.err {
					t.Fatalf("error %v, want %s", err, tt.err)
				}
				if e.Pos != pos {
					t.Errorf("error at %v", e.Pos)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Raw != tt.raw || got.Pos != pos || !reflect.DeepEqual(got.Parts, tt.parts) {
				t.Errorf("got %+v, want parts %+v", got, tt.parts)
			}
			if got.Prefix() != tt.prefix {
				t.Errorf("Prefix() = %q, want %q", got.Prefix(), tt.prefix)
			}
			if !reflect.DeepEqual(got.Columns(), tt.columns) {
				t.Errorf("Columns() = %v, want %v", got.Columns(), tt.columns)
			}
		})
	}
}

func TestParseCondition(t *testing.T) {
	tests := []struct {
		in   string
		want Condition
		ok   bool
	}{
		{"return_date IS NULL", Condition{Column: "return_date", IsNull: true}, true},
		{"return_date is not null", Condition{Column: "return_date"}, true},
		{"  email Is  NoT\tNuLl ", Condition{Column: "email"}, true},
		{"return_date = NULL", Condition{}, false},
		{"return_date IS NOT", Condition{}, false},
		{"return_date ISNULL", Condition{}, false},
		{"a.b IS NULL", Condition{}, false},
		{"IS NULL", Condition{}, false},
		{"x IS NOT NOT NULL", Condition{}, false},
	}
	for _, tt := range tests {
		got, ok := parseCondition(tt.in)
		if ok != tt.ok || got != tt.want {
			t.Errorf("parseCondition(%q) = %+v, %v; want %+v, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func TestSuggest(t *testing.T) {
	tests := []struct{ in, want string }{
		{"partiton_key", "; did you mean partition_key?"},
		{"sortkey", "; did you mean sort_key?"},
		{"Source", "; did you mean source?"},
		{"gsi", "; did you mean gsis?"},
		{"colour", ""},
		{"x", ""},
	}
	for _, tt := range tests {
		if got := suggest(tt.in, tableKeys); got != tt.want {
			t.Errorf("suggest(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestValidateBuilt checks Validate on mappings built in code, as other
// packages' tests do.
func TestValidateBuilt(t *testing.T) {
	tmpl := func(raw string, line int) Template {
		tp, err := ParseTemplate(raw, Pos{File: "m", Line: line})
		if err != nil {
			t.Fatal(err)
		}
		return tp
	}
	table := func(source string, line int, pk, sk string) *Table {
		tb := &Table{Source: source, SourcePos: Pos{"m", line, 1}, Target: "t", Pos: Pos{"m", line, 1},
			PartitionKey: KeyAttr{Name: "pk", Template: tmpl(pk, line), Pos: Pos{"m", line, 1}}}
		if sk != "" {
			tb.SortKey = &KeyAttr{Name: "sk", Template: tmpl(sk, line), Pos: Pos{"m", line, 1}}
		}
		return tb
	}
	good := &Mapping{File: "m", Version: 1, Tables: []*Table{
		table("film", 1, "FILM#{film_id}", "FILM"),
		table("film_actor", 2, "FILM#{film_id}", "ACTOR#{actor_id}"),
	}}
	if err := good.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
	bad := &Mapping{File: "m", Tables: []*Table{
		table("film", 1, "FILM#{film_id}", "FILM"),
		table("film_text", 2, "FILM#{film_id}", "FILM#{x}"),
		{Source: "raw", Target: "t", Pos: Pos{"m", 3, 1}, PartitionKey: KeyAttr{Name: "pk", Template: Template{Raw: "R#{id}"}, Pos: Pos{"m", 3, 1}},
			SortKey: &KeyAttr{Name: "sk", Template: tmpl("R", 3), Pos: Pos{"m", 3, 1}}},
	}}
	want := `m:2: tables "film" (line 1) and "film_text" write one key space of DynamoDB table "t" without a discriminator: partition key prefixes "FILM#" and "FILM#" overlap, and so do sort key prefixes "FILM" and "FILM#"; start a key template of each with its own literal, such as "FILM_TEXT#"
m:3: partition_key of table "raw": template "R#{id}" is not parsed (build it with ParseTemplate)`
	err := bad.Validate()
	if err == nil || err.Error() != want {
		t.Errorf("Validate:\n%v\nwant:\n%s", err, want)
	}
	if err := (&Mapping{File: "m"}).Validate(); err == nil || err.Error() != "m: no tables: a mapping needs at least one table" {
		t.Errorf("empty mapping: %v", err)
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.yaml"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load of a missing file: %v", err)
	}
}

// FuzzParse: Parse never panics, and what it accepts it accepts again.
func FuzzParse(f *testing.F) {
	seeds, _ := filepath.Glob(filepath.Join("testdata", "*", "*.yaml"))
	seeds = append(seeds, "pagila.yaml")
	for _, s := range seeds {
		data, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("version: 1\ntables:\n  - source: a\n    target: tbl\n    partition_key: {name: pk, template: \"{{{a}}}\"}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Parse("fuzz.yaml", data)
		if err != nil {
			if m != nil {
				t.Fatal("Mapping and error")
			}
			if len(Errors(err)) == 0 {
				t.Fatalf("error without *Error: %v", err)
			}
			return
		}
		if len(m.Tables) == 0 {
			t.Fatal("accepted a mapping without tables")
		}
		if err := m.Validate(); err != nil {
			t.Fatalf("Parse accepted what Validate rejects: %v", err)
		}
	})
}

// TestParseMapConversion: `map` (a json/jsonb column as a DynamoDB document)
// is a known conversion, recorded with the line it is written on; whether the
// column is json is checked against the schema (transform.Compile).
func TestParseMapConversion(t *testing.T) {
	data := []byte(`version: 1
tables:
  - source: orders
    target: shop
    partition_key: {name: pk, template: "ORDER#{id}"}
    types:
      doc: map
      total: number
`)
	m, err := Parse("orders.yaml", data)
	if err != nil {
		t.Fatal(err)
	}
	want := []ColumnType{
		{Column: "doc", Conv: ConvMap, Pos: Pos{File: "orders.yaml", Line: 7, Col: 7}},
		{Column: "total", Conv: ConvNumber, Pos: Pos{File: "orders.yaml", Line: 8, Col: 7}},
	}
	if got := m.Tables[0].Types; !reflect.DeepEqual(got, want) {
		t.Errorf("Types = %+v, want %+v", got, want)
	}
	_, err = Parse("orders.yaml", []byte(strings.Replace(string(data), "doc: map", "doc: maps", 1)))
	if err == nil || !strings.Contains(err.Error(), `orders.yaml:7: unknown conversion "maps" for column "doc"`) ||
		!strings.Contains(err.Error(), "did you mean map?") {
		t.Errorf("Parse(maps) = %v", err)
	}
}

func TestPartitionAndDropPolicies(t *testing.T) {
	const text = `version: 1
defaults:
  target: pagila
  partitions_detached: keep
  keep_dropped: true
tables:
  - source: payment
    partition_key: {name: pk, template: "PAYMENT#{payment_id}"}
    sort_key: {name: sk, template: "PAYMENT#{payment_date}"}
    partitions_detached: delete
  - source: rental
    partition_key: {name: pk, template: "RENTAL#{rental_id}"}
    sort_key: {name: sk, template: "RENTAL"}
    keep_dropped: false
`
	m, err := Parse("policies.yaml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		table      string
		partitions string
		keep       bool
	}{
		{"payment", PartitionsDelete, true},
		{"rental", PartitionsKeep, false},
	} {
		tb := m.Table(tc.table)
		if tb.PartitionsDetached != tc.partitions || tb.KeepDropped != tc.keep {
			t.Errorf("%s: partitions_detached %q keep_dropped %v, want %q %v", tc.table, tb.PartitionsDetached, tb.KeepDropped, tc.partitions, tc.keep)
		}
	}
	m, err = Parse("plain.yaml", []byte("version: 1\ndefaults: {target: things}\ntables:\n  - source: a\n    partition_key: {name: pk, template: \"A#{id}\"}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if tb := m.Table("a"); tb.PartitionsDetached != PartitionsDelete || tb.KeepDropped {
		t.Errorf("defaults: partitions_detached %q keep_dropped %v, want delete false", tb.PartitionsDetached, tb.KeepDropped)
	}
}
