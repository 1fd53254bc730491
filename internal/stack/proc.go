package stack

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

const sigTerm = syscall.SIGTERM

// spawn starts a long-lived process detached from the caller: a session of
// its own (terminal signals and the caller's exit do not reach it), stdin from
// /dev/null and stdout/stderr appended to logPath, so it holds none of the
// caller's descriptors open (`make up` returns). A goroutine reaps it should it
// die while the caller still runs; afterwards init does.
func spawn(name string, args []string, workDir, logPath string) (int, error) {
	lf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return 0, fmt.Errorf("stack: open log: %w", err)
	}
	defer lf.Close() // the child has its own copy
	cmd := exec.Command(name, args...)
	cmd.Dir = workDir
	cmd.Stdout = lf
	cmd.Stderr = lf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("stack: start %s: %w", name, err)
	}
	go func() { _ = cmd.Wait() }()
	return cmd.Process.Pid, nil
}

// alive reports whether pid is a running process (zombies count as dead).
func alive(pid int) bool {
	if pid <= 0 {
		return false
	}
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// Fields after the parenthesised command name: " S ..." (state first).
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return true
	}
	switch b[i+2] {
	case 'Z', 'X', 'x':
		return false
	}
	return true
}

// ours reports whether pid is alive and its command line contains every
// marker: a recorded pid that the kernel reused for another program is not
// ours, and is never signalled.
func ours(pid int, markers ...string) bool {
	if !alive(pid) {
		return false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil {
		return false
	}
	cmdline := string(bytes.ReplaceAll(b, []byte{0}, []byte{' '}))
	for _, m := range markers {
		if !strings.Contains(cmdline, m) {
			return false
		}
	}
	return true
}

// terminate sends sig to pid and waits up to grace for it to die, then
// SIGKILLs it and waits a little longer.
func terminate(ctx context.Context, pid int, sig syscall.Signal, grace time.Duration) error {
	if !alive(pid) {
		return nil
	}
	if err := syscall.Kill(pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("stack: signal %d %v: %w", pid, sig, err)
	}
	if waitGone(ctx, pid, grace) {
		return nil
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("stack: kill %d: %w", pid, err)
	}
	if waitGone(ctx, pid, 5*time.Second) {
		return nil
	}
	return fmt.Errorf("stack: process %d still alive after SIGKILL", pid)
}

// waitGone polls until pid is dead, the timeout passes or ctx is done.
func waitGone(ctx context.Context, pid int, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for alive(pid) {
		if time.Now().After(deadline) {
			return false
		}
		select {
		case <-ctx.Done():
			return !alive(pid)
		case <-time.After(25 * time.Millisecond):
		}
	}
	return true
}

// freePort asks the kernel for a free TCP port on 127.0.0.1, preferring
// preferred (the port a previous run used) when it is free.
func freePort(preferred int) (int, error) {
	if preferred > 0 {
		if l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(preferred))); err == nil {
			_ = l.Close()
			return preferred, nil
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("stack: find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// tail returns the last n lines of a log file, for error messages.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// withLog adds the tail of a log file to an error.
func withLog(err error, logPath string) error {
	if t := tail(logPath, 15); t != "" {
		return fmt.Errorf("%w\n--- %s (last lines) ---\n%s", err, logPath, t)
	}
	return err
}
