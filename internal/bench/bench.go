// Package bench measures ferry against the physical limits of the machine and
// of the services it talks to, each pair on the same data in the same run, so
// that a ratio — not a lucky absolute time — says how close ferry is:
//
//	backfill extract+transform → null sink   vs  COPY (SELECT …) TO STDOUT, discarded
//	backfill into dynalite (items only)      vs  a bare 8-worker BatchWriteItem loop, same items
//	sync decode → null sink                  vs  pg_recvlogical (test_decoding), same WAL
//	sync commit → DynamoDB-visible latency at ~500 changes/s (p50, p99)
//	apply of a backlog: the Lambda applier (--apply stream)  vs  sync --apply direct
//	backfill shared by 2 and 4 processes (--join)  vs  one process
//	verify                                   vs  a bare parallel Scan of the same table
//	peak RSS of backfill at several scales   (flat in the scale)
//
// It runs on a local stack of its own (<repo>/.local/bench: PostgreSQL,
// dynalite, kinesalite), never on the one tests and demos share, and runs
// ferry itself as a child process (the binary under test). `make bench`
// drives it through cmd/bench; nothing here runs in `go test`.
package bench

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"time"
)

// Config selects what a run measures.
type Config struct {
	Factor     int   // scale of the database for the extract and decode pairs
	RSSFactors []int // scales at which the null-sink backfill's peak RSS is measured
	Runs       int   // runs per figure of the fast pairs (extract, decode, verify)
	SlowRuns   int   // runs per figure of the slow pairs (dynalite backfill, latency windows)
	// Latency pair: target rate of the workload, the length of one window,
	// and lower rates measured first (one window each) to show the knee.
	Changes      float64
	Window       time.Duration
	LowerChanges []float64
	Only         []string // pairs to run (extract, dynamo, decode, latency, apply, workers, verify, rss); empty = all
}

func (c Config) want(pair string) bool { return len(c.Only) == 0 || slices.Contains(c.Only, pair) }

