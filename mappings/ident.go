package mappings

import (
	"fmt"
	"strings"
)

// Names of source tables and template columns are plain identifiers (see
// isIdent) or, for any other name, quoted as in SQL: between double quotes,
// with a double quote inside written twice ("Order Lines", "a""b"). A quoted
// name is taken exactly as written, with no case folding; so is a plain one.

// QuoteIdent returns name as a mapping writes it: as it is when it is a plain
// identifier, else quoted ("Order ID", "a-b", "x""y").
func QuoteIdent(name string) string {
	if isIdent(name) {
		return name
	}
	return `"` + strings.ReplaceAll(name, `"`, `""`) + `"`
}

// QuoteSource returns the source name of table schema.name as a mapping
// writes it: "name" for the public schema, "schema.name" otherwise, each part
// quoted when it is not a plain identifier.
func QuoteSource(schema, name string) string {
	if schema == "public" {
		return QuoteIdent(name)
	}
	return QuoteIdent(schema) + "." + QuoteIdent(name)
}

// scanIdent reads one name at the start of s: a quoted name (its closing
// quote included) or a run of bytes up to the first byte of stop. It returns
// the name, the rest of s, and whether the name was quoted; err when a quoted
// name is not closed or is empty.
func scanIdent(s, stop string) (name, rest string, quoted bool, err error) {
	if !strings.HasPrefix(s, `"`) {
		i := strings.IndexAny(s, stop)
		if i < 0 {
			return s, "", false, nil
		}
		return s[:i], s[i:], false, nil
	}
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		if s[i] != '"' {
			b.WriteByte(s[i])
			continue
		}
		if i+1 < len(s) && s[i+1] == '"' {
			b.WriteByte('"')
			i++
			continue
		}
		if b.Len() == 0 {
			return "", "", true, fmt.Errorf("empty quoted name \"\"")
		}
		return b.String(), s[i+1:], true, nil
	}
	return "", "", true, fmt.Errorf("unclosed quote in %s (write \"\" for a quote inside a quoted name)", describeScalar(s))
}

// parseSource splits a source table name, "table" or "schema.table", whose
// parts are plain identifiers or quoted names, into schema ("public" when
// omitted) and table name, unquoted.
func parseSource(s string) (schema, name string, err error) {
	var parts []string
	rest := s
	for {
		part, r, quoted, err := scanIdent(rest, ".")
		if err != nil {
			return "", "", err
		}
		if !quoted && !isIdent(part) {
			return "", "", fmt.Errorf("%q is not a plain name (quote it: %s)", part, QuoteIdent(part))
		}
		parts = append(parts, part)
		if r == "" {
			break
		}
		if r[0] != '.' || len(r) == 1 {
			return "", "", fmt.Errorf("expected \".\" and a table name after %q", part)
		}
		rest = r[1:]
	}
	switch len(parts) {
	case 1:
		return "public", parts[0], nil
	case 2:
		return parts[0], parts[1], nil
	}
	return "", "", fmt.Errorf("%d dot-separated names; quote a name that contains a dot", len(parts))
}

// CheckStreamName returns an error when s is not a Kinesis stream name a
// mapping accepts (1-128 characters: letters, digits, _ - .; not "no", "off"
// or "none", which read as meaning no stream).
func CheckStreamName(s string) error {
	switch strings.ToLower(s) {
	case "no", "off", "none":
		return fmt.Errorf("%q reads as no stream in a mapping; choose another name", s)
	}
	if !validAWSName(s, 1, 128) {
		return fmt.Errorf("%q is not a valid Kinesis stream name (1-128 characters: letters, digits, _ - .)", s)
	}
	return nil
}
