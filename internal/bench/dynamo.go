package bench

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"golang.org/x/sync/errgroup"

	"github.com/ferry-migrate/ferry/extract"
	"github.com/ferry-migrate/ferry/internal/pipeline"
	"github.com/ferry-migrate/ferry/load/ddbjson"
	"github.com/ferry-migrate/ferry/transform"
)

// collectSink keeps every item a backfill builds: the bare loop writes
// exactly the items ferry writes.
type collectSink struct {
	mu    sync.Mutex
	items []transform.Item
}

func (s *collectSink) Write(_ context.Context, b *pipeline.Batch) (pipeline.SinkStats, []pipeline.RowFailure, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, w := range b.Writes {
		item := w.Put
		if item == nil {
			// The backfill builds its items in the wire form; the bare loop
			// sends the same items as the SDK's maps.
			var err error
			if item, err = ddbjson.Decode(w.PutJSON.JSON); err != nil {
				return pipeline.SinkStats{}, nil, fmt.Errorf("collect items: %w", err)
			}
		}
		s.items = append(s.items, item)
	}
	return pipeline.SinkStats{}, nil, nil
}

// BareBatchWrite is DynamoDB's limit for the backfill: workers goroutines
// sending BatchWriteItem calls of 25 items, UnprocessedItems resent, nothing
// else (no reading, no transforming, no state).
func BareBatchWrite(ctx context.Context, client *dynamodb.Client, table string, items []transform.Item, workers int) (time.Duration, error) {
	batches := make(chan []types.WriteRequest, len(items)/25+1)
	for i := 0; i < len(items); i += 25 {
		b := make([]types.WriteRequest, 0, 25)
		for _, it := range items[i:min(i+25, len(items))] {
			b = append(b, types.WriteRequest{PutRequest: &types.PutRequest{Item: it}})
		}
		batches <- b
	}
	close(batches)
	start := time.Now()
	g, gctx := errgroup.WithContext(ctx)
	for range workers {
		g.Go(func() error {
			for b := range batches {
				// Hand-written on purpose: this baseline measures raw
				// BatchWriteItem throughput without ferry's writer and its
				// load.RetryLoop.
				for attempt := 0; len(b) > 0; attempt++ {
					if attempt > 0 {
						time.Sleep(time.Duration(min(attempt, 10)) * 5 * time.Millisecond)
					}
					out, err := client.BatchWriteItem(gctx, &dynamodb.BatchWriteItemInput{RequestItems: map[string][]types.WriteRequest{table: b}})
					if err != nil {
						return err
					}
					b = out.UnprocessedItems[table]
				}
			}
			return nil
		})
	}
	err := g.Wait()
	return time.Since(start), err
}

// DynamoResult is the backfill-into-DynamoDB pair.
type DynamoResult struct {
	Items              int
	Ferry, Bare, Ratio Figure // items/s, items/s, per-run ratio
	RSS                Figure
	// The last ferry run's targets, kept for the verify pair.
	Target, Mapping, Control, Slot, Publication string
}

// PairDynamo alternates a bare 8-worker BatchWriteItem loop and `ferry
// backfill` writing the same items (the mapping without its stream: DynamoDB
// only) into fresh tables of the same design.
func (e *Env) PairDynamo(ctx context.Context, url string, runs int) (*DynamoResult, error) {
	itemsMapping, err := e.Mapping("bench_items", "")
	if err != nil {
		return nil, err
	}
	plan, err := LoadPlan(ctx, url, itemsMapping)
	if err != nil {
		return nil, err
	}
	sink := &collectSink{}
	if _, err := pipeline.Backfill(ctx, pipeline.BackfillConfig{SourceURL: url, Plan: plan, Sink: sink, Logger: quiet()}); err != nil {
		return nil, fmt.Errorf("collect items: %w", err)
	}
	res := &DynamoResult{Items: len(sink.items)}
	ddb := e.DynamoClient()
	var ferry, bare, ratio, rss []float64
	for i := -1; i < runs; i++ {
		bareTable := fmt.Sprintf("bench_bare_%d", i+1)
		if err := e.EnsureTables(ctx, plan, func(string) string { return bareTable }); err != nil {
			return nil, err
		}
		d, err := BareBatchWrite(ctx, ddb, bareTable, sink.items, 8)
		e.DeleteTargets(ctx, []string{bareTable}, nil)
		if err != nil {
			return nil, fmt.Errorf("bare BatchWriteItem: %w", err)
		}
		if i < 0 {
			continue // warm-up (dynalite's JIT, the page cache)
		}
		target := fmt.Sprintf("bench_ferry_%d", i)
		mapping, err := e.Mapping(target, "")
		if err != nil {
			return nil, err
		}
		ctl, slot, pub := target+"_control", fmt.Sprintf("bench_slot_%d", i), fmt.Sprintf("bench_pub_%d", i)
		profile := ""
		if i == runs-1 {
			profile = "backfill-dynamodb-x1"
		}
		c, err := e.RunFerry(ctx, profile, "backfill", "--source", url, "--mapping", mapping, "--slot", slot,
			"--publication", pub, "--control-table", ctl, "--progress", "none")
		if err != nil {
			return nil, err
		}
		n, err := summaryRows(c.Stdout)
		if err != nil {
			return nil, err
		}
		if int(n) != len(sink.items) {
			return nil, fmt.Errorf("ferry wrote %d items, the bare loop %d", n, len(sink.items))
		}
		fr, br := float64(n)/c.Wall.Seconds(), float64(len(sink.items))/d.Seconds()
		ferry, bare, ratio, rss = append(ferry, fr), append(bare, br), append(ratio, fr/br), append(rss, float64(c.PeakRSS))
		e.Log.Info("bench: backfill into dynalite", "run", i+1, "items", n, "ferry_items_s", int(fr), "bare_items_s", int(br),
			"ratio", fmt.Sprintf("%.2f", fr/br), "rss_mb", c.PeakRSS>>20)
		if i < runs-1 {
			e.DeleteTargets(ctx, []string{target, ctl}, nil)
			if err := dropSlotAndPublication(ctx, url, slot, pub); err != nil {
				return nil, err
			}
		} else {
			res.Target, res.Mapping, res.Control, res.Slot, res.Publication = target, mapping, ctl, slot, pub
		}
	}
	res.Ferry, res.Bare, res.Ratio, res.RSS = Summarize(ferry), Summarize(bare), Summarize(ratio), Summarize(rss)
	return res, nil
}

func dropSlotAndPublication(ctx context.Context, url, slot, pub string) error {
	conn, err := extract.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	if slot != "" {
		if _, err := conn.Exec(ctx, "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1", slot); err != nil {
			return fmt.Errorf("drop slot %s: %w", slot, err)
		}
	}
	if pub != "" {
		if _, err := conn.Exec(ctx, "DROP PUBLICATION IF EXISTS "+extract.QuoteIdent(pub)); err != nil {
			return fmt.Errorf("drop publication %s: %w", pub, err)
		}
	}
	return nil
}

// getItem reads one item (strongly consistent).
func getItem(ctx context.Context, client *dynamodb.Client, table string, key transform.Item) (transform.Item, error) {
	out, err := client.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(table), Key: key, ConsistentRead: aws.Bool(true)})
	if err != nil {
		return nil, err
	}
	return out.Item, nil
}

func attrString(it transform.Item, name string) string {
	if v, ok := it[name].(*types.AttributeValueMemberS); ok {
		return v.Value
	}
	return ""
}
