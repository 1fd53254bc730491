package pipeline

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/jackc/pgx/v5"
	"golang.org/x/sync/errgroup"

	"github.com/ferry-migrate/ferry/extract"
	"github.com/ferry-migrate/ferry/load"
	"github.com/ferry-migrate/ferry/transform"
)

// getItem reads an item consistently (nil when absent).
func (s *syncer) getItem(ctx context.Context, table string, key transform.Item) (transform.Item, error) {
	var item transform.Item
	err := s.withRetry(ctx, "read item of "+table, func() error {
		out, err := s.cfg.DynamoClient.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(table), Key: key, ConsistentRead: aws.Bool(true)})
		if err != nil {
			return fmt.Errorf("read item of %s: %w", table, err)
		}
		item = out.Item
		return nil
	})
	return item, err
}

// withRetry runs fn until it succeeds, fails with an error that is not
// transient, or ctx ends; transient failures (throttling, an outage, a reset
// connection) are retried with the capped backoff of cfg.Retry, each retry
// logged.
func (s *syncer) withRetry(ctx context.Context, what string, fn func() error) error {
	return load.Retry(ctx, s.cfg.Retry, nil, func(attempt int, err error) {
		s.log.Warn("sync: "+what+" failed; retrying (sync falls behind meanwhile)", "slot", s.cfg.Slot,
			"attempt", attempt, "checkpoint", s.ck.cp.LSN, "err", err)
		s.observeRetry(what)
	}, fn)
}

var rereadMu sync.Mutex

// reread writes an item from the source's current row, for a partial update
// whose item is missing. Its version is the WAL position read before the row
// in the same snapshot, so the stream's older changes are rejected and newer
// ones apply.
func (s *syncer) reread(ctx context.Context, iw *itemWrite) error {
	rereadMu.Lock()
	defer rereadMu.Unlock()
	conn, err := extract.Connect(ctx, s.cfg.SourceURL)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	row, lsn, found, err := extract.ReadByKey(ctx, conn, iw.tp.Source, iw.row)
	if err != nil {
		return err
	}
	version := extract.Position{LSN: lsn}.Version()
	if !found {
		_, err := s.cfg.Dynamo.DeleteIfNotNewer(ctx, iw.tp.Target, iw.key, version)
		return err
	}
	item, _, err := iw.tp.Item(row, extract.Position{LSN: lsn})
	if err != nil {
		return err
	}
	s.log.Warn("partial update for a missing item: rewrote it from the source", "table", iw.tp.Source.QualifiedName(), "key", iw.keyText)
	_, err = s.cfg.Dynamo.PutIfNewer(ctx, iw.tp.Target, item, version)
	return err
}

// truncate applies a TRUNCATE according to the policy and publishes a "t" event.
func (s *syncer) truncate(ctx context.Context, ch *extract.Change, src transform.RecordSource) error {
	tp := s.tables[ch.Table.QualifiedName()]
	if tp == nil {
		return nil
	}
	name := tp.Source.QualifiedName()
	switch s.cfg.Truncate {
	case TruncateFail:
		return fmt.Errorf("TRUNCATE of %s at %s and --truncate=fail: stopping before applying it", name, ch.Pos.LSN)
	case TruncateApply:
		if s.cfg.ApplyStream {
			break // the appliers apply it: published to every shard below
		}
		var n int64
		err := s.withRetry(ctx, "TRUNCATE of "+name, func() error {
			var err error
			n, err = s.deleteTable(ctx, tp, ch.Pos.Version())
			return err
		})
		if err != nil {
			return fmt.Errorf("apply TRUNCATE of %s: %w", name, err)
		}
		s.log.Info("applied TRUNCATE", "table", name, "lsn", ch.Pos.LSN, "items_deleted", n)
	case TruncateSkip:
		s.log.Warn("TRUNCATE not applied (--truncate=skip): items stay", "table", name, "lsn", ch.Pos.LSN)
	}
	if tp.Stream != "" {
		pk, data, err := tp.Record(ch, src, time.Now())
		if err != nil {
			return err
		}
		err = s.withRetry(ctx, "publish TRUNCATE of "+name, func() error {
			recs := []load.Record{{Stream: tp.Stream, PartitionKey: pk, Data: data}}
			if s.cfg.ApplyStream {
				// One copy per open shard, so that each shard's consumers
				// see it in order with the table's other changes there.
				keys, err := load.OpenShardHashKeys(ctx, s.cfg.KinesisClient, tp.Stream)
				if err != nil {
					return err
				}
				recs = recs[:0]
				for _, k := range keys {
					recs = append(recs, load.Record{Stream: tp.Stream, PartitionKey: pk, ExplicitHashKey: k, Data: data})
				}
			}
			fails, err := s.cfg.Kinesis.Put(ctx, recs)
			if err == nil && len(fails) > 0 {
				err = fails[0].Err
			}
			return err
		})
		if err != nil {
			return fmt.Errorf("publish TRUNCATE of %s: %w", name, err)
		}
	}
	cp := s.ck.cp
	cp.Pos = ch.Pos
	return s.withRetry(ctx, "checkpoint", func() error { return s.ck.save(ctx, cp) })
}

