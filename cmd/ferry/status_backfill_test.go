package main

import (
	"slices"
	"testing"
	"time"

	"github.com/ferry-migrate/ferry/internal/pipeline"
	"github.com/ferry-migrate/ferry/load"
)

func TestBackfillActivityLines(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	a := &pipeline.BackfillActivity{
		ChunksPlanned: 10, ChunksDone: 6, RowsDone: 9000,
		Workers: []pipeline.WorkerStatus{
			{Worker: "c1", Role: "coordinator", RunID: "r1", Workers: 2, Chunks: 4, Rows: 6000, Rate: 1500, Updated: now.Add(-time.Second), Interval: 1000},
			{Worker: "w1", Role: "joined", RunID: "r1", Workers: 1, Chunks: 2, Rows: 3000, Rate: 750, Lost: 1, Updated: now.Add(-10 * time.Second), Interval: 1000},
			{Worker: "w2", Role: "joined", RunID: "r1", Workers: 1, Updated: now.Add(-time.Minute), Interval: 1000, Ended: true},
		},
		Held: []load.Lease{
			{Key: "done:public.rental:3", Owner: "c1", Expires: now.Add(1500 * time.Millisecond)},
			{Key: "done:public.rental:4", Owner: "w1", Expires: now.Add(-2 * time.Second)},
			{Key: "done:public.film:0", Owner: "ghost", Expires: now.Add(time.Second)},
		},
	}
	want := []string{
		"chunks: 6 of 10 done (9000 rows), 3 being copied",
		"worker c1 (coordinator, 2 connections, run r1): running, 4 chunks, 6000 rows, 1500 rows/s, 0 leases lost; copying public.rental:3 (expires in 1.5s)",
		"worker w1 (joined, 1 connections, run r1): silent for 10s (dead or cut off?), 2 chunks, 3000 rows, 750 rows/s, 1 leases lost; copying public.rental:4 (expired 2s ago: to be taken over)",
		"worker w2 (joined, 1 connections, run r1): ended, 0 chunks, 0 rows, 0 rows/s, 0 leases lost",
		"worker ghost (no heartbeat): copying public.film:0 (expires in 1s)",
	}
	if got := backfillActivityLines(a, now); !slices.Equal(got, want) {
		t.Errorf("lines:\n%q\nwant\n%q", got, want)
	}
}
