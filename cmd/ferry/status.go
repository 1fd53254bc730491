package main

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"golang.org/x/sync/errgroup"

	"github.com/ferry-migrate/ferry/extract"
	"github.com/ferry-migrate/ferry/internal/pipeline"
	"github.com/ferry-migrate/ferry/load"
	"github.com/ferry-migrate/ferry/transform"
)

func cmdStatus(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlagSet("status --source URL --mapping FILE [--slot NAME] [--publication NAME]",
		"Prints the replication slot (active, confirmed LSN, retained WAL), the publication (its table\n"+
			"count and the mapped tables missing from it, whose changes sync never gets), the backfill\n"+
			"state (its chunks; its workers with their chunks, rows and rates; the chunks being copied and\n"+
			"their leases), the stored sync checkpoint, and per table the source row count beside the DynamoDB item count\n"+
			"(a parallel Scan with Select=COUNT: it reads the whole table).", stdout)
	cf := addCommonFlags(fs)
	counts := fs.Bool("counts", true, "count source rows and DynamoDB items per table")
	wait := fs.Duration("wait-caught-up", 0, "first wait (at most this long) until sync has applied every change committed before now: the moment to cut over")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := cf.validate(); err != nil {
		return err
	}
	c, err := loadPlan(ctx, cf.source, cf.mapping)
	if err != nil {
		return err
	}
	if *wait > 0 {
		start := time.Now()
		if err := pipeline.WaitCaughtUp(ctx, cf.source, cf.slot, *wait); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "caught up: every change committed before the call is applied (waited %s)\n", time.Since(start).Round(time.Millisecond))
	}
	conn, err := extract.Connect(ctx, cf.source)
	if err != nil {
		return usageError{err}
	}
	defer conn.Close(context.Background())
	info, exists, err := extract.LookupSlot(ctx, conn, cf.slot)
	if err != nil {
		return err
	}
	if exists {
		fmt.Fprintf(stdout, "slot %s: active=%v confirmed=%s restart=%s retained WAL %s (wal_status %s)\n",
			cf.slot, info.Active, info.ConfirmedFlushLSN, info.RestartLSN, humanBytes(info.RetainedBytes), info.WALStatus)
	} else {
		fmt.Fprintf(stdout, "slot %s: does not exist\n", cf.slot)
	}
	if err := printPublication(ctx, conn, stdout, cf.publication, c.plan); err != nil {
		return err
	}
	ddb, _, err := awsClients(ctx)
	if err != nil {
		return err
	}
	ctl := load.NewControlStore(ddb, cf.control)
	lsn, complete, ok, err := pipeline.SnapshotPosition(ctx, ctl, cf.slot)
	switch {
	case err != nil && !isMissingTable(err):
		return err
	case ok:
		fmt.Fprintf(stdout, "backfill: snapshot at %s, complete=%v\n", lsn, complete)
		a, err := pipeline.Activity(ctx, ctl, cf.slot)
		if err != nil {
			return err
		}
		for _, line := range backfillActivityLines(a, time.Now()) {
			fmt.Fprintln(stdout, "  "+line)
		}
	default:
		fmt.Fprintln(stdout, "backfill: none recorded")
	}
	cp, ok, err := pipeline.LoadCheckpoint(ctx, ctl, cf.slot)
	switch {
	case err != nil && !isMissingTable(err):
		return err
	case ok:
		fmt.Fprintf(stdout, "sync checkpoint: %s (last change %s), %d changes applied, last commit %s, written %s ago\n",
			cp.LSN, cp.Pos.Version(), cp.Changes, cp.CommitTime.UTC().Format(time.RFC3339Nano), time.Since(cp.Updated).Round(time.Second))
	default:
		fmt.Fprintln(stdout, "sync checkpoint: none (sync has not run)")
	}
	pending, done, err := pipeline.SnapshotRecords(ctx, ctl, cf.slot)
	switch {
	case err != nil && !isMissingTable(err):
		return err
	case err == nil:
		estimate := func(table string) int64 {
			if tp := c.plan.Table(table); tp != nil {
				return tp.Source.EstimatedRows
			}
			return -1
		}
		for _, l := range snapshotStatusLines(pending, done, cp.Snapshot, exists && info.Active, estimate, time.Now()) {
			fmt.Fprintln(stdout, l)
		}
	}
	changes, err := pipeline.SchemaChanges(ctx, ctl, cf.slot)
	switch {
	case err != nil && !isMissingTable(err):
		return err
	case err == nil:
		for _, l := range schemaStatusLines(changes) {
			fmt.Fprintln(stdout, l)
		}
	}
	for _, stream := range c.plan.Streams() {
		pos, err := load.NewApplyState(ddb, ctl.Table()).ShardPositions(ctx, stream)
		switch {
		case err != nil && !isMissingTable(err):
			return err
		case err == nil:
			for _, l := range applierStatusLines(stream, pos, cp.LSN, ok, time.Now()) {
				fmt.Fprintln(stdout, l)
			}
		}
	}
	if !*counts {
		return nil
	}
	items, err := countItems(ctx, ddb, c.plan)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 2, 8, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "table\tsource rows\tDynamoDB items\t")
	for _, tp := range c.plan.Tables {
		var n int64
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM "+tp.Source.Ident()).Scan(&n); err != nil {
			return fmt.Errorf("count %s: %w", tp.Source.QualifiedName(), err)
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t\n", tp.Source.QualifiedName(), n, items[tp.Target+"\x00"+tp.Source.Name])
	}
	return tw.Flush()
}

