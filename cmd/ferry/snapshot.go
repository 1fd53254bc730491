package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ferry-migrate/ferry/extract"
	"github.com/ferry-migrate/ferry/internal/pipeline"
	"github.com/ferry-migrate/ferry/load"
	"github.com/ferry-migrate/ferry/transform"
)

// maxRequestBytes bounds a snapshot request: it is one control-table item,
// and DynamoDB items hold at most 400 KB (keys and attribute names included).
const maxRequestBytes = 380 << 10

func cmdSnapshot(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlagSet("snapshot --source URL --mapping FILE --tables t1,t2 [--where SQL] [--keys FILE] [--slot NAME] [--wait]",
		"Asks the running `ferry sync` on the slot to re-read tables (or some of their rows) while it goes\n"+
			"on streaming: an online snapshot. Sync reads the rows in primary-key chunks between watermarks\n"+
			"in the change stream, so a re-read row never overtakes a newer change of the same row, and\n"+
			"writes them to DynamoDB and Kinesis as read events (op \"r\"). Requests are queued in the control\n"+
			"table and taken one at a time, oldest first; a restarted sync resumes the one under way at the\n"+
			"chunk after the last durable one. Prints the request id; `ferry status` shows the progress.\n\n"+
			"sync must be running on the slot (its replication slot active): without it nothing is written\n"+
			"and the exit code is 2.\n\n"+
			"--keys FILE lists the rows to re-read, one primary key a line: the key columns' text values in\n"+
			"primary-key order, separated by one TAB, as written (no quoting or escaping; a trailing CR is\n"+
			"dropped). Blank lines are skipped. It needs exactly one table in --tables.\n\n"+
			"Exit codes: 0 requested (with --wait: done, or waiting interrupted), 1 a failure while\n"+
			"requesting or following, 2 usage or configuration errors (no request is written).", stdout)
	cf := &commonFlags{}
	fs.StringVar(&cf.source, "source", "", "PostgreSQL URL of the source database (PG* variables fill the rest)")
	fs.StringVar(&cf.mapping, "mapping", "", "mapping file (YAML)")
	fs.StringVar(&cf.slot, "slot", "ferry", "replication slot of the running sync that takes the snapshot")
	fs.StringVar(&cf.control, "control-table", load.DefaultControlTable, "DynamoDB table holding ferry's run state and checkpoints (the one sync uses)")
	tables := fs.String("tables", "", "comma-separated mapped tables to re-read, in this order (required)")
	where := fs.String("where", "", "SQL condition the re-read rows must meet, e.g. \"last_update > now() - interval '1 day'\":\n"+
		"it runs on the source as written (ferry adds no quoting), ANDed to each chunk's key range,\n"+
		"on every table of --tables; it is planned (EXPLAIN) on each table before the request is written")
	keys := fs.String("keys", "", "file of primary keys to re-read, one a line, key columns separated by a TAB\n(needs exactly one table in --tables)")
	wait := fs.Bool("wait", false, "follow the snapshot until it is done, printing its progress (SIGINT stops following, not the snapshot)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := cf.validate(); err != nil {
		return err
	}
	if err := requireFlag("tables", *tables); err != nil {
		return err
	}
	names, err := splitTables(*tables)
	if err != nil {
		return err
	}
	if *keys != "" && len(names) != 1 {
		return usagef("--keys needs exactly one table in --tables, not %d (%s)", len(names), strings.Join(names, ", "))
	}
	c, err := loadPlan(ctx, cf.source, cf.mapping)
	if err != nil {
		return err
	}
	plan, err := c.plan.Restrict(names)
	if err != nil {
		return usageError{err}
	}
	req := pipeline.SnapshotRequest{Where: strings.TrimSpace(*where), Origin: "snapshot"}
	for _, tp := range plan.Tables {
		if slices.Contains(req.Tables, tp.Source.QualifiedName()) {
			return usagef("--tables: %s is named twice", tp.Source.QualifiedName())
		}
		req.Tables = append(req.Tables, tp.Source.QualifiedName())
	}
	var keyLines []int
	if *keys != "" {
		if req.Keys, keyLines, err = readKeysFile(*keys, plan.Tables[0].Source); err != nil {
			return usageError{err}
		}
		if len(req.Keys) == 0 {
			return usagef("--keys %s: no keys in the file", *keys)
		}
	}

	conn, err := extract.Connect(ctx, cf.source)
	if err != nil {
		return usageError{err}
	}
	defer conn.Close(context.Background())
	if err := requireRunningSync(ctx, conn, cf.slot); err != nil {
		return err
	}
	if err := checkSnapshotSQL(ctx, conn, plan, req, *keys, keyLines); err != nil {
		return err
	}
	// Keys as PostgreSQL prints them: sync deletes the items of the keys it
	// does not find, so "007" must be the row 7, not a key of its own.
	if req.Keys != nil {
		if req.Keys, err = extract.CanonicalKeys(ctx, conn, plan.Tables[0].Source, req.Keys); err != nil {
			return err
		}
	}

	ddb, _, err := awsClients(ctx)
	if err != nil {
		return err
	}
	ctl := load.NewControlStore(ddb, cf.control)
	req.Created = time.Now().UTC()
	req.ID = pipeline.NewSnapshotID(req.Created)
	if b, _ := json.Marshal(req); len(b) > maxRequestBytes {
		return usagef("--keys %s: %d keys make a request of %s, more than a control-table item holds (%s): split the file or use --where",
			*keys, len(req.Keys), humanBytes(int64(len(b))), humanBytes(maxRequestBytes))
	}
	if err := pipeline.SaveSnapshotRequest(ctx, ctl, cf.slot, req); err != nil {
		if isMissingTable(err) {
			return usagef("control table %s does not exist: give the --control-table that `ferry sync` uses", cf.control)
		}
		return err
	}
	what := strings.Join(req.Tables, ", ")
	if len(req.Keys) > 0 {
		what = fmt.Sprintf("%d keys of %s", len(req.Keys), what)
	}
	fmt.Fprintf(stdout, "snapshot %s requested: %s (sync on slot %s takes it; `ferry status` shows its progress)\n", req.ID, what, cf.slot)
	if !*wait {
		return nil
	}
	return followSnapshot(ctx, stdout, snapshotFollower{conn: conn, ctl: ctl, slot: cf.slot, source: cf.source}, req, time.Second)
}

