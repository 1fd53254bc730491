package verify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/jackc/pgx/v5"

	"github.com/ferry-migrate/ferry/extract"
	"github.com/ferry-migrate/ferry/load"
	"github.com/ferry-migrate/ferry/transform"
)

// CheckpointFunc returns sync's durable position (every change committed at or
// before lsn is in DynamoDB and Kinesis); ok is false when sync has never
// checkpointed. It is called from one goroutine at a time.
type CheckpointFunc func(ctx context.Context) (lsn extract.LSN, ok bool, err error)

// BarrierMark names the partition key of a row's changes on a stream.
type BarrierMark struct {
	Stream, PartitionKey string
}

// BarrierFunc waits until the stream appliers of `sync --apply stream` have
// applied every change published on the marks' partition keys before the
// call (sync's checkpoint has passed lsn: Kinesis holds them). ok is false
// when they did not within its own bound (or when there is nothing to wait
// for it returns true at once: sync writes DynamoDB itself). It is called
// from one goroutine at a time.
type BarrierFunc func(ctx context.Context, marks []BarrierMark, lsn extract.LSN) (ok bool, err error)

// OnlineRepairFunc asks the running sync to re-read the rows with these
// primary keys (text values, by qualified table name) through its online
// snapshot, and returns when sync has applied them (an error when it cannot
// tell: sync stopped, a timeout).
type OnlineRepairFunc func(ctx context.Context, keys map[string][][]string) error

// Config configures Run. Zero values take the documented defaults.
type Config struct {
	SourceURL string
	// Plan is the compiled mapping; Tables (bare or qualified names) restricts
	// the check to some of its tables (default: all). Items whose _table is no
	// mapped table are reported as extra only when every table is checked.
	Plan   *transform.Plan
	Tables []string
	Dynamo *dynamodb.Client
	// Kinesis is needed with Stream: read every stream of the checked tables
	// and compare it, folded per row, with the source.
	Kinesis *kinesis.Client
	Stream  bool
	// Repair rewrites the items that differ from the source (version-guarded)
	// and re-verifies them. With OnlineRepair and a running sync, the rows are
	// re-read through sync's online snapshot, so the stream has them too.
	Repair       bool
	OnlineRepair OnlineRepairFunc
	// Slot is sync's replication slot; Checkpoint reads its checkpoint (nil:
	// sync is not considered). When sync is running, differing rows are
	// re-checked after its checkpoint passes the rows' read positions.
	Slot       string
	Checkpoint CheckpointFunc
	// Barrier, with a sync whose stream's appliers write DynamoDB (sync
	// --apply stream), is how a re-check waits for the appliers after sync's
	// checkpoint (which then says only that Kinesis holds the changes), and
	// also once sync stopped (the appliers go on applying what it
	// published; every difference is then re-checked); nil: sync writes
	// DynamoDB itself and its checkpoint is enough.
	Barrier BarrierFunc
	// Refilling returns the tables (qualified names) that sync is still
	// re-reading after a schema change (the online snapshot's request id):
	// their differences are reported in flight (nil: none).
	Refilling RefillingFunc
	// KeptAttributes are, per table (qualified name), attributes of dropped
	// columns that the mapping keeps on the items written before the drop
	// (keep_dropped): not compared.
	KeptAttributes map[string][]string
	// History reads the recorded start of the streams' history (the
	// backfill), against which the stream check tells expired rows from
	// missing ones (nil: every row without an event is missing).
	History HistoryFunc
	// Rechecks is how many times a differing row is re-read before it is
	// reported as in flight (default 3).
	Rechecks int
	// Wait bounds each wait for sync's checkpoint (default 30s); Poll is the
	// polling interval (default 200ms).
	Wait, Poll time.Duration
	// Segments is the number of parallel Scan segments (default 4).
	Segments int
	// Workers is the number of snapshot connections reading the source (default 2).
	Workers int
	// ChunkRows is the size of the primary-key chunks the source is read in
	// (default 20000).
	ChunkRows int
	// MaxFindings is how many findings are listed per table or stream (default
	// 1000); counts are always exact.
	MaxFindings int
	// DeadLetters are the rows ferry skipped (--on-error=skip): the checked
	// rows among them that the targets lack or hold differently are reported
	// as dead-lettered (still differences, but known ones). They are neither
	// re-checked nor repaired.
	DeadLetters DeadLetters
	// DrillItems bounds the DynamoDB items held in memory while the key ranges
	// whose digests differ are compared item by item (default 50000). More
	// differing ranges than fit are compared in several rounds, each with its own
	// scan.
	DrillItems int
	// Now is the clock (default time.Now).
	Now    func() time.Time
	Logger *slog.Logger
}

