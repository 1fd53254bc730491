package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"golang.org/x/sync/errgroup"

	"github.com/ferry-migrate/ferry/extract"
	"github.com/ferry-migrate/ferry/load"
	"github.com/ferry-migrate/ferry/transform"
)

// TruncatePolicy says what sync does with a TRUNCATE.
type TruncatePolicy string

// The truncate policies.
const (
	TruncateApply TruncatePolicy = "apply" // remove every item of the table (default)
	TruncateSkip  TruncatePolicy = "skip"  // publish the event, keep the items
	TruncateFail  TruncatePolicy = "fail"  // stop sync with an error
)

// SyncConfig configures continuous CDC. Zero values take the documented defaults.
type SyncConfig struct {
	SourceURL   string
	Slot        string // default "ferry"
	Publication string // default "ferry"
	Plan        *transform.Plan
	Control     *load.ControlStore
	Dynamo      *load.DynamoWriter
	Kinesis     *load.KinesisWriter
	// DynamoClient serves reads (old items on key changes, TRUNCATE scans).
	DynamoClient *dynamodb.Client
	// BatchChanges bounds the changes applied together (default 2000): memory
	// stays bounded whatever the size of a transaction.
	BatchChanges int
	// Linger is how long a batch may wait for more changes (default 20 ms).
	Linger time.Duration
	// ApplyWorkers is the number of concurrent conditional writes (default 16).
	ApplyWorkers int
	// CheckpointEvery is how often, at most, the checkpoint of applied
	// batches is written (then the slot acknowledged) when the batches need
	// no intent record (default 1 s; see flushOnce). A checkpoint write per
	// batch was half of sync's DynamoDB requests under a steady workload.
	CheckpointEvery time.Duration
	Truncate        TruncatePolicy
	// ApplyStream leaves the DynamoDB writes to the stream's appliers (the
	// Lambda function, cmd/ferry-lambda): sync publishes every change and
	// acknowledges the slot once Kinesis holds it (--apply stream). Every
	// mapped table needs a stream, and records its keys can be rebuilt from
	// (transform.TablePlan.RecordsInvertible); a TRUNCATE is published to
	// every open shard of the table's stream (KinesisClient lists them).
	ApplyStream   bool
	KinesisClient *kinesis.Client
	// WALBudget is the retained-WAL size above which sync warns (default 1 GiB).
	WALBudget int64
	// Heartbeat is how often a logical message is written so an idle slot
	// advances (default 10 s; negative disables).
	Heartbeat time.Duration
	// StatusEvery is how often Status is called (default 2 s).
	StatusEvery time.Duration
	Status      func(SyncStatus)
	// OnError is the policy for changes that can never be written (default
	// OnErrorStop: sync stops naming the table and key); under OnErrorSkip
	// they go to DeadLetter and sync acknowledges past them.
	OnError    ErrorPolicy
	DeadLetter *DeadLetter
	// Retry paces the retries of a batch that failed with a transient error
	// (throttling, an outage): sync falls behind and catches up instead of
	// stopping (default Base 250 ms, Max 10 s, unlimited attempts).
	Retry load.Backoff
	// Reconnect paces reconnections after the replication connection was
	// lost (default Base 250 ms, Max 10 s, unlimited attempts).
	Reconnect load.Backoff
	// SnapshotChunkRows is the largest size of an online snapshot's chunks
	// (default 250 rows): a chunk's rows are applied with the stream's
	// batch, so it bounds the pause an online snapshot adds to sync.
	SnapshotChunkRows int
	// SnapshotChunkTime is the apply time a chunk aims at (default 250 ms;
	// < 0: every chunk has SnapshotChunkRows rows): while the targets apply
	// fewer rows than that in this time (throttling, retries, load), chunks
	// shrink, so the snapshot slows down instead of sync's lag growing.
	SnapshotChunkTime time.Duration
	// SnapshotRate caps an online snapshot's rows per second (0: as fast as
	// the chunks apply, one chunk at a time).
	SnapshotRate float64
	// SnapshotPoll is how often sync looks for snapshot requests (default 2 s).
	SnapshotPoll time.Duration
	// CataloguePoll is how often sync reads the partitions of mapped
	// partitioned tables (see partitions.go; 0: never).
	CataloguePoll time.Duration
	Logger        *slog.Logger
	// Observer watches batches and retries (metrics; nil: none).
	Observer SyncObserver
}

