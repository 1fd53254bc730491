package pipeline

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ferry-migrate/ferry/extract"
)

// addTables brings a running migration up to its mapping when sync starts: a
// mapped table the publication lacks was added to the mapping after the
// backfill, so sync has never received its changes. It is added to the
// publication and snapshotted online (a request of origin "sync"); the other
// tables are not read again.
//
// Order makes it crash-safe: the request is stored before the publication
// changes (a sync killed in between finds the table still missing and does
// the same again; one stored earlier is reused), and the publication changes
// before the first chunk is read.
//
// A transaction that began before ALTER PUBLICATION and writes the table may
// be decoded as if the table were not published (PostgreSQL builds the
// publication's view from the transaction's own catalogue snapshot), so its
// change could reach neither the stream nor, if it was still running when a
// chunk was read, the chunk. The chunks of these requests therefore wait
// until every transaction running at this start has ended (minXmax): every
// transaction the snapshot does not see then began after the publication
// changed and is streamed.
func (s *syncer) addTables(ctx context.Context, conn *pgx.Conn) error {
	have, exists, err := extract.PublishedTables(ctx, conn, s.cfg.Publication)
	if err != nil {
		return err
	}
	var added []string
	for name := range s.tables {
		if !have[name] {
			added = append(added, name)
		}
	}
	sort.Strings(added)
	reqs, _, err := SnapshotRecords(ctx, s.cfg.Control, s.cfg.Slot)
	if err != nil {
		return err
	}
	queued := map[string]bool{}
	var held []string // requests whose chunks wait for older transactions
	for _, r := range reqs {
		if r.Origin != OriginSync {
			continue
		}
		held = append(held, r.ID)
		for _, t := range r.Tables {
			queued[t] = true
		}
	}
	var todo []string
	for _, name := range added {
		if !queued[name] {
			todo = append(todo, name)
		}
	}
	if len(todo) > 0 {
		now := time.Now()
		req := SnapshotRequest{ID: NewSnapshotID(now), Tables: todo, Created: now.UTC(), Origin: OriginSync}
		if err := SaveSnapshotRequest(ctx, s.cfg.Control, s.cfg.Slot, req); err != nil {
			return err
		}
		held = append(held, req.ID)
		s.log.Info("tables added to the mapping: publishing them and snapshotting them online (the other tables are not read again)",
			"tables", strings.Join(todo, ","), "request", req.ID)
	}
	if len(added) > 0 {
		if !exists {
			return fmt.Errorf("publication %s does not exist (the backfill creates it): run `ferry backfill` for slot %s", s.cfg.Publication, s.cfg.Slot)
		}
		tables := make([]*extract.Table, 0, len(added))
		for _, name := range added {
			tables = append(tables, s.tables[name].Source)
		}
		if err := extract.EnsurePublication(ctx, conn, s.cfg.Publication, tables); err != nil {
			return err
		}
	}
	if len(held) == 0 {
		return nil
	}
	xmax, err := extract.CurrentXmax(ctx, conn)
	if err != nil {
		return err
	}
	if s.online.minXmax == nil {
		s.online.minXmax = map[string]uint64{}
	}
	for _, id := range held {
		s.online.minXmax[id] = xmax
	}
	return nil
}
