package transform

import (
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/ferry-migrate/ferry/extract"
	"github.com/ferry-migrate/ferry/mappings"
)

// mappingErrors flattens an errors.Join of *mappings.Error; anything else fails.
func mappingErrors(t *testing.T, err error) []*mappings.Error {
	t.Helper()
	var out []*mappings.Error
	var walk func(error)
	walk = func(err error) {
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				walk(e)
			}
			return
		}
		var me *mappings.Error
		if !errors.As(err, &me) {
			t.Errorf("error %q (%T) is not a *mappings.Error", err, err)
			return
		}
		out = append(out, me)
	}
	walk(err)
	return out
}

func findTable(m *mappings.Mapping, source string) *mappings.Table {
	for _, t := range m.Tables {
		if t.SourceName() == source {
			return t
		}
	}
	panic("no table " + source)
}

func TestCompilePagila(t *testing.T) {
	p := pagilaPlan(t)
	if got := p.Names(); !reflect.DeepEqual(got, []string{"public.rental", "public.payment", "public.film_actor", "public.film", "public.staff", "public.note", "public.tag"}) {
		t.Errorf("Names = %q", got)
	}
	film := tablePlan(t, p, "public.film")
	var cols []string
	for _, c := range film.Columns {
		cols = append(cols, c.Name)
	}
	if strings.Contains(strings.Join(cols, ","), "fulltext") || len(cols) != 13 {
		t.Errorf("film columns = %q, want all but fulltext", cols)
	}
	if film.Target != "pagila" || film.Stream != "pagila-changes" || film.PK.Name != "pk" || film.SK == nil || film.SK.Name != "sk" {
		t.Errorf("film plan: target %q stream %q pk %q sk %v", film.Target, film.Stream, film.PK.Name, film.SK)
	}
	if p.Table("nope") != nil || p.Table("other.film") != nil {
		t.Error("Table found a table that is not mapped")
	}
}

func TestDynamoType(t *testing.T) {
	p := pagilaPlan(t)
	got := map[string]string{}
	for _, tn := range []string{"film", "staff"} {
		for _, c := range tablePlan(t, p, tn).Columns {
			got[tn+"."+c.Name] = c.DynamoType()
		}
	}
	want := map[string]string{
		"film.film_id": "N", "film.title": "S", "film.release_year": "N", "film.rental_rate": "N (S beyond 38 digits)",
		"film.rating": "S", "film.last_update": "S", "film.special_features": "L",
		"staff.active": "N", "staff.last_update": "N", "staff.picture": "B", "staff.email": "S",
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("DynamoType of %s = %q, want %q", k, got[k], w)
		}
	}
}

func TestTargetsAndStreams(t *testing.T) {
	p := pagilaPlan(t)
	tg := p.Targets()
	var names []string
	for n := range tg {
		names = append(names, n)
	}
	sort.Strings(names)
	if !reflect.DeepEqual(names, []string{"notes", "pagila", "staff", "tags"}) {
		t.Fatalf("targets %q", names)
	}
	pg := tg["pagila"]
	if pg.PK != "pk" || pg.SK != "sk" {
		t.Errorf("pagila keys %q %q", pg.PK, pg.SK)
	}
	wantGSIs := map[string][2]string{"gsi1": {"gsi1pk", "gsi1sk"}, "gsi2": {"gsi2pk", "gsi2sk"}, "gsi3": {"gsi3pk", "gsi3sk"}}
	if !reflect.DeepEqual(pg.GSIs, wantGSIs) {
		t.Errorf("pagila GSIs %v, want %v", pg.GSIs, wantGSIs)
	}
	if st := tg["staff"]; st.SK != "" || len(st.GSIs) != 0 {
		t.Errorf("staff target %+v", st)
	}
	if got := p.Streams(); !reflect.DeepEqual(got, []string{"pagila-changes", "pagila-payments"}) {
		t.Errorf("Streams = %q", got)
	}
}

func TestRestrict(t *testing.T) {
	p := pagilaPlan(t)
	q, err := p.Restrict([]string{"film", " public.rental "})
	if err != nil {
		t.Fatal(err)
	}
	if got := q.Names(); !reflect.DeepEqual(got, []string{"public.film", "public.rental"}) {
		t.Errorf("Restrict names = %q", got)
	}
	if _, err := p.Restrict([]string{"film", "films", "x.rental"}); err == nil || !strings.Contains(err.Error(), "films, x.rental not in the mapping") {
		t.Errorf("Restrict with unknown tables: %v", err)
	}
}

