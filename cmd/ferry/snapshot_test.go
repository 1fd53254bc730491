package main

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ferry-migrate/ferry/internal/pipeline"
)

func TestParseKeys(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		pk      []string
		in      string
		want    [][]string
		lines   []int
		wantErr string
	}{
		{name: "one column", pk: []string{"film_id"}, in: "1\n2\n10\n",
			want: [][]string{{"1"}, {"2"}, {"10"}}, lines: []int{1, 2, 3}},
		{name: "no final newline", pk: []string{"film_id"}, in: "1\n2",
			want: [][]string{{"1"}, {"2"}}, lines: []int{1, 2}},
		{name: "composite, in key order", pk: []string{"actor_id", "film_id"}, in: "1\t23\n2\t31\n",
			want: [][]string{{"1", "23"}, {"2", "31"}}, lines: []int{1, 2}},
		{name: "blank lines skipped, line numbers kept", pk: []string{"actor_id", "film_id"}, in: "\n1\t23\n\n\r\n2\t31\n\n",
			want: [][]string{{"1", "23"}, {"2", "31"}}, lines: []int{2, 5}},
		{name: "CRLF", pk: []string{"a", "b"}, in: "x\ty\r\nz\tw\r\n",
			want: [][]string{{"x", "y"}, {"z", "w"}}, lines: []int{1, 2}},
		{name: "values as written: spaces, quotes, backslashes", pk: []string{"a", "b"}, in: " x \tO'Brien \\n\n",
			want: [][]string{{" x ", `O'Brien \n`}}, lines: []int{1}},
		{name: "empty field is a value", pk: []string{"a", "b"}, in: "x\t\n",
			want: [][]string{{"x", ""}}, lines: []int{1}},
		{name: "empty file", pk: []string{"a"}, in: ""},
		{name: "too few fields", pk: []string{"actor_id", "film_id"}, in: "1\t23\n\n2\n",
			wantErr: "keys.tsv:3: 1 field, want 2 (actor_id, film_id, separated by a TAB)"},
		{name: "too many fields", pk: []string{"film_id"}, in: "1\n2\t3\t4\n",
			wantErr: "keys.tsv:2: 3 fields, want 1 (film_id, separated by a TAB)"},
		{name: "spaces are no separator", pk: []string{"actor_id", "film_id"}, in: "1 23\n",
			wantErr: "keys.tsv:1: 1 field, want 2"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			keys, lines, err := parseKeys(strings.NewReader(tc.in), "keys.tsv", tc.pk)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(keys, tc.want) || !reflect.DeepEqual(lines, tc.lines) {
				t.Errorf("got %q at lines %v, want %q at %v", keys, lines, tc.want, tc.lines)
			}
		})
	}
}

func TestSplitTables(t *testing.T) {
	t.Parallel()
	got, err := splitTables(" rental, public.film ,,")
	if err != nil || !reflect.DeepEqual(got, []string{"rental", "public.film"}) {
		t.Errorf("splitTables = %q, %v", got, err)
	}
	if _, err := splitTables(" , "); err == nil {
		t.Error("no table: no error")
	}
}

