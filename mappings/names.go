package mappings

import (
	"strings"

	"gopkg.in/yaml.v3"
)

// sourceName checks "table" or "schema.table": plain identifiers or quoted
// names ("Order Lines", public."a.b"), see parseSource.
func (p *parser) sourceName(n *yaml.Node, s string) bool {
	if _, _, err := parseSource(s); err != nil {
		p.errorf(n, "source %q must be a plain table name, \"table\" or \"schema.table\", with a name that is not a plain identifier in double quotes as in SQL (%v)", s, err)
		return false
	}
	return true
}

func (p *parser) tableName(n *yaml.Node, s, noun string) bool {
	if validAWSName(s, 3, 255) {
		return true
	}
	p.errorf(n, "%s: %q is not a valid DynamoDB table name (3-255 characters: letters, digits, _ - .)", noun, s)
	return false
}

func (p *parser) streamName(n *yaml.Node, s, noun string) bool {
	switch strings.ToLower(s) {
	case "no", "off", "none":
		p.errorf(n, "%s: %q reads as a stream name; write false for no stream", noun, s)
		return false
	}
	if validAWSName(s, 1, 128) {
		return true
	}
	p.errorf(n, "%s: %q is not a valid Kinesis stream name (1-128 characters: letters, digits, _ - .)", noun, s)
	return false
}

// validAWSName reports whether s is min..max characters of [A-Za-z0-9_.-], the
// alphabet of DynamoDB table and index names and Kinesis stream names.
func validAWSName(s string, min, max int) bool {
	if len(s) < min || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// suggest returns "; did you mean X?" for the known word closest to s, when it
// is close enough to be a likely typo, else "".
func suggest(s string, known []string) string {
	_, hint := suggestion(s, known)
	return hint
}

// suggestion returns the known word closest to s and the hint naming it, or
// "", "" when none is close enough to be a likely typo.
func suggestion(s string, known []string) (best, hint string) {
	bestD := -1
	ls := strings.ToLower(s)
	for _, k := range known {
		if d := editDistance(ls, k); bestD < 0 || d < bestD {
			best, bestD = k, d
		}
	}
	if bestD < 0 || bestD > 2 || bestD > len(best)/2 {
		return "", ""
	}
	return best, "; did you mean " + best + "?"
}

// editDistance is the Levenshtein distance between a and b, in runes.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}
