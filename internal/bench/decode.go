package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/ferry-migrate/ferry/extract"
	"github.com/ferry-migrate/ferry/internal/workload"
	"github.com/ferry-migrate/ferry/transform"
)

// endMessage is the prefix of the logical message that ends the WAL range.
const endMessage = "ferry_bench_end"

// DecodeToNull is sync's source side with a null sink: the replication
// stream of slot (pgoutput), decoded into changes and turned into items (or
// keys) and Kinesis records exactly as sync does before it writes, then
// discarded. Reading and transforming run in two goroutines, as in sync. It
// stops at the logical message endMessage and returns the changes it saw.
func DecodeToNull(ctx context.Context, url, slot, publication string, plan *transform.Plan) (int64, time.Duration, error) {
	start := time.Now()
	tables := map[string]*extract.Table{}
	tps := map[string]*transform.TablePlan{}
	for _, tp := range plan.Tables {
		tables[tp.Source.QualifiedName()] = tp.Source
		tps[tp.Source.QualifiedName()] = tp
	}
	stream, err := extract.StartReplication(ctx, extract.StreamConfig{URL: url, Slot: slot, Publication: publication, Tables: tables}, 0)
	if err != nil {
		return 0, 0, err
	}
	defer stream.Close(context.Background())
	events := make(chan extract.Event, 4096)
	var changes int64
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		defer close(events)
		for {
			ev, err := stream.Next(gctx)
			if err != nil {
				return err
			}
			if ev.Kind == extract.EventMessage && ev.Prefix == endMessage {
				return nil
			}
			select {
			case events <- ev:
			case <-gctx.Done():
				return gctx.Err()
			}
		}
	})
	g.Go(func() error {
		src := transform.RecordSource{DB: "bench"}
		for ev := range events {
			if ev.Kind != extract.EventChange {
				continue
			}
			changes++
			ch := ev.Change
			tp := tps[ch.Table.QualifiedName()]
			if tp == nil || ch.Op == extract.OpTruncate {
				continue
			}
			var err error
			if ch.After != nil {
				_, _, err = tp.Item(ch.After, ch.Pos)
			} else {
				_, _, err = tp.Key(ch.Before)
			}
			if err != nil {
				return err
			}
			if tp.Stream != "" {
				if _, _, err := tp.Record(ch, src, time.Now()); err != nil {
					return err
				}
			}
		}
		return nil
	})
	err = g.Wait()
	return changes, time.Since(start), err
}

// RecvLogical is the limit: pg_recvlogical with test_decoding over the same
// WAL range, its output written to /dev/null.
func RecvLogical(ctx context.Context, url, slot string, end extract.LSN) (time.Duration, error) {
	bin, err := pgTool("pg_recvlogical")
	if err != nil {
		return 0, err
	}
	start := time.Now()
	cmd := exec.CommandContext(ctx, bin, "-d", url, "--slot", slot, "--start", "--endpos", end.String(),
		"--no-loop", "-f", "/dev/null")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("pg_recvlogical: %w: %s", err, out)
	}
	return time.Since(start), nil
}

// pgTool finds a PostgreSQL client program: $FERRY_PG_BINDIR, `pg_config
// --bindir`, /usr/lib/postgresql/15/bin, then PATH.
func pgTool(name string) (string, error) {
	var dirs []string
	if d := os.Getenv("FERRY_PG_BINDIR"); d != "" {
		dirs = append(dirs, d)
	}
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		dirs = append(dirs, strings.TrimSpace(string(out)))
	}
	dirs = append(dirs, "/usr/lib/postgresql/15/bin")
	for _, d := range dirs {
		p := filepath.Join(d, name)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return exec.LookPath(name)
}

// DecodeResult is the sync-decode pair.
type DecodeResult struct {
	Changes            int64
	WALBytes           int64
	Txns               int64
	Ferry, Recv, Ratio Figure // changes/s
}

// PairDecode produces one WAL range on a clone of src (DVD-store workload
// traffic, then one transaction updating every rental), with 2×runs slots
// created before it, and decodes it runs times each way.
func (e *Env) PairDecode(ctx context.Context, src string, workloadFor time.Duration, runs int) (*DecodeResult, error) {
	const db = "bench_wal"
	url, err := e.Clone(ctx, src, db)
	if err != nil {
		return nil, err
	}
	defer e.Drop(context.WithoutCancel(ctx), db)
	plan, err := LoadPlan(ctx, url, e.pagilaMapping())
	if err != nil {
		return nil, err
	}
	conn, err := extract.Connect(ctx, url)
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.Background())
	var tables []*extract.Table
	for _, tp := range plan.Tables {
		tables = append(tables, tp.Source)
	}
	const pub = "bench_pub"
	if err := extract.EnsurePublication(ctx, conn, pub, tables); err != nil {
		return nil, err
	}
	for i := range runs {
		for _, s := range [][2]string{{fmt.Sprintf("bench_po_%d", i), "pgoutput"}, {fmt.Sprintf("bench_td_%d", i), "test_decoding"}} {
			if _, err := conn.Exec(ctx, "SELECT pg_create_logical_replication_slot($1, $2)", s[0], s[1]); err != nil {
				return nil, fmt.Errorf("create slot %s: %w", s[0], err)
			}
		}
	}
	from, err := extract.CurrentWALLSN(ctx, conn)
	if err != nil {
		return nil, err
	}
	stats, err := workload.Run(ctx, workload.Config{SourceURL: url, Rate: 5000, Workers: 4, Duration: workloadFor})
	if err != nil {
		return nil, fmt.Errorf("workload: %w", err)
	}
	if _, err := workload.UpdateAllRentals(ctx, url); err != nil {
		return nil, err
	}
	var endText string
	if err := conn.QueryRow(ctx, "SELECT pg_logical_emit_message(false, $1, '')::text", endMessage).Scan(&endText); err != nil {
		return nil, err
	}
	end, err := extract.ParseLSN(endText)
	if err != nil {
		return nil, err
	}
	res := &DecodeResult{WALBytes: int64(end - from), Txns: stats.Txns + 1}
	var ferry, recv, ratio []float64
	for i := range runs {
		n, fd, err := DecodeToNull(ctx, url, fmt.Sprintf("bench_po_%d", i), pub, plan)
		if err != nil {
			return nil, fmt.Errorf("decode: %w", err)
		}
		rd, err := RecvLogical(ctx, url, fmt.Sprintf("bench_td_%d", i), end)
		if err != nil {
			return nil, err
		}
		if res.Changes != 0 && n != res.Changes {
			return nil, fmt.Errorf("decode saw %d changes, earlier %d", n, res.Changes)
		}
		if n == 0 {
			return nil, errors.New("decode saw no changes")
		}
		res.Changes = n
		fr, rr := float64(n)/fd.Seconds(), float64(n)/rd.Seconds()
		ferry, recv, ratio = append(ferry, fr), append(recv, rr), append(ratio, fr/rr)
		e.Log.Info("bench: sync decode", "run", i+1, "changes", n, "wal_mb", res.WALBytes>>20,
			"ferry_changes_s", int(fr), "recvlogical_changes_s", int(rr), "ratio", fmt.Sprintf("%.2f", fr/rr))
	}
	res.Ferry, res.Recv, res.Ratio = Summarize(ferry), Summarize(recv), Summarize(ratio)
	return res, nil
}