func TestSnapshotProgressLines(t *testing.T) {
	t.Parallel()
	const id = "20250101T120000.000000000Z"
	req := pipeline.SnapshotRequest{ID: id, Tables: []string{"public.rental", "public.film"}}
	keyed := pipeline.SnapshotRequest{ID: id, Tables: []string{"public.film_actor"}, Keys: [][]string{{"1", "2"}, {"1", "3"}, {"4", "5"}}}
	started := time.Date(2025, 1, 1, 12, 0, 1, 0, time.UTC)
	cases := []struct {
		name string
		got  string
		want string
	}{
		{"first table", snapshotProgressLine(req, pipeline.SnapshotProgress{Request: id, Rows: 4000, Chunks: 8}),
			"snapshot " + id + ": table public.rental (1/2), 4000 rows, 8 chunks"},
		{"second table, one chunk", snapshotProgressLine(req, pipeline.SnapshotProgress{Request: id, Table: 1, Rows: 16044, Chunks: 1}),
			"snapshot " + id + ": table public.film (2/2), 16044 rows, 1 chunk"},
		{"keys", snapshotProgressLine(keyed, pipeline.SnapshotProgress{Request: id, KeysDone: 2, Rows: 2, Chunks: 1}),
			"snapshot " + id + ": table public.film_actor (1/1), 2/3 keys, 2 rows, 1 chunk"},
		{"done in the checkpoint", snapshotProgressLine(req, pipeline.SnapshotProgress{Request: id, Table: 2, Rows: 5, Chunks: 2, Done: true}),
			"snapshot " + id + ": 2/2 tables read, 5 rows, 2 chunks, finishing"},
		{"index out of range", snapshotProgressLine(req, pipeline.SnapshotProgress{Request: id, Table: 7, Rows: 5, Chunks: 2}),
			"snapshot " + id + ": 5 rows, 2 chunks"},
		{"wait: under way", snapshotWaitLine(req, &pipeline.SnapshotProgress{Request: id, Rows: 1, Chunks: 1}, 0),
			"snapshot " + id + ": table public.rental (1/2), 1 rows, 1 chunk"},
		{"wait: another under way", snapshotWaitLine(req, &pipeline.SnapshotProgress{Request: "other"}, 1),
			"snapshot " + id + ": queued behind 1 request"},
		{"wait: next", snapshotWaitLine(req, nil, 0), "snapshot " + id + ": queued, next"},
		{"wait: behind two", snapshotWaitLine(req, nil, 2), "snapshot " + id + ": queued behind 2 requests"},
		{"summary", snapshotSummary(req, pipeline.SnapshotProgress{Request: id, Table: 1, Rows: 17044, Chunks: 5, Started: started, Done: true}, started.Add(41*time.Second+300*time.Millisecond)),
			"snapshot " + id + " done: 2 tables, 17044 rows in 5 chunks, 41s"},
	}
	for _, tc := range cases {
		if tc.got != tc.want {
			t.Errorf("%s:\n got %q\nwant %q", tc.name, tc.got, tc.want)
		}
	}
}

