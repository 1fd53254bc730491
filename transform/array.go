package transform

import "fmt"

// arrayElem is one element of a parsed PostgreSQL array literal.
type arrayElem struct {
	text string
	null bool
	sub  []arrayElem // nested dimension
}

// parseArray is parseArrayDelim with the ',' delimiter of every built-in
// element type but box.
func parseArray(s string) ([]arrayElem, error) { return parseArrayDelim(s, ',') }

// parseArrayDelim parses PostgreSQL's array output ("{a,\"b c\",NULL}", nested
// for more dimensions), keeping element order. Element text is unescaped.
//
// An array whose lower bound is not 1 is written with its bounds
// ("[5:6]={50,60}"); a DynamoDB list or JSON array has nowhere to keep them, so
// such a value is refused rather than shifted to start at 1.
func parseArrayDelim(s string, delim byte) ([]arrayElem, error) {
	if len(s) > 0 && s[0] == '[' {
		bounds := s
		for i := 0; i < len(s); i++ {
			if s[i] == '=' {
				bounds = s[:i]
				break
			}
		}
		return nil, fmt.Errorf("array with bounds %s (a lower bound other than 1), which a list cannot carry: exclude the column or store its arrays from index 1", truncate(bounds, 60))
	}
	elems, rest, err := parseArrayLevel(s, delim)
	if err != nil {
		return nil, fmt.Errorf("array %q: %w", truncate(s, 60), err)
	}
	if rest != "" {
		return nil, fmt.Errorf("array %q: trailing text", truncate(s, 60))
	}
	return elems, nil
}

func parseArrayLevel(s string, delim byte) ([]arrayElem, string, error) {
	if len(s) == 0 || s[0] != '{' {
		return nil, s, fmt.Errorf("expected '{'")
	}
	s = s[1:]
	elems := []arrayElem{}
	if len(s) > 0 && s[0] == '}' {
		return elems, s[1:], nil
	}
	for {
		if len(s) == 0 {
			return nil, s, fmt.Errorf("unterminated")
		}
		var e arrayElem
		switch s[0] {
		case '{':
			sub, rest, err := parseArrayLevel(s, delim)
			if err != nil {
				return nil, s, err
			}
			e.sub, s = sub, rest
		case '"':
			var buf []byte
			i := 1
			for ; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' && i+1 < len(s) {
					i++
				}
				buf = append(buf, s[i])
			}
			if i >= len(s) {
				return nil, s, fmt.Errorf("unterminated quoted element")
			}
			e.text, s = string(buf), s[i+1:]
		default:
			i := 0
			for i < len(s) && s[i] != delim && s[i] != '}' {
				if s[i] == '"' || s[i] == '\\' || s[i] == '{' {
					return nil, s, fmt.Errorf("unexpected %q in an unquoted element", s[i])
				}
				i++
			}
			if i == 0 {
				return nil, s, fmt.Errorf("empty unquoted element")
			}
			e.text, s = s[:i], s[i:]
			if e.text == "NULL" {
				e.null, e.text = true, ""
			}
		}
		elems = append(elems, e)
		if len(s) == 0 {
			return nil, s, fmt.Errorf("unterminated")
		}
		if s[0] == '}' {
			return elems, s[1:], nil
		}
		if s[0] != delim {
			return nil, s, fmt.Errorf("expected %q or '}'", delim)
		}
		s = s[1:]
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
