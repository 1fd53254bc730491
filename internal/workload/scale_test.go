package workload_test

import (
	"testing"

	"github.com/ferry-migrate/ferry/internal/stack"
	"github.com/ferry-migrate/ferry/internal/workload"
)

// tableDigest is an order-independent digest of a table's rows.
func tableDigest(t *testing.T, url, table string) string {
	t.Helper()
	conn := connect(t, url)
	var d string
	sql := "SELECT coalesce(md5(string_agg(md5(x::text), '' ORDER BY md5(x::text))), '') FROM public." + table + " x"
	if err := conn.QueryRow(t.Context(), sql).Scan(&d); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return d
}

func TestScale(t *testing.T) {
	t.Parallel()
	st := stack.ForTest(t)
	once, twice := st.TestDatabase(t), st.TestDatabase(t)
	conn := connect(t, once)
	before := map[string]int64{}
	for _, tb := range workload.ScaledTables {
		before[tb] = queryInt(t, conn, "SELECT count(*) FROM public."+tb)
	}
	fixed := queryInt(t, conn, "SELECT count(*) FROM public.city")

	res, err := workload.Scale(t.Context(), workload.ScaleConfig{SourceURL: once, Factor: 3})
	if err != nil {
		t.Fatalf("Scale: %v", err)
	}
	if res.CopiesMade != 2 {
		t.Errorf("copies made: %d, want 2", res.CopiesMade)
	}
	var total int64
	for _, tb := range workload.ScaledTables {
		n := queryInt(t, conn, "SELECT count(*) FROM public."+tb)
		if n != 3*before[tb] {
			t.Errorf("%s: %d rows, want 3 × %d", tb, n, before[tb])
		}
		total += n - before[tb]
	}
	if res.Rows != total {
		t.Errorf("Scale reported %d rows, tables grew by %d", res.Rows, total)
	}
	if n := queryInt(t, conn, "SELECT count(*) FROM public.city"); n != fixed {
		t.Errorf("city: %d rows, want the reference %d", n, fixed)
	}
	// Every partition of the 2022 months received copies; NULLs and long text exist.
	for _, q := range []string{
		"SELECT count(*) FROM public.payment_p2022_03 WHERE payment_id >= 100000",
		"SELECT count(*) FROM public.customer WHERE customer_id >= 10000 AND email IS NULL",
		"SELECT count(*) FROM public.address WHERE address_id >= 10000 AND address2 IS NULL",
		"SELECT count(*) FROM public.film WHERE film_id >= 10000 AND octet_length(description) > 3000",
		"SELECT count(*) FROM public.film WHERE film_id >= 10000 AND description IS NULL",
		"SELECT count(*) FROM public.rental WHERE rental_id >= 100000 AND return_date IS NULL",
	} {
		if queryInt(t, conn, q) == 0 {
			t.Errorf("none: %s", q)
		}
	}
	// The sequences moved past the copies: a plain insert does not collide.
	if _, err := conn.Exec(t.Context(), `INSERT INTO public.rental (rental_date, inventory_id, customer_id, staff_id)
		VALUES (now(), 1, 1, 1)`); err != nil {
		t.Errorf("insert after scaling: %v", err)
	}
	if _, err := conn.Exec(t.Context(), "DELETE FROM public.rental WHERE rental_date > '2023-01-01'"); err != nil {
		t.Fatal(err)
	}

	// Idempotent, and incremental steps give the same rows as one step.
	res, err = workload.Scale(t.Context(), workload.ScaleConfig{SourceURL: once, Factor: 3})
	if err != nil || res.CopiesMade != 0 {
		t.Errorf("second Scale to 3: %+v, %v; want nothing to do", res, err)
	}
	for _, f := range []int{2, 3} {
		if _, err := workload.Scale(t.Context(), workload.ScaleConfig{SourceURL: twice, Factor: f, Workers: 1, CopiesPerTxn: 1}); err != nil {
			t.Fatalf("Scale to %d: %v", f, err)
		}
	}
	for _, tb := range workload.ScaledTables {
		if a, b := tableDigest(t, once, tb), tableDigest(t, twice, tb); a != b {
			t.Errorf("%s differs between x3 at once and x2 then x3", tb)
		}
	}
}
