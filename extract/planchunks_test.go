package extract_test

import (
	"context"
	"testing"

	"github.com/ferry-migrate/ferry/extract"
)

// TestPlanChunks: the chunks of a table hold exactly rowsPerChunk rows each
// (the last one the rest), together every row once, for keys of several
// types and columns (text with escapes, bool, bpchar, timestamptz, numeric)
// and for a partitioned table (Pagila's payment).
func TestPlanChunks(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	url, conn := testConn(t)
	if _, err := conn.Exec(ctx, `CREATE TABLE "plan Keys" (t text, b bool, c char(3), ts timestamptz, n numeric, v int,
		PRIMARY KEY (t, b, c, ts, n));
INSERT INTO "plan Keys" SELECT
	CASE i % 5 WHEN 0 THEN E'tab\\there' WHEN 1 THEN E'back\\\\slash' WHEN 2 THEN 'it''s' WHEN 3 THEN E'new\\nline' ELSE '' END,
	i % 2 = 0, (i % 7)::text, '2024-01-01'::timestamptz + (i % 13) * interval '1 hour', i / 65.0, i
FROM generate_series(1, 2345) i;
CREATE TABLE nokey (v int); INSERT INTO nokey SELECT generate_series(1, 10)`); err != nil {
		t.Fatal(err)
	}
	tables, err := extract.LoadTables(ctx, conn)
	if err != nil {
		t.Fatal(err)
	}
	sc, err := extract.OpenSnapshotConn(ctx, url, "")
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close(context.Background())
	for _, tc := range []struct {
		table string
		per   int
	}{{"public.plan Keys", 100}, {"public.plan Keys", 2345}, {"public.plan Keys", 2344}, {"public.plan Keys", 5000}, {"public.payment", 1000}, {"public.nokey", 3}} {
		tbl := tables[tc.table]
		if tbl == nil {
			t.Fatalf("table %s not loaded", tc.table)
		}
		chunks, total, err := sc.PlanChunks(ctx, tbl, tc.per)
		if err != nil {
			t.Fatal(err)
		}
		var count int64
		if err := sc.Conn().QueryRow(ctx, "SELECT count(*) FROM "+tbl.Ident()).Scan(&count); err != nil {
			t.Fatal(err)
		}
		if total != count {
			t.Errorf("%s: total %d, count(*) %d", tc.table, total, count)
		}
		var read int64
		for i, ch := range chunks {
			n, err := sc.ReadChunk(ctx, tbl, ch, func(extract.Row) error { return nil })
			if err != nil {
				t.Fatal(err)
			}
			read += n
			if ch.Index != i || len(tbl.PK) > 0 && i < len(chunks)-1 && n != int64(tc.per) {
				t.Errorf("%s per %d: chunk %d (index %d) holds %d rows", tc.table, tc.per, i, ch.Index, n)
			}
		}
		if read != count {
			t.Errorf("%s per %d: the chunks hold %d rows, the table %d", tc.table, tc.per, read, count)
		}
		if want := max(1, (count+int64(tc.per)-1)/int64(tc.per)); len(tbl.PK) > 0 && int64(len(chunks)) != want {
			t.Errorf("%s per %d: %d chunks, want %d", tc.table, tc.per, len(chunks), want)
		}
	}
}
