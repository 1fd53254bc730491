package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/ferry-migrate/ferry/extract"
	"github.com/ferry-migrate/ferry/load"
)

// chunksPerPage bounds one control item (DynamoDB items hold at most 400 KB).
const chunksPerPage = 500

// runState is the durable record of a backfill, kept in the control table under
// id "backfill:<slot>":
//
//	sk "run"                    runState (the slot's consistent LSN: where CDC continues)
//	sk "plan:<table>:<page>"    chunk boundaries of a table, planned once
//	sk "done:<table>:<chunk>"   a chunk whose rows are all durable in every target (its
//	                            value: chunkResult); while the chunk is copied, the
//	                            item is the chunk's lease, without a value (backfill_lease.go)
//	sk "live"                   liveRun: the snapshot of the copy under way, for --join
//	sk "worker:<name>"          WorkerStatus: a worker's heartbeat, for status
type runState struct {
	Slot     string    `json:"slot"`
	SlotLSN  string    `json:"slot_lsn"`
	Created  time.Time `json:"created"`
	Complete bool      `json:"complete"`
}

type stateStore struct {
	ctl  *load.ControlStore
	id   string
	slot string
}

func newStateStore(ctl *load.ControlStore, slot string) *stateStore {
	return &stateStore{ctl: ctl, id: "backfill:" + slot, slot: slot}
}

// StateID is the control-table id under which a slot's backfill state lives.
func StateID(slot string) string { return "backfill:" + slot }

func (s *stateStore) loadRun(ctx context.Context) (*runState, error) {
	b, ok, err := s.ctl.Get(ctx, s.id, "run")
	if err != nil || !ok {
		return nil, err
	}
	var st runState
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("backfill state of slot %s: %w", s.slot, err)
	}
	return &st, nil
}

func (s *stateStore) saveRun(ctx context.Context, st *runState) error {
	b, _ := json.Marshal(st)
	return s.ctl.Put(ctx, s.id, "run", b)
}

// uncopied returns the tables of which some chunk is not done (or that were
// never planned), by qualified name.
func (s *stateStore) uncopied(ctx context.Context, tables []*extract.Table) ([]string, error) {
	plans, done, err := s.loadAll(ctx)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, t := range tables {
		name := t.QualifiedName()
		p := plans[name]
		if p == nil || len(done[name]) < len(p.Chunks) {
			out = append(out, name)
			continue
		}
		for i := range p.Chunks {
			if _, ok := done[name][i]; !ok {
				out = append(out, name)
				break
			}
		}
	}
	return out, nil
}

type chunkPlan struct {
	Chunks []extract.Chunk `json:"chunks"`
	Rows   int64           `json:"rows"`
	Pages  int             `json:"pages"`
}

// loadAll reads the chunk plans and done markers of every table.
func (s *stateStore) loadAll(ctx context.Context) (plans map[string]*chunkPlan, done map[string]map[int]int64, err error) {
	all, err := s.ctl.List(ctx, s.id)
	if err != nil {
		return nil, nil, err
	}
	plans, done = map[string]*chunkPlan{}, map[string]map[int]int64{}
	pages := map[string]map[int]*chunkPlan{}
	for sk, v := range all {
		kind, rest, _ := strings.Cut(sk, ":")
		i := strings.LastIndexByte(rest, ':')
		if i < 0 {
			continue
		}
		table, nstr := rest[:i], rest[i+1:]
		n, err := strconv.Atoi(nstr)
		if err != nil {
			continue
		}
		switch kind {
		case "plan":
			var p chunkPlan
			if err := json.Unmarshal(v, &p); err != nil {
				return nil, nil, fmt.Errorf("chunk plan of %s: %w", table, err)
			}
			if pages[table] == nil {
				pages[table] = map[int]*chunkPlan{}
			}
			pages[table][n] = &p
		case "done":
			if len(v) == 0 {
				continue // a chunk's lease, held or given up: not done
			}
			var d chunkResult
			_ = json.Unmarshal(v, &d)
			if done[table] == nil {
				done[table] = map[int]int64{}
			}
			done[table][n] = d.Rows
		}
	}
	for table, ps := range pages {
		first := ps[0]
		if first == nil || len(ps) != first.Pages {
			continue // an incompletely saved plan is planned again
		}
		p := &chunkPlan{Rows: first.Rows}
		for i := 0; i < first.Pages; i++ {
			p.Chunks = append(p.Chunks, ps[i].Chunks...)
		}
		plans[table] = p
	}
	return plans, done, nil
}

func (s *stateStore) savePlan(ctx context.Context, table string, p *chunkPlan) error {
	pages := (len(p.Chunks) + chunksPerPage - 1) / chunksPerPage
	for i := 0; i < pages; i++ {
		end := min((i+1)*chunksPerPage, len(p.Chunks))
		b, _ := json.Marshal(chunkPlan{Chunks: p.Chunks[i*chunksPerPage : end], Rows: p.Rows, Pages: pages})
		if err := s.ctl.Put(ctx, s.id, fmt.Sprintf("plan:%s:%d", table, i), b); err != nil {
			return fmt.Errorf("save chunk plan of %s: %w", table, err)
		}
	}
	return nil
}

func (s *stateStore) reset(ctx context.Context) error {
	return s.ctl.DeleteAll(ctx, s.id)
}

// SnapshotPosition returns the slot's consistent LSN recorded by a backfill, and
// whether that backfill completed. ok is false when no backfill has run.
func SnapshotPosition(ctx context.Context, ctl *load.ControlStore, slot string) (lsn extract.LSN, complete, ok bool, err error) {
	st, err := newStateStore(ctl, slot).loadRun(ctx)
	if err != nil || st == nil {
		return 0, false, false, err
	}
	lsn, err = extract.ParseLSN(st.SlotLSN)
	return lsn, st.Complete, true, err
}
