package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/ferry-migrate/ferry/extract"
	"github.com/ferry-migrate/ferry/load"
	"github.com/ferry-migrate/ferry/mappings"
	"github.com/ferry-migrate/ferry/transform"
)

// This file is the stream applier: what the Lambda function of `sync --apply
// stream` runs on each batch of Kinesis records. It turns the records back
// into changes (transform.RowOf), folds them with the same fold as `ferry
// sync`, and writes them with the same version-conditional writes, so it is
// exact under at-least-once delivery in any order the event source mapping may
// choose within its rules (per-key order; any batch size; retries, bisected
// batches and replays deliver records again, never a key's records out of
// order).
//
// TRUNCATE is the one change that spans keys. sync publishes it to every shard;
// the first applier to see it raises the table's fence in the control table to
// its version and sweeps the table's items not newer than it. A change of the
// table not newer than the fence is dropped (the TRUNCATE removed it). A
// concurrent invocation (another shard, or another lane of the same shard) may
// have read the fence before it rose and be about to write an older item after
// the sweep; so every invocation reads the fences again after its writes and
// deletes what it wrote below a fence that rose meanwhile ("check after
// write": either the sweep sees its write, or its second read sees the fence).

// StreamRecord is one Kinesis record as an event source mapping delivers it.
type StreamRecord struct {
	Stream       string // the stream's name
	Shard        string
	Sequence     string
	PartitionKey string
	Data         []byte
	Arrived      time.Time // approximate arrival
}

// applyState is what the stream applier keeps in the control table
// (load.ApplyState; a fake in unit tests).
type applyState interface {
	Fence(ctx context.Context, table string) (load.Fence, error)
	RaiseFence(ctx context.Context, table, version string) error
	MarkSwept(ctx context.Context, table, version string) error
	SaveShardPosition(ctx context.Context, p load.ShardPosition) error
	MarkBarrier(ctx context.Context, id string, at time.Time) error
}

// StreamApplierConfig configures a StreamApplier.
type StreamApplierConfig struct {
	Plan   *transform.Plan
	Writer itemWriter // *load.DynamoWriter
	State  applyState // *load.ApplyState
	// Sweep removes every item of a table not newer than version (a
	// TRUNCATE's); see SweepWith.
	Sweep func(ctx context.Context, tp *transform.TablePlan, version string) (int64, error)
	// DeadLetter records a change DynamoDB can never hold (besides the
	// record's failure, which the mapping's on-failure destination gets).
	DeadLetter func(ctx context.Context, f RowFailure) error
	// Definitions is where the table definitions that records name are
	// read (*load.ControlStore; definitions.go): a record made with
	// another definition than Plan's is applied with its own. nil: only
	// Plan's.
	Definitions valueStore
	Workers     int          // concurrent item writes (default 16)
	Backoff     load.Backoff // retries of transient failures
	Logger      *slog.Logger // default slog.Default()
	Now         func() time.Time
}

// StreamApplier applies batches of stream records to DynamoDB.
type StreamApplier struct {
	cfg    StreamApplierConfig
	tables map[string]*transform.TablePlan // by qualified source name
	defs   *definitions                    // the plans of other definitions
}

