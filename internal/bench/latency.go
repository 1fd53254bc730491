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
	CPU           CPUSplit
	// Below: one window at each lower rate, measured first, where the
	// machine is not yet saturated (where the latency knee is).
	Lower []LatencyPoint
	// The full backfill (DynamoDB and Kinesis) that sync started from.
	BackfillRows int64
	BackfillWall time.Duration
	BackfillRSS  int64
	SyncRSS      int64
}

// LatencyPoint is one window at one workload rate.
type LatencyPoint struct {
	ChangesPerSec float64
	P50, P99      float64 // ms
	Probes, Lost  int
	CPU           CPUSplit
}

// probeTimeout bounds the wait for one probe to become visible.
const probeTimeout = 10 * time.Second

// PairLatency backfills a clone of the pristine Pagila into DynamoDB and
// Kinesis, starts `ferry sync`, and then, for each rate of lower (one window
// each) and finally changesPerSec (windows windows of window), runs the
// DVD-store workload at about that many rows changed per second and probes:
// it commits an update of one address that nothing else touches (address
// 1's address2 = "probe N") every probeEvery and polls GetItem (strongly
// consistent) until DynamoDB shows it. Latency = the commit's return → the
// first GetItem that shows the new value. Before each rate, sync catches up.
func (e *Env) PairLatency(ctx context.Context, changesPerSec float64, lower []float64, window time.Duration, windows int) (*LatencyResult, error) {
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
	meter := newCPUMeter(syncProc.cmd.Process.Pid)
	for i, rate := range lower {
		pt, err := e.latencyStage(ctx, p, meter, url, rate, window, 1, int64(i+1))
		if err != nil {
			return nil, err
		}
		res.Lower = append(res.Lower, LatencyPoint{ChangesPerSec: pt.changesPerSec, P50: pt.p50[0], P99: pt.p99[0],
			Probes: pt.probes, Lost: pt.lost, CPU: pt.cpu})
	}
	pt, err := e.latencyStage(ctx, p, meter, url, changesPerSec, window, windows, 7)
	if err != nil {
		return nil, err
	}
	res.P50, res.P99, res.Max = Summarize(pt.p50), Summarize(pt.p99), Summarize(pt.max)
	res.Probes, res.Lost, res.ChangesPerSec, res.CPU = pt.probes, pt.lost, pt.changesPerSec, pt.cpu
	return res, nil
}

// stageResult is the windows of one workload rate.
type stageResult struct {
	p50, p99, max []float64
	probes, lost  int
	changesPerSec float64
	cpu           CPUSplit
}

// latencyStage waits until sync has caught up (a first probe is visible),
// then runs the workload at rate changed rows/s for windows windows of
// window, probing, and measures the CPU split of the windows.
func (e *Env) latencyStage(ctx context.Context, p *prober, meter *cpuMeter, url string, rate float64,
	window time.Duration, windows int, seed int64) (*stageResult, error) {
	if _, err := p.probe(ctx, 60*time.Second); err != nil {
		return nil, fmt.Errorf("sync did not catch up before the %.0f changes/s stage: %w", rate, err)
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
		st, err := workload.Run(wctx, workload.Config{SourceURL: url, Rate: rate / 1.5, Workers: 4, Seed: seed})
		wdone <- wres{st, err}
	}()
	time.Sleep(2 * time.Second) // let the workload reach its rate
	res := &stageResult{}
	meter.begin()
	const probeEvery = 100 * time.Millisecond
	for w := range windows {
		var lat []float64
		tick := time.NewTicker(probeEvery)
		deadline := time.Now().Add(window)
		for time.Now().Before(deadline) {
			d, err := p.probe(ctx, probeTimeout)
			res.probes++
			if errors.Is(err, errNotVisible) {
				res.lost++
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
		res.p50, res.p99, res.max = append(res.p50, a), append(res.p99, b), append(res.max, m)
		e.Log.Info("bench: sync latency", "rate", rate, "window", w+1, "probes", len(lat), "p50_ms", fmt.Sprintf("%.1f", a),
			"p99_ms", fmt.Sprintf("%.1f", b), "max_ms", fmt.Sprintf("%.1f", m))
	}
	res.cpu = meter.end()
	e.Log.Info("bench: CPU during the windows", "rate", rate, "split", res.cpu.String())
	stopWorkload()
	wr := <-wdone
	if wr.err != nil && !errors.Is(wr.err, context.Canceled) {
		return nil, fmt.Errorf("workload: %w", wr.err)
	}
	if wr.stats.Elapsed > 0 {
		res.changesPerSec = float64(wr.stats.Rows) / wr.stats.Elapsed.Seconds()
	}
	return res, nil
}

var errNotVisible = errors.New("probe not visible in DynamoDB")

// pollInterval is the wait before the prober's next GetItem after waited so
// far: 5 ms, or 5 % of the wait once that is longer, so that a latency is
// resolved to ±5 % (±5 ms under 100 ms). Polling every 2 ms whatever the
// wait, as at first, sent dynalite about 500 reads/s, as many requests as
// the sync under test on the same single-threaded emulator, for as long as
// sync was behind.
func pollInterval(waited time.Duration) time.Duration {
	return max(5*time.Millisecond, waited/20)
}

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
		case <-time.After(pollInterval(time.Since(committed))):
		}
	}
}
