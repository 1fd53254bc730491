package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/ferry-migrate/ferry/extract"
	"github.com/ferry-migrate/ferry/load"
	"github.com/ferry-migrate/ferry/mappings"
	"github.com/ferry-migrate/ferry/transform"
)

// Schema changes under a running sync. Logical decoding carries no DDL; what
// ferry sees is pgoutput's Relation message, sent before the first change of
// a table after its definition changed (the decoder turns a message that no
// longer matches into an EventRelation). Sync then, in stream order:
//
//   - resolves the new definition (types from the catalogue; a rename is told
//     from a drop and an add by the column's attribute number);
//   - stops when the change touches a column of a key template, a GSI key or
//     condition or the stream's partition key, or the primary key (a key
//     redesign needs a new target), or when the table's policy is `stop`;
//   - otherwise (`follow`) compiles the table's mapping entry against the new
//     definition and applies the changes after it with that plan, records
//     the change in the control table, publishes a schema-change event on
//     every mapped stream, and queues an online snapshot of the table (origin
//     "schema"), so the items and events of rows no change touched get the
//     new definition too: the end state equals the source.
//
// Each table's followed definitions are recorded (their signatures): a
// replay after a restart or reconnect sees the Relation messages of the WAL
// it replays, which may describe a definition older than the catalogue that
// sync compiled its plan against; a definition sync has followed before is
// taken up again silently (its refill was queued when it was first seen). A
// stop is recorded too: started again (with the mapping edited, or not), sync
// follows the change it stopped at.

// SchemaChange is one followed (or stopped) change of a table's definition,
// as recorded in the control table and published on the streams.
type SchemaChange struct {
	Table   string         `json:"table"`
	LSN     string         `json:"lsn"` // commit LSN of the transaction whose change announced it
	At      time.Time      `json:"at"`
	Added   []SchemaColumn `json:"added,omitempty"`
	Dropped []string       `json:"dropped,omitempty"`
	Renamed []SchemaRename `json:"renamed,omitempty"`
	Retyped []SchemaRetype `json:"retyped,omitempty"`
	// KeyChanged: the primary key's columns changed.
	KeyChanged bool `json:"key_changed,omitempty"`
	// Partitions describes a change of the table's partitions (detached,
	// dropped, truncated, attached: see partitions.go).
	Partitions []string `json:"partitions,omitempty"`
	// Kept are dropped columns whose attributes the items keep
	// (keep_dropped: the table is not re-read for the drop).
	Kept []string `json:"kept,omitempty"`
	// Columns is the table's definition after the change.
	Columns []SchemaColumn `json:"columns"`
	Action  string         `json:"action"` // "followed" or "stopped"
	Refill  string         `json:"refill,omitempty"`
}

// SchemaColumn is a column's name and declared type.
type SchemaColumn struct {
	Name string `json:"name"`
	Type string `json:"type"`
	Key  bool   `json:"key,omitempty"` // part of the primary key
}

// SchemaRename is a renamed column.
type SchemaRename struct {
	From string `json:"from"`
	To   string `json:"to"`
}

// SchemaRetype is a column whose type changed.
type SchemaRetype struct {
	Name string `json:"name"`
	From string `json:"from"`
	To   string `json:"to"`
}

// Empty reports whether nothing the plan depends on changed.
func (c *SchemaChange) Empty() bool {
	return len(c.Added)+len(c.Dropped)+len(c.Renamed)+len(c.Retyped) == 0 && !c.KeyChanged
}

// dropOnly reports whether the change only drops columns.
func (c *SchemaChange) dropOnly() bool {
	return len(c.Dropped) > 0 && len(c.Added)+len(c.Renamed)+len(c.Retyped) == 0 && !c.KeyChanged
}

