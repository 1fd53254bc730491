package verify

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// sampleReport is a fixed report exercising every part of every format.
func sampleReport() *Report {
	r := &Report{
		GeneratedAt: time.Date(2025, 3, 14, 9, 26, 53, 0, time.UTC),
		DurationMS:  1834,
		Source:      "postgres@127.0.0.1:5432/pagila",
		Mapping:     "mappings/pagila.yaml",
		SnapshotLSN: "0/1A77C000",
		Sync:        SyncState{Slot: "ferry", Checkpointed: true, Running: true, CheckpointLSN: "0/1A77C0F8"},
		Tables: []TableReport{
			{Table: "public.actor", Target: "pagila", SourceRows: 200, TargetItems: 201, Extra: 1, Ranges: 1, RangesDrilled: 1,
				Findings: []Finding{{Kind: KindExtra, Table: "public.actor", Key: "actor_id=9999", ItemKey: map[string]string{"pk": "ACTOR#9999", "sk": "ACTOR"}, Repair: "fixed"}}},
			{Table: "public.customer", Target: "pagila", SourceRows: 599, TargetItems: 598, Missing: 1, Ranges: 1, RangesDrilled: 1,
				Findings: []Finding{{Kind: KindMissing, Table: "public.customer", Key: "customer_id=5", ItemKey: map[string]string{"pk": "CUSTOMER#5", "sk": "PROFILE"}, Repair: "fixed"}}},
			{Table: "public.film", Target: "pagila", SourceRows: 1000, TargetItems: 1000, Differing: 1, Ranges: 1, RangesDrilled: 1,
				Findings: []Finding{{Kind: KindDiffers, Table: "public.film", Key: "film_id=1", ItemKey: map[string]string{"pk": "FILM#1", "sk": "FILM"},
					Columns: []ColumnDiff{{Column: "title", Source: `"ACADEMY DINOSAUR"`, Target: `"TAMPERED <b>|x|</b>"`}}, Repair: "not_fixed",
					Reason: "still differs after the repair (1 columns); the stored item may be newer than the source read"}}},
			{Table: "public.rental", Target: "pagila", SourceRows: 16044, TargetItems: 16044, InFlight: 1, Ranges: 32, RangesDrilled: 1,
				Findings: []Finding{{Kind: KindInFlight, Table: "public.rental", Key: "rental_id=16050", Reason: "still changing after 3 re-checks",
					Columns: []ColumnDiff{{Column: "return_date", Source: `"2022-08-01T10:00:00.000000Z"`, Target: "NULL"}}}}},
			{Table: "public.language", Target: "pagila", SourceRows: 6, TargetItems: 6, Ranges: 1},
			{Table: "public.staff", Target: "pagila", Error: "scan pagila segment 0: connection reset"},
			{Table: "public.payment", Target: "pagila", SourceRows: 16049, TargetItems: 16048, DeadLettered: 1, Ranges: 32, RangesDrilled: 1,
				Findings: []Finding{{Kind: KindDeadLettered, Table: "public.payment", Key: "payment_date=2022-02-10 11:20:29.062919+00, payment_id=17503",
					ItemKey: map[string]string{"pk": "PAYMENT#17503", "sk": "PAYMENT#2022-02-10T11:20:29.062919Z"},
					Reason:  "in the dead-letter file: DynamoDB: ValidationException: Item size has exceeded the maximum allowed size"}}},
		},
		Streams: []StreamReport{{
			Stream: "pagila-changes", Tables: []string{"public.language"}, Shards: 2, Events: 8, Keys: 5, SourceRows: 6, AfterSnapshot: 1,
			Matching: 5, Missing: 1, Duplicates: 1, Inversions: 1,
			Expired: 2, Trimmed: "the oldest event of every shard is newer than the backfill's snapshot (0/90)", HeldFrom: "0/100:0",
			Findings: []Finding{
				{Kind: KindMissing, Table: "public.language", Key: "language_id=3", Reason: "no event leaves this row in the stream"},
				{Kind: KindInversion, Table: "public.language", Key: "language_id=2", PartitionKey: "language:2", Position: "0/100:0", Previous: "0/200:0"},
				{Kind: KindDuplicate, Table: "public.language", Key: "language_id=4", PartitionKey: "language:4", Position: "0/100:0"},
			},
		}},
		Repair: &RepairSummary{Attempted: 3, Fixed: 2, NotFixed: 1},
	}
	for i := range r.Tables {
		if r.Tables[i].Findings == nil {
			r.Tables[i].Findings = []Finding{}
		}
		r.Tables[i].Matching = max(0, r.Tables[i].SourceRows-r.Tables[i].Missing-r.Tables[i].Differing-r.Tables[i].InFlight-r.Tables[i].DeadLettered)
	}
	r.Finish()
	return r
}

