package transform

import (
	"testing"

	"github.com/ferry-migrate/ferry/extract"
	"github.com/ferry-migrate/ferry/mappings"
)

// This file builds, by hand, the source catalogue (as extract.LoadTables would
// read it from Pagila) and a mapping (as mappings.Parse would produce it), so the
// plan tests need neither a database nor a YAML file.

const mappingFile = "pagila.yaml"

func col(name, typ string, kind extract.Kind) extract.Column {
	return extract.Column{Name: name, Type: typ, Kind: kind}
}

// sourceTables returns fresh copies of the Pagila tables the tests map, plus two
// small tables for edge cases (text keys).
func sourceTables() map[string]*extract.Table {
	tstz := func(name string) extract.Column {
		return col(name, "timestamp with time zone", extract.KindTimestampTZ)
	}
	integer := func(name string) extract.Column { return col(name, "integer", extract.KindInt) }
	text := func(name string) extract.Column { return col(name, "text", extract.KindText) }
	tables := []*extract.Table{
		{Schema: "public", Name: "rental", PK: []int{0}, Columns: []extract.Column{
			integer("rental_id"), tstz("rental_date"), integer("inventory_id"), integer("customer_id"),
			tstz("return_date"), integer("staff_id"), tstz("last_update"),
		}},
		{Schema: "public", Name: "payment", PK: []int{5, 0}, Partitioned: true, Columns: []extract.Column{
			integer("payment_id"), integer("customer_id"), integer("staff_id"), integer("rental_id"),
			col("amount", "numeric(5,2)", extract.KindNumeric), tstz("payment_date"),
		}},
		{Schema: "public", Name: "film_actor", PK: []int{0, 1}, Columns: []extract.Column{
			integer("actor_id"), integer("film_id"), tstz("last_update"),
		}},
		{Schema: "public", Name: "film", PK: []int{0}, Columns: []extract.Column{
			integer("film_id"), text("title"), text("description"),
			col("release_year", "public.year", extract.KindInt),
			integer("language_id"), integer("original_language_id"),
			col("rental_duration", "smallint", extract.KindInt),
			col("rental_rate", "numeric(4,2)", extract.KindNumeric),
			col("length", "smallint", extract.KindInt),
			col("replacement_cost", "numeric(5,2)", extract.KindNumeric),
			col("rating", "public.mpaa_rating", extract.KindEnum),
			tstz("last_update"),
			{Name: "special_features", Type: "text[]", Kind: extract.KindText, Array: true},
			col("fulltext", "tsvector", extract.KindTSVector),
		}},
		{Schema: "public", Name: "staff", PK: []int{0}, Columns: []extract.Column{
			integer("staff_id"), text("first_name"), text("last_name"), integer("address_id"), text("email"),
			integer("store_id"), col("active", "boolean", extract.KindBool), text("username"), text("password"),
			tstz("last_update"), col("picture", "bytea", extract.KindBytea),
		}},
		{Schema: "public", Name: "note", PK: []int{0}, Columns: []extract.Column{
			integer("id"), text("a"), text("b"),
		}},
		{Schema: "public", Name: "tag", PK: []int{0}, Columns: []extract.Column{
			text("name"), col("big", `public."bıgınt"`, extract.KindInt),
		}},
	}
	for _, t := range tables {
		for i := range t.Columns {
			t.Columns[i].Position = i + 1
		}
	}
	out := map[string]*extract.Table{}
	for _, t := range tables {
		out[t.QualifiedName()] = t
	}
	return out
}

func at(line int) mappings.Pos { return mappings.Pos{File: mappingFile, Line: line, Col: 5} }

func tpl(tb testing.TB, raw string, line int) mappings.Template {
	tb.Helper()
	t, err := mappings.ParseTemplate(raw, at(line))
	if err != nil {
		tb.Fatalf("ParseTemplate(%q): %v", raw, err)
	}
	return t
}

func key(tb testing.TB, name, raw string, line int) mappings.KeyAttr {
	tb.Helper()
	return mappings.KeyAttr{Name: name, Template: tpl(tb, raw, line), Pos: at(line)}
}