// NewStreamApplier checks that every table of the plan can be applied from
// its records (transform.TablePlan.RecordsInvertible).
func NewStreamApplier(cfg StreamApplierConfig) (*StreamApplier, error) {
	if cfg.Workers <= 0 {
		cfg.Workers = 16
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	a := &StreamApplier{cfg: cfg, tables: map[string]*transform.TablePlan{},
		defs: &definitions{store: cfg.Definitions, log: cfg.Logger, plans: map[string]*transform.TablePlan{}, mappings: map[string]*mappings.Mapping{}}}
	var errs []error
	for _, tp := range cfg.Plan.Tables {
		if err := tp.RecordsInvertible(); err != nil {
			errs = append(errs, err)
			continue
		}
		a.tables[tp.Source.QualifiedName()] = tp
		if tp.Def != "" {
			a.defs.plans[tp.Source.QualifiedName()+"#"+tp.Def] = tp
		}
	}
	return a, errors.Join(errs...)
}

// BatchResult is what one batch came to.
type BatchResult struct {
	// Failed is the index of the first record to deliver again (-1: none):
	// the records from it on are reported as failed, the ones before it are
	// applied. FailReason says why.
	Failed     int
	FailReason error
	Applied    int // item writes that changed an item
	Skipped    int // item writes an item already newer than them made moot
	Fenced     int // changes a TRUNCATE had already removed
	Missing    int // partial updates whose item is gone (a newer delete or TRUNCATE)
	Dead       int // changes DynamoDB can never hold (dead letters)
	Swept      int64
	Barriers   int // barrier records recorded (verify's; transform.BarrierRecord)
	// AppliedPos is the newest source position of the records applied
	// (before the first failed one).
	AppliedPos extract.Position
}

type decoded struct {
	idx     int
	tp      *transform.TablePlan
	ch      *extract.Change
	barrier string // a barrier record's id (tp and ch nil)
}

// Apply applies recs (in the order of their shards, as delivered). Only an
// error reading or writing the control table's fences is returned as an
// error (the whole batch is then delivered again); every other failure is in
// the result.
func (a *StreamApplier) Apply(ctx context.Context, recs []StreamRecord) (BatchResult, error) {
	res := BatchResult{Failed: -1}
	fail := func(i int, err error) {
		if res.Failed < 0 || i < res.Failed {
			res.Failed, res.FailReason = i, err
		}
	}
	// Decode up to the first record that cannot be (it is failed and
	// delivered again from there: nothing after it is applied before it).
	var changes, barriers []decoded
	end := len(recs)
	for i, r := range recs {
		d, skip, err := a.decode(ctx, r)
		if err != nil {
			a.cfg.Logger.Error("stream record cannot be applied", "stream", r.Stream, "shard", r.Shard, "sequence", r.Sequence, "err", err)
			fail(i, err)
			end = i
			break
		}
		d.idx = i
		switch {
		case d.barrier != "":
			barriers = append(barriers, d)
		case !skip:
			changes = append(changes, d)
		}
	}
	// The fences of the tables in the batch, then the batch's own TRUNCATEs.
	fences := map[string]load.Fence{}
	for _, d := range changes {
		name := d.tp.Source.QualifiedName()
		if _, ok := fences[name]; ok {
			continue
		}
		f, err := a.cfg.State.Fence(ctx, name)
		if err != nil {
			return res, err
		}
		fences[name] = f
	}
	for _, d := range changes {
		if d.ch.Op != extract.OpTruncate {
			continue
		}
		n, err := a.truncate(ctx, d, fences)
		if err != nil {
			return res, err
		}
		res.Swept += n
	}
	f := newFold()
	for _, d := range changes {
		if d.ch.Op == extract.OpTruncate {
			continue
		}
		if fenced(fences[d.tp.Source.QualifiedName()], d.ch.Pos) {
			res.Fenced++
			continue
		}
		f.at = d.idx
		if err := f.add(d.ch, d.tp); err != nil {
			res.Dead++
			a.deadLetter(ctx, changeFailure(d.tp, d.ch, err))
			fail(d.idx, err)
		}
	}
	applied := a.write(ctx, f, &res, fail)
	if err := a.afterWrite(ctx, applied, fences); err != nil {
		return res, err
	}
	if res.Failed >= 0 {
		end = min(end, res.Failed)
	}
	// A barrier is applied once every record before it is: only then is it
	// recorded (a failed record before it delivers it again).
	for _, b := range barriers {
		if b.idx >= end {
			break
		}
		if err := a.cfg.State.MarkBarrier(ctx, b.barrier, a.cfg.Now()); err != nil {
			a.cfg.Logger.Warn("barrier not recorded; the records from it on are delivered again", "barrier", b.barrier, "err", err)
			fail(b.idx, err)
			end = b.idx
			break
		}
		res.Barriers++
	}
	for _, d := range changes {
		if d.idx < end && res.AppliedPos.Less(d.ch.Pos) {
			res.AppliedPos = d.ch.Pos
		}
	}
	a.savePositions(ctx, recs[:end], changes)
	return res, nil
}

// decode turns a record into its change; skip is true for a schema-change
// record or a message (no row's change); a barrier comes back with its id.
func (a *StreamApplier) decode(ctx context.Context, r StreamRecord) (d decoded, skip bool, err error) {
	env, err := transform.DecodeRecord(r.Data)
	if err != nil {
		return d, false, err
	}
	if id, ok := env.Barrier(); ok {
		return decoded{barrier: id}, true, nil
	}
	if env.Op == transform.OpSchema || env.Op == transform.OpMessage {
		return d, true, nil
	}
	tp := a.tables[env.QualifiedName()]
	if env.Def != "" && (tp == nil || tp.Def != env.Def) {
		// Made with another definition (a schema change, an edited
		// mapping, a table added since the plan was compiled): applied
		// with its own plan.
		if tp, err = a.defs.plan(ctx, env.QualifiedName(), env.Def); err != nil {
			return d, false, err
		}
	}
	if tp == nil {
		return d, false, &transform.StalePlanError{Table: env.QualifiedName(), Column: "(the whole table: not in the compiled plan)"}
	}
	ch, err := tp.ChangeOf(&env)
	if err != nil {
		return d, false, fmt.Errorf("%s at %s:%d: %w", env.QualifiedName(), env.Pos.LSN, env.Pos.Seq, err)
	}
	return decoded{tp: tp, ch: ch}, false, nil
}

// fenced reports whether a TRUNCATE at or after p has been applied.
func fenced(f load.Fence, p extract.Position) bool {
	if f.Truncated == "" {
		return false
	}
	fp, err := extract.ParseVersion(f.Truncated)
	return err == nil && !fp.Less(p)
}

// truncate applies one TRUNCATE record: the fence rises to it, then the
// table's older items are swept (unless an earlier delivery finished that).
func (a *StreamApplier) truncate(ctx context.Context, d decoded, fences map[string]load.Fence) (int64, error) {
	name := d.tp.Source.QualifiedName()
	v := d.ch.Pos.Version()
	f := fences[name]
	if sw, err := extract.ParseVersion(f.Swept); err == nil && !sw.Less(d.ch.Pos) {
		return 0, nil // swept already (another shard's copy of it, or a later TRUNCATE)
	}
	if err := a.cfg.State.RaiseFence(ctx, name, v); err != nil {
		return 0, err
	}
	if !fenced(f, d.ch.Pos) {
		f.Truncated = v
	}
	fences[name] = f
	var n int64
	err := load.Retry(ctx, a.cfg.Backoff, nil, nil, func() error {
		var err error
		n, err = a.cfg.Sweep(ctx, d.tp, v)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("TRUNCATE of %s at %s: sweep: %w", name, d.ch.Pos.LSN, err)
	}
	if err := a.cfg.State.MarkSwept(ctx, name, v); err != nil {
		return n, err
	}
	a.cfg.Logger.Info("applied TRUNCATE", "table", name, "lsn", d.ch.Pos.LSN, "items_deleted", n)
	return n, nil
}

// write applies the folded writes, up to Workers at once, retrying transient
// failures; it returns the writes that were applied.
func (a *StreamApplier) write(ctx context.Context, f *fold, res *BatchResult, fail func(int, error)) []*itemWrite {
	var mu sync.Mutex
	var applied []*itemWrite
	sem := make(chan struct{}, a.cfg.Workers)
	var wg sync.WaitGroup
	for _, id := range f.order {
		iw := f.writes[id]
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			var ok, missing bool
			err := load.Retry(ctx, a.cfg.Backoff, nil, nil, func() error {
				var err error
				ok, err = applyOne(ctx, a.cfg.Writer, iw, func(context.Context, *itemWrite) error {
					missing = true
					return nil
				})
				return err
			})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil && load.IsPermanent(err):
				res.Dead++
				a.deadLetter(ctx, RowFailure{Table: iw.tp.Source.QualifiedName(), Key: iw.keyText, Reason: "DynamoDB: " + err.Error(),
					Op: iw.op.String(), LSN: iw.pos.LSN.String(), Row: rowText(iw.tp.Source, iw.row)})
				fail(iw.first, err)
			case err != nil:
				a.cfg.Logger.Warn("item write failed; the records from it on are delivered again", "table", iw.tp.Source.QualifiedName(), "key", iw.keyText, "err", err)
				fail(iw.first, err)
			case missing:
				res.Missing++
				a.cfg.Logger.Warn("partial update for a missing item (deleted by a newer change or a TRUNCATE): skipped", "table", iw.tp.Source.QualifiedName(), "key", iw.keyText, "lsn", iw.pos.LSN)
			case ok:
				res.Applied++
				applied = append(applied, iw)
			default:
				res.Skipped++
			}
		}()
	}
	wg.Wait()
	return applied
}