// KeptAttributes returns, per table, the dropped columns whose attributes
// the items keep (keep_dropped) and that the table has not since regained.
func KeptAttributes(changes []SchemaChange) map[string][]string {
	out := map[string][]string{}
	for _, c := range changes { // oldest first
		if c.Action != "followed" {
			continue
		}
		now := map[string]bool{}
		for _, col := range c.Columns {
			now[col.Name] = true
		}
		kept := slices.DeleteFunc(slices.Clone(out[c.Table]), func(a string) bool { return now[a] })
		for _, k := range c.Kept {
			if !slices.Contains(kept, k) {
				kept = append(kept, k)
			}
		}
		if len(kept) > 0 {
			out[c.Table] = kept
		} else {
			delete(out, c.Table)
		}
	}
	return out
}

// Describe is the change in words, e.g. "added nickname (text); renamed a to b".
func (c *SchemaChange) Describe() string {
	var parts []string
	for _, a := range c.Added {
		parts = append(parts, fmt.Sprintf("added column %s (%s)", a.Name, a.Type))
	}
	for _, d := range c.Dropped {
		parts = append(parts, "dropped column "+d)
	}
	for _, r := range c.Renamed {
		parts = append(parts, fmt.Sprintf("renamed column %s to %s", r.From, r.To))
	}
	for _, r := range c.Retyped {
		parts = append(parts, fmt.Sprintf("changed the type of %s from %s to %s", r.Name, r.From, r.To))
	}
	if c.KeyChanged {
		parts = append(parts, "changed the primary key")
	}
	parts = append(parts, c.Partitions...)
	if len(c.Kept) > 0 {
		parts = append(parts, "the items keep "+strings.Join(c.Kept, ", ")+" (keep_dropped)")
	}
	return strings.Join(parts, "; ")
}

// diffTables compares a table's definitions (generated columns included:
// they are compared by name and type like the others).
func diffTables(old, nt *extract.Table, renames map[string]string) *SchemaChange {
	c := &SchemaChange{Table: nt.QualifiedName()}
	renamedTo := map[string]bool{}
	for from, to := range renames {
		c.Renamed = append(c.Renamed, SchemaRename{From: from, To: to})
		renamedTo[to] = true
	}
	sort.Slice(c.Renamed, func(i, j int) bool { return c.Renamed[i].From < c.Renamed[j].From })
	for _, oc := range old.Columns {
		j := nt.ColumnIndex(oc.Name)
		if j < 0 {
			if _, ok := renames[oc.Name]; !ok {
				c.Dropped = append(c.Dropped, oc.Name)
			}
			continue
		}
		if nc := nt.Columns[j]; nc.Type != oc.Type {
			c.Retyped = append(c.Retyped, SchemaRetype{Name: oc.Name, From: oc.Type, To: nc.Type})
		}
	}
	for from, to := range renames {
		oc, nc := old.Columns[old.ColumnIndex(from)], nt.Columns[nt.ColumnIndex(to)]
		if oc.Type != nc.Type {
			c.Retyped = append(c.Retyped, SchemaRetype{Name: to, From: oc.Type, To: nc.Type})
		}
	}
	for _, nc := range nt.Columns {
		if old.ColumnIndex(nc.Name) < 0 && !renamedTo[nc.Name] {
			c.Added = append(c.Added, SchemaColumn{Name: nc.Name, Type: nc.Type})
		}
	}
	oldKey, newKey := old.PKNames(), nt.PKNames()
	for i, k := range oldKey {
		if to, ok := renames[k]; ok {
			oldKey[i] = to
		}
	}
	c.KeyChanged = !slices.Equal(oldKey, newKey)
	c.Columns = schemaColumns(nt)
	return c
}

func schemaColumns(t *extract.Table) []SchemaColumn {
	key := map[int]bool{}
	for _, k := range t.PK {
		key[k] = true
	}
	out := make([]SchemaColumn, len(t.Columns))
	for i, c := range t.Columns {
		out[i] = SchemaColumn{Name: c.Name, Type: c.Type, Key: key[i]}
	}
	return out
}

