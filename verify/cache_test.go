package verify

import (
	"errors"
	"fmt"
	"sync"
	"testing"
)

func TestKeyCache(t *testing.T) {
	s := newSigner(t)
	c := NewKeyCache(64)
	loads := 0
	load := func(k *PublicKey) func() (*PublicKey, error) {
		return func() (*PublicKey, error) { loads++; return k, nil }
	}
	id := []byte("cred-1")

	// A miss loads and caches; a hit does not load.
	if k, err := c.Get(id, "tenant-a", load(s.p256Key)); err != nil || k != s.p256Key || loads != 1 {
		t.Fatalf("first Get: %v %v loads=%d", k, err, loads)
	}
	if k, _ := c.Get(id, "tenant-a", load(nil)); k != s.p256Key || loads != 1 {
		t.Fatalf("second Get loaded again (loads=%d)", loads)
	}
	// Another scope never sees the entry.
	notFound := errors.New("not found")
	if _, err := c.Get(id, "tenant-b", func() (*PublicKey, error) { return nil, notFound }); err != notFound {
		t.Fatalf("Get in another scope: %v", err)
	}
	// Errors are not cached.
	if _, err := c.Get([]byte("cred-2"), "tenant-a", func() (*PublicKey, error) { return nil, notFound }); err != notFound {
		t.Fatal(err)
	}
	if k, _ := c.Get([]byte("cred-2"), "tenant-a", load(s.edKey)); k != s.edKey {
		t.Fatal("an error was cached")
	}
	// Invalidate drops the key.
	c.Invalidate(id)
	if k, _ := c.Get(id, "tenant-a", load(s.edKey)); k != s.edKey {
		t.Fatal("Invalidate did not drop the key")
	}
	c.Invalidate([]byte("never cached"))
}

// TestKeyCacheInvalidateDuringLoad checks that a key loaded before an
// invalidation is not cached after it.
func TestKeyCacheInvalidateDuringLoad(t *testing.T) {
	s := newSigner(t)
	c := NewKeyCache(64)
	id := []byte("cred")
	k, err := c.Get(id, "t", func() (*PublicKey, error) {
		c.Invalidate(id) // the credential is deleted while its key is read
		return s.p256Key, nil
	})
	if err != nil || k != s.p256Key {
		t.Fatal(k, err)
	}
	loaded := false
	c.Get(id, "t", func() (*PublicKey, error) { loaded = true; return s.p256Key, nil })
	if !loaded {
		t.Error("a key loaded across an invalidation was cached")
	}
}

func TestKeyCacheBounded(t *testing.T) {
	s := newSigner(t)
	c := NewKeyCache(32)
	for i := range 1000 {
		c.Get([]byte(fmt.Sprint("cred-", i)), "t", func() (*PublicKey, error) { return s.p256Key, nil })
		if n := c.Len(); n > 32 {
			t.Fatalf("%d entries in a cache of 32", n)
		}
	}
	// A hot key survives a sweep of cold ones.
	hot := []byte("hot")
	c.Get(hot, "t", func() (*PublicKey, error) { return s.edKey, nil })
	for i := range 40 {
		c.Get(hot, "t", func() (*PublicKey, error) { t.Fatal("hot key evicted"); return nil, nil })
		c.Get([]byte(fmt.Sprint("cold-", i)), "t", func() (*PublicKey, error) { return s.p256Key, nil })
	}
}

func TestKeyCacheConcurrent(t *testing.T) {
	s := newSigner(t)
	c := NewKeyCache(16)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 2000 {
				id := []byte(fmt.Sprint("cred-", (g*31+i)%40))
				k, err := c.Get(id, "t", func() (*PublicKey, error) { return s.p256Key, nil })
				if err != nil || k != s.p256Key {
					t.Error(k, err)
					return
				}
				if i%17 == 0 {
					c.Invalidate(id)
				}
			}
		}()
	}
	wg.Wait()
}

func TestKeyCacheHitAllocations(t *testing.T) {
	s := newSigner(t)
	c := NewKeyCache(0)
	id := []byte("credential id")
	load := func() (*PublicKey, error) { return s.p256Key, nil }
	c.Get(id, "tenant", load)
	if n := testing.AllocsPerRun(100, func() { c.Get(id, "tenant", load) }); n != 0 {
		t.Errorf("a hit allocates %v times", n)
	}
}
