package bench

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/ferry-migrate/ferry/internal/pipeline"
	"github.com/ferry-migrate/ferry/load"
)

// WorkersResult is the backfill-workers pair: one backfill shared by 1, 2
// and 4 processes (a coordinator and `--join` workers, chunks leased in the
// control table), into the null sink and into dynalite.
type WorkersResult struct {
	Rows   map[string]int64    // "null"/"dynamo": rows of one backfill
	Counts []int               // processes per run: 1, 2, 4
	Null   map[int]Figure      // rows/s by process count
	Dynamo map[int]Figure      // rows/s by process count
	Ratio  map[string][]Figure // "null"/"dynamo": per count, rows/s ÷ one process's, per run
}

// PairWorkers runs, runs times each, a backfill with n = 1, 2, 4
// processes, each with --workers 2, one after another in a run so that a
// slow moment of the machine hits all of them: into the null sink (the
// leases and the snapshot's state in the control table, nothing written) and
// into dynalite (DynamoDB only; of dynamoURL, nullURL's for the null
// sink). On one machine more processes only share its
// cores: the ratios show what the leases and the extra snapshot sessions
// cost, not a speed-up.
func (e *Env) PairWorkers(ctx context.Context, nullURL, dynamoURL string, runs int) (*WorkersResult, error) {
	res := &WorkersResult{Rows: map[string]int64{}, Counts: []int{1, 2, 4}, Null: map[int]Figure{}, Dynamo: map[int]Figure{}, Ratio: map[string][]Figure{}}
	for _, sink := range []string{"null", "dynamo"} {
		url := nullURL
		if sink == "dynamo" {
			url = dynamoURL
		}
		rates := map[int][]float64{}
		ratios := map[int][]float64{}
		for run := range runs {
			var one float64
			for _, n := range res.Counts {
				rows, took, err := e.backfillWith(ctx, url, sink, n, run)
				if err != nil {
					return nil, fmt.Errorf("%d backfill processes, %s sink: %w", n, sink, err)
				}
				if n == 1 {
					res.Rows[sink] = rows
				} else if rows != res.Rows[sink] {
					return nil, fmt.Errorf("%d backfill processes, %s sink: %d rows copied together, one process copies %d", n, sink, rows, res.Rows[sink])
				}
				r := float64(res.Rows[sink]) / took.Seconds()
				e.Log.Info("bench: backfill workers", "sink", sink, "processes", n, "rows", rows, "took", took.Round(time.Millisecond), "rows_s", int(r))
				if n == 1 {
					one = r
				}
				rates[n] = append(rates[n], r)
				ratios[n] = append(ratios[n], r/one)
			}
		}
		for _, n := range res.Counts {
			f := Summarize(rates[n])
			if sink == "null" {
				res.Null[n] = f
			} else {
				res.Dynamo[n] = f
			}
			res.Ratio[sink] = append(res.Ratio[sink], Summarize(ratios[n]))
		}
	}
	return res, nil
}

// backfillWith runs one backfill shared by n processes: the coordinator,
// then, once it has published its snapshot, n-1 `--join` workers. It
// returns the rows all of them copied and the time until the last process
// ended.
func (e *Env) backfillWith(ctx context.Context, url, sink string, n, run int) (int64, time.Duration, error) {
	name := fmt.Sprintf("bench_w%d_%s_%d", n, sink, run)
	ctl, slot, pub := name+"_control", name+"_slot", name+"_pub"
	common := []string{"--source", url, "--slot", slot, "--publication", pub, "--control-table", ctl,
		"--workers", "2", "--progress", "none"}
	mapping, err := e.Mapping(name, "")
	if err != nil {
		return 0, 0, err
	}
	common = append(common, "--mapping", mapping)
	if sink == "null" {
		common = append(common, "--sink", "null")
	} else {
		defer e.DeleteTargets(ctx, []string{name}, nil)
	}
	defer e.DeleteTargets(ctx, []string{ctl}, nil)
	defer func() { _ = dropSlotAndPublication(context.WithoutCancel(ctx), url, slot, pub) }()
	start := time.Now()
	coord, err := e.StartFerry(ctx, "", append([]string{"backfill", "--worker-name", "coordinator"}, common...)...)
	if err != nil {
		return 0, 0, err
	}
	var joined []*Proc
	if n > 1 {
		if err := e.waitLive(ctx, ctl, slot); err != nil {
			coord.Stop()
			_, _ = coord.Wait()
			return 0, 0, err
		}
		for i := 1; i < n; i++ {
			p, err := e.StartFerry(ctx, "", append([]string{"backfill", "--join", "--worker-name", "worker-" + strconv.Itoa(i)}, common...)...)
			if err != nil {
				return 0, 0, err
			}
			joined = append(joined, p)
		}
	}
	c, err := coord.Wait()
	children := []Child{c}
	for _, p := range joined {
		jc, jerr := p.Wait()
		if jerr != nil && err == nil {
			err = jerr
		}
		children = append(children, jc)
	}
	took := time.Since(start)
	if err != nil {
		return 0, 0, err
	}
	// Every process's summary counts the chunks it copied; together, each
	// row once. (A worker that found nothing left prints none.)
	var rows int64
	for i, c := range children {
		n, err := summaryRows(c.Stdout)
		if err != nil && i == 0 {
			return 0, 0, err
		}
		rows += n
	}
	return rows, took, nil
}

// waitLive waits until the coordinator of slot has published its snapshot
// in control table ctl (the workers then join it at once).
func (e *Env) waitLive(ctx context.Context, ctl, slot string) error {
	store := load.NewControlStore(e.DynamoClient(), ctl)
	deadline := time.Now().Add(time.Minute)
	for {
		_, ok, err := store.Get(ctx, pipeline.StateID(slot), "live")
		if err == nil && ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the coordinator did not publish its snapshot within a minute (last error: %v)", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// rows renders the pair as report rows, one per sink.
func (w *WorkersResult) rows(nullTag string) []Row {
	var out []Row
	for _, sink := range []string{"null", "dynamo"} {
		figs, what := w.Null, fmt.Sprintf("null sink (%s, %d rows)", nullTag, w.Rows["null"])
		if sink == "dynamo" {
			figs, what = w.Dynamo, fmt.Sprintf("dynalite, items only (×1, %d rows)", w.Rows["dynamo"])
		}
		row := Row{Name: "backfill shared by 2 and 4 processes (a coordinator and --join workers, --workers 2 each, chunks leased in the control table) → " + what,
			Baseline: "one process (--workers 2): " + RateFigure(figs[1], "rows/s"),
			Note:     "ratios to one process, per run; on 2 cores the processes share the same cores (and dynalite one of them), so they show what the leases and the extra snapshot sessions cost, not a speed-up"}
		for i, n := range w.Counts {
			if n == 1 {
				continue
			}
			sep := ""
			if row.Ferry != "" {
				sep = "; "
			}
			row.Ferry += sep + fmt.Sprintf("%d: %s", n, RateFigure(figs[n], "rows/s"))
			row.Ratio += sep + fmt.Sprintf("%d: %s", n, w.Ratio[sink][i].Format("%.2f"))
		}
		out = append(out, row)
	}
	return out
}
