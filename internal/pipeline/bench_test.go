package pipeline_test

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/ferry-migrate/ferry/extract"
	"github.com/ferry-migrate/ferry/internal/pipeline"
	"github.com/ferry-migrate/ferry/internal/stack"
	"github.com/ferry-migrate/ferry/internal/testkit"
	"github.com/ferry-migrate/ferry/mappings"
	"github.com/ferry-migrate/ferry/transform"
)

// BenchmarkExtractTransform measures the backfill's source side (snapshot,
// chunked COPY, decoding, items and records built, then discarded) against
// the physical limit measured in the same run: a bare `COPY (SELECT …) TO
// STDOUT` of the same tables whose output is thrown away. Goal: ratio ≥ 0.7.
func BenchmarkExtractTransform(b *testing.B) {
	ctx := context.Background()
	st := stack.ForTest(b)
	db := st.TestDatabase(b)
	plan := pagilaPlan(ctx, b, db)
	var copyRows, ferryRows int64
	var copyTime, ferryTime time.Duration
	for i := 0; i < b.N; i++ {
		start := time.Now()
		n, err := bareCopy(ctx, db, plan)
		if err != nil {
			b.Fatal(err)
		}
		copyTime += time.Since(start)
		copyRows += n

		start = time.Now()
		res, err := pipeline.Backfill(ctx, pipeline.BackfillConfig{SourceURL: db, Plan: plan, Sink: pipeline.NullSink{}})
		if err != nil {
			b.Fatal(err)
		}
		ferryTime += time.Since(start)
		for _, t := range res.Tables {
			ferryRows += t.Rows
		}
	}
	if ferryRows != copyRows {
		b.Fatalf("ferry read %d rows, COPY %d", ferryRows, copyRows)
	}
	ferryRate := float64(ferryRows) / ferryTime.Seconds()
	copyRate := float64(copyRows) / copyTime.Seconds()
	b.ReportMetric(ferryRate, "ferry-rows/s")
	b.ReportMetric(copyRate, "copy-rows/s")
	b.ReportMetric(ferryRate/copyRate, "ratio")
	b.Logf("extract+transform %.0f rows/s, COPY TO STDOUT %.0f rows/s, ratio %.2f (goal ≥ 0.7)", ferryRate, copyRate, ferryRate/copyRate)
}

func pagilaPlan(ctx context.Context, tb testing.TB, db string) *transform.Plan {
	tb.Helper()
	m, err := mappings.Load(testkit.RepoRoot() + "/mappings/pagila.yaml")
	if err != nil {
		tb.Fatal(err)
	}
	conn, err := extract.Connect(ctx, db)
	if err != nil {
		tb.Fatal(err)
	}
	defer conn.Close(ctx)
	tables, err := extract.LoadTables(ctx, conn)
	if err != nil {
		tb.Fatal(err)
	}
	plan, err := transform.Compile(m, tables)
	if err != nil {
		tb.Fatal(err)
	}
	return plan
}

// bareCopy is the baseline: the same SELECTs through COPY, output discarded.
func bareCopy(ctx context.Context, db string, plan *transform.Plan) (int64, error) {
	conn, err := extract.Connect(ctx, db)
	if err != nil {
		return 0, err
	}
	defer conn.Close(ctx)
	var rows int64
	for _, tp := range plan.Tables {
		tag, err := conn.PgConn().CopyTo(ctx, io.Discard, "COPY ("+extract.ChunkQuery(tp.Source, extract.Chunk{})+") TO STDOUT")
		if err != nil {
			return 0, err
		}
		rows += tag.RowsAffected()
	}
	return rows, nil
}
