package transform

import (
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/ferry-migrate/ferry/extract"
	"github.com/ferry-migrate/ferry/mappings"
)

// CompiledVersion is the version of the compiled-plan file format.
const CompiledVersion = 1

// CompiledPlan is a plan that needs no connection to PostgreSQL: the mapping's
// text and the definitions of the tables it maps as the catalogue gave them
// (`ferry plan --compile --out plan.json`). The applier function ships with
// one: it turns changes into the same items and records as sync does.
type CompiledPlan struct {
	Version     int       `json:"version"`
	Created     time.Time `json:"created"`
	MappingFile string    `json:"mapping_file"`
	Mapping     string    `json:"mapping"` // the mapping file's text, pattern entries unexpanded
	// Tables are the mapped tables' definitions (columns with their types,
	// primary key, replica identity), sorted by qualified name.
	Tables []*extract.Table `json:"tables"`
}

// NewCompiledPlan records plan, compiled from the mapping text (file is its
// name, for messages), for use without the source.
func NewCompiledPlan(file string, text []byte, plan *Plan, now time.Time) *CompiledPlan {
	c := &CompiledPlan{Version: CompiledVersion, Created: now.UTC(), MappingFile: file, Mapping: string(text)}
	for _, tp := range plan.Tables {
		c.Tables = append(c.Tables, tp.Source)
	}
	return c
}

// Compile parses the mapping, expands its pattern entries over the recorded
// tables and compiles it against them: the plan `ferry plan --compile` saw.
func (c *CompiledPlan) Compile() (*Plan, error) {
	if c.Version != CompiledVersion {
		return nil, fmt.Errorf("compiled plan version %d, this ferry reads version %d (compile it again with this ferry)", c.Version, CompiledVersion)
	}
	m, err := mappings.Parse(c.MappingFile, []byte(c.Mapping))
	if err != nil {
		return nil, err
	}
	tables := make(map[string]*extract.Table, len(c.Tables))
	pks := make(map[string][]string, len(c.Tables))
	for _, t := range c.Tables {
		if t == nil || t.Name == "" || len(t.Columns) == 0 {
			return nil, fmt.Errorf("compiled plan: a table without a name or columns")
		}
		for _, i := range t.PK {
			if i < 0 || i >= len(t.Columns) {
				return nil, fmt.Errorf("compiled plan: table %s: primary key column %d out of range", t.QualifiedName(), i)
			}
		}
		tables[t.QualifiedName()] = t
		pks[t.QualifiedName()] = t.PKNames()
	}
	if m.HasPatterns() {
		if m, _, err = m.Expand(pks); err != nil {
			return nil, err
		}
	}
	return Compile(m, tables)
}

// LoadCompiledPlan reads a compiled plan file and compiles it.
func LoadCompiledPlan(path string) (*Plan, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("compiled plan: %w", err)
	}
	var c CompiledPlan
	if err := json.Unmarshal(data, &c); err != nil {
		return nil, fmt.Errorf("compiled plan %s: %w", path, err)
	}
	p, err := c.Compile()
	if err != nil {
		return nil, fmt.Errorf("compiled plan %s: %w", path, err)
	}
	return p, nil
}
