package ctl

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/xswtw/xsw/api"
)

func (a *app) tailCmd() *cobra.Command {
	var (
		lines int
		kinds []string
	)
	cmd := &cobra.Command{
		Use:   "tail",
		Short: "Follow book requests and job events of every site live (Ctrl-C stops)",
		Long: `tail prints book requests and job events of every site as they happen, from the
gateway's event stream (the dashboard's), starting with the last few the gateway saw.
Each line names the book's site and id. With --json, one JSON object per line.`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if lines < 0 {
				return usagef("--lines must not be negative")
			}
			want := map[string]bool{}
			for _, k := range kinds {
				want[strings.TrimSpace(k)] = true
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			t := &tail{app: a, lines: lines, kinds: want}
			err = t.follow(cmd.Context(), c)
			if cmd.Context().Err() != nil {
				return nil // stopped by the user
			}
			return err
		},
	}
	cmd.Flags().IntVarP(&lines, "lines", "n", 10, "how many past events to print first")
	cmd.Flags().StringSliceVar(&kinds, "kind", nil, "print only these kinds (queued, started, completed, retrying, failed, skipped)")
	return cmd
}

// tail follows the event stream, reconnecting when it ends, and prints every activity
// once.
type tail struct {
	*app
	lines   int
	kinds   map[string]bool
	last    uint64 // the last sequence printed
	started bool   // connected once
}

func (t *tail) follow(ctx context.Context, c *client) error {
	delay := 250 * time.Millisecond
	for failures := 0; ; {
		err := t.stream(ctx, c)
		var apiErr *APIError
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.As(err, &apiErr) && (apiErr.Status == http.StatusUnauthorized || apiErr.Status == http.StatusForbidden || apiErr.Status == http.StatusNotFound):
			return err // reconnecting will not help
		case err == nil:
			failures, delay = 0, 250*time.Millisecond // the server ended the stream: reconnect
		default:
			failures++
			if failures == 1 || failures%10 == 0 {
				fmt.Fprintf(t.errOut, "xswctl: event stream: %v; reconnecting\n", err)
			}
			delay = min(2*delay, 10*time.Second)
		}
		if err := wait(ctx, delay); err != nil {
			return err
		}
	}
}

// stream reads one event stream until it ends.
func (t *tail) stream(ctx context.Context, c *client) error {
	req, err := c.request(ctx, http.MethodGet, api.ActivityPath, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "text/event-stream")
	resp, err := c.stream.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		return apiError(resp.StatusCode, body)
	}
	return readSSE(resp.Body, t.event)
}

// event handles one server-sent event.
func (t *tail) event(name, data string) error {
	switch name {
	case "recent":
		var recent []api.Activity
		if err := json.Unmarshal([]byte(data), &recent); err != nil {
			return fmt.Errorf("unreadable recent events: %w", err)
		}
		if len(recent) > 0 && recent[len(recent)-1].Seq < t.last {
			t.last = 0 // the gateway restarted (or this is another replica): its numbers started over
		}
		from := 0
		if !t.started {
			// First connection: the last few only.
			t.started = true
			var shown []api.Activity
			for _, a := range recent {
				if t.show(a) {
					shown = append(shown, a)
				}
			}
			if over := len(shown) - t.lines; over > 0 {
				shown = shown[over:]
			}
			for _, a := range shown {
				t.print(a)
			}
			if len(recent) > 0 {
				t.last = recent[len(recent)-1].Seq
			}
			return nil
		}
		for from < len(recent) && recent[from].Seq <= t.last {
			from++
		}
		for _, a := range recent[from:] {
			t.emit(a)
		}
	case "job":
		var a api.Activity
		if err := json.Unmarshal([]byte(data), &a); err != nil {
			return fmt.Errorf("unreadable job event: %w", err)
		}
		if !t.started {
			t.started = true
		}
		if a.Seq > t.last {
			t.emit(a)
		}
	}
	return nil
}

func (t *tail) show(a api.Activity) bool { return len(t.kinds) == 0 || t.kinds[a.Kind] }

// emit prints a (when its kind is wanted) and remembers it as printed.
func (t *tail) emit(a api.Activity) {
	t.last = a.Seq
	if t.show(a) {
		t.print(a)
	}
}

func (t *tail) print(a api.Activity) {
	if t.json {
		b, _ := json.Marshal(a)
		fmt.Fprintln(t.out, string(b))
		return
	}
	fmt.Fprintln(t.out, formatActivity(a))
}

// formatActivity is one line for people:
//
//	12:00:01  completed  xsw      1001055   prefetch     attempt 1 · 132 chapters · 1.20 s · fetcher-a
func formatActivity(a api.Activity) string {
	var details []string
	switch a.Kind {
	case "queued":
		details = append(details, "priority "+strconv.Itoa(a.Priority))
		if a.Force {
			details = append(details, "forced")
		}
		if a.Reason != "" {
			details = append(details, a.Reason)
		}
	default:
		if a.Attempt > 0 {
			details = append(details, "attempt "+strconv.Itoa(a.Attempt))
		}
		if a.Kind == "completed" {
			if a.Unchanged {
				details = append(details, "unchanged")
			}
			details = append(details, strconv.Itoa(a.Chapters)+" chapters")
		}
		if a.Took > 0 {
			details = append(details, seconds(a.Took))
		}
		if a.Fetcher != "" {
			details = append(details, a.Fetcher)
		}
		if a.Kind == "skipped" && a.Reason != "" {
			details = append(details, a.Reason)
		}
		if a.Error != "" {
			e := oneLine(a.Error, 200)
			if a.Permanent {
				e = "permanent: " + e
			}
			details = append(details, e)
		}
	}
	return fmt.Sprintf("%s  %-9s  %-7s  %-8s  %-11s  %s", a.At.Local().Format("15:04:05"), a.Kind, orUnknown(a.Site), a.BookID, a.Lane,
		strings.Join(details, " · "))
}

// readSSE parses a text/event-stream, calling fn with each event's name and data, until
// the stream ends (nil) or fails.
func readSSE(r io.Reader, fn func(name, data string) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 8<<20)
	name, data := "message", []string(nil)
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			if len(data) > 0 {
				if err := fn(name, strings.Join(data, "\n")); err != nil {
					return err
				}
			}
			name, data = "message", nil
			continue
		}
		if strings.HasPrefix(line, ":") {
			continue
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "event":
			name = value
		case "data":
			data = append(data, value)
		}
	}
	return sc.Err()
}
