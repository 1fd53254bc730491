package lambdaesm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// environment is one RIE process.
type environment struct {
	n    int
	cmd  *exec.Cmd
	addr string        // host:port of the invoke API
	done chan struct{} // closed when the process has exited
	log  io.WriteCloser
}

// functionEnv is the emulator's environment, which it hands on whole to the
// function (see StartRuntime).
func functionEnv(cfg RuntimeConfig) []string {
	root := filepath.Dir(cfg.Bootstrap)
	env := []string{
		"AWS_REGION=" + cfg.Region,
		"AWS_DEFAULT_REGION=" + cfg.Region,
		"AWS_LAMBDA_FUNCTION_NAME=" + cfg.FunctionName,
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE=" + strconv.Itoa(cfg.MemoryMB),
		"AWS_LAMBDA_FUNCTION_VERSION=$LATEST",
		"AWS_LAMBDA_FUNCTION_TIMEOUT=" + strconv.Itoa(int(cfg.Timeout/time.Second)), // read by the RIE
		"AWS_LAMBDA_INITIALIZATION_TYPE=on-demand",
		"AWS_LAMBDA_LOG_GROUP_NAME=/aws/lambda/" + cfg.FunctionName,
		"AWS_LAMBDA_LOG_STREAM_NAME=$LATEST",
		"LAMBDA_TASK_ROOT=" + root,
		"LAMBDA_RUNTIME_DIR=" + root,
		"LANG=en_US.UTF-8",
		"TZ=:UTC",
		"PATH=" + os.Getenv("PATH"),
	}
	return append(env, cfg.Env...)
}

// start launches environment n, retrying with other ports when one was taken
// between choosing it and the emulator binding it.
func (r *Runtime) start(ctx context.Context, n int) (*environment, error) {
	var last error
	for range 3 {
		e, err := r.startOnce(ctx, n)
		if err == nil {
			return e, nil
		}
		last = err
		if ctx.Err() != nil {
			break
		}
	}
	return nil, fmt.Errorf("lambdaesm: start environment %d: %w", n, last)
}

func (r *Runtime) startOnce(ctx context.Context, n int) (*environment, error) {
	ports, err := freePorts(2)
	if err != nil {
		return nil, err
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0]))
	api := net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[1]))
	cmd := exec.Command(r.cfg.RIE,
		"--runtime-interface-emulator-address", addr,
		"--runtime-api-address", api,
		"--log-level", r.cfg.RIELogLevel,
		r.cfg.Bootstrap)
	cmd.Dir = filepath.Dir(r.cfg.Bootstrap)
	cmd.Env = r.env
	// Its own process group, killed with the test process if that dies.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	logw := io.WriteCloser(nopCloser{io.Discard})
	if r.cfg.LogDir != "" {
		f, err := os.OpenFile(filepath.Join(r.cfg.LogDir, fmt.Sprintf("env-%d.log", n)), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			return nil, err
		}
		logw = f
	}
	cmd.Stdout, cmd.Stderr = logw, logw
	if err := cmd.Start(); err != nil {
		logw.Close()
		return nil, err
	}
	e := &environment{n: n, cmd: cmd, addr: addr, done: make(chan struct{}), log: logw}
	go func() {
		_ = cmd.Wait()
		close(e.done)
	}()
	r.mu.Lock()
	r.all = append(r.all, e)
	closed := r.closed
	r.mu.Unlock()
	if closed {
		e.stop()
		return nil, errors.New("runtime closed")
	}
	if err := waitListening(ctx, addr, e.done); err != nil {
		e.stop()
		return nil, err
	}
	r.cfg.Logger.Debug("lambda environment started", "env", n, "addr", addr, "pid", cmd.Process.Pid)
	return e, nil
}

// waitListening waits until addr accepts connections, the process exits
// (done), ctx ends, or 10 s pass. The emulator binds before it starts
// anything else, so a connect is its readiness.
func waitListening(ctx context.Context, addr string, done <-chan struct{}) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	var d net.Dialer
	for {
		c, err := d.DialContext(ctx, "tcp", addr)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-done:
			return fmt.Errorf("emulator exited before listening on %s (see its log)", addr)
		case <-ctx.Done():
			return fmt.Errorf("emulator not listening on %s: %w", addr, ctx.Err())
		case <-tick.C:
		}
	}
}

func freePorts(n int) ([]int, error) {
	var ports []int
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("free port: %w", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// stop ends the emulator and its runtime; safe to call more than once.
func (e *environment) stop() {
	defer e.log.Close()
	select {
	case <-e.done:
		return
	default:
	}
	pid := e.cmd.Process.Pid
	children := childPIDs(pid)
	_ = syscall.Kill(pid, syscall.SIGTERM)
	select {
	case <-e.done:
	case <-time.After(3 * time.Second):
	}
	for _, c := range children {
		_ = syscall.Kill(-c, syscall.SIGKILL) // the runtime's own group (the RIE sets Setpgid)
	}
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	<-e.done
}

// childPIDs lists the children of pid from /proc (Linux).
func childPIDs(pid int) []int {
	var out []int
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	for _, t := range tasks {
		data, err := os.ReadFile(t)
		if err != nil {
			continue
		}
		for _, f := range strings.Fields(string(data)) {
			if c, err := strconv.Atoi(f); err == nil {
				out = append(out, c)
			}
		}
	}
	return out
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }
