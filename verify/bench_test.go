package verify_test

import (
	"context"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/ferry-migrate/ferry/extract"
	"github.com/ferry-migrate/ferry/internal/pipeline"
	"github.com/ferry-migrate/ferry/internal/stack"
	"github.com/ferry-migrate/ferry/internal/testkit"
	"github.com/ferry-migrate/ferry/load"
	"github.com/ferry-migrate/ferry/mappings"
	"github.com/ferry-migrate/ferry/transform"
	"github.com/ferry-migrate/ferry/verify"
)

// BenchmarkVerify measures a full verify of a backfilled Pagila (46,273 rows in
// one DynamoDB table) against the physical limit measured in the same run: a
// bare parallel Scan of the same table with the same number of segments. It
// reports verify rows/s, scan items/s, their ratio (1.0: verify costs no more
// than reading the items once) and the peak heap during verify.
//
//	go test -run '^$' -bench BenchmarkVerify ./verify/
func BenchmarkVerify(b *testing.B) {
	ctx := b.Context()
	st := stack.ForTest(b)
	db := st.TestDatabase(b)
	target, slot, control := testkit.Name("bench_"), testkit.Name("ferry_"), testkit.Name("ctl_")
	plan := benchPlan(ctx, b, db, testkit.PagilaMapping(b, target, testkit.Name("bench-")))
	ddb := st.DynamoClient()
	backfillForBench(ctx, b, st, db, plan, slot, control)
	b.Cleanup(func() {
		_, _ = ddb.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: aws.String(target)})
		_, _ = ddb.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: aws.String(control)})
	})
	const segments = 4
	cfg := verify.Config{SourceURL: db, Plan: plan, Dynamo: ddb, Segments: segments, Logger: discardLogger()}

	var verifyRows, scanItems int64
	var verifyTime, scanTime time.Duration
	var peak uint64
	b.ResetTimer()
	for b.Loop() {
		stop := sampleHeap(&peak)
		t0 := time.Now()
		rep, err := verify.Run(ctx, cfg)
		verifyTime += time.Since(t0)
		stop()
		if err != nil {
			b.Fatal(err)
		}
		if rep.Verdict != verify.VerdictConsistent {
			b.Fatalf("verify of a clean backfill: %s", rep.Verdict)
		}
		verifyRows += rep.Totals.SourceRows

		var n atomic.Int64
		t0 = time.Now()
		err = verify.ScanParallel(ctx, ddb, target, segments, func(int, transform.Item) error { n.Add(1); return nil })
		scanTime += time.Since(t0)
		if err != nil {
			b.Fatal(err)
		}
		scanItems += n.Load()
	}
	b.StopTimer()
	vr := float64(verifyRows) / verifyTime.Seconds()
	sr := float64(scanItems) / scanTime.Seconds()
	b.ReportMetric(vr, "verify_rows/s")
	b.ReportMetric(sr, "scan_items/s")
	b.ReportMetric(vr/sr, "verify/scan")
	b.ReportMetric(float64(peak)/(1<<20), "peak_heap_MB")
}

func benchPlan(ctx context.Context, b *testing.B, db, mappingPath string) *transform.Plan {
	m, err := mappings.Load(mappingPath)
	if err != nil {
		b.Fatal(err)
	}
	conn, err := extract.Connect(ctx, db)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(context.Background())
	tables, err := extract.LoadTables(ctx, conn)
	if err != nil {
		b.Fatal(err)
	}
	plan, err := transform.Compile(m, tables)
	if err != nil {
		b.Fatal(err)
	}
	// The benchmark compares with DynamoDB only: no Kinesis records to write.
	for _, tp := range plan.Tables {
		tp.Stream = ""
	}
	return plan
}

func backfillForBench(ctx context.Context, b *testing.B, st *stack.Stack, db string, plan *transform.Plan, slot, control string) {
	ddb := st.DynamoClient()
	var specs []load.TableSpec
	for _, t := range plan.Targets() {
		spec := load.TableSpec{Name: t.Name, Key: load.KeySchema{PK: t.PK, SK: t.SK}}
		for name, k := range t.GSIs {
			spec.GSIs = append(spec.GSIs, load.GSISpec{Name: name, Key: load.KeySchema{PK: k[0], SK: k[1]}})
		}
		specs = append(specs, spec)
	}
	if err := load.EnsureTables(ctx, ddb, specs); err != nil {
		b.Fatal(err)
	}
	ctl := load.NewControlStore(ddb, control)
	if err := ctl.Ensure(ctx); err != nil {
		b.Fatal(err)
	}
	res, err := pipeline.Backfill(ctx, pipeline.BackfillConfig{
		SourceURL: db, Plan: plan, Slot: slot, Control: ctl, Logger: discardLogger(),
		Sink: &pipeline.AWSSink{Dynamo: load.NewDynamoWriter(ddb, load.DynamoConfig{}), Kinesis: load.NewKinesisWriter(st.KinesisClient(), load.KinesisConfig{})},
	})
	if err != nil || len(res.Failures) > 0 {
		b.Fatalf("backfill: %v %v", err, res)
	}
}

// sampleHeap records the peak HeapAlloc until stop is called.
func sampleHeap(peak *uint64) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		var ms runtime.MemStats
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapAlloc > *peak {
				*peak = ms.HeapAlloc
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
