package service

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/xswtw/xsw/buildinfo"
)

// Command is the command line of a program that takes no flag but -h (--help) and
// --version: the three services, and the all-in-one.
type Command struct {
	// Name is the program's name, as its usage line spells it ("gateway").
	Name string
	// Usage is what -h prints: a usage line ("usage: gateway [-h] [--version]"), then
	// what the program does and reads.
	Usage string
}

// Parse reads args. -h or --help prints Usage on stdout and --version the build
// ("gateway v1.2.3 (abc1234, …, go1.26.8)"): both report done with status 0. Any other
// flag is an error: it prints the error and the usage line on stderr and reports done
// with status 2. Otherwise Parse returns the arguments after the flags, for the caller to
// check (see Fail).
func (c Command) Parse(args []string, stdout, stderr io.Writer) (rest []string, status int, done bool) {
	fs := flag.NewFlagSet(c.Name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	version := fs.Bool("version", false, "print the build and exit")
	err := fs.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		fmt.Fprint(stdout, strings.TrimRight(c.Usage, "\n")+"\n")
		return nil, 0, true
	case err != nil:
		return nil, c.Fail(stderr, "%v", err), true
	case *version:
		fmt.Fprintln(stdout, c.Name, buildinfo.Get().String())
		return nil, 0, true
	}
	return fs.Args(), 0, false
}

// Fail prints what is wrong with the command line and the usage line on stderr, and
// returns the status to exit with: 2.
func (c Command) Fail(stderr io.Writer, format string, args ...any) int {
	line, _, _ := strings.Cut(strings.TrimLeft(c.Usage, "\n"), "\n")
	fmt.Fprintf(stderr, "%s: %s\n%s\n", c.Name, fmt.Sprintf(format, args...), line)
	return 2
}
