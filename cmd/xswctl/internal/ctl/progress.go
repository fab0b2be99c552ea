package ctl

import (
	"fmt"
	"io"
	"time"

	"github.com/schollz/progressbar/v3"
)

// progress shows how far a step has come on the error output (stdout stays for the
// results): a bar when xswctl runs in a terminal, else a plain line each time it moves,
// for logs and pipes; nothing with --json.
type progress struct {
	bar  *progressbar.ProgressBar // nil: plain lines
	w    io.Writer
	last string // the last line written
}

// progress starts showing a step: what is done, of max (-1 until the size is known).
func (a *app) progress(max int, what string) *progress {
	switch {
	case a.json:
		return &progress{w: io.Discard}
	case !a.terminal:
		p := &progress{w: a.errOut}
		p.set(0, max, what, "")
		return p
	}
	w := a.errOut
	return &progress{w: w, bar: progressbar.NewOptions(max,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription(what),
		progressbar.OptionShowCount(),
		progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionShowElapsedTimeOnFinish(),
		progressbar.OptionOnCompletion(func() { fmt.Fprintln(w) }),
		progressbar.OptionSetPredictTime(true),
	)}
}

// set shows n done of max (max < 1: not known yet) of what, with a note ("40 books
// queued") when there is one.
func (p *progress) set(n, max int, what, note string) {
	if p.bar != nil {
		if max > 0 && p.bar.GetMax() != max {
			p.bar.ChangeMax(max)
		}
		if note != "" {
			what += " · " + note
		}
		p.bar.Describe(what)
		_ = p.bar.Set(n)
		return
	}
	line := what
	if max > 0 {
		line = fmt.Sprintf("%s %d/%d", what, n, max)
	}
	if note != "" {
		line += " · " + note
	}
	if line != p.last {
		fmt.Fprintln(p.w, line)
		p.last = line
	}
}

// finish completes the bar.
func (p *progress) finish() {
	if p.bar != nil {
		_ = p.bar.Finish()
	}
}

// exit stops showing the step, finished or not.
func (p *progress) exit() {
	if p.bar != nil {
		_ = p.bar.Exit()
	}
}
