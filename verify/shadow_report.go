package verify

import (
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"strings"
	"text/tabwriter"
)

// WriteShadow writes the report in a format: text, json, markdown or html.
func WriteShadow(w io.Writer, r *ShadowReport, format string) error {
	switch format {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	case "markdown":
		return shadowMarkdown(w, r)
	case "html":
		return shadowHTML.Execute(w, r)
	case "text", "":
		return shadowText(w, r)
	}
	return fmt.Errorf("unknown format %q (text, json, markdown, html)", format)
}

func paramString(p map[string]string) string { return itemKeyString(p) }

func shadowText(w io.Writer, r *ShadowReport) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "pattern\tsamples\tagreeing\tdiffering\tin flight\tRCU\titems read/returned\t")
	for _, p := range r.Patterns {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%.1f\t%d/%d\t\n", p.Name, p.Samples, p.Agreeing, p.Differing, p.InFlight, p.ConsumedRCU, p.ItemsRead, p.ItemsReturned)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, p := range r.Patterns {
		if p.Error != "" {
			fmt.Fprintf(w, "%s: error: %s\n", p.Name, p.Error)
		}
		for _, d := range p.Differences {
			fmt.Fprintf(w, "%s (%s) differs for %s: %s\n", p.Name, p.Call, paramString(d.Params), d.Detail)
		}
		if p.Note != "" {
			fmt.Fprintf(w, "%s: note: %s\n", p.Name, p.Note)
		}
	}
	_, err := fmt.Fprintf(w, "verdict: %s\n", r.Verdict)
	return err
}

func shadowMarkdown(w io.Writer, r *ShadowReport) error {
	fmt.Fprintf(w, "# ferry shadow: %s %s\n\n", verdictEmoji[r.Verdict], r.Verdict)
	fmt.Fprintln(w, "| pattern | call | samples | agreeing | differing | in flight | RCU | items read / returned |")
	fmt.Fprintln(w, "|---|---|---:|---:|---:|---:|---:|---:|")
	for _, p := range r.Patterns {
		fmt.Fprintf(w, "| `%s` | `%s` | %d | %d | %d | %d | %.1f | %d / %d |\n", p.Name, strings.ReplaceAll(p.Call, "|", "\\|"), p.Samples, p.Agreeing, p.Differing, p.InFlight, p.ConsumedRCU, p.ItemsRead, p.ItemsReturned)
	}
	for _, p := range r.Patterns {
		for _, d := range p.Differences {
			fmt.Fprintf(w, "\n- `%s` differs for %s: %s", p.Name, paramString(d.Params), d.Detail)
		}
		if p.Error != "" {
			fmt.Fprintf(w, "\n- `%s`: error: %s", p.Name, p.Error)
		}
		if p.Note != "" {
			fmt.Fprintf(w, "\n- `%s`: %s", p.Name, p.Note)
		}
	}
	_, err := fmt.Fprintln(w)
	return err
}

var shadowHTML = template.Must(template.New("shadow").Funcs(template.FuncMap{"params": paramString}).Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>ferry shadow: {{.Verdict}}</title>
<style>body{font-family:sans-serif}td,th{padding:2px 8px;border-bottom:1px solid #ddd}.n{text-align:right}.differences{color:#a00}</style></head>
<body><h1>ferry shadow: {{.Verdict}}</h1>
<table><tr><th>pattern</th><th>call</th><th>samples</th><th>agreeing</th><th>differing</th><th>in flight</th><th>RCU</th><th>items read / returned</th></tr>
{{range .Patterns}}<tr><td><code>{{.Name}}</code></td><td><code>{{.Call}}</code></td><td class="n">{{.Samples}}</td><td class="n">{{.Agreeing}}</td><td class="n">{{.Differing}}</td><td class="n">{{.InFlight}}</td><td class="n">{{printf "%.1f" .ConsumedRCU}}</td><td class="n">{{.ItemsRead}} / {{.ItemsReturned}}</td></tr>
{{end}}</table>
<ul>{{range $p := .Patterns}}{{range .Differences}}<li class="differences"><code>{{$p.Name}}</code> differs for {{params .Params}}: {{.Detail}}</li>{{end}}{{if .Error}}<li class="differences"><code>{{.Name}}</code>: error: {{.Error}}</li>{{end}}{{if .Note}}<li><code>{{.Name}}</code>: {{.Note}}</li>{{end}}{{end}}</ul>
</body></html>
`))
