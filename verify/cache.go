package verify

import (
	"hash/maphash"
	"sync"
)

const cacheShards = 16

// KeyCache keeps parsed public keys by credential id, so that the hot path
// neither reads the store nor parses a key. It is bounded (when full, a
// clock sweep evicts entries not used since its last pass) and safe for
// concurrent use.
//
// An entry also records the scope it was loaded for (the tenant owning the
// credential): a lookup in another scope is a miss, so a cached key never
// crosses tenants. Invalidate drops an id at once, whatever its scope; a
// load that raced with the invalidation is not cached, so a deleted or
// disabled credential cannot come back from an in-flight lookup.
type KeyCache struct {
	seed   maphash.Seed
	shards [cacheShards]cacheShard
}

type cacheShard struct {
	mu      sync.Mutex
	index   map[string]int
	entries []cacheEntry
	hand    int
	max     int
	epoch   uint64 // bumped by every Invalidate
}

type cacheEntry struct {
	id    string
	scope string
	key   *PublicKey
	used  bool
}

// NewKeyCache returns a cache of at most max keys (max <= 0 means 65536).
func NewKeyCache(max int) *KeyCache {
	if max <= 0 {
		max = 65536
	}
	c := &KeyCache{seed: maphash.MakeSeed()}
	per := max / cacheShards
	if per < 1 {
		per = 1
	}
	for i := range c.shards {
		c.shards[i].index = make(map[string]int)
		c.shards[i].max = per
	}
	return c
}

func (c *KeyCache) shard(id []byte) *cacheShard {
	return &c.shards[maphash.Bytes(c.seed, id)%cacheShards]
}

// Get returns the key cached for id in scope. On a miss it calls load and
// caches what load returns (unless id was invalidated meanwhile); errors
// are returned and never cached. A hit allocates nothing.
func (c *KeyCache) Get(id []byte, scope string, load func() (*PublicKey, error)) (*PublicKey, error) {
	s := c.shard(id)
	s.mu.Lock()
	if i, ok := s.index[string(id)]; ok && s.entries[i].scope == scope {
		e := &s.entries[i]
		e.used = true
		k := e.key
		s.mu.Unlock()
		return k, nil
	}
	epoch := s.epoch
	s.mu.Unlock()

	k, err := load()
	if err != nil {
		return nil, err
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.epoch != epoch {
		return k, nil
	}
	if i, ok := s.index[string(id)]; ok {
		s.entries[i].scope, s.entries[i].key, s.entries[i].used = scope, k, true
		return k, nil
	}
	e := cacheEntry{id: string(id), scope: scope, key: k}
	if len(s.entries) < s.max {
		s.index[e.id] = len(s.entries)
		s.entries = append(s.entries, e)
		return k, nil
	}
	for {
		v := &s.entries[s.hand]
		if !v.used {
			delete(s.index, v.id)
			*v = e
			s.index[e.id] = s.hand
			s.hand = (s.hand + 1) % len(s.entries)
			return k, nil
		}
		v.used = false
		s.hand = (s.hand + 1) % len(s.entries)
	}
}

// Invalidate drops the key cached for id (in every scope). Call it when a
// credential is deleted or disabled, after the change is durable.
func (c *KeyCache) Invalidate(id []byte) {
	s := c.shard(id)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.epoch++
	i, ok := s.index[string(id)]
	if !ok {
		return
	}
	delete(s.index, string(id))
	last := len(s.entries) - 1
	if i != last {
		s.entries[i] = s.entries[last]
		s.index[s.entries[i].id] = i
	}
	s.entries[last] = cacheEntry{}
	s.entries = s.entries[:last]
	if s.hand >= len(s.entries) {
		s.hand = 0
	}
}

// Len returns the number of cached keys.
func (c *KeyCache) Len() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		n += len(s.entries)
		s.mu.Unlock()
	}
	return n
}