// splitTables reads --tables: names separated by commas, blanks ignored.
func splitTables(s string) ([]string, error) {
	var out []string
	for _, n := range strings.Split(s, ",") {
		if n = strings.TrimSpace(n); n != "" {
			out = append(out, n)
		}
	}
	if len(out) == 0 {
		return nil, usagef("--tables names no table")
	}
	return out, nil
}

// errNoSync is the error (exit 2) of a snapshot asked for without a running sync.
func errNoSync(slot, why string) error {
	return usagef("no sync is running on slot %s (%s): start `ferry sync` first; the snapshot is taken by the running sync", slot, why)
}

// requireRunningSync returns a usage error unless the slot exists and is
// active: a sync streams from it (or is copying before it streams).
func requireRunningSync(ctx context.Context, conn *pgx.Conn, slot string) error {
	info, exists, err := extract.LookupSlot(ctx, conn, slot)
	switch {
	case err != nil:
		return err
	case !exists:
		return errNoSync(slot, "the replication slot does not exist")
	case !info.Active:
		return errNoSync(slot, "the replication slot is not active")
	}
	return nil
}

// readKeysFile reads a --keys file for table t; it returns the keys and the
// line number of each.
func readKeysFile(path string, t *extract.Table) ([][]string, []int, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("--keys: %w", err)
	}
	defer f.Close()
	return parseKeys(f, path, t.PKNames())
}

