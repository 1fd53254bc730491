package verify

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// WriteJSON writes the report as indented JSON (schema: REPORT_SCHEMA.md).
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(r)
}

// headline is the one-line verdict.
func (r *Report) headline() string {
	switch r.Verdict {
	case VerdictConsistent:
		return "consistent: every row agrees"
	case VerdictInFlight:
		return fmt.Sprintf("consistent, %d rows in flight (sync is still applying them)", r.Totals.InFlight)
	case VerdictRepaired:
		return "repaired: every difference found was fixed"
	case VerdictDifferences:
		dead := ""
		if r.Totals.DeadLettered > 0 {
			dead = fmt.Sprintf(", %d dead-lettered", r.Totals.DeadLettered)
		}
		return fmt.Sprintf("DIFFERENCES: %d missing, %d extra, %d differing, %d unconvertible%s%s",
			r.Totals.Missing, r.Totals.Extra, r.Totals.Differing, r.Totals.Unconvertible, dead, r.streamProblems())
	}
	return "ERROR: could not check everything"
}

func (r *Report) streamProblems() string {
	var n int64
	for _, s := range r.Streams {
		n += s.Missing + s.Extra + s.Differing + s.Inversions + s.Unconvertible + s.DeadLettered
	}
	if n == 0 {
		return ""
	}
	return fmt.Sprintf("; %d stream problems", n)
}

func (r *Report) syncText() string {
	switch {
	case r.Sync.Slot == "":
		return "not considered"
	case r.Sync.Running:
		return fmt.Sprintf("running on slot %s, checkpoint %s", r.Sync.Slot, r.Sync.CheckpointLSN)
	case r.Sync.Checkpointed:
		return fmt.Sprintf("stopped (slot %s, checkpoint %s)", r.Sync.Slot, r.Sync.CheckpointLSN)
	}
	return fmt.Sprintf("not running (no checkpoint for slot %s)", r.Sync.Slot)
}

// details renders what a finding says beyond its kind and key.
func (f Finding) details() string {
	var parts []string
	for _, c := range f.Columns {
		parts = append(parts, fmt.Sprintf("%s: source %s, target %s", c.Column, c.Source, c.Target))
	}
	if f.Position != "" {
		p := "at " + f.Position
		if f.Previous != "" {
			p += " after " + f.Previous
		}
		parts = append(parts, p)
	}
	if f.Reason != "" {
		parts = append(parts, f.Reason)
	}
	if len(f.ItemKey) > 0 && (f.Kind == KindExtra || f.Kind == KindMissing || f.Kind == KindDeadLettered) {
		parts = append(parts, "item "+itemKeyString(f.ItemKey))
	}
	return strings.Join(parts, "; ")
}

// WriteText writes the report for a terminal: a header, a table per check,
// the findings and the verdict.
func (r *Report) WriteText(w io.Writer) error {
	b := &strings.Builder{}
	fmt.Fprintf(b, "ferry verify: %s\n\n", r.headline())
	fmt.Fprintf(b, "source    %s\nmapping   %s\nsnapshot  %s\nsync      %s\nchecked   %s in %s\n\n",
		r.Source, r.Mapping, r.SnapshotLSN, r.syncText(), r.GeneratedAt.UTC().Format(time.RFC3339), time.Duration(r.DurationMS)*time.Millisecond)
	tw := tabwriter.NewWriter(b, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "table\ttarget\tsource rows\titems\tmissing\textra\tdiffering\tin flight\tdead-lettered\tranges (drilled)\tverdict")
	for _, t := range r.Tables {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d (%d)\t%s\n", t.Table, t.Target, t.SourceRows, t.TargetItems,
			t.Missing, t.Extra, t.Differing, t.InFlight, t.DeadLettered, t.Ranges, t.RangesDrilled, t.Verdict)
	}
	to := r.Totals
	fmt.Fprintf(tw, "total\t\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t\t%s\n", to.SourceRows, to.TargetItems, to.Missing, to.Extra, to.Differing,
		to.InFlight, to.DeadLettered, r.Verdict)
	tw.Flush()
	for _, t := range r.Tables {
		if t.Error != "" {
			fmt.Fprintf(b, "\n%s could not be checked: %s\n", t.Table, t.Error)
		}
		writeFindings(b, t.Table, t.Findings, t.FindingsTruncated)
	}
	if len(r.Streams) > 0 {
		b.WriteString("\n")
		tw = tabwriter.NewWriter(b, 2, 8, 2, ' ', 0)
		fmt.Fprintln(tw, "stream\tshards\tevents\trows\tsource rows\tmissing\textra\tdiffering\tdead-lettered\tduplicates\tinversions\tafter snapshot\tverdict")
		for _, s := range r.Streams {
			fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%s\n", s.Stream, s.Shards, s.Events, s.Keys, s.SourceRows,
				s.Missing, s.Extra, s.Differing, s.DeadLettered, s.Duplicates, s.Inversions, s.AfterSnapshot, s.Verdict)
		}
		tw.Flush()
		for _, s := range r.Streams {
			if s.Error != "" {
				fmt.Fprintf(b, "\nstream %s could not be checked: %s\n", s.Stream, s.Error)
			}
			if n := s.ExpiredNote(); n != "" {
				fmt.Fprintf(b, "\n%s\n", n)
			}
			writeFindings(b, "stream "+s.Stream, s.Findings, s.FindingsTruncated)
		}
	}
	if r.Repair != nil {
		fmt.Fprintf(b, "\nrepair: %d attempted, %d fixed, %d not fixed%s\n", r.Repair.Attempted, r.Repair.Fixed, r.Repair.NotFixed, r.Repair.viaText())
	}
	for _, e := range r.Errors {
		fmt.Fprintf(b, "\nerror: %s\n", e)
	}
	fmt.Fprintf(b, "\nverdict: %s (exit %d)\n", r.Verdict, r.ExitCode())
	_, err := io.WriteString(w, b.String())
	return err
}

func writeFindings(b *strings.Builder, title string, fs []Finding, truncated bool) {
	if len(fs) == 0 {
		return
	}
	fmt.Fprintf(b, "\n%s:\n", title)
	for _, f := range fs {
		line := fmt.Sprintf("  %-9s %s (%s)", f.Kind, f.Table, f.Key)
		if d := f.details(); d != "" {
			line += ": " + d
		}
		if f.Repair != "" {
			line += " [" + strings.ReplaceAll(f.Repair, "_", " ") + "]"
		}
		b.WriteString(line + "\n")
	}
	if truncated {
		b.WriteString("  … more findings not listed (the counts are exact)\n")
	}
}
