package pipeline

import "time"

// chunkSizer sizes an online snapshot's chunks. A chunk's rows are applied
// with the stream's batch, so the time that batch takes is the pause the
// snapshot adds to sync's commit→applied lag. With a fixed chunk size that
// pause grows with whatever slows the targets down (throttling, an outage's
// retries, a loaded machine); the sizer keeps it near target instead: it
// measures the rows per second of the batches that carried snapshot rows and
// asks for as many rows as apply in target, between minRows and max rows,
// growing by at most double from one chunk to the next.
//
// Written here rather than taken from a library: it is a dozen lines of
// arithmetic on the apply loop's own measurements.
type chunkSizer struct {
	max    int           // the configured chunk size (SnapshotChunkRows)
	target time.Duration // the apply time a chunk aims at (<= 0: fixed size max)
	rate   float64       // rows per second applied, smoothed (0: none measured yet)
	last   int           // the size of the last chunk asked for
}

// minChunkRows keeps a snapshot moving when even small batches take longer
// than the target (their time is then the targets' latency, not the rows').
const minChunkRows = 10

// next is the size of the next chunk.
func (c *chunkSizer) next() int {
	n := c.max
	if c.target > 0 && c.rate > 0 {
		n = min(n, int(c.rate*c.target.Seconds()))
		if c.last > 0 {
			n = min(n, 2*c.last)
		}
		n = max(n, min(minChunkRows, c.max))
	}
	c.last = n
	return n
}

// observe records that a batch of rows (snapshot rows and the stream's
// changes with them) was applied in took.
func (c *chunkSizer) observe(rows int, took time.Duration) {
	if rows <= 0 || took <= 0 {
		return
	}
	r := float64(rows) / took.Seconds()
	if c.rate == 0 {
		c.rate = r
		return
	}
	c.rate = (c.rate + r) / 2 // smoothed over the last few batches
}
