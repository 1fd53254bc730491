package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/ferry-migrate/ferry/extract"
	"github.com/ferry-migrate/ferry/internal/pipeline"
	"github.com/ferry-migrate/ferry/load"
	"github.com/ferry-migrate/ferry/verify"
)

// errDifferences is returned (exit 1) when verify found rows that disagree.
var errDifferences = errors.New("verify: the source and the targets differ (see the report)")

func cmdVerify(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlagSet("verify --source URL --mapping FILE [--tables t1,t2] [--format text|json|markdown|html] [--out FILE] [--stream] [--repair]",
		"Reads the source inside one snapshot, passes every row through the mapping and compares the result\n"+
			"with the DynamoDB items (and, with --stream, with the Kinesis stream folded per row). Key ranges\n"+
			"are compared by digest first, so rows are read once when both sides agree. While `ferry sync` runs,\n"+
			"rows that differ are re-checked after its checkpoint passes them; rows that keep changing are\n"+
			"reported as in flight. --repair rewrites the differing items from the source and re-verifies them:\n"+
			"while sync runs, through sync's online snapshot (the rows are re-read between watermarks and\n"+
			"published on Kinesis too, in order; a row deleted meanwhile is not brought back); otherwise\n"+
			"verify writes DynamoDB itself (version-guarded; the stream does not hear of it).\n\n"+
			"Exit codes: 0 consistent (or every difference repaired), 1 differences, 2 could not check.", stdout)
	source := fs.String("source", "", "PostgreSQL URL of the source database (PG* variables fill the rest)")
	mapping := fs.String("mapping", "", "mapping file (YAML)")
	tables := fs.String("tables", "", "comma-separated subset of mapped tables to check (default: all)")
	format := fs.String("format", "text", "report format: text, json, markdown or html")
	out := fs.String("out", "", "write the report to this file (default: standard output)")
	stream := fs.Bool("stream", false, "also check the Kinesis streams: missing rows, differing rows, duplicates, order inversions; rows whose only events\nthe stream no longer holds (no shard keeps a backfill event: they expired, or the stream was re-created) are expired, not missing")
	repair := fs.Bool("repair", false, "rewrite the items that differ from the source, then re-verify them")
	repairTimeout := fs.Duration("repair-timeout", 10*time.Minute, "with --repair while sync runs: longest wait for sync to re-read the rows (then verify repairs DynamoDB itself)")
	slot := fs.String("slot", "ferry", "sync's replication slot (its checkpoint tells whether sync is running)")
	control := fs.String("control-table", "ferry_control", "DynamoDB table holding ferry's run state and checkpoints")
	rechecks := fs.Int("rechecks", 3, "re-checks of a differing row before it is reported as in flight")
	wait := fs.Duration("wait", 30*time.Second, "bound of each wait for sync's checkpoint (and, with sync --apply stream, for the stream's appliers)")
	segments := fs.Int("segments", 4, "parallel DynamoDB Scan segments")
	workers := fs.Int("workers", 2, "snapshot connections reading the source")
	maxFindings := fs.Int("max-findings", 1000, "findings listed per table or stream (counts are always exact)")
	deadLetter := fs.String("dead-letter", "", "dead-letter file of backfill or sync (--on-error=skip): its rows are reported as dead-lettered\n"+
		"(known differences, still counted as differences) instead of missing, differing or unconvertible.\n"+
		"The dead letters recorded in the control table (by backfill and sync on any machine, and by the\n"+
		"stream appliers) are reported so too, with or without the file")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	for _, f := range [][2]string{{"source", *source}, {"mapping", *mapping}} {
		if err := requireFlag(f[0], f[1]); err != nil {
			return err
		}
	}
	if !slices.Contains(verify.Formats, *format) {
		return usagef("--format must be one of %s, not %q", strings.Join(verify.Formats, ", "), *format)
	}
	if *rechecks < 1 || *segments < 1 || *workers < 1 || *maxFindings < 1 {
		return usagef("--rechecks, --segments, --workers and --max-findings must be at least 1")
	}
	c, err := loadPlan(ctx, *source, *mapping)
	if err != nil {
		return err
	}
	var only []string
	if *tables != "" {
		only = strings.Split(*tables, ",")
		if _, err := c.plan.Restrict(only); err != nil {
			return usageError{err}
		}
	}
	var dead verify.DeadLetters
	if *deadLetter != "" {
		if dead, err = verify.ReadDeadLetters(*deadLetter); err != nil {
			return usageError{err}
		}
	}
	ddb, kin, err := awsClients(ctx)
	if err != nil {
		return err
	}
	ctl := load.NewControlStore(ddb, *control)
	if dead, err = addRecordedDeadLetters(ctx, ctl, dead); err != nil {
		return usageError{fmt.Errorf("the dead letters recorded in the control table: %w", err)} // as the dead-letter file's: nothing was compared
	}
	cfg := verify.Config{
		SourceURL: *source, Plan: c.plan, Tables: only, Dynamo: ddb, Kinesis: kin, Stream: *stream, Repair: *repair,
		Slot: *slot, Rechecks: *rechecks, Wait: *wait, Segments: *segments, Workers: *workers, MaxFindings: *maxFindings,
		DeadLetters: dead, Logger: slog.Default(),
		OnlineRepair: func(ctx context.Context, keys map[string][][]string) error {
			return repairOnline(ctx, ctl, *source, *slot, keys, *repairTimeout)
		},
		Checkpoint: syncCheckpoint(ctl, *slot),
		Refilling: func(ctx context.Context) (map[string]string, error) {
			pending, _, err := pipeline.SnapshotRecords(ctx, ctl, *slot)
			var rnf *types.ResourceNotFoundException
			if errors.As(err, &rnf) {
				return nil, nil
			}
			return pipeline.SchemaRefills(pending), err
		},
		History: func(ctx context.Context) (verify.History, bool, error) {
			lsn, at, complete, ok, err := pipeline.BackfillRecorded(ctx, ctl, *slot)
			var rnf *types.ResourceNotFoundException
			if errors.As(err, &rnf) || (err == nil && !ok) {
				return verify.History{}, false, nil
			}
			h := verify.History{BackfillLSN: lsn}
			if complete {
				h.BackfillDone = at
			}
			return h, err == nil, err
		},
	}
	if *slot != "" {
		if cp, ok, err := pipeline.LoadCheckpoint(ctx, ctl, *slot); err == nil && ok && cp.Apply == pipeline.ApplyStream {
			cfg.Barrier = streamBarrier(ctl, load.NewApplyState(ddb, *control), load.NewKinesisWriter(kin, load.KinesisConfig{}), *slot,
				*wait, 200*time.Millisecond)
		}
		changes, err := pipeline.SchemaChanges(ctx, ctl, *slot)
		var rnf *types.ResourceNotFoundException
		if err != nil && !errors.As(err, &rnf) {
			return usageError{fmt.Errorf("verify could not read the schema changes: %w", err)}
		}
		cfg.KeptAttributes = pipeline.KeptAttributes(changes)
	}
	rep, err := verify.Run(ctx, cfg)
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("verify interrupted")
		}
		return usageError{fmt.Errorf("verify could not check: %w", err)}
	}
	rep.Source = describeSource(*source)
	rep.Mapping = *mapping
	recordVerdict(ctx, ctl, *slot, rep)
	var buf bytes.Buffer
	if err := rep.Write(&buf, *format); err != nil {
		return err
	}
	if err := emitReport(stdout, "verify", *out, rep.Verdict, buf.Bytes()); err != nil {
		return err
	}
	switch rep.ExitCode() {
	case 1:
		return errDifferences
	case 2:
		return usageError{errors.New("verify: some tables or streams could not be checked (see the report)")}
	}
	return nil
}

