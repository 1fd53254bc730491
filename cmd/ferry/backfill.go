package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/ferry-migrate/ferry/internal/pipeline"
	"github.com/ferry-migrate/ferry/load"
	"github.com/ferry-migrate/ferry/transform"
)

func cmdBackfill(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlagSet("backfill --source URL --mapping FILE [--tables t1,t2] [--workers N] [--join]",
		"Copies every mapped table into DynamoDB (one item per row) and publishes one \"r\" event per\n"+
			"row on Kinesis, reading inside the snapshot exported with the replication slot, so that\n"+
			"`ferry sync` continues exactly from the slot's consistent point. Killed and run again, it\n"+
			"continues where it stopped without redoing finished chunks.\n"+
			"With --join, on any machine, it is a worker of the backfill that a `ferry backfill` with the\n"+
			"same --slot and --control-table coordinates: it imports that snapshot and takes chunks,\n"+
			"leased in the control table (the chunks of a worker that dies are taken over).", stdout)
	cf := addCommonFlags(fs)
	bf := addBackfillFlags(fs)
	fs.BoolVar(&bf.join, "join", false, "join the backfill a coordinator (ferry backfill with the same --slot, --control-table and mapping) runs:\n"+
		"import its snapshot and copy its chunks beside it, until every chunk is done")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := cf.validate(); err != nil {
		return err
	}
	fs.Visit(func(f *flag.Flag) { bf.nullState = bf.nullState || f.Name == "control-table" && bf.sink == "null" })
	if err := bf.validate(); err != nil {
		return err
	}
	c, err := loadPlan(ctx, cf.source, cf.mapping)
	if err != nil {
		return err
	}
	plan := c.plan
	if bf.tables != "" {
		if plan, err = plan.Restrict(strings.Split(bf.tables, ",")); err != nil {
			return usageError{err}
		}
	}
	cfg := bf.config(cf, c.plan, plan)
	mon, err := startMetrics(ctx, "backfill", cf, bf.metricsAddr)
	if err != nil {
		return err
	}
	if bf.sink == "null" {
		cfg.Sink = pipeline.NullSink{}
		if bf.nullState {
			// Nothing is written, but the run's state is kept: resumable,
			// and shared with --join workers (how `make bench` measures
			// the leases' cost without DynamoDB's).
			ddb, _, err := awsClients(ctx)
			if err != nil {
				return err
			}
			cfg.Control = load.NewControlStore(ddb, cf.control)
			if err := cfg.Control.Ensure(ctx); err != nil {
				return usagef("control table %s: %v", cf.control, err)
			}
		}
	} else {
		t, err := setupTargets(ctx, cf, c.plan, bf, mon)
		if err != nil {
			return err
		}
		cfg.Control = t.control
		dynamo, kin := t.dynamo(bf.writers), t.kinesis()
		cfg.Sink = &pipeline.AWSSink{Dynamo: dynamo, Kinesis: kin}
		mon.watchTargets(t, cf.slot, dynamo, kin)
	}
	if cfg.DeadLetter != nil {
		defer cfg.DeadLetter.Close()
	}
	return runBackfill(ctx, cfg, bf.progress, stdout, mon)
}

// runBackfill runs a configured backfill and prints its summary; mon (nil:
// none) sees its progress and batches.
func runBackfill(ctx context.Context, cfg pipeline.BackfillConfig, progress string, stdout io.Writer, mon *monitor) error {
	cfg.Progress = newProgress(progress, stdout)
	if mon != nil {
		cfg.Progress = mon.Progress(cfg.Progress)
		cfg.Sink = mon.Sink(cfg.Sink)
		mon.WatchDeadLetter(cfg.DeadLetter)
	}
	res, err := pipeline.Backfill(ctx, cfg)
	if errors.Is(err, pipeline.ErrBackfillComplete) {
		fmt.Fprintf(stdout, "Backfill of slot %s is complete: nothing to join.\n", cfg.Slot)
		return nil
	}
	if res != nil {
		printSummary(stdout, res)
		if cfg.Control != nil && !cfg.Join && err == nil {
			printWorkerTally(ctx, stdout, cfg)
		}
	}
	if err != nil {
		// A sync streams from the slot (plain backfill or --restart): refused
		// before anything is written.
		var active *pipeline.SlotActiveError
		if errors.Is(err, pipeline.ErrSlotGone) || errors.As(err, &active) {
			return usageError{err}
		}
		if ctx.Err() != nil {
			return fmt.Errorf("backfill interrupted; run the same command again to continue where it stopped")
		}
		if res == nil && !errors.Is(err, context.Canceled) {
			return usageError{fmt.Errorf("backfill could not start: %w", err)}
		}
		return fmt.Errorf("backfill stopped: %w; run the same command again to continue where it stopped", err)
	}
	if len(res.Failures) > res.Skipped {
		return errRowsFailed
	}
	return nil
}

