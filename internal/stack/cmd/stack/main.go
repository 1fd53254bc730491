// Command stack starts and stops ferry's local stack (PostgreSQL 15 with
// Pagila, dynalite, kinesalite on 127.0.0.1); `make up` and `make down` run it.
//
//	stack up     start the stack (or reuse it) and write <stack dir>/env
//	stack down   stop the processes `stack up` started
//	stack env    print the env file's lines for a running stack
//	stack reset-demo  give the demo database (pagila) its pristine content again
//
// The stack directory is $FERRY_STACK_DIR, else <repo root>/.local.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/ferry-migrate/ferry/internal/stack"
)

func main() {
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo})))
	if len(os.Args) != 2 {
		usage()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()

	var err error
	switch os.Args[1] {
	case "up":
		err = up(ctx)
	case "down":
		err = down(ctx)
	case "env":
		err = env(ctx)
	case "reset-demo":
		err = resetDemo(ctx)
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "stack:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: stack up|down|env|reset-demo")
	os.Exit(2)
}

func up(ctx context.Context) error {
	dir, err := stack.Dir()
	if err != nil {
		return err
	}
	start := time.Now()
	s, err := stack.Up(ctx, dir)
	if err != nil {
		return err
	}
	if err := s.WriteEnvFile(); err != nil {
		return err
	}
	how := fmt.Sprintf("started in %.1fs", time.Since(start).Seconds())
	if s.Reused {
		how = "already running (reused)"
	}
	fmt.Printf("ferry local stack %s, in %s\n", how, s.Dir)
	fmt.Printf("  postgres 15  %-28s pid %-7d FERRY_SOURCE=%s\n", fmt.Sprintf("127.0.0.1:%d", s.PGPort), s.PGPID, s.SourceURL)
	fmt.Printf("  dynalite     %-28s pid %d\n", s.DynamoEndpoint, s.DynamoPID)
	fmt.Printf("  kinesalite   %-28s pid %d\n", s.KinesisEndpoint, s.KinesisPID)
	fmt.Printf("logs in %s; stop with `make down`\n", filepath.Join(s.Dir, "logs"))
	fmt.Printf("\n  source %s\n", shortPath(s.EnvFile()))
	return nil
}

func down(ctx context.Context) error {
	dir, err := stack.Dir()
	if err != nil {
		return err
	}
	if err := stack.Down(ctx, dir); err != nil {
		return err
	}
	fmt.Printf("ferry local stack in %s stopped\n", dir)
	return nil
}

func env(ctx context.Context) error {
	dir, err := stack.Dir()
	if err != nil {
		return err
	}
	s, err := stack.Running(ctx, dir)
	if err != nil {
		return err
	}
	_, err = os.Stdout.WriteString(s.EnvScript())
	return err
}

// shortPath is p relative to the working directory when it lies below it.
func shortPath(p string) string {
	wd, err := os.Getwd()
	if err != nil {
		return p
	}
	rel, err := filepath.Rel(wd, p)
	if err != nil || strings.HasPrefix(rel, "..") {
		return p
	}
	return rel
}

func resetDemo(ctx context.Context) error {
	dir, err := stack.Dir()
	if err != nil {
		return err
	}
	s, err := stack.Up(ctx, dir)
	if err != nil {
		return err
	}
	if err := s.ResetDemo(ctx); err != nil {
		return err
	}
	fmt.Printf("demo database %s reset to pristine Pagila\n", stack.DemoDB)
	return nil
}
