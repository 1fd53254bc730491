package workload

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// UpdateAllRentals updates every rental row in one transaction (SET
// last_update = now()) and returns how many rows it updated.
func UpdateAllRentals(ctx context.Context, url string) (int64, error) {
	conn, err := connect(ctx, url)
	if err != nil {
		return 0, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var n int64
	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, "UPDATE public.rental SET last_update = now()")
		n = tag.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("workload: update all rentals: %w", err)
	}
	return n, nil
}

// ChangeCustomerID gives customer oldID a new, unused primary key (the next
// value of customer_customer_id_seq that no customer holds; Pagila's
// sequences are column defaults, not OWNED BY) in one
// transaction and returns it. rental follows through its ON UPDATE CASCADE
// foreign key; payment's foreign keys (on the 2022 partitions) are plain NO
// ACTION, so the same statement moves the payments too: NO ACTION is checked
// at the end of the statement, when both sides agree again.
func ChangeCustomerID(ctx context.Context, url string, oldID int) (int, error) {
	conn, err := connect(ctx, url)
	if err != nil {
		return 0, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var newID int
	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		var exists bool
		if err := tx.QueryRow(ctx, "SELECT true FROM public.customer WHERE customer_id = $1 FOR UPDATE", oldID).Scan(&exists); err != nil {
			if errors.Is(err, pgx.ErrNoRows) {
				return fmt.Errorf("no customer %d", oldID)
			}
			return fmt.Errorf("lock customer: %w", err)
		}
		if err := tx.QueryRow(ctx, `SELECT id FROM (SELECT nextval(coalesce(pg_get_serial_sequence('public.customer', 'customer_id'),
				'public.customer_customer_id_seq'))::int AS id
			FROM generate_series(1, 1000)) ids
			WHERE NOT EXISTS (SELECT 1 FROM public.customer c WHERE c.customer_id = ids.id) LIMIT 1`).Scan(&newID); err != nil {
			return fmt.Errorf("find an unused customer id: %w", err)
		}
		if _, err := tx.Exec(ctx, `WITH moved AS (UPDATE public.payment SET customer_id = $2 WHERE customer_id = $1)
			UPDATE public.customer SET customer_id = $2 WHERE customer_id = $1`, oldID, newID); err != nil {
			return fmt.Errorf("update customer_id: %w", err)
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("workload: change id of customer %d: %w", oldID, err)
	}
	return newID, nil
}

// AbortedTransaction writes to several tables (a new address and customer, a
// rental and its payment, a film description, a film_actor delete) and then
// rolls back, so none of it may reach the targets. It returns an error if a
// write or the rollback failed.
func AbortedTransaction(ctx context.Context, url string) error {
	conn, err := connect(ctx, url)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	tx, err := conn.Begin(ctx)
	if err != nil {
		return fmt.Errorf("workload: aborted transaction: begin: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	for _, s := range []string{
		`WITH a AS (INSERT INTO public.address (address, district, city_id, phone)
			VALUES ('1 Rollback Road', 'Nowhere', (SELECT min(city_id) FROM public.city), '000') RETURNING address_id)
		 INSERT INTO public.customer (store_id, first_name, last_name, address_id)
			SELECT (SELECT min(store_id) FROM public.store), 'ROLLED', 'BACK', address_id FROM a`,
		`WITH r AS (INSERT INTO public.rental (rental_date, inventory_id, customer_id, staff_id)
			VALUES (now(), (SELECT min(inventory_id) FROM public.inventory), (SELECT min(customer_id) FROM public.customer),
			        (SELECT min(staff_id) FROM public.staff)) RETURNING rental_id, customer_id, staff_id)
		 INSERT INTO public.payment (customer_id, staff_id, rental_id, amount, payment_date)
			SELECT customer_id, staff_id, rental_id, 1.99, (SELECT max(payment_date) FROM public.payment) FROM r`,
		`UPDATE public.film SET description = 'rolled back' WHERE film_id = (SELECT min(film_id) FROM public.film)`,
		`DELETE FROM public.film_actor WHERE (actor_id, film_id) = (SELECT actor_id, film_id FROM public.film_actor ORDER BY actor_id, film_id LIMIT 1)`,
	} {
		if _, err := tx.Exec(ctx, s); err != nil {
			return fmt.Errorf("workload: aborted transaction: %w", err)
		}
	}
	if err := tx.Rollback(ctx); err != nil {
		return fmt.Errorf("workload: aborted transaction: rollback: %w", err)
	}
	return nil
}
