package pipeline_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/ferry-migrate/ferry/extract"
	"github.com/ferry-migrate/ferry/internal/pipeline"
	"github.com/ferry-migrate/ferry/internal/stack"
	"github.com/ferry-migrate/ferry/internal/testkit"
	"github.com/ferry-migrate/ferry/load"
	"github.com/ferry-migrate/ferry/transform"
)

// BenchmarkSyncThroughput measures sustained CDC throughput — changes/s from
// commit to durable in DynamoDB and Kinesis — for a transaction that updates
// every rental, against the emulator's own ceiling for the same writes measured
// in the same run: version-conditional PutItem of the same items by as many
// workers as sync uses, with nothing else in the way.
func BenchmarkSyncThroughput(b *testing.B) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st := stack.ForTest(b)
	db := st.TestDatabase(b)
	target, stream, slot := testkit.Name("bench_"), testkit.Name("bench-"), testkit.Name("bench_")
	plan := pagilaPlan(ctx, b, db)
	for _, tp := range plan.Tables {
		tp.Target, tp.Stream = target, stream
	}
	ddb, kin := st.DynamoClient(), st.KinesisClient()
	specs := []load.TableSpec{}
	for _, t := range plan.Targets() {
		spec := load.TableSpec{Name: t.Name, Key: load.KeySchema{PK: t.PK, SK: t.SK}}
		for name, k := range t.GSIs {
			spec.GSIs = append(spec.GSIs, load.GSISpec{Name: name, Key: load.KeySchema{PK: k[0], SK: k[1]}})
		}
		specs = append(specs, spec)
		ceil := spec
		ceil.Name = spec.Name + "_ceiling"
		specs = append(specs, ceil)
	}
	if err := load.EnsureTables(ctx, ddb, specs); err != nil {
		b.Fatal(err)
	}
	if err := load.EnsureStreams(ctx, kin, []string{stream}, 2); err != nil {
		b.Fatal(err)
	}
	ctl := load.NewControlStore(ddb, testkit.Name("ctl_"))
	if err := ctl.Ensure(ctx); err != nil {
		b.Fatal(err)
	}
	dw := load.NewDynamoWriter(ddb, load.DynamoConfig{})
	kw := load.NewKinesisWriter(kin, load.KinesisConfig{})
	if _, err := pipeline.Backfill(ctx, pipeline.BackfillConfig{SourceURL: db, Plan: plan, Slot: slot, Publication: slot,
		Control: ctl, Sink: &pipeline.AWSSink{Dynamo: dw, Kinesis: kw}}); err != nil {
		b.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		err := pipeline.Sync(ctx, pipeline.SyncConfig{SourceURL: db, Slot: slot, Publication: slot, Plan: plan,
			Control: ctl, Dynamo: dw, Kinesis: kw, DynamoClient: ddb})
		if err != nil {
			b.Error(err)
		}
	}()
	defer wg.Wait()
	defer cancel()
	if err := pipeline.WaitCaughtUp(ctx, db, slot, 2*time.Minute); err != nil {
		b.Fatal(err)
	}
	conn, err := extract.Connect(ctx, db)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(context.Background())
	rental := plan.Table("rental")
	var changes int64
	var syncTime, ceilTime time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		tag, err := conn.Exec(ctx, "UPDATE rental SET last_update = now()")
		if err != nil {
			b.Fatal(err)
		}
		if err := pipeline.WaitCaughtUp(ctx, db, slot, 5*time.Minute); err != nil {
			b.Fatal(err)
		}
		syncTime += time.Since(start)
		changes += tag.RowsAffected()

		start = time.Now()
		if err := putAll(ctx, dw, rental, target+"_ceiling", db, i); err != nil {
			b.Fatal(err)
		}
		ceilTime += time.Since(start)
	}
	b.StopTimer()
	syncRate := float64(changes) / syncTime.Seconds()
	ceilRate := float64(changes) / ceilTime.Seconds()
	b.ReportMetric(syncRate, "changes/s")
	b.ReportMetric(ceilRate, "ceiling-writes/s")
	b.ReportMetric(syncRate/ceilRate, "ratio")
	b.Logf("sync %.0f changes/s (commit → DynamoDB + Kinesis durable); emulator ceiling for the same conditional writes %.0f/s; ratio %.2f",
		syncRate, ceilRate, syncRate/ceilRate)
}

// putAll writes every rental item once, into a twin of the target table, with
// PutIfNewer from 16 workers: the ceiling sync's apply step works against.
func putAll(ctx context.Context, w *load.DynamoWriter, tp *transform.TablePlan, table, db string, round int) error {
	conn, err := extract.OpenSnapshotConn(ctx, db, "")
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	var items []transform.Item
	pos := extract.Position{LSN: extract.LSN(1 << 40), Seq: uint32(round + 1)}
	if _, err := conn.ReadChunk(ctx, tp.Source, extract.Chunk{}, func(row extract.Row) error {
		it, _, err := tp.Item(row, pos)
		items = append(items, it)
		return err
	}); err != nil {
		return err
	}
	jobs := make(chan transform.Item)
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for it := range jobs {
				if _, err := w.PutIfNewer(ctx, table, it, pos.Version()); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	for _, it := range items {
		jobs <- it
	}
	close(jobs)
	wg.Wait()
	close(errs)
	return <-errs
}
