package ctl

import (
	"bytes"
	"io"
	"os"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// openPTY opens a pseudo-terminal and returns its two ends: what a program writes to
// tty can be read from pty.
func openPTY(t *testing.T) (pty, tty *os.File) {
	t.Helper()
	pty, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("open a pseudo-terminal: %v", err)
	}
	t.Cleanup(func() { pty.Close() })
	if err := unix.IoctlSetPointerInt(int(pty.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatalf("unlock the pseudo-terminal: %v", err)
	}
	n, err := unix.IoctlGetInt(int(pty.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatalf("name the pseudo-terminal: %v", err)
	}
	tty, err = os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("open the terminal end: %v", err)
	}
	t.Cleanup(func() { tty.Close() })
	return pty, tty
}

// TestProgressBarOnATerminal follows a crawl with xswctl writing to a terminal: the
// progress is a bar, redrawn in place.
func TestProgressBarOnATerminal(t *testing.T) {
	g := newGateway(t)
	pty, tty := openPTY(t)
	read := make(chan []byte)
	go func() {
		b, _ := io.ReadAll(pty) // until the terminal end is closed (EIO)
		read <- b
	}()
	env := map[string]string{"XSW_URL": g.URL, "XSW_ADMIN_TOKEN": token}
	code := Main(t.Context(), []string{"crawl", "--categories", "1-2", "--pages", "1-3", "--every", "5ms"}, func(k string) string { return env[k] }, tty, tty)
	tty.Close()
	screen := string(<-read)
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, screen)
	}
	for _, want := range []string{"█", "\r", "listing pages · 120 books queued", "(6/6", "books synced", "(120/120",
		"crawl crawl-1 done: 6 listing pages walked"} {
		if !strings.Contains(screen, want) {
			t.Errorf("the terminal lacks %q:\n%q", want, screen)
		}
	}
	if strings.Contains(screen, "listing pages 6/6") {
		t.Errorf("plain progress lines on a terminal:\n%q", screen)
	}
}

func TestIsTerminal(t *testing.T) {
	_, tty := openPTY(t)
	f, err := os.CreateTemp(t.TempDir(), "out")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, tc := range []struct {
		name string
		w    io.Writer
		want bool
	}{
		{"terminal", tty, true},
		{"file", f, false},
		{"buffer", &bytes.Buffer{}, false},
	} {
		if got := isTerminal(tc.w); got != tc.want {
			t.Errorf("%s: isTerminal %v, want %v", tc.name, got, tc.want)
		}
	}
}
