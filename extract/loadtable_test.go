package extract_test

import (
	"reflect"
	"testing"

	"github.com/ferry-migrate/ferry/extract"
)

// catalogueFixture adds to a Pagila clone the shapes the catalogue read
// resolves: domains (over a base type, over an array, over another domain),
// arrays of domains and enums (and of types no column uses directly),
// generated columns, a quoted name in a quoted schema, a composite key and a
// partitioned table.
var catalogueFixture = []string{
	`CREATE DOMAIN posint AS int CHECK (VALUE > 0)`,
	`CREATE DOMAIN small_posint AS posint CHECK (VALUE < 100)`,
	`CREATE DOMAIN int_list AS int[]`,
	`CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy')`,
	`CREATE TYPE size AS ENUM ('s', 'm', 'l')`, // used in an array only
	`CREATE DOMAIN day_list AS date[]`,         // no column of the element type
	`CREATE SCHEMA "Odd Schema"`,
	`CREATE TABLE "Odd Schema"."Shapes ""1""" (
		a posint, b small_posint, c int_list, d posint[], e mood, f mood[], g numeric(12,2),
		h varchar(20), i timestamptz, j bytea, k jsonb, l uuid, n size[], o day_list, p inet[],
		m int GENERATED ALWAYS AS (a * 2) STORED,
		PRIMARY KEY (b, a))`,
	`CREATE TABLE events (id bigint, at date, body text, PRIMARY KEY (id, at)) PARTITION BY RANGE (at)`,
	`CREATE TABLE events_2024 PARTITION OF events FOR VALUES FROM ('2024-01-01') TO ('2025-01-01')`,
	`ALTER TABLE film DROP COLUMN original_language_id`, // a dropped attribute: attnums with a gap
}

// LoadTable reads one table exactly as LoadTables reads it, for every table
// and shape, and finds no partition and no missing table.
func TestLoadTableMatchesLoadTables(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	_, conn := testConn(t)
	for _, sql := range catalogueFixture {
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	all, err := extract.LoadTables(ctx, conn)
	if err != nil {
		t.Fatal(err)
	}
	odd := all[`Odd Schema.Shapes "1"`]
	if odd == nil || all["public.events"] == nil || all["public.events_2024"] != nil {
		t.Fatalf("the fixture's tables are not read as expected: %v", extract.SortedNames(all))
	}
	for name, want := range all {
		got, found, err := extract.LoadTable(ctx, conn, want.Schema, want.Name)
		if err != nil || !found {
			t.Errorf("%s: found %v, %v", name, found, err)
			continue
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: LoadTable reads\n%+v\nLoadTables\n%+v", name, got, want)
		}
	}
	for _, c := range odd.Columns {
		if c.Kind == extract.KindOther {
			t.Errorf("column %s (%s) resolved to no kind", c.Name, c.Type)
		}
	}
	for _, missing := range [][2]string{{"public", "events_2024"}, {"public", "no_such_table"}, {"Odd Schema", "shapes"}} {
		if tb, found, err := extract.LoadTable(ctx, conn, missing[0], missing[1]); err != nil || found || tb != nil {
			t.Errorf("%s.%s: %+v, found %v, %v; want not found", missing[0], missing[1], tb, found, err)
		}
	}
}

// BenchmarkCatalogueRead: what a schema change costs sync on a database of
// many tables: the whole catalogue (LoadTables, what ResolveRelation read
// before) against one table's rows (LoadTable), with 2,000 tables of 12
// columns beside Pagila. go test -run '^$' -bench CatalogueRead ./extract
func BenchmarkCatalogueRead(b *testing.B) {
	ctx := b.Context()
	_, conn := testConn(b)
	if _, err := conn.Exec(ctx, `DO $$ BEGIN
	FOR i IN 1..2000 LOOP
		EXECUTE format('CREATE TABLE bulk_%s (id int PRIMARY KEY, a text, b int, c numeric, d timestamptz, e bool,
			f bytea, g jsonb, h int[], i date, j uuid, k varchar(10))', i);
	END LOOP; END $$`); err != nil {
		b.Fatal(err)
	}
	b.Run("LoadTables", func(b *testing.B) {
		for b.Loop() {
			if _, err := extract.LoadTables(ctx, conn); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("LoadTable", func(b *testing.B) {
		for b.Loop() {
			if _, found, err := extract.LoadTable(ctx, conn, "public", "rental"); err != nil || !found {
				b.Fatal(found, err)
			}
		}
	})
}