// deleteTable removes every item of the source table (by _table) from its
// target, each conditional on the truncate's version.
func (s *syncer) deleteTable(ctx context.Context, tp *transform.TablePlan, version string) (int64, error) {
	return sweepTable(ctx, s.cfg.DynamoClient, s.cfg.Dynamo, tp, version)
}

// sweepTable removes every item of the source table (by _table) from its
// target, each unless it is newer than version (a TRUNCATE's), with four
// parallel segments of a consistent scan.
func sweepTable(ctx context.Context, client *dynamodb.Client, w itemWriter, tp *transform.TablePlan, version string) (int64, error) {
	const segments = 4
	keyNames := []string{tp.PK.Name}
	if tp.SK != nil {
		keyNames = append(keyNames, tp.SK.Name)
	}
	var total int64
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	for seg := int32(0); seg < segments; seg++ {
		g.Go(func() error {
			p := dynamodb.NewScanPaginator(client, &dynamodb.ScanInput{
				TableName: aws.String(tp.Target), Segment: aws.Int32(seg), TotalSegments: aws.Int32(segments),
				FilterExpression:          aws.String("#t = :t"),
				ExpressionAttributeNames:  map[string]string{"#t": transform.AttrTable},
				ExpressionAttributeValues: map[string]types.AttributeValue{":t": &types.AttributeValueMemberS{Value: tp.Source.Name}},
				ConsistentRead:            aws.Bool(true),
			})
			for p.HasMorePages() {
				page, err := p.NextPage(gctx)
				if err != nil {
					return err
				}
				for _, it := range page.Items {
					key := transform.Item{}
					for _, k := range keyNames {
						key[k] = it[k]
					}
					if _, err := w.DeleteIfNotNewer(gctx, tp.Target, key, version); err != nil {
						return err
					}
					mu.Lock()
					total++
					mu.Unlock()
				}
			}
			return nil
		})
	}
	return total, g.Wait()
}

// monitor reports status, writes heartbeats and watches the slot's health.
func (s *syncer) monitor(ctx context.Context, conn *pgx.Conn) error {
	status := time.NewTicker(s.cfg.StatusEvery)
	defer status.Stop()
	hbEvery := s.cfg.Heartbeat
	if hbEvery < 0 {
		hbEvery = time.Hour
	}
	heartbeat := time.NewTicker(hbEvery)
	defer heartbeat.Stop()
	slotCheck := time.NewTicker(15 * time.Second)
	defer slotCheck.Stop()
	var lastChanges int64
	last := time.Now()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-heartbeat.C:
			if s.cfg.Heartbeat > 0 {
				if err := extract.EmitHeartbeat(ctx, conn); err != nil && ctx.Err() == nil {
					if conn.IsClosed() {
						return &lostConnError{fmt.Errorf("heartbeat: %w", err)}
					}
					s.log.Warn("heartbeat failed", "err", err)
				}
			}
		case <-slotCheck.C:
			info, ok, err := extract.LookupSlot(ctx, conn, s.cfg.Slot)
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				if conn.IsClosed() {
					return &lostConnError{fmt.Errorf("slot check: %w", err)}
				}
				s.log.Warn("slot check failed", "err", err)
				continue
			}
			if !ok {
				return s.explainSlot(fmt.Errorf("slot %s: %w", s.cfg.Slot, extract.ErrSlotMissing))
			}
			if info.WALStatus == "lost" {
				return s.explainSlot(fmt.Errorf("slot %s: %w", s.cfg.Slot, extract.ErrSlotInvalidated))
			}
			s.mu.Lock()
			s.status.RetainedWAL = info.RetainedBytes
			s.mu.Unlock()
			if info.RetainedBytes > s.cfg.WALBudget {
				s.log.Warn("retained WAL above budget: sync is falling behind or stuck", "slot", s.cfg.Slot,
					"retained_bytes", info.RetainedBytes, "budget_bytes", s.cfg.WALBudget, "wal_status", info.WALStatus)
			}
		case now := <-status.C:
			st := s.Status()
			st.ChangesPerSec = float64(st.Changes-lastChanges) / now.Sub(last).Seconds()
			lastChanges, last = st.Changes, now
			if s.cfg.Status != nil {
				s.cfg.Status(st)
			}
		}
	}
}

// Status returns the current status.
func (s *syncer) Status() SyncStatus {
	s.mu.Lock()
	st := s.status
	s.mu.Unlock()
	if s.stream != nil {
		st.Acked = s.stream.Acked()
	}
	end := extract.LSN(s.serverEnd.Load())
	if end > st.Acked {
		st.LagBytes = int64(end - st.Acked)
	}
	if p := s.pendingSince.Load(); p != 0 {
		st.LagSeconds = time.Since(time.Unix(0, p)).Seconds()
	}
	return st
}

func dbName(url string) string {
	cfg, err := extract.ConnConfig(url)
	if err != nil {
		return ""
	}
	return cfg.Database
}
