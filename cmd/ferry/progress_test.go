package main

import (
	"bytes"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ferry-migrate/ferry/internal/pipeline"
)

// screen plays what barProgress wrote on a minimal terminal (the escape
// sequences it uses: CR, LF, cursor up, erase line, erase below) and
// returns the lines on the screen.
func screen(t *testing.T, out string) []string {
	t.Helper()
	var lines []string
	row := 0
	esc := regexp.MustCompile(`^\x1b\[(\d*)([AKJ])`)
	for i := 0; i < len(out); {
		for row >= len(lines) {
			lines = append(lines, "")
		}
		switch c := out[i]; c {
		case '\r':
			i++
		case '\n':
			row++
			i++
		case '\x1b':
			m := esc.FindStringSubmatch(out[i:])
			if m == nil {
				t.Fatalf("unexpected escape sequence at %q", out[i:min(i+8, len(out))])
			}
			switch m[2] {
			case "A":
				n, _ := strconv.Atoi(m[1])
				row = max(row-n, 0)
			case "K":
				lines[row] = ""
			case "J":
				lines[row] = ""
				lines = lines[:row+1]
			}
			i += len(m[0])
		default:
			lines[row] += string(c)
			i++
		}
	}
	for len(lines) > 0 && lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	return lines
}

// TestBarProgressTablesAtOnce: tables copied at once each have a live line;
// one that finishes leaves the block for a line of its own above it, in the
// order they finish, whatever the order they started.
func TestBarProgressTablesAtOnce(t *testing.T) {
	clock := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	var out bytes.Buffer
	p := newBarProgress(&out, 120, func() time.Time { return clock })
	p.every = 0
	type step struct {
		do   func()
		want []string // regular expressions, one per screen line
	}
	steps := []step{
		{func() { p.TableStart("public.rental", 16044, 0) },
			[]string{`^public\.rental +\[> +\]   0%  0/16 044 rows$`}},
		{func() { p.TableStart("public.actor", 200, 0) },
			[]string{`^public\.rental `, `^public\.actor +\[> +\]   0%  0/200 rows$`}},
		{func() { clock = clock.Add(2 * time.Second); p.Add("public.rental", 8022) },
			[]string{`^public\.rental +\[=+> +\]  50%  8 022/16 044 rows  4 011 rows/s  2s left$`, `^public\.actor `}},
		{func() { p.TableStart("public.film", 1000, 400) },
			[]string{`^public\.rental `, `^public\.actor `, `^public\.film +\[=+> +\]  40%  400/1 000 rows$`}},
		{func() {
			p.Add("public.actor", 200)
			p.TableDone(&pipeline.TableStats{Table: "public.actor", Rows: 200, Duration: time.Second})
		}, []string{`^public\.actor +done: 200 rows in 1s \(200 rows/s\)$`, `^public\.rental `, `^public\.film `}},
		{func() {
			p.TableDone(&pipeline.TableStats{Table: "public.film", Rows: 600, Chunks: 5, ChunksSkipped: 2,
				Failures: []pipeline.RowFailure{{}}, Duration: 2 * time.Second})
		}, []string{`^public\.actor +done`, `^public\.film +done: 600 rows in 2s \(300 rows/s\), 2 of 5 chunks done before, 1 rows failed$`, `^public\.rental `}},
		{func() {
			p.Add("public.rental", 8022)
			p.TableDone(&pipeline.TableStats{Table: "public.rental", Rows: 16044, Duration: 4 * time.Second})
		}, []string{`^public\.actor +done`, `^public\.film +done`, `^public\.rental +done: 16 044 rows in 4s \(4 011 rows/s\)$`}},
	}
	for i, s := range steps {
		s.do()
		got := screen(t, out.String())
		if len(got) != len(s.want) {
			t.Fatalf("step %d: screen\n%s\nwant %d lines", i, strings.Join(got, "\n"), len(s.want))
		}
		for j, re := range s.want {
			if !regexp.MustCompile(re).MatchString(got[j]) {
				t.Errorf("step %d line %d: %q does not match %q", i, j, got[j], re)
			}
		}
	}
}

func TestBarProgressCutsToWidth(t *testing.T) {
	var out bytes.Buffer
	p := newBarProgress(&out, 30, time.Now)
	p.TableStart("public.a_table_with_a_long_name", 10, 0)
	for _, l := range screen(t, out.String()) {
		if len(l) >= 30 {
			t.Errorf("line %q is %d wide on a 30-column terminal", l, len(l))
		}
	}
}

func TestCount(t *testing.T) {
	for n, want := range map[int64]string{0: "0", 999: "999", 1000: "1 000", 16044: "16 044", 1234567: "1 234 567", -4500: "-4 500"} {
		if got := count(n); got != want {
			t.Errorf("count(%d) = %q, want %q", n, got, want)
		}
	}
}