func TestReportGolden(t *testing.T) {
	for _, tc := range []struct{ format, file string }{
		{"text", "report.txt"}, {"json", "report.json"}, {"markdown", "report.md"}, {"html", "report.html"},
	} {
		t.Run(tc.format, func(t *testing.T) {
			var buf bytes.Buffer
			if err := sampleReport().Write(&buf, tc.format); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join("testdata", tc.file)
			if *update {
				if err := os.MkdirAll("testdata", 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test ./verify -run TestReportGolden -update)", err)
			}
			if !bytes.Equal(buf.Bytes(), want) {
				t.Errorf("%s differs from the golden file (go test ./verify -run TestReportGolden -update to accept):\n%s", path, buf.String())
			}
		})
	}
}

func TestReportVerdicts(t *testing.T) {
	r := sampleReport()
	if r.Verdict != VerdictError || r.ExitCode() != 2 {
		t.Errorf("with a table error: verdict %s exit %d", r.Verdict, r.ExitCode())
	}
	want := map[string]string{"public.actor": VerdictRepaired, "public.customer": VerdictRepaired, "public.film": VerdictDifferences,
		"public.rental": VerdictInFlight, "public.language": VerdictConsistent, "public.staff": VerdictError, "public.payment": VerdictDifferences}
	for _, tb := range r.Tables {
		if tb.Verdict != want[tb.Table] {
			t.Errorf("%s: verdict %s, want %s", tb.Table, tb.Verdict, want[tb.Table])
		}
	}
	r.Tables = r.Tables[:5]
	r.Streams = nil
	r.Finish()
	if r.Verdict != VerdictDifferences || r.ExitCode() != 1 {
		t.Errorf("differences: verdict %s exit %d", r.Verdict, r.ExitCode())
	}
	r.Tables = append(r.Tables[:2], r.Tables[3:]...) // without film: only repaired and in flight
	r.Finish()
	if r.Verdict != VerdictRepaired || r.ExitCode() != 0 {
		t.Errorf("repaired: verdict %s exit %d", r.Verdict, r.ExitCode())
	}
	r.Tables = r.Tables[2:]
	r.Repair = nil
	r.Finish()
	if r.Verdict != VerdictInFlight || r.ExitCode() != 0 || r.Totals.InFlight != 1 {
		t.Errorf("in flight: verdict %s exit %d", r.Verdict, r.ExitCode())
	}
}

// TestReportJSONSchema checks that every field of the JSON report is
// documented in REPORT_SCHEMA.md.
func TestReportJSONSchema(t *testing.T) {
	var buf bytes.Buffer
	if err := sampleReport().WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	var doc any
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	schema, err := os.ReadFile("REPORT_SCHEMA.md")
	if err != nil {
		t.Fatal(err)
	}
	fields := map[string]bool{}
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				if k != "pk" && k != "sk" {
					fields[k] = true
				}
				walk(e)
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	walk(doc)
	for f := range fields {
		if !strings.Contains(string(schema), "`"+f+"`") {
			t.Errorf("field %q is not documented in REPORT_SCHEMA.md", f)
		}
	}
}
