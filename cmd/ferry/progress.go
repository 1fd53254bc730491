package main

import (
	"io"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/ferry-migrate/ferry/internal/pipeline"
)

func newProgress(mode string, out io.Writer) pipeline.Progress {
	if mode == "auto" {
		mode = "log"
		if f, ok := out.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
			mode = "bar"
		}
	}
	switch mode {
	case "bar":
		return &barProgress{out: out, bars: map[string]*progressbar.ProgressBar{}}
	case "none":
		return nil
	}
	return &logProgress{every: 2 * time.Second, state: map[string]*logState{}}
}

// barProgress draws one bar per table (tables are copied one after another).
type barProgress struct {
	out  io.Writer
	mu   sync.Mutex
	bars map[string]*progressbar.ProgressBar
}

func (p *barProgress) TableStart(table string, rows, done int64) {
	bar := progressbar.NewOptions64(max(rows, 1),
		progressbar.OptionSetWriter(p.out),
		progressbar.OptionSetDescription(padRight(table, 22)),
		progressbar.OptionShowCount(),
		progressbar.OptionShowIts(),
		progressbar.OptionSetItsString("rows"),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionFullWidth(),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionOnCompletion(func() { io.WriteString(p.out, "\n") }),
	)
	_ = bar.Set64(done)
	p.mu.Lock()
	p.bars[table] = bar
	p.mu.Unlock()
}

func (p *barProgress) Add(table string, rows int64) {
	p.mu.Lock()
	bar := p.bars[table]
	p.mu.Unlock()
	_ = bar.Add64(rows)
}

func (p *barProgress) TableDone(st *pipeline.TableStats) {
	p.mu.Lock()
	bar := p.bars[st.Table]
	p.mu.Unlock()
	_ = bar.Finish()
}

func padRight(s string, n int) string {
	for len(s) < n {
		s += " "
	}
	return s
}

// logProgress prints plain log lines: at start, every few seconds, at the end.
type logProgress struct {
	every time.Duration
	mu    sync.Mutex
	state map[string]*logState
}

type logState struct {
	total, done int64
	start, last time.Time
}

func (p *logProgress) TableStart(table string, rows, done int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	p.state[table] = &logState{total: rows, done: done, start: now, last: now}
	slog.Info("copying", "table", table, "rows", rows, "already_done", done)
}

func (p *logProgress) Add(table string, rows int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.state[table]
	s.done += rows
	if time.Since(s.last) < p.every {
		return
	}
	s.last = time.Now()
	rate := float64(s.done) / time.Since(s.start).Seconds()
	eta := time.Duration(0)
	if rate > 0 {
		eta = time.Duration(float64(s.total-s.done)/rate) * time.Second
	}
	slog.Info("progress", "table", table, "rows", s.done, "of", s.total, "rows_per_s", int64(rate), "eta", eta.Round(time.Second))
}

func (p *logProgress) TableDone(st *pipeline.TableStats) {
	slog.Info("copied", "table", st.Table, "rows", st.Rows, "items", st.Items, "records", st.Records,
		"retries", st.Retries, "failed", len(st.Failures), "duration", st.Duration.Round(time.Millisecond))
}
