package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"golang.org/x/sync/errgroup"

	"github.com/ferry-migrate/ferry/extract"
	"github.com/ferry-migrate/ferry/load"
	"github.com/ferry-migrate/ferry/transform"
)

// ErrSlotGone is returned when a backfill's replication slot has disappeared:
// CDC can no longer continue from the snapshot, so the copy must start over.
var ErrSlotGone = errors.New("replication slot is gone")

// Progress receives progress events. Several tables are copied at once, and
// a table's chunks by several workers: calls come from several goroutines
// (it must be safe for concurrent use). For each table TableStart comes
// first (when its first chunk starts), then its Add calls, then TableDone
// (after its last chunk, or when the run stops).
type Progress interface {
	TableStart(table string, rows, doneRows int64)
	Add(table string, rows int64)
	TableDone(st *TableStats)
}

// BackfillConfig configures a backfill. Zero values take the documented defaults.
type BackfillConfig struct {
	SourceURL string
	Plan      *transform.Plan
	// Slot is the logical replication slot whose snapshot the copy reads and from
	// whose consistent point CDC continues (default "ferry").
	Slot string
	// Publication is created (before the slot, as pgoutput requires) for
	// PublishTables (default: the plan's tables), so sync can stream from the
	// slot later (default "ferry").
	Publication   string
	PublishTables []*extract.Table
	// Workers is the number of snapshot connections reading chunks (default 4).
	Workers int
	// ChunkRows is the target size of a primary-key chunk (default 5000).
	ChunkRows int
	// BatchRows is how many rows go to the sink at once (default 500).
	BatchRows int
	Sink      Sink
	// Control keeps the run state; nil (with the null sink) runs without state on
	// a temporary slot.
	Control *load.ControlStore
	// Restart discards the recorded state (and drops the slot) and copies again.
	Restart bool
	// OnError is the policy for rows that can never be written (default
	// OnErrorStop); under OnErrorSkip they go to DeadLetter.
	OnError    ErrorPolicy
	DeadLetter *DeadLetter
	Progress   Progress
	Logger     *slog.Logger

	// Join makes this process a worker of the backfill that a coordinator
	// (a Backfill of the same Slot and Control without Join, on any
	// machine) runs: it imports the coordinator's exported snapshot and
	// copies chunks beside it, leased through Control (backfill_lease.go).
	// It copies the coordinator's tables (they must be in Plan) and
	// returns ErrBackfillComplete when the backfill has completed.
	Join bool
	// Lease is how long a chunk's lease lasts without renewal (default
	// 10 s; renewed every third of it): the chunks of a worker that died
	// are taken over that long after its last renewal.
	Lease time.Duration
	// Worker names this process in leases and heartbeats; unique among
	// the workers (default host:pid:random).
	Worker string

	// publishLater: a resumed run writes DynamoDB only; its rows reach
	// Kinesis through sync's online snapshot (see handOffStream).
	publishLater bool
}

func (c *BackfillConfig) defaults() {
	if c.Slot == "" {
		c.Slot = "ferry"
	}
	if c.Workers <= 0 {
		c.Workers = 4
	}
	if c.Publication == "" {
		c.Publication = "ferry"
	}
	if len(c.PublishTables) == 0 {
		for _, tp := range c.Plan.Tables {
			c.PublishTables = append(c.PublishTables, tp.Source)
		}
	}
	if c.ChunkRows <= 0 {
		c.ChunkRows = 5000
	}
	if c.BatchRows <= 0 {
		c.BatchRows = 500
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Progress == nil {
		c.Progress = nopProgress{}
	}
	if c.OnError == "" {
		c.OnError = OnErrorStop
	}
	if c.OnError == OnErrorSkip && c.DeadLetter == nil {
		c.DeadLetter = NewDeadLetter("")
	}
	if c.Lease <= 0 {
		c.Lease = DefaultLease
	}
	if c.Worker == "" {
		c.Worker = defaultWorkerName()
	}
}

// DefaultLease is BackfillConfig.Lease's default.
const DefaultLease = 10 * time.Second

// defaultWorkerName is host:pid:random, unique among a backfill's workers.
func defaultWorkerName() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "host"
	}
	return fmt.Sprintf("%s:%d:%04x", host, os.Getpid(), rand.IntN(1<<16))
}

