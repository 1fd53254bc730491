package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/ferry-migrate/ferry/extract"
	"github.com/ferry-migrate/ferry/load"
	"github.com/ferry-migrate/ferry/transform"
)

// What a joining worker needs of the coordinator, and what status shows of
// every worker, lives beside the backfill's state (state.go):
//
//	sk "live"            liveRun: the snapshot the coordinator exported and keeps
//	                     open, the run's positions and tables
//	sk "worker:<name>"   WorkerStatus: each process's heartbeat (rows, chunks, rate)
//
// The chunk plans ("plan:…") are the coordinator's: a joined worker reads
// them as they appear and copies their chunks not yet done.

// ErrBackfillComplete is returned by a joining backfill when the backfill it
// would join has completed: there is nothing left to copy.
var ErrBackfillComplete = errors.New("the backfill is complete")

// liveRun is the copy under way, published by its coordinator.
type liveRun struct {
	RunID        string    `json:"run_id"`
	Snapshot     string    `json:"snapshot"` // for SET TRANSACTION SNAPSHOT
	SlotLSN      string    `json:"slot_lsn"`
	ReadLSN      string    `json:"read_lsn"` // the rows' version
	PublishLater bool      `json:"publish_later"`
	Tables       []string  `json:"tables"` // the coordinator's plan, qualified names
	Coordinator  string    `json:"coordinator"`
	Started      time.Time `json:"started"`
}

func (s *stateStore) saveLive(ctx context.Context, l *liveRun) error {
	b, _ := json.Marshal(l)
	if err := s.ctl.Put(ctx, s.id, "live", b); err != nil {
		return fmt.Errorf("publish the snapshot for --join: %w", err)
	}
	return nil
}

func (s *stateStore) loadLive(ctx context.Context) (*liveRun, error) {
	b, ok, err := s.ctl.Get(ctx, s.id, "live")
	if err != nil || !ok {
		return nil, err
	}
	var l liveRun
	if err := json.Unmarshal(b, &l); err != nil {
		return nil, fmt.Errorf("live backfill of slot %s: %w", s.slot, err)
	}
	return &l, nil
}

// WorkerStatus is one backfill process's heartbeat.
type WorkerStatus struct {
	Worker   string    `json:"worker"`
	Role     string    `json:"role"` // "coordinator" or "joined"
	RunID    string    `json:"run_id"`
	Workers  int       `json:"workers"` // its snapshot connections
	Chunks   int64     `json:"chunks"`  // chunks it recorded done
	Rows     int64     `json:"rows"`    // rows of those chunks
	Lost     int64     `json:"lost"`    // chunks whose lease it lost while copying
	Rate     float64   `json:"rows_per_s"`
	Started  time.Time `json:"started"`
	Updated  time.Time `json:"updated"`
	Interval int64     `json:"interval_ms"` // between heartbeats
	Ended    bool      `json:"ended"`
}

// Stale reports whether the worker missed three heartbeats at now: it
// died, or cannot reach the control table.
func (w WorkerStatus) Stale(now time.Time) bool {
	return !w.Ended && now.Sub(w.Updated) > 3*time.Duration(w.Interval)*time.Millisecond
}

// workerTally counts what this process did, for its heartbeat.
type workerTally struct {
	chunks, rows, lost atomic.Int64
}

// heartbeat writes the worker's status every interval until ctx ends, and
// a last one marked ended; a failed write is logged and tried again next
// time (the heartbeat only informs status).
func heartbeat(ctx context.Context, cfg *BackfillConfig, state *stateStore, st WorkerStatus, tally *workerTally, interval time.Duration) {
	st.Started, st.Interval = time.Now().UTC(), interval.Milliseconds()
	write := func(ctx context.Context, ended bool) {
		st.Chunks, st.Rows, st.Lost = tally.chunks.Load(), tally.rows.Load(), tally.lost.Load()
		st.Updated, st.Ended = time.Now().UTC(), ended
		if d := st.Updated.Sub(st.Started).Seconds(); d > 0 {
			st.Rate = float64(st.Rows) / d
		}
		b, _ := json.Marshal(st)
		if err := state.ctl.Put(ctx, state.id, "worker:"+st.Worker, b); err != nil {
			cfg.Logger.Warn("backfill heartbeat not written", "worker", st.Worker, "err", err)
		}
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		write(ctx, false)
		select {
		case <-ctx.Done():
			wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), interval)
			write(wctx, true)
			cancel()
			return
		case <-tick.C:
		}
	}
}

// BackfillActivity is what status shows of a backfill's workers.
type BackfillActivity struct {
	RunID         string // the copy under way (or last run), "" if none published
	Workers       []WorkerStatus
	Held          []load.Lease     // chunks being copied now (live or expired leases)
	ChunksPlanned int              // chunks of the planned tables
	ChunksDone    int              // chunks recorded done
	DoneBy        map[string]int64 // worker → chunks it recorded done ("" before leases)
	RowsDone      int64
}