func TestCompileErrors(t *testing.T) {
	type want struct {
		line int
		msg  string // substring
	}
	tests := []struct {
		name   string
		mutate func(t *testing.T, m *mappings.Mapping, src map[string]*extract.Table)
		want   []want
	}{
		{
			"missing source table, with a suggestion",
			func(t *testing.T, m *mappings.Mapping, _ map[string]*extract.Table) {
				findTable(m, "rental").Source = "rentl"
			},
			[]want{{lineRental, `table "rentl" does not exist in the source database (did you mean "rental"?)`}},
		},
		{
			"missing source table in another schema",
			func(t *testing.T, m *mappings.Mapping, _ map[string]*extract.Table) {
				findTable(m, "film_actor").Source = "archive.film_actor"
			},
			[]want{{lineFilmActor, `table "archive.film_actor" does not exist in the source database`}},
		},
		{
			"missing column in exclude",
			func(t *testing.T, m *mappings.Mapping, _ map[string]*extract.Table) {
				findTable(m, "film").Exclude[0].Name = "fulltxt"
			},
			[]want{{lineFilmExclude, `exclude names column "fulltxt", which table "public.film" does not have (did you mean "fulltext"?)`}},
		},
		{
			"missing column in types",
			func(t *testing.T, m *mappings.Mapping, _ map[string]*extract.Table) {
				findTable(m, "staff").Types[2].Column = "pictur"
			},
			[]want{{lineStaffTypes + 2, `types names column "pictur", which table "public.staff" does not have (did you mean "picture"?)`}},
		},
		{
			"missing column in a key template",
			func(t *testing.T, m *mappings.Mapping, _ map[string]*extract.Table) {
				findTable(m, "rental").PartitionKey = key(t, "pk", "CUSTOMER#{custmer_id}", lineRentalPK)
			},
			[]want{{lineRentalPK, `template "CUSTOMER#{custmer_id}" names column "custmer_id", which table "public.rental" does not have (did you mean "customer_id"?)`}},
		},
		{
			"missing column in a GSI template",
			func(t *testing.T, m *mappings.Mapping, _ map[string]*extract.Table) {
				findTable(m, "rental").GSIs[2].PartitionKey = key(t, "gsi3pk", "INVENTORY#{inventory}", 21)
			},
			[]want{{21, `names column "inventory"`}},
		},
		{
			"missing column in a stream partition key template",
			func(t *testing.T, m *mappings.Mapping, _ map[string]*extract.Table) {
				pk := tpl(t, "customer:{customer}", linePaymentStream)
				findTable(m, "payment").Stream.PartitionKey = &pk
			},
			[]want{{linePaymentStream, `names column "customer"`}},
		},
		{
			"missing column in when",
			func(t *testing.T, m *mappings.Mapping, _ map[string]*extract.Table) {
				findTable(m, "rental").GSIs[1].When.Column = "retrun_date"
			},
			[]want{{lineRentalWhen, `when names column "retrun_date", which table "public.rental" does not have (did you mean "return_date"?)`}},
		},
		{
			"key templates do not cover the primary key",
			func(t *testing.T, m *mappings.Mapping, _ map[string]*extract.Table) {
				findTable(m, "rental").SortKey = keyp(t, "sk", "RENTAL#{rental_date}", lineRentalSK)
			},
			[]want{{lineRentalPK, `key templates of "public.rental" do not use primary key column "rental_id"`}},
		},
		{
			"composite primary key half covered",
			func(t *testing.T, m *mappings.Mapping, _ map[string]*extract.Table) {
				findTable(m, "film_actor").SortKey = keyp(t, "sk", "ACTOR", lineFilmActorSK)
			},
			[]want{{lineFilmActorPK, `do not use primary key column "actor_id"`}},
		},
		{
			"primary key column only in a GSI does not count",
			func(t *testing.T, m *mappings.Mapping, _ map[string]*extract.Table) {
				findTable(m, "film_actor").SortKey = nil
			},
			[]want{{lineFilmActorPK, `do not use primary key column "actor_id"`}},
		},
		{
			"incompatible conversion",
			func(t *testing.T, m *mappings.Mapping, _ map[string]*extract.Table) {
				findTable(m, "staff").Types[1].Conv = mappings.ConvBinary
			},
			[]want{{lineStaffTypes + 1, `column "last_update": cannot convert timestamp with time zone to binary`}},
		},
		{
			"conversion of an array",
			func(t *testing.T, m *mappings.Mapping, _ map[string]*extract.Table) {
				findTable(m, "film").Types = []mappings.ColumnType{{Column: "special_features", Conv: mappings.ConvNumber, Pos: at(lineFilmTypes)}}
			},
			[]want{{lineFilmTypes, `column "special_features": text[] is an array`}},
		},
		{
			"text to number",
			func(t *testing.T, m *mappings.Mapping, _ map[string]*extract.Table) {
				findTable(m, "staff").Types[0].Column = "first_name"
			},
			[]want{{lineStaffTypes, `column "first_name": cannot convert text to number`}},
		},
		{
			"column named like a GSI key attribute",
			func(t *testing.T, m *mappings.Mapping, _ map[string]*extract.Table) {
				findTable(m, "rental").GSIs[0].PartitionKey.Name = "staff_id"
			},
			[]want{{lineRental - 1, `column "staff_id" of "public.rental" has the same name as a key of index gsi1 attribute`}},
		},
		{
			"column named like the partition key attribute",
			func(t *testing.T, m *mappings.Mapping, _ map[string]*extract.Table) {
				findTable(m, "tag").PartitionKey.Name = "name"
			},
			[]want{{lineTag - 1, `column "name" of "public.tag" has the same name as the partition key attribute`}},
		},
		{
			"column named like a reserved attribute",
			func(t *testing.T, _ *mappings.Mapping, src map[string]*extract.Table) {
				src["public.note"].Columns = append(src["public.note"].Columns, extract.Column{Name: "_version", Type: "bigint", Kind: extract.KindInt, Position: 4})
			},
			[]want{{lineNote - 1, `column "_version" of "public.note" has the same name as reserved attribute`}},
		},
		{
			"excluded column named like a key attribute is fine",
			func(t *testing.T, m *mappings.Mapping, src map[string]*extract.Table) {
				src["public.staff"].Columns[8].Name = "pk" // password, which staff excludes
				findTable(m, "staff").Exclude[0].Name = "pk"
			},
			nil,
		},
		{
			"excluded primary key column",
			func(t *testing.T, m *mappings.Mapping, _ map[string]*extract.Table) {
				findTable(m, "film").Exclude = append(findTable(m, "film").Exclude, mappings.Name{Name: "film_id", Pos: at(lineFilmExclude + 1)})
			},
			[]want{{lineFilmExclude + 1, `primary key column "film_id" of "public.film" cannot be excluded`}},
		},
		{
			"two tables whose keys can collide in one DynamoDB table",
			func(t *testing.T, m *mappings.Mapping, _ map[string]*extract.Table) {
				fa := findTable(m, "film_actor")
				fa.SortKey.Template = tpl(t, "FILM#{actor_id}", lineFilmActor) // film's sort key is "FILM"
				fa.PartitionKey.Template = tpl(t, "FILM#{film_id}", lineFilmActor)
				film := findTable(m, "film")
				film.SortKey.Template = tpl(t, "FILM#{film_id}", lineFilmActor)
			},
			[]want{{lineFilm + 1, `tables "public.film_actor" and "public.film" both write DynamoDB table "pagila" and their keys can collide`}},
		},
		{
			"table without a primary key",
			func(t *testing.T, _ *mappings.Mapping, src map[string]*extract.Table) {
				src["public.film_actor"].PK = nil
			},
			[]want{{lineFilmActor, `table "public.film_actor" has no primary key`}},
		},
		{
			"every problem at once, in mapping order",
			func(t *testing.T, m *mappings.Mapping, _ map[string]*extract.Table) {
				findTable(m, "rental").GSIs[1].When.Column = "x"
				findTable(m, "film").Exclude[0].Name = "y"
				findTable(m, "staff").Source = "stuff"
			},
			[]want{{lineRentalWhen, `when names column "x"`}, {lineFilmExclude, `exclude names column "y"`}, {lineStaff, `table "stuff" does not exist`}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := pagilaMapping(t)
			src := sourceTables()
			tt.mutate(t, m, src)
			p, err := Compile(m, src)
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("Compile: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Compile succeeded, want %d errors", len(tt.want))
			}
			if p != nil {
				t.Errorf("Compile returned a plan along with errors")
			}
			got := mappingErrors(t, err)
			if len(got) != len(tt.want) {
				t.Fatalf("got %d errors, want %d:\n%v", len(got), len(tt.want), err)
			}
			for i, w := range tt.want {
				g := got[i]
				if g.Pos.File != mappingFile || g.Pos.Line != w.line {
					t.Errorf("error %d at %s, want %s:%d (%s)", i, g.Pos, mappingFile, w.line, g.Msg)
				}
				if !strings.Contains(g.Msg, w.msg) {
					t.Errorf("error %d: %q, want it to contain %q", i, g.Msg, w.msg)
				}
				if prefix := fmt.Sprintf("%s:%d: ", mappingFile, w.line); !strings.HasPrefix(g.Error(), prefix) {
					t.Errorf("error %d %q does not start with %q", i, g.Error(), prefix)
				}
			}
		})
	}
}

func TestSuggest(t *testing.T) {
	cands := []string{"rental", "public.rental", "payment", "film_actor"}
	tests := []struct{ name, want string }{
		{"rentl", ` (did you mean "rental"?)`},
		{"public.rentals", ` (did you mean "public.rental"?)`},
		{"film_actors", ` (did you mean "film_actor"?)`},
		{"customer", ""},
		{"x", ""},
	}
	for _, tt := range tests {
		if got := suggest(tt.name, cands); got != tt.want {
			t.Errorf("suggest(%q) = %q, want %q", tt.name, got, tt.want)
		}
	}
	if got := suggest("a", nil); got != "" {
		t.Errorf("suggest with no candidates = %q", got)
	}
}

func TestEditDistance(t *testing.T) {
	for _, tt := range []struct {
		a, b string
		d    int
	}{
		{"", "", 0}, {"a", "", 1}, {"", "abc", 3}, {"kitten", "sitting", 3}, {"rental", "rentl", 1}, {"abc", "abc", 0},
	} {
		if got := editDistance(tt.a, tt.b); got != tt.d {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.d)
		}
		if got := editDistance(tt.b, tt.a); got != tt.d {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tt.b, tt.a, got, tt.d)
		}
	}
}
