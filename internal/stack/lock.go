package stack

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"syscall"
	"time"
)

// flockFile takes an exclusive flock on path (created if missing), waiting
// until it is free or ctx is done. The returned func releases it. The lock
// dies with the process, so a crashed holder never blocks the next one.
func flockFile(ctx context.Context, path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("stack: open lock %s: %w", path, err)
	}
	start := time.Now()
	warned := false
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() {
				_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
				_ = f.Close()
			}, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			_ = f.Close()
			return nil, fmt.Errorf("stack: flock %s: %w", path, err)
		}
		if !warned && time.Since(start) > 2*time.Second {
			slog.Info("stack: waiting for lock held by another process", "lock", path)
			warned = true
		}
		select {
		case <-ctx.Done():
			_ = f.Close()
			return nil, fmt.Errorf("stack: waiting for lock %s: %w", path, context.Cause(ctx))
		case <-time.After(50 * time.Millisecond):
		}
	}
}