// TableStats summarises one table's copy.
type TableStats struct {
	Table         string
	Rows          int64 // rows read in this run
	Items         int64
	Records       int64
	Retries       int64
	Chunks        int
	ChunksSkipped int // already done by an earlier run
	// ChunksElsewhere were recorded done by another worker during this
	// run; ChunksLost were being copied here when their lease was lost
	// (another worker recorded them). Copied here: Chunks - ChunksSkipped
	// - ChunksElsewhere, each counted by one worker only.
	ChunksElsewhere int
	ChunksLost      int
	Failures        []RowFailure
	Duration        time.Duration
}

// BackfillResult is what a backfill did.
type BackfillResult struct {
	SlotLSN  extract.LSN // where CDC continues
	ReadLSN  extract.LSN // the snapshot this run read (differs from SlotLSN on resume)
	Resumed  bool
	Tables   []*TableStats
	Failures []RowFailure
	// Skipped counts the failures written to the dead-letter file
	// (OnErrorSkip); their chunks are done. DeadLetter is its path.
	Skipped    int
	DeadLetter string
	Duration   time.Duration
	// StreamRequest is the online snapshot request through which sync
	// publishes the rows this resumed run copied (nil: none needed).
	StreamRequest *SnapshotRequest
}

// Backfill copies every table of the plan inside one exported snapshot, in
// primary-key chunks over several connections, and records each finished chunk
// so that a run that was killed continues where it stopped. See DESIGN.md for
// why a resumed run reads at a fresh temporary slot's snapshot.
//
// With a control table it is the coordinator of a copy that other processes
// may join (cfg.Join, backfill_join.go): it publishes its snapshot, keeps
// it open until every chunk is done by whichever worker, and takes chunks
// through the same leases as they do (backfill_lease.go).
func Backfill(ctx context.Context, cfg BackfillConfig) (*BackfillResult, error) {
	cfg.defaults()
	start := time.Now()
	log := cfg.Logger
	res := &BackfillResult{}
	if cfg.DeadLetter != nil {
		res.DeadLetter = cfg.DeadLetter.Path
	}

	// The records carry their tables' definitions (source.def); the stream
	// appliers find them here.
	if cfg.Control != nil {
		if err := StoreDefinitions(ctx, cfg.Control, cfg.Plan.Mapping, cfg.Plan.Tables); err != nil {
			return nil, err
		}
	}
	if cfg.Join {
		return joinBackfill(ctx, cfg, res, start)
	}
	var state *stateStore
	var plans map[string]*chunkPlan
	var done map[string]map[int]int64
	snap, err := openSnapshot(ctx, &cfg, res, &state, &plans, &done)
	if err != nil {
		return nil, err
	}
	defer snap.Close(context.Background())
	log.Info("snapshot exported", "slot", cfg.Slot, "snapshot", snap.Name, "slot_lsn", res.SlotLSN, "read_lsn", res.ReadLSN, "resumed", res.Resumed)
	runID := ""
	if cfg.Control != nil {
		// The partitions as the copy sees them: sync compares later sets
		// with these (a resumed copy keeps the first run's).
		if err := recordPartitions(ctx, cfg.SourceURL, cfg.Control, cfg.Slot, cfg.Plan, !res.Resumed); err != nil {
			return nil, err
		}
		// Joining workers import the snapshot (kept open by snap until the
		// copy ends) and follow the plans recorded below.
		runID = NewSnapshotID(time.Now()) + "/" + cfg.Worker
		live := &liveRun{RunID: runID, Snapshot: snap.Name, SlotLSN: res.SlotLSN.String(), ReadLSN: res.ReadLSN.String(),
			PublishLater: cfg.publishLater, Tables: cfg.Plan.Names(), Coordinator: cfg.Worker, Started: time.Now().UTC()}
		if err := state.saveLive(ctx, live); err != nil {
			return nil, err
		}
	}
	err = copyAll(ctx, &cfg, res, state, snap.Name, runID, func(ctx context.Context, conn *extract.SnapshotConn, tables []*tableCopy, q *chunkQueue) error {
		return planTables(ctx, &cfg, conn, tables, plans, done, state, q)
	})
	return finishBackfill(ctx, &cfg, res, state, start, err)
}

