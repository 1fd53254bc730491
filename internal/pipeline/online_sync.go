package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/ferry-migrate/ferry/extract"
	"github.com/ferry-migrate/ferry/transform"
)

// onlineState drives sync's online snapshots (online.go). Only the apply
// goroutine touches it.
type onlineState struct {
	reqs     []SnapshotRequest // pending, oldest first (as last polled)
	prog     *SnapshotProgress // the snapshot under way: where its next chunk starts
	win      *chunkWindow      // the chunk waiting for its high watermark
	recent   xidRing           // transactions the stream delivered lately
	nextRead time.Time
	windows  int             // chunks read by this process (watermark ids)
	sizer    chunkSizer      // the size of the next chunk (chunksize.go)
	nonce    int64           // this process's part of watermark ids
	finished map[string]bool // requests complete (never started again)
	recorded map[string]bool // requests whose done record is written
	// unrecorded are finished snapshots whose progress a later one replaced
	// in the checkpoint before it was stored: their done records are
	// written with the next stored checkpoint (which covers them).
	unrecorded []SnapshotProgress
	// minXmax holds back a request's chunks until their snapshot's xmin
	// reaches it (tables added to the publication at this start).
	minXmax    map[string]uint64
	waitLogged map[string]bool
}

// reset starts a (re)connected session from the durable progress: a window
// read before the connection was lost is dropped (its watermark may come
// again; it is ignored, and the chunk is read again).
func (o *onlineState) reset(durable *SnapshotProgress) {
	o.win, o.recent = nil, xidRing{}
	o.prog = nil
	if o.finished == nil {
		o.finished, o.recorded = map[string]bool{}, map[string]bool{}
		if o.minXmax == nil {
			o.minXmax = map[string]uint64{}
		}
		o.waitLogged = map[string]bool{}
		// Watermarks of an earlier process come again when a restarted
		// sync replays the WAL since its checkpoint: ids unique to this
		// process keep them from closing one of its chunks.
		o.nonce = time.Now().UnixNano()
	}
	if durable != nil && durable.Done {
		// Complete, perhaps without its done record yet (written after
		// the next checkpoint): never started again.
		o.finished[durable.Request] = true
	} else if durable != nil {
		p := *durable
		o.prog = &p
	}
}

// request returns the request under way, starting the next pending one if
// none is; nil when there is nothing to do.
func (o *onlineState) request(now time.Time) *SnapshotRequest {
	if o.prog != nil {
		for i := range o.reqs {
			if o.reqs[i].ID == o.prog.Request {
				return &o.reqs[i]
			}
		}
		if len(o.reqs) > 0 || o.prog.Done {
			o.prog = nil // its request was withdrawn
		} else {
			return nil // requests not polled yet
		}
	}
	for i := range o.reqs {
		if !o.finished[o.reqs[i].ID] {
			o.prog = &SnapshotProgress{Request: o.reqs[i].ID, Started: now.UTC(), Tables: o.reqs[i].Tables, Origin: o.reqs[i].Origin}
			return &o.reqs[i]
		}
	}
	return nil
}

