package workload

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/ferry-migrate/ferry/extract"
)

// applicationName marks the workload's sessions in pg_stat_activity.
const applicationName = "ferry-workload"

// worker runs transactions one at a time on its own connection. Only its own
// goroutine touches it.
type worker struct {
	id, workers int
	url         string
	conn        *pgx.Conn
	rng         *rand.Rand
	mix         []weighted
	total       int
	b           *bounds
	pacer       *pacer
	parts       *partitions
	failures    *atomic.Int64 // failed transactions of the whole run, for log throttling

	followUps   []int32 // films whose description is long, for opToastFollowUp
	afterCommit func()  // set by an op, run once its transaction committed
	stats       Stats
}

// run does transactions until stop is done; transactions run under ctx, so
// one in flight when stop ends (the run's duration) still commits. It returns
// an error only when the worker cannot go on (its connection is lost for good).
func (w *worker) run(ctx, stop context.Context) error {
	for {
		if err := w.pacer.wait(stop); err != nil {
			return nil
		}
		if err := w.parts.ensure(ctx, w.conn, time.Now()); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		if err := w.step(ctx, w.choose()); err != nil {
			return err
		}
	}
}

// choose draws the next operation: a pending follow-up half the time, else
// an operation of the mix by weight.
func (w *worker) choose() string {
	if len(w.followUps) > 0 && w.rng.IntN(2) == 0 {
		return KindToastFollowUp
	}
	n := w.rng.IntN(w.total)
	for _, e := range w.mix {
		if n < e.weight {
			return e.kind
		}
		n -= e.weight
	}
	panic("unreachable: weights add up to total")
}

// step runs one transaction of kind and counts it.
func (w *worker) step(ctx context.Context, kind string) error {
	var rows int64
	w.afterCommit = nil
	err := pgx.BeginFunc(ctx, w.conn, func(tx pgx.Tx) error {
		var err error
		rows, err = ops[kind](ctx, w, tx)
		return err
	})
	if err == nil {
		if w.afterCommit != nil {
			w.afterCommit()
		}
		w.stats.commit(kind, rows)
		return nil
	}
	if ctx.Err() != nil {
		return nil // cut short by the end of the run: neither done nor failed
	}
	w.stats.fail(kind)
	w.logFailure(kind, err)
	if !w.conn.IsClosed() {
		return nil
	}
	conn, cerr := connect(ctx, w.url)
	if cerr != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("workload: worker %d lost its connection (%v) and could not reconnect: %w", w.id, err, cerr)
	}
	w.conn = conn
	return nil
}

// logFailure logs the first failures of a run as warnings, the rest at debug
// level.
func (w *worker) logFailure(kind string, err error) {
	level := slog.LevelDebug
	if w.failures.Add(1) <= 5 {
		level = slog.LevelWarn
	}
	attrs := []any{"kind", kind, "worker", w.id, "err", err}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		attrs = append(attrs, "sqlstate", pgErr.Code)
	}
	slog.Log(context.Background(), level, "workload: transaction failed (not retried)", attrs...)
}

// in draws an id in r.
func (w *worker) in(r idRange) int32 {
	if r.hi <= r.lo {
		return r.lo
	}
	return r.lo + w.rng.Int32N(r.hi-r.lo+1)
}

// staffOf picks, with draw, a staff member of store (any staff member if the
// store has none).
func (w *worker) staffOf(store int32, draw int) int32 {
	if s := w.b.staffByStore[store]; len(s) > 0 {
		return s[draw%len(s)]
	}
	return w.b.staff[draw%len(w.b.staff)]
}

// connect opens a connection with ferry's session settings, named
// ferry-workload.
func connect(ctx context.Context, url string) (*pgx.Conn, error) {
	cfg, err := extract.ConnConfig(url)
	if err != nil {
		return nil, err
	}
	cfg.RuntimeParams["application_name"] = applicationName
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("workload: connect to %s: %w", extract.Describe(cfg), err)
	}
	return conn, nil
}
