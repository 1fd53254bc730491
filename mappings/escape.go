package mappings

import (
	"fmt"
	"strings"
)

// Key templates must be injective: two different rows must never render the
// same key, or one item silently replaces another. A template with one
// placeholder is injective as it is (a value between a fixed prefix and a fixed
// suffix). With several, a value could contain the literal that follows its
// placeholder ("{a}#{b}" renders both ("x#y","z") and ("x","y#z") as
// "x#y#z"), so in such templates every value is escaped: '\' and each
// separator byte (the first byte of a literal that follows a placeholder) are
// preceded by '\'. The first unescaped separator then marks the end of a value,
// and Values inverts a rendered key exactly.
//
// Written by hand: it is a few lines, and the exact rule is part of ferry's
// data format (documented in the README), so it must not change with a
// library's version.

// EscapeByte is the byte that escapes separators (and itself) in the values of
// templates with several placeholders.
const EscapeByte = '\\'

// Separators returns the bytes that are escaped in t's values: the first byte
// of every literal that follows a placeholder. It is empty when t has fewer
// than two placeholders: then values are written as they are.
func (t Template) Separators() string {
	if len(t.Columns()) < 2 {
		return ""
	}
	var seps []byte
	for i := 1; i < len(t.Parts); i++ {
		if t.Parts[i-1].Column != "" && t.Parts[i].Column == "" && t.Parts[i].Literal != "" {
			c := t.Parts[i].Literal[0]
			if strings.IndexByte(string(seps), c) < 0 {
				seps = append(seps, c)
			}
		}
	}
	return string(seps)
}

// Escapes reports whether t's values are escaped (it has several placeholders).
func (t Template) Escapes() bool { return len(t.Columns()) >= 2 }

// NeedsEscape reports whether v contains a byte that AppendEscaped changes.
func NeedsEscape(v, seps string) bool {
	for i := 0; i < len(v); i++ {
		if v[i] == EscapeByte || strings.IndexByte(seps, v[i]) >= 0 {
			return true
		}
	}
	return false
}

// AppendEscaped appends v to dst with EscapeByte and every byte of seps
// preceded by EscapeByte.
func AppendEscaped(dst []byte, v, seps string) []byte {
	// Runs without escapes are copied whole: keys are rendered per row on
	// the backfill's hot path, and most values have nothing to escape.
	start := 0
	for i := 0; i < len(v); i++ {
		if c := v[i]; c == EscapeByte || isSep(c, seps) {
			dst = append(dst, v[start:i]...)
			dst = append(dst, EscapeByte)
			start = i
		}
	}
	return append(dst, v[start:]...)
}

// isSep reports whether c is one of seps (a few bytes: a loop beats a call).
func isSep(c byte, seps string) bool {
	for j := 0; j < len(seps); j++ {
		if seps[j] == c {
			return true
		}
	}
	return false
}

// separatorProblem returns why t cannot be escaped unambiguously: a literal
// after a placeholder that starts with the escape byte itself, or with a
// byte outside ASCII (part of a multi-byte character, which a value could
// share the first byte of).
func (t Template) separatorProblem() string {
	if !t.Escapes() {
		return ""
	}
	for i := 1; i < len(t.Parts); i++ {
		if t.Parts[i-1].Column == "" || t.Parts[i].Column != "" || t.Parts[i].Literal == "" {
			continue
		}
		switch c := t.Parts[i].Literal[0]; {
		case c == EscapeByte:
			return fmt.Sprintf("the literal %q after {%s} starts with %q, which ferry uses to escape separators in values", t.Parts[i].Literal, t.Parts[i-1].Column, string(EscapeByte))
		case c >= 0x80:
			return fmt.Sprintf("the literal %q after {%s} starts with a non-ASCII character; start it with an ASCII separator such as \"#\"", t.Parts[i].Literal, t.Parts[i-1].Column)
		}
	}
	return ""
}

