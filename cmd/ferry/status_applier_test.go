package main

import (
	"strings"
	"testing"
	"time"

	"github.com/ferry-migrate/ferry/extract"
	"github.com/ferry-migrate/ferry/load"
)

func TestApplierStatusLines(t *testing.T) {
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	at := func(lsn uint64, seq uint32) string {
		return extract.Position{LSN: extract.LSN(lsn), Seq: seq}.Version()
	}
	pos := []load.ShardPosition{
		{Shard: "shardId-000000000001", Version: at(0x5000000, 2), At: now.Add(-3 * time.Second), IteratorAge: 1500 * time.Millisecond},
		{Shard: "shardId-000000000000", Version: at(0x4FFFC00, 7), At: now.Add(-time.Second), IteratorAge: 20 * time.Millisecond},
	}
	got := strings.Join(applierStatusLines("pagila-changes", pos, extract.LSN(0x5000000), true, now), "\n")
	want := strings.Join([]string{
		"applier on stream pagila-changes (sync --apply stream): 2 shards with applied changes",
		"  shardId-000000000000: applied to 0/4FFFC00:7 (1.0 KiB of WAL behind sync's checkpoint), 1s ago, iterator age then 20ms",
		"  shardId-000000000001: applied to 0/5000000:2, 3s ago, iterator age then 1.5s",
	}, "\n")
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	if lines := applierStatusLines("s", nil, 0, false, now); lines != nil {
		t.Errorf("no applier: %v, want nothing", lines)
	}
}