// afterWrite reads the fences of the tables written again; where one rose
// during the writes, what was written below it is deleted (see the file's
// comment).
func (a *StreamApplier) afterWrite(ctx context.Context, applied []*itemWrite, before map[string]load.Fence) error {
	now := map[string]load.Fence{}
	for _, iw := range applied {
		if iw.kind == writeDelete {
			continue
		}
		name := iw.tp.Source.QualifiedName()
		f, ok := now[name]
		if !ok {
			var err error
			if f, err = a.cfg.State.Fence(ctx, name); err != nil {
				return err
			}
			now[name] = f
		}
		if f.Truncated == before[name].Truncated || !fenced(f, iw.pos) {
			continue
		}
		err := load.Retry(ctx, a.cfg.Backoff, nil, nil, func() error {
			_, err := a.cfg.Writer.DeleteIfNotNewer(ctx, iw.tp.Target, iw.key, f.Truncated)
			return err
		})
		if err != nil {
			return fmt.Errorf("%s (%s): remove a write a concurrent TRUNCATE overtook: %w", name, iw.keyText, err)
		}
		a.cfg.Logger.Info("removed a write a concurrent TRUNCATE overtook", "table", name, "key", iw.keyText, "lsn", iw.pos.LSN)
	}
	return nil
}

// deadLetter records f (logged whatever happens: the record also goes to the
// on-failure destination once its retries are spent).
func (a *StreamApplier) deadLetter(ctx context.Context, f RowFailure) {
	a.cfg.Logger.Error("change cannot be written: dead letter", "table", f.Table, "key", f.Key, "op", f.Op, "lsn", f.LSN, "reason", f.Reason)
	if a.cfg.DeadLetter == nil {
		return
	}
	if err := a.cfg.DeadLetter(ctx, f); err != nil {
		a.cfg.Logger.Error("dead letter not recorded", "table", f.Table, "key", f.Key, "err", err)
	}
}