// busyPoll is how often a chunk another worker holds is looked at again.
func busyPoll(lease time.Duration) time.Duration { return min(lease/3, 500*time.Millisecond) }

// joinBackfill is Backfill with Join: a worker beside a coordinator.
func joinBackfill(ctx context.Context, cfg BackfillConfig, res *BackfillResult, start time.Time) (*BackfillResult, error) {
	if cfg.Control == nil {
		return nil, fmt.Errorf("--join: %w: a control table is required (leases and the coordinator's snapshot live there)", load.ErrInvalidRequest)
	}
	state := newStateStore(cfg.Control, cfg.Slot)
	var first *extract.SnapshotConn
	defer func() {
		if first != nil {
			first.Close(context.Background())
		}
	}()
	// The first connection imports the snapshot while waiting for it; the
	// others import it once it is known to be alive. The snapshot stays
	// valid for them after its coordinator ends.
	live, err := joinSnapshot(ctx, &cfg, state, res, func(ctx context.Context, snapshot string) error {
		c, err := extract.OpenSnapshotConn(ctx, cfg.SourceURL, snapshot)
		if err == nil {
			first = c
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	cfg.Logger.Info("joined the backfill", "slot", cfg.Slot, "run", live.RunID, "coordinator", live.Coordinator,
		"snapshot", live.Snapshot, "read_lsn", res.ReadLSN, "worker", cfg.Worker)
	cfg.Workers-- // first is one of them
	err = copyAll(ctx, &cfg, res, state, live.Snapshot, live.RunID, func(ctx context.Context, _ *extract.SnapshotConn, tables []*tableCopy, q *chunkQueue) error {
		return followPlans(ctx, &cfg, tables, state, q)
	}, first)
	first = nil // closed by copyAll
	if err != nil {
		return res, err
	}
	res.Duration = time.Since(start)
	return res, ctx.Err()
}

// copyAll copies the plan's chunks inside the exported snapshot over
// cfg.Workers connections (and the extra ones given, already inside it),
// the tables queued by plan (which gets a connection of its own in the
// snapshot when it is the coordinator's, nil otherwise). With a control
// table, chunks are leased and the process writes its heartbeat.
func copyAll(ctx context.Context, cfg *BackfillConfig, res *BackfillResult, state *stateStore, snapshot, runID string,
	plan func(context.Context, *extract.SnapshotConn, []*tableCopy, *chunkQueue) error, extra ...*extract.SnapshotConn) error {
	conns := append(make([]*extract.SnapshotConn, cfg.Workers), extra...)
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.Close(context.Background())
			}
		}
	}()
	// Chunk planning (one ordered pass over the primary key, PlanChunks) runs
	// on a connection of its own, beside the copy (see backfill_queue.go).
	var planConn *extract.SnapshotConn
	defer func() {
		if planConn != nil {
			planConn.Close(context.Background())
		}
	}()
	// Connections open at once: one after the other they took ~20 ms each,
	// a tenth of a small table's whole copy.
	opening, octx := errgroup.WithContext(ctx)
	for i := range cfg.Workers + 1 {
		if i == cfg.Workers && cfg.Join {
			break
		}
		opening.Go(func() error {
			c, err := extract.OpenSnapshotConn(octx, cfg.SourceURL, snapshot)
			if i < cfg.Workers {
				conns[i] = c
			} else {
				planConn = c
			}
			return err
		})
	}
	if err := opening.Wait(); err != nil {
		return err
	}
	cp := &copier{cfg: cfg, state: state, pos: extract.Position{LSN: res.ReadLSN}, snapTime: time.Now(), now: time.Now}
	if state != nil {
		leases, err := load.NewLeaseStore(cfg.Control, state.id, cfg.Worker, cfg.Lease)
		if err != nil {
			return err
		}
		cp.leases = leases
		role := "coordinator"
		if cfg.Join {
			role = "joined"
		}
		hctx, stopBeat := context.WithCancel(context.WithoutCancel(ctx))
		beat := make(chan struct{})
		go func() {
			defer close(beat)
			heartbeat(hctx, cfg, state, WorkerStatus{Worker: cfg.Worker, Role: role, RunID: runID, Workers: len(conns)}, &cp.tally, cfg.Lease/3)
		}()
		defer func() { stopBeat(); <-beat }()
	}

	tables := make([]*tableCopy, len(cfg.Plan.Tables))
	for i, tp := range cfg.Plan.Tables {
		tables[i] = newTableCopy(tp, i)
	}
	q := newChunkQueue()
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		defer q.close()
		return plan(gctx, planConn, tables, q)
	})
	for _, c := range conns {
		r := &reader{conn: c}
		g.Go(func() error {
			return q.work(gctx, func(ctx context.Context, job chunkJob) error {
				return cp.copyJob(ctx, r, job, q)
			})
		})
	}
	err := g.Wait()
	// The summary lists the tables this run started, in the plan's order;
	// those a failure interrupted are closed with what they did.
	for _, t := range tables {
		st := t.result(cfg.Progress)
		if st == nil {
			continue
		}
		res.Tables = append(res.Tables, st)
		res.Failures = append(res.Failures, st.Failures...)
		if cfg.OnError == OnErrorSkip {
			res.Skipped += len(st.Failures)
		}
	}
	return err
}

