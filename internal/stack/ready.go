package stack

import (
	"context"
	"fmt"
	"time"
)

// readyTimeout bounds the wait for a started server to answer requests.
const readyTimeout = 60 * time.Second

// poll calls check until it succeeds. It gives up when timeout passes, ctx is
// done, or the process pid (when > 0) has died. Each attempt gets 5 s (a
// loaded 2-core machine running -race binaries is slow to answer).
func poll(ctx context.Context, what string, timeout time.Duration, pid int, check func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		actx, acancel := context.WithTimeout(ctx, 5*time.Second)
		err := check(actx)
		acancel()
		if err == nil {
			return nil
		}
		if pid > 0 && !alive(pid) {
			return fmt.Errorf("stack: %s (pid %d) exited before it was ready: %w", what, pid, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("stack: %s not ready within %v: %w", what, timeout, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}
