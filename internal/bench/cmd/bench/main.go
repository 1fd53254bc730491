// Command bench runs ferry's benchmarks against the physical limits measured
// in the same run, prints the table and writes it into BENCHMARKS.md
// (`make bench [FACTOR=N]`). See package internal/bench.
//
//	go run ./internal/bench/cmd/bench -factor 10 -ferry bin/ferry -out BENCHMARKS.md
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ferry-migrate/ferry/internal/bench"
	"github.com/ferry-migrate/ferry/internal/stack"
)

func main() {
	factor := flag.Int("factor", 10, "scale of the database for the extract and decode pairs (ferry workload scale)")
	rss := flag.String("rss-factors", "1,10,100", "scales at which the null-sink backfill's peak RSS is measured (comma-separated)")
	runs := flag.Int("runs", 5, "runs per figure of the fast pairs")
	slowRuns := flag.Int("slow-runs", 3, "runs per figure of the slow pairs (dynalite backfill, latency windows)")
	changes := flag.Float64("changes", 500, "latency pair: workload rate in changed rows per second")
	lower := flag.String("lower-changes", "150,300", "latency pair: lower rates measured first, one window each (comma-separated; \"\" = none)")
	window := flag.Duration("window", 20*time.Second, "latency pair: length of one measuring window")
	only := flag.String("only", "", "comma-separated pairs to run: extract, dynamo, decode, latency, apply, workers, verify, rss (default: all)")
	ferry := flag.String("ferry", "bin/ferry", "the ferry binary under test")
	out := flag.String("out", "BENCHMARKS.md", "file whose generated section receives the results (\"\" = none)")
	stackDir := flag.String("stack-dir", "", "directory of the bench's own local stack (default <repo>/.local/bench)")
	keep := flag.Bool("keep", false, "leave the bench stack running afterwards (its scaled databases are reused next time)")
	profile := flag.String("profile", "", "directory for CPU profiles of the ferry children (FERRY_CPUPROFILE)")
	flag.Parse()
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo})))

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *factor, *rss, *runs, *slowRuns, *changes, *lower, *window, *only, *ferry, *out, *stackDir, *keep, *profile); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, factor int, rss string, runs, slowRuns int, changes float64, lower string, window time.Duration,
	only, ferry, out, stackDir string, keep bool, profile string) error {
	if factor < 1 || runs < 1 || slowRuns < 1 {
		return fmt.Errorf("-factor, -runs and -slow-runs must be at least 1")
	}
	cfg := bench.Config{Factor: factor, Runs: runs, SlowRuns: slowRuns, Changes: changes, Window: window}
	for _, f := range strings.Split(rss, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 {
			return fmt.Errorf("-rss-factors: %q is not a scale", f)
		}
		cfg.RSSFactors = append(cfg.RSSFactors, n)
	}
	for _, f := range strings.Split(lower, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		v, err := strconv.ParseFloat(f, 64)
		if err != nil || v <= 0 {
			return fmt.Errorf("-lower-changes: %q is not a rate", f)
		}
		cfg.LowerChanges = append(cfg.LowerChanges, v)
	}
	if only != "" {
		cfg.Only = strings.Split(only, ",")
	}
	repo, err := repoRoot()
	if err != nil {
		return err
	}
	if ferry, err = filepath.Abs(ferry); err != nil {
		return err
	}
	if _, err := os.Stat(ferry); err != nil {
		return fmt.Errorf("ferry binary: %w (run `make build`)", err)
	}
	if stackDir == "" {
		stackDir = filepath.Join(repo, ".local", "bench")
	}
	work, err := os.MkdirTemp("", "ferry-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	if profile != "" {
		if profile, err = filepath.Abs(profile); err != nil {
			return err
		}
		if err := os.MkdirAll(profile, 0o755); err != nil {
			return err
		}
	}

	upCtx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	st, err := stack.Up(upCtx, stackDir)
	cancel()
	if err != nil {
		return err
	}
	if !st.Reused && !keep {
		defer func() {
			dctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if err := stack.Down(dctx, stackDir); err != nil {
				slog.Warn("bench: stop the bench stack", "err", err)
			}
		}()
	}
	env := &bench.Env{Stack: st, Ferry: ferry, Repo: repo, Work: work, Profile: profile, Log: slog.Default()}
	rep, err := bench.Run(ctx, env, cfg)
	if rep != nil && len(rep.Rows) > 0 {
		rep.Text(os.Stdout)
		if out != "" && err == nil {
			if werr := rep.WriteFile(out); werr != nil {
				return werr
			}
			fmt.Printf("\nwritten to %s\n", out)
		}
	}
	return err
}

func repoRoot() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := wd; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("no go.mod above %s: run from the ferry repository", wd)
		}
	}
}
