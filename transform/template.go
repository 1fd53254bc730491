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
	// escaped marks the bytes mappings.AppendEscaped escapes (seps and the
	// escape byte): a value without any is appended whole.
	escaped *[256]bool
	// slot numbers the distinct templates of a table (a rental's sort key
	// and GSI sort keys are often one template): a row renders each once.
	// -1: not cached.
	slot int
}

func compileTemplate(t mappings.Template, st *extract.Table, conv []converter, lookup func(string, mappings.Pos, string) int) template {
	out := template{conv: conv, esc: t.Escapes(), seps: t.Separators(), src: t, slot: -1}
	if out.esc {
		out.escaped = new([256]bool)
		out.escaped[mappings.EscapeByte] = true
		for i := 0; i < len(out.seps); i++ {
			out.escaped[out.seps[i]] = true
		}
	}
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
func (t *template) render(row extract.Row) (string, bool, error) {
	if len(t.parts) == 1 && t.parts[0].col < 0 {
		return t.parts[0].lit, true, nil
	}
	var e rowEnc
	e.init(row, t.conv)
	return t.renderEnc(&e)
}

// renderEnc is render with the row's encoder: the string is written into its
// arena, and a template of one column is that column's canonical string.
func (t *template) renderEnc(e *rowEnc) (string, bool, error) {
	if len(t.parts) == 1 && t.parts[0].col < 0 {
		return t.parts[0].lit, true, nil
	}
	if t.slot >= 0 && t.slot < len(e.tpls) && e.tpls[t.slot].ok {
		return e.tpls[t.slot].s, true, nil
	}
	s, ok, err := t.renderNew(e)
	if ok && t.slot >= 0 && t.slot < len(e.tpls) {
		e.tpls[t.slot] = renderedTpl{s: s, ok: true}
	}
	return s, ok, err
}

func (t *template) renderNew(e *rowEnc) (string, bool, error) {
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
		if t.esc && t.needsEscape(s) {
			e.buf = mappings.AppendEscaped(e.buf, s, t.seps)
		} else {
			e.buf = append(e.buf, s...)
		}
	}
	return e.str(start), true, nil
}

// needsEscape reports whether v has a byte AppendEscaped escapes.
func (t *template) needsEscape(v string) bool {
	for i := 0; i < len(v); i++ {
		if t.escaped[v[i]] {
			return true
		}
	}
	return false
}

// renderedTpl is a template a row rendered (rowEnc.tpls).
type renderedTpl struct {
	s  string
	ok bool
}

// columns lists the source column indexes the template reads.
func (t *template) columns() []int {
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
