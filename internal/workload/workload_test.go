package workload_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ferry-migrate/ferry/internal/stack"
	"github.com/ferry-migrate/ferry/internal/workload"
)

func connect(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func queryInt(t *testing.T, conn *pgx.Conn, sql string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := conn.QueryRow(t.Context(), sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

func TestRunChangesDatabase(t *testing.T) {
	t.Parallel()
	url := stack.ForTest(t).TestDatabase(t)
	conn := connect(t, url)
	rentalsBefore := queryInt(t, conn, "SELECT count(*) FROM rental")

	stats, err := workload.Run(t.Context(), workload.Config{SourceURL: url, Rate: 50, Duration: 3 * time.Second})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	t.Logf("stats: %+v (%.1f tx/s)", stats, stats.TxnsPerSecond())
	if stats.Txns == 0 || stats.Rows < stats.ByKind[workload.KindRent] {
		t.Fatalf("Run did nothing: %+v", stats)
	}
	if stats.Errors != 0 {
		t.Errorf("%d transactions failed (%v); the operations are built not to conflict", stats.Errors, stats.ErrorsByKind)
	}
	var sum int64
	for _, k := range workload.Kinds {
		sum += stats.ByKind[k]
	}
	if sum != stats.Txns {
		t.Errorf("ByKind adds up to %d, Txns is %d", sum, stats.Txns)
	}
	for _, k := range []string{workload.KindRent, workload.KindReturn, workload.KindLongDescription, workload.KindToastFollowUp} {
		if stats.ByKind[k] == 0 {
			t.Errorf("no %s transaction in %d", k, stats.Txns)
		}
	}

	if n := queryInt(t, conn, "SELECT count(*) FROM rental"); n <= rentalsBefore {
		t.Errorf("rental count %d, was %d: want growth", n, rentalsBefore)
	}
	if n := queryInt(t, conn, "SELECT count(*) FROM film WHERE octet_length(description) >= 10240"); n == 0 {
		t.Error("no film description of 10 KB or more")
	}
	// The long descriptions are stored out of line, not just compressed inline.
	var toast string
	if err := conn.QueryRow(t.Context(), "SELECT reltoastrelid::regclass::text FROM pg_class WHERE oid = 'film'::regclass").Scan(&toast); err != nil {
		t.Fatal(err)
	}
	if n := queryInt(t, conn, "SELECT count(*) FROM "+toast); n == 0 {
		t.Errorf("film's TOAST table %s is empty", toast)
	}
	part := workload.PaymentPartition(time.Now())
	if n := queryInt(t, conn, `SELECT count(*) FROM pg_inherits WHERE inhparent = 'payment'::regclass
		AND inhrelid = to_regclass($1)`, part); n != 1 {
		t.Fatalf("payment partition %s for the current month missing", part)
	}
	if n := queryInt(t, conn, "SELECT count(*) FROM "+part); n == 0 {
		t.Errorf("no payment in %s", part)
	}
	if n := queryInt(t, conn, `SELECT count(*) FROM rental r LEFT JOIN customer c USING (customer_id) WHERE c.customer_id IS NULL`); n != 0 {
		t.Errorf("%d rentals of missing customers", n)
	}
}

func TestRunEndsWithContext(t *testing.T) {
	t.Parallel()
	url := stack.ForTest(t).TestDatabase(t)
	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	stats, err := workload.Run(ctx, workload.Config{SourceURL: url, Rate: 20, Workers: 2, Seed: 7})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if stats.Txns == 0 {
		t.Fatalf("no transactions before the context ended: %+v", stats)
	}
}

func TestUpdateAllRentals(t *testing.T) {
	t.Parallel()
	url := stack.ForTest(t).TestDatabase(t)
	conn := connect(t, url)
	var start time.Time
	if err := conn.QueryRow(t.Context(), "SELECT now()").Scan(&start); err != nil {
		t.Fatal(err)
	}
	n, err := workload.UpdateAllRentals(t.Context(), url)
	if err != nil {
		t.Fatalf("UpdateAllRentals: %v", err)
	}
	if n != 16044 {
		t.Errorf("updated %d rentals, want 16044", n)
	}
	// One transaction: every row carries the same last_update.
	if got := queryInt(t, conn, "SELECT count(DISTINCT last_update) FROM rental WHERE last_update > $1", start); got != 1 {
		t.Errorf("%d distinct last_update values after the update, want 1", got)
	}
}

func TestChangeCustomerID(t *testing.T) {
	t.Parallel()
	url := stack.ForTest(t).TestDatabase(t)
	conn := connect(t, url)
	const old = 1
	rentals := queryInt(t, conn, "SELECT count(*) FROM rental WHERE customer_id = $1", old)
	payments := queryInt(t, conn, "SELECT count(*) FROM payment WHERE customer_id = $1", old)
	if rentals == 0 || payments == 0 {
		t.Fatalf("customer %d has %d rentals, %d payments: want some", old, rentals, payments)
	}
	newID, err := workload.ChangeCustomerID(t.Context(), url, old)
	if err != nil {
		t.Fatalf("ChangeCustomerID: %v", err)
	}
	if newID == old {
		t.Fatalf("new id %d is the old one", newID)
	}
	for _, c := range []struct {
		sql       string
		id        int
		want      int64
		what, who string
	}{
		{"SELECT count(*) FROM customer WHERE customer_id = $1", old, 0, "customers", "old"},
		{"SELECT count(*) FROM customer WHERE customer_id = $1", newID, 1, "customers", "new"},
		{"SELECT count(*) FROM rental WHERE customer_id = $1", old, 0, "rentals", "old"},
		{"SELECT count(*) FROM rental WHERE customer_id = $1", newID, rentals, "rentals", "new"},
		{"SELECT count(*) FROM payment WHERE customer_id = $1", old, 0, "payments", "old"},
		{"SELECT count(*) FROM payment WHERE customer_id = $1", newID, payments, "payments", "new"},
	} {
		if got := queryInt(t, conn, c.sql, c.id); got != c.want {
			t.Errorf("%s of the %s id %d: %d, want %d", c.what, c.who, c.id, got, c.want)
		}
	}
	if _, err := workload.ChangeCustomerID(t.Context(), url, old); err == nil {
		t.Error("changing a missing customer's id succeeded")
	}
}

func TestAbortedTransaction(t *testing.T) {
	t.Parallel()
	url := stack.ForTest(t).TestDatabase(t)
	conn := connect(t, url)
	counts := func() map[string]int64 {
		m := map[string]int64{}
		for _, table := range []string{"address", "customer", "rental", "payment", "film_actor"} {
			m[table] = queryInt(t, conn, "SELECT count(*) FROM "+table)
		}
		m["rolled back descriptions"] = queryInt(t, conn, "SELECT count(*) FROM film WHERE description = 'rolled back'")
		return m
	}
	before := counts()
	if err := workload.AbortedTransaction(t.Context(), url); err != nil {
		t.Fatalf("AbortedTransaction: %v", err)
	}
	after := counts()
	for k, v := range before {
		if after[k] != v {
			t.Errorf("%s: %d after the aborted transaction, %d before", k, after[k], v)
		}
	}
}