// finishBackfill records the coordinator's run complete when every chunk
// of every published table is done (by any worker); err is the copy's.
func finishBackfill(ctx context.Context, cfg *BackfillConfig, res *BackfillResult, state *stateStore, start time.Time, err error) (*BackfillResult, error) {
	log := cfg.Logger
	if err != nil {
		return res, err
	}
	if err := ctx.Err(); err != nil {
		return res, err
	}
	if state != nil && (len(res.Failures) == 0 || cfg.OnError == OnErrorSkip) {
		// A run restricted with --tables completes the backfill only when
		// every published table has been copied (by this run or earlier
		// ones): sync streams from the slot only after a complete backfill,
		// and must not skip the copy of a table nobody copied yet.
		missing, err := state.uncopied(ctx, cfg.PublishTables)
		if err != nil {
			return res, err
		}
		if len(missing) > 0 {
			log.Info("backfill of these tables done; others not copied yet (a backfill without --tables, or ferry sync, copies them)",
				"slot", cfg.Slot, "not_copied", strings.Join(missing, ","))
		}
		if err := state.saveRun(ctx, &runState{Slot: cfg.Slot, SlotLSN: res.SlotLSN.String(), Created: time.Now().UTC(), Complete: len(missing) == 0}); err != nil {
			return res, err
		}
	}
	res.Duration = time.Since(start)
	return res, nil
}

// planTables gives every table its chunks and queues them: first the
// tables with a plan recorded by an earlier run (all at once), then the
// others, planned on conn (PlanChunks, smallest estimate first, see
// backfill_queue.go) and recorded before any of their chunks is queued
// (a chunk's done marker names its index in the recorded plan). A table
// with nothing left to copy is started and finished at once.
func planTables(ctx context.Context, cfg *BackfillConfig, conn *extract.SnapshotConn, tables []*tableCopy,
	recorded map[string]*chunkPlan, done map[string]map[int]int64, state *stateStore, q *chunkQueue) error {
	queue := func(t *tableCopy, plan *chunkPlan) {
		t.setPlan(plan, done[t.name])
		if len(t.todo) == 0 {
			t.finish(cfg.Progress)
			return
		}
		q.add(t)
	}
	var unplanned []*tableCopy
	for _, t := range tables {
		if p := recorded[t.name]; p != nil {
			queue(t, p)
		} else {
			unplanned = append(unplanned, t)
		}
	}
	for _, t := range planningOrder(unplanned) {
		chunks, rows, err := conn.PlanChunks(ctx, t.tp.Source, cfg.ChunkRows)
		if err != nil {
			return err
		}
		plan := &chunkPlan{Chunks: chunks, Rows: rows}
		if state != nil {
			if err := state.savePlan(ctx, t.name, plan); err != nil {
				return err
			}
		}
		cfg.Logger.Debug("table planned", "table", t.name, "rows", rows, "chunks", len(chunks))
		queue(t, plan)
	}
	return nil
}

