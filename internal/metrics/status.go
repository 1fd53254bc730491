package metrics

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ferry-migrate/ferry/internal/pipeline"
)

//go:embed status.html
var statusPage []byte

// LagSample is one point of the lag chart.
type LagSample struct {
	Time        time.Time `json:"t"`
	Seconds     float64   `json:"seconds"`
	Bytes       int64     `json:"bytes"`
	RetainedWAL int64     `json:"retained_wal"`
}

// ring keeps the last n samples, at most one per every (the latest status
// is always shown beside them).
type ring struct {
	every   time.Duration
	samples []LagSample
	next    int
	full    bool
	last    time.Time
	current *LagSample
}

func newRing(n int, every time.Duration) *ring {
	return &ring{every: every, samples: make([]LagSample, n)}
}

func (r *ring) add(s LagSample) {
	r.current = &s
	if !r.last.IsZero() && s.Time.Sub(r.last) < r.every {
		return
	}
	r.last = s.Time
	r.samples[r.next] = s
	r.next = (r.next + 1) % len(r.samples)
	r.full = r.full || r.next == 0
}

// list returns the kept samples, oldest first, then the latest status when
// it is newer than the last sample.
func (r *ring) list() []LagSample {
	var out []LagSample
	if r.full {
		out = append(out, r.samples[r.next:]...)
	}
	out = append(out, r.samples[:r.next]...)
	if r.current != nil && (len(out) == 0 || r.current.Time.After(out[len(out)-1].Time)) {
		out = append(out, *r.current)
	}
	return out
}

// SlotState is the replication slot as the status page shows it.
type SlotState struct {
	Name        string `json:"name"`
	Exists      bool   `json:"exists"`
	Active      bool   `json:"active"`
	Confirmed   string `json:"confirmed_lsn,omitempty"`
	Restart     string `json:"restart_lsn,omitempty"`
	WALStatus   string `json:"wal_status,omitempty"`
	RetainedWAL int64  `json:"retained_wal"`
}

// TableProgress is one table's backfill on the status page.
type TableProgress struct {
	Table     string `json:"table"`
	Read      int64  `json:"rows_read"`
	Estimated int64  `json:"rows_estimated"`
	Done      bool   `json:"done"`
}

// SyncState is sync's last status on the status page.
type SyncState struct {
	Reported      time.Time `json:"reported"`
	Changes       int64     `json:"changes"`
	ChangesPerSec float64   `json:"changes_per_s"`
	LagBytes      int64     `json:"lag_bytes"`
	LagSeconds    float64   `json:"lag_seconds"`
	Acked         string    `json:"acked_lsn"`
	LastCommit    time.Time `json:"last_commit,omitzero"`
	RetainedWAL   int64     `json:"retained_wal"`
	WALBudget     int64     `json:"wal_budget"`
	Snapshot      string    `json:"snapshot,omitempty"`
}

// Status is what /status.json serves and the page shows.
type Status struct {
	Command string                 `json:"command"`
	Slot    string                 `json:"slot"`
	Now     time.Time              `json:"now"`
	Tables  []TableProgress        `json:"tables"`
	Sync    *SyncState             `json:"sync"`
	Lag     []LagSample            `json:"lag"`
	SlotNow *SlotState             `json:"slot_state"`
	Verify  *pipeline.VerifyRecord `json:"verify"`
	// Errors are the sources the page could not read (slot, verify).
	Errors []string `json:"errors,omitempty"`
}

// Status returns the status page's data now; the slot's state and the
// last verify are read from their sources (bounded by ctx).
func (m *Metrics) Status(ctx context.Context) Status {
	m.mu.Lock()
	st := Status{Command: m.command, Slot: m.slot, Now: m.now().UTC(), Tables: []TableProgress{}, Lag: m.lag.list()}
	for _, name := range m.order {
		t := m.tables[name]
		st.Tables = append(st.Tables, TableProgress{Table: name, Read: t.read, Estimated: t.estimated, Done: t.done})
	}
	if s := m.sync; s != nil {
		ss := &SyncState{Reported: m.syncAt.UTC(), Changes: s.Changes, ChangesPerSec: s.ChangesPerSec, LagBytes: s.LagBytes,
			LagSeconds: s.LagSeconds, Acked: s.Acked.String(), RetainedWAL: s.RetainedWAL, WALBudget: m.budget}
		if !s.LastCommit.IsZero() {
			ss.LastCommit = s.LastCommit.UTC()
		}
		if sp := s.Snapshot; sp != nil && !sp.Done {
			ss.Snapshot = fmt.Sprintf("%s: table %s, %d rows, %d chunks", sp.Request, s.SnapshotTable, sp.Rows, sp.Chunks)
		}
		st.Sync = ss
	}
	slotFn, verifyFn := m.slotFn, m.verify
	m.mu.Unlock()
	if slotFn != nil {
		s, err := slotFn(ctx)
		if err != nil {
			st.Errors = append(st.Errors, fmt.Sprintf("slot: %v", err))
		}
		st.SlotNow = s
	}
	if verifyFn != nil {
		v, err := verifyFn(ctx)
		if err != nil {
			st.Errors = append(st.Errors, fmt.Sprintf("last verify: %v", err))
		}
		st.Verify = v
	}
	return st
}

// Handler serves /metrics (Prometheus' text format), / (the status page)
// and /status.json.
func (m *Metrics) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/status.json", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		defer cancel()
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		_ = json.NewEncoder(w).Encode(m.Status(ctx))
	})
	mux.HandleFunc("/{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write(statusPage)
	})
	return mux
}

// Serve listens on addr and serves [Metrics.Handler] until ctx ends. It
// returns once listening (the address actually bound, e.g. for port 0) and
// logs it; a failure to listen is returned.
func (m *Metrics) Serve(ctx context.Context, addr string) (net.Addr, error) {
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics address %s: %w", addr, err)
	}
	srv := &http.Server{Handler: m.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			slog.Warn("metrics: server stopped", "addr", ln.Addr().String(), "err", err)
		}
	}()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	slog.Info("metrics: serving /metrics and the status page", "url", "http://"+ln.Addr().String()+"/")
	return ln.Addr(), nil
}
