package stack

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"
)

// Stack is a running local stack: where it lives and how to reach it.
type Stack struct {
	Dir                             string
	PGPort, DynamoPort, KinesisPort int
	// SourceURL is the demo database (pagila):
	// postgres://postgres@127.0.0.1:PORT/pagila?sslmode=disable
	SourceURL       string
	DynamoEndpoint  string // http://127.0.0.1:PORT (dynalite)
	KinesisEndpoint string // http://127.0.0.1:PORT (kinesalite)
	Region          string // "us-east-1"

	// PGPID, DynamoPID and KinesisPID are the postmaster's and the two node
	// servers' pids, as recorded in state.json.
	PGPID, DynamoPID, KinesisPID int
	// Reused is true when Up found the stack already running.
	Reused bool
}

func newStack(dir string, st state) *Stack {
	return &Stack{
		Dir:             dir,
		PGPort:          st.Postgres.Port,
		DynamoPort:      st.Dynamo.Port,
		KinesisPort:     st.Kinesis.Port,
		SourceURL:       pgURL(st.Postgres.Port, DemoDB),
		DynamoEndpoint:  endpoint(st.Dynamo.Port),
		KinesisEndpoint: endpoint(st.Kinesis.Port),
		Region:          Region,
		PGPID:           st.Postgres.PID,
		DynamoPID:       st.Dynamo.PID,
		KinesisPID:      st.Kinesis.PID,
	}
}

// Shared is Up(ctx, Dir()): the stack shared by `make up` and every test binary.
func Shared(ctx context.Context) (*Stack, error) {
	dir, err := Dir()
	if err != nil {
		return nil, err
	}
	return Up(ctx, dir)
}

// Up starts the stack in dir, or reuses it when its recorded pids are alive
// (and still our programs) and its ports accept connections; a component
// that is down is (re)started alone. It is serialised across processes with a flock on
// dir/lock, so parallel test binaries share one stack. The processes outlive
// the caller; ctx bounds only the start-up.
//
// A cold start builds a fresh PostgreSQL cluster in dir/pg (Pagila loaded
// into pagila_template, cloned to pagila) and runs `npm ci` first when
// node_modules is missing or stale. If Up fails, what it did start is
// recorded, so Down stops it.
func Up(ctx context.Context, dir string) (*Stack, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("stack: %w", err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "logs"), 0o755); err != nil {
		return nil, fmt.Errorf("stack: %w", err)
	}
	unlock, err := flockFile(ctx, filepath.Join(dir, "lock"))
	if err != nil {
		return nil, err
	}
	defer unlock()

	st, err := loadState(dir)
	if err != nil {
		return nil, err
	}
	h := checkHealth(ctx, st)
	if h.all() {
		s := newStack(dir, st)
		s.Reused = true
		slog.Debug("stack: reusing running stack", "dir", dir)
		return s, nil
	}

	start := time.Now()
	src, err := sourceDir()
	if err != nil {
		return nil, err
	}
	sf := &stateFile{dir: dir, st: st}
	g, gctx := errgroup.WithContext(ctx)
	if !h.pg {
		g.Go(func() error { return upPostgres(gctx, dir, src, sf) })
	}
	if !h.dynamo || !h.kinesis {
		g.Go(func() error {
			if err := ensureNodeModules(gctx, src, filepath.Join(dir, "logs")); err != nil {
				return err
			}
			for _, c := range []struct {
				ok   bool
				e    emulator
				slot func(*state) *procState
			}{
				{h.dynamo, dynalite, func(s *state) *procState { return &s.Dynamo }},
				{h.kinesis, kinesalite, func(s *state) *procState { return &s.Kinesis }},
			} {
				if c.ok {
					continue
				}
				cur := sf.get()
				prev := *c.slot(&cur)
				p, err := c.e.up(gctx, dir, src, prev)
				if err != nil {
					return err
				}
				if err := sf.update(func(s *state) { *c.slot(s) = p }); err != nil {
					return err
				}
				slog.Info("stack: started", "component", c.e.name, "port", p.Port, "pid", p.PID)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	slog.Info("stack: up", "dir", dir, "took", time.Since(start).Round(time.Millisecond))
	return newStack(dir, sf.get()), nil
}

// Running returns the stack in dir if it is up and answering, without
// starting anything (an error otherwise).
func Running(ctx context.Context, dir string) (*Stack, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("stack: %w", err)
	}
	st, err := loadState(dir)
	if err != nil {
		return nil, err
	}
	if h := checkHealth(ctx, st); !h.all() {
		return nil, fmt.Errorf("stack: not running in %s (%s); start it with `make up`", dir, h)
	}
	return newStack(dir, st), nil
}

// Down stops exactly the processes Up started, by the pids it recorded (a pid
// now used by another program is left alone), and removes nothing else: the
// data directory, logs and env file stay. PostgreSQL is stopped with
// `pg_ctl stop -m fast`, the emulators with SIGTERM. Stopping a stopped stack
// is a no-op.
func Down(ctx context.Context, dir string) error {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return fmt.Errorf("stack: %w", err)
	}
	if _, err := os.Stat(statePath(dir)); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	unlock, err := flockFile(ctx, filepath.Join(dir, "lock"))
	if err != nil {
		return err
	}
	defer unlock()
	st, err := loadState(dir)
	if err != nil {
		return err
	}

	var errs []error
	if pg := st.Postgres; pg.ours() {
		if err := downPostgres(ctx, dir, pg); err != nil {
			errs = append(errs, err)
		} else {
			slog.Info("stack: stopped", "component", "postgres", "pid", pg.PID)
		}
	}
	for _, c := range []struct {
		e emulator
		p procState
	}{{dynalite, st.Dynamo}, {kinesalite, st.Kinesis}} {
		if !c.e.ours(c.p) {
			continue
		}
		if err := terminate(ctx, c.p.PID, sigTerm, 5*time.Second); err != nil {
			errs = append(errs, fmt.Errorf("stack: stop %s: %w", c.e.name, err))
		} else {
			slog.Info("stack: stopped", "component", c.e.name, "pid", c.p.PID)
		}
	}
	for _, p := range []*procState{&st.Postgres.procState, &st.Dynamo, &st.Kinesis} {
		if !alive(p.PID) {
			p.PID = 0 // keep the port: the next Up prefers it
		}
	}
	st.Postgres.Loaded = st.Postgres.Loaded && st.Postgres.PID > 0
	if err := writeState(dir, st); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// downPostgres runs `pg_ctl stop -m fast` and waits for the postmaster to go;
// if pg_ctl cannot do it, the postmaster gets SIGINT (fast shutdown) and,
// after a grace period, SIGKILL.
func downPostgres(ctx context.Context, dir string, pg pgState) error {
	r, err := newPGRunner(ctx, pg.BinDir)
	if err == nil {
		err = r.stop(ctx, dir, pg.DataDir)
	}
	if err == nil && waitGone(ctx, pg.PID, 10*time.Second) {
		return nil
	}
	slog.Warn("stack: pg_ctl stop did not stop postgres, signalling it", "pid", pg.PID, "err", err)
	if terr := terminate(ctx, pg.PID, syscall.SIGINT, 30*time.Second); terr != nil {
		return errors.Join(err, terr)
	}
	return nil
}