// touchedKeyColumns returns the columns of the table's key templates (item
// keys, GSI keys and conditions, the stream's partition key) that the change
// drops, renames or retypes.
func touchedKeyColumns(c *SchemaChange, tp *transform.TablePlan) []string {
	touched := map[string]bool{}
	for _, d := range c.Dropped {
		touched[d] = true
	}
	for _, r := range c.Renamed {
		touched[r.From] = true
	}
	for _, r := range c.Retyped {
		touched[r.Name] = true
	}
	var out []string
	for _, col := range tp.TemplateColumns() {
		if touched[col] {
			out = append(out, col)
		}
	}
	return out
}

// schemaSignature identifies a definition: the columns' names, types and key
// membership, in order.
func schemaSignature(t *extract.Table) string {
	b, _ := json.Marshal(schemaColumns(t))
	return string(b)
}

// The control-table records of schema changes, under "schema:<slot>":
// "known#<table>" the signatures sync has followed (newest last),
// "stopped#<table>" the change sync stopped at, "change#<lsn>#<table>"
// every change seen.
func schemaID(slot string) string { return "schema:" + slot }

// SchemaRecordsID is the control-table id of a slot's schema-change records
// (teardown removes them).
func SchemaRecordsID(slot string) string { return schemaID(slot) }

// SchemaChanges returns the recorded schema changes of slot, oldest first.
func SchemaChanges(ctx context.Context, ctl *load.ControlStore, slot string) ([]SchemaChange, error) {
	all, err := ctl.List(ctx, schemaID(slot))
	if err != nil {
		return nil, fmt.Errorf("read schema changes: %w", err)
	}
	var out []SchemaChange
	for sk, v := range all {
		if !strings.HasPrefix(sk, "change#") {
			continue
		}
		var c SchemaChange
		if err := json.Unmarshal(v, &c); err != nil {
			return nil, fmt.Errorf("schema change %s: %w", sk, err)
		}
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].At.Before(out[j].At) })
	return out, nil
}

// schemaState is what sync knows of the tables' definitions.
type schemaState struct {
	known   map[string][]string // table → signatures followed
	stopped map[string]string   // table → signature of the change sync stopped at
	loaded  bool
}

const maxKnownSignatures = 20

// loadSchemaState reads the records and adds the compiled plan's
// definitions to the known ones.
func (s *syncer) loadSchemaState(ctx context.Context) error {
	st := &s.schema
	if st.loaded {
		return nil
	}
	all, err := s.cfg.Control.List(ctx, schemaID(s.cfg.Slot))
	if err != nil {
		return fmt.Errorf("read schema records: %w", err)
	}
	st.known, st.stopped = map[string][]string{}, map[string]string{}
	applied := map[string]*extract.Table{}
	for sk, v := range all {
		switch {
		case strings.HasPrefix(sk, "applied#"):
			var t extract.Table
			if err := json.Unmarshal(v, &t); err != nil {
				return fmt.Errorf("schema record %s: %w", sk, err)
			}
			applied[strings.TrimPrefix(sk, "applied#")] = &t
		case strings.HasPrefix(sk, "known#"):
			var sigs []string
			if err := json.Unmarshal(v, &sigs); err != nil {
				return fmt.Errorf("schema record %s: %w", sk, err)
			}
			st.known[strings.TrimPrefix(sk, "known#")] = sigs
		case strings.HasPrefix(sk, "stopped#"):
			st.stopped[strings.TrimPrefix(sk, "stopped#")] = string(v)
		}
	}
	for name, tp := range s.tables {
		if err := s.startFrom(ctx, name, tp, applied[name]); err != nil {
			return err
		}
		if err := s.knowSchema(ctx, name, schemaSignature(s.tables[name].Source)); err != nil {
			return err
		}
	}
	// Before any record is made: the definitions the stream appliers may
	// not have been deployed with.
	tps := make([]*transform.TablePlan, 0, len(s.tables))
	for _, tp := range s.tables {
		tps = append(tps, tp)
	}
	if err := StoreDefinitions(ctx, s.cfg.Control, s.cfg.Plan.Mapping, tps); err != nil {
		return err
	}
	st.loaded = true
	return nil
}

