package verify

import (
	"fmt"
	"io"
	"strings"
	"time"
)

var verdictEmoji = map[string]string{
	VerdictConsistent:  "✅",
	VerdictInFlight:    "⏳",
	VerdictRepaired:    "🔧",
	VerdictDifferences: "❌",
	VerdictError:       "⚠️",
}

// mdCell escapes a value for a Markdown table cell.
func mdCell(s string) string {
	s = strings.ReplaceAll(s, `\`, `\\`)
	s = strings.ReplaceAll(s, "|", `\|`)
	s = strings.ReplaceAll(s, "\n", " ")
	s = strings.ReplaceAll(s, "<", "&lt;")
	s = strings.ReplaceAll(s, ">", "&gt;")
	return s
}

// mdCode renders a value as inline code in a table cell.
func mdCode(s string) string {
	if s == "" {
		return ""
	}
	return "`" + strings.ReplaceAll(mdCell(s), "`", "'") + "`"
}

// WriteMarkdown writes the report as GitHub-flavoured Markdown (for a pull
// request or an issue).
func (r *Report) WriteMarkdown(w io.Writer) error {
	b := &strings.Builder{}
	fmt.Fprintf(b, "## %s ferry verify: %s\n\n", verdictEmoji[r.Verdict], mdCell(r.headline()))
	b.WriteString("| | |\n|---|---|\n")
	fmt.Fprintf(b, "| Source | %s |\n| Mapping | %s |\n| Snapshot LSN | %s |\n| Sync | %s |\n| Checked | %s in %s |\n\n",
		mdCode(r.Source), mdCode(r.Mapping), mdCode(r.SnapshotLSN), mdCell(r.syncText()),
		r.GeneratedAt.UTC().Format(time.RFC3339), time.Duration(r.DurationMS)*time.Millisecond)
	b.WriteString("### Tables\n\n")
	b.WriteString("| Table | Target | Source rows | Items | Missing | Extra | Differing | In flight | Dead-lettered | Verdict |\n")
	b.WriteString("|---|---|--:|--:|--:|--:|--:|--:|--:|---|\n")
	for _, t := range r.Tables {
		fmt.Fprintf(b, "| %s | %s | %d | %d | %d | %d | %d | %d | %d | %s %s |\n", mdCode(t.Table), mdCode(t.Target), t.SourceRows, t.TargetItems,
			t.Missing, t.Extra, t.Differing, t.InFlight, t.DeadLettered, verdictEmoji[t.Verdict], t.Verdict)
	}
	to := r.Totals
	fmt.Fprintf(b, "| **total** | | %d | %d | %d | %d | %d | %d | %d | %s %s |\n\n", to.SourceRows, to.TargetItems, to.Missing, to.Extra,
		to.Differing, to.InFlight, to.DeadLettered, verdictEmoji[r.Verdict], r.Verdict)
	var fs []Finding
	truncated := false
	for _, t := range r.Tables {
		fs = append(fs, t.Findings...)
		truncated = truncated || t.FindingsTruncated
		if t.Error != "" {
			fmt.Fprintf(b, "> ⚠️ %s could not be checked: %s\n\n", mdCode(t.Table), mdCell(t.Error))
		}
	}
	if len(fs) > 0 {
		b.WriteString("### Findings\n\n")
		writeMDFindings(b, fs, truncated)
	}
	if len(r.Streams) > 0 {
		b.WriteString("### Streams\n\n")
		b.WriteString("| Stream | Shards | Events | Rows | Source rows | Missing | Extra | Differing | Dead-lettered | Duplicates | Inversions | Verdict |\n")
		b.WriteString("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|\n")
		for _, s := range r.Streams {
			fmt.Fprintf(b, "| %s | %d | %d | %d | %d | %d | %d | %d | %d | %d | %d | %s %s |\n", mdCode(s.Stream), s.Shards, s.Events, s.Keys,
				s.SourceRows, s.Missing, s.Extra, s.Differing, s.DeadLettered, s.Duplicates, s.Inversions, verdictEmoji[s.Verdict], s.Verdict)
		}
		b.WriteString("\n")
		for _, s := range r.Streams {
			if s.Error != "" {
				fmt.Fprintf(b, "> ⚠️ stream %s could not be checked: %s\n\n", mdCode(s.Stream), mdCell(s.Error))
			}
			if n := s.ExpiredNote(); n != "" {
				fmt.Fprintf(b, "> ⏳ %s\n\n", mdCell(n))
			}
			if len(s.Findings) > 0 {
				fmt.Fprintf(b, "#### Stream %s\n\n", mdCode(s.Stream))
				writeMDFindings(b, s.Findings, s.FindingsTruncated)
			}
		}
	}
	if r.Repair != nil {
		fmt.Fprintf(b, "**Repair:** %d attempted, %d fixed, %d not fixed%s.\n\n", r.Repair.Attempted, r.Repair.Fixed, r.Repair.NotFixed, r.Repair.viaText())
	}
	for _, e := range r.Errors {
		fmt.Fprintf(b, "> ⚠️ %s\n\n", mdCell(e))
	}
	fmt.Fprintf(b, "Exit code %d.\n", r.ExitCode())
	_, err := io.WriteString(w, b.String())
	return err
}

func writeMDFindings(b *strings.Builder, fs []Finding, truncated bool) {
	b.WriteString("| Table | Key | Kind | Details | Repair |\n|---|---|---|---|---|\n")
	for _, f := range fs {
		fmt.Fprintf(b, "| %s | %s | %s | %s | %s |\n", mdCode(f.Table), mdCode(f.Key), f.Kind, mdCell(f.details()), strings.ReplaceAll(f.Repair, "_", " "))
	}
	if truncated {
		b.WriteString("\n_More findings were not listed; the counts are exact._\n")
	}
	b.WriteString("\n")
}