func TestSnapshotStatusLines(t *testing.T) {
	t.Parallel()
	now := time.Date(2025, 1, 1, 12, 1, 0, 0, time.UTC)
	started := now.Add(-40 * time.Second)
	est := map[string]int64{"public.rental": 16044, "public.film": 1000, "public.actor": -1}
	estimate := func(t string) int64 {
		if n, ok := est[t]; ok {
			return n
		}
		return -1
	}
	a := pipeline.SnapshotRequest{ID: "20250101T120000.000000000Z", Tables: []string{"public.rental", "public.film"}, Created: now.Add(-time.Minute)}
	b := pipeline.SnapshotRequest{ID: "20250101T120010.000000000Z", Tables: []string{"public.film_actor"}, Keys: [][]string{{"1", "1"}, {"2", "2"}},
		Created: now.Add(-50 * time.Second)}
	c := pipeline.SnapshotRequest{ID: "20250101T120020.000000000Z", Tables: []string{"public.film"}, Where: "rating = 'PG'", Created: now.Add(-40 * time.Second)}
	cur := &pipeline.SnapshotProgress{Request: a.ID, Table: 0, Rows: 4000, Chunks: 8, Started: started}
	done := map[string]pipeline.SnapshotProgress{
		"20241231T100000.000000000Z": {Request: "20241231T100000.000000000Z", Rows: 7, Chunks: 1, Done: true},
		"20241231T110000.000000000Z": {Request: "20241231T110000.000000000Z", Rows: 16044, Chunks: 4, Started: now.Add(-time.Hour), Done: true},
	}
	cases := []struct {
		name    string
		pending []pipeline.SnapshotRequest
		done    map[string]pipeline.SnapshotProgress
		cur     *pipeline.SnapshotProgress
		active  bool
		want    []string
	}{
		{name: "none", want: []string{"online snapshots: none requested"}},
		{name: "under way, queued, finished", pending: []pipeline.SnapshotRequest{a, b, c}, done: done, cur: cur, active: true, want: []string{
			"online snapshot 20250101T120000.000000000Z: table public.rental (1/2), 4000 rows, 8 chunks, started 2025-01-01T12:00:20Z (40s ago), ETA 2m10s (100 rows/s, ~17044 rows in all)",
			"online snapshot 20250101T120010.000000000Z: queued (2 keys of public.film_actor), requested 2025-01-01T12:00:10Z",
			"online snapshot 20250101T120020.000000000Z: queued (public.film where rating = 'PG'), requested 2025-01-01T12:00:20Z",
			"online snapshot 20241231T110000.000000000Z: done, 16044 rows in 4 chunks, started 2025-01-01T11:01:00Z",
			"online snapshot 20241231T100000.000000000Z: done, 7 rows in 1 chunk",
		}},
		{name: "paused", pending: []pipeline.SnapshotRequest{a}, cur: cur, active: false, want: []string{
			"online snapshot 20250101T120000.000000000Z: table public.rental (1/2), 4000 rows, 8 chunks, started 2025-01-01T12:00:20Z (40s ago), paused: no sync is running (it resumes the snapshot when started)",
		}},
		{name: "checkpoint of a finished request", pending: []pipeline.SnapshotRequest{b}, cur: cur, active: true, want: []string{
			"online snapshot 20250101T120010.000000000Z: queued (2 keys of public.film_actor), requested 2025-01-01T12:00:10Z",
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := snapshotStatusLines(tc.pending, tc.done, tc.cur, tc.active, estimate, now)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}

	// At most snapshotStatusMax queued and finished ones are listed.
	var many []pipeline.SnapshotRequest
	manyDone := map[string]pipeline.SnapshotProgress{}
	for i := range 8 {
		id := pipeline.NewSnapshotID(now.Add(time.Duration(i) * time.Second))
		many = append(many, pipeline.SnapshotRequest{ID: id, Tables: []string{"public.film"}})
		manyDone["0"+id] = pipeline.SnapshotProgress{Request: "0" + id}
	}
	got := snapshotStatusLines(many, manyDone, nil, true, estimate, now)
	if len(got) != 2*snapshotStatusMax+2 || !strings.Contains(got[snapshotStatusMax], "and 3 more queued") ||
		!strings.Contains(got[snapshotStatusMax+1], "finished: 8 (the last 5:)") || !strings.Contains(got[snapshotStatusMax+2], "0"+many[7].ID) {
		t.Errorf("many:\n%s", strings.Join(got, "\n"))
	}
}

func TestSnapshotETA(t *testing.T) {
	t.Parallel()
	now := time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)
	estimate := func(t string) int64 {
		return map[string]int64{"public.rental": 1000, "public.actor": -1}[t]
	}
	p := pipeline.SnapshotProgress{Rows: 250, Chunks: 1, Started: now.Add(-10 * time.Second)}
	cases := []struct {
		name string
		req  pipeline.SnapshotRequest
		p    pipeline.SnapshotProgress
		want string
	}{
		{"rate", pipeline.SnapshotRequest{Tables: []string{"public.rental"}}, p, "ETA 30s (25 rows/s, ~1000 rows in all)"},
		{"no rows yet", pipeline.SnapshotRequest{Tables: []string{"public.rental"}}, pipeline.SnapshotProgress{Started: now}, "ETA unknown (none done yet of ~1000 rows)"},
		{"past the estimate", pipeline.SnapshotRequest{Tables: []string{"public.rental"}}, pipeline.SnapshotProgress{Rows: 1200, Started: now.Add(-time.Second)},
			"ETA unknown (past the estimate of 1000 rows)"},
		{"no estimate", pipeline.SnapshotRequest{Tables: []string{"public.rental", "public.actor"}}, p, "ETA unknown (public.actor has no row estimate: ANALYZE it)"},
		{"where", pipeline.SnapshotRequest{Tables: []string{"public.rental"}, Where: "true"}, p, "ETA unknown (--where)"},
		{"keys", pipeline.SnapshotRequest{Tables: []string{"public.rental"}, Keys: [][]string{{"1"}, {"2"}, {"3"}, {"4"}}},
			pipeline.SnapshotProgress{KeysDone: 1, Rows: 1, Started: now.Add(-2 * time.Second)}, "ETA 6s (0.5 keys/s, ~4 keys in all)"},
	}
	for _, tc := range cases {
		if got := snapshotETA(tc.req, tc.p, estimate, now); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}