// countItems counts items per (target, _table) with a parallel COUNT scan.
func countItems(ctx context.Context, ddb *dynamodb.Client, plan *transform.Plan) (map[string]int64, error) {
	const segments = 4
	out := map[string]int64{}
	var mu sync.Mutex
	for target := range plan.Targets() {
		g, gctx := errgroup.WithContext(ctx)
		for seg := int32(0); seg < segments; seg++ {
			g.Go(func() error {
				p := dynamodb.NewScanPaginator(ddb, &dynamodb.ScanInput{
					TableName: aws.String(target), Segment: aws.Int32(seg), TotalSegments: aws.Int32(segments),
					ProjectionExpression:     aws.String("#t"),
					ExpressionAttributeNames: map[string]string{"#t": transform.AttrTable},
				})
				local := map[string]int64{}
				for p.HasMorePages() {
					page, err := p.NextPage(gctx)
					if err != nil {
						return fmt.Errorf("scan %s: %w", target, err)
					}
					for _, it := range page.Items {
						if s, ok := it[transform.AttrTable].(*types.AttributeValueMemberS); ok {
							local[target+"\x00"+s.Value]++
						}
					}
				}
				mu.Lock()
				for k, v := range local {
					out[k] += v
				}
				mu.Unlock()
				return nil
			})
		}
		if err := g.Wait(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// snapshotStatus lists at most this many queued and finished online snapshots.
const snapshotStatusMax = 5

// snapshotStatusLines describes the online snapshots of a slot: the one under
// way (cur: the checkpoint's progress), the queued requests and the last
// finished ones. active tells whether sync runs; estimate returns a table's
// estimated row count (-1 unknown), for the ETA.
func snapshotStatusLines(pending []pipeline.SnapshotRequest, done map[string]pipeline.SnapshotProgress, cur *pipeline.SnapshotProgress,
	active bool, estimate func(table string) int64, now time.Time) []string {
	if len(pending) == 0 && len(done) == 0 {
		return []string{"online snapshots: none requested"}
	}
	var out []string
	for i, r := range pending {
		if i == snapshotStatusMax {
			out = append(out, fmt.Sprintf("  … and %d more queued", len(pending)-i))
			break
		}
		if cur == nil || cur.Request != r.ID {
			out = append(out, fmt.Sprintf("online snapshot %s: queued (%s), requested %s", r.ID, describeRequest(r), r.Created.UTC().Format(time.RFC3339)))
			continue
		}
		l := "online " + snapshotProgressLine(r, *cur)
		if !cur.Started.IsZero() {
			l += fmt.Sprintf(", started %s (%s ago)", cur.Started.UTC().Format(time.RFC3339), now.Sub(cur.Started).Round(time.Second))
		}
		if active {
			l += ", " + snapshotETA(r, *cur, estimate, now)
		} else {
			l += ", paused: no sync is running (it resumes the snapshot when started)"
		}
		out = append(out, l)
	}
	ids := make([]string, 0, len(done))
	for id := range done {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	if len(ids) > snapshotStatusMax {
		out = append(out, fmt.Sprintf("online snapshots finished: %d (the last %d:)", len(ids), snapshotStatusMax))
		ids = ids[len(ids)-snapshotStatusMax:]
	}
	for i := len(ids) - 1; i >= 0; i-- {
		d := done[ids[i]]
		l := fmt.Sprintf("online snapshot %s: done, %d rows in %d %s", ids[i], d.Rows, d.Chunks, plural(int(d.Chunks), "chunk", "chunks"))
		if len(d.Tables) > 0 {
			l += " (" + strings.Join(d.Tables, ", ") + originText(d.Origin) + ")"
		}
		if !d.Started.IsZero() {
			l += ", started " + d.Started.UTC().Format(time.RFC3339)
		}
		out = append(out, l)
	}
	return out
}

// schemaStatusLines lists the schema changes sync has seen (the last few).
func schemaStatusLines(changes []pipeline.SchemaChange) []string {
	if len(changes) == 0 {
		return []string{"schema changes: none seen"}
	}
	followed, stopped := 0, 0
	for _, c := range changes {
		if c.Action == "stopped" {
			stopped++
		} else {
			followed++
		}
	}
	out := []string{fmt.Sprintf("schema changes: %d followed, %d stopped at", followed, stopped)}
	for _, c := range changes[max(0, len(changes)-snapshotStatusMax):] {
		l := fmt.Sprintf("  %s %s at %s: %s", c.Action, c.Table, c.LSN, c.Describe())
		if c.Refill != "" {
			l += " (re-read by online snapshot " + c.Refill + ")"
		}
		out = append(out, l)
	}
	return out
}

// describeRequest names what a request re-reads.
func describeRequest(r pipeline.SnapshotRequest) string {
	s := strings.Join(r.Tables, ", ")
	if len(r.Keys) > 0 {
		s = fmt.Sprintf("%d keys of %s", len(r.Keys), s)
	}
	if r.Where != "" {
		s += " where " + truncateText(r.Where, 60)
	}
	ranges := 0
	for _, rs := range r.Ranges {
		ranges += len(rs)
	}
	if ranges > 0 {
		s += fmt.Sprintf(" in %d key %s", ranges, plural(ranges, "range", "ranges"))
	}
	return s + originText(r.Origin)
}

// originText says who asked for an online snapshot other than `ferry
// snapshot`.
func originText(origin string) string {
	switch origin {
	case pipeline.OriginSync:
		return "; tables added to the mapping"
	case pipeline.OriginBackfill:
		return "; a resumed backfill's rows, for the stream"
	case pipeline.OriginVerify:
		return "; verify --repair"
	case pipeline.OriginSchema:
		return "; a schema change"
	}
	return ""
}

func truncateText(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n]) + "…"
	}
	return s
}

// snapshotETA estimates the time left of the snapshot under way from the rows
// done so far (p.Rows counts the whole request; with --keys, the keys done)
// and the rows expected: the keys listed, or the tables' estimated row counts. A --where snapshot has
// no estimate.
func snapshotETA(r pipeline.SnapshotRequest, p pipeline.SnapshotProgress, estimate func(string) int64, now time.Time) string {
	var total int64
	done, unit := p.Rows, "rows"
	switch {
	case len(r.Keys) > 0:
		total, done, unit = int64(len(r.Keys)), int64(p.KeysDone), "keys"
	case r.Where != "":
		return "ETA unknown (--where)"
	default:
		for _, t := range r.Tables {
			n := estimate(t)
			if n < 0 {
				return "ETA unknown (" + t + " has no row estimate: ANALYZE it)"
			}
			total += n
		}
	}
	elapsed := now.Sub(p.Started)
	if p.Started.IsZero() || done <= 0 || elapsed <= 0 {
		return fmt.Sprintf("ETA unknown (none done yet of ~%d %s)", total, unit)
	}
	if done >= total {
		return fmt.Sprintf("ETA unknown (past the estimate of %d %s)", total, unit)
	}
	rate := float64(done) / elapsed.Seconds()
	eta := time.Duration(float64(total-done) / rate * float64(time.Second))
	prec := 0
	if rate < 10 {
		prec = 1
	}
	return fmt.Sprintf("ETA %s (%.*f %s/s, ~%d %s in all)", eta.Round(time.Second), prec, rate, unit, total, unit)
}

// applierStatusLines describes the Lambda applier's progress on one stream
// (sync --apply stream): per shard, the newest source position applied, how
// far that is behind sync's checkpoint (the WAL sync has published), when it
// was applied and the records' iterator age then. Nothing when no applier
// has run on the stream.
func applierStatusLines(stream string, pos []load.ShardPosition, checkpoint extract.LSN, checkpointed bool, now time.Time) []string {
	if len(pos) == 0 {
		return nil
	}
	slices.SortFunc(pos, func(a, b load.ShardPosition) int { return strings.Compare(a.Shard, b.Shard) })
	out := []string{fmt.Sprintf("applier on stream %s (sync --apply stream): %d shards with applied changes", stream, len(pos))}
	for _, p := range pos {
		at, err := extract.ParseVersion(p.Version)
		line := fmt.Sprintf("  %s: applied to %s", p.Shard, p.Version)
		if err == nil {
			line = fmt.Sprintf("  %s: applied to %s:%d", p.Shard, at.LSN, at.Seq)
			if checkpointed && checkpoint > at.LSN {
				line += fmt.Sprintf(" (%s of WAL behind sync's checkpoint)", humanBytes(int64(checkpoint-at.LSN)))
			}
		}
		line += fmt.Sprintf(", %s ago, iterator age then %s", now.Sub(p.At).Round(time.Second), p.IteratorAge.Round(time.Millisecond))
		out = append(out, line)
	}
	return out
}

// backfillActivityLines shows a backfill's chunks, its workers (from their
// heartbeats: chunks and rows recorded done, rate, leases lost) and the
// chunks being copied now (their leases).
func backfillActivityLines(a *pipeline.BackfillActivity, now time.Time) []string {
	lines := []string{fmt.Sprintf("chunks: %d of %d done (%d rows), %d being copied", a.ChunksDone, a.ChunksPlanned, a.RowsDone, len(a.Held))}
	held := map[string][]string{}
	for _, l := range a.Held {
		state := "expires in " + l.Expires.Sub(now).Round(100*time.Millisecond).String()
		if l.Expired(now) {
			state = "expired " + now.Sub(l.Expires).Round(100*time.Millisecond).String() + " ago: to be taken over"
		}
		held[l.Owner] = append(held[l.Owner], strings.TrimPrefix(l.Key, "done:")+" ("+state+")")
	}
	for _, w := range a.Workers {
		state := "running"
		switch {
		case w.Ended:
			state = "ended"
		case w.Stale(now):
			state = "silent for " + now.Sub(w.Updated).Round(time.Second).String() + " (dead or cut off?)"
		}
		line := fmt.Sprintf("worker %s (%s, %d connections, run %s): %s, %d chunks, %d rows, %.0f rows/s, %d leases lost",
			w.Worker, w.Role, w.Workers, w.RunID, state, w.Chunks, w.Rows, w.Rate, w.Lost)
		if h := held[w.Worker]; len(h) > 0 {
			line += "; copying " + strings.Join(h, ", ")
			delete(held, w.Worker)
		}
		lines = append(lines, line)
	}
	for _, owner := range slices.Sorted(maps.Keys(held)) {
		lines = append(lines, fmt.Sprintf("worker %s (no heartbeat): copying %s", owner, strings.Join(held[owner], ", ")))
	}
	return lines
}