// startFrom chooses the definition a table's plan starts from: the one sync
// last applied (recorded), not the catalogue's, which may be ahead of the
// stream — a change sync stopped at, or DDL while it was down. Compiled
// against the applied definition, the plan meets the change in the stream
// as a change (followed, re-read, recorded), instead of taking it up
// silently. When the (edited) mapping does not compile against the applied
// definition, the catalogue's plan is used and the table is re-read online,
// which makes its items exact whatever the stream still holds.
func (s *syncer) startFrom(ctx context.Context, name string, tp *transform.TablePlan, applied *extract.Table) error {
	if applied == nil {
		return s.recordApplied(ctx, name, tp.Source)
	}
	if schemaSignature(applied) == schemaSignature(tp.Source) {
		return nil
	}
	if s.cfg.Plan.Mapping.Table(name) != nil {
		ntp, err := s.compileTable(applied)
		if err == nil {
			s.tables[name] = ntp
			s.log.Info("sync starts from the table's definition it last applied; the catalogue has moved on since, and the stream announces the change",
				"table", name)
			return nil
		}
		s.log.Warn("the mapping does not compile against the definition sync last applied; starting from the catalogue's and re-reading the table online",
			"table", name, "err", err)
	}
	req := SnapshotRequest{ID: NewSnapshotID(time.Now()), Tables: []string{name}, Created: time.Now().UTC(), Origin: OriginSchema}
	if err := SaveSnapshotRequest(ctx, s.cfg.Control, s.cfg.Slot, req); err != nil {
		return err
	}
	return s.recordApplied(ctx, name, tp.Source)
}

// compileTable compiles the table's mapping entry against definition t,
// identified by its DefinitionID.
func (s *syncer) compileTable(t *extract.Table) (*transform.TablePlan, error) {
	return transform.CompileDefinition(s.cfg.Plan.Mapping, t)
}

// recordApplied records the definition sync applies a table's changes with.
func (s *syncer) recordApplied(ctx context.Context, name string, t *extract.Table) error {
	b, err := json.Marshal(t)
	if err != nil {
		return fmt.Errorf("record the definition of %s: %w", name, err)
	}
	if err := s.cfg.Control.Put(ctx, schemaID(s.cfg.Slot), "applied#"+name, b); err != nil {
		return fmt.Errorf("record the definition of %s: %w", name, err)
	}
	return nil
}

// knowSchema records a followed definition.
func (s *syncer) knowSchema(ctx context.Context, table, sig string) error {
	sigs := s.schema.known[table]
	if slices.Contains(sigs, sig) {
		return nil
	}
	sigs = append(sigs, sig)
	if len(sigs) > maxKnownSignatures {
		sigs = sigs[len(sigs)-maxKnownSignatures:]
	}
	b, _ := json.Marshal(sigs)
	if err := s.cfg.Control.Put(ctx, schemaID(s.cfg.Slot), "known#"+table, b); err != nil {
		return fmt.Errorf("record the definition of %s: %w", table, err)
	}
	s.schema.known[table] = sigs
	return nil
}

// SchemaStopError stops sync at a schema change it must not follow (a key
// column, the primary key, or policy `stop`), before acknowledging the change
// that announced it.
type SchemaStopError struct {
	Change *SchemaChange
	Keys   []string // the key template columns it touches
	Reason string
}

func (e *SchemaStopError) Error() string {
	return fmt.Sprintf("table %s changed at %s (%s): %s; stopped before acknowledging it. %s",
		e.Change.Table, e.Change.LSN, e.Change.Describe(), e.Reason, schemaWayForward(e))
}

func schemaWayForward(e *SchemaStopError) string {
	if len(e.Keys) > 0 || e.Change.KeyChanged {
		return "The items' keys are built from these columns, so existing items cannot follow: map the table to a new target " +
			"table with the new key templates, start sync again (it follows the change from here with the edited mapping) and " +
			"re-read the table into it with `ferry snapshot --tables " + e.Change.Table + "`; or revert the DDL"
	}
	return "Edit the mapping if the change needs it (exclude or convert the new columns), then start sync again: " +
		"it follows the change from exactly here and re-reads the table online"
}