// openSnapshot decides between a fresh run (new slot, its snapshot), a resumed
// run (the recorded slot continues CDC; a temporary slot gives an exactly
// positioned snapshot for the remaining chunks) and a stateless dry run.
func openSnapshot(ctx context.Context, cfg *BackfillConfig, res *BackfillResult, state **stateStore,
	plans *map[string]*chunkPlan, done *map[string]map[int]int64) (*extract.ExportedSnapshot, error) {
	tempName := fmt.Sprintf("%s_tmp_%d", cfg.Slot, time.Now().UnixNano()%1_000_000_000)
	if cfg.Control == nil {
		snap, err := extract.CreateSlotSnapshot(ctx, cfg.SourceURL, tempName, true)
		if err != nil {
			return nil, err
		}
		res.SlotLSN, res.ReadLSN = snap.LSN, snap.LSN
		return snap, nil
	}
	st := newStateStore(cfg.Control, cfg.Slot)
	*state = st
	conn, err := extract.Connect(ctx, cfg.SourceURL)
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.Background())
	slot, slotExists, err := extract.LookupSlot(ctx, conn, cfg.Slot)
	if err != nil {
		return nil, err
	}
	if slotExists && slot.Active {
		// A walsender streams from the slot: a sync is running. Refused
		// before anything is written (publication, slot, state, items).
		return nil, &SlotActiveError{Slot: cfg.Slot, PID: activePID(ctx, conn, cfg.Slot), Restart: cfg.Restart}
	}
	if cfg.Restart {
		if slotExists {
			if _, err := conn.Exec(ctx, "SELECT pg_drop_replication_slot($1)", cfg.Slot); err != nil {
				return nil, fmt.Errorf("--restart: drop slot %s: %w", cfg.Slot, err)
			}
			slotExists = false
		}
		if err := st.reset(ctx); err != nil {
			return nil, err
		}
	}
	run, err := st.loadRun(ctx)
	if err != nil {
		return nil, err
	}
	switch {
	case run == nil && slotExists:
		return nil, fmt.Errorf("replication slot %s exists but no backfill state is recorded for it: choose another --slot, or run with --restart to drop it and copy again", cfg.Slot)
	case run != nil && !slotExists:
		return nil, fmt.Errorf("%w: slot %s recorded at %s no longer exists, so changes since the snapshot cannot be replayed; run `ferry backfill --restart` to copy again", ErrSlotGone, cfg.Slot, run.SlotLSN)
	case run == nil:
		if err := extract.EnsurePublication(ctx, conn, cfg.Publication, cfg.PublishTables); err != nil {
			return nil, err
		}
		snap, err := extract.CreateSlotSnapshot(ctx, cfg.SourceURL, cfg.Slot, false)
		if err != nil {
			return nil, err
		}
		res.SlotLSN, res.ReadLSN = snap.LSN, snap.LSN
		if err := st.saveRun(ctx, &runState{Slot: cfg.Slot, SlotLSN: snap.LSN.String(), Created: time.Now().UTC()}); err != nil {
			snap.Close(context.Background())
			return nil, err
		}
		*plans, *done = map[string]*chunkPlan{}, map[string]map[int]int64{}
		return snap, nil
	}
	if res.SlotLSN, err = extract.ParseLSN(run.SlotLSN); err != nil {
		return nil, fmt.Errorf("backfill state of slot %s: %w", cfg.Slot, err)
	}
	if *plans, *done, err = st.loadAll(ctx); err != nil {
		return nil, err
	}
	// Tables added to the mapping since the publication was created are
	// streamed from now on (the temporary slot below waits for the
	// transactions running now, so the copy sees every change the slot
	// does not stream).
	if err := extract.EnsurePublication(ctx, conn, cfg.Publication, cfg.PublishTables); err != nil {
		return nil, err
	}
	if res.StreamRequest, err = handOffStream(ctx, cfg, *plans, *done); err != nil {
		return nil, err
	}
	cfg.publishLater = true
	// The slot's own snapshot died with the run that created it. A temporary slot
	// exports a snapshot whose consistent point is exact: every transaction that
	// committed before it is visible, none after. Rows read there carry that LSN
	// as their version, so the permanent slot's replay of older changes is
	// rejected by the version check and newer ones apply.
	snap, err := extract.CreateSlotSnapshot(ctx, cfg.SourceURL, tempName, true)
	if err != nil {
		return nil, err
	}
	res.ReadLSN, res.Resumed = snap.LSN, true
	return snap, nil
}

