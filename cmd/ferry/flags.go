package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
)

// newFlagSet builds a subcommand's flag set whose help text explains every flag
// and the FERRY_* variables.
func newFlagSet(name, synopsis string, out io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(out)
	fs.String("log-format", "text", "log format on standard error: text or json (log/slog's handlers; the same keys, one JSON object a line)")
	fs.Usage = func() {
		fmt.Fprintf(out, "Usage: ferry %s\n\n%s\n\nFlags (each also read from FERRY_<NAME>, e.g. --source from FERRY_SOURCE):\n", name, synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses args, then fills every flag not given on the command line
// from its FERRY_<NAME> environment variable.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return errHelp
		}
		return usageError{err}
	}
	if fs.NArg() > 0 {
		return usagef("%s: unexpected argument %q", fs.Name(), fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] || err != nil {
			return
		}
		env := "FERRY_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v, ok := os.LookupEnv(env); ok {
			if e := f.Value.Set(v); e != nil {
				err = usagef("%s=%q: %v", env, v, e)
			}
		}
	})
	if err != nil {
		return err
	}
	return setLogFormat(fs.Lookup("log-format").Value.String())
}

// logOut is where the command's log goes (standard error; set by runContext).
var logOut io.Writer = os.Stderr

// setLogFormat replaces the default logger with one of the given format.
func setLogFormat(format string) error {
	opts := &slog.HandlerOptions{Level: logLevel()}
	switch format {
	case "text":
		slog.SetDefault(slog.New(slog.NewTextHandler(logOut, opts)))
	case "json":
		slog.SetDefault(slog.New(slog.NewJSONHandler(logOut, opts)))
	default:
		return usagef("--log-format must be text or json, not %q", format)
	}
	return nil
}

func requireFlag(name, value string) error {
	if value == "" {
		return usagef("--%s is required (or FERRY_%s)", name, strings.ToUpper(name))
	}
	return nil
}