// Run measures every selected pair and returns the report.
func Run(ctx context.Context, e *Env, cfg Config) (*Report, error) {
	start := time.Now()
	r := &Report{Factor: cfg.Factor, Runs: cfg.Runs, Started: start, Machine: e.Machine(ctx)}
	fail := func(pair string, err error) (*Report, error) {
		r.Elapsed = time.Since(start)
		return r, fmt.Errorf("%s: %w", pair, err)
	}
	x1, err := e.ScaledDatabase(ctx, 1)
	if err != nil {
		return fail("database x1", err)
	}
	xf, err := e.ScaledDatabase(ctx, cfg.Factor)
	if err != nil {
		return fail(fmt.Sprintf("database x%d", cfg.Factor), err)
	}
	tag := fmt.Sprintf("×%d", cfg.Factor)
	rssByFactor := map[int]Figure{}
	rowsByFactor := map[int]int64{}

	if cfg.want("extract") {
		x, err := e.PairExtract(ctx, xf, cfg.Factor, cfg.Runs)
		if err != nil {
			return fail("extract", err)
		}
		rssByFactor[cfg.Factor], rowsByFactor[cfg.Factor] = x.RSS, x.Rows
		r.Rows = append(r.Rows, Row{
			Name:     fmt.Sprintf("backfill extract+transform → null sink (%s, %d rows)", tag, x.Rows),
			Ferry:    RateFigure(x.Ferry, "rows/s"),
			Baseline: "COPY (SELECT …) TO STDOUT, discarded: " + RateFigure(x.Copy, "rows/s"),
			Ratio:    x.Ratio.Format("%.2f"), Goal: "≥ 0.7", Met: x.Ratio.Median >= 0.7,
		})
	}
	var dyn *DynamoResult
	if cfg.want("dynamo") || cfg.want("verify") {
		if dyn, err = e.PairDynamo(ctx, x1, cfg.SlowRuns); err != nil {
			return fail("dynamo", err)
		}
		r.Rows = append(r.Rows, Row{
			Name:     fmt.Sprintf("backfill into dynalite, items only (×1, %d items)", dyn.Items),
			Ferry:    RateFigure(dyn.Ferry, "items/s"),
			Baseline: "bare 8-worker BatchWriteItem loop, same items: " + RateFigure(dyn.Bare, "items/s"),
			Ratio:    dyn.Ratio.Format("%.2f"), Goal: "≥ 0.9", Met: dyn.Ratio.Median >= 0.9,
		})
	}
	if cfg.want("decode") {
		d, err := e.PairDecode(ctx, fmt.Sprintf("bench_x%d", cfg.Factor), 8*time.Second, cfg.Runs)
		if err != nil {
			return fail("decode", err)
		}
		r.Rows = append(r.Rows, Row{
			Name: fmt.Sprintf("sync decode+transform → null sink (%d changes in %d transactions, %d MiB of WAL)",
				d.Changes, d.Txns, d.WALBytes>>20),
			Ferry:    RateFigure(d.Ferry, "changes/s"),
			Baseline: "pg_recvlogical, test_decoding, same WAL: " + RateFigure(d.Recv, "changes/s"),
			Ratio:    d.Ratio.Format("%.2f"), Goal: "≥ 1.0", Met: d.Ratio.Median >= 1.0,
		})
	}
	if cfg.want("apply") {
		a, err := e.PairApply(ctx, cfg.SlowRuns)
		if err != nil {
			return fail("apply", err)
		}
		r.Rows = append(r.Rows, Row{
			Name: fmt.Sprintf("apply of a %d-change backlog: sync --apply stream + the Lambda applier (RIE, %d shards × ParallelizationFactor %d, 4 environments)",
				a.Changes, a.Shards, a.PF),
			Ferry:    RateFigure(a.Stream, "changes/s"),
			Baseline: "sync --apply direct, same backlog: " + RateFigure(a.Direct, "changes/s"),
			Ratio:    a.Ratio.Format("%.2f"),
			Note:     "stream ÷ direct; both are bound by the one dynalite process on 2 cores (conditional single writes), so the ratio says what stream mode costs or gains here, not what AWS gives: there the applier runs shards × ParallelizationFactor invocations at once (BENCHMARKS.md, on paper)",
		})
	}
	if cfg.want("workers") {
		w, err := e.PairWorkers(ctx, xf, x1, cfg.SlowRuns)
		if err != nil {
			return fail("workers", err)
		}
		r.Rows = append(r.Rows, w.rows(tag)...)
	}
	if cfg.want("latency") {
		l, err := e.PairLatency(ctx, cfg.Changes, cfg.LowerChanges, cfg.Window, cfg.SlowRuns)
		if err != nil {
			return fail("latency", err)
		}
		r.Rows = append(r.Rows, Row{
			Name: fmt.Sprintf("sync commit → DynamoDB-visible, p50 / p99 (workload %.0f changes/s, %d probes in %d windows of %s; %d lost)",
				l.ChangesPerSec, l.Probes, cfg.SlowRuns, cfg.Window, l.Lost),
			Ferry:    l.P50.Format("%.0f ms") + " / " + l.P99.Format("%.0f ms"),
			Baseline: "—",
			Ratio:    "p99 " + l.P99.Format("%.0f ms"), Goal: "p99 ≤ 250 ms", Met: l.P99.Median <= 250 && l.Lost == 0,
			Note: fmt.Sprintf("max %s", l.Max.Format("%.0f ms")),
		})
		for _, pt := range l.Lower {
			r.Rows = append(r.Rows, Row{
				Name:     fmt.Sprintf("  … at a lower rate: workload %.0f changes/s (%d probes in 1 window; %d lost)", pt.ChangesPerSec, pt.Probes, pt.Lost),
				Ferry:    fmt.Sprintf("%.0f ms / %.0f ms", pt.P50, pt.P99),
				Baseline: "—", Ratio: fmt.Sprintf("p99 %.0f ms", pt.P99),
			})
			r.Notes = append(r.Notes, fmt.Sprintf("CPU during the latency windows at %.0f changes/s: %s", pt.ChangesPerSec, pt.CPU))
		}
		r.Notes = append(r.Notes, fmt.Sprintf("CPU during the latency windows at %.0f changes/s: %s", l.ChangesPerSec, l.CPU))
		r.Rows = append(r.Rows, Row{
			Name:     fmt.Sprintf("full backfill, DynamoDB + Kinesis (×1, %d rows; 1 run)", l.BackfillRows),
			Ferry:    Rate(float64(l.BackfillRows)/l.BackfillWall.Seconds()) + " rows/s",
			Baseline: "—", Ratio: fmt.Sprintf("peak RSS %d MiB (sync: %d MiB)", l.BackfillRSS>>20, l.SyncRSS>>20),
		})
	}
	if cfg.want("verify") {
		v, err := e.PairVerify(ctx, x1, dyn, cfg.Runs)
		if err != nil {
			return fail("verify", err)
		}
		r.Rows = append(r.Rows, Row{
			Name:     fmt.Sprintf("verify, DynamoDB (×1, %d rows, %d segments)", v.Rows, segments),
			Ferry:    RateFigure(v.Ferry, "rows/s"),
			Baseline: fmt.Sprintf("bare parallel Scan, %d segments: ", segments) + RateFigure(v.Scan, "items/s"),
			Ratio:    v.Ratio.Format("%.2f"), Goal: "≥ 0.8", Met: v.Ratio.Median >= 0.8,
		})
	}
	if dyn != nil {
		e.DeleteTargets(context.WithoutCancel(ctx), []string{dyn.Target, dyn.Control}, nil)
		if err := dropSlotAndPublication(ctx, x1, dyn.Slot, dyn.Publication); err != nil {
			e.Log.Warn("bench: cleanup", "err", err)
		}
	}
	if cfg.want("rss") {
		for _, f := range cfg.RSSFactors {
			if _, ok := rssByFactor[f]; ok {
				continue
			}
			url, err := e.ScaledDatabase(ctx, f)
			if err != nil {
				return fail(fmt.Sprintf("database x%d", f), err)
			}
			fig, rows, err := e.PairRSS(ctx, url, min(cfg.SlowRuns, 3))
			if err != nil {
				return fail("rss", err)
			}
			rssByFactor[f], rowsByFactor[f] = fig, rows
			e.Log.Info("bench: peak RSS", "factor", f, "rows", rows, "rss_mb", int64(fig.Median)>>20)
		}
		factors := make([]int, 0, len(rssByFactor))
		for f := range rssByFactor {
			factors = append(factors, f)
		}
		slices.Sort(factors)
		var lo, hi float64
		for i, f := range factors {
			fig := rssByFactor[f]
			if i == 0 || fig.Median < lo {
				lo = fig.Median
			}
			hi = max(hi, fig.Median)
			r.Rows = append(r.Rows, Row{
				Name:     fmt.Sprintf("peak RSS of backfill --sink null (×%d, %d rows)", f, rowsByFactor[f]),
				Ferry:    mib(fig),
				Baseline: "—", Ratio: "—", Goal: "≤ 150 MB", Met: fig.Median <= 150<<20,
			})
		}
		if len(factors) > 1 {
			r.Notes = append(r.Notes, fmt.Sprintf("peak RSS from ×%d to ×%d: %.0f–%.0f MiB (flat in N if the spread stays within noise)",
				factors[0], factors[len(factors)-1], lo/(1<<20), hi/(1<<20)))
		}
	}
	if dyn != nil {
		r.Notes = append(r.Notes, fmt.Sprintf("peak RSS of backfill into dynalite (×1): %s", mib(dyn.RSS)))
	}
	r.Elapsed = time.Since(start)
	return r, nil
}

func mib(f Figure) string {
	if f.N == 0 {
		return "—"
	}
	g := Figure{Median: f.Median / (1 << 20), Min: f.Min / (1 << 20), Max: f.Max / (1 << 20), N: f.N}
	return g.Format("%.0f MiB")
}

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }
