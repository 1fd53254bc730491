package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/ferry-migrate/ferry/internal/pipeline"
)

func cmdSync(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlagSet("sync --source URL --mapping FILE [--slot NAME] [--publication NAME]",
		"Streams every committed change from the replication slot (pgoutput) into DynamoDB and onto\n"+
			"Kinesis, in order, exactly once in effect: writes are conditional on the item's _version,\n"+
			"and the slot is acknowledged only after both targets and the checkpoint are durable.\n"+
			"If no backfill has completed for the slot, it runs one first (same flags as backfill, but\n"+
			"no --tables: sync applies every mapped table, as a subset would acknowledge the other\n"+
			"tables' changes on the slot without applying them).\n"+
			"At start, mapped tables the publication lacks (added to the mapping of a running migration)\n"+
			"are added to it and snapshotted online; the other tables are not read again.\n"+
			"Runs until SIGINT/SIGTERM, then applies what it has, checkpoints and exits 0.", stdout)
	cf := addCommonFlags(fs)
	bf := addSyncBackfillFlags(fs)
	truncate := fs.String("truncate", "apply", "what a TRUNCATE does to the table's items: apply (remove them), skip (keep them; the event is still published) or fail (stop)")
	batch := fs.Int("batch", 2000, "most changes applied together (bounds memory for any transaction size)")
	applyWorkers := fs.Int("apply-workers", 16, "concurrent conditional DynamoDB writes")
	checkpointEvery := fs.Duration("checkpoint-every", time.Second, "most frequent checkpoint write (and slot acknowledgement) of a busy stream; after a crash, up to this much is replayed (Kinesis may see it twice)")
	walBudget := fs.String("wal-budget", "1GiB", "warn when the slot retains more WAL than this (e.g. 512MiB, 2GiB)")
	heartbeat := fs.Duration("heartbeat", 10*time.Second, "interval of the logical message that lets an idle slot advance (0 disables)")
	statusEvery := fs.Duration("status-every", 2*time.Second, "interval of the status line")
	chunkRows := fs.Int("snapshot-chunk-rows", 0, "most rows per chunk of an online snapshot (`ferry snapshot`; 0: 250): each chunk is applied with the stream's batch, so this bounds the lag a snapshot adds")
	chunkTime := fs.Duration("snapshot-chunk-time", 250*time.Millisecond, "apply time an online snapshot's chunk aims at: while fewer than --snapshot-chunk-rows rows apply in it (throttling, retries, load), chunks shrink and the snapshot slows down instead of sync's lag growing (0: fixed chunks)")
	snapRate := fs.Float64("snapshot-rate", 0, "most rows per second an online snapshot reads (0: one chunk at a time, as fast as they apply)")
	apply := fs.String("apply", "direct", "who writes DynamoDB: direct (this process, with version-conditional writes) or stream (sync only publishes; the Lambda applier, cmd/ferry-lambda, writes the items from the stream: see \"Scaling the apply with Lambda\" in the README)")
	cataloguePoll := fs.Duration("catalogue-poll", 30*time.Second, "interval at which sync reads the catalogue for what the log does not carry: DETACH/DROP/TRUNCATE/ATTACH of a partition of a mapped table, and new tables that a pattern entry of the mapping maps; 0 disables")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := cf.validate(); err != nil {
		return err
	}
	if err := bf.validate(); err != nil {
		return err
	}
	if *cataloguePoll < 0 {
		return usagef("--catalogue-poll must be 0 (off) or positive, not %s", *cataloguePoll)
	}
	policy := pipeline.TruncatePolicy(*truncate)
	if policy != pipeline.TruncateApply && policy != pipeline.TruncateSkip && policy != pipeline.TruncateFail {
		return usagef("--truncate must be apply, skip or fail, not %q", *truncate)
	}
	if *apply != "direct" && *apply != "stream" {
		return usagef("--apply must be direct or stream, not %q", *apply)
	}
	budget, err := parseBytes(*walBudget)
	if err != nil {
		return usagef("--wal-budget: %v", err)
	}
	if bf.sink != "aws" {
		return usagef("sync needs --sink aws")
	}
	c, err := loadPlan(ctx, cf.source, cf.mapping)
	if err != nil {
		return err
	}
	early := pipeline.SyncConfig{Plan: c.plan, Truncate: policy, ApplyStream: *apply == "stream"}
	if err := early.CheckApplyStream(); err != nil {
		return usageError{err}
	}
	mon, err := startMetrics(ctx, "sync", cf, bf.metricsAddr)
	if err != nil {
		return err
	}
	t, err := setupTargets(ctx, cf, c.plan, bf, mon)
	if err != nil {
		return err
	}
	dynamo, kin := t.dynamo(bf.writers), t.kinesis()
	mon.watchTargets(t, cf.slot, dynamo, kin)
	onError, deadLetter := bf.policy()
	if deadLetter != nil {
		defer deadLetter.Close()
	}
	_, complete, _, err := pipeline.SnapshotPosition(ctx, t.control, cf.slot)
	if err != nil {
		return err
	}
	if !complete || bf.restart {
		fmt.Fprintln(stdout, "No completed backfill for this slot: copying first.")
		cfg := bf.config(cf, c.plan, c.plan)
		cfg.Control = t.control
		cfg.OnError, cfg.DeadLetter = onError, deadLetter
		cfg.Sink = &pipeline.AWSSink{Dynamo: dynamo, Kinesis: kin}
		if err := runBackfill(ctx, cfg, bf.progress, stdout, mon); err != nil {
			return err
		}
		if ctx.Err() != nil {
			return nil
		}
	} else {
		mon.seedBackfill(ctx, t.control, cf.slot)
	}
	hb := *heartbeat
	if hb == 0 {
		hb = -1
	}
	for {
		sl := newStatusLine(stdout)
		scfg := pipeline.SyncConfig{
			SourceURL: cf.source, Slot: cf.slot, Publication: cf.publication, Plan: c.plan,
			Control: t.control, Dynamo: dynamo, Kinesis: kin, DynamoClient: t.ddb,
			BatchChanges: *batch, ApplyWorkers: *applyWorkers, CheckpointEvery: *checkpointEvery, Truncate: policy, WALBudget: budget,
			Heartbeat: hb, StatusEvery: *statusEvery, Status: sl.show,
			OnError: onError, DeadLetter: deadLetter, SnapshotChunkRows: *chunkRows, SnapshotChunkTime: chunkTimeConfig(*chunkTime), SnapshotRate: *snapRate,
			CataloguePoll: *cataloguePoll, ApplyStream: *apply == "stream", KinesisClient: t.kin,
		}

		if mon != nil {
			scfg.Status, scfg.Observer = mon.SyncStatus(sl.show), mon.Metrics
			mon.SetWALBudget(budget)
			mon.WatchDeadLetter(deadLetter)
		}
		err = pipeline.Sync(ctx, scfg)
		sl.done()
		var created *pipeline.TablesCreatedError
		if !errors.As(err, &created) || ctx.Err() != nil {
			break
		}
		// Tables a pattern entry maps were created: compile the plan with
		// them and start again (sync adds them to the publication and
		// snapshots them online).
		fmt.Fprintf(stdout, "New tables that the mapping's patterns map: %s; adding them to the migration.\n", strings.Join(created.Tables, ", "))
		if c, err = loadPlan(ctx, cf.source, cf.mapping); err != nil {
			return err
		}
		if t, err = setupTargets(ctx, cf, c.plan, bf, mon); err != nil {
			return err
		}
		dynamo, kin = t.dynamo(bf.writers), t.kinesis()
		mon.watchTargets(t, cf.slot, dynamo, kin)
	}
	if deadLetter != nil && deadLetter.Count() > 0 {
		fmt.Fprintf(stdout, "%d changes skipped (--on-error=skip), written to the dead-letter file %s\n", deadLetter.Count(), deadLetter.Path)
	}
	if errors.Is(err, pipeline.ErrNoBackfill) || errors.Is(err, pipeline.ErrSlotInUse) {
		return usageError{err}
	}
	return err
}

// addSyncBackfillFlags registers the backfill flags of sync's first run,
// except --tables: sync has no subset. Sync acknowledges the slot as it
// applies, so a sync of some tables would acknowledge the changes of the
// others without applying them, and a later full sync could never get them
// back. (The first run's backfill always copies every mapped table.)
func addSyncBackfillFlags(fs *flag.FlagSet) *backfillFlags {
	all := flag.NewFlagSet(fs.Name(), flag.ContinueOnError)
	bf := addBackfillFlags(all)
	all.VisitAll(func(f *flag.Flag) {
		if f.Name != "tables" {
			fs.Var(f.Value, f.Name, f.Usage)
		}
	})
	return bf
}

// statusLine shows sync's progress: one rewritten line on a terminal, a log
// line otherwise.
type statusLine struct {
	out  io.Writer
	term bool
	last time.Time
}

func newStatusLine(out io.Writer) *statusLine {
	f, ok := out.(*os.File)
	return &statusLine{out: out, term: ok && term.IsTerminal(int(f.Fd()))}
}

func (s *statusLine) show(st pipeline.SyncStatus) {
	last := "-"
	if !st.LastCommit.IsZero() {
		last = fmt.Sprintf("%s @ %s", st.LastCommitLSN, st.LastCommit.UTC().Format("15:04:05.000"))
	}
	snap := ""
	if sp := st.Snapshot; sp != nil {
		state := "table " + st.SnapshotTable
		if sp.Done {
			state = "done"
		}
		snap = fmt.Sprintf("snapshot %s: %s, %d rows, %d chunks", sp.Request, state, sp.Rows, sp.Chunks)
		if !sp.Done && sp.ChunkRows > 0 {
			snap += fmt.Sprintf(" of %d rows", sp.ChunkRows)
		}
	}
	if st.SchemaChanges > 0 {
		snap = strings.TrimSpace(fmt.Sprintf("%s  schema changes followed: %d", snap, st.SchemaChanges))
	}
	if s.term {
		fmt.Fprintf(s.out, "\r\033[K%8.0f changes/s  lag %s / %.1fs  applied %d  last commit %s  retained WAL %s",
			st.ChangesPerSec, humanBytes(st.LagBytes), st.LagSeconds, st.Changes, last, humanBytes(st.RetainedWAL))
		if snap != "" {
			fmt.Fprintf(s.out, "  %s", snap)
		}
		return
	}
	if time.Since(s.last) < 10*time.Second {
		return
	}
	s.last = time.Now()
	slog.Info("sync", "changes_per_s", int64(st.ChangesPerSec), "lag_bytes", st.LagBytes, "lag_s", fmt.Sprintf("%.1f", st.LagSeconds),
		"applied", st.Changes, "last_commit", last, "acked", st.Acked, "retained_wal", st.RetainedWAL, "snapshot", snap)
}

func (s *statusLine) done() {
	if s.term {
		fmt.Fprintln(s.out)
	}
}

// parseBytes reads sizes such as 1GiB, 512MiB, 100MB or a plain byte count.
func parseBytes(s string) (int64, error) {
	units := []struct {
		suffix string
		mult   int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"GB", 1e9}, {"MB", 1e6}, {"KB", 1e3}, {"B", 1}}
	for _, u := range units {
		if strings.HasSuffix(s, u.suffix) {
			var n float64
			if _, err := fmt.Sscan(strings.TrimSuffix(s, u.suffix), &n); err != nil || n <= 0 {
				return 0, fmt.Errorf("bad size %q", s)
			}
			return int64(n * float64(u.mult)), nil
		}
	}
	var n int64
	if _, err := fmt.Sscan(s, &n); err != nil || n <= 0 {
		return 0, fmt.Errorf("bad size %q (use e.g. 1GiB or 512MiB)", s)
	}
	return n, nil
}

// chunkTimeConfig is --snapshot-chunk-time as SyncConfig takes it (there 0
// is the default and a negative duration fixes the chunks' size).
func chunkTimeConfig(d time.Duration) time.Duration {
	if d <= 0 {
		return -1
	}
	return d
}
