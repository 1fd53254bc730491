package workload

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// op runs one operation inside tx and returns the rows it wrote. Random
// choices are drawn from w.rng before any statement, in a fixed order, so the
// sequence of draws does not depend on the database's answers.
type op func(ctx context.Context, w *worker, tx pgx.Tx) (int64, error)

var ops = map[string]op{
	KindRent:            opRent,
	KindReturn:          opReturn,
	KindNewCustomer:     opNewCustomer,
	KindFilmEdit:        opFilmEdit,
	KindLongDescription: opLongDescription,
	KindToastFollowUp:   opToastFollowUp,
	KindDeletePayment:   opDeletePayment,
	KindDeleteFilmActor: opDeleteFilmActor,
	KindUpdateCustomer:  opUpdateCustomer,
}

// availableInventorySQL finds an inventory item without an open rental among
// the items this worker owns (inventory_id % workers = worker). Owning
// disjoint items keeps two workers from renting the same item at the same
// instant, which is what rental's unique (rental_date, inventory_id,
// customer_id) index would refuse.
const availableInventorySQL = `SELECT i.inventory_id, i.store_id FROM public.inventory i
WHERE i.inventory_id >= $1 AND i.inventory_id % $2 = $3
  AND NOT EXISTS (SELECT 1 FROM public.rental r WHERE r.inventory_id = i.inventory_id AND r.return_date IS NULL)
ORDER BY i.inventory_id LIMIT 1`

var rentSQL = `INSERT INTO public.rental (rental_date, inventory_id, customer_id, staff_id)
VALUES (now(), $1, ` + pickSQL("customer", "customer_id", 2) + `, $3) RETURNING rental_id`

// paymentSQL charges rental $1: the film's rate, plus a day's rate for each
// day beyond the rental duration, at most the replacement cost on top.
const paymentSQL = `INSERT INTO public.payment (customer_id, staff_id, rental_id, amount, payment_date)
SELECT r.customer_id, $2, r.rental_id,
       least(f.rental_rate + greatest(0, extract(day FROM now() - r.rental_date) - f.rental_duration),
             f.rental_rate + f.replacement_cost),
       now()
FROM public.rental r JOIN public.inventory i USING (inventory_id) JOIN public.film f USING (film_id)
WHERE r.rental_id = $1`

// opRent rents an available item to a random customer; half the customers
// pay up front.
func opRent(ctx context.Context, w *worker, tx pgx.Tx) (int64, error) {
	start, customer, staffDraw, pay := w.in(w.b.inventory), w.in(w.b.customer), w.rng.IntN(1<<20), w.rng.IntN(2) == 0
	var inv, store int32
	found, err := firstRow(ctx, tx, func(from int32) pgx.Row {
		return tx.QueryRow(ctx, availableInventorySQL, from, w.workers, w.id)
	}, start, &inv, &store)
	if err != nil || !found {
		return 0, wrap("find available inventory", err)
	}
	staff := w.staffOf(store, staffDraw)
	var rental int32
	if err := tx.QueryRow(ctx, rentSQL, inv, customer, staff).Scan(&rental); err != nil {
		return 0, wrap("insert rental", err)
	}
	if !pay {
		return 1, nil
	}
	tag, err := tx.Exec(ctx, paymentSQL, rental, staff)
	if err != nil {
		return 1, wrap("insert payment", err)
	}
	return 1 + tag.RowsAffected(), nil
}

// opReturn closes an open rental and records its payment.
func opReturn(ctx context.Context, w *worker, tx pgx.Tx) (int64, error) {
	start := w.in(w.b.rental)
	var rental, staff int32
	found, err := firstRow(ctx, tx, func(from int32) pgx.Row {
		return tx.QueryRow(ctx, `SELECT rental_id, staff_id FROM public.rental
			WHERE return_date IS NULL AND rental_id >= $1 ORDER BY rental_id LIMIT 1 FOR UPDATE SKIP LOCKED`, from)
	}, start, &rental, &staff)
	if err != nil || !found {
		return 0, wrap("find open rental", err)
	}
	if _, err := tx.Exec(ctx, "UPDATE public.rental SET return_date = now() WHERE rental_id = $1", rental); err != nil {
		return 0, wrap("return rental", err)
	}
	tag, err := tx.Exec(ctx, paymentSQL, rental, staff)
	if err != nil {
		return 1, wrap("insert payment", err)
	}
	return 1 + tag.RowsAffected(), nil
}

var deletePaymentSQL = `DELETE FROM public.payment p USING (
  (SELECT payment_date, payment_id FROM public.payment WHERE payment_date >= $1 ORDER BY payment_date, payment_id LIMIT 1)
  UNION ALL (SELECT payment_date, payment_id FROM public.payment ORDER BY payment_date, payment_id LIMIT 1) LIMIT 1) d
WHERE p.payment_date = d.payment_date AND p.payment_id = d.payment_id`

// opDeletePayment deletes the first payment at or after a random date of the
// payments that existed at start (a refund).
func opDeletePayment(ctx context.Context, w *worker, tx pgx.Tx) (int64, error) {
	span := w.b.paymentTo.Sub(w.b.paymentFrom)
	at := w.b.paymentFrom
	if span > 0 {
		at = at.Add(time.Duration(w.rng.Int64N(int64(span))))
	}
	tag, err := tx.Exec(ctx, deletePaymentSQL, at)
	if err != nil {
		return 0, wrap("delete payment", err)
	}
	return tag.RowsAffected(), nil
}

// firstRow scans the row query(start) returns, else the row query(0) returns
// (wrapping around), and reports whether there was one.
func firstRow(ctx context.Context, tx pgx.Tx, query func(from int32) pgx.Row, start int32, dst ...any) (bool, error) {
	for _, from := range []int32{start, 0} {
		err := query(from).Scan(dst...)
		if err == nil {
			return true, nil
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return false, err
		}
		if ctx.Err() != nil {
			return false, ctx.Err()
		}
	}
	return false, nil
}

func wrap(what string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", what, err)
}
