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
	size    int64
}

// Sizer is implemented by values that know how many bytes they hold.
type Sizer interface {
	CacheSize() int
}

// entryOverhead is what an entry costs besides its value, its group and its key: the
// maps' slots, the entry and its expiry, roughly.
const entryOverhead = 128

// defaultValueSize is the size counted for a value that is no Sizer, string or []byte.
const defaultValueSize = 256

// sizeOf is what storing v under (group, key) costs, in bytes.
func sizeOf(group, key string, v any) int64 {
	n := entryOverhead + len(group) + len(key)
	switch x := v.(type) {
	case Sizer:
		n += x.CacheSize()
	case string:
		n += len(x)
	case []byte:
		n += len(x)
	default:
		n += defaultValueSize
	}
	return int64(n)
}

// Cache maps (group, key) to values that expire after a TTL. It holds at most a fixed
// number of bytes (values as their Sizer says, plus each entry's keys and bookkeeping):
// when full it first sweeps expired entries, then drops whole groups. A value larger than
// the whole budget is not stored. It starts no goroutine: expired entries are dropped
// when met or swept.
//
// Readers that fill the cache from a slower source take a Token before reading the source
// and pass it to Set; a Drop of the group in between makes that Set a no-op, so a value
// read before an invalidation is never cached after it.
type Cache[V any] struct {
	ttl  time.Duration
	max  int64 // bytes
	now  func() time.Time
	seed maphash.Seed

	mu     sync.Mutex
	groups map[string]map[string]entry[V]
	n      int   // entries
	bytes  int64 // held, as sizeOf counts them
	gens   [shards]uint64
}

// New returns a cache whose entries live for ttl, holding at most maxBytes bytes.
func New[V any](ttl time.Duration, maxBytes int64) *Cache[V] {
	return &Cache[V]{
		ttl: ttl, max: max(maxBytes, 1), now: time.Now, seed: maphash.MakeSeed(),
		groups: make(map[string]map[string]entry[V]),
	}
}

// TTL is how long entries live.
func (c *Cache[V]) TTL() time.Duration { return c.ttl }

// Bytes reports how many bytes the cache holds, expired entries not yet swept included.
func (c *Cache[V]) Bytes() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.bytes
}

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
		c.remove(group, g, key, e)
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
	size := sizeOf(group, key, v)
	if size > c.max {
		return false
	}
	if g := c.groups[group]; g != nil {
		if old, exists := g[key]; exists {
			c.remove(group, g, key, old)
		}
	}
	if c.bytes+size > c.max {
		c.makeRoom(size)
	}
	g := c.groups[group]
	if g == nil {
		g = make(map[string]entry[V])
		c.groups[group] = g
	}
	g[key] = entry[V]{value: v, expires: c.now().Add(c.ttl), size: size}
	c.n++
	c.bytes += size
	return true
}

// Drop removes every entry of group, voids the tokens taken for it and reports how many
// entries it removed.
func (c *Cache[V]) Drop(group string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gens[c.shard(group)]++
	n := len(c.groups[group])
	c.dropGroup(group)
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
	c.n, c.bytes = 0, 0
	c.groups = make(map[string]map[string]entry[V])
	return n
}

func (c *Cache[V]) remove(group string, g map[string]entry[V], key string, e entry[V]) {
	delete(g, key)
	c.n--
	c.bytes -= e.size
	if len(g) == 0 {
		delete(c.groups, group)
	}
}

// dropGroup removes every entry of group.
func (c *Cache[V]) dropGroup(group string) {
	for _, e := range c.groups[group] {
		c.n--
		c.bytes -= e.size
	}
	delete(c.groups, group)
}

// makeRoom sweeps expired entries and, if there is still not room for need more bytes,
// drops whole groups (in map order, which is as good as random) until there is.
func (c *Cache[V]) makeRoom(need int64) {
	now := c.now()
	for name, g := range c.groups {
		for k, e := range g {
			if !now.Before(e.expires) {
				c.remove(name, g, k, e)
			}
		}
	}
	for name := range c.groups {
		if c.bytes+need <= c.max {
			return
		}
		c.dropGroup(name)
	}
}
