package mappings

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// ParseTemplate parses a key or partition-key template: literal text and {column}
// placeholders, with "{{" and "}}" standing for literal braces. A column is a plain
// identifier: a letter or '_' followed by letters, digits, '_' or '$'; any other
// column name is quoted as in SQL, {"Order ID"} ("" for a quote inside it). An
// empty template, an unclosed '{', a lone '}', an empty "{}" or {""}, an unclosed
// quote and a placeholder that is neither a plain identifier nor quoted are
// errors; the error is an *Error at pos.
func ParseTemplate(raw string, pos Pos) (Template, error) {
	t := Template{Raw: raw, Pos: pos}
	if raw == "" {
		return t, Errorf(pos, "empty template")
	}
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			t.Parts = append(t.Parts, Part{Literal: lit.String()})
			lit.Reset()
		}
	}
	for i := 0; i < len(raw); {
		c := raw[i]
		switch {
		case c == '{' && i+1 < len(raw) && raw[i+1] == '{':
			lit.WriteByte('{')
			i += 2
		case c == '}' && i+1 < len(raw) && raw[i+1] == '}':
			lit.WriteByte('}')
			i += 2
		case c == '}':
			return Template{Raw: raw, Pos: pos}, Errorf(pos,
				"bad template %q: unbalanced \"}\" at offset %d (write \"}}\" for a literal brace)", raw, i)
		case c == '{' && i+1 < len(raw) && raw[i+1] == '"':
			// {"Order ID"}: a quoted column name, for a name that is not a
			// plain identifier ("" is a quote inside it).
			name, rest, _, err := scanIdent(raw[i+1:], "")
			if err != nil {
				return Template{Raw: raw, Pos: pos}, Errorf(pos, "bad template %q: placeholder at offset %d: %v", raw, i, err)
			}
			if !strings.HasPrefix(rest, "}") {
				return Template{Raw: raw, Pos: pos}, Errorf(pos,
					"bad template %q: quoted placeholder at offset %d must end with \"}\" right after its closing quote", raw, i)
			}
			flush()
			t.Parts = append(t.Parts, Part{Column: name})
			i = len(raw) - len(rest) + 1
		case c == '{':
			end := strings.IndexByte(raw[i+1:], '}')
			if end < 0 {
				return Template{Raw: raw, Pos: pos}, Errorf(pos,
					"bad template %q: unclosed \"{\" at offset %d (write \"{{\" for a literal brace)", raw, i)
			}
			name := raw[i+1 : i+1+end]
			if name == "" {
				return Template{Raw: raw, Pos: pos}, Errorf(pos,
					"bad template %q: empty placeholder \"{}\" at offset %d", raw, i)
			}
			if !isIdent(name) {
				return Template{Raw: raw, Pos: pos}, Errorf(pos,
					"bad template %q: placeholder {%s} is not a plain column name (a letter or _ followed by letters, digits, _ or $; quote any other name: {%s})", raw, name, QuoteIdent(name))
			}
			flush()
			t.Parts = append(t.Parts, Part{Column: name})
			i += end + 2
		default:
			lit.WriteByte(c)
			i++
		}
	}
	flush()
	return t, nil
}

// adjacentColumns returns the first two placeholders that follow each other with
// no literal between them ("{a}{b}"), which makes the rendered value ambiguous.
func (t Template) adjacentColumns() (a, b string, ok bool) {
	for i := 1; i < len(t.Parts); i++ {
		if t.Parts[i-1].Column != "" && t.Parts[i].Column != "" {
			return t.Parts[i-1].Column, t.Parts[i].Column, true
		}
	}
	return "", "", false
}

// isIdent reports whether s is a plain (unquoted) SQL identifier: a letter or '_',
// then letters, digits, '_' or '$'. Letters include non-ASCII letters, as in
// PostgreSQL.
func isIdent(s string) bool {
	if s == "" || !utf8.ValidString(s) {
		return false
	}
	for i, r := range s {
		switch {
		case r == '_' || unicode.IsLetter(r):
		case i > 0 && (r == '$' || unicode.IsDigit(r)):
		default:
			return false
		}
	}
	return true
}

// quoteList formats names for a "(known: a, b, c)" hint.
func quoteList(names []string) string { return strings.Join(names, ", ") }

// describeScalar quotes a scalar for a message, shortened when long.
func describeScalar(v string) string {
	const max = 40
	if utf8.RuneCountInString(v) > max {
		r := []rune(v)
		v = string(r[:max]) + "…"
	}
	return fmt.Sprintf("%q", v)
}