// Activity reads the workers, leases and done chunks of the backfill on slot.
func Activity(ctx context.Context, ctl *load.ControlStore, slot string) (*BackfillActivity, error) {
	st := newStateStore(ctl, slot)
	all, err := ctl.List(ctx, st.id)
	if err != nil {
		return nil, err
	}
	a := &BackfillActivity{DoneBy: map[string]int64{}}
	if l, err := st.loadLive(ctx); err != nil {
		return nil, err
	} else if l != nil {
		a.RunID = l.RunID
	}
	for sk, v := range all {
		if name, ok := strings.CutPrefix(sk, "worker:"); ok {
			var w WorkerStatus
			if err := json.Unmarshal(v, &w); err != nil {
				return nil, fmt.Errorf("heartbeat of %s: %w", name, err)
			}
			a.Workers = append(a.Workers, w)
		}
	}
	slices.SortFunc(a.Workers, func(x, y WorkerStatus) int { return strings.Compare(x.Worker, y.Worker) })
	plans, done, err := st.loadAll(ctx)
	if err != nil {
		return nil, err
	}
	for _, p := range plans {
		a.ChunksPlanned += len(p.Chunks)
	}
	for table := range done {
		for i := range done[table] {
			var r chunkResult
			_ = json.Unmarshal(all[chunkKey(table, i)], &r)
			a.ChunksDone++
			a.RowsDone += r.Rows
			a.DoneBy[r.Worker]++
		}
	}
	leases, err := load.NewLeaseStore(ctl, st.id, "status", time.Second)
	if err != nil {
		return nil, err
	}
	held, err := leases.List(ctx)
	if err != nil {
		return nil, err
	}
	for _, l := range held {
		if !l.Free() {
			a.Held = append(a.Held, l)
		}
	}
	slices.SortFunc(a.Held, func(x, y load.Lease) int { return strings.Compare(x.Key, y.Key) })
	return a, nil
}

// joinSnapshot waits until a coordinator publishes a snapshot that can be
// imported, and returns it with the plan restricted to the coordinator's
// tables. A published snapshot that cannot be imported any more (its
// coordinator died) is waited past: the coordinator run again publishes a
// new one. It returns ErrBackfillComplete when the backfill has completed.
func joinSnapshot(ctx context.Context, cfg *BackfillConfig, state *stateStore, res *BackfillResult,
	open func(ctx context.Context, snapshot string) error) (*liveRun, error) {
	poll := min(cfg.Lease/3, time.Second)
	gone, waiting := "", false
	for {
		run, err := state.loadRun(ctx)
		if err != nil {
			return nil, err
		}
		if run != nil && run.Complete {
			return nil, ErrBackfillComplete
		}
		live, err := state.loadLive(ctx)
		if err != nil {
			return nil, err
		}
		if live != nil && live.RunID != gone {
			err := open(ctx, live.Snapshot)
			if err == nil {
				if res.SlotLSN, err = extract.ParseLSN(live.SlotLSN); err != nil {
					return nil, fmt.Errorf("live backfill of slot %s: %w", cfg.Slot, err)
				}
				if res.ReadLSN, err = extract.ParseLSN(live.ReadLSN); err != nil {
					return nil, fmt.Errorf("live backfill of slot %s: %w", cfg.Slot, err)
				}
				res.Resumed = live.PublishLater
				cfg.publishLater = live.PublishLater
				if cfg.Plan, err = restrictPlan(cfg.Plan, live.Tables); err != nil {
					return nil, err
				}
				return live, nil
			}
			if !errors.Is(err, extract.ErrSnapshotGone) {
				return nil, err
			}
			gone = live.RunID
		}
		if !waiting {
			cfg.Logger.Info("waiting for a coordinator (`ferry backfill` with the same slot and control table) to export a snapshot",
				"slot", cfg.Slot, "gone_run", gone)
			waiting = true
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(poll):
		}
	}
}

// restrictPlan keeps the coordinator's tables, which this worker's mapping
// must all have.
func restrictPlan(p *transform.Plan, tables []string) (*transform.Plan, error) {
	q, err := p.Restrict(tables)
	if err != nil {
		return nil, fmt.Errorf("--join: the coordinator copies a table this worker's mapping lacks (run every worker with the coordinator's mapping): %w", err)
	}
	return q, nil
}

// followPlans queues the tables' chunks as the coordinator records their
// plans (polling the control table), until every table is queued.
func followPlans(ctx context.Context, cfg *BackfillConfig, tables []*tableCopy, state *stateStore, q *chunkQueue) error {
	poll := min(cfg.Lease/3, time.Second)
	left := slices.Clone(tables)
	for len(left) > 0 {
		plans, done, err := state.loadAll(ctx)
		if err != nil {
			return err
		}
		left = slices.DeleteFunc(left, func(t *tableCopy) bool {
			p := plans[t.name]
			if p == nil {
				return false
			}
			t.setPlan(p, done[t.name])
			if len(t.todo) == 0 {
				t.finish(cfg.Progress)
			} else {
				q.add(t)
			}
			return true
		})
		if len(left) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(poll):
		}
	}
	return nil
}
