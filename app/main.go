// Command ava is Ava console: the integrations console of the Ava voice
// receptionist. It serves the dashboard, its htmx fragments and the JSON API
// (`ava` or `ava serve`), and manages owners and API tokens from the command
// line (`ava user create`, `ava token create`). This package is the
// composition root: it reads the configuration, builds the services and
// hands them to the HTTP layer.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/ava/console/app/console"
	"github.com/ava/console/services"
	"github.com/ava/console/services/account"
)

const usage = `Usage:
  ava [serve]                                   serve the console on $PORT
  ava user create --email EMAIL --password-stdin create an account owner
  ava token create --email EMAIL --name NAME     create an API token (printed once, last line)

Configuration comes from the environment; see README.md.
`

// exitUsage is the exit status for bad arguments.
const exitUsage = 2

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv))
}

// env is how the program reads its environment (os.Getenv outside tests).
type env func(string) string

// run executes one command line and returns the exit status.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer, getenv env) int {
	cmd := "serve"
	if len(args) > 0 {
		cmd, args = args[0], args[1:]
	}
	var err error
	switch cmd {
	case "serve":
		if len(args) > 0 {
			return badUsage(stderr, "serve takes no arguments")
		}
		err = serve(getenv, stdout)
	case "user", "token":
		if len(args) == 0 || args[0] != "create" {
			return badUsage(stderr, fmt.Sprintf("unknown command %q", strings.TrimSpace(cmd+" "+strings.Join(args, " "))))
		}
		if cmd == "user" {
			err = userCreate(args[1:], stdin, stdout, stderr, getenv)
		} else {
			err = tokenCreate(args[1:], stdout, stderr, getenv)
		}
	case "help", "-h", "--help":
		_, _ = fmt.Fprint(stdout, usage)
		return 0
	default:
		return badUsage(stderr, fmt.Sprintf("unknown command %q", cmd))
	}
	var ue usageError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ue):
		return badUsage(stderr, ue.msg)
	default:
		_, _ = fmt.Fprintln(stderr, "ava:", err)
		return 1
	}
}

// usageError is a bad command line.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func badUsage(stderr io.Writer, msg string) int {
	_, _ = fmt.Fprintf(stderr, "ava: %s\n\n%s", msg, usage)
	return exitUsage
}

// newFlags returns a flag set that reports errors as usage errors, not by
// printing and exiting on its own.
func newFlags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs
}

func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return usageError{fs.Name() + ": " + err.Error()}
	}
	if fs.NArg() > 0 {
		return usageError{fs.Name() + ": unexpected argument " + fs.Arg(0)}
	}
	return nil
}

// open loads the configuration and opens the database and the account
// service: what every command needs.
func open(ctx context.Context, getenv env) (console.Config, services.Store, *account.Service, error) {
	cfg, err := console.LoadConfig(getenv)
	if err != nil {
		return console.Config{}, nil, nil, err
	}
	return console.Open(ctx, cfg)
}
