package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/jackc/pgx/v5"

	"github.com/ferry-migrate/ferry/extract"
	"github.com/ferry-migrate/ferry/load"
	"github.com/ferry-migrate/ferry/mappings"
	"github.com/ferry-migrate/ferry/transform"
)

// Partitions of mapped tables. pgoutput publishes a partitioned table's row
// changes through its root, but nothing of DETACH PARTITION, DROP of a
// partition, TRUNCATE of one partition (a TRUNCATE of a partition is not sent
// when the publication publishes via the root) or ATTACH PARTITION of a
// filled table: rows leave or join the table without a change in the log.
// Sync polls the catalogue for the leaf partitions of every mapped
// partitioned table (every CataloguePoll) and compares them with the last
// set it recorded (in the control table, so a change made while sync was
// stopped is seen at its start):
//
//   - a partition gone (detached or dropped; policy partitions_detached:
//     delete, the default) or rewritten (a new relfilenode: TRUNCATE — or a
//     rewrite, which loses no row): the table's items are scanned for keys
//     whose rows are gone from the source, and those keys are queued as
//     online snapshot requests (origin "schema"): each is deleted at a
//     watermark, as a `d` event on the stream, unless a newer change of it
//     arrives first — in stream order, conditional on versions;
//   - a partition added that holds rows (ATTACH PARTITION of a filled table):
//     an online snapshot of the table's rows in that partition (WHERE
//     tableoid = the partition).
//
// A detach, drop or attach (and a truncate that removed rows) is recorded as
// a schema change and published as an op "schema" event, like a column
// change.

// partitionsKey is the control-table record (under schemaID) of a table's
// partitions as sync last saw them.
func partitionsKey(table string) string { return "partitions#" + table }

// keysPerRequest bounds one keys request (a control-table item holds 400 KB).
const keysPerRequest = 2000

// watchPartitions polls the catalogue until ctx ends (partitions, and new
// tables that pattern entries map: see newtables.go). A failing poll is
// logged and tried again at the next tick: the catalogue is read again in
// full, so nothing is missed.
func (s *syncer) watchPartitions(ctx context.Context, every time.Duration) error {
	if every <= 0 {
		return nil
	}
	var conn *pgx.Conn
	defer func() {
		if conn != nil {
			conn.Close(context.Background())
		}
	}()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if conn == nil || conn.IsClosed() {
			c, err := extract.Connect(ctx, s.cfg.SourceURL)
			if err != nil && ctx.Err() == nil {
				s.log.Warn("sync: connecting to watch partitions failed; trying again", "err", err)
			}
			conn = c
		}
		if conn != nil {
			err := s.checkNewTables(ctx, conn)
			var created *TablesCreatedError
			if errors.As(err, &created) {
				return err
			}
			if err == nil {
				err = s.checkPartitions(ctx, conn)
			}
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				s.log.Warn("sync: watching partitions failed; trying again", "err", err)
				conn.Close(context.Background())
				conn = nil
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// planSnapshot returns the current plans (the apply loop replaces a table's
// plan when its definition changes).
func (s *syncer) planSnapshot() map[string]*transform.TablePlan {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]*transform.TablePlan, len(s.tables))
	for n, tp := range s.tables {
		out[n] = tp
	}
	return out
}

// checkPartitions compares every mapped partitioned table's partitions with
// the recorded ones and handles what changed.
func (s *syncer) checkPartitions(ctx context.Context, conn *pgx.Conn) error {
	recs, err := s.cfg.Control.List(ctx, schemaID(s.cfg.Slot))
	if err != nil {
		return fmt.Errorf("read partition records: %w", err)
	}
	for name, tp := range s.planSnapshot() {
		cur, err := extract.LeafPartitions(ctx, conn, tp.Source.Ident())
		if err != nil {
			return err
		}
		if cur == nil {
			continue
		}
		raw, seen := recs[partitionsKey(name)]
		var prev extract.Partitions
		if seen {
			if err := json.Unmarshal(raw, &prev); err != nil {
				return fmt.Errorf("partition record of %s: %w", name, err)
			}
		}
		if ch := extract.ComparePartitions(prev, cur); seen && !ch.Empty() {
			// Rows changed before the DDL must be applied before the items
			// are scanned (else a row inserted and then dropped with its
			// partition, not applied yet, would be written after the scan
			// and stay): wait for the acknowledged position to pass the WAL
			// position read when the change was first seen.
			at, waiting := s.partitionsSeen[name]
			if !waiting {
				if at, err = currentLSN(ctx, conn); err != nil {
					return err
				}
				s.partitionsSeen[name] = at
			}
			s.mu.Lock()
			acked := s.status.Acked
			s.mu.Unlock()
			if acked < at {
				continue // the next poll looks again
			}
			if err := s.onPartitions(ctx, conn, tp, ch, at); err != nil {
				return err
			}
			delete(s.partitionsSeen, name)
		} else if seen {
			continue
		}
		b, _ := json.Marshal(cur)
		if err := s.cfg.Control.Put(ctx, schemaID(s.cfg.Slot), partitionsKey(name), b); err != nil {
			return fmt.Errorf("record the partitions of %s: %w", name, err)
		}
	}
	return nil
}

