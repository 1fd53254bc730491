package verify

import (
	"fmt"
	"io"
	"time"
)

// SchemaVersion is the version of the JSON report schema (REPORT_SCHEMA.md).
// It changes only when a field is removed or changes meaning; new fields may be
// added within a version.
const SchemaVersion = 1

// Verdicts, of a table, a stream and the whole report, from best to worst.
const (
	VerdictConsistent  = "consistent"  // every row agrees
	VerdictInFlight    = "in_flight"   // agrees apart from rows that sync is still changing
	VerdictRepaired    = "repaired"    // differences were found and all of them were repaired
	VerdictDifferences = "differences" // rows disagree
	VerdictError       = "error"       // could not be checked
)

// Finding kinds.
const (
	KindMissing       = "missing"       // a source row has no item (no folded state in a stream)
	KindExtra         = "extra"         // an item (stream key) no source row explains
	KindDiffers       = "differs"       // item (stream state) and row disagree in some columns
	KindInFlight      = "in_flight"     // differs, but kept changing while sync applied it
	KindUnconvertible = "unconvertible" // the mapping cannot turn the source row into an item
	KindDeadLettered  = "dead_lettered" // missing, differs or unconvertible, and in the dead-letter file (--dead-letter)
	KindDuplicate     = "duplicate"     // stream: the same change (key, lsn, seq) twice
	KindInversion     = "inversion"     // stream: a change older than the key's previous one
)

// Report is the outcome of a verification. Its JSON form is documented in
// REPORT_SCHEMA.md.
type Report struct {
	SchemaVersion int       `json:"schema_version"`
	GeneratedAt   time.Time `json:"generated_at"`
	DurationMS    int64     `json:"duration_ms"`
	Source        string    `json:"source"`
	Mapping       string    `json:"mapping"`
	// SnapshotLSN is pg_current_wal_insert_lsn() at the start of the snapshot the
	// source was read in.
	SnapshotLSN string         `json:"snapshot_lsn"`
	Sync        SyncState      `json:"sync"`
	Verdict     string         `json:"verdict"`
	Totals      Totals         `json:"totals"`
	Tables      []TableReport  `json:"tables"`
	Streams     []StreamReport `json:"streams"`
	Repair      *RepairSummary `json:"repair"`
	Errors      []string       `json:"errors"`
}

// SyncState is what verify knew about a running sync.
type SyncState struct {
	Slot          string `json:"slot"`
	Checkpointed  bool   `json:"checkpointed"` // a checkpoint exists for the slot
	Running       bool   `json:"running"`      // the slot is in use (sync is streaming)
	CheckpointLSN string `json:"checkpoint_lsn,omitempty"`
}

// Totals sums the table reports.
type Totals struct {
	SourceRows    int64 `json:"source_rows"`
	TargetItems   int64 `json:"target_items"`
	Matching      int64 `json:"matching"`
	Missing       int64 `json:"missing"`
	Extra         int64 `json:"extra"`
	Differing     int64 `json:"differing"`
	InFlight      int64 `json:"in_flight"`
	Unconvertible int64 `json:"unconvertible"`
	DeadLettered  int64 `json:"dead_lettered"`
}

// TableReport is the comparison of one source table with its DynamoDB items.
type TableReport struct {
	Table         string `json:"table"`  // schema.name; "(unmapped)" for items of no mapped table
	Target        string `json:"target"` // DynamoDB table
	SourceRows    int64  `json:"source_rows"`
	TargetItems   int64  `json:"target_items"`
	Matching      int64  `json:"matching"`
	Missing       int64  `json:"missing"`
	Extra         int64  `json:"extra"`
	Differing     int64  `json:"differing"`
	InFlight      int64  `json:"in_flight"`
	Unconvertible int64  `json:"unconvertible"`
	// DeadLettered counts the rows that would be missing, differing or
	// unconvertible and are in the dead-letter files (--dead-letter).
	DeadLettered int64 `json:"dead_lettered"`
	// Ranges is the number of key ranges compared by digest; RangesDrilled
	// how many of them differed and were compared item by item.
	Ranges        int       `json:"ranges"`
	RangesDrilled int       `json:"ranges_drilled"`
	Verdict       string    `json:"verdict"`
	Error         string    `json:"error,omitempty"`
	Findings      []Finding `json:"findings"`
	// FindingsTruncated is true when there were more findings than listed
	// (the counts above are exact).
	FindingsTruncated bool `json:"findings_truncated"`
}

// Finding is one row, item or event that does not agree.
type Finding struct {
	Kind  string `json:"kind"`
	Table string `json:"table"`
	// Key is the source primary key, "col=value, col=value" (for extra items,
	// derived from the item's own columns).
	Key string `json:"key"`
	// ItemKey is the DynamoDB key of the item (attribute → value).
	ItemKey map[string]string `json:"item_key,omitempty"`
	Columns []ColumnDiff      `json:"columns,omitempty"`
	Reason  string            `json:"reason,omitempty"`
	// Repair is "fixed" or "not_fixed" when --repair tried this finding.
	Repair string `json:"repair,omitempty"`
	// Stream findings: the record's partition key and position ("lsn:seq"),
	// and for an inversion the key's previous position.
	PartitionKey string `json:"partition_key,omitempty"`
	Position     string `json:"position,omitempty"`
	Previous     string `json:"previous,omitempty"`

	rowKey string // stream findings: the folded row's key
}

