package stack

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"
)

const stateVersion = 1

// state is what Up records in dir/state.json: enough for a later Up to reuse
// the stack and for Down to stop exactly what was started.
type state struct {
	Version  int       `json:"version"`
	Postgres pgState   `json:"postgres"`
	Dynamo   procState `json:"dynalite"`
	Kinesis  procState `json:"kinesalite"`
}

// procState is one process Up started. PID 0 means not running.
type procState struct {
	Port    int       `json:"port"`
	PID     int       `json:"pid"`
	Started time.Time `json:"started,omitzero"`
}

type pgState struct {
	procState
	BinDir    string `json:"bindir"`
	DataDir   string `json:"data_dir"`
	SocketDir string `json:"socket_dir"`
	// Loaded is set once pagila_template and pagila exist.
	Loaded bool `json:"loaded"`
}

func statePath(dir string) string { return filepath.Join(dir, "state.json") }

// loadState reads dir/state.json; a missing file is an empty state.
func loadState(dir string) (state, error) {
	var st state
	b, err := os.ReadFile(statePath(dir))
	if errors.Is(err, fs.ErrNotExist) {
		return state{Version: stateVersion}, nil
	}
	if err != nil {
		return st, fmt.Errorf("stack: read state: %w", err)
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return st, fmt.Errorf("stack: parse %s: %w", statePath(dir), err)
	}
	return st, nil
}

// stateFile guards concurrent updates of one state while Up starts
// components in parallel; each update is written at once (atomically), so
// Down can stop whatever a failed Up had already started.
type stateFile struct {
	mu  sync.Mutex
	dir string
	st  state
}

func (f *stateFile) update(fn func(*state)) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(&f.st)
	f.st.Version = stateVersion
	return writeState(f.dir, f.st)
}

func (f *stateFile) get() state {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.st
}

func writeState(dir string, st state) error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("stack: encode state: %w", err)
	}
	return writeFileAtomic(statePath(dir), append(b, '\n'), 0o644)
}

// writeFileAtomic writes via a temporary file and rename, so readers never
// see half a file.
func writeFileAtomic(path string, data []byte, perm fs.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("stack: write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name()) // no-op after a successful rename
	if _, err := tmp.Write(data); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("stack: write %s: %w", path, err)
	}
	if err := tmp.Chmod(perm); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("stack: chmod %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("stack: write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("stack: write %s: %w", path, err)
	}
	return nil
}
