package verify

import (
	"fmt"
	"html/template"
	"io"
	"strings"
	"time"
)

// WriteHTML writes the report as one self-contained HTML page: inline CSS and
// an inline SVG bar chart of each table's agreement; no scripts, no external
// assets.
func (r *Report) WriteHTML(w io.Writer) error {
	d := htmlData{R: r, Chart: agreementChart(r.Tables)}
	for _, t := range r.Tables {
		d.Findings = append(d.Findings, t.Findings...)
	}
	return htmlPage.Execute(w, d)
}

type htmlData struct {
	R        *Report
	Chart    chart
	Findings []Finding // of every table
}

// chart is an SVG bar chart: one stacked bar per table.
type chart struct {
	Width, Height int
	Bars          []bar
}

type bar struct {
	Label, Percent string
	TextY, PctX    int
	Segs           []seg
}

type seg struct {
	X, W  string
	Y, H  int
	Class string
	Title string
}

// Chart geometry (pixels).
const (
	chartLabelW = 230
	chartBarW   = 420
	chartBarH   = 18
	chartGap    = 8
)

func agreementChart(tables []TableReport) chart {
	c := chart{Width: chartLabelW + chartBarW + 70, Height: len(tables)*(chartBarH+chartGap) + chartGap}
	for i, t := range tables {
		y := chartGap + i*(chartBarH+chartGap)
		total := t.SourceRows + t.Extra
		b := bar{Label: t.Table, TextY: y + chartBarH - 5, PctX: chartLabelW + chartBarW + 8}
		if total == 0 {
			b.Percent = "empty"
			b.Segs = []seg{{X: px(chartLabelW), W: px(chartBarW), Y: y, H: chartBarH, Class: "none", Title: "no rows, no items"}}
			c.Bars = append(c.Bars, b)
			continue
		}
		b.Percent = fmt.Sprintf("%.1f%%", 100*float64(t.Matching)/float64(total))
		parts := []struct {
			n     int64
			class string
			what  string
		}{
			{t.Matching, "ok", "agree"},
			{t.Differing, "diff", "differ"},
			{t.Missing, "missing", "missing in target"},
			{t.Extra, "extra", "extra in target"},
			{t.InFlight, "flight", "in flight"},
			{t.Unconvertible, "unconv", "unconvertible"},
			{t.DeadLettered, "dead", "dead-lettered"},
		}
		// Problems get at least 2 pixels, taken from the agreeing part, so that
		// one bad row in a large table stays visible.
		widths := make([]float64, len(parts))
		problems := 0.0
		for i, part := range parts[1:] {
			if part.n > 0 {
				widths[i+1] = max(2, float64(chartBarW)*float64(part.n)/float64(total))
				problems += widths[i+1]
			}
		}
		if parts[0].n > 0 {
			widths[0] = max(0, float64(chartBarW)-problems)
		}
		x := float64(chartLabelW)
		for i, part := range parts {
			if part.n == 0 {
				continue
			}
			b.Segs = append(b.Segs, seg{X: px(x), W: px(widths[i]), Y: y, H: chartBarH, Class: part.class, Title: fmt.Sprintf("%d %s", part.n, part.what)})
			x += widths[i]
		}
		c.Bars = append(c.Bars, b)
	}
	return c
}

func px(f float64) string {
	return strings.TrimSuffix(strings.TrimRight(fmt.Sprintf("%.2f", f), "0"), ".")
}