// SlotActiveError is returned when the backfill's slot is active: a
// walsender streams from it, that is a `ferry sync` is running. A plain
// backfill would copy at a new snapshot behind sync's back; --restart would
// have to drop the slot sync holds. It wraps ErrSlotInUse.
type SlotActiveError struct {
	Slot    string
	PID     int // the walsender's process id (0 if unknown)
	Restart bool
}

func (e *SlotActiveError) Error() string {
	pid := "pid unknown"
	if e.PID > 0 {
		pid = fmt.Sprintf("pid %d", e.PID)
	}
	if e.Restart {
		return fmt.Sprintf("--restart: slot %s is in use by another process (%s; is `ferry sync` running?): stop sync first", e.Slot, pid)
	}
	return fmt.Sprintf("sync is running on slot %s (%s): a backfill now would copy at a new snapshot while sync keeps "+
		"acknowledging the slot, and the changes of a table sync was started without would be lost; "+
		"stop sync first, or use `ferry snapshot` to re-read tables online", e.Slot, pid)
}

func (e *SlotActiveError) Unwrap() error { return ErrSlotInUse }

// activePID is the process id of the walsender holding the slot, or 0.
func activePID(ctx context.Context, conn *pgx.Conn, slot string) int {
	var pid *int32
	err := conn.QueryRow(ctx, "SELECT active_pid FROM pg_replication_slots WHERE slot_name = $1 AND database = current_database()", slot).Scan(&pid)
	if err != nil || pid == nil {
		return 0
	}
	return int(*pid)
}

type nopProgress struct{}

func (nopProgress) TableStart(string, int64, int64) {}
func (nopProgress) Add(string, int64)               {}
func (nopProgress) TableDone(*TableStats)           {}

// reader is a snapshot connection with the memory its chunks are read,
// encoded and batched in: one batch at a time, used again for the next,
// chunk after chunk and table after table. The rows (mem), the items and
// records built from them (enc: DynamoDB's wire form, no SDK item per
// row), the batch's slices and the key index: per row the backfill's
// source side allocates nothing. The sink keeps nothing of a batch once
// Write returns (Sink), and a failure copies what it reports of its row
// (rowText, KeyString).
type reader struct {
	conn  *extract.SnapshotConn
	mem   extract.RowBuffer
	enc   *transform.Encoder
	batch Batch
	keys  map[string]int // item key identity → row index in batch
	refs  []any          // refs[i] is i, boxed once (a write's and a record's Ref)
}

// start prepares the reader for a chunk of tp.
func (r *reader) start(tp *transform.TablePlan, batchRows int) {
	if r.enc == nil {
		r.enc = tp.NewEncoder()
		r.keys = make(map[string]int, batchRows)
		r.batch = Batch{Writes: make([]load.WriteRequest, 0, batchRows),
			Records: make([]load.Record, 0, batchRows), Rows: make([]extract.Row, 0, batchRows)}
		r.refs = make([]any, batchRows)
		for i := range r.refs {
			r.refs[i] = i
		}
	}
	r.enc.Switch(tp)
	r.mem.Reset()
	r.batch.Table = tp
	r.next()
}

// next empties the batch, the key index and the memory of the batch's rows
// for the next batch.
func (r *reader) next() {
	b := &r.batch
	clear(b.Writes)
	clear(b.Records)
	clear(b.Rows)
	b.Writes, b.Records, b.Rows = b.Writes[:0], b.Records[:0], b.Rows[:0]
	clear(r.keys)
	r.enc.Reset()
	r.mem.Reset()
}

// copier is one process's part of a backfill's copy.
type copier struct {
	cfg      *BackfillConfig
	state    *stateStore // nil: no control table (no leases, nothing recorded)
	leases   chunkLeases // with state
	pos      extract.Position
	snapTime time.Time
	now      func() time.Time
	tally    workerTally
}

