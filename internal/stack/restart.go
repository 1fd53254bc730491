package stack

import (
	"context"
	"fmt"
	"log/slog"
	"time"
)

// RestartPostgres stops this stack's PostgreSQL (fast shutdown: every session
// and walsender is disconnected) and starts it again on the same port, then
// records the new postmaster pid so that Down still stops it. For fault tests
// on a private stack (Up in a directory of their own): restarting the shared
// stack would break every other test using it.
func (s *Stack) RestartPostgres(ctx context.Context) error {
	start := time.Now()
	st, err := loadState(s.Dir)
	if err != nil {
		return err
	}
	pg := st.Postgres
	if !pg.ours() {
		return fmt.Errorf("stack: no postgres of this stack is running in %s", s.Dir)
	}
	r, err := newPGRunner(ctx, pg.BinDir)
	if err != nil {
		return err
	}
	if err := r.stop(ctx, s.Dir, pg.DataDir); err != nil {
		return err
	}
	if err := startCluster(ctx, r, s.Dir, pg.DataDir, pg.Port); err != nil {
		return err
	}
	if pg.PID, err = postmasterPID(pg.DataDir); err != nil {
		return err
	}
	pg.Started = time.Now().UTC()
	st.Postgres = pg
	if err := writeState(s.Dir, st); err != nil {
		return err
	}
	s.PGPID = pg.PID
	if err := poll(ctx, "postgres", readyTimeout, pg.PID, func(ctx context.Context) error {
		return pgPing(ctx, pgURL(pg.Port, "postgres"))
	}); err != nil {
		return err
	}
	slog.Info("stack: restarted", "component", "postgres", "port", pg.Port, "pid", pg.PID, "took", time.Since(start).Round(time.Millisecond))
	return nil
}
