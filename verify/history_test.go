package verify

import (
	"strings"
	"testing"
	"time"

	"github.com/ferry-migrate/ferry/extract"
)

func TestTrimmedBy(t *testing.T) {
	now := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	done := now.Add(-48 * time.Hour)
	week := 168 * time.Hour
	pos := func(lsn extract.LSN) extract.Position { return extract.Position{LSN: lsn} }
	cases := []struct {
		name   string
		h      History
		meta   streamMeta
		oldest map[string]extract.Position
		want   string // a part of the reason; "" for none
	}{
		{"holds everything", History{BackfillDone: done, BackfillLSN: 100}, streamMeta{created: done.Add(-time.Hour), retention: week},
			map[string]extract.Position{"a": pos(100), "b": pos(100)}, ""},
		{"re-created after the backfill, sync's changes only", History{BackfillDone: done, BackfillLSN: 100}, streamMeta{created: done.Add(time.Hour), retention: week},
			map[string]extract.Position{"a": pos(300), "b": pos(250)}, "oldest event of every shard"},
		{"re-created, refilled with the backfill's positions", History{BackfillDone: done, BackfillLSN: 100}, streamMeta{created: done.Add(time.Hour), retention: week},
			map[string]extract.Position{"a": pos(100)}, ""},
		{"every shard starts after the backfill", History{BackfillLSN: 100}, streamMeta{},
			map[string]extract.Position{"a": pos(200), "b": pos(150)}, "oldest event of every shard"},
		{"one shard still starts with the backfill", History{BackfillLSN: 100}, streamMeta{},
			map[string]extract.Position{"a": pos(200), "b": pos(100)}, ""},
		{"no backfill recorded", History{}, streamMeta{}, map[string]extract.Position{"a": pos(200)}, ""},
		{"empty stream, nothing recorded", History{}, streamMeta{created: now}, nil, ""},
		{"empty stream created after the backfill", History{BackfillDone: done}, streamMeta{created: now, retention: week}, nil, "after the backfill completed"},
		{"empty stream, backfill older than the retention", History{BackfillDone: done}, streamMeta{created: done.Add(-time.Hour), retention: 24 * time.Hour},
			nil, "more than the stream's retention"},
		{"empty stream within the retention", History{BackfillDone: done}, streamMeta{created: done.Add(-time.Hour), retention: week}, nil, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := trimmedBy(c.h, c.meta, c.oldest, now)
			if (c.want == "") != (got == "") || !strings.Contains(got, c.want) {
				t.Errorf("trimmedBy = %q, want %q", got, c.want)
			}
		})
	}
}

func TestHeldFrom(t *testing.T) {
	if got := heldFrom(nil); got != "" {
		t.Errorf("empty: %q", got)
	}
	got := heldFrom(map[string]extract.Position{"a": {LSN: 0x200, Seq: 1}, "b": {LSN: 0x100, Seq: 2}})
	if got != posText(extract.Position{LSN: 0x100, Seq: 2}) {
		t.Errorf("heldFrom = %q", got)
	}
}
