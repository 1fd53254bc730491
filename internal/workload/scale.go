package workload

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"golang.org/x/sync/errgroup"
)

// ScaleConfig describes a Scale run.
type ScaleConfig struct {
	// SourceURL is the PostgreSQL URL of the Pagila database to grow.
	SourceURL string
	// Factor is the size to reach, as a multiple of the reference rows:
	// Factor 10 leaves ten copies of every scaled row (the original and nine
	// more). 1 changes nothing.
	Factor int
	// Workers is the number of connections inserting copies (default 2).
	Workers int
	// CopiesPerTxn is how many copies one transaction inserts (default 5).
	CopiesPerTxn int
	// Progress, if set, is called after each committed group of copies.
	Progress func(done, total int)
}

// MaxScaleFactor keeps every scaled id within PostgreSQL's integer range.
const MaxScaleFactor = 10_000

// scaleStride is the id offset between two copies of a table: copy k of the
// row with id i has id i + k*stride. Rows with id below the stride are the
// reference rows that get copied; rows above it are earlier copies (or rows a
// workload added after scaling). The strides leave room above pristine Pagila
// (599 customers, 16,049 rentals, payment ids up to 32,098) for what a
// workload adds before scaling.
var scaleStride = map[string]int64{
	"address":   10_000,
	"customer":  10_000,
	"actor":     1_000,
	"film":      10_000,
	"inventory": 100_000,
	"rental":    100_000,
	"payment":   100_000,
}

// ScaledTables lists the tables Scale grows, in insertion (foreign key) order.
// film_actor and film_category follow film and actor; the reference tables
// (country, city, language, category, store, staff) keep their rows.
var ScaledTables = []string{"address", "customer", "actor", "film", "film_actor", "film_category", "inventory", "rental", "payment"}

// ScaleResult says what Scale did.
type ScaleResult struct {
	Factor     int
	CopiesMade int   // copies inserted by this run (the others existed)
	Rows       int64 // rows inserted by this run
	Elapsed    time.Duration
}