// parseKeys reads primary keys, one a line: the values of the key columns
// (pk, in key order) separated by a TAB. Blank lines are skipped and a
// trailing CR is dropped; a line with another number of fields is an error
// naming name:line.
func parseKeys(r io.Reader, name string, pk []string) ([][]string, []int, error) {
	var keys [][]string
	var lines []int
	br := bufio.NewReader(r)
	for n := 1; ; n++ {
		line, err := br.ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, nil, fmt.Errorf("%s:%d: %w", name, n, err)
		}
		if line == "" && err != nil {
			break
		}
		line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
		if line != "" {
			fields := strings.Split(line, "\t")
			if len(fields) != len(pk) {
				return nil, nil, fmt.Errorf("%s:%d: %d %s, want %d (%s, separated by a TAB)",
					name, n, len(fields), plural(len(fields), "field", "fields"), len(pk), strings.Join(pk, ", "))
			}
			keys = append(keys, fields)
			lines = append(lines, n)
		}
		if err != nil {
			break
		}
	}
	return keys, lines, nil
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// checkSnapshotSQL plans (EXPLAIN, nothing runs) the first chunk read of each
// table, in a read-only transaction, so that a --where that does not parse or
// names a missing column, or a key value its column's type refuses, is a
// usage error here rather than a stopped sync.
func checkSnapshotSQL(ctx context.Context, conn *pgx.Conn, plan *transform.Plan, req pipeline.SnapshotRequest, keysFile string, keyLines []int) error {
	explain := func(t *extract.Table, k extract.KeyChunk) error {
		tx, err := conn.BeginTx(ctx, pgx.TxOptions{AccessMode: pgx.ReadOnly})
		if err != nil {
			return err
		}
		defer tx.Rollback(context.Background())
		rows, err := tx.Query(ctx, "EXPLAIN "+k.Query(t))
		if err != nil {
			return err
		}
		rows.Close()
		return rows.Err()
	}
	for _, tp := range plan.Tables {
		if req.Where == "" {
			break
		}
		if err := explain(tp.Source, extract.KeyChunk{Where: req.Where, Limit: 1}); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return usagef("--where does not fit table %s: %v", tp.Source.QualifiedName(), err)
		}
	}
	if len(req.Keys) == 0 {
		return nil
	}
	t := plan.Tables[0].Source
	if explain(t, extract.KeyChunk{Keys: req.Keys}) == nil {
		return nil
	}
	for i, k := range req.Keys { // name the first line the column types refuse
		if err := explain(t, extract.KeyChunk{Keys: [][]string{k}}); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return usagef("%s:%d: not a primary key of %s (%s): %v", keysFile, keyLines[i], t.QualifiedName(), strings.Join(t.PKNames(), ", "), err)
		}
	}
	return nil
}

// snapshotFollower reads what --wait follows: the control-table records and
// the slot.
type snapshotFollower struct {
	conn   *pgx.Conn
	ctl    *load.ControlStore
	slot   string
	source string
}

// snapshotView is one reading of an online snapshot's state.
type snapshotView struct {
	pending  []pipeline.SnapshotRequest
	done     map[string]pipeline.SnapshotProgress
	progress *pipeline.SnapshotProgress // the checkpoint's, nil when none
	active   bool                       // the slot is active (sync runs)
}

func (f *snapshotFollower) read(ctx context.Context) (snapshotView, error) {
	var v snapshotView
	var err error
	if v.pending, v.done, err = pipeline.SnapshotRecords(ctx, f.ctl, f.slot); err != nil {
		return v, err
	}
	cp, ok, err := pipeline.LoadCheckpoint(ctx, f.ctl, f.slot)
	if err != nil {
		return v, err
	}
	if ok {
		v.progress = cp.Snapshot
	}
	if f.conn == nil || f.conn.IsClosed() {
		if f.conn, err = extract.Connect(ctx, f.source); err != nil {
			return v, err
		}
	}
	info, exists, err := extract.LookupSlot(ctx, f.conn, f.slot)
	if err != nil {
		f.conn.Close(context.Background())
		return v, err
	}
	v.active = exists && info.Active
	return v, nil
}

