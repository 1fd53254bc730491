package main

import (
	"strconv"
	"strings"
	"testing"

	"github.com/ferry-migrate/ferry/extract"
	"github.com/ferry-migrate/ferry/internal/stack"
	"github.com/ferry-migrate/ferry/internal/testkit"
)

// plan --aws under the workload: the rows it prices are the tables' rows,
// the change rate it measured is the workload's, and the backfill's write
// units are the sum a reviewer recomputes from the printed table.
func TestPlanAWS(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	st := stack.ForTest(t)
	e := &backfillEnv{st: st, db: st.TestDatabase(t)}
	e.mapping = testkit.PagilaMapping(t, testkit.Name("pagila_"), testkit.Name("pagila-"))
	stop := startWorkload(ctx, t, e, 40, 71)
	out := tmFerry(ctx, t, 0, "plan --aws", "plan", "--source", e.db, "--mapping", e.mapping, "--aws", "--aws-window", "3s", "--aws-sample", "300")
	stop()

	conn, err := extract.Connect(ctx, e.db)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var sum, changes float64
	seen := 0
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) != 8 || !strings.HasPrefix(f[0], "public.") {
			continue
		}
		seen++
		rows, _ := strconv.ParseFloat(f[1], 64)
		perRow, _ := strconv.ParseFloat(f[4], 64)
		rate, _ := strconv.ParseFloat(f[7], 64)
		sum += rows * perRow
		changes += rate
		if f[0] == "public.film" || f[0] == "public.language" { // the workload does not change these
			var n float64
			if err := conn.QueryRow(ctx, "SELECT count(*) FROM "+f[0]).Scan(&n); err != nil {
				t.Fatal(err)
			}
			if n != rows {
				t.Errorf("%s: %v rows priced, the table has %v", f[0], rows, n)
			}
		}
		if perRow < 1 {
			t.Errorf("%s: %v write units per row, at least 1", f[0], perRow)
		}
	}
	if seen != 15 {
		t.Fatalf("%d table lines in the estimate, want 15:\n%s", seen, out)
	}
	if changes <= 0 {
		t.Errorf("no change measured under a workload of 40 transactions/s:\n%s", out)
	}
	var total float64
	for _, line := range strings.Split(out, "\n") {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "DynamoDB write units: Σ rows × write units/row = "); ok {
			total, _ = strconv.ParseFloat(rest, 64)
		}
	}
	// The table prints write units/row rounded to 3 decimals.
	if total <= 0 || total < sum*0.999 || total > sum*1.001 {
		t.Errorf("backfill write units %v, the printed table sums to %v:\n%s", total, sum, out)
	}
}