// copyJob copies one chunk on reader r (under its lease, with a control
// table), counts it to its table, writes its failures to the dead-letter
// file under OnErrorSkip, and records the chunk done when its rows are
// durable. A chunk another worker holds goes back to q for later. After
// the table's last chunk the progress sees the table done.
func (c *copier) copyJob(ctx context.Context, r *reader, job chunkJob, q *chunkQueue) error {
	cfg, t, ch := c.cfg, job.table, job.chunk
	var n int64
	var written SinkStats
	var fails []RowFailure
	// copy returns the chunk's done marker, nil to leave it undone; it
	// reads under the run's context and writes under ctx, the lease's.
	runCtx := ctx
	copy := func(ctx context.Context) ([]byte, error) {
		t.begin(cfg.Progress)
		var err error
		n, written, fails, err = copyChunk(runCtx, ctx, cfg, t.tp, r, ch, c.pos, c.snapTime)
		if err != nil {
			return nil, err
		}
		// Under stop, a chunk with rows that could not be written stays
		// undone: the next run retries it (after the mapping or data is
		// fixed). Under skip its rows are in the dead-letter file.
		if len(fails) > 0 && cfg.OnError != OnErrorSkip {
			return nil, nil
		}
		for _, f := range fails {
			if err := cfg.DeadLetter.Write(ctx, f, cfg.Control); err != nil {
				return nil, err
			}
			cfg.Logger.Warn("row skipped (--on-error=skip): written to the dead-letter file",
				"table", f.Table, "key", f.Key, "reason", f.Reason, "file", cfg.DeadLetter.Path)
		}
		return doneValue(n, cfg.Worker), nil
	}
	if c.state == nil {
		if _, err := copy(ctx); err != nil {
			t.add(n, written, nil)
			return err
		}
		t.add(n, written, fails)
		t.chunkDone(cfg.Progress)
		return nil
	}
	at, err := leasedChunk(ctx, c.leases, chunkKey(t.name, ch.Index), c.now, copy)
	if err != nil && ctx.Err() == nil && load.IsTransient(err) {
		// The control table is out of reach for now (the SDK's retries
		// are spent): the chunk is looked at again later.
		cfg.Logger.Warn("chunk lease not reachable: trying again later", "table", t.name, "chunk", ch.Index, "err", err)
		t.add(n, written, nil)
		q.retry(job, c.leases.Duration()/3)
		return nil
	}
	if err != nil {
		// The run stops; the rows failed so far are not reported (under
		// skip they were not dead-lettered): the chunk is copied again.
		t.add(n, written, nil)
		return err
	}
	switch at.out {
	case chunkBusy:
		// Looked at again soon: its holder most likely finishes it within
		// a chunk's copy time (then it is done elsewhere), else when its
		// lease may have run out; at most every busyPoll, so a busy chunk
		// is not polled in a loop. (Waiting for the lease to run out cost
		// each worker up to --lease at the end of every run: 10 s.)
		q.retry(job, min(max(at.wait, 50*time.Millisecond), busyPoll(c.leases.Duration())))
		return nil
	case chunkLost:
		cfg.Logger.Info("chunk lease lost while copying: another worker copies it", "table", t.name, "chunk", ch.Index,
			"worker", cfg.Worker, "reason", at.lost)
		t.lost(written)
		c.tally.lost.Add(1)
		q.retry(job, c.leases.Duration()/3)
		return nil
	case chunkDoneElse:
		t.elsewhere()
	case chunkFinished:
		t.add(n, written, fails)
		c.tally.chunks.Add(1)
		c.tally.rows.Add(n)
	case chunkUnrecorded:
		t.add(n, written, fails)
	}
	t.chunkDone(cfg.Progress)
	return nil
}

