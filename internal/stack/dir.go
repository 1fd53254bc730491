package stack

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
)

// EnvStackDir names the variable that overrides the stack directory.
const EnvStackDir = "FERRY_STACK_DIR"

// Dir resolves the stack directory: $FERRY_STACK_DIR if set, else
// <repo root>/.local (repo root = nearest parent of the working directory with
// a go.mod). The directory need not exist yet.
func Dir() (string, error) {
	if d := os.Getenv(EnvStackDir); d != "" {
		abs, err := filepath.Abs(d)
		if err != nil {
			return "", fmt.Errorf("stack: resolve %s=%q: %w", EnvStackDir, d, err)
		}
		return abs, nil
	}
	root, err := repoRoot()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, ".local"), nil
}

// repoRoot is the nearest parent of the working directory that holds go.mod.
func repoRoot() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("stack: working directory: %w", err)
	}
	for d := wd; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("stack: no go.mod in %s or any parent (run from inside the ferry repository or set %s)", wd, EnvStackDir)
		}
	}
}

// sourceDir is internal/stack in the source tree: where package-lock.json,
// node_modules, kinesalite.js and the Pagila files live.
func sourceDir() (string, error) {
	var tried []string
	if root, err := repoRoot(); err == nil {
		d := filepath.Join(root, "internal", "stack")
		if isSourceDir(d) {
			return d, nil
		}
		tried = append(tried, d)
	}
	// Fall back on where this file was compiled from (go test / go run keep it).
	if _, file, _, ok := runtime.Caller(0); ok {
		d := filepath.Dir(file)
		if isSourceDir(d) {
			return d, nil
		}
		tried = append(tried, d)
	}
	return "", errors.New("stack: cannot find the stack sources (package-lock.json, dynalite.js, kinesalite.js, pagila/); tried " + fmt.Sprint(tried))
}

func isSourceDir(d string) bool {
	for _, f := range []string{"package-lock.json", "dynalite.js", "kinesalite.js", "abort-guard.js", filepath.Join("pagila", "pagila-schema.sql")} {
		if _, err := os.Stat(filepath.Join(d, f)); err != nil {
			return false
		}
	}
	return true
}
