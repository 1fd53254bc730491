package extract_test

import (
	"testing"

	"github.com/ferry-migrate/ferry/extract"
)

// EvalGenerated computes, from a row image alone, exactly what PostgreSQL
// stored for the row's generated columns (pgoutput never sends them).
func TestEvalGeneratedMatchesStoredValues(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	_, conn := testConn(t)
	exec := func(sql string) {
		t.Helper()
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	exec(`CREATE DOMAIN pos_num AS numeric CHECK (VALUE >= 0)`)
	exec(`CREATE TABLE "gen Test" (
		id int PRIMARY KEY,
		"First Name" text,
		price pos_num,
		qty int,
		tags text[],
		at timestamptz,
		total numeric GENERATED ALWAYS AS (price * qty) STORED,
		label text GENERATED ALWAYS AS (upper("First Name") || '#' || id::text) STORED,
		n_tags int GENERATED ALWAYS AS (cardinality(tags)) STORED,
		day date GENERATED ALWAYS AS ((at AT TIME ZONE 'UTC')::date) STORED,
		constant int GENERATED ALWAYS AS (42) STORED)`)
	exec(`INSERT INTO "gen Test" (id, "First Name", price, qty, tags, at) VALUES
		(1, 'ann', 12.50, 3, '{a,"b,c"}', '2022-02-15 09:09:17.5+05'),
		(2, NULL, 0.1, NULL, '{}', '0044-03-15 12:00:00+00 BC'),
		(3, 'Ωmega', 99999999999999999999.99, 7, NULL, NULL)`)
	tables, err := extract.LoadTables(ctx, conn)
	if err != nil {
		t.Fatal(err)
	}
	tb := tables[`public.gen Test`]
	if tb == nil || !tb.HasGenerated() {
		t.Fatalf("table not loaded with its generated columns: %+v", tb)
	}
	if got := tb.GeneratedColumns(); len(got) != 5 {
		t.Fatalf("generated columns %v, want 5", got)
	}
	label := tb.Columns[tb.ColumnIndex("label")]
	if len(label.GeneratedFrom) != 2 || tb.Columns[label.GeneratedFrom[0]].Name != "id" || tb.Columns[label.GeneratedFrom[1]].Name != "First Name" {
		t.Errorf("label reads %v, want the indexes of id and First Name", label.GeneratedFrom)
	}
	for _, id := range []string{"1", "2", "3"} {
		stored, found, err := extract.ReadRowByKey(ctx, conn, tb, []string{id})
		if err != nil || !found {
			t.Fatalf("read row %s: %v %v", id, found, err)
		}
		// The image pgoutput sends: every generated column left out.
		image := make(extract.Row, len(stored))
		copy(image, stored)
		for i, c := range tb.Columns {
			if c.Generated != "" {
				image[i] = extract.Value{Unchanged: true}
			}
		}
		got, unknown, err := extract.EvalGenerated(ctx, conn, tb, image)
		if err != nil || len(unknown) != 0 {
			t.Fatalf("row %s: EvalGenerated: %v (unknown %v)", id, err, unknown)
		}
		for i, c := range tb.Columns {
			if got[i] != stored[i] {
				t.Errorf("row %s column %s: computed %+v, stored %+v", id, c.Name, got[i], stored[i])
			}
		}
		// An input left out (unchanged TOAST): that column is unknown, the
		// others are still computed.
		image[tb.ColumnIndex("First Name")] = extract.Value{Unchanged: true}
		got, unknown, err = extract.EvalGenerated(ctx, conn, tb, image)
		if err != nil || len(unknown) != 1 || unknown[0] != tb.ColumnIndex("label") {
			t.Fatalf("row %s without First Name: unknown %v, err %v; want [label]", id, unknown, err)
		}
		if i := tb.ColumnIndex("total"); got[i] != stored[i] {
			t.Errorf("row %s: total computed %+v without First Name, stored %+v", id, got[i], stored[i])
		}
	}
}
