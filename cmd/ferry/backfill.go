package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
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
	fs := newFlagSet("backfill --source URL --mapping FILE [--tables t1,t2] [--workers N]",
		"Copies every mapped table into DynamoDB (one item per row) and publishes one \"r\" event per\n"+
			"row on Kinesis, reading inside the snapshot exported with the replication slot, so that\n"+
			"`ferry sync` continues exactly from the slot's consistent point. Killed and run again, it\n"+
			"continues where it stopped without redoing finished chunks.", stdout)
	source := fs.String("source", "", "PostgreSQL URL of the source database (PG* variables fill the rest)")
	mapping := fs.String("mapping", "", "mapping file (YAML)")
	tables := fs.String("tables", "", "comma-separated subset of mapped tables to copy (default: all)")
	workers := fs.Int("workers", 4, "snapshot connections reading chunks in parallel")
	writers := fs.Int("writers", 8, "concurrent DynamoDB BatchWriteItem calls")
	chunk := fs.Int("chunk-rows", 5000, "rows per primary-key chunk (the unit of resume)")
	slot := fs.String("slot", "ferry", "logical replication slot to create (CDC continues from it)")
	control := fs.String("control-table", "ferry_control", "DynamoDB table holding ferry's run state and checkpoints")
	sink := fs.String("sink", "aws", "aws, or null to read and transform only (measures the source side; writes nothing, keeps no state)")
	shards := fs.Int("shards", 2, "shards of a Kinesis stream that ferry creates")
	restart := fs.Bool("restart", false, "forget the recorded run (drops the slot) and copy everything again")
	progress := fs.String("progress", "auto", "auto (bars on a terminal, log lines otherwise), bar, log or none")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	for _, f := range [][2]string{{"source", *source}, {"mapping", *mapping}} {
		if err := requireFlag(f[0], f[1]); err != nil {
			return err
		}
	}
	if *workers < 1 || *writers < 1 || *chunk < 1 {
		return usagef("--workers, --writers and --chunk-rows must be at least 1")
	}
	if *sink != "aws" && *sink != "null" {
		return usagef("--sink must be aws or null, not %q", *sink)
	}
	c, err := loadPlan(ctx, *source, *mapping)
	if err != nil {
		return err
	}
	plan := c.plan
	if *tables != "" {
		if plan, err = plan.Restrict(strings.Split(*tables, ",")); err != nil {
			return usageError{err}
		}
	}
	cfg := pipeline.BackfillConfig{
		SourceURL: *source, Plan: plan, Slot: *slot, Workers: *workers, ChunkRows: *chunk,
		Restart: *restart, Logger: slog.Default(),
	}
	if *sink == "null" {
		cfg.Sink = pipeline.NullSink{}
	} else {
		ddb, kin, err := awsClients(ctx)
		if err != nil {
			return err
		}
		if err := ensureTargets(ctx, plan, ddb, kin, *shards); err != nil {
			return err
		}
		ctl := load.NewControlStore(ddb, *control)
		if err := ctl.Ensure(ctx); err != nil {
			return fmt.Errorf("control table %s: %w", *control, err)
		}
		cfg.Control = ctl
		cfg.Sink = &pipeline.AWSSink{
			Dynamo:  load.NewDynamoWriter(ddb, load.DynamoConfig{Workers: *writers}),
			Kinesis: load.NewKinesisWriter(kin, load.KinesisConfig{}),
		}
	}
	cfg.Progress = newProgress(*progress, stdout)
	res, err := pipeline.Backfill(ctx, cfg)
	if res != nil {
		printSummary(stdout, res)
	}
	if err != nil {
		if errors.Is(err, pipeline.ErrSlotGone) {
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
	if len(res.Failures) > 0 {
		return errRowsFailed
	}
	return nil
}

// ensureTargets creates missing DynamoDB tables and Kinesis streams.
func ensureTargets(ctx context.Context, plan *transform.Plan, ddb *dynamodb.Client, kin *kinesis.Client, shards int) error {
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
		if err := load.EnsureStreams(ctx, kin, streams, shards); err != nil {
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
	fmt.Fprintln(tw, "table\trows read\titems written\trecords put\tretries\tchunks (skipped)\tfailed\tduration\t")
	var tot pipeline.TableStats
	for _, t := range res.Tables {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d (%d)\t%d\t%s\t\n", t.Table, t.Rows, t.Items, t.Records, t.Retries,
			t.Chunks, t.ChunksSkipped, len(t.Failures), t.Duration.Round(time.Millisecond))
		tot.Rows += t.Rows
		tot.Items += t.Items
		tot.Records += t.Records
		tot.Retries += t.Retries
		tot.Chunks += t.Chunks
		tot.ChunksSkipped += t.ChunksSkipped
	}
	fmt.Fprintf(tw, "total\t%d\t%d\t%d\t%d\t%d (%d)\t%d\t%s\t\n", tot.Rows, tot.Items, tot.Records, tot.Retries,
		tot.Chunks, tot.ChunksSkipped, len(res.Failures), res.Duration.Round(time.Millisecond))
	tw.Flush()
	if res.Duration > 0 {
		fmt.Fprintf(w, "%.0f rows/s\n", float64(tot.Rows)/res.Duration.Seconds())
	}
	if len(res.Failures) > 0 {
		fmt.Fprintf(w, "\n%d rows could not be written (their chunks stay pending; fix and run again):\n", len(res.Failures))
		for _, f := range res.Failures {
			fmt.Fprintf(w, "  %s (%s): %s\n", f.Table, f.Key, f.Reason)
		}
	}
}
