package bench

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ferry-migrate/ferry/extract"
	"github.com/ferry-migrate/ferry/internal/stack"
	"github.com/ferry-migrate/ferry/internal/workload"
	"github.com/ferry-migrate/ferry/transform"
)

// LatencyResult is sync's commit → DynamoDB-visible latency under load.
type LatencyResult struct {
	P50, P99, Max Figure  // milliseconds, one value per window
	Probes        int     // probes in all windows
	Lost          int     // probes not visible within the timeout
	ChangesPerSec float64 // the workload's rows changed per second (all windows)
	// The full backfill (DynamoDB and Kinesis) that sync started from.
	BackfillRows int64
	BackfillWall time.Duration
	BackfillRSS  int64
	SyncRSS      int64
}

// probeTimeout bounds the wait for one probe to become visible.
const probeTimeout = 10 * time.Second

// PairLatency backfills a clone of the pristine Pagila into DynamoDB and
// Kinesis, starts `ferry sync`, runs the DVD-store workload at about
// changesPerSec rows changed per second and, windows times for window each,
// probes: it commits an update of one address that nothing else touches
// (address 1's address2 = "probe N") every probeEvery and polls GetItem
// (strongly consistent) until DynamoDB shows it. Latency = the commit's
// return → the first GetItem that shows the new value.
func (e *Env) PairLatency(ctx context.Context, changesPerSec float64, window time.Duration, windows int) (*LatencyResult, error) {
	const db = "bench_sync"
	url, err := e.Clone(ctx, stack.TemplateDB, db)
	if err != nil {
		return nil, err
	}
	defer e.Drop(context.WithoutCancel(ctx), db)
	target, stream, ctl, slot, pub := "bench_sync", "bench-sync", "bench_sync_control", "bench_sync", "bench_sync"
	mapping, err := e.Mapping(target, stream)
	if err != nil {
		return nil, err
	}
	defer e.DeleteTargets(context.WithoutCancel(ctx), []string{target, ctl}, []string{stream})
	common := []string{"--source", url, "--mapping", mapping, "--slot", slot, "--publication", pub, "--control-table", ctl, "--progress", "none"}
	res := &LatencyResult{}
	c, err := e.RunFerry(ctx, "backfill-full-x1", append([]string{"backfill"}, common...)...)
	if err != nil {
		return nil, err
	}
	if res.BackfillRows, err = summaryRows(c.Stdout); err != nil {
		return nil, err
	}
	res.BackfillWall, res.BackfillRSS = c.Wall, c.PeakRSS
	e.Log.Info("bench: full backfill (DynamoDB + Kinesis)", "rows", res.BackfillRows, "took", c.Wall.Round(time.Millisecond),
		"rows_s", int(float64(res.BackfillRows)/c.Wall.Seconds()), "rss_mb", c.PeakRSS>>20)

	sctx, cancelSync := context.WithCancel(ctx)
	defer cancelSync()
	syncProc, err := e.StartFerry(sctx, "sync-x1", append([]string{"sync"}, common...)...)
	if err != nil {
		return nil, err
	}
	defer func() {
		syncProc.Stop()
		if c, err := syncProc.Wait(); err == nil {
			res.SyncRSS = c.PeakRSS
		} else if ctx.Err() == nil {
			e.Log.Warn("bench: sync", "err", err)
		}
	}()

	plan, err := LoadPlan(ctx, url, mapping)
	if err != nil {
		return nil, err
	}
	p, err := newProber(ctx, e, url, plan.Table("address"))
	if err != nil {
		return nil, err
	}
	defer p.close()
	if _, err := p.probe(ctx, 60*time.Second); err != nil { // sync is streaming
		return nil, fmt.Errorf("sync did not apply a first change: %w", err)
	}

	// About 1.5 rows change per workload transaction (DefaultMix).
	wctx, stopWorkload := context.WithCancel(ctx)
	defer stopWorkload()
	type wres struct {
		stats workload.Stats
		err   error
	}
	wdone := make(chan wres, 1)
	go func() {
		st, err := workload.Run(wctx, workload.Config{SourceURL: url, Rate: changesPerSec / 1.5, Workers: 4, Seed: 7})
		wdone <- wres{st, err}
	}()
	time.Sleep(2 * time.Second) // let the workload reach its rate
	var p50, p99, pmax []float64
	const probeEvery = 100 * time.Millisecond
	for w := range windows {
		var lat []float64
		tick := time.NewTicker(probeEvery)
		deadline := time.Now().Add(window)
		for time.Now().Before(deadline) {
			d, err := p.probe(ctx, probeTimeout)
			res.Probes++
			if errors.Is(err, errNotVisible) {
				res.Lost++
			} else if err != nil {
				tick.Stop()
				return nil, err
			}
			lat = append(lat, float64(d)/float64(time.Millisecond))
			select {
			case <-tick.C:
			case <-ctx.Done():
				tick.Stop()
				return nil, ctx.Err()
			}
		}
		tick.Stop()
		a, b, m := Percentile(lat, 50), Percentile(lat, 99), Percentile(lat, 100)
		p50, p99, pmax = append(p50, a), append(p99, b), append(pmax, m)
		e.Log.Info("bench: sync latency", "window", w+1, "probes", len(lat), "p50_ms", fmt.Sprintf("%.1f", a),
			"p99_ms", fmt.Sprintf("%.1f", b), "max_ms", fmt.Sprintf("%.1f", m))
	}
	stopWorkload()
	wr := <-wdone
	if wr.err != nil && !errors.Is(wr.err, context.Canceled) {
		return nil, fmt.Errorf("workload: %w", wr.err)
	}
	if wr.stats.Elapsed > 0 {
		res.ChangesPerSec = float64(wr.stats.Rows) / wr.stats.Elapsed.Seconds()
	}
	res.P50, res.P99, res.Max = Summarize(p50), Summarize(p99), Summarize(pmax)
	return res, nil
}

