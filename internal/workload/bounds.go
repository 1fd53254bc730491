package workload

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// bounds are the id ranges the operations draw from, read once at start.
// Picks tolerate gaps and rows added or removed since: pickSQL takes the first
// id at or after a random one, wrapping around to the smallest.
type bounds struct {
	customer, inventory, film, city, actor, rental idRange
	store                                          []int32
	staffByStore                                   map[int32][]int32
	staff                                          []int32
	paymentFrom, paymentTo                         time.Time
}

type idRange struct{ lo, hi int32 }

func loadBounds(ctx context.Context, conn *pgx.Conn) (*bounds, error) {
	b := &bounds{staffByStore: map[int32][]int32{}}
	for _, r := range []struct {
		table, col string
		dst        *idRange
	}{
		{"customer", "customer_id", &b.customer}, {"inventory", "inventory_id", &b.inventory},
		{"film", "film_id", &b.film}, {"city", "city_id", &b.city},
		{"actor", "actor_id", &b.actor}, {"rental", "rental_id", &b.rental},
	} {
		q := fmt.Sprintf("SELECT coalesce(min(%[1]s), 0), coalesce(max(%[1]s), 0) FROM public.%[2]s", r.col, r.table)
		if err := conn.QueryRow(ctx, q).Scan(&r.dst.lo, &r.dst.hi); err != nil {
			return nil, fmt.Errorf("workload: read id range of %s: %w", r.table, err)
		}
		if r.dst.hi == 0 && r.table != "rental" {
			return nil, fmt.Errorf("workload: table %s is empty; is this a Pagila database?", r.table)
		}
	}
	rows, err := conn.Query(ctx, "SELECT staff_id, store_id FROM public.staff ORDER BY staff_id")
	if err != nil {
		return nil, fmt.Errorf("workload: read staff: %w", err)
	}
	var staff, store int32
	_, err = pgx.ForEachRow(rows, []any{&staff, &store}, func() error {
		b.staff = append(b.staff, staff)
		b.staffByStore[store] = append(b.staffByStore[store], staff)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("workload: read staff: %w", err)
	}
	if len(b.staff) == 0 {
		return nil, fmt.Errorf("workload: table staff is empty; is this a Pagila database?")
	}
	rows, err = conn.Query(ctx, "SELECT store_id FROM public.store ORDER BY store_id")
	if err != nil {
		return nil, fmt.Errorf("workload: read stores: %w", err)
	}
	if b.store, err = pgx.CollectRows(rows, pgx.RowTo[int32]); err != nil {
		return nil, fmt.Errorf("workload: read stores: %w", err)
	}
	if len(b.store) == 0 {
		return nil, fmt.Errorf("workload: table store is empty; is this a Pagila database?")
	}
	var from, to *time.Time
	if err := conn.QueryRow(ctx, "SELECT min(payment_date), max(payment_date) FROM public.payment").Scan(&from, &to); err != nil {
		return nil, fmt.Errorf("workload: read payment dates: %w", err)
	}
	if from != nil {
		b.paymentFrom, b.paymentTo = *from, *to
	} else {
		b.paymentFrom, b.paymentTo = time.Now(), time.Now()
	}
	return b, nil
}

// pickSQL is a scalar subquery choosing an existing col of table: the first at
// or after the parameter $n, else the smallest. Both branches are index scans.
func pickSQL(table, col string, n int) string {
	return fmt.Sprintf("(SELECT %[2]s FROM ((SELECT %[2]s FROM public.%[1]s WHERE %[2]s >= $%[3]d ORDER BY %[2]s LIMIT 1) "+
		"UNION ALL (SELECT %[2]s FROM public.%[1]s ORDER BY %[2]s LIMIT 1)) pick LIMIT 1)", table, col, n)
}
