package lambdaesm

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
)

// RIETool is the module tool (go.mod's tool directive) that BuildRIE runs.
const RIETool = "aws-lambda-rie"

var rieBuild struct {
	once sync.Once
	path string
	err  error
}

// BuildRIE returns the path of the aws-lambda-rie binary of the module's tool
// directive (github.com/aws/aws-lambda-runtime-interface-emulator), building
// it with `go tool -n` on first use: the go command builds the tool from the
// module cache (the module proxy on a fresh machine) into its build cache and
// prints the binary's path, so later calls and later test runs cost nothing.
// The result is cached for the process. It needs the go command on PATH.
func BuildRIE(ctx context.Context) (string, error) {
	rieBuild.once.Do(func() {
		out, err := goCommand(ctx, nil, "tool", "-n", RIETool)
		if err != nil {
			rieBuild.err = fmt.Errorf("lambdaesm: build %s: %w", RIETool, err)
			return
		}
		rieBuild.path = strings.TrimSpace(out)
		if _, err := os.Stat(rieBuild.path); err != nil {
			rieBuild.err = fmt.Errorf("lambdaesm: %s built, but: %w", RIETool, err)
		}
	})
	return rieBuild.path, rieBuild.err
}

// BuildBootstrap compiles the Go main package pkg (an import path or a
// directory, as `go build` takes it) into out as a provided.al2023 bootstrap
// is built for AWS: CGO_ENABLED=0, tag lambda.norpc, for linux on this
// machine's architecture (the Runtime runs it here, not on Graviton).
func BuildBootstrap(ctx context.Context, pkg, out string) error {
	env := []string{"CGO_ENABLED=0", "GOOS=linux", "GOARCH=" + runtime.GOARCH}
	if _, err := goCommand(ctx, env, "build", "-tags", "lambda.norpc", "-o", out, pkg); err != nil {
		return fmt.Errorf("lambdaesm: build bootstrap %s: %w", pkg, err)
	}
	return nil
}

// goCommand runs the go command in this package's directory (so that it
// finds ferry's go.mod) and returns its standard output.
func goCommand(ctx context.Context, env []string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = sourceDir()
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// sourceDir is this file's directory, or "" (the working directory) when
// the binary runs away from its source.
func sourceDir() string {
	_, file, _, _ := runtime.Caller(0)
	dir := filepath.Dir(file)
	if _, err := os.Stat(dir); err != nil {
		return ""
	}
	return dir
}