// onPartitions handles a change of a table's partitions (see the top of this
// file). The new set is recorded by the caller afterwards: a crash before
// that repeats the work, which is idempotent.
func (s *syncer) onPartitions(ctx context.Context, conn *pgx.Conn, tp *transform.TablePlan, ch extract.PartitionChanges, lsn extract.LSN) error {
	name := tp.Source.QualifiedName()
	mt := s.cfg.Plan.Mapping.Table(name)
	keep := mt != nil && mt.PartitionsDetached == mappings.PartitionsKeep
	var what []string
	for _, p := range ch.Gone {
		what = append(what, "partition "+p.Name+" detached or dropped")
	}
	var reqs []SnapshotRequest
	now := time.Now()
	if keep && len(ch.Rewritten) > 0 {
		// The items of kept partitions have no rows: a sweep would delete
		// them with the truncated partition's.
		s.log.Warn("sync: a partition was truncated or rewritten, but with partitions_detached: keep its items are not swept (kept items cannot be told from them)",
			"table", name, "partitions", len(ch.Rewritten))
	}
	if !keep && len(ch.Gone)+len(ch.Rewritten) > 0 {
		keys, scanned, err := s.orphanKeys(ctx, conn, tp)
		if err != nil {
			return err
		}
		if keys, err = s.notQueued(ctx, name, keys); err != nil {
			return err
		}
		for i := 0; i < len(keys); i += keysPerRequest {
			reqs = append(reqs, SnapshotRequest{ID: fmt.Sprintf("%s-%03d", NewSnapshotID(now), len(reqs)), Tables: []string{name},
				Keys: keys[i:min(i+keysPerRequest, len(keys))], Created: now.UTC(), Origin: OriginSchema})
		}
		for _, p := range ch.Rewritten {
			if len(keys) > 0 {
				what = append(what, "partition "+p.Name+" truncated")
			}
		}
		s.log.Info("sync: partitions changed; items whose rows are gone are deleted online", "table", name,
			"items_scanned", scanned, "rows_gone", len(keys), "gone", len(ch.Gone), "rewritten", len(ch.Rewritten))
		if len(keys) > 0 {
			what = append(what, fmt.Sprintf("%d rows left the table", len(keys)))
		}
	} else if len(ch.Gone) > 0 {
		s.log.Warn("sync: partitions detached or dropped; their items are kept (partitions_detached: keep)", "table", name, "gone", len(ch.Gone))
		what = append(what, "items kept (partitions_detached: keep)")
	}
	for _, p := range ch.Added {
		has, err := extract.HasRows(ctx, conn, p.OID)
		if err != nil {
			return err
		}
		if !has {
			continue // a new, empty partition: its rows will come through the log
		}
		what = append(what, "partition "+p.Name+" added with rows")
		reqs = append(reqs, SnapshotRequest{ID: fmt.Sprintf("%s-%03d", NewSnapshotID(now), len(reqs)), Tables: []string{name},
			Where: fmt.Sprintf("tableoid = %d", p.OID), Created: now.UTC(), Origin: OriginSchema})
	}
	if len(what) == 0 {
		return nil // a rewrite (or an empty partition added): no row left or joined
	}
	for _, r := range reqs {
		if err := SaveSnapshotRequest(ctx, s.cfg.Control, s.cfg.Slot, r); err != nil {
			return err
		}
	}
	c := &SchemaChange{Table: name, LSN: lsn.String(), At: now.UTC(), Partitions: what, Columns: schemaColumns(tp.Source), Action: "followed"}
	if len(reqs) > 0 {
		c.Refill = reqs[len(reqs)-1].ID // requests run oldest first: the last one done means all are
	}
	if err := s.recordSchemaChange(ctx, c); err != nil {
		return err
	}
	if err := s.publishSchemaChange(ctx, c, tp.Source); err != nil {
		return err
	}
	s.mu.Lock()
	s.status.SchemaChanges++
	s.mu.Unlock()
	s.log.Info("schema change followed", "table", name, "change", c.Describe(), "requests", len(reqs))
	return nil
}

// notQueued drops the keys that a pending request of the table already
// re-reads (an earlier sweep's, not done yet).
func (s *syncer) notQueued(ctx context.Context, table string, keys [][]string) ([][]string, error) {
	if len(keys) == 0 {
		return keys, nil
	}
	pending, _, err := SnapshotRecords(ctx, s.cfg.Control, s.cfg.Slot)
	if err != nil {
		return nil, err
	}
	queued := map[string]bool{}
	for _, r := range pending {
		if len(r.Tables) == 1 && r.Tables[0] == table && r.Where == "" {
			for _, k := range r.Keys {
				queued[strings.Join(k, "\x00")] = true
			}
		}
	}
	out := keys[:0]
	for _, k := range keys {
		if !queued[strings.Join(k, "\x00")] {
			out = append(out, k)
		}
	}
	return out, nil
}

