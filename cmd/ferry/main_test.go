package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferry-migrate/ferry/internal/stack"
)

// ferryBin is the ferry binary built once for the tests that kill it.
var ferryBin string

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	st, err := stack.Shared(ctx)
	if err != nil {
		fmt.Fprintf(os.Stderr, "local stack did not come up: %v (run .ci/install-deps on a fresh machine)\n", err)
		return 1
	}
	// The CLI reads the standard AWS chain; point it at the local emulators.
	for _, kv := range st.Env() {
		k, v, _ := strings.Cut(kv, "=")
		if k != "FERRY_SOURCE" {
			os.Setenv(k, v)
		}
	}
	for _, e := range os.Environ() {
		// FERRY_* variables would act as flags of the CLI under test; keep the
		// stack location and the tests' own knobs.
		if strings.HasPrefix(e, "FERRY_") && !strings.HasPrefix(e, "FERRY_STACK_DIR=") && !strings.HasPrefix(e, "FERRY_TEST_") {
			k, _, _ := strings.Cut(e, "=")
			os.Unsetenv(k)
		}
	}
	dir, err := os.MkdirTemp("", "ferry-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	ferryBin = filepath.Join(dir, "ferry")
	if out, err := exec.Command("go", "build", "-o", ferryBin, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build ferry: %v\n%s", err, out)
		return 1
	}
	return m.Run()
}

// runFerry runs the CLI in-process and returns exit code, stdout and stderr.
func runFerry(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return code, out.String(), errb.String()
}
