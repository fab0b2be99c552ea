package dashboard

import (
	"encoding/json"
	"log/slog"
	"maps"
	"testing"
	"time"

	"github.com/xswtw/xsw/platform/natstest"
)

func TestReadTally(t *testing.T) {
	now := time.Date(2026, 1, 21, 12, 0, 5, 0, time.UTC)
	r := newReadTally(time.Minute, 10*time.Second)
	if w := r.window(now); w.Total != 0 || w.HitRate != nil || len(w.ByServedFrom) != 5 || w.WindowSeconds != 60 {
		t.Fatalf("empty window = %+v", w)
	}
	r.add("memory", now.Add(-50*time.Second))
	r.add("database", now.Add(-15*time.Second))
	r.add("database", now)
	r.add("waited", now)
	r.add("queued", now)
	r.add("elsewhere", now) // not a served_from value: ignored
	w := r.window(now)
	want := map[string]int{"memory": 1, "database": 2, "waited": 1, "queued": 1, "failed": 0}
	if w.Total != 5 || !maps.Equal(w.ByServedFrom, want) || w.HitRate == nil || *w.HitRate != 0.6 {
		t.Errorf("window = %+v (hit rate %v), want %v and 0.6", w, w.HitRate, want)
	}
	// 20 s later the memory read has left the window: 2 hits of 4.
	if w := r.window(now.Add(20 * time.Second)); w.Total != 4 || *w.HitRate != 0.5 {
		t.Errorf("window 20s later = %+v (hit rate %v), want 4 reads, 0.5", w, *w.HitRate)
	}
	// A read a minute later opens a bucket and forgets those that left the window.
	r.add("failed", now.Add(time.Minute))
	if w := r.window(now.Add(time.Minute)); w.Total != 1 || *w.HitRate != 0 || len(r.buckets) != 1 {
		t.Errorf("a minute later: window %+v, %d buckets kept, want 1 failed read in 1 bucket", w, len(r.buckets))
	}
}

func TestSnapshotCarriesBookReads(t *testing.T) {
	ns := natstest.Start(t)
	d := New(Config{AdminToken: token}, ns.Conn, ns.JS, source{}, slog.New(slog.DiscardHandler))
	for _, from := range []string{"memory", "database", "database", "queued"} {
		d.Read(from)
	}
	s := d.Snapshot(t.Context())
	if s.BookReads.Total != 4 || s.BookReads.HitRate == nil || *s.BookReads.HitRate != 0.75 || s.BookReads.WindowSeconds != 600 {
		t.Fatalf("book reads = %+v, want 4 reads, a hit rate of 0.75 over 600 s", s.BookReads)
	}
	var frame struct {
		BookReads struct {
			Total        int            `json:"total"`
			HitRate      float64        `json:"hit_rate"`
			ByServedFrom map[string]int `json:"by_served_from"`
		} `json:"book_reads"`
	}
	if err := json.Unmarshal(mustJSON(t, s), &frame); err != nil {
		t.Fatal(err)
	}
	if frame.BookReads.HitRate != 0.75 || frame.BookReads.ByServedFrom["database"] != 2 || frame.BookReads.ByServedFrom["waited"] != 0 {
		t.Errorf("stats frame book_reads = %+v", frame.BookReads)
	}
}
