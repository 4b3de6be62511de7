package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime/debug"
	"slices"
	"strings"

	"github.com/spf13/pflag"

	"github.com/jwtd/jwtd/internal/config"
	"github.com/jwtd/jwtd/internal/suggest"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

// exitCode is an error that only sets the process's exit status; whatever
// needed saying was already printed.
type exitCode int

func (c exitCode) Error() string { return fmt.Sprintf("exit status %d", int(c)) }

// env is what every subcommand gets from the process.
type env struct {
	environ []string            // "NAME=value", as os.Environ
	getenv  func(string) string // one variable of environ
	stdin   io.Reader
	stdout  io.Writer
	stderr  io.Writer
}

const usage = `jwtd is a self-hosted JWT token service.

Usage:
  jwtd serve                   serve the HTTP API
  jwtd token sign|verify|decode  mint, check or read a token
  jwtd keys list|rotate|reseal|show|generate  see, rotate and reseal the keys
  jwtd apikey create --name N --scopes S  make an API key and its api_keys entry
  jwtd audit verify|export|replay  check, export or replay the audit trail
  jwtd backup FILE             copy the embedded store while jwtd serves
  jwtd version                 print the version

Run "jwtd <command> --help" for a command's flags.
`

// run is the whole program; main only supplies the process's context,
// arguments, environment and streams. The environment comes whole, not as
// a getenv, so that a JWTD_ variable jwtd does not read can be told.
func run(ctx context.Context, args []string, environ []string, stdin io.Reader, stdout, stderr io.Writer) error {
	e := env{environ: environ, getenv: lookupEnv(environ), stdin: stdin, stdout: stdout, stderr: stderr}
	if len(args) < 2 {
		fmt.Fprint(stderr, usage)
		return exitCode(2)
	}
	cmd, rest := args[1], args[2:]
	switch cmd {
	case "token", "keys", "apikey", "audit", "backup": // serve logs them
		for _, u := range config.UnreadEnv(environ) {
			fmt.Fprintf(stderr, "jwtd: warning: %s\n", u)
		}
	}
	switch cmd {
	case "serve":
		return cmdServe(ctx, rest, e)
	case "token":
		return cmdToken(ctx, rest, e)
	case "keys":
		return cmdKeys(ctx, rest, e)
	case "apikey":
		return cmdAPIKey(rest, e)
	case "audit":
		return cmdAudit(ctx, rest, e)
	case "backup":
		return cmdBackup(ctx, rest, e)
	case "version", "--version":
		fmt.Fprintf(stdout, "jwtd %s (%s)\n", version, goVersion())
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprintf(stderr, "jwtd: unknown command %q\n\n%s", cmd, usage)
	return exitCode(2)
}

// lookupEnv is getenv over environ: the first value of a name, as
// os.Getenv has it.
func lookupEnv(environ []string) func(string) string {
	vars := make(map[string]string, len(environ))
	for _, kv := range environ {
		if name, value, ok := strings.Cut(kv, "="); ok {
			if _, seen := vars[name]; !seen {
				vars[name] = value
			}
		}
	}
	return func(name string) string { return vars[name] }
}

func goVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		return bi.GoVersion
	}
	return "unknown"
}

// newFlagSet makes a subcommand's flag set; with config true it has the
// configuration flags too.
// everySetting gives a command the flag of every setting (serve); other
// commands name the settings they use, and --config.
const everySetting = "*"

func newFlagSet(name, synopsis string, e env, settings ...string) *pflag.FlagSet {
	fs := pflag.NewFlagSet(name, pflag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.SortFlags = false
	withConfig := len(settings) > 0
	if withConfig && settings[0] == everySetting {
		settings = nil // config's "all of them"
	}
	if withConfig {
		config.AddFlags(fs, settings...)
	}
	fs.Usage = func() {
		fmt.Fprintf(e.stderr, "Usage: %s\n", synopsis)
		if flags := fs.FlagUsages(); flags != "" {
			fmt.Fprintf(e.stderr, "\nFlags:\n%s", flags)
		}
		if withConfig {
			fmt.Fprintf(e.stderr, "\nEnvironment: %s\n", config.EnvNames(settings...))
		}
	}
	return fs
}

// parseFlags parses args; --help is a success. A mistake (an unknown flag,
// a flag without its value) prints what is wrong and the usage, and is exit
// status 2.
func parseFlags(fs *pflag.FlagSet, args []string) (help bool, err error) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return true, nil
		}
		return false, usageError(fs, err.Error()+flagMeant(fs, err))
	}
	return false, nil
}

// flagMeant names the flag most likely meant by an unknown one, as "; did
// you mean --listen?": a typo (--lisen), or a long name written with one
// dash (-listen, which pflag reads as the short flags l, i, s, t, e, n).
func flagMeant(fs *pflag.FlagSet, err error) string {
	var unknown *pflag.NotExistError
	if !errors.As(err, &unknown) {
		return ""
	}
	var names []string
	fs.VisitAll(func(f *pflag.Flag) { names = append(names, f.Name) })
	if group := unknown.GetSpecifiedShortnames(); group != "" {
		if name, _, _ := strings.Cut(group, "="); slices.Contains(names, name) {
			return fmt.Sprintf("; did you mean --%s? (a flag's name takes two dashes)", name)
		}
		return ""
	}
	if near := suggest.Nearest(unknown.GetSpecifiedName(), names); near != "" {
		return "; did you mean --" + near + "?"
	}
	return ""
}

// parseFlagsNoArgs is parseFlags for a command that takes no arguments
// besides its flags.
func parseFlagsNoArgs(fs *pflag.FlagSet, args []string) (help bool, err error) {
	if help, err := parseFlags(fs, args); help || err != nil {
		return help, err
	}
	if fs.NArg() > 0 {
		return false, usageError(fs, fmt.Sprintf("unexpected argument %q: this command takes only flags", fs.Arg(0)))
	}
	return false, nil
}

// usageError prints a command-line mistake and the usage; exit status 2.
func usageError(fs *pflag.FlagSet, msg string) error {
	fmt.Fprintf(fs.Output(), "%s: %s\n\n", fs.Name(), msg)
	fs.Usage()
	return exitCode(2)
}

// subcommand picks the subcommand of a command group such as "token",
// which must be one of known; anything else prints the usage (exit 2).
func subcommand(args []string, e env, group, help string, known ...string) (string, []string, error) {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
			fmt.Fprint(e.stdout, help)
			return "", nil, nil
		}
		fmt.Fprint(e.stderr, help)
		return "", nil, exitCode(2)
	}
	if !slices.Contains(known, args[0]) {
		fmt.Fprintf(e.stderr, "jwtd %s: unknown subcommand %q\n\n%s", group, args[0], help)
		return "", nil, exitCode(2)
	}
	return args[0], args[1:], nil
}