var errNotVisible = errors.New("probe not visible in DynamoDB")

// prober commits marker updates and waits for DynamoDB to show them.
type prober struct {
	e     *Env
	conn  interface{ Close(context.Context) error }
	exec  func(ctx context.Context, sql string, args ...any) error
	table string
	key   transform.Item
	n     int
}

func newProber(ctx context.Context, e *Env, url string, tp *transform.TablePlan) (*prober, error) {
	if tp == nil {
		return nil, errors.New("the mapping has no address table")
	}
	conn, err := extract.Connect(ctx, url)
	if err != nil {
		return nil, err
	}
	row := make(extract.Row, len(tp.Source.Columns))
	row[tp.Source.PK[0]] = extract.Value{Text: "1"}
	key, _, err := tp.Key(row)
	if err != nil {
		conn.Close(ctx)
		return nil, err
	}
	return &prober{
		e: e, conn: conn, table: tp.Target, key: key,
		exec: func(ctx context.Context, sql string, args ...any) error {
			_, err := conn.Exec(ctx, sql, args...)
			return err
		},
	}, nil
}

func (p *prober) close() { p.conn.Close(context.Background()) }

// probe commits one marker update and returns how long DynamoDB took to show it.
func (p *prober) probe(ctx context.Context, timeout time.Duration) (time.Duration, error) {
	p.n++
	want := fmt.Sprintf("probe %d", p.n)
	if err := p.exec(ctx, "UPDATE public.address SET address2 = $1 WHERE address_id = 1", want); err != nil {
		return 0, fmt.Errorf("probe update: %w", err)
	}
	committed := time.Now()
	for {
		it, err := getItem(ctx, p.e.DynamoClient(), p.table, p.key)
		if err != nil {
			return 0, fmt.Errorf("probe read: %w", err)
		}
		if attrString(it, "address2") == want {
			return time.Since(committed), nil
		}
		if time.Since(committed) > timeout {
			return timeout, errNotVisible
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(2 * time.Millisecond):
		}
	}
}
