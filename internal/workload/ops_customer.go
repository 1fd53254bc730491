package workload

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

var newAddressSQL = `INSERT INTO public.address (address, district, city_id, postal_code, phone)
VALUES ($1, $2, ` + pickSQL("city", "city_id", 3) + `, $4, $5) RETURNING address_id`

// opNewCustomer signs up a customer: an address in a random city, then the
// customer at a random store.
func opNewCustomer(ctx context.Context, w *worker, tx pgx.Tx) (int64, error) {
	street := fmt.Sprintf("%d %s", 1+w.rng.IntN(1999), pick(w.rng, streets))
	district, city := pick(w.rng, districts), w.in(w.b.city)
	postal, phone := fmt.Sprintf("%05d", w.rng.IntN(100000)), fmt.Sprintf("%012d", w.rng.Int64N(1e12))
	first, last, store := pick(w.rng, firstNames), pick(w.rng, lastNames), pick(w.rng, w.b.store)
	var address int32
	if err := tx.QueryRow(ctx, newAddressSQL, street, district, city, postal, phone).Scan(&address); err != nil {
		return 0, wrap("insert address", err)
	}
	email := first + "." + last + "@sakilacustomer.org"
	if _, err := tx.Exec(ctx, `INSERT INTO public.customer (store_id, first_name, last_name, email, address_id, active)
		VALUES ($1, $2, $3, $4, $5, 1)`, store, first, last, email, address); err != nil {
		return 1, wrap("insert customer", err)
	}
	return 2, nil
}

var updateCustomerSQL = `UPDATE public.customer SET
  email = CASE WHEN $2 THEN lower(first_name || '.' || last_name) || '@' || $3 ELSE email END,
  active = CASE WHEN $4 THEN 1 - coalesce(active, 1) ELSE active END,
  activebool = CASE WHEN $4 THEN NOT activebool ELSE activebool END
WHERE customer_id = ` + pickSQL("customer", "customer_id", 1)

// opUpdateCustomer changes a random customer's email, active flags, or both.
func opUpdateCustomer(ctx context.Context, w *worker, tx pgx.Tx) (int64, error) {
	customer, variant, domain := w.in(w.b.customer), w.rng.IntN(3), pick(w.rng, emailDomains)
	tag, err := tx.Exec(ctx, updateCustomerSQL, customer, variant != 1, domain, variant != 0)
	if err != nil {
		return 0, wrap("update customer", err)
	}
	return tag.RowsAffected(), nil
}
