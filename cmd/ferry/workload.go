package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/ferry-migrate/ferry/internal/workload"
)

func cmdWorkload(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) > 0 && args[0] == "scale" {
		return cmdWorkloadScale(ctx, args[1:], stdout)
	}
	fs := newFlagSet("workload --source URL [--rate N] [--duration D] [--workers N] [--seed N]\n       ferry workload scale --source URL --factor N",
		"Runs DVD-store traffic against a Pagila database (rentals, returns and payments, new customers,\n"+
			"film edits, ~10 KB TOASTed descriptions, deletes), one transaction per operation, so that\n"+
			"`ferry sync` has live changes to follow. Creates the payment partition of the current month.\n"+
			"Runs for --duration, or until interrupted (Ctrl-C), then prints what it did.\n"+
			"`ferry workload scale --factor N` grows the database N times instead (see its --help).", stdout)
	source := fs.String("source", "", "PostgreSQL URL of the Pagila database to write to")
	rate := fs.Float64("rate", workload.DefaultRate, "transactions per second, shared by all workers")
	duration := fs.Duration("duration", 0, "how long to run (e.g. 30s, 5m); 0 runs until interrupted")
	workers := fs.Int("workers", workload.DefaultWorkers, "connections, each running one transaction at a time")
	seed := fs.Int64("seed", workload.DefaultSeed, "seed of the (deterministic) sequence of operations")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := requireFlag("source", *source); err != nil {
		return err
	}
	if *rate <= 0 || *workers <= 0 || *duration < 0 || *seed == 0 {
		return usagef("workload: want --rate > 0, --workers > 0, --duration >= 0 and --seed != 0 (got %v, %d, %v, %d)",
			*rate, *workers, *duration, *seed)
	}
	cfg := workload.Config{SourceURL: *source, Rate: *rate, Duration: *duration, Workers: *workers, Seed: *seed}
	if err := cfg.Validate(); err != nil {
		return usageError{err}
	}
	stats, err := workload.Run(ctx, cfg)
	var connErr *pgconn.ConnectError
	if errors.As(err, &connErr) {
		return usageError{err}
	}
	if stats.Txns > 0 || stats.Errors > 0 {
		printWorkload(stdout, stats, *rate)
	}
	return err
}

// printWorkload prints per kind the committed transactions, the rows they
// wrote and the failed transactions, then the rate reached.
func printWorkload(w io.Writer, s workload.Stats, target float64) {
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "kind\ttransactions\trows\terrors\t")
	for _, k := range workload.Kinds {
		if s.ByKind[k] == 0 && s.ErrorsByKind[k] == 0 {
			continue
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t\n", k, s.ByKind[k], s.RowsByKind[k], s.ErrorsByKind[k])
	}
	fmt.Fprintf(tw, "total\t%d\t%d\t%d\t\n", s.Txns, s.Rows, s.Errors)
	tw.Flush()
	fmt.Fprintf(w, "%.1f transactions/s over %s (target %g/s)\n", s.TxnsPerSecond(), s.Elapsed.Round(time.Millisecond), target)
}

func cmdWorkloadScale(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlagSet("workload scale --source URL --factor N [--workers N]",
		"Grows a pristine Pagila database to N times its rows, deterministically (the same rows on every\n"+
			"run and machine): customers with their addresses, actors, films (with their actors and\n"+
			"categories, some descriptions several KB long), inventory, rentals and payments across the\n"+
			"monthly payment partitions; every foreign key stays valid. Copies that exist are kept, so\n"+
			"--factor 10 then --factor 100 equals --factor 100. Run it before `ferry workload`.", stdout)
	source := fs.String("source", "", "PostgreSQL URL of the Pagila database to grow")
	factor := fs.Int("factor", 10, fmt.Sprintf("size to reach, as a multiple of the reference rows (1..%d)", workload.MaxScaleFactor))
	workers := fs.Int("workers", 2, "connections inserting copies in parallel")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := requireFlag("source", *source); err != nil {
		return err
	}
	if *factor < 1 || *factor > workload.MaxScaleFactor || *workers < 1 {
		return usagef("workload scale: want 1 <= --factor <= %d and --workers >= 1 (got %d, %d)", workload.MaxScaleFactor, *factor, *workers)
	}
	res, err := workload.Scale(ctx, workload.ScaleConfig{SourceURL: *source, Factor: *factor, Workers: *workers})
	var connErr *pgconn.ConnectError
	if errors.As(err, &connErr) {
		return usageError{err}
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "scaled to x%d: %d copies, %d rows inserted in %s\n", res.Factor, res.CopiesMade, res.Rows, res.Elapsed.Round(time.Millisecond))
	return nil
}