// Scale grows a Pagila database to Factor times its reference rows: customers
// with their addresses, actors, films with their actors and categories,
// inventory, rentals and payments (spread over the monthly payment
// partitions by payment_date). Copy k of a row is derived from the row and k
// by arithmetic alone (no random()), so the result is the same on every run
// and on every machine, and every foreign key points into the same copy.
// Text varies per copy (names recombined, house numbers, postal codes and
// phone numbers recomputed, film titles numbered II, III, …, one film
// description in twenty several kilobytes long) and so do NULLs (emails,
// address2, original_language_id, length, active).
//
// Scale is idempotent and incremental: copies that exist are kept, so
// Factor 10 then Factor 100 gives the same database as Factor 100 at once.
// Each group of copies is one transaction; an interrupted run leaves whole
// copies only. The id sequences are moved past the new rows and the tables
// analysed, so a workload can run afterwards. Run it before a workload: rows
// a workload adds above a stride are not reference rows and are not copied.
func Scale(ctx context.Context, cfg ScaleConfig) (ScaleResult, error) {
	res := ScaleResult{Factor: cfg.Factor}
	if cfg.SourceURL == "" {
		return res, errors.New("workload scale: SourceURL is required")
	}
	if cfg.Factor < 1 || cfg.Factor > MaxScaleFactor {
		return res, fmt.Errorf("workload scale: factor %d outside 1..%d", cfg.Factor, MaxScaleFactor)
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 2
	}
	if cfg.CopiesPerTxn <= 0 {
		cfg.CopiesPerTxn = 5
	}
	start := time.Now()
	conn, err := connect(ctx, cfg.SourceURL)
	if err != nil {
		return res, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if err := checkReference(ctx, conn); err != nil {
		return res, err
	}
	missing, err := missingCopies(ctx, conn, cfg.Factor)
	if err != nil {
		return res, err
	}
	var groups [][]int32
	for i := 0; i < len(missing); i += cfg.CopiesPerTxn {
		groups = append(groups, missing[i:min(i+cfg.CopiesPerTxn, len(missing))])
	}
	slog.Info("workload scale: started", "factor", cfg.Factor, "copies", len(missing), "transactions", len(groups))

	todo := make(chan []int32, len(groups))
	for _, g := range groups {
		todo <- g
	}
	close(todo)
	var mu sync.Mutex
	done := 0
	g, gctx := errgroup.WithContext(ctx)
	for range min(cfg.Workers, max(len(groups), 1)) {
		g.Go(func() error {
			c, err := connect(gctx, cfg.SourceURL)
			if err != nil {
				return err
			}
			defer c.Close(context.WithoutCancel(gctx))
			for ks := range todo {
				n, err := insertCopies(gctx, c, ks)
				if err != nil {
					return err
				}
				mu.Lock()
				res.Rows += n
				res.CopiesMade += len(ks)
				done++
				if cfg.Progress != nil {
					cfg.Progress(done, len(groups))
				}
				mu.Unlock()
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return res, err
	}
	if len(missing) > 0 {
		if err := finishScale(ctx, conn); err != nil {
			return res, err
		}
	}
	res.Elapsed = time.Since(start)
	slog.Info("workload scale: done", "factor", cfg.Factor, "copies", res.CopiesMade, "rows", res.Rows,
		"elapsed", res.Elapsed.Round(time.Millisecond))
	return res, nil
}

// checkReference makes sure the reference rows fit below the strides and
// point at reference rows, so that every copy's foreign keys resolve.
func checkReference(ctx context.Context, conn *pgx.Conn) error {
	checks := []struct{ what, sql string }{
		{"customers", "SELECT count(*) FROM public.customer WHERE customer_id < 10000 AND address_id >= 10000"},
		{"film_actor rows", "SELECT count(*) FROM public.film_actor WHERE (film_id < 10000) <> (actor_id < 1000)"},
		{"inventory rows", "SELECT count(*) FROM public.inventory WHERE inventory_id < 100000 AND film_id >= 10000"},
		{"rentals", "SELECT count(*) FROM public.rental WHERE rental_id < 100000 AND (inventory_id >= 100000 OR customer_id >= 10000)"},
		{"payments", "SELECT count(*) FROM public.payment WHERE payment_id < 100000 AND (rental_id >= 100000 OR customer_id >= 10000)"},
	}
	for _, c := range checks {
		var n int64
		if err := conn.QueryRow(ctx, c.sql).Scan(&n); err != nil {
			return fmt.Errorf("workload scale: check reference %s: %w", c.what, err)
		}
		if n > 0 {
			return fmt.Errorf("workload scale: %d reference %s point at rows above the copy stride; scale a pristine Pagila (before running a workload)", n, c.what)
		}
	}
	var n int64
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM public.customer WHERE customer_id < 10000").Scan(&n); err != nil {
		return fmt.Errorf("workload scale: count reference customers: %w", err)
	}
	if n == 0 {
		return errors.New("workload scale: no reference customers; is this a Pagila database?")
	}
	return nil
}

// missingCopies lists the copies 1..factor-1 whose rows are not there yet
// (a copy is inserted in one transaction, so its first customer marks it).
func missingCopies(ctx context.Context, conn *pgx.Conn, factor int) ([]int32, error) {
	rows, err := conn.Query(ctx, `SELECT k::int FROM generate_series(1, $1 - 1) k
WHERE NOT EXISTS (SELECT 1 FROM public.customer c
  WHERE c.customer_id = k * 10000 + (SELECT min(customer_id) FROM public.customer WHERE customer_id < 10000))
ORDER BY k`, factor)
	if err != nil {
		return nil, fmt.Errorf("workload scale: find missing copies: %w", err)
	}
	ks, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		return nil, fmt.Errorf("workload scale: find missing copies: %w", err)
	}
	return ks, nil
}

// insertCopies inserts copies ks of every scaled table in one transaction
// and returns the rows inserted.
func insertCopies(ctx context.Context, conn *pgx.Conn, ks []int32) (int64, error) {
	var rows int64
	err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SET LOCAL synchronous_commit = off"); err != nil {
			return err
		}
		for _, t := range ScaledTables {
			tag, err := tx.Exec(ctx, scaleSQL[t], ks)
			if err != nil {
				return fmt.Errorf("%s: %w", t, err)
			}
			rows += tag.RowsAffected()
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("workload scale: copies %v: %w", ks, err)
	}
	return rows, nil
}

// finishScale moves the id sequences past the copies and refreshes the
// planner's statistics.
func finishScale(ctx context.Context, conn *pgx.Conn) error {
	for _, tc := range [][2]string{
		{"address", "address_id"}, {"customer", "customer_id"}, {"actor", "actor_id"}, {"film", "film_id"},
		{"inventory", "inventory_id"}, {"rental", "rental_id"}, {"payment", "payment_id"},
	} {
		// Pagila's sequences are column defaults (not OWNED BY): take the
		// sequence from the default expression.
		sql := fmt.Sprintf(`SELECT setval(q.s::regclass, (SELECT max(%[2]s) FROM public.%[1]s))
FROM pg_attrdef d JOIN pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum,
  LATERAL (SELECT substring(pg_get_expr(d.adbin, d.adrelid) from 'nextval\(''([^'']+)''') AS s) q
WHERE d.adrelid = 'public.%[1]s'::regclass AND a.attname = '%[2]s' AND q.s IS NOT NULL`, tc[0], tc[1])
		if _, err := conn.Exec(ctx, sql); err != nil {
			return fmt.Errorf("workload scale: move sequence of %s: %w", tc[0], err)
		}
	}
	if _, err := conn.Exec(ctx, "ANALYZE public.address, public.customer, public.actor, public.film, public.film_actor, public.film_category, public.inventory, public.rental, public.payment"); err != nil {
		return fmt.Errorf("workload scale: analyze: %w", err)
	}
	return nil
}
