package transform

import (
	"github.com/ferry-migrate/ferry/extract"
	"github.com/ferry-migrate/ferry/mappings"
)

type tplPart struct {
	lit string
	col int // -1 for a literal
}

// template is a key template compiled to source column indexes. In a
// template of several placeholders every value is escaped (esc, with the
// separator bytes seps; see mappings.Template.Separators), so that the
// rendered key is injective.
type template struct {
	parts []tplPart
	conv  []converter // per source column
	esc   bool
	seps  string
	src   mappings.Template
}

func compileTemplate(t mappings.Template, st *extract.Table, conv []converter, lookup func(string, mappings.Pos, string) int) template {
	out := template{conv: conv, esc: t.Escapes(), seps: t.Separators(), src: t}
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
	var e rowEnc
	e.init(row, t.conv)
	return t.renderEnc(&e)
}

// renderEnc is render with the row's encoder: the string is written into its
// arena, and a template of one column is that column's canonical string.
func (t template) renderEnc(e *rowEnc) (string, bool, error) {
	if len(t.parts) == 1 && t.parts[0].col < 0 {
		return t.parts[0].lit, true, nil
	}
	// Every placeholder's canonical form first: computing one may append to
	// the arena, which must not happen inside the string being built.
	var one string
	for _, p := range t.parts {
		if p.col < 0 {
			continue
		}
		v := e.row[p.col]
		if v.Null || v.Unchanged {
			return "", false, nil
		}
		s, err := e.canonical(p.col)
		if err != nil {
			return "", false, &ValueError{Column: t.conv[p.col].name, Reason: err.Error()}
		}
		one = s
	}
	if len(t.parts) == 1 {
		return one, true, nil
	}
	start := e.mark()
	for _, p := range t.parts {
		if p.col < 0 {
			e.buf = append(e.buf, p.lit...)
			continue
		}
		s, _ := e.canonical(p.col) // known: computed above
		if t.esc {
			e.buf = mappings.AppendEscaped(e.buf, s, t.seps)
		} else {
			e.buf = append(e.buf, s...)
		}
	}
	return e.str(start), true, nil
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

// Values inverts a rendered key attribute: the source column names of its
// template and their canonical values, in template order. It is the exact
// inverse of the rendering (escapes removed), for keys ferry wrote.
func (k KeyAttr) Values(rendered string) (cols []string, vals []string, err error) {
	vals, err = k.tpl.src.Values(rendered)
	if err != nil {
		return nil, nil, err
	}
	return k.tpl.src.Columns(), vals, nil
}
