package workload

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"
)

// Run drives the workload until cfg.Duration has passed (if set) or ctx is
// cancelled, and returns what it did. Both are normal ends: Run then returns
// a nil error, after the transactions in flight have finished (Duration) or
// been rolled back (ctx). A transaction that fails (a serialization failure,
// a lock timeout, a row that vanished under it) is rolled back, counted in
// Stats.Errors and not retried. Run returns an error when the configuration
// is invalid, the database cannot be prepared (connections, payment
// partitions) or a worker loses its connection for good.
func Run(ctx context.Context, cfg Config) (Stats, error) {
	stats := newStats()
	if err := cfg.Validate(); err != nil {
		return stats, err
	}
	cfg = cfg.withDefaults()
	b, parts, err := prepare(ctx, cfg.SourceURL)
	if err != nil {
		return stats, err
	}
	workers := make([]*worker, cfg.Workers)
	defer func() {
		for _, w := range workers {
			if w != nil && w.conn != nil {
				w.conn.Close(context.WithoutCancel(ctx))
			}
		}
	}()
	mix, total := activeMix(cfg.Mix)
	p, failures := newPacer(cfg.Rate), new(atomic.Int64)
	for i := range workers {
		conn, err := connect(ctx, cfg.SourceURL)
		if err != nil {
			return stats, err
		}
		workers[i] = &worker{
			id: i, workers: cfg.Workers, url: cfg.SourceURL, conn: conn,
			rng: rand.New(rand.NewPCG(uint64(cfg.Seed), uint64(i))),
			mix: mix, total: total, b: b, pacer: p, parts: parts, failures: failures,
			stats: newStats(),
		}
	}

	slog.Info("workload: started", "rate", cfg.Rate, "workers", cfg.Workers, "duration", cfg.Duration, "seed", cfg.Seed)
	start := time.Now()
	g, gctx := errgroup.WithContext(ctx)
	stop, cancel := gctx, context.CancelFunc(func() {})
	if cfg.Duration > 0 {
		stop, cancel = context.WithTimeout(gctx, cfg.Duration)
	}
	defer cancel()
	for _, w := range workers {
		g.Go(func() error { return w.run(gctx, stop) })
	}
	err = g.Wait()
	stats.Elapsed = time.Since(start)
	for _, w := range workers {
		stats.add(w.stats)
	}
	slog.Info("workload: done", "txns", stats.Txns, "rows", stats.Rows, "errors", stats.Errors,
		"elapsed", stats.Elapsed.Round(time.Millisecond), "tps", fmt.Sprintf("%.1f", stats.TxnsPerSecond()))
	return stats, err
}

// prepare creates the payment partitions the run needs and reads the id
// ranges the operations draw from.
func prepare(ctx context.Context, url string) (*bounds, *partitions, error) {
	conn, err := connect(ctx, url)
	if err != nil {
		return nil, nil, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	parts := &partitions{}
	if err := parts.ensure(ctx, conn, time.Now()); err != nil {
		return nil, nil, err
	}
	b, err := loadBounds(ctx, conn)
	if err != nil {
		return nil, nil, err
	}
	return b, parts, nil
}

// activeMix lists the operations with a positive weight and their total.
func activeMix(m Mix) ([]weighted, int) {
	var out []weighted
	total := 0
	for _, e := range m.entries() {
		if e.weight > 0 {
			out = append(out, e)
			total += e.weight
		}
	}
	return out, total
}
