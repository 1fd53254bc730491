package stack

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// emulator describes one of the node servers standing in for AWS.
type emulator struct {
	name string // also the log file's name
	// args are node's arguments for a port, run in the source directory.
	args func(port int) []string
	// marker is a piece of the command line that identifies our process.
	marker func(port int) string
	ping   func(ctx context.Context, endpoint string) error
}

var dynalite = emulator{
	name: "dynalite",
	args: func(port int) []string {
		return []string{"dynalite.js", strconv.Itoa(port)}
	},
	marker: func(port int) string { return "dynalite.js " + strconv.Itoa(port) + " " },
	ping:   dynamoPing,
}

var kinesalite = emulator{
	name:   "kinesalite",
	args:   func(port int) []string { return []string{"kinesalite.js", strconv.Itoa(port)} },
	marker: func(port int) string { return "kinesalite.js " + strconv.Itoa(port) + " " },
	ping:   kinesisPing,
}

func endpoint(port int) string { return "http://127.0.0.1:" + strconv.Itoa(port) }

// ours reports whether the recorded process is this emulator.
func (e emulator) ours(p procState) bool { return p.PID > 0 && ours(p.PID, e.marker(p.Port)) }

// up starts the emulator on a free port (the previous one when free) and
// waits until it answers. prev's process, if still ours, is stopped first.
func (e emulator) up(ctx context.Context, dir, src string, prev procState) (procState, error) {
	if e.ours(prev) {
		slog.Info("stack: restarting an emulator whose port is closed", "component", e.name, "pid", prev.PID)
		if err := terminate(ctx, prev.PID, sigTerm, 5*time.Second); err != nil {
			return procState{}, err
		}
	}
	node, err := exec.LookPath("node")
	if err != nil {
		return procState{}, fmt.Errorf("stack: node not found (run .ci/install-deps): %w", err)
	}
	logPath := filepath.Join(dir, "logs", e.name+".log")
	preferred := prev.Port
	for attempt := 1; ; attempt++ {
		port, err := freePort(preferred)
		if err != nil {
			return procState{}, err
		}
		before := fileSize(logPath)
		appendLine(logPath, fmt.Sprintf("=== %s starting on port %d", time.Now().UTC().Format(time.RFC3339), port))
		pid, err := spawn(node, e.args(port), src, logPath)
		if err != nil {
			return procState{}, err
		}
		err = poll(ctx, e.name, readyTimeout, pid, func(ctx context.Context) error {
			return e.ping(ctx, endpoint(port))
		})
		if err == nil {
			return procState{Port: port, PID: pid, Started: time.Now().UTC()}, nil
		}
		_ = terminate(context.WithoutCancel(ctx), pid, sigTerm, 2*time.Second)
		if attempt < 3 && logSince(logPath, before, "EADDRINUSE") {
			slog.Warn("stack: port taken, retrying", "component", e.name, "port", port)
			preferred = 0
			continue
		}
		return procState{}, withLog(err, logPath)
	}
}

// ensureNodeModules runs `npm ci` in the source directory when node_modules
// is missing or older than package-lock.json. A flock on package-lock.json
// keeps concurrent stacks (and test binaries) from installing at once.
func ensureNodeModules(ctx context.Context, src, logs string) error {
	if nodeModulesFresh(src) {
		return nil
	}
	unlock, err := flockFile(ctx, filepath.Join(src, "package-lock.json"))
	if err != nil {
		return err
	}
	defer unlock()
	if nodeModulesFresh(src) { // installed while we waited
		return nil
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		return fmt.Errorf("stack: npm not found (run .ci/install-deps): %w", err)
	}
	start := time.Now()
	slog.Info("stack: installing dynalite and kinesalite", "cmd", "npm ci", "dir", src)
	logPath := filepath.Join(logs, "npm.log")
	lf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("stack: open log: %w", err)
	}
	defer lf.Close()
	// --ignore-scripts: the native leveldb modules ship prebuilt binaries that
	// node-gyp-build picks at run time (and in-memory use never loads them);
	// an install script could only try a compile, which needs the network.
	cmd := exec.CommandContext(ctx, npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts")
	cmd.Dir = src
	cmd.Stdout = lf
	cmd.Stderr = lf
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil {
		return withLog(fmt.Errorf("stack: npm ci in %s: %w", src, err), logPath)
	}
	slog.Info("stack: npm ci done", "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// nodeModulesFresh: npm writes node_modules/.package-lock.json last, so it is
// newer than package-lock.json after a complete install.
func nodeModulesFresh(src string) bool {
	lock, err := os.Stat(filepath.Join(src, "package-lock.json"))
	if err != nil {
		return false
	}
	hidden, err := os.Stat(filepath.Join(src, "node_modules", ".package-lock.json"))
	if err != nil || hidden.ModTime().Before(lock.ModTime()) {
		return false
	}
	for _, f := range []string{"dynalite/cli.js", "kinesalite/index.js"} {
		if _, err := os.Stat(filepath.Join(src, "node_modules", f)); err != nil {
			return false
		}
	}
	return true
}

func appendLine(path, line string) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return
	}
	defer f.Close()
	_, _ = f.WriteString(line + "\n")
}

// logSince reports whether the log has s after offset.
func logSince(path string, offset int64, s string) bool {
	b, err := os.ReadFile(path)
	if err != nil || int64(len(b)) < offset {
		return false
	}
	return strings.Contains(string(b[offset:]), s)
}