// orphanKeys scans the table's items in its target (by _table) and returns
// the primary keys (text) of those whose rows the source no longer has, and
// how many items it scanned. The items carry their row's columns, so the
// primary key is read from them.
func (s *syncer) orphanKeys(ctx context.Context, conn *pgx.Conn, tp *transform.TablePlan) ([][]string, int, error) {
	names := map[string]string{"#t": transform.AttrTable}
	var proj []string
	for i, idx := range tp.Source.PK {
		ph := fmt.Sprintf("#k%d", i)
		names[ph] = tp.Source.Columns[idx].Name
		proj = append(proj, ph)
	}
	p := dynamodb.NewScanPaginator(s.cfg.DynamoClient, &dynamodb.ScanInput{
		TableName:                 aws.String(tp.Target),
		FilterExpression:          aws.String("#t = :t"),
		ProjectionExpression:      aws.String(strings.Join(proj, ", ")),
		ExpressionAttributeNames:  names,
		ExpressionAttributeValues: map[string]types.AttributeValue{":t": &types.AttributeValueMemberS{Value: tp.Source.Name}},
		ConsistentRead:            aws.Bool(true),
	})
	var keys [][]string
	scanned := 0
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, 0, fmt.Errorf("scan the items of %s in %s: %w", tp.Source.QualifiedName(), tp.Target, err)
		}
		for _, it := range page.Items {
			scanned++
			key, err := itemPrimaryKey(tp, it)
			if err != nil {
				return nil, 0, err
			}
			keys = append(keys, key)
		}
	}
	missing, err := extract.MissingKeys(ctx, conn, tp.Source, keys)
	return missing, scanned, err
}

// itemPrimaryKey reads an item's source primary key (text values) from its
// column attributes.
func itemPrimaryKey(tp *transform.TablePlan, it map[string]types.AttributeValue) ([]string, error) {
	key := make([]string, len(tp.Source.PK))
	for i, idx := range tp.Source.PK {
		col := tp.Source.Columns[idx].Name
		switch v := it[col].(type) {
		case *types.AttributeValueMemberS:
			key[i] = v.Value
		case *types.AttributeValueMemberN:
			key[i] = v.Value
		case *types.AttributeValueMemberBOOL:
			key[i] = fmt.Sprint(v.Value)
		default:
			return nil, fmt.Errorf("an item of %s in %s has no usable primary key attribute %s (%T): its row cannot be looked up",
				tp.Source.QualifiedName(), tp.Target, col, it[col])
		}
	}
	return key, nil
}

// currentLSN reads the source's current WAL position.
func currentLSN(ctx context.Context, conn *pgx.Conn) (extract.LSN, error) {
	var pos string
	if err := conn.QueryRow(ctx, "SELECT pg_current_wal_lsn()::text").Scan(&pos); err != nil {
		return 0, fmt.Errorf("read the WAL position: %w", err)
	}
	lsn, err := extract.ParseLSN(pos)
	if err != nil {
		return 0, fmt.Errorf("read the WAL position: %w", err)
	}
	return lsn, nil
}

// recordPartitions records the partitions of the plan's partitioned tables
// for the slot (replacing what is recorded when replace is set — a new copy
// — else only where nothing is). A new copy also clears the definitions an
// earlier run applied.
func recordPartitions(ctx context.Context, url string, ctl *load.ControlStore, slot string, plan *transform.Plan, replace bool) error {
	conn, err := extract.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	recs, err := ctl.List(ctx, schemaID(slot))
	if err != nil {
		return fmt.Errorf("read partition records: %w", err)
	}
	if replace {
		// A new copy reads the catalogue as it is now: the definitions an
		// earlier run of the slot applied (or stopped at) are void.
		for sk := range recs {
			if strings.HasPrefix(sk, "applied#") || strings.HasPrefix(sk, "stopped#") {
				if err := ctl.Delete(ctx, schemaID(slot), sk); err != nil {
					return fmt.Errorf("clear schema record %s: %w", sk, err)
				}
			}
		}
	}
	for _, tp := range plan.Tables {
		name := tp.Source.QualifiedName()
		if _, seen := recs[partitionsKey(name)]; seen && !replace {
			continue
		}
		cur, err := extract.LeafPartitions(ctx, conn, tp.Source.Ident())
		if err != nil || cur == nil {
			if err == nil && replace {
				err = ctl.Delete(ctx, schemaID(slot), partitionsKey(name))
			}
			if err != nil {
				return err
			}
			continue
		}
		b, _ := json.Marshal(cur)
		if err := ctl.Put(ctx, schemaID(slot), partitionsKey(name), b); err != nil {
			return fmt.Errorf("record the partitions of %s: %w", name, err)
		}
	}
	return nil
}
