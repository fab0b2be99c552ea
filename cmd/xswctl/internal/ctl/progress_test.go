package ctl

import (
	"strings"
	"testing"
)

// TestProgressLinesOffATerminal follows a crawl with xswctl writing to a pipe: the
// progress is plain lines, one each time it moves.
func TestProgressLinesOffATerminal(t *testing.T) {
	g := newGateway(t)
	out, errOut, code := run(t.Context(), g, nil, "crawl", "--categories", "1-2", "--pages", "1-3", "--every", "5ms")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	want := "waiting for a fetcher to start the crawl\n" +
		"listing pages 2/6 · 40 books queued\nlisting pages 4/6 · 80 books queued\nlisting pages 6/6 · 120 books queued\n" +
		"books synced 0/120\nbooks synced 60/120\nbooks synced 100/120\nbooks synced 120/120\n"
	if errOut != want {
		t.Errorf("progress:\n%s\nwant:\n%s", errOut, want)
	}
	if !strings.Contains(out, "crawl crawl-1 done") || strings.ContainsAny(out+errOut, "\r█") {
		t.Errorf("output %q, progress %q", out, errOut)
	}
	// With --json, nothing but the answer.
	out, errOut, code = run(t.Context(), g, nil, "crawl", "--json", "--categories", "1-2", "--pages", "1-3", "--every", "5ms")
	if code != 0 || errOut != "" || !strings.HasPrefix(out, "{") {
		t.Errorf("--json: exit %d, out %q, progress %q", code, out, errOut)
	}
}