func keyp(tb testing.TB, name, raw string, line int) *mappings.KeyAttr {
	tb.Helper()
	k := key(tb, name, raw, line)
	return &k
}

// Lines of the hand-built mapping, named so that error tests can refer to them.
const (
	lineRental        = 10 // "- source: rental"
	lineRentalPK      = 11
	lineRentalSK      = 12
	lineRentalGSI2    = 16
	lineRentalWhen    = 19
	lineRentalStream  = 23
	linePayment       = 30
	lineFilmActor     = 40
	lineFilmActorPK   = 41
	lineFilm          = 50
	lineFilmExclude   = 53
	lineFilmTypes     = 54
	lineStaff         = 60
	lineStaffTypes    = 64
	lineNote          = 70
	lineTag           = 80
	lineFilmActorSK   = 42
	lineStaffExclude  = 63
	linePaymentStream = 35
)

// pagilaMapping returns a fresh mapping of the fixture tables, close to the
// shipped pagila.yaml: one DynamoDB table "pagila", a sparse GSI, an excluded
// column, conversions, a custom and default stream partition keys.
func pagilaMapping(tb testing.TB) *mappings.Mapping {
	tb.Helper()
	stream := func(line int) *mappings.Stream {
		return &mappings.Stream{Name: "pagila-changes", Pos: at(line)}
	}
	payPK := tpl(tb, "customer:{customer_id}", linePaymentStream)
	return &mappings.Mapping{File: mappingFile, Version: 1, Tables: []*mappings.Table{
		{
			Source: "rental", SourcePos: at(lineRental), Target: "pagila", Pos: at(lineRental - 1),
			PartitionKey: key(tb, "pk", "CUSTOMER#{customer_id}", lineRentalPK),
			SortKey:      keyp(tb, "sk", "RENTAL#{rental_date}#{rental_id}", lineRentalSK),
			GSIs: []mappings.GSI{
				{Name: "gsi1", Pos: at(13),
					PartitionKey: key(tb, "gsi1pk", "RENTAL#{rental_id}", 14),
					SortKey:      keyp(tb, "gsi1sk", "RENTAL", 15)},
				{Name: "gsi2", Pos: at(lineRentalGSI2),
					PartitionKey: key(tb, "gsi2pk", "OPEN#STAFF#{staff_id}", 17),
					SortKey:      keyp(tb, "gsi2sk", "RENTAL#{rental_date}#{rental_id}", 18),
					When:         &mappings.Condition{Column: "return_date", IsNull: true, Pos: at(lineRentalWhen)}},
				{Name: "gsi3", Pos: at(20),
					PartitionKey: key(tb, "gsi3pk", "INVENTORY#{inventory_id}", 21),
					SortKey:      keyp(tb, "gsi3sk", "RETURNED#{return_date}", 22)},
			},
			Stream: stream(lineRentalStream),
		},
		{
			Source: "public.payment", SourcePos: at(linePayment), Target: "pagila", Pos: at(linePayment - 1),
			PartitionKey: key(tb, "pk", "CUSTOMER#{customer_id}", linePayment+1),
			SortKey:      keyp(tb, "sk", "PAYMENT#{payment_date}#{payment_id}", linePayment+2),
			Stream:       &mappings.Stream{Name: "pagila-payments", PartitionKey: &payPK, Pos: at(linePaymentStream)},
		},
		{
			Source: "film_actor", SourcePos: at(lineFilmActor), Target: "pagila", Pos: at(lineFilmActor - 1),
			PartitionKey: key(tb, "pk", "FILM#{film_id}", lineFilmActorPK),
			SortKey:      keyp(tb, "sk", "ACTOR#{actor_id}", lineFilmActorSK),
			GSIs: []mappings.GSI{{Name: "gsi1", Pos: at(43),
				PartitionKey: key(tb, "gsi1pk", "ACTOR#{actor_id}", 44),
				SortKey:      keyp(tb, "gsi1sk", "FILM#{film_id}", 45)}},
			Stream: stream(46),
		},
		{
			Source: "film", SourcePos: at(lineFilm), Target: "pagila", Pos: at(lineFilm - 1),
			PartitionKey: key(tb, "pk", "FILM#{film_id}", lineFilm+1),
			SortKey:      keyp(tb, "sk", "FILM", lineFilm+2),
			Exclude:      []mappings.Name{{Name: "fulltext", Pos: at(lineFilmExclude)}},
			Stream:       stream(55),
		},
		{
			Source: "staff", SourcePos: at(lineStaff), Target: "staff", Pos: at(lineStaff - 1),
			PartitionKey: key(tb, "pk", "STAFF#{staff_id}", lineStaff+1),
			Exclude:      []mappings.Name{{Name: "password", Pos: at(lineStaffExclude)}},
			Types: []mappings.ColumnType{
				{Column: "active", Conv: mappings.ConvNumber, Pos: at(lineStaffTypes)},
				{Column: "last_update", Conv: mappings.ConvEpochMS, Pos: at(lineStaffTypes + 1)},
				{Column: "picture", Conv: mappings.ConvBinary, Pos: at(lineStaffTypes + 2)},
			},
			Stream: stream(67),
		},
		{
			Source: "note", SourcePos: at(lineNote), Target: "notes", Pos: at(lineNote - 1),
			PartitionKey: key(tb, "pk", "{a}", lineNote+1),
			SortKey:      keyp(tb, "sk", "{b}#{id}", lineNote+2),
		},
		{
			Source: "tag", SourcePos: at(lineTag), Target: "tags", Pos: at(lineTag - 1),
			PartitionKey: key(tb, "id", "TAG#{name}", lineTag+1),
			Stream:       stream(lineTag + 2),
		},
	}}
}