func (c *Config) defaults() {
	if c.Rechecks <= 0 {
		c.Rechecks = 3
	}
	if c.Wait <= 0 {
		c.Wait = 30 * time.Second
	}
	if c.Poll <= 0 {
		c.Poll = 200 * time.Millisecond
	}
	if c.Segments <= 0 {
		c.Segments = 4
	}
	if c.Workers <= 0 {
		c.Workers = 2
	}
	if c.ChunkRows <= 0 {
		c.ChunkRows = 20000
	}
	if c.MaxFindings <= 0 {
		c.MaxFindings = 1000
	}
	if c.DrillItems <= 0 {
		c.DrillItems = 50000
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Validate reports every missing or invalid field, joined.
func (c *Config) Validate() error {
	var errs []error
	if c.SourceURL == "" {
		errs = append(errs, errors.New("verify: no source URL"))
	}
	if c.Plan == nil {
		errs = append(errs, errors.New("verify: no plan"))
	}
	if c.Dynamo == nil {
		errs = append(errs, errors.New("verify: no DynamoDB client"))
	}
	if c.Stream && c.Kinesis == nil {
		errs = append(errs, errors.New("verify: Stream needs a Kinesis client"))
	}
	if c.Checkpoint != nil && c.Slot == "" {
		errs = append(errs, errors.New("verify: Checkpoint needs the Slot"))
	}
	return errors.Join(errs...)
}

// verifier is one run's state.
type verifier struct {
	cfg    Config
	rep    *Report
	plan   *transform.Plan // the checked tables
	known  map[string]bool // bare names of every mapped table
	all    bool            // every mapped table is checked
	conns  []*extract.SnapshotConn
	pc     *pgx.Conn // outside the snapshot: re-reads, LSNs, slot state
	writer *load.DynamoWriter
	tables []*tableCheck
	kept   map[string][]string // by _table: KeptAttributes
	extra  []*tableCheck       // "(unmapped)" collectors, one per target
	// snapLSN is pg_current_wal_insert_lsn() read by the snapshot's first statement:
	// every transaction the snapshot sees committed before it. lsnBefore was
	// read just before the snapshot was taken: a transaction the snapshot does
	// not see commits after it (up to the few milliseconds between a commit
	// record and its visibility, which the re-checks cover).
	snapLSN, lsnBefore extract.LSN
	// txSnap is the snapshot's transaction snapshot: which changes (by
	// transaction id) it sees, for folding the stream exactly as of it.
	txSnap      extract.TxSnapshot
	syncRunning bool
	// history is the recorded start of the streams' history (nil: unknown).
	history *History
}

// Run verifies the plan's tables (and, with Stream, their streams) and returns
// the report. An error means nothing could be checked (no connection, no
// snapshot); a table or stream that could not be checked has its Error set and
// the report's verdict is "error".
func Run(ctx context.Context, cfg Config) (*Report, error) {
	cfg.defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	start := cfg.Now()
	v := &verifier{cfg: cfg, rep: &Report{GeneratedAt: start.UTC(), Sync: SyncState{Slot: cfg.Slot}},
		known: map[string]bool{}, all: len(cfg.Tables) == 0}
	v.plan = cfg.Plan
	for _, t := range cfg.Plan.Tables {
		v.known[t.Source.Name] = true
	}
	if !v.all {
		p, err := cfg.Plan.Restrict(cfg.Tables)
		if err != nil {
			return nil, err
		}
		v.plan = p
	}
	v.writer = load.NewDynamoWriter(cfg.Dynamo, load.DynamoConfig{Logger: cfg.Logger})
	var err error
	if v.pc, err = extract.Connect(ctx, cfg.SourceURL); err != nil {
		return nil, err
	}
	defer v.pc.Close(context.Background())
	if err := v.syncState(ctx); err != nil {
		return nil, err
	}
	if cfg.Stream && cfg.History != nil {
		h, ok, err := cfg.History(ctx)
		if err != nil {
			return nil, fmt.Errorf("the recorded start of the stream history: %w", err)
		}
		if ok {
			v.history = &h
		}
	}
	if v.lsnBefore, err = extract.CurrentWALLSN(ctx, v.pc); err != nil {
		return nil, err
	}
	if err := v.openSnapshot(ctx); err != nil {
		return nil, err
	}
	defer func() {
		for _, c := range v.conns {
			c.Close(context.Background())
		}
	}()
	v.rep.SnapshotLSN = v.snapLSN.String()
	cfg.Logger.Info("verify: snapshot taken", "lsn", v.snapLSN, "sync_running", v.syncRunning)

	for _, tp := range v.plan.Tables {
		v.tables = append(v.tables, &tableCheck{tp: tp, rep: &TableReport{Table: tp.Source.QualifiedName(), Target: tp.Target}, max: cfg.MaxFindings,
			dead: cfg.DeadLetters})
		if attrs := cfg.KeptAttributes[tp.Source.QualifiedName()]; len(attrs) > 0 {
			if v.kept == nil {
				v.kept = map[string][]string{}
			}
			v.kept[tp.Source.Name] = attrs
		}
	}
	for _, target := range v.targets() {
		tcs := v.onTarget(target)
		if err := v.checkTarget(ctx, target, tcs); err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			for _, tc := range tcs {
				tc.rep.Error = err.Error()
			}
		}
	}
	if err := v.recheckFindings(ctx); err != nil {
		v.rep.Errors = append(v.rep.Errors, err.Error())
	}
	if err := v.markRefilling(ctx); err != nil {
		v.rep.Errors = append(v.rep.Errors, err.Error())
	}
	if cfg.Repair {
		if err := v.repair(ctx); err != nil {
			v.rep.Errors = append(v.rep.Errors, err.Error())
		}
	}
	if cfg.Stream {
		for _, name := range v.plan.Streams() {
			v.rep.Streams = append(v.rep.Streams, v.checkStream(ctx, name))
		}
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	for _, tc := range append(slices.Clone(v.tables), v.extra...) {
		v.rep.Tables = append(v.rep.Tables, tc.report())
	}
	v.rep.DurationMS = cfg.Now().Sub(start).Milliseconds()
	v.rep.Finish()
	return v.rep, nil
}

// syncState reads sync's checkpoint and whether its slot is in use.
func (v *verifier) syncState(ctx context.Context) error {
	if v.cfg.Checkpoint == nil {
		return nil
	}
	lsn, ok, err := v.cfg.Checkpoint(ctx)
	if err != nil {
		return fmt.Errorf("sync checkpoint of slot %s: %w", v.cfg.Slot, err)
	}
	if ok {
		v.rep.Sync.Checkpointed = true
		v.rep.Sync.CheckpointLSN = lsn.String()
	}
	// The slot decides, not the checkpoint: a sync that has just started has
	// written none yet (it writes one with its first changes) but streams.
	slot, exists, err := extract.LookupSlot(ctx, v.pc, v.cfg.Slot)
	if err != nil {
		return err
	}
	// A checkpoint without a streaming slot is a sync that stopped: nothing will
	// catch up while verify waits, so differences are reported as they are.
	v.syncRunning = exists && slot.Active
	v.rep.Sync.Running = v.syncRunning
	return nil
}

// openSnapshot starts the snapshot transaction, exports it and opens the other
// reading connections inside it. The exporting transaction stays open (and
// keeps its xmin) until Run returns.
func (v *verifier) openSnapshot(ctx context.Context) error {
	c0, err := extract.OpenSnapshotConn(ctx, v.cfg.SourceURL, "")
	if err != nil {
		return err
	}
	v.conns = append(v.conns, c0)
	name, lsn, txs, err := c0.ExportSnapshot(ctx)
	if err != nil {
		return err
	}
	v.snapLSN, v.txSnap = lsn, txs
	for i := 1; i < v.cfg.Workers; i++ {
		c, err := extract.OpenSnapshotConn(ctx, v.cfg.SourceURL, name)
		if err != nil {
			return err
		}
		v.conns = append(v.conns, c)
	}
	return nil
}

// targets lists the DynamoDB tables of the checked source tables, in plan order.
func (v *verifier) targets() []string {
	var out []string
	for _, tp := range v.plan.Tables {
		if !slices.Contains(out, tp.Target) {
			out = append(out, tp.Target)
		}
	}
	return out
}

func (v *verifier) onTarget(target string) []*tableCheck {
	var out []*tableCheck
	for _, tc := range v.tables {
		if tc.tp.Target == target {
			out = append(out, tc)
		}
	}
	return out
}

// itemKeyString renders an item's key attributes for reports.
func itemKeyString(key map[string]string) string {
	names := make([]string, 0, len(key))
	for k := range key {
		names = append(names, k)
	}
	slices.Sort(names)
	parts := make([]string, len(names))
	for i, k := range names {
		parts[i] = k + "=" + key[k]
	}
	return strings.Join(parts, ", ")
}
