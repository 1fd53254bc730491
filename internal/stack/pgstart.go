package stack

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// pgConfig is appended to the fresh cluster's postgresql.conf.
//
// fsync and full_page_writes are off: this cluster is a throwaway local
// stack, rebuilt by every cold Up, and durability across an OS crash buys
// nothing here. Never copy these settings anywhere data matters.
//
// synchronous_commit stays on, as on a production source: a commit then
// flushes its WAL (a write without fsync here) and wakes the walsender at
// once. Off, the WAL writer flushed only every wal_writer_delay (200 ms),
// and logical decoding, which reads only flushed WAL, delivered every change
// up to 200 ms late: that was the whole p50 of sync's measured latency.
const pgConfig = `
# --- ferry local stack (internal/stack) ---
listen_addresses = '127.0.0.1'
unix_socket_directories = '%s'
wal_level = logical
max_replication_slots = 20
max_wal_senders = 20
max_connections = 200
fsync = off
synchronous_commit = on
full_page_writes = off
timezone = 'UTC'
log_timezone = 'UTC'
ssl = on
`

// upPostgres builds a fresh cluster in dir/pg, starts it on a free port and
// loads Pagila, recording each step in sf. Any postmaster still running on
// dir/pg (an unhealthy one, or one whose state was lost) is ours: it is
// stopped first.
func upPostgres(ctx context.Context, dir, src string, sf *stateFile) error {
	start := time.Now()
	prev := sf.get().Postgres
	r, err := newPGRunner(ctx, "")
	if err != nil {
		return err
	}
	logs := filepath.Join(dir, "logs")
	dataDir := filepath.Join(dir, "pg")
	sockDir := socketDir(dir)

	if r.running(ctx, dataDir) {
		slog.Info("stack: stopping a postgres left on the data directory", "dir", dataDir)
		if err := r.stop(ctx, dir, dataDir); err != nil {
			return err
		}
	}
	if err := initCluster(ctx, r, dir, dataDir, sockDir); err != nil {
		return err
	}

	st := pgState{BinDir: r.bindir, DataDir: dataDir, SocketDir: sockDir}
	for attempt := 1; ; attempt++ {
		port, err := freePort(prev.Port)
		if err != nil {
			return err
		}
		err = startCluster(ctx, r, dir, dataDir, port)
		if errors.Is(err, errPortInUse) && attempt < 3 {
			slog.Warn("stack: postgres port taken, retrying", "port", port)
			prev.Port = 0
			continue
		}
		if err != nil {
			return err
		}
		st.Port = port
		break
	}
	if st.PID, err = postmasterPID(dataDir); err != nil {
		return err
	}
	st.Started = time.Now().UTC()
	if err := sf.update(func(s *state) { s.Postgres = st }); err != nil {
		return err
	}
	if err := poll(ctx, "postgres", readyTimeout, st.PID, func(ctx context.Context) error {
		return pgPing(ctx, pgURL(st.Port, "postgres"))
	}); err != nil {
		return withLog(err, filepath.Join(logs, "postgres.log"))
	}
	slog.Info("stack: started", "component", "postgres", "port", st.Port, "pid", st.PID, "took", time.Since(start).Round(time.Millisecond))

	loadStart := time.Now()
	if err := loadPagila(ctx, r.bindir, st.Port, src, logs); err != nil {
		return err
	}
	slog.Info("stack: pagila loaded", "component", "postgres", "took", time.Since(loadStart).Round(time.Millisecond))
	return sf.update(func(s *state) { s.Postgres.Loaded = true })
}

// initCluster replaces dataDir with a fresh initdb'd cluster configured for
// the stack.
func initCluster(ctx context.Context, r *pgRunner, dir, dataDir, sockDir string) error {
	if err := os.RemoveAll(dataDir); err != nil {
		return fmt.Errorf("stack: remove old cluster: %w", err)
	}
	for _, d := range []struct {
		path string
		mode os.FileMode
	}{{dataDir, 0o700}, {sockDir, 0o755}} {
		if err := os.MkdirAll(d.path, d.mode); err != nil {
			return fmt.Errorf("stack: %w", err)
		}
		if err := os.Chmod(d.path, d.mode); err != nil {
			return fmt.Errorf("stack: %w", err)
		}
		if err := r.own(d.path); err != nil {
			return err
		}
		if err := r.ensureTraversable(d.path); err != nil {
			return err
		}
	}
	// postgres (maybe another user) appends to its log through pg_ctl -l.
	pgLog := filepath.Join(dir, "logs", "postgres.log")
	f, err := os.OpenFile(pgLog, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("stack: %w", err)
	}
	_ = f.Close()
	if err := r.own(pgLog); err != nil {
		return err
	}

	locale := "C"
	if _, err := os.Stat("/usr/lib/locale/C.utf8"); err == nil {
		locale = "C.UTF-8"
	}
	if err := r.run(ctx, dir, filepath.Join(dir, "logs", "initdb.log"), "initdb",
		"-D", dataDir, "--auth=trust", "-U", "postgres", "--encoding=UTF8",
		"--locale="+locale, "--no-sync", "--no-instructions"); err != nil {
		return err
	}
	if err := writeServerCert(r, dir, dataDir); err != nil {
		return err
	}
	conf := fmt.Sprintf(pgConfig, strings.ReplaceAll(sockDir, "'", "''"))
	f, err = os.OpenFile(filepath.Join(dataDir, "postgresql.conf"), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return fmt.Errorf("stack: configure cluster: %w", err)
	}
	if _, err := f.WriteString(conf); err != nil {
		_ = f.Close()
		return fmt.Errorf("stack: configure cluster: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("stack: configure cluster: %w", err)
	}
	return nil
}

// startCluster runs `pg_ctl start` (which waits for the server and returns;
// the postmaster runs on in its own session, its output in logs/postgres.log).
func startCluster(ctx context.Context, r *pgRunner, dir, dataDir string, port int) error {
	pgLog := filepath.Join(dir, "logs", "postgres.log")
	before := fileSize(pgLog)
	err := r.run(ctx, dir, filepath.Join(dir, "logs", "pg_ctl.log"), "pg_ctl", "start",
		"-D", dataDir, "-l", pgLog, "-w", "-t", "60", "-o", "-p "+strconv.Itoa(port))
	if err == nil {
		return nil
	}
	if b, rerr := os.ReadFile(pgLog); rerr == nil && int64(len(b)) > before &&
		strings.Contains(string(b[before:]), "Address already in use") {
		return fmt.Errorf("stack: postgres on port %d: %w", port, errPortInUse)
	}
	return withLog(err, pgLog)
}

func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}