// Values inverts a rendered template: it returns the placeholder values in
// order (unescaped), or an error when rendered is not a rendering of t.
// For every template the parser accepts, Values(render(vs)) == vs.
func (t Template) Values(rendered string) ([]string, error) {
	esc := t.Escapes()
	var out []string
	rest := rendered
	for i, p := range t.Parts {
		if p.Column == "" {
			if !strings.HasPrefix(rest, p.Literal) {
				return nil, fmt.Errorf("key %q does not match template %q: expected %q at offset %d", rendered, t.Raw, p.Literal, len(rendered)-len(rest))
			}
			rest = rest[len(p.Literal):]
			continue
		}
		if !esc {
			// The only placeholder: everything up to the literal suffix.
			var suffix strings.Builder
			for _, q := range t.Parts[i+1:] {
				suffix.WriteString(q.Literal)
			}
			if !strings.HasSuffix(rest, suffix.String()) || len(rest) < suffix.Len() {
				return nil, fmt.Errorf("key %q does not match template %q: expected suffix %q", rendered, t.Raw, suffix.String())
			}
			out = append(out, rest[:len(rest)-suffix.Len()])
			rest = rest[len(rest)-suffix.Len():]
			continue
		}
		var end byte
		last := i == len(t.Parts)-1
		if !last {
			end = t.Parts[i+1].Literal[0]
		}
		var v []byte
		j := 0
		for ; j < len(rest); j++ {
			c := rest[j]
			if c == EscapeByte {
				if j+1 == len(rest) {
					return nil, fmt.Errorf("key %q does not match template %q: a lone escape at its end", rendered, t.Raw)
				}
				j++
				v = append(v, rest[j])
				continue
			}
			if !last && c == end {
				break
			}
			v = append(v, c)
		}
		if !last && j == len(rest) {
			return nil, fmt.Errorf("key %q does not match template %q: no %q after {%s}", rendered, t.Raw, string(end), p.Column)
		}
		out = append(out, string(v))
		rest = rest[j:]
	}
	if rest != "" {
		return nil, fmt.Errorf("key %q does not match template %q: %q left over", rendered, t.Raw, rest)
	}
	return out, nil
}

// affixes returns t's fixed prefix and suffix; exact is true when t has no
// placeholder (prefix is then the whole rendered string).
func (t Template) affixes() (prefix, suffix string, exact bool) {
	if len(t.Columns()) == 0 {
		var b strings.Builder
		for _, p := range t.Parts {
			b.WriteString(p.Literal)
		}
		return b.String(), b.String(), true
	}
	if p := t.Parts[0]; p.Column == "" {
		prefix = p.Literal
	}
	if p := t.Parts[len(t.Parts)-1]; p.Column == "" {
		suffix = p.Literal
	}
	return prefix, suffix, false
}

// Disjoint reports whether no rendering of a can equal a rendering of b,
// judged from their fixed prefixes and suffixes (conservative: false means
// "not proven"). Two source tables may share a DynamoDB table only when their
// keys are disjoint this way, e.g. "RENTAL#{rental_id}" and
// "PAYMENT#{payment_id}".
func Disjoint(a, b Template) bool {
	pa, sa, ea := a.affixes()
	pb, sb, eb := b.affixes()
	fits := func(lit, prefix, suffix string) bool {
		return len(lit) >= len(prefix)+len(suffix) && strings.HasPrefix(lit, prefix) && strings.HasSuffix(lit, suffix)
	}
	switch {
	case ea && eb:
		return pa != pb
	case ea:
		return !fits(pa, pb, sb)
	case eb:
		return !fits(pb, pa, sa)
	}
	prefixesAgree := strings.HasPrefix(pa, pb) || strings.HasPrefix(pb, pa)
	suffixesAgree := strings.HasSuffix(sa, sb) || strings.HasSuffix(sb, sa)
	return !prefixesAgree || !suffixesAgree
}

// Render fills the template's placeholders with values (by name), escaped
// as item keys are (see Separators).
func (t Template) Render(values map[string]string) string {
	seps := t.Separators()
	var b []byte
	for _, p := range t.Parts {
		if p.Column == "" {
			b = append(b, p.Literal...)
		} else if seps != "" {
			b = AppendEscaped(b, values[p.Column], seps)
		} else {
			b = append(b, values[p.Column]...)
		}
	}
	return string(b)
}