// onRelation handles a table whose definition changed, in stream order.
func (s *syncer) onRelation(ctx context.Context, b *syncBatch, rc *extract.RelationChange, lsn extract.LSN) error {
	name := rc.New.QualifiedName()
	tp := s.tables[name]
	if tp == nil {
		return nil
	}
	if err := s.loadSchemaState(ctx); err != nil {
		return err
	}
	conn, err := s.sourceConn(ctx)
	if err != nil {
		return err
	}
	nt, renames, err := extract.ResolveRelation(ctx, conn, tp.Source, rc)
	if err != nil {
		s.closeSourceConn()
		return fmt.Errorf("table %s changed at %s: %w", name, lsn, err)
	}
	change := diffTables(tp.Source, nt, renames)
	change.LSN, change.At = lsn.String(), time.Now().UTC()
	sig := schemaSignature(nt)
	mt := s.cfg.Plan.Mapping.Table(name)
	if mt == nil {
		return fmt.Errorf("table %s changed at %s: no mapping entry", name, lsn)
	}
	compile := func() (*transform.TablePlan, error) {
		ntp, err := s.compileTable(nt)
		if err != nil {
			return nil, &SchemaStopError{Change: change, Reason: "the mapping does not fit the changed table:\n" + err.Error()}
		}
		// Stored before a record is made with it (the stream appliers
		// read it from there).
		if err := StoreDefinitions(ctx, s.cfg.Control, s.cfg.Plan.Mapping, []*transform.TablePlan{ntp}); err != nil {
			return nil, err
		}
		return ntp, nil
	}
	if change.Empty() || slices.Contains(s.schema.known[name], sig) {
		// A definition followed before (a replay after a restart), or one
		// that differs in nothing the plan uses: take it up silently.
		ntp, err := compile()
		if err != nil {
			return err
		}
		if err := s.recordApplied(ctx, name, nt); err != nil {
			return err
		}
		s.switchPlan(name, tp, ntp)
		return nil
	}
	acked := s.schema.stopped[name] == sig
	keys := touchedKeyColumns(change, tp)
	var stop *SchemaStopError
	switch {
	case acked:
	case len(keys) > 0:
		stop = &SchemaStopError{Change: change, Keys: keys, Reason: fmt.Sprintf("it touches %s, which the mapping's keys use", strings.Join(keys, ", "))}
	case change.KeyChanged:
		stop = &SchemaStopError{Change: change, Reason: "the primary key changed"}
	case mt.OnSchemaChange == mappings.SchemaStop:
		stop = &SchemaStopError{Change: change, Reason: "the table's on_schema_change is stop"}
	}
	if stop != nil {
		change.Action = "stopped"
		if err := s.recordSchemaChange(ctx, change); err != nil {
			return err
		}
		if err := s.cfg.Control.Put(ctx, schemaID(s.cfg.Slot), "stopped#"+name, []byte(sig)); err != nil {
			return fmt.Errorf("record the schema stop of %s: %w", name, err)
		}
		s.log.Error("sync stops at a schema change", "table", name, "lsn", lsn, "change", change.Describe(), "reason", stop.Reason)
		return stop
	}
	ntp, err := compile()
	if err != nil {
		return err
	}
	change.Action = "followed"
	if change.dropOnly() && mt.KeepDropped {
		// keep_dropped: the items keep the dropped columns' attributes (an
		// item written after the drop is written whole, without them).
		change.Kept = change.Dropped
	} else {
		// The refill first: once it is stored, the change may be taken up
		// silently after a crash.
		req := SnapshotRequest{ID: NewSnapshotID(time.Now()), Tables: []string{name}, Created: time.Now().UTC(), Origin: OriginSchema}
		if err := SaveSnapshotRequest(ctx, s.cfg.Control, s.cfg.Slot, req); err != nil {
			return err
		}
		change.Refill = req.ID
	}
	if err := s.recordSchemaChange(ctx, change); err != nil {
		return err
	}
	if err := s.knowSchema(ctx, name, sig); err != nil {
		return err
	}
	if err := s.recordApplied(ctx, name, nt); err != nil {
		return err
	}
	if acked {
		if err := s.cfg.Control.Delete(ctx, schemaID(s.cfg.Slot), "stopped#"+name); err != nil {
			return fmt.Errorf("clear the schema stop of %s: %w", name, err)
		}
		delete(s.schema.stopped, name)
	}
	if err := s.publishSchemaChange(ctx, change, rc.New); err != nil {
		return err
	}
	s.switchPlan(name, tp, ntp)
	s.mu.Lock()
	s.status.SchemaChanges++
	s.mu.Unlock()
	s.log.Info("schema change followed", "table", name, "lsn", lsn, "change", change.Describe(), "refill", change.Refill)
	return nil
}

