package cache

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

// newTestCache returns a cache with room for entries of one-letter groups, short keys and
// one-byte values.
func newTestCache(ttl time.Duration, entries int) (*Cache[string], *clock) {
	clk := &clock{t: time.Date(2026, 1, 21, 12, 0, 0, 0, time.UTC)}
	c := New[string](ttl, int64(entries)*(entryOverhead+3+1))
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
		c.Set("o", fmt.Sprint(i), "x", c.Token("o"))
	}
	clk.t = clk.t.Add(2 * time.Minute) // all expired: the sweep makes room
	c.Set("n", "a", "y", c.Token("n"))
	if c.Len() != 1 {
		t.Errorf("Len = %d after sweeping expired entries, want 1", c.Len())
	}
	for i := range 20 {
		g := fmt.Sprint(i % 10)
		c.Set(g, "k", "v", c.Token(g))
		if c.Len() > 5 {
			t.Fatalf("Len = %d, above the bound 5", c.Len())
		}
	}
}

// TestBoundedByBytes: the cache holds at most its bytes, whatever the number of
// entries: a few large values push out many small ones, a value larger than the whole
// budget is not stored, and replacing a value counts only the new one.
func TestBoundedByBytes(t *testing.T) {
	const budget = 64 << 10
	c := New[[]byte](time.Minute, budget)
	for i := range 1000 {
		g := fmt.Sprint("book-", i)
		c.Set(g, "chapters", make([]byte, 100), c.Token(g))
	}
	if b := c.Bytes(); b > budget {
		t.Fatalf("%d bytes held, over the budget %d", b, budget)
	}
	small := c.Len()
	for i := range 10 {
		g := fmt.Sprint("big-", i)
		c.Set(g, "text", make([]byte, 16<<10), c.Token(g))
		if b := c.Bytes(); b > budget {
			t.Fatalf("%d bytes held after a large value, over %d", b, budget)
		}
	}
	if c.Len() >= small {
		t.Errorf("%d entries after large values, had %d small ones: none made room", c.Len(), small)
	}
	if c.Set("huge", "text", make([]byte, budget), c.Token("huge")) {
		t.Error("a value larger than the whole budget was stored")
	}
	c.Clear()
	c.Set("g", "k", make([]byte, 1000), c.Token("g"))
	c.Set("g", "k", make([]byte, 10), c.Token("g"))
	if b, want := c.Bytes(), sizeOf("g", "k", make([]byte, 10)); b != want || c.Len() != 1 {
		t.Errorf("after a replacement %d bytes in %d entries, want %d in 1", b, c.Len(), want)
	}
}

func TestConcurrent(t *testing.T) {
	c := New[int](time.Minute, 100*(entryOverhead+defaultValueSize+4))
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
