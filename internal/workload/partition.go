package workload

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// partitions makes sure payment has a partition for every month the run
// writes payments into (payment_date = now()). Safe for concurrent use.
type partitions struct {
	mu    sync.Mutex
	until time.Time // every payment_date before until has a partition
}

// ensure creates the partitions of the current and the next month (UTC) when
// fewer than margin of the covered range is left.
func (p *partitions) ensure(ctx context.Context, conn *pgx.Conn, now time.Time) error {
	const margin = 24 * time.Hour
	p.mu.Lock()
	defer p.mu.Unlock()
	if now.Add(margin).Before(p.until) {
		return nil
	}
	from := monthStart(now)
	for range 2 {
		to := from.AddDate(0, 1, 0)
		if err := createPaymentPartition(ctx, conn, from, to); err != nil {
			return err
		}
		from = to
	}
	p.until = from
	return nil
}

func monthStart(t time.Time) time.Time {
	t = t.UTC()
	return time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
}

// PaymentPartition names the payment partition of the month of t (UTC), as
// Pagila does: payment_p2022_01.
func PaymentPartition(t time.Time) string {
	return fmt.Sprintf("payment_p%04d_%02d", t.UTC().Year(), int(t.UTC().Month()))
}

// createPaymentPartition creates payment's partition for [from, to) unless a
// table of that name exists. A range already covered by a partition of
// another name is fine too: payments of that month have a home.
func createPaymentPartition(ctx context.Context, conn *pgx.Conn, from, to time.Time) error {
	name := PaymentPartition(from)
	const ts = "2006-01-02 15:04:05Z07:00"
	sql := fmt.Sprintf("CREATE TABLE IF NOT EXISTS public.%s PARTITION OF public.payment FOR VALUES FROM ('%s') TO ('%s')",
		pgx.Identifier{name}.Sanitize(), from.UTC().Format(ts), to.UTC().Format(ts))
	_, err := conn.Exec(ctx, sql)
	var pgErr *pgconn.PgError
	switch {
	case err == nil:
		slog.Debug("workload: payment partition ready", "table", name)
		return nil
	case errors.As(err, &pgErr) && pgErr.Code == "42P17": // would overlap another partition
		slog.Debug("workload: payment month already partitioned", "table", name, "err", pgErr.Message)
		return nil
	case errors.As(err, &pgErr) && (pgErr.Code == "42P07" || pgErr.Code == "23505"): // created concurrently
		return nil
	default:
		return fmt.Errorf("workload: create payment partition %s: %w", name, err)
	}
}