// compile compiles m against src and fails the test on any error.
func compile(tb testing.TB, m *mappings.Mapping, src map[string]*extract.Table) *Plan {
	tb.Helper()
	p, err := Compile(m, src)
	if err != nil {
		tb.Fatalf("Compile: %v", err)
	}
	return p
}

func pagilaPlan(tb testing.TB) *Plan {
	tb.Helper()
	return compile(tb, pagilaMapping(tb), sourceTables())
}

func tablePlan(tb testing.TB, p *Plan, name string) *TablePlan {
	tb.Helper()
	tp := p.Table(name)
	if tp == nil {
		tb.Fatalf("no plan for %s", name)
	}
	return tp
}

// row builds a source row from text values; "\\N" is NULL and "\\U" unchanged.
func row(vals ...string) extract.Row {
	r := make(extract.Row, len(vals))
	for i, v := range vals {
		switch v {
		case `\N`:
			r[i] = extract.Value{Null: true}
		case `\U`:
			r[i] = extract.Value{Unchanged: true}
		default:
			r[i] = extract.Value{Text: v}
		}
	}
	return r
}

// Rows shaped like Pagila's.
var (
	rentalOpen     = row("16050", "2022-08-23 21:50:12+00", "2666", "393", `\N`, "1", "2022-08-23 21:50:12+00")
	rentalReturned = row("16049", "2022-08-23 21:44:32+00", "4388", "393", "2022-08-28 20:10:32.5+00", "2", "2022-08-28 20:10:32.5+00")
	paymentRow     = row("16051", "269", "1", "98", "2.99", "2022-01-29 01:58:52.222594+00")
	filmActorRow   = row("1", "23", "2022-02-15 09:05:03+00")
	filmRow        = row("1", "ACADEMY DINOSAUR", "A Epic Drama of a Feminist", "2006", "1", `\N`, "6", "0.99", "86", "20.99", "NC-17",
		"2022-09-10 16:46:03.905795+00", `{"Deleted Scenes","Behind the Scenes",NULL}`, "'academi':1 'battl':15")
	staffRow = row("1", "Mike", "Hillyer", "3", "Mike.Hillyer@sakilastaff.com", "1", "t", "Mike",
		"8cb2237d0679ca88db6464eac60da96345513964", "2022-05-16 15:13:11.79328+00", `\x89504e470d0a5a0a`)
)