// savePositions records, per shard, the newest source position applied
// (best effort: a failure is logged, the batch stays applied).
func (a *StreamApplier) savePositions(ctx context.Context, recs []StreamRecord, changes []decoded) {
	type shardPos struct {
		stream, seq string
		pos         extract.Position
		arrived     time.Time
	}
	by := map[string]*shardPos{}
	for _, d := range changes {
		if d.idx >= len(recs) {
			break
		}
		r := recs[d.idx]
		sp := by[r.Shard]
		if sp == nil {
			sp = &shardPos{stream: r.Stream}
			by[r.Shard] = sp
		}
		if sp.pos.Less(d.ch.Pos) {
			sp.pos = d.ch.Pos
		}
		sp.seq, sp.arrived = r.Sequence, r.Arrived
	}
	now := a.cfg.Now()
	for shard, sp := range by {
		p := load.ShardPosition{Stream: sp.stream, Shard: shard, Version: sp.pos.Version(), Sequence: sp.seq, At: now}
		if !sp.arrived.IsZero() {
			p.IteratorAge = now.Sub(sp.arrived)
		}
		if err := a.cfg.State.SaveShardPosition(ctx, p); err != nil {
			a.cfg.Logger.Warn("shard position not recorded", "stream", sp.stream, "shard", shard, "err", err)
		}
	}
}

// SweepWith is StreamApplierConfig.Sweep over a DynamoDB client and writer.
func SweepWith(client *dynamodb.Client, w *load.DynamoWriter) func(context.Context, *transform.TablePlan, string) (int64, error) {
	return func(ctx context.Context, tp *transform.TablePlan, version string) (int64, error) {
		return sweepTable(ctx, client, w, tp, version)
	}
}