// describeSource names the source without its password.
func describeSource(url string) string {
	cfg, err := extract.ConnConfig(url)
	if err != nil {
		return "(unparseable URL)"
	}
	return extract.Describe(cfg)
}

// recordVerdict keeps the report's outcome in the control table as the
// slot's last verify (the status page of --metrics-addr shows it). A
// failure is logged: the report itself is the result.
func recordVerdict(ctx context.Context, ctl *load.ControlStore, slot string, rep *verify.Report) {
	r := pipeline.VerifyRecord{Verdict: rep.Verdict, Finished: time.Now().UTC(), Tables: len(rep.Tables), Streams: len(rep.Streams),
		SourceRows: rep.Totals.SourceRows}
	to := rep.Totals
	r.Differences = to.Missing + to.Extra + to.Differing + to.Unconvertible + to.DeadLettered
	for _, s := range rep.Streams {
		r.Differences += s.Missing + s.Extra + s.Differing + s.Unconvertible + s.DeadLettered + s.Inversions
		r.Expired += s.Expired
	}
	r.Summary = fmt.Sprintf("%d rows checked in %d tables, %d differences", r.SourceRows, r.Tables, r.Differences)
	err := pipeline.SaveVerifyRecord(ctx, ctl, slot, r)
	var rnf *types.ResourceNotFoundException
	if errors.As(err, &rnf) {
		return // no control table: no migration run to record it for
	}
	if err != nil {
		slog.Warn("verify: could not record the verdict in the control table", "table", ctl.Table(), "err", err)
	}
}

// addRecordedDeadLetters adds the dead letters recorded in the control table
// (by backfill and sync processes on any machine, and by the Lambda
// appliers) to dead.
func addRecordedDeadLetters(ctx context.Context, ctl *load.ControlStore, dead verify.DeadLetters) (verify.DeadLetters, error) {
	vals, err := ctl.List(ctx, pipeline.DeadLetterID)
	if err != nil {
		var nf *types.ResourceNotFoundException
		if errors.As(err, &nf) {
			return dead, nil // no control table: nothing recorded
		}
		return dead, err
	}
	if len(vals) == 0 {
		return dead, nil
	}
	if dead == nil {
		dead = verify.DeadLetters{}
	}
	for sk, v := range vals {
		if err := dead.Add(bytes.NewReader(v), "the dead letter "+strconv.Quote(sk)+" in "+ctl.Table()); err != nil {
			return dead, err
		}
	}
	return dead, nil
}
