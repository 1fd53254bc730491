package bench

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/ferry-migrate/ferry/extract"
	"github.com/ferry-migrate/ferry/transform"
)

// BareCopy is the source side's limit: the backfill's SELECT of every mapped
// table (all columns, no chunking) through COPY … TO STDOUT on one
// connection, its output discarded.
func BareCopy(ctx context.Context, url string, plan *transform.Plan) (int64, time.Duration, error) {
	start := time.Now()
	conn, err := extract.Connect(ctx, url)
	if err != nil {
		return 0, 0, err
	}
	defer conn.Close(context.Background())
	var rows int64
	for _, tp := range plan.Tables {
		tag, err := conn.PgConn().CopyTo(ctx, io.Discard, "COPY ("+extract.ChunkQuery(tp.Source, extract.Chunk{})+") TO STDOUT")
		if err != nil {
			return 0, 0, err
		}
		rows += tag.RowsAffected()
	}
	return rows, time.Since(start), nil
}

// NullBackfill runs `ferry backfill --sink null` (read, decode, build items
// and records, discard) as a child process.
func (e *Env) NullBackfill(ctx context.Context, url, mapping, profile string) (rows int64, c Child, err error) {
	c, err = e.RunFerry(ctx, profile, "backfill", "--source", url, "--mapping", mapping, "--sink", "null", "--progress", "none")
	if err != nil {
		return 0, c, err
	}
	rows, err = summaryRows(c.Stdout)
	return rows, c, err
}

// ExtractResult is the extract+transform pair at one scale.
type ExtractResult struct {
	Rows               int64
	Ferry, Copy, Ratio Figure // rows/s, rows/s, ferry/copy per run
	RSS                Figure // bytes
}

// PairExtract alternates a bare COPY and a null-sink backfill of the same
// database, after one untimed warm-up of each.
func (e *Env) PairExtract(ctx context.Context, url string, factor, runs int) (*ExtractResult, error) {
	mapping := e.pagilaMapping()
	plan, err := LoadPlan(ctx, url, mapping)
	if err != nil {
		return nil, err
	}
	var ferry, cp, ratio, rss []float64
	res := &ExtractResult{}
	for i := -1; i < runs; i++ {
		n, d, err := BareCopy(ctx, url, plan)
		if err != nil {
			return nil, fmt.Errorf("bare COPY: %w", err)
		}
		profile := ""
		if i == runs-1 {
			profile = fmt.Sprintf("backfill-null-x%d", factor)
		}
		fn, c, err := e.NullBackfill(ctx, url, mapping, profile)
		if err != nil {
			return nil, err
		}
		if fn != n {
			return nil, fmt.Errorf("ferry read %d rows, COPY %d", fn, n)
		}
		if i < 0 {
			continue // warm-up
		}
		res.Rows = n
		fr, cr := float64(fn)/c.Wall.Seconds(), float64(n)/d.Seconds()
		ferry, cp, ratio, rss = append(ferry, fr), append(cp, cr), append(ratio, fr/cr), append(rss, float64(c.PeakRSS))
		e.Log.Info("bench: extract+transform", "factor", factor, "run", i+1, "rows", n,
			"ferry_rows_s", int(fr), "copy_rows_s", int(cr), "ratio", fmt.Sprintf("%.2f", fr/cr), "rss_mb", c.PeakRSS>>20)
	}
	res.Ferry, res.Copy, res.Ratio, res.RSS = Summarize(ferry), Summarize(cp), Summarize(ratio), Summarize(rss)
	return res, nil
}

// PairRSS measures the peak RSS of null-sink backfills (the source side's
// memory: COPY buffers, rows, items and records in flight).
func (e *Env) PairRSS(ctx context.Context, url string, runs int) (Figure, int64, error) {
	var rss []float64
	var rows int64
	for range runs {
		n, c, err := e.NullBackfill(ctx, url, e.pagilaMapping(), "")
		if err != nil {
			return Figure{}, 0, err
		}
		rows = n
		rss = append(rss, float64(c.PeakRSS))
	}
	return Summarize(rss), rows, nil
}

func (e *Env) pagilaMapping() string { return e.Repo + "/mappings/pagila.yaml" }