func (c *SyncConfig) defaults() {
	if c.Slot == "" {
		c.Slot = "ferry"
	}
	if c.Publication == "" {
		c.Publication = "ferry"
	}
	if c.BatchChanges <= 0 {
		c.BatchChanges = 2000
	}
	if c.Linger <= 0 {
		c.Linger = 20 * time.Millisecond
	}
	if c.ApplyWorkers <= 0 {
		c.ApplyWorkers = 16
	}
	if c.CheckpointEvery <= 0 {
		c.CheckpointEvery = time.Second
	}
	if c.Truncate == "" {
		c.Truncate = TruncateApply
	}
	if c.WALBudget <= 0 {
		c.WALBudget = 1 << 30
	}
	if c.SnapshotChunkRows <= 0 {
		c.SnapshotChunkRows = 250
	}
	if c.SnapshotChunkTime == 0 {
		c.SnapshotChunkTime = 250 * time.Millisecond
	}
	if c.SnapshotPoll <= 0 {
		c.SnapshotPoll = 2 * time.Second
	}
	if c.Heartbeat == 0 {
		c.Heartbeat = 10 * time.Second
	}
	if c.StatusEvery <= 0 {
		c.StatusEvery = 2 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.OnError == "" {
		c.OnError = OnErrorStop
	}
	if c.OnError == OnErrorSkip && c.DeadLetter == nil {
		c.DeadLetter = NewDeadLetter("")
	}
	if c.Retry == (load.Backoff{}) {
		c.Retry = load.Backoff{Base: 250 * time.Millisecond, Max: 10 * time.Second, MaxAttempts: -1}
	}
	if c.Reconnect == (load.Backoff{}) {
		c.Reconnect = load.Backoff{Base: 250 * time.Millisecond, Max: 10 * time.Second, MaxAttempts: -1}
	}
}

// SyncStatus is what the operator sees while sync runs.
type SyncStatus struct {
	Changes       int64   // applied since this process started
	ChangesPerSec float64 // over the last interval
	LagBytes      int64   // server WAL end − acknowledged position
	LagSeconds    float64 // now − commit time of the oldest unapplied change (0 when caught up)
	LastCommitLSN extract.LSN
	LastCommit    time.Time
	Acked         extract.LSN
	RetainedWAL   int64
	// Snapshot is the online snapshot under way (nil: none), as of its
	// last chunk; SnapshotTable is the table of that chunk.
	Snapshot      *SnapshotProgress
	SnapshotTable string
	// SchemaChanges counts the schema changes this process followed.
	SchemaChanges int
}

// ErrNoBackfill is returned when sync starts on a slot that no backfill created.
var ErrNoBackfill = errors.New("no completed backfill for this slot")

// ErrSlotInUse is returned when another process streams from the slot (a
// second ferry sync).
var ErrSlotInUse = extract.ErrSlotInUse

// Sync streams changes from the slot and applies them to DynamoDB and Kinesis
// until ctx is cancelled; then it applies what it has, checkpoints and returns
// nil. See DESIGN.md: no gap, no time travel, acknowledge last, per-key order.
func Sync(ctx context.Context, cfg SyncConfig) error {
	cfg.defaults()
	if err := cfg.CheckApplyStream(); err != nil {
		return err
	}
	if cfg.ApplyStream && cfg.KinesisClient == nil {
		return errors.New("sync: ApplyStream without a KinesisClient to list the streams' shards")
	}
	s, err := newSyncer(ctx, &cfg)
	if err != nil {
		return err
	}
	return s.run(ctx)
}

type syncer struct {
	// rowConn is the apply loop's connection to the source, for row images
	// (generated columns, key changes); see sourceConn.
	rowConn *pgx.Conn
	cfg     *SyncConfig
	log     *slog.Logger
	tables  map[string]*transform.TablePlan
	// ck: the checkpoint and the rules of acknowledging (checkpointer.go).
	ck       *checkpointer
	stream   *extract.ReplicationStream
	online   onlineState
	snapReqs chan []SnapshotRequest
	schema   schemaState
	// noKeyWarned: tables a pattern matches without a primary key, named
	// once (the catalogue watcher's).
	noKeyWarned map[string]bool
	// partitionsSeen: the WAL position at which the watcher first saw a
	// table's partitions change (it handles the change once sync has
	// acknowledged that far).
	partitionsSeen map[string]extract.LSN

	mu        sync.Mutex
	status    SyncStatus
	serverEnd atomic.Uint64
	// pendingSince is the commit time (unix ns) of the oldest change received
	// but not yet durable; 0 when everything received is applied.
	pendingSince atomic.Int64
}

func newSyncer(ctx context.Context, cfg *SyncConfig) (*syncer, error) {
	s := &syncer{cfg: cfg, log: cfg.Logger, tables: map[string]*transform.TablePlan{}, noKeyWarned: map[string]bool{},
		partitionsSeen: map[string]extract.LSN{}}
	for _, tp := range cfg.Plan.Tables {
		s.tables[tp.Source.QualifiedName()] = tp
		if cols := tp.KeyColumnsOutsidePK(); len(cols) > 0 && tp.Source.ReplicaIdentity != 'f' {
			return nil, fmt.Errorf("table %s: its item key uses %v, outside the primary key; deletes and key changes can only find their item with ALTER TABLE %s REPLICA IDENTITY FULL (or key the table by its primary key)",
				tp.Source.QualifiedName(), cols, tp.Source.Ident())
		}
	}
	cp, ok, err := LoadCheckpoint(ctx, cfg.Control, cfg.Slot)
	if err != nil {
		return nil, err
	}
	if !ok {
		lsn, complete, ok, err := SnapshotPosition(ctx, cfg.Control, cfg.Slot)
		if err != nil {
			return nil, err
		}
		if !ok || !complete {
			return nil, fmt.Errorf("%w %s", ErrNoBackfill, cfg.Slot)
		}
		cp = Checkpoint{LSN: lsn, Pos: extract.Position{LSN: lsn}}
	}
	apply := ""
	if cfg.ApplyStream {
		apply = ApplyStream
	}
	s.ck = newCheckpointer(controlCheckpoints{cfg.Control, cfg.Slot, apply}, cfg.CheckpointEvery, cp)
	s.ck.afterSave = func(ctx context.Context) error {
		if err := s.recordSnapshotDone(ctx); err != nil {
			return err
		}
		s.mu.Lock()
		s.status.Acked = s.ck.cp.LSN
		s.mu.Unlock()
		return nil
	}
	s.status.Acked = cp.LSN
	// Before the stream starts: the plans start from the definitions sync
	// last applied (see startFrom).
	if err := s.loadSchemaState(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// run streams until ctx ends. A lost replication connection (a terminated
// walsender, a restarted server, a network failure) is not the end: run
// reconnects with capped backoff and resumes from the checkpoint, where
// skip-by-position and the intent replay make the restart lose nothing and
// apply nothing twice.
func (s *syncer) run(ctx context.Context) error {
	var lost *lostConnError
	err := load.RetryLoop{
		Backoff: s.cfg.Reconnect,
		// Only a lost connection is retried, and not once ctx has ended.
		Retryable: func(err error) bool { return ctx.Err() == nil && errors.As(err, &lost) },
		// A connection that lived a while starts a fresh backoff.
		FreshAfter: time.Minute,
		OnRetry: func(attempt int, _ error) {
			s.log.Warn("replication connection lost; reconnecting from the checkpoint", "slot", s.cfg.Slot,
				"attempt", attempt, "checkpoint", s.ck.cp.LSN, "err", lost.err)
		},
		GiveUp: func(_, reason error) error {
			return fmt.Errorf("reconnect to slot %s: %w (last error: %w)", s.cfg.Slot, reason, lost.err)
		},
	}.Do(ctx, func(attempt int) error { return s.session(ctx, attempt == 0) })
	if err != nil && ctx.Err() == nil {
		return err
	}
	s.log.Info("sync stopped", "slot", s.cfg.Slot, "checkpoint", s.ck.cp.LSN)
	return nil
}

// lostConnError marks the loss of a connection to PostgreSQL that a
// reconnect may cure.
type lostConnError struct{ err error }

func (e *lostConnError) Error() string { return e.err.Error() }
func (e *lostConnError) Unwrap() error { return e.err }

// connLost wraps err as lostConnError when reconnecting may help: the
// connection failed or was closed, the server is shutting down or restarting,
// or the previous walsender still holds the slot (after a reconnect).
func connLost(err error, reconnecting bool) error {
	if err == nil || errors.Is(err, extract.ErrSlotMissing) || errors.Is(err, extract.ErrSlotInvalidated) || errors.Is(err, extract.ErrDecode) {
		return err
	}
	if errors.Is(err, extract.ErrSlotInUse) {
		if reconnecting {
			return &lostConnError{err}
		}
		return err
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch c := pgErr.Code; {
		case c == pgerrcode.AdminShutdown, c == pgerrcode.CrashShutdown, c == pgerrcode.CannotConnectNow,
			c == pgerrcode.IdleSessionTimeout, pgerrcode.IsConnectionException(c), pgerrcode.IsInsufficientResources(c):
			// The server is shutting down or restarting, the connection
			// failed, or resources (connections) ran out for a while.
			return &lostConnError{err}
		}
		return err
	}
	// A connection that failed, or one already closed by an earlier failure
	// (pgconn marks the requests it never sent, such as one on a closed
	// connection, safe to retry).
	var ce *pgconn.ConnectError
	var ne net.Error
	if errors.As(err, &ce) || errors.As(err, &ne) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, net.ErrClosed) || pgconn.SafeToRetry(err) {
		return &lostConnError{err}
	}
	if reconnecting && errors.Is(err, extract.ErrConnLost) {
		return &lostConnError{err}
	}
	return err
}

// session is one replication connection's life: stream and apply until ctx
// ends (nil), the connection is lost (a lostConnError) or a change cannot be
// applied (the error).
func (s *syncer) session(ctx context.Context, first bool) error {
	conn, err := extract.Connect(ctx, s.cfg.SourceURL)
	if err != nil {
		if first {
			return err
		}
		return connLost(err, true)
	}
	defer conn.Close(context.Background())
	if err := s.checkSlot(ctx, conn); err != nil {
		return connLost(err, !first)
	}
	if first {
		if err := s.addTables(ctx, conn); err != nil {
			return err
		}
	}
	tables := map[string]*extract.Table{}
	for n, tp := range s.tables {
		tables[n] = tp.Source
	}
	s.stream, err = extract.StartReplication(ctx, extract.StreamConfig{
		URL: s.cfg.SourceURL, Slot: s.cfg.Slot, Publication: s.cfg.Publication, Tables: tables,
	}, s.ck.cp.LSN)
	if err != nil {
		return connLost(s.explainSlot(err), !first)
	}
	s.ck.acker = s.stream
	s.log.Info("sync started", "slot", s.cfg.Slot, "lsn", s.ck.cp.LSN, "position", s.ck.cp.Pos.Version())

	events := make(chan extract.Event, 4096)
	runCtx, cancelRun := context.WithCancel(ctx)
	defer cancelRun()
	g, gctx := errgroup.WithContext(runCtx)
	g.Go(func() error { // reader
		defer close(events)
		for {
			ev, err := s.stream.Next(gctx)
			if err != nil {
				if gctx.Err() != nil {
					return nil
				}
				return connLost(s.explainSlot(err), true)
			}
			select {
			case events <- ev:
			case <-gctx.Done():
				return nil
			}
		}
	})
	g.Go(func() error { return s.monitor(gctx, conn) })
	s.snapReqs = make(chan []SnapshotRequest, 1)
	g.Go(func() error { return s.pollSnapshotRequests(gctx, s.snapReqs, s.cfg.SnapshotPoll) })
	g.Go(func() error { return s.watchPartitions(gctx, s.cfg.CataloguePoll) })
	g.Go(func() error {
		err := s.apply(gctx, events)
		cancelRun() // stop the reader and monitor once the applier is done
		return err
	})
	err = g.Wait()
	s.closeSourceConn()
	closeCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = s.stream.Close(closeCtx)
	if err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

func (s *syncer) checkSlot(ctx context.Context, conn *pgx.Conn) error {
	info, ok, err := extract.LookupSlot(ctx, conn, s.cfg.Slot)
	if err != nil {
		return err
	}
	if !ok {
		return s.explainSlot(fmt.Errorf("slot %s: %w", s.cfg.Slot, extract.ErrSlotMissing))
	}
	if info.WALStatus == "lost" {
		return s.explainSlot(fmt.Errorf("slot %s: %w", s.cfg.Slot, extract.ErrSlotInvalidated))
	}
	if info.Active {
		return fmt.Errorf("slot %s: %w (another ferry sync?)", s.cfg.Slot, ErrSlotInUse)
	}
	return nil
}

func (s *syncer) explainSlot(err error) error {
	if errors.Is(err, extract.ErrSlotMissing) || errors.Is(err, extract.ErrSlotInvalidated) {
		return fmt.Errorf("%w\nChanges since checkpoint %s can no longer be read. To recover: `ferry backfill --restart --slot %s` (copies again and creates a new slot), then start sync again",
			err, s.ck.cp.LSN, s.cfg.Slot)
	}
	return err
}

// CheckApplyStream reports every reason the plan cannot be applied from its
// streams (--apply stream), joined.
func (c *SyncConfig) CheckApplyStream() error {
	if !c.ApplyStream {
		return nil
	}
	var errs []error
	if c.Truncate == TruncateSkip {
		errs = append(errs, errors.New("--apply stream applies every TRUNCATE it publishes: --truncate skip cannot be kept (use apply or fail)"))
	}
	for _, tp := range c.Plan.Tables {
		if err := tp.RecordsInvertible(); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("--apply stream: %w", err)
	}
	return nil
}