// ensureTargets creates missing DynamoDB tables and Kinesis streams.
func ensureTargets(ctx context.Context, plan *transform.Plan, ddb *dynamodb.Client, kin *kinesis.Client, streamOpts load.StreamOptions) error {
	var specs []load.TableSpec
	for _, t := range plan.Targets() {
		spec := load.TableSpec{Name: t.Name, Key: load.KeySchema{PK: t.PK, SK: t.SK}}
		for name, k := range t.GSIs {
			spec.GSIs = append(spec.GSIs, load.GSISpec{Name: name, Key: load.KeySchema{PK: k[0], SK: k[1]}})
		}
		specs = append(specs, spec)
	}
	if err := load.EnsureTables(ctx, ddb, specs); err != nil {
		return usageError{fmt.Errorf("DynamoDB tables: %w", err)}
	}
	if streams := plan.Streams(); len(streams) > 0 {
		if err := load.EnsureStreamsWith(ctx, kin, streams, streamOpts); err != nil {
			return usageError{fmt.Errorf("Kinesis streams: %w", err)}
		}
	}
	return nil
}

func printSummary(w io.Writer, res *pipeline.BackfillResult) {
	fmt.Fprintln(w)
	mode := "fresh snapshot"
	if res.Resumed {
		mode = fmt.Sprintf("resumed, remaining chunks read at %s", res.ReadLSN)
	}
	fmt.Fprintf(w, "Backfill at snapshot LSN %s (%s); CDC continues from %s\n", res.ReadLSN, mode, res.SlotLSN)
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', tabwriter.AlignRight)
	failed := "failed"
	if res.Skipped > 0 {
		failed = "dead-lettered"
	}
	fmt.Fprintf(tw, "table\trows read\titems written\trecords put\tretries\tchunks (skipped)\t%s\tduration\tchunks by others\tlost\t\n", failed)
	var tot pipeline.TableStats
	for _, t := range res.Tables {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d (%d)\t%d\t%s\t%d\t%d\t\n", t.Table, t.Rows, t.Items, t.Records, t.Retries,
			t.Chunks, t.ChunksSkipped, len(t.Failures), t.Duration.Round(time.Millisecond), t.ChunksElsewhere, t.ChunksLost)
		tot.Rows += t.Rows
		tot.Items += t.Items
		tot.Records += t.Records
		tot.Retries += t.Retries
		tot.Chunks += t.Chunks
		tot.ChunksSkipped += t.ChunksSkipped
		tot.ChunksElsewhere += t.ChunksElsewhere
		tot.ChunksLost += t.ChunksLost
	}
	fmt.Fprintf(tw, "total\t%d\t%d\t%d\t%d\t%d (%d)\t%d\t%s\t%d\t%d\t\n", tot.Rows, tot.Items, tot.Records, tot.Retries,
		tot.Chunks, tot.ChunksSkipped, len(res.Failures), res.Duration.Round(time.Millisecond), tot.ChunksElsewhere, tot.ChunksLost)
	tw.Flush()
	if res.Duration > 0 {
		fmt.Fprintf(w, "%.0f rows/s\n", float64(tot.Rows)/res.Duration.Seconds())
	}
	if r := res.StreamRequest; r != nil {
		// See internal/pipeline/backfill_resume.go.
		fmt.Fprintf(w, "\nResumed at a newer snapshot than the slot's: the rows of %s went to DynamoDB only. Sync publishes them\n"+
			"on Kinesis through an online snapshot (request %s) when it starts, after the older changes it replays,\n"+
			"so no consumer sees a row go back in time.\n", strings.Join(r.Tables, ", "), r.ID)
	}
	switch {
	case res.Skipped > 0:
		fmt.Fprintf(w, "\n%d rows skipped (--on-error=skip), written to the dead-letter file %s:\n", res.Skipped, deadLetterPath(res))
	case len(res.Failures) > 0:
		fmt.Fprintf(w, "\n%d rows could not be written (their chunks stay pending; fix and run again, or use --on-error=skip):\n", len(res.Failures))
	}
	for _, f := range res.Failures {
		fmt.Fprintf(w, "  %s (%s): %s\n", f.Table, f.Key, f.Reason)
	}
}

func deadLetterPath(res *pipeline.BackfillResult) string {
	if res.DeadLetter == "" {
		return pipeline.DefaultDeadLetter
	}
	return res.DeadLetter
}

// printWorkerTally prints, after a coordinator's copy, which worker
// recorded how many chunks done: each chunk is recorded by one worker once
// (its lease's last holder), so the counts add up to the chunks.
func printWorkerTally(ctx context.Context, w io.Writer, cfg pipeline.BackfillConfig) {
	a, err := pipeline.Activity(ctx, cfg.Control, cfg.Slot)
	if err != nil {
		cfg.Logger.Warn("chunks by worker not read", "err", err)
		return
	}
	fmt.Fprintf(w, "\nChunks recorded done: %d of %d (%d rows), each by one worker:\n", a.ChunksDone, a.ChunksPlanned, a.RowsDone)
	for _, name := range slices.Sorted(maps.Keys(a.DoneBy)) {
		label := name
		if label == "" {
			label = "(a run before leases)"
		}
		fmt.Fprintf(w, "  %s: %d chunks\n", label, a.DoneBy[name])
	}
}
