package bench

import (
	"context"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/ferry-migrate/ferry/transform"
	"github.com/ferry-migrate/ferry/verify"
)

// VerifyResult is the verify pair.
type VerifyResult struct {
	Rows               int64
	Items              int64
	Ferry, Scan, Ratio Figure // rows/s, items/s
	RSS                Figure
}

// segments is both sides' number of parallel Scan segments (verify's default).
const segments = 4

// PairVerify alternates `ferry verify` of a backfilled table (DynamoDB only)
// and a bare parallel Scan of the same table with the same segments.
func (e *Env) PairVerify(ctx context.Context, url string, d *DynamoResult, runs int) (*VerifyResult, error) {
	res := &VerifyResult{}
	var ferry, scan, ratio, rss []float64
	for i := -1; i < runs; i++ {
		var n atomic.Int64
		start := time.Now()
		err := verify.ScanParallel(ctx, e.DynamoClient(), d.Target, segments, func(int, transform.Item) error { n.Add(1); return nil })
		sd := time.Since(start)
		if err != nil {
			return nil, err
		}
		profile := ""
		if i == runs-1 {
			profile = "verify-x1"
		}
		c, err := e.RunFerry(ctx, profile, "verify", "--source", url, "--mapping", d.Mapping, "--control-table", d.Control,
			"--slot", d.Slot, "--segments", strconv.Itoa(segments), "--format", "text", "--out", "/dev/null")
		if err != nil {
			return nil, err
		}
		if i < 0 {
			continue
		}
		rows := int64(d.Items)
		res.Rows, res.Items = rows, n.Load()
		fr, sr := float64(rows)/c.Wall.Seconds(), float64(n.Load())/sd.Seconds()
		ferry, scan, ratio, rss = append(ferry, fr), append(scan, sr), append(ratio, fr/sr), append(rss, float64(c.PeakRSS))
		e.Log.Info("bench: verify", "run", i+1, "rows", rows, "items", n.Load(), "verify_rows_s", int(fr), "scan_items_s", int(sr),
			"ratio", fmt.Sprintf("%.2f", fr/sr), "rss_mb", c.PeakRSS>>20)
	}
	res.Ferry, res.Scan, res.Ratio, res.RSS = Summarize(ferry), Summarize(scan), Summarize(ratio), Summarize(rss)
	return res, nil
}
