package mappings

import (
	"bytes"
	"errors"
	"io"
	"os"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// The keys each part of the format accepts, in the order the messages list them.
var (
	topKeys     = []string{"version", "defaults", "tables", "access_patterns"}
	defaultKeys = []string{"target", "stream", "on_schema_change", "partitions_detached", "keep_dropped"}
	tableKeys   = []string{"source", "target", "partition_key", "sort_key", "gsis", "exclude", "types", "stream", "on_schema_change", "partitions_detached", "keep_dropped"}
	keyKeys     = []string{"name", "template"}
	gsiKeys     = []string{"name", "partition_key", "sort_key", "when"}
	streamKeys  = []string{"name", "partition_key"}
	conversions = []string{string(ConvAuto), string(ConvString), string(ConvNumber), string(ConvEpochMS), string(ConvBinary), string(ConvMap)}
)

// Load reads and parses the mapping file at path (see Parse); messages name the
// path as given. A file that cannot be read gives the os error as is.
func Load(path string) (*Mapping, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, data)
}

// Parse parses a mapping file strictly and validates it (see Mapping.Validate).
// file names the file in messages. On failure it returns a nil Mapping and every
// problem found, each an *Error ("file:line: message"), joined with errors.Join in
// file order; Errors recovers them.
func Parse(file string, data []byte) (*Mapping, error) {
	root, err := decodeYAML(file, data)
	if err != nil {
		return nil, joinErrors([]*Error{err})
	}
	p := &parser{file: file}
	m, sound := p.mapping(root)
	errs := p.errs
	if m != nil {
		errs = append(errs, validate(m.Tables, sound)...)
		errs = append(errs, checkAccessPatterns(m.AccessPatterns, m.Tables)...)
	}
	if len(errs) > 0 {
		return nil, joinErrors(errs)
	}
	m.Text = data
	return m, nil
}

// Errors returns the *Error values in err (as returned by Parse, Load and
// Validate), in order. Errors that are not *Error are left out.
func Errors(err error) []*Error {
	var out []*Error
	var walk func(error)
	walk = func(err error) {
		if err == nil {
			return
		}
		if e, ok := err.(*Error); ok {
			out = append(out, e)
			return
		}
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				walk(e)
			}
			return
		}
		walk(errors.Unwrap(err))
	}
	walk(err)
	return out
}

// joinErrors sorts errs by place (keeping the order of discovery at one place),
// drops repeats and joins them; nil when there are none.
func joinErrors(errs []*Error) error {
	if len(errs) == 0 {
		return nil
	}
	errs = slices.Clone(errs)
	sort.SliceStable(errs, func(i, j int) bool {
		a, b := errs[i].Pos, errs[j].Pos
		if a.File != b.File {
			return a.File < b.File
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Col < b.Col
	})
	list := make([]error, 0, len(errs))
	seen := map[string]bool{}
	for _, e := range errs {
		if s := e.Error(); !seen[s] {
			seen[s] = true
			list = append(list, e)
		}
	}
	return errors.Join(list...)
}

// decodeYAML reads the one YAML document of data into a node tree.
func decodeYAML(file string, data []byte) (root *yaml.Node, err *Error) {
	defer func() {
		// yaml.v3 has panicked on hostile input before; a mapping file must
		// never take the process down.
		if r := recover(); r != nil {
			root, err = nil, Errorf(Pos{File: file, Line: 1}, "invalid YAML: %v", r)
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if e := dec.Decode(&doc); e != nil {
		if e == io.EOF {
			return nil, Errorf(Pos{File: file}, "the file is empty: a mapping needs version and tables")
		}
		return nil, yamlError(file, data, e)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		return nil, Errorf(Pos{File: file}, "the file is empty: a mapping needs version and tables")
	}
	var next yaml.Node
	switch e := dec.Decode(&next); {
	case e == io.EOF:
	case e != nil:
		return nil, yamlError(file, data, e)
	default:
		n := &next
		if len(next.Content) > 0 {
			n = next.Content[0]
		}
		return nil, Errorf(Pos{File: file, Line: n.Line, Col: n.Column},
			"a second YAML document starts here; a mapping file holds one document")
	}
	return doc.Content[0], nil
}

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// yamlError turns a yaml.v3 syntax error into an *Error with a line. yaml.v3
// leaves the line out of errors on the first line and of a few others; those
// are located here as well as possible.
func yamlError(file string, data []byte, err error) *Error {
	msg := err.Error()
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return Errorf(Pos{File: file, Line: line}, "invalid YAML: %s", m[2])
	}
	msg = strings.TrimPrefix(msg, "yaml: ")
	return Errorf(Pos{File: file, Line: guessLine(data, msg)}, "invalid YAML: %s", msg)
}

var anchorRE = regexp.MustCompile(`unknown anchor '([^']*)'`)

func guessLine(data []byte, msg string) int {
	lineAt := func(i int) int { return 1 + bytes.Count(data[:i], []byte("\n")) }
	if m := anchorRE.FindStringSubmatch(msg); m != nil {
		if i := bytes.Index(data, []byte("*"+m[1])); i >= 0 {
			return lineAt(i)
		}
	}
	for i := 0; i < len(data); {
		r, size := utf8.DecodeRune(data[i:])
		if r == utf8.RuneError && size <= 1 {
			return lineAt(i)
		}
		if r < 0x20 && r != '\t' && r != '\n' && r != '\r' || r == 0x7f {
			return lineAt(i)
		}
		i += size
	}
	return 1
}
