package transform

import (
	"strings"

	"github.com/ferry-migrate/ferry/extract"
	"github.com/ferry-migrate/ferry/mappings"
)

type tplPart struct {
	lit string
	col int // -1 for a literal
}

// template is a key template compiled to source column indexes.
type template struct {
	parts []tplPart
	conv  []converter // per source column
}

func compileTemplate(t mappings.Template, st *extract.Table, conv []converter, lookup func(string, mappings.Pos, string) int) template {
	out := template{conv: conv}
	for _, p := range t.Parts {
		if p.Column == "" {
			out.parts = append(out.parts, tplPart{lit: p.Literal, col: -1})
			continue
		}
		i := lookup(p.Column, t.Pos, "template "+quote(t.Raw))
		out.parts = append(out.parts, tplPart{col: i})
	}
	return out
}

func quote(s string) string { return `"` + s + `"` }

// render builds the template's string; ok=false when a placeholder is NULL or an
// unchanged TOAST value (the attribute cannot be built from this row).
func (t template) render(row extract.Row) (string, bool, error) {
	if len(t.parts) == 1 && t.parts[0].col < 0 {
		return t.parts[0].lit, true, nil
	}
	var b strings.Builder
	for _, p := range t.parts {
		if p.col < 0 {
			b.WriteString(p.lit)
			continue
		}
		v := row[p.col]
		if v.Null || v.Unchanged {
			return "", false, nil
		}
		s, err := canonical(t.conv[p.col].kind, v.Text)
		if err != nil {
			return "", false, &ValueError{Column: t.conv[p.col].name, Reason: err.Error()}
		}
		b.WriteString(s)
	}
	return b.String(), true, nil
}

// columns lists the source column indexes the template reads.
func (t template) columns() []int {
	var out []int
	for _, p := range t.parts {
		if p.col >= 0 {
			out = append(out, p.col)
		}
	}
	return out
}
