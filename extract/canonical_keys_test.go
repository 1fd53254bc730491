package extract_test

import (
	"fmt"
	"reflect"
	"testing"

	"github.com/ferry-migrate/ferry/extract"
)

// Keys given as an operator writes them come back as PostgreSQL prints them,
// the form rows are read in (an online snapshot deletes the keys it does not
// find, so the forms must agree); a value the type refuses is an error.
func TestCanonicalKeys(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	_, conn := testConn(t)
	if _, err := conn.Exec(ctx, `CREATE TABLE "canon Keys" (n int, d date, ts timestamptz, u uuid, t text, PRIMARY KEY (n, d, ts, u, t))`); err != nil {
		t.Fatal(err)
	}
	tables, err := extract.LoadTables(ctx, conn)
	if err != nil {
		t.Fatal(err)
	}
	tbl := tables[`public.canon Keys`]
	if tbl == nil {
		t.Fatal("table not loaded")
	}
	keys := [][]string{
		{"007", "2024-1-2", "2024-01-02 03:04:05+02", "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11", " it's "},
		{"-0", "20240102", "2024-01-02T01:04:05Z", "{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}", ""},
	}
	want := [][]string{
		{"7", "2024-01-02", "2024-01-02 01:04:05+00", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", " it's "},
		{"0", "2024-01-02", "2024-01-02 01:04:05+00", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", ""},
	}
	// More keys than one statement takes.
	for i := range 1500 {
		keys = append(keys, []string{fmt.Sprint(i), "2024-01-01", "2024-01-01 00:00:00+00", "00000000-0000-0000-0000-000000000000", "x"})
		want = append(want, []string{fmt.Sprint(i), "2024-01-01", "2024-01-01 00:00:00+00", "00000000-0000-0000-0000-000000000000", "x"})
	}
	got, err := extract.CanonicalKeys(ctx, conn, tbl, keys)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("CanonicalKeys:\n got %q\nwant %q", got[:2], want[:2])
	}
	if _, err := extract.CanonicalKeys(ctx, conn, tbl, [][]string{{"x", "2024-01-01", "2024-01-01", "00000000-0000-0000-0000-000000000000", "x"}}); err == nil {
		t.Error("a key the column type refuses: no error")
	}
}
