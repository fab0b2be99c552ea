// Package config reads typed settings from an environment lookup function, collecting
// every bad value with the name of its variable, and loads a .env file into the process
// environment for the commands.
package config

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/joho/godotenv"
)

// Reader reads variables through Getenv and remembers every variable it could not parse.
// Call Err after reading.
type Reader struct {
	getenv func(string) string
	errs   []error
}

// NewReader returns a Reader over getenv (os.Getenv in commands, a map in tests).
func NewReader(getenv func(string) string) *Reader {
	if getenv == nil {
		getenv = os.Getenv
	}
	return &Reader{getenv: getenv}
}

// Map adapts a map to a getenv function.
func Map(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func (r *Reader) lookup(key string) (string, bool) {
	v := strings.TrimSpace(r.getenv(key))
	return v, v != ""
}

func (r *Reader) fail(key, v, want string) {
	r.errs = append(r.errs, fmt.Errorf("%s=%q: want %s", key, v, want))
}

// String returns the variable or def when unset.
func (r *Reader) String(key, def string) string {
	if v, ok := r.lookup(key); ok {
		return v
	}
	return def
}

// Int returns the variable as an integer, or def when unset.
func (r *Reader) Int(key string, def int) int {
	v, ok := r.lookup(key)
	if !ok {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		r.fail(key, v, "an integer")
		return def
	}
	return n
}

// Float returns the variable as a number, or def when unset.
func (r *Reader) Float(key string, def float64) float64 {
	v, ok := r.lookup(key)
	if !ok {
		return def
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil {
		r.fail(key, v, "a number")
		return def
	}
	return f
}

// Bool returns the variable as a boolean (1/0, true/false, yes/no, on/off), or def.
func (r *Reader) Bool(key string, def bool) bool {
	v, ok := r.lookup(key)
	if !ok {
		return def
	}
	switch strings.ToLower(v) {
	case "1", "true", "yes", "on":
		return true
	case "0", "false", "no", "off":
		return false
	}
	r.fail(key, v, "true or false")
	return def
}

// Duration returns the variable as a duration, or def when unset. A bare number is read
// as seconds (the seed's variables are in seconds); otherwise Go's syntax ("1m30s").
func (r *Reader) Duration(key string, def time.Duration) time.Duration {
	v, ok := r.lookup(key)
	if !ok {
		return def
	}
	if f, err := strconv.ParseFloat(v, 64); err == nil {
		return time.Duration(f * float64(time.Second))
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		r.fail(key, v, `a duration ("30s", "5m") or a number of seconds`)
		return def
	}
	return d
}

// List returns the variable split on commas, blanks dropped, or nil when unset.
func (r *Reader) List(key string) []string {
	v, ok := r.lookup(key)
	if !ok {
		return nil
	}
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// Err returns every parse failure, each naming its variable, or nil.
func (r *Reader) Err() error { return errors.Join(r.errs...) }

// LoadDotEnv loads path (".env" by default) into the process environment when it exists,
// never overriding a variable that is already set.
func LoadDotEnv(path string) error {
	if path == "" {
		path = ".env"
	}
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err := godotenv.Load(path); err != nil {
		return fmt.Errorf("load %s: %w", path, err)
	}
	return nil
}

// Check returns an error naming key when ok is false; Validate methods chain these.
func Check(ok bool, key, format string, args ...any) error {
	if ok {
		return nil
	}
	return fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...))
}
