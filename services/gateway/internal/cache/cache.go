// Package cache is the gateway's in-memory cache: entries expire after a fixed TTL and are
// grouped (one group per book) so that an index announcement drops everything cached about
// that book at once.
package cache

import (
	"hash/maphash"
	"sync"
	"time"
)

// shards is the number of generation counters a cache keeps; groups share them by hash.
const shards = 64

type entry[V any] struct {
	value   V
	expires time.Time
}

// Cache maps (group, key) to values that expire after a TTL. It holds at most a fixed
// number of entries: when full it first sweeps expired entries, then drops whole groups.
// It starts no goroutine: expired entries are dropped when met or swept.
//
// Readers that fill the cache from a slower source take a Token before reading the source
// and pass it to Set; a Drop of the group in between makes that Set a no-op, so a value
// read before an invalidation is never cached after it.
type Cache[V any] struct {
	ttl  time.Duration
	max  int
	now  func() time.Time
	seed maphash.Seed

	mu     sync.Mutex
	groups map[string]map[string]entry[V]
	n      int
	gens   [shards]uint64
}

// New returns a cache whose entries live for ttl, holding at most limit entries (at least 1).
func New[V any](ttl time.Duration, limit int) *Cache[V] {
	return &Cache[V]{
		ttl: ttl, max: max(limit, 1), now: time.Now, seed: maphash.MakeSeed(),
		groups: make(map[string]map[string]entry[V]),
	}
}

// TTL is how long entries live.
func (c *Cache[V]) TTL() time.Duration { return c.ttl }

// Len reports how many entries the cache holds, expired ones not yet swept included.
func (c *Cache[V]) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

func (c *Cache[V]) shard(group string) int {
	return int(maphash.String(c.seed, group) % shards)
}

// Get returns the live value of (group, key).
func (c *Cache[V]) Get(group, key string) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var zero V
	g := c.groups[group]
	e, ok := g[key]
	if !ok {
		return zero, false
	}
	if !c.now().Before(e.expires) {
		c.remove(group, g, key)
		return zero, false
	}
	return e.value, true
}

// Token returns the group's generation, to pass to Set after reading the source.
func (c *Cache[V]) Token(group string) uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gens[c.shard(group)]
}

// Set stores v under (group, key) unless the group was dropped since token was taken. It
// reports whether it stored the value.
func (c *Cache[V]) Set(group, key string, v V, token uint64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gens[c.shard(group)] != token {
		return false
	}
	g := c.groups[group]
	if _, exists := g[key]; !exists {
		if c.n >= c.max {
			c.makeRoom()
		}
		if g = c.groups[group]; g == nil {
			g = make(map[string]entry[V])
			c.groups[group] = g
		}
		c.n++
	}
	g[key] = entry[V]{value: v, expires: c.now().Add(c.ttl)}
	return true
}

// Drop removes every entry of group, voids the tokens taken for it and reports how many
// entries it removed.
func (c *Cache[V]) Drop(group string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gens[c.shard(group)]++
	n := len(c.groups[group])
	c.n -= n
	delete(c.groups, group)
	return n
}

// Clear removes every entry, voids every token taken and reports how many entries it
// removed.
func (c *Cache[V]) Clear() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := range c.gens {
		c.gens[i]++
	}
	n := c.n
	c.n = 0
	c.groups = make(map[string]map[string]entry[V])
	return n
}

func (c *Cache[V]) remove(group string, g map[string]entry[V], key string) {
	delete(g, key)
	c.n--
	if len(g) == 0 {
		delete(c.groups, group)
	}
}

// makeRoom sweeps expired entries and, if the cache is still full, drops whole groups
// (in map order, which is as good as random) until there is room for one more entry.
func (c *Cache[V]) makeRoom() {
	now := c.now()
	for name, g := range c.groups {
		for k, e := range g {
			if !now.Before(e.expires) {
				c.remove(name, g, k)
			}
		}
	}
	for name, g := range c.groups {
		if c.n < c.max {
			return
		}
		c.n -= len(g)
		delete(c.groups, name)
	}
}