// pollSnapshotRequests sends the pending requests to the apply loop every
// interval (the latest list replaces an unread one).
func (s *syncer) pollSnapshotRequests(ctx context.Context, out chan []SnapshotRequest, every time.Duration) error {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		reqs, _, err := SnapshotRecords(ctx, s.cfg.Control, s.cfg.Slot)
		if err != nil && ctx.Err() == nil {
			s.log.Warn("sync: reading snapshot requests failed; trying again", "slot", s.cfg.Slot, "err", err)
		} else if err == nil {
			select {
			case <-out: // drop an unread older list
			default:
			}
			out <- reqs
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// maybeReadChunk reads the next chunk of the snapshot under way, between
// two transactions of the stream, and writes its high watermark. It waits
// while the previous chunk's rows are not yet applied (so a snapshot never
// runs ahead of the stream by more than a chunk: sync's lag stays bounded)
// and, with SnapshotRate, for the rate.
func (s *syncer) maybeReadChunk(ctx context.Context, b *syncBatch) error {
	o := &s.online
	now := time.Now()
	if o.win != nil || b.snap != nil || s.ck.intent != (extract.Position{}) || now.Before(o.nextRead) {
		return nil
	}
	req := o.request(now)
	if req == nil {
		return nil
	}
	p := o.prog
	if p.Table >= len(req.Tables) {
		p.Done = true
		cp := *p
		b.snap = &cp
		o.finished[p.Request], o.prog = true, nil
		return nil
	}
	name := req.Tables[p.Table]
	tp := s.tables[name]
	if tp == nil {
		s.log.Error("snapshot request names a table that is not in the mapping: skipped", "request", req.ID, "table", name)
		p.Table, p.Range, p.After = p.Table+1, 0, nil
		return nil
	}
	o.sizer.max, o.sizer.target = s.cfg.SnapshotChunkRows, s.cfg.SnapshotChunkTime
	limit := o.sizer.next()
	k := extract.KeyChunk{After: p.After, Where: req.Where, Limit: limit}
	switch ranges, ok := req.Ranges[name]; {
	case req.Keys != nil:
		end := min(p.KeysDone+limit, len(req.Keys))
		k = extract.KeyChunk{Keys: req.Keys[p.KeysDone:end], Where: req.Where}
	case ok && p.Range >= len(ranges):
		p.Table, p.Range, p.After = p.Table+1, 0, nil // the table's ranges are done
		return nil
	case ok:
		k.Before = ranges[p.Range].Before
		if p.After == nil {
			k.From = ranges[p.Range].From
		}
	}
	conn, err := s.sourceConn(ctx)
	if err != nil {
		return err
	}
	rows, snap, err := extract.ReadKeyChunk(ctx, conn, tp.Source, k)
	if err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && (pgErr.Code == pgerrcode.UndefinedColumn || pgErr.Code == pgerrcode.UndefinedTable) {
			// The catalogue is ahead of the stream: a DDL the stream has not
			// reached yet. Its Relation message brings the table's new
			// definition (schema.go); read again with that.
			if !o.waitLogged[req.ID+"/ddl"] {
				o.waitLogged[req.ID+"/ddl"] = true
				s.log.Info("snapshot chunk waits for the stream to reach a schema change of its table", "table", name, "err", err)
			}
			o.nextRead = now.Add(200 * time.Millisecond)
			return nil
		}
		s.closeSourceConn()
		return err
	}
	if x := o.minXmax[req.ID]; snap.Xmin < x {
		// A table added to the publication at this start: transactions
		// that began before the change may have written it unpublished,
		// so the chunk waits until they are over (see addTables).
		if !o.waitLogged[req.ID] {
			o.waitLogged[req.ID] = true
			s.log.Info("snapshot waits for transactions older than the publication change to end", "request", req.ID, "xmin", snap.Xmin, "needed", x)
		}
		o.nextRead = now.Add(100 * time.Millisecond)
		return nil
	}
	if x, stale := o.recent.invisibleIn(snap); stale {
		// The race described in online.go: read again shortly.
		s.log.Debug("snapshot chunk read before a transaction it does not see was applied; reading it again", "table", name, "xid", x)
		o.nextRead = now.Add(10 * time.Millisecond)
		return nil
	}
	o.windows++
	id := fmt.Sprintf("%s/%s/%x-%d", s.cfg.Slot, req.ID, o.nonce, o.windows)
	win := newChunkWindow(id, tp, rows, snap)
	win.limit = limit
	if req.Keys != nil {
		win.read = len(k.Keys) // progress counts keys asked for, found or not
		if n := win.expectKeys(k.Keys); n > 0 {
			s.log.Warn("snapshot keys not found in the source are left in DynamoDB: the item key uses columns outside the primary key, so it cannot be derived",
				"table", name, "keys", n, "key_columns", tp.KeyColumnsOutsidePK())
		}
	}
	if _, err := extract.EmitWatermark(ctx, conn, id); err != nil {
		s.closeSourceConn()
		return err
	}
	o.win = win
	s.log.Debug("snapshot chunk read", "table", name, "rows", len(rows), "watermark", id)
	return nil
}

// emitWindow adds the rows of the chunk whose high watermark the stream
// reached (at hwm) to the batch as snapshot changes, and advances the
// snapshot's progress (recorded with the batch's checkpoint).
func (s *syncer) emitWindow(ctx context.Context, b *syncBatch, hwm extract.LSN, src transform.RecordSource) error {
	o := &s.online
	win := o.win
	o.win = nil
	now := time.Now()
	changes := win.emit(hwm, now)
	b.snapRows += len(changes)
	for _, ch := range changes {
		if err := s.addChange(ctx, b, ch, src, now); err != nil {
			return err
		}
	}
	var req *SnapshotRequest
	for i := range o.reqs {
		if o.prog != nil && o.reqs[i].ID == o.prog.Request {
			req = &o.reqs[i]
		}
	}
	if req == nil {
		return nil // the request was withdrawn meanwhile: its rows are still exact
	}
	p := o.prog
	p.Chunks++
	p.Rows += int64(len(changes))
	if req.Keys != nil {
		p.KeysDone += win.read
		if p.KeysDone >= len(req.Keys) {
			p.Table = len(req.Tables)
		}
	} else if win.read < win.limit {
		p.After = nil // the table (or its range) is done
		if _, ranged := req.Ranges[req.Tables[p.Table]]; ranged {
			p.Range++ // the next range (maybeReadChunk moves on after the last)
		} else {
			p.Table++
		}
	} else {
		p.After = win.last
	}
	p.Done = p.Table >= len(req.Tables)
	p.ChunkRows = win.limit
	cp := *p
	b.snap = &cp
	if s.cfg.SnapshotRate > 0 {
		o.nextRead = now.Add(time.Duration(float64(win.read) / s.cfg.SnapshotRate * float64(time.Second)))
	}
	s.mu.Lock()
	s.status.Snapshot, s.status.SnapshotTable = &cp, win.tp.Source.QualifiedName()
	s.mu.Unlock()
	if cp.Done {
		o.finished[cp.Request], o.prog = true, nil
		s.log.Info("online snapshot complete", "request", cp.Request, "rows", cp.Rows, "chunks", cp.Chunks,
			"took", time.Since(cp.Started).Round(time.Millisecond))
	}
	return nil
}

// recordSnapshotDone runs after a checkpoint is stored: once the progress
// of a finished snapshot is durable, its final record replaces its request.
func (s *syncer) recordSnapshotDone(ctx context.Context) error {
	for len(s.online.unrecorded) > 0 {
		p := s.online.unrecorded[0]
		if err := s.recordOneSnapshotDone(ctx, &p); err != nil {
			return err
		}
		s.online.unrecorded = s.online.unrecorded[1:]
	}
	return s.recordOneSnapshotDone(ctx, s.ck.cp.Snapshot)
}

// replaceSnapshotProgress is called before the checkpoint's snapshot
// progress is replaced by next: a finished snapshot not yet recorded is
// kept for the next stored checkpoint.
func (s *syncer) replaceSnapshotProgress(next *SnapshotProgress) {
	prev := s.ck.cp.Snapshot
	if prev == nil || !prev.Done || s.online.recorded[prev.Request] || (next != nil && next.Request == prev.Request) {
		return
	}
	for _, u := range s.online.unrecorded {
		if u.Request == prev.Request {
			return
		}
	}
	s.online.unrecorded = append(s.online.unrecorded, *prev)
}

func (s *syncer) recordOneSnapshotDone(ctx context.Context, p *SnapshotProgress) error {
	if p == nil || !p.Done || s.online.recorded[p.Request] {
		return nil
	}
	b, _ := json.Marshal(p)
	if err := s.cfg.Control.Put(ctx, snapshotID(s.cfg.Slot), "done#"+p.Request, b); err != nil {
		return fmt.Errorf("record finished snapshot %s: %w", p.Request, err)
	}
	if err := s.cfg.Control.Delete(ctx, snapshotID(s.cfg.Slot), "request#"+p.Request); err != nil {
		return fmt.Errorf("remove finished snapshot request %s: %w", p.Request, err)
	}
	s.online.finished[p.Request], s.online.recorded[p.Request] = true, true
	for i, r := range s.online.reqs {
		if r.ID == p.Request {
			s.online.reqs = append(s.online.reqs[:i:i], s.online.reqs[i+1:]...)
			break
		}
	}
	if s.online.prog != nil && s.online.prog.Request == p.Request {
		s.online.prog = nil
	}
	return nil
}
