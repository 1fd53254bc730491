package transform

import "fmt"

// arrayElem is one element of a parsed PostgreSQL array literal.
type arrayElem struct {
	text string
	null bool
	sub  []arrayElem // nested dimension
}

// parseArray parses PostgreSQL's array output ("{a,\"b c\",NULL}", nested for
// more dimensions), keeping element order. Element text is unescaped.
func parseArray(s string) ([]arrayElem, error) {
	if len(s) > 0 && s[0] == '[' { // explicit bounds: "[0:1]={a,b}"
		for i := 0; i < len(s); i++ {
			if s[i] == '=' {
				s = s[i+1:]
				break
			}
		}
	}
	elems, rest, err := parseArrayLevel(s)
	if err != nil {
		return nil, fmt.Errorf("array %q: %w", truncate(s, 60), err)
	}
	if rest != "" {
		return nil, fmt.Errorf("array %q: trailing text", truncate(s, 60))
	}
	return elems, nil
}

func parseArrayLevel(s string) ([]arrayElem, string, error) {
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
			sub, rest, err := parseArrayLevel(s)
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
			for i < len(s) && s[i] != ',' && s[i] != '}' {
				i++
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
		if s[0] != ',' {
			return nil, s, fmt.Errorf("expected ',' or '}'")
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
