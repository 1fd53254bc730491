package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/ferry-migrate/ferry/extract"
	"github.com/ferry-migrate/ferry/mappings"
	"github.com/ferry-migrate/ferry/transform"
)

// Table definitions for the stream appliers. A record carries the
// DefinitionID of the plan that made it (source.def). Before it publishes a
// record made with a definition, ferry (backfill, and sync at its start and
// at each schema change it follows) stores the definition in the control
// table under that ID, with the mapping's text. An applier whose deployed
// plan has another ID for the table (a column added, dropped or retyped since
// the plan was compiled, or the mapping edited) compiles the record's own
// plan from there: every record is applied with the plan it was made with,
// and a schema change needs no new deployment of the function.
//
// Control-table items, under id "defs" (content-addressed, shared by every
// slot): "mapping#<MappingID>" the mapping's text, "table#<schema.name>#<ID>"
// the table's definition and its mapping's ID.

const definitionsID = "defs"

type storedMapping struct {
	File string `json:"file"`
	Text string `json:"text"`
}

type storedDefinition struct {
	Mapping string         `json:"mapping"` // MappingID
	Table   *extract.Table `json:"table"`
}

// valuePutter is the part of the control table the definitions are
// stored in (*load.ControlStore; a fake in unit tests).
type valuePutter interface {
	Put(ctx context.Context, id, sk string, value []byte) error
}

// StoreDefinitions stores the definitions of the plan's tables that publish
// records (see above). Stored definitions are never changed, only added.
func StoreDefinitions(ctx context.Context, ctl valuePutter, m *mappings.Mapping, tables []*transform.TablePlan) error {
	if m == nil || len(m.Text) == 0 {
		return nil
	}
	mid := transform.MappingID(m.Text)
	stored := false
	for _, tp := range tables {
		if tp.Stream == "" || tp.Def == "" {
			continue
		}
		if !stored {
			b, _ := json.Marshal(storedMapping{File: m.File, Text: string(m.Text)})
			if err := ctl.Put(ctx, definitionsID, "mapping#"+mid, b); err != nil {
				return fmt.Errorf("store the mapping's text for the stream appliers: %w", err)
			}
			stored = true
		}
		b, err := json.Marshal(storedDefinition{Mapping: mid, Table: tp.Source})
		if err != nil {
			return fmt.Errorf("store the definition of %s: %w", tp.Source.QualifiedName(), err)
		}
		if err := ctl.Put(ctx, definitionsID, "table#"+tp.Source.QualifiedName()+"#"+tp.Def, b); err != nil {
			return fmt.Errorf("store the definition of %s for the stream appliers: %w", tp.Source.QualifiedName(), err)
		}
	}
	return nil
}

// valueStore is the part of the control table the definitions are read
// from (*load.ControlStore; a fake in unit tests). Get is safe for
// concurrent use; found is false when there is no such item.
type valueStore interface {
	Get(ctx context.Context, id, sk string) (value []byte, found bool, err error)
}

// UnknownDefinitionError is a record made with a definition that neither
// the applier's plan nor the control table holds.
type UnknownDefinitionError struct{ Table, Def string }

func (e *UnknownDefinitionError) Error() string {
	return fmt.Sprintf("a record of %s was made with table definition %s, which neither the deployed plan nor the control table holds "+
		"(was it published by a ferry that stores its definitions, with this control table?); compile the plan again (ferry plan --compile) and deploy it", e.Table, e.Def)
}

// definitions compiles, and keeps, the plans of the definitions records
// name. Safe for concurrent use.
type definitions struct {
	store    valueStore
	log      *slog.Logger
	mu       sync.Mutex
	plans    map[string]*transform.TablePlan // table#def
	mappings map[string]*mappings.Mapping    // by MappingID
}

// plan returns the plan of table at definition def.
func (d *definitions) plan(ctx context.Context, table, def string) (*transform.TablePlan, error) {
	key := table + "#" + def
	d.mu.Lock()
	tp := d.plans[key]
	d.mu.Unlock()
	if tp != nil {
		return tp, nil
	}
	if d.store == nil {
		return nil, &UnknownDefinitionError{Table: table, Def: def}
	}
	b, found, err := d.store.Get(ctx, definitionsID, "table#"+key)
	if err != nil {
		return nil, fmt.Errorf("read the definition %s of %s: %w", def, table, err)
	}
	if !found {
		return nil, &UnknownDefinitionError{Table: table, Def: def}
	}
	var sd storedDefinition
	if err := json.Unmarshal(b, &sd); err != nil || sd.Table == nil || sd.Table.QualifiedName() != table {
		return nil, fmt.Errorf("the stored definition %s of %s is damaged (%v)", def, table, err)
	}
	m, err := d.mapping(ctx, sd.Mapping)
	if err != nil {
		return nil, fmt.Errorf("definition %s of %s: %w", def, table, err)
	}
	if got := transform.DefinitionID(m.Text, sd.Table); got != def {
		return nil, fmt.Errorf("the stored definition %s of %s has ID %s: damaged", def, table, got)
	}
	if m.HasPatterns() {
		if m, _, err = m.Expand(map[string][]string{table: sd.Table.PKNames()}); err != nil {
			return nil, fmt.Errorf("definition %s of %s: %w", def, table, err)
		}
	}
	tp, err = transform.CompileDefinition(m, sd.Table)
	if err == nil {
		err = tp.RecordsInvertible()
	}
	if err != nil {
		return nil, fmt.Errorf("definition %s of %s: %w", def, table, err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if prev := d.plans[key]; prev != nil {
		return prev, nil // compiled meanwhile by another batch: keep one plan per definition
	}
	d.plans[key] = tp
	if d.log != nil {
		d.log.Info("records name a table definition the deployed plan lacks: applying them with the one stored in the control table",
			"table", table, "def", def, "columns", len(sd.Table.Columns))
	}
	return tp, nil
}

func (d *definitions) mapping(ctx context.Context, id string) (*mappings.Mapping, error) {
	d.mu.Lock()
	m := d.mappings[id]
	d.mu.Unlock()
	if m != nil {
		return m, nil
	}
	b, found, err := d.store.Get(ctx, definitionsID, "mapping#"+id)
	if err != nil {
		return nil, fmt.Errorf("read its mapping: %w", err)
	}
	if !found {
		return nil, errors.New("its mapping's text is not in the control table")
	}
	var sm storedMapping
	if err := json.Unmarshal(b, &sm); err != nil {
		return nil, fmt.Errorf("its stored mapping is damaged: %w", err)
	}
	if transform.MappingID([]byte(sm.Text)) != id {
		return nil, errors.New("its stored mapping's text does not match its ID: damaged")
	}
	if m, err = mappings.Parse(sm.File, []byte(sm.Text)); err != nil {
		return nil, err
	}
	d.mu.Lock()
	d.mappings[id] = m
	d.mu.Unlock()
	return m, nil
}
