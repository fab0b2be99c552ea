package cache

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func newTestCache(ttl time.Duration, max int) (*Cache[string], *clock) {
	clk := &clock{t: time.Date(2026, 1, 21, 12, 0, 0, 0, time.UTC)}
	c := New[string](ttl, max)
	c.now = clk.now
	return c, clk
}

func TestGetSetExpire(t *testing.T) {
	c, clk := newTestCache(time.Minute, 10)
	if _, ok := c.Get("1", "book"); ok {
		t.Fatal("empty cache returned a value")
	}
	if !c.Set("1", "book", "v1", c.Token("1")) {
		t.Fatal("Set with a fresh token refused")
	}
	if v, ok := c.Get("1", "book"); !ok || v != "v1" {
		t.Fatalf("Get = %q %v, want v1", v, ok)
	}
	clk.t = clk.t.Add(time.Minute)
	if _, ok := c.Get("1", "book"); ok {
		t.Error("value outlived its TTL")
	}
	if c.Len() != 0 {
		t.Errorf("Len = %d after expiry, want 0", c.Len())
	}
}

func TestDropVoidsTokens(t *testing.T) {
	c, _ := newTestCache(time.Minute, 10)
	c.Set("1", "book", "a", c.Token("1"))
	c.Set("1", "chapters", "b", c.Token("1"))
	c.Set("2", "book", "c", c.Token("2"))
	stale := c.Token("1")
	if n := c.Drop("1"); n != 2 {
		t.Errorf("Drop removed %d entries, want 2", n)
	}
	if _, ok := c.Get("1", "book"); ok {
		t.Error("dropped group still served")
	}
	if _, ok := c.Get("2", "book"); !ok {
		t.Error("other group dropped too")
	}
	if c.Set("1", "book", "old", stale) {
		t.Error("Set with a token taken before Drop stored a stale value")
	}
	if c.Len() != 1 {
		t.Errorf("Len = %d, want 1", c.Len())
	}
}

func TestClear(t *testing.T) {
	c, _ := newTestCache(time.Minute, 10)
	c.Set("1", "book", "a", c.Token("1"))
	c.Set("2", "book", "b", c.Token("2"))
	stale := c.Token("3")
	if n := c.Clear(); n != 2 {
		t.Errorf("Clear removed %d entries, want 2", n)
	}
	if _, ok := c.Get("1", "book"); ok || c.Len() != 0 {
		t.Errorf("cleared cache still holds %d entries", c.Len())
	}
	if c.Set("3", "book", "old", stale) {
		t.Error("Set with a token taken before Clear stored a stale value")
	}
	if !c.Set("3", "book", "new", c.Token("3")) || c.Len() != 1 {
		t.Error("Set after Clear refused")
	}
}

func TestBounded(t *testing.T) {
	c, clk := newTestCache(time.Minute, 5)
	for i := range 5 {
		c.Set("old", fmt.Sprint(i), "x", c.Token("old"))
	}
	clk.t = clk.t.Add(2 * time.Minute) // all expired: the sweep makes room
	c.Set("new", "a", "y", c.Token("new"))
	if c.Len() != 1 {
		t.Errorf("Len = %d after sweeping expired entries, want 1", c.Len())
	}
	for i := range 20 {
		g := fmt.Sprint("g", i)
		c.Set(g, "k", "v", c.Token(g))
		if c.Len() > 5 {
			t.Fatalf("Len = %d, above the bound 5", c.Len())
		}
	}
}

func TestConcurrent(t *testing.T) {
	c := New[int](time.Minute, 100)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 200 {
				g := fmt.Sprint(j % 13)
				c.Set(g, fmt.Sprint(i), j, c.Token(g))
				c.Get(g, fmt.Sprint(i))
				if j%17 == 0 {
					c.Drop(g)
				}
			}
		})
	}
	wg.Wait()
	if n := c.Len(); n < 0 || n > 100 {
		t.Errorf("Len = %d", n)
	}
}