// switchPlan replaces a table's plan; a chunk of the table read with the old
// definition is dropped (it is read again with the new one).
func (s *syncer) switchPlan(name string, old, ntp *transform.TablePlan) {
	s.mu.Lock() // the partition watcher reads s.tables
	s.tables[name] = ntp
	s.mu.Unlock()
	if s.online.win != nil && s.online.win.tp == old {
		s.online.win = nil
	}
}

func (s *syncer) recordSchemaChange(ctx context.Context, c *SchemaChange) error {
	b, _ := json.Marshal(c)
	if err := s.cfg.Control.Put(ctx, schemaID(s.cfg.Slot), "change#"+c.LSN+"#"+c.Table, b); err != nil {
		return fmt.Errorf("record the schema change of %s: %w", c.Table, err)
	}
	return nil
}

// schemaEvent is the schema-change record published on the streams (op
// "schema"; Debezium-style consumers that know only c/u/d/r/t skip it).
type schemaEvent struct {
	Op     string        `json:"op"`
	Source schemaSource  `json:"source"`
	Schema *SchemaChange `json:"schema"`
	TsMS   int64         `json:"ts_ms"`
}

type schemaSource struct {
	DB     string `json:"db"`
	Schema string `json:"schema"`
	Table  string `json:"table"`
	LSN    string `json:"lsn"`
}

// publishSchemaChange puts the change on every mapped stream (partition key
// "schema:<table>"), retrying until every record is in.
func (s *syncer) publishSchemaChange(ctx context.Context, c *SchemaChange, t *extract.Table) error {
	if s.cfg.Kinesis == nil {
		return nil
	}
	ev := schemaEvent{Op: "schema", Source: schemaSource{DB: dbName(s.cfg.SourceURL), Schema: t.Schema, Table: t.Name, LSN: c.LSN},
		Schema: c, TsMS: time.Now().UnixMilli()}
	data, _ := json.Marshal(ev)
	var recs []load.Record
	seen := map[string]bool{}
	for _, tp := range s.cfg.Plan.Tables { // streams do not change (the apply loop owns s.tables)
		if tp.Stream != "" && !seen[tp.Stream] {
			seen[tp.Stream] = true
			recs = append(recs, load.Record{Stream: tp.Stream, PartitionKey: "schema:" + c.Table, Data: data})
		}
	}
	if len(recs) == 0 {
		return nil
	}
	sort.Slice(recs, func(i, j int) bool { return recs[i].Stream < recs[j].Stream })
	err := load.Retry(ctx, s.cfg.Retry, nil, func(attempt int, err error) {
		s.log.Warn("sync: publishing a schema change failed; retrying", "table", c.Table, "attempt", attempt, "err", err)
	}, func() error {
		fails, err := s.cfg.Kinesis.Put(ctx, recs)
		if err != nil || len(fails) == 0 {
			return err
		}
		recs = recs[:0] // the failed ones again
		for _, f := range fails {
			recs = append(recs, f.Rec)
		}
		return fails[0].Err
	})
	if err != nil {
		return fmt.Errorf("publish the schema change of %s: %w", c.Table, err)
	}
	return nil
}