// followSnapshot polls every interval until the request's done record exists,
// printing a progress line whenever it changes. SIGINT (ctx) stops following
// with nil: the snapshot goes on in sync.
func followSnapshot(ctx context.Context, out io.Writer, f snapshotFollower, req pipeline.SnapshotRequest, interval time.Duration) error {
	const maxFailures = 60 // consecutive failed readings before giving up
	// read may have connected again: close whichever connection is left.
	defer func() {
		if f.conn != nil {
			f.conn.Close(context.Background())
		}
	}()
	var last string
	failures, gone := 0, 0
	stopped := false
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		v, err := f.read(ctx)
		switch {
		case ctx.Err() != nil:
		case err != nil:
			failures++
			if failures == 1 {
				slog.Warn("cannot read the snapshot's progress; retrying", "snapshot", req.ID, "err", err)
			}
			if failures >= maxFailures {
				return fmt.Errorf("following snapshot %s: %w (the snapshot goes on in sync; `ferry status` shows it)", req.ID, err)
			}
		default:
			failures = 0
			if d, ok := v.done[req.ID]; ok {
				fmt.Fprintln(out, snapshotSummary(req, d, time.Now()))
				return nil
			}
			queued := slices.IndexFunc(v.pending, func(r pipeline.SnapshotRequest) bool { return r.ID == req.ID })
			if queued < 0 {
				if gone++; gone >= 2 { // not a read between done# and the request's delete
					return fmt.Errorf("snapshot %s: its request is gone without a record of its end (was the run state torn down?)", req.ID)
				}
				break
			}
			gone = 0
			if !v.active && !stopped {
				fmt.Fprintf(out, "snapshot %s: no sync is running on slot %s: still waiting; sync resumes the snapshot when it is started again\n", req.ID, f.slot)
			} else if v.active && stopped {
				fmt.Fprintf(out, "snapshot %s: sync is running again on slot %s\n", req.ID, f.slot)
			}
			stopped = !v.active
			line := snapshotWaitLine(req, v.progress, queued)
			if line != last {
				fmt.Fprintln(out, line)
				last = line
			}
		}
		select {
		case <-ctx.Done():
			fmt.Fprintf(out, "stopped following: snapshot %s is still running in sync (`ferry status` shows it)\n", req.ID)
			return nil
		case <-tick.C:
		}
	}
}

// snapshotWaitLine is --wait's line for a pending request: its progress when
// sync works on it, else its place in the queue (queued: its index among the
// pending requests, oldest first).
func snapshotWaitLine(req pipeline.SnapshotRequest, p *pipeline.SnapshotProgress, queued int) string {
	if p != nil && p.Request == req.ID {
		return snapshotProgressLine(req, *p)
	}
	if queued == 0 {
		return fmt.Sprintf("snapshot %s: queued, next", req.ID)
	}
	return fmt.Sprintf("snapshot %s: queued behind %d %s", req.ID, queued, plural(queued, "request", "requests"))
}

// snapshotProgressLine formats the progress of the request under way, e.g.
// "snapshot ID: table public.rental (1/2), 4000 rows, 8 chunks".
func snapshotProgressLine(req pipeline.SnapshotRequest, p pipeline.SnapshotProgress) string {
	var b strings.Builder
	fmt.Fprintf(&b, "snapshot %s: ", req.ID)
	switch n := len(req.Tables); {
	case p.Table >= 0 && p.Table < n:
		fmt.Fprintf(&b, "table %s (%d/%d), ", req.Tables[p.Table], p.Table+1, n)
	case p.Table == n: // sync's progress past the last table
		fmt.Fprintf(&b, "%d/%d %s read, ", n, n, plural(n, "table", "tables"))
	}
	if len(req.Keys) > 0 {
		fmt.Fprintf(&b, "%d/%d keys, ", p.KeysDone, len(req.Keys))
	}
	fmt.Fprintf(&b, "%d rows, %d %s", p.Rows, p.Chunks, plural(int(p.Chunks), "chunk", "chunks"))
	if p.Done {
		b.WriteString(", finishing")
	}
	return b.String()
}

// snapshotSummary is the line of a finished snapshot seen at now.
func snapshotSummary(req pipeline.SnapshotRequest, d pipeline.SnapshotProgress, now time.Time) string {
	start := d.Started
	if start.IsZero() {
		start = req.Created
	}
	return fmt.Sprintf("snapshot %s done: %d %s, %d rows in %d %s, %s",
		req.ID, len(req.Tables), plural(len(req.Tables), "table", "tables"), d.Rows, d.Chunks, plural(int(d.Chunks), "chunk", "chunks"),
		now.Sub(start).Round(time.Second))
}