// StreamReport is the comparison of a Kinesis stream, folded per row, with the
// source rows of the tables that publish to it.
type StreamReport struct {
	Stream     string   `json:"stream"`
	Tables     []string `json:"tables"`
	Shards     int      `json:"shards"`
	Events     int64    `json:"events"`
	Keys       int64    `json:"keys"`
	SourceRows int64    `json:"source_rows"`
	// AfterSnapshot counts events past the snapshot LSN: they are checked for
	// order but not folded into the state compared with the snapshot.
	AfterSnapshot int64 `json:"after_snapshot"`
	Matching      int64 `json:"matching"`
	Missing       int64 `json:"missing"`
	Extra         int64 `json:"extra"`
	Differing     int64 `json:"differing"`
	Unconvertible int64 `json:"unconvertible"` // source rows the mapping cannot render as an event
	DeadLettered  int64 `json:"dead_lettered"` // missing, differing or unconvertible rows in the dead-letter files
	Duplicates    int64 `json:"duplicates"`
	Inversions    int64 `json:"inversions"`
	// Expired counts the source rows with no event left on the stream
	// while the stream no longer holds the start of the history (Trimmed):
	// their only events expired. Not a difference.
	Expired int64 `json:"expired"`
	// Trimmed says why the stream no longer holds the whole history (the
	// backfill's events); empty when it does.
	Trimmed string `json:"trimmed,omitempty"`
	// HeldFrom is the position ("lsn:seq") of the oldest event the stream
	// holds, across its shards (its trim horizon).
	HeldFrom          string    `json:"held_from,omitempty"`
	Verdict           string    `json:"verdict"`
	Error             string    `json:"error,omitempty"`
	Findings          []Finding `json:"findings"`
	FindingsTruncated bool      `json:"findings_truncated"`
}

// RepairSummary counts what --repair did.
type RepairSummary struct {
	Attempted int `json:"attempted"`
	Fixed     int `json:"fixed"`
	NotFixed  int `json:"not_fixed"`
	// Via is how the rows were re-read: "online_snapshot" (through the
	// running sync, so the stream has them too) or "direct" (DynamoDB only).
	Via string `json:"via,omitempty"`
}

// ExitCode is the process exit code for a report: 0 consistent (also: only
// rows in flight, or every difference repaired), 1 differences, 2 could not
// check.
func (r *Report) ExitCode() int {
	switch r.Verdict {
	case VerdictError:
		return 2
	case VerdictDifferences:
		return 1
	}
	return 0
}

// Finish computes the totals, the per-table and per-stream verdicts and the
// report's verdict from the counts and findings.
func (r *Report) Finish() {
	r.SchemaVersion = SchemaVersion
	r.Totals = Totals{}
	verdicts := []string{}
	for i := range r.Tables {
		t := &r.Tables[i]
		SortFindings(t.Findings)
		t.Verdict = tableVerdict(t)
		verdicts = append(verdicts, t.Verdict)
		r.Totals.SourceRows += t.SourceRows
		r.Totals.TargetItems += t.TargetItems
		r.Totals.Matching += t.Matching
		r.Totals.Missing += t.Missing
		r.Totals.Extra += t.Extra
		r.Totals.Differing += t.Differing
		r.Totals.InFlight += t.InFlight
		r.Totals.Unconvertible += t.Unconvertible
		r.Totals.DeadLettered += t.DeadLettered
	}
	for i := range r.Streams {
		s := &r.Streams[i]
		SortFindings(s.Findings)
		switch {
		case s.Error != "":
			s.Verdict = VerdictError
		case s.Missing+s.Extra+s.Differing+s.Inversions+s.Unconvertible+s.DeadLettered > 0:
			s.Verdict = VerdictDifferences
		default:
			s.Verdict = VerdictConsistent
		}
		verdicts = append(verdicts, s.Verdict)
	}
	if len(r.Errors) > 0 {
		verdicts = append(verdicts, VerdictError)
	}
	r.Verdict = worst(verdicts)
	if r.Tables == nil {
		r.Tables = []TableReport{}
	}
	if r.Streams == nil {
		r.Streams = []StreamReport{}
	}
	if r.Errors == nil {
		r.Errors = []string{}
	}
}

func tableVerdict(t *TableReport) string {
	if t.Error != "" {
		return VerdictError
	}
	bad := t.Missing + t.Extra + t.Differing + t.Unconvertible + t.DeadLettered
	if bad == 0 {
		if t.InFlight > 0 {
			return VerdictInFlight
		}
		return VerdictConsistent
	}
	if t.FindingsTruncated || int64(len(t.Findings)) < bad {
		return VerdictDifferences
	}
	for _, f := range t.Findings {
		if f.Kind != KindInFlight && f.Repair != "fixed" {
			return VerdictDifferences
		}
	}
	return VerdictRepaired
}

var verdictRank = map[string]int{VerdictConsistent: 0, VerdictInFlight: 1, VerdictRepaired: 2, VerdictDifferences: 3, VerdictError: 4}

func worst(vs []string) string {
	out := VerdictConsistent
	for _, v := range vs {
		if verdictRank[v] > verdictRank[out] {
			out = v
		}
	}
	return out
}

// Formats a report can be written in.
var Formats = []string{"text", "json", "markdown", "html"}

// Write renders the report in a format: text, json, markdown or html.
func (r *Report) Write(w io.Writer, format string) error {
	switch format {
	case "text", "":
		return r.WriteText(w)
	case "json":
		return r.WriteJSON(w)
	case "markdown", "md":
		return r.WriteMarkdown(w)
	case "html":
		return r.WriteHTML(w)
	}
	return fmt.Errorf("unknown report format %q (text, json, markdown, html)", format)
}

// viaText is how the repair re-read the rows, for the text reports.
func (r *RepairSummary) viaText() string {
	switch r.Via {
	case "online_snapshot":
		return " (through sync's online snapshot: DynamoDB and the stream)"
	case "direct":
		return " (written to DynamoDB by verify itself, not published on a stream)"
	}
	return ""
}
