package stack

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// EnvPGBinDir overrides where the PostgreSQL 15 server binaries are looked for.
const EnvPGBinDir = "FERRY_PG_BINDIR"

const pgMajor = "15"

// pgRunner runs PostgreSQL's tools: directly, or as the unprivileged postgres
// OS user through runuser when we are root (initdb and postgres refuse root).
type pgRunner struct {
	bindir   string
	asUser   bool
	uid, gid int
}

func newPGRunner(ctx context.Context, bindir string) (*pgRunner, error) {
	if bindir == "" {
		var err error
		if bindir, err = findPGBinDir(ctx); err != nil {
			return nil, err
		}
	}
	r := &pgRunner{bindir: bindir}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("stack: running as root needs the postgres OS user (run .ci/install-deps): %w", err)
		}
		r.asUser = true
		r.uid, _ = strconv.Atoi(u.Uid)
		r.gid, _ = strconv.Atoi(u.Gid)
		if _, err := exec.LookPath("runuser"); err != nil {
			return nil, fmt.Errorf("stack: running as root needs runuser (util-linux): %w", err)
		}
	}
	return r, nil
}

// findPGBinDir finds the PostgreSQL 15 server binaries: $FERRY_PG_BINDIR,
// `pg_config --bindir` (Debian keeps them off PATH), /usr/lib/postgresql/15/bin.
func findPGBinDir(ctx context.Context) (string, error) {
	var cands []string
	if d := os.Getenv(EnvPGBinDir); d != "" {
		cands = append(cands, d)
	}
	if out, err := exec.CommandContext(ctx, "pg_config", "--bindir").Output(); err == nil {
		cands = append(cands, strings.TrimSpace(string(out)))
	}
	cands = append(cands, "/usr/lib/postgresql/"+pgMajor+"/bin")
	var problems []string
	for _, d := range cands {
		err := checkPGBinDir(ctx, d)
		if err == nil {
			return d, nil
		}
		problems = append(problems, err.Error())
	}
	return "", fmt.Errorf("stack: PostgreSQL %s server binaries not found (%s); run .ci/install-deps",
		pgMajor, strings.Join(problems, "; "))
}

func checkPGBinDir(ctx context.Context, d string) error {
	for _, tool := range []string{"initdb", "pg_ctl", "postgres", "psql"} {
		if _, err := os.Stat(filepath.Join(d, tool)); err != nil {
			return fmt.Errorf("%s: no %s", d, tool)
		}
	}
	out, err := exec.CommandContext(ctx, filepath.Join(d, "postgres"), "--version").Output()
	if err != nil {
		return fmt.Errorf("%s: postgres --version: %w", d, err)
	}
	// "postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)"
	f := strings.Fields(string(out))
	if len(f) < 3 || !strings.HasPrefix(f[2], pgMajor+".") {
		return fmt.Errorf("%s: %s is not PostgreSQL %s", d, strings.TrimSpace(string(out)), pgMajor)
	}
	return nil
}

// command builds a command for one of PostgreSQL's tools.
func (r *pgRunner) command(ctx context.Context, tool string, args ...string) *exec.Cmd {
	bin := filepath.Join(r.bindir, tool)
	var cmd *exec.Cmd
	if r.asUser {
		cmd = exec.CommandContext(ctx, "runuser", append([]string{"-u", "postgres", "--", bin}, args...)...)
	} else {
		cmd = exec.CommandContext(ctx, bin, args...)
	}
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// run runs a tool with its output appended to logPath; errors carry the log's tail.
func (r *pgRunner) run(ctx context.Context, workDir, logPath, tool string, args ...string) error {
	lf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("stack: open log: %w", err)
	}
	defer lf.Close()
	fmt.Fprintf(lf, "=== %s %s %s\n", time.Now().UTC().Format(time.RFC3339), tool, strings.Join(args, " "))
	cmd := r.command(ctx, tool, args...)
	cmd.Dir = workDir
	cmd.Stdout = lf
	cmd.Stderr = lf
	if err := cmd.Run(); err != nil {
		return withLog(fmt.Errorf("stack: %s: %w", tool, err), logPath)
	}
	return nil
}

// own hands path to the postgres user when we run PostgreSQL as that user.
func (r *pgRunner) own(path string) error {
	if !r.asUser {
		return nil
	}
	if err := os.Chown(path, r.uid, r.gid); err != nil {
		return fmt.Errorf("stack: chown %s to postgres: %w", path, err)
	}
	return nil
}

// running reports whether a postmaster runs on dataDir (pg_ctl status exits 0).
func (r *pgRunner) running(ctx context.Context, dataDir string) bool {
	if _, err := os.Stat(filepath.Join(dataDir, "postmaster.pid")); err != nil {
		return false
	}
	return r.command(ctx, "pg_ctl", "status", "-D", dataDir).Run() == nil
}

// stop shuts the postmaster on dataDir down with `pg_ctl stop -m fast`.
func (r *pgRunner) stop(ctx context.Context, dir, dataDir string) error {
	return r.run(ctx, dir, filepath.Join(dir, "logs", "pg_ctl.log"),
		"pg_ctl", "stop", "-D", dataDir, "-m", "fast", "-w", "-t", "60")
}

// ensureTraversable lets the postgres user reach path: every parent directory
// without the o+x bit gets it (a repository under /root, say). Only when we
// run PostgreSQL as another user.
func (r *pgRunner) ensureTraversable(path string) error {
	if !r.asUser {
		return nil
	}
	for d := filepath.Dir(path); ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil {
			return fmt.Errorf("stack: %w", err)
		}
		if fi.Mode().Perm()&0o001 == 0 {
			slog.Warn("stack: adding o+x so the postgres user can reach the stack", "dir", d)
			if err := os.Chmod(d, fi.Mode().Perm()|0o001); err != nil {
				return fmt.Errorf("stack: chmod o+x %s: %w", d, err)
			}
		}
		if filepath.Dir(d) == d {
			return nil
		}
	}
}

// postmasterPID reads the postmaster's pid from dataDir/postmaster.pid.
func postmasterPID(dataDir string) (int, error) {
	b, err := os.ReadFile(filepath.Join(dataDir, "postmaster.pid"))
	if err != nil {
		return 0, fmt.Errorf("stack: read postmaster.pid: %w", err)
	}
	first, _, _ := strings.Cut(string(b), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(first))
	if err != nil {
		return 0, fmt.Errorf("stack: parse postmaster.pid: %w", err)
	}
	return pid, nil
}

// socketDir is dir/sock, or a short directory under /tmp when dir is too long
// for a unix socket path (107 bytes including "/.s.PGSQL.NNNNN").
func socketDir(dir string) string {
	d := filepath.Join(dir, "sock")
	if len(d) <= 90 {
		return d
	}
	return filepath.Join(os.TempDir(), fmt.Sprintf("ferry-sock-%08x", fnv32(dir)))
}

func fnv32(s string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(s); i++ {
		h ^= uint32(s[i])
		h *= 16777619
	}
	return h
}

var errPortInUse = errors.New("port in use")

// ours reports whether the recorded postmaster still runs on our data dir.
func (p pgState) ours() bool {
	return p.PID > 0 && p.DataDir != "" && ours(p.PID, "postgres -D "+p.DataDir+" -p "+strconv.Itoa(p.Port)+" ")
}