// copyChunk reads one chunk and writes it in batches; it returns rows read,
// what the sink wrote and the rows that failed (after an error: so far).
// The sink writes under wctx (the chunk's lease, derived from ctx): when it
// ends, the chunk's remaining rows are read to the end (the snapshot
// connection survives only a read that completes: an abandoned COPY closes
// it) but neither transformed nor written, and wctx's cause is returned.
func copyChunk(ctx, wctx context.Context, cfg *BackfillConfig, tp *transform.TablePlan, r *reader,
	ch extract.Chunk, pos extract.Position, snapTime time.Time) (int64, SinkStats, []RowFailure, error) {
	name := tp.Source.QualifiedName()
	var fails []RowFailure
	var written SinkStats
	src := transform.RecordSource{DB: r.conn.Conn().Config().Database}
	r.start(tp, cfg.BatchRows)
	batch, keys, enc := &r.batch, r.keys, r.enc
	fail := func(row extract.Row, err error) {
		f := rowFailure(name, tp.KeyString(row), err)
		f.Op, f.LSN, f.Row = extract.OpRead.String(), pos.LSN.String(), rowText(tp.Source, row)
		fails = append(fails, f)
	}
	flush := func() error {
		if len(batch.Writes) == 0 && len(batch.Records) == 0 {
			return nil
		}
		if wctx.Err() != nil && ctx.Err() == nil {
			r.next() // the lease is lost: nothing more is written
			return nil
		}
		w, f, err := cfg.Sink.Write(wctx, batch)
		written.Add(w)
		if err != nil && wctx.Err() != nil && ctx.Err() == nil {
			r.next() // the lease is lost: the rest of the chunk is skipped
			return nil
		}
		if err != nil {
			return err
		}
		for i := range f {
			f[i].Op, f[i].LSN = extract.OpRead.String(), pos.LSN.String()
		}
		fails = append(fails, f...)
		cfg.Progress.Add(name, int64(len(batch.Writes)))
		r.next()
		return nil
	}
	change := extract.Change{Table: tp.Source, Op: extract.OpRead, Pos: pos, Commit: snapTime}
	now := time.Now()
	n, err := r.conn.ReadChunkInto(ctx, tp.Source, ch, &r.mem, func(row extract.Row) error {
		if wctx.Err() != nil {
			r.next() // drops the batch and the rows' memory
			return nil
		}
		item, id, err := enc.Item(row, pos)
		if err != nil {
			fail(row, err)
			return nil
		}
		var rec load.Record
		publish := tp.Stream != "" && !cfg.publishLater
		if publish {
			change.After = row
			pk, data, err := enc.Record(&change, src, now)
			if err != nil {
				fail(row, err)
				return nil
			}
			rec = load.Record{Stream: tp.Stream, PartitionKey: pk, Data: data}
		}
		// Two rows of one snapshot never write one item (the plan proves the
		// key templates injective); should it happen all the same, the later
		// row fails naming both, rather than overwrite the other's item.
		if other, dup := keys[id]; dup {
			fail(row, &transform.RowError{Table: name, Key: tp.KeyString(row),
				Err: &KeyCollisionError{Table: name, Target: tp.Target, Key: tp.KeyString(row), Other: tp.KeyString(batch.Rows[other])}})
			return nil
		}
		// Ref is the row's index in the batch: a failure names its row.
		ref := len(batch.Rows)
		keys[id] = ref
		batch.Rows = append(batch.Rows, row)
		batch.Writes = append(batch.Writes, load.WriteRequest{Table: tp.Target, KeyID: id, PutJSON: item, Ref: r.refs[ref]})
		if publish {
			rec.Ref = r.refs[ref]
			batch.Records = append(batch.Records, rec)
		}
		if len(batch.Writes) >= cfg.BatchRows {
			return flush()
		}
		return nil
	})
	if err != nil {
		return n, written, fails, err
	}
	if err := flush(); err != nil {
		return n, written, fails, err
	}
	if wctx.Err() != nil {
		return n, written, fails, context.Cause(wctx)
	}
	return n, written, fails, nil
}

// rowFailure records err for a row; a transform.RowError already names the
// table and key, so only its cause becomes the reason.
func rowFailure(table, key string, err error) RowFailure {
	var re *transform.RowError
	if errors.As(err, &re) {
		err = re.Err
	}
	return RowFailure{Table: table, Key: key, Reason: err.Error()}
}

// KeyCollisionError is a row whose item key is the key of another row's item:
// writing it would silently replace that item.
type KeyCollisionError struct {
	Table, Target string
	Key, Other    string // the two rows' source primary keys
}

func (e *KeyCollisionError) Error() string {
	return fmt.Sprintf("key collision: the row (%s) of %s maps to the same %s item as the row (%s); make the key templates distinguish them", e.Key, e.Table, e.Target, e.Other)
}
