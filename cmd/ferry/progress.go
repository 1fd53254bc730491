package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

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
		width := 0
		if f, ok := out.(*os.File); ok {
			width, _, _ = term.GetSize(int(f.Fd()))
		}
		return newBarProgress(out, width, time.Now)
	case "none":
		return nil
	}
	return &logProgress{every: 2 * time.Second, state: map[string]*logState{}}
}

// barProgress draws the tables being copied on a terminal, several at once
// (the backfill copies tables in parallel): a block of live lines, one per
// table under way with its bar, rows, rate and time left, redrawn in place;
// a table that finishes leaves the block and stays above it as one line.
// It is safe for concurrent use.
//
// Written here rather than with github.com/schollz/progressbar/v3 (used
// until tables were copied in parallel): that library draws one bar on one
// line, and two of its bars on one terminal overwrite each other's line.
type barProgress struct {
	out   io.Writer
	width int // of the terminal: lines are cut to it (a wrapped line breaks the redraw)
	now   func() time.Time
	every time.Duration // at most one redraw per interval on Add

	mu    sync.Mutex
	live  []*barTable // in the order they started
	drawn int         // lines of the live block on the screen
	last  time.Time   // of the last redraw
}

// barTable is one table's line.
type barTable struct {
	name        string
	total, done int64 // rows planned; rows copied (earlier runs' included)
	before      int64 // rows copied by earlier runs
	start       time.Time
}

func newBarProgress(out io.Writer, width int, now func() time.Time) *barProgress {
	if width <= 0 {
		width = 100
	}
	return &barProgress{out: out, width: width, now: now, every: 100 * time.Millisecond}
}

func (p *barProgress) TableStart(table string, rows, done int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.live = append(p.live, &barTable{name: table, total: rows, done: done, before: done, start: p.now()})
	p.redraw("")
}

func (p *barProgress) Add(table string, rows int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, t := range p.live {
		if t.name == table {
			t.done += rows
		}
	}
	if p.now().Sub(p.last) >= p.every {
		p.redraw("")
	}
}

func (p *barProgress) TableDone(st *pipeline.TableStats) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, t := range p.live {
		if t.name == st.Table {
			p.live = append(p.live[:i], p.live[i+1:]...)
			break
		}
	}
	p.redraw(p.cut(doneLine(st)))
}

// redraw replaces the live block on the screen: above it the line of a
// table that finished (if any), then a line per table under way. p.mu is
// held.
func (p *barProgress) redraw(finished string) {
	now := p.now()
	var b strings.Builder
	if p.drawn > 0 {
		fmt.Fprintf(&b, "\r\x1b[%dA", p.drawn) // to the start of the block's first line
	}
	if finished != "" {
		b.WriteString("\x1b[2K" + finished + "\n")
	}
	for _, t := range p.live {
		b.WriteString("\x1b[2K" + p.cut(t.line(now)) + "\n")
	}
	b.WriteString("\x1b[J") // clear what the longer block left below
	p.drawn, p.last = len(p.live), now
	io.WriteString(p.out, b.String())
}

// cut shortens s to the terminal's width.
func (p *barProgress) cut(s string) string {
	if r := []rune(s); len(r) >= p.width {
		return string(r[:p.width-1])
	}
	return s
}

// barWidth is the bar's width in characters, brackets excluded.
const barWidth = 24

// line is the table's live line: name, bar, share, rows, rate, time left.
// The rate counts this run's rows only (those of earlier runs were not
// copied now).
func (t *barTable) line(now time.Time) string {
	total := max(t.total, t.done, 1)
	filled := int(t.done * barWidth / total)
	bar := strings.Repeat("=", filled)
	if filled < barWidth {
		bar += ">" + strings.Repeat(" ", barWidth-filled-1)
	}
	s := fmt.Sprintf("%-22s [%s] %3d%%  %s/%s rows", t.name, bar, t.done*100/total, count(t.done), count(t.total))
	if secs := now.Sub(t.start).Seconds(); secs > 0 && t.done > t.before {
		rate := float64(t.done-t.before) / secs
		left := time.Duration(float64(max(t.total-t.done, 0)) / rate * float64(time.Second))
		s += fmt.Sprintf("  %s rows/s  %s left", count(int64(rate)), left.Round(time.Second))
	}
	return s
}

// doneLine is the line a table leaves when it finishes.
func doneLine(st *pipeline.TableStats) string {
	s := fmt.Sprintf("%-22s done: %s rows in %s", st.Table, count(st.Rows), st.Duration.Round(time.Millisecond))
	if st.Duration > 0 && st.Rows > 0 {
		s += fmt.Sprintf(" (%s rows/s)", count(int64(float64(st.Rows)/st.Duration.Seconds())))
	}
	if st.ChunksSkipped > 0 {
		s += fmt.Sprintf(", %d of %d chunks done before", st.ChunksSkipped, st.Chunks)
	}
	if n := len(st.Failures); n > 0 {
		s += fmt.Sprintf(", %d rows failed", n)
	}
	return s
}

// count writes n with thin groups of three digits (16 044).
func count(n int64) string {
	s := fmt.Sprint(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(' ')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// logProgress prints plain log lines per table: when it starts, every few
// seconds while it is copied, and when it is done. Tables copied at once
// each have their own lines, told apart by the table key.
type logProgress struct {
	every time.Duration
	mu    sync.Mutex
	state map[string]*logState
}

type logState struct {
	total, done, before int64
	start, last         time.Time
}

func (p *logProgress) TableStart(table string, rows, done int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	p.state[table] = &logState{total: rows, done: done, before: done, start: now, last: now}
	slog.Info("copying", "table", table, "rows", rows, "already_done", done)
}

func (p *logProgress) Add(table string, rows int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.state[table]
	if s == nil { // no TableStart: not a contract the backfill breaks, but no reason to panic
		return
	}
	s.done += rows
	if time.Since(s.last) < p.every {
		return
	}
	s.last = time.Now()
	rate := float64(s.done-s.before) / time.Since(s.start).Seconds()
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