var htmlPage = template.Must(template.New("report").Funcs(template.FuncMap{
	"headline": func(r *Report) string { return r.headline() },
	"sync":     func(r *Report) string { return r.syncText() },
	"details":  func(f Finding) string { return f.details() },
	"time":     func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"dur":      func(ms int64) string { return (time.Duration(ms) * time.Millisecond).String() },
	"repair":   func(s string) string { return strings.ReplaceAll(s, "_", " ") },
}).Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>ferry verify: {{.R.Verdict}}</title>
<style>
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:2em auto;max-width:1100px;color:#1f2328;padding:0 1em}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:1.6em;border-bottom:1px solid #d0d7de;padding-bottom:.2em}
table{border-collapse:collapse;margin:.6em 0;width:100%}
th,td{border:1px solid #d0d7de;padding:.3em .6em;text-align:left;vertical-align:top}
th{background:#f6f8fa}td.n{text-align:right;font-variant-numeric:tabular-nums}
code{font:12px ui-monospace,SFMono-Regular,Menlo,monospace;background:#f6f8fa;padding:0 .2em;border-radius:3px}
.v{display:inline-block;padding:0 .5em;border-radius:1em;font-weight:600;font-size:.9em}
.v-consistent{background:#dafbe1;color:#116329}.v-in_flight{background:#ddf4ff;color:#0550ae}
.v-repaired{background:#fff8c5;color:#7d4e00}.v-differences{background:#ffebe9;color:#a40e26}.v-error{background:#ffebe9;color:#a40e26;border:1px solid #a40e26}
.meta td:first-child{width:9em;color:#57606a}
svg text{font:12px system-ui,sans-serif;fill:#1f2328}
rect.ok{fill:#2da44e}rect.diff{fill:#fb8f44}rect.missing{fill:#cf222e}rect.extra{fill:#8250df}rect.flight{fill:#54aeff}rect.unconv{fill:#953800}rect.dead{fill:#6e7781}rect.none{fill:#eaeef2}
.legend span{display:inline-block;margin-right:1em}.legend i{display:inline-block;width:.9em;height:.9em;margin-right:.3em;vertical-align:-.1em}
.err{color:#a40e26}
</style>
</head>
<body>
<h1>ferry verify: <span class="v v-{{.R.Verdict}}">{{.R.Verdict}}</span></h1>
<p>{{headline .R}}</p>
<table class="meta">
<tr><td>Source</td><td><code>{{.R.Source}}</code></td></tr>
<tr><td>Mapping</td><td><code>{{.R.Mapping}}</code></td></tr>
<tr><td>Snapshot LSN</td><td><code>{{.R.SnapshotLSN}}</code></td></tr>
<tr><td>Sync</td><td>{{sync .R}}</td></tr>
<tr><td>Checked</td><td>{{time .R.GeneratedAt}} in {{dur .R.DurationMS}}</td></tr>
</table>
<h2>Agreement per table</h2>
<svg xmlns="http://www.w3.org/2000/svg" width="{{.Chart.Width}}" height="{{.Chart.Height}}" viewBox="0 0 {{.Chart.Width}} {{.Chart.Height}}" role="img" aria-label="agreement per table">
{{- range .Chart.Bars}}
<text x="0" y="{{.TextY}}">{{.Label}}</text>
{{- range .Segs}}
<rect class="{{.Class}}" x="{{.X}}" y="{{.Y}}" width="{{.W}}" height="{{.H}}"><title>{{.Title}}</title></rect>
{{- end}}
<text x="{{.PctX}}" y="{{.TextY}}">{{.Percent}}</text>
{{- end}}
</svg>
<p class="legend"><span><i style="background:#2da44e"></i>agree</span><span><i style="background:#fb8f44"></i>differ</span><span><i style="background:#cf222e"></i>missing</span><span><i style="background:#8250df"></i>extra</span><span><i style="background:#54aeff"></i>in flight</span><span><i style="background:#953800"></i>unconvertible</span><span><i style="background:#6e7781"></i>dead-lettered</span></p>
<h2>Tables</h2>
<table>
<tr><th>Table</th><th>Target</th><th>Source rows</th><th>Items</th><th>Missing</th><th>Extra</th><th>Differing</th><th>In flight</th><th>Dead-lettered</th><th>Ranges (drilled)</th><th>Verdict</th></tr>
{{- range .R.Tables}}
<tr><td><code>{{.Table}}</code></td><td><code>{{.Target}}</code></td><td class="n">{{.SourceRows}}</td><td class="n">{{.TargetItems}}</td><td class="n">{{.Missing}}</td><td class="n">{{.Extra}}</td><td class="n">{{.Differing}}</td><td class="n">{{.InFlight}}</td><td class="n">{{.DeadLettered}}</td><td class="n">{{.Ranges}} ({{.RangesDrilled}})</td><td><span class="v v-{{.Verdict}}">{{.Verdict}}</span>{{if .Error}} <span class="err">{{.Error}}</span>{{end}}</td></tr>
{{- end}}
<tr><th>total</th><th></th><th class="n">{{.R.Totals.SourceRows}}</th><th class="n">{{.R.Totals.TargetItems}}</th><th class="n">{{.R.Totals.Missing}}</th><th class="n">{{.R.Totals.Extra}}</th><th class="n">{{.R.Totals.Differing}}</th><th class="n">{{.R.Totals.InFlight}}</th><th class="n">{{.R.Totals.DeadLettered}}</th><th></th><th><span class="v v-{{.R.Verdict}}">{{.R.Verdict}}</span></th></tr>
</table>
{{- if .Findings}}
<h2>Findings</h2>
{{template "findings" .Findings}}
{{- end}}
{{- if .R.Streams}}
<h2>Streams</h2>
<table>
<tr><th>Stream</th><th>Shards</th><th>Events</th><th>Rows</th><th>Source rows</th><th>Missing</th><th>Extra</th><th>Differing</th><th>Dead-lettered</th><th>Duplicates</th><th>Inversions</th><th>After snapshot</th><th>Verdict</th></tr>
{{- range .R.Streams}}
<tr><td><code>{{.Stream}}</code></td><td class="n">{{.Shards}}</td><td class="n">{{.Events}}</td><td class="n">{{.Keys}}</td><td class="n">{{.SourceRows}}</td><td class="n">{{.Missing}}</td><td class="n">{{.Extra}}</td><td class="n">{{.Differing}}</td><td class="n">{{.DeadLettered}}</td><td class="n">{{.Duplicates}}</td><td class="n">{{.Inversions}}</td><td class="n">{{.AfterSnapshot}}</td><td><span class="v v-{{.Verdict}}">{{.Verdict}}</span>{{if .Error}} <span class="err">{{.Error}}</span>{{end}}</td></tr>
{{- end}}
</table>
{{- range .R.Streams}}{{with .ExpiredNote}}
<p class="expired">{{.}}</p>
{{- end}}{{end}}
{{- range .R.Streams}}{{if .Findings}}
<h3>Stream <code>{{.Stream}}</code></h3>
{{template "findings" .Findings}}
{{- end}}{{end}}
{{- end}}
{{- with .R.Repair}}
<h2>Repair</h2>
<p>{{.Attempted}} attempted, {{.Fixed}} fixed, {{.NotFixed}} not fixed.</p>
{{- end}}
{{- range .R.Errors}}
<p class="err">{{.}}</p>
{{- end}}
<p>Exit code {{.R.ExitCode}}.</p>
</body>
</html>
{{define "findings"}}<table>
<tr><th>Table</th><th>Key</th><th>Kind</th><th>Details</th><th>Repair</th></tr>
{{- range .}}
<tr><td><code>{{.Table}}</code></td><td><code>{{.Key}}</code></td><td>{{.Kind}}</td><td>{{details .}}</td><td>{{repair .Repair}}</td></tr>
{{- end}}
</table>{{end}}`))
