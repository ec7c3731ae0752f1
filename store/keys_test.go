package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func TestKeyConstructorsDecode(t *testing.T) {
	keys := map[string]struct {
		k    Key
		kind Kind
		want []string
	}{
		"tenant":          {TenantKey("t1"), KindTenant, []string{"t1"}},
		"user":            {UserKey("t1", "u1"), KindUser, []string{"t1", "u1"}},
		"user name":       {UserNameKey("t1", "alice@example.com"), KindUserName, []string{"t1", "alice@example.com"}},
		"device":          {DeviceKey("d"), KindDevice, []string{"d"}},
		"tenant device":   {TenantDeviceKey("t", "d"), KindTenantDevice, []string{"t", "d"}},
		"credential":      {CredentialKey("c"), KindCredential, []string{"c"}},
		"user credential": {UserCredentialKey("t", "u", "c"), KindUserCredential, []string{"t", "u", "c"}},
		"key id":          {KeyIDKey([]byte{0, 1, 2}), KindKeyID, []string{"\x00\x01\x02"}},
		"evidence":        {EvidenceKey("c"), KindEvidence, []string{"c"}},
		"enrollment":      {EnrollmentKey("e"), KindEnrollment, []string{"e"}},
		"attempt":         {AttemptKey("a"), KindAttempt, []string{"a"}},
		"sign-in state":   {SignInStateKey("t", "u"), KindSignInState, []string{"t", "u"}},
		"session":         {SessionKey("s"), KindSession, []string{"s"}},
		"tpm activation":  {TPMActivationKey("e"), KindTPMActivation, []string{"e"}},
		"request nonce":   {RequestNonceKey("c", []byte{9, 0}), KindRequestNonce, []string{"c", "\x09\x00"}},
		"request counter": {RequestCounterKey("c"), KindRequestCounter, []string{"c"}},
		"api key":         {APIKeyKey([]byte{1, 2}), KindAPIKey, []string{"\x01\x02"}},
		"tenant api key":  {TenantAPIKeyKey("t", "k"), KindTenantAPIKey, []string{"t", "k"}},
		"empty parts":     {UserKey("", ""), KindUser, []string{"", ""}},
	}
	for name, c := range keys {
		tu, err := DecodeKey(c.k)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if tu.Kind != c.kind || c.k.Kind() != c.kind {
			t.Errorf("%s: kind %x, want %x", name, tu.Kind, c.kind)
		}
		var got []string
		for _, comp := range tu.Components {
			got = append(got, string(comp.Bytes))
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("%s: components %q, want %q", name, got, c.want)
		}
		if LastComponent(c.k) != c.want[len(c.want)-1] {
			t.Errorf("%s: LastComponent %q", name, LastComponent(c.k))
		}
		if !bytes.HasPrefix(c.k, Prefix(c.kind)) {
			t.Errorf("%s: not under Prefix(kind)", name)
		}
	}
	// The prefix of a tenant's users covers that tenant only, even when one
	// tenant id is a prefix of another.
	if bytes.HasPrefix(UserKey("t10", "u"), Prefix(KindUser, "t1")) {
		t.Error("user of tenant t10 is under the prefix of tenant t1")
	}
	if !bytes.HasPrefix(UserKey("t1", "u"), Prefix(KindUser, "t1")) {
		t.Error("user of tenant t1 is not under its prefix")
	}
	// The two-part layouts do not collide on a shifted boundary.
	if bytes.Equal(UserKey("ab", "c"), UserKey("a", "bc")) {
		t.Error("(ab,c) and (a,bc) share a key")
	}
}

func TestKeyTooLong(t *testing.T) {
	long := strings.Repeat("x", MaxComponent+1)
	if k := TenantKey(long); k != nil {
		t.Fatalf("over-long component encoded to %d bytes", len(k))
	}
	if _, err := EncodeTuple(Tuple{Kind: KindTenant, Components: []Component{{Bytes: []byte(long)}}}); !errors.Is(err, ErrKey) {
		t.Fatalf("EncodeTuple of an over-long component: %v", err)
	}
	s := openTest(t, Options{})
	if err := s.Get(TenantKey(long), new(string)); !errors.Is(err, ErrKey) {
		t.Errorf("Get of an unencodable key: %v", err)
	}
	if err := s.Update([]Key{TenantKey(long)}, func(*Tx) error { return nil }); !errors.Is(err, ErrKey) {
		t.Errorf("Update locking an unencodable key: %v", err)
	}
}

func TestDecodeKeyRefuses(t *testing.T) {
	for name, k := range map[string][]byte{
		"empty":           {},
		"unknown kind":    {0x7f, 0, 0},
		"truncated len":   {byte(KindTenant), 0},
		"truncated bytes": {byte(KindTenant), 0, 3, 'a', 'b'},
		"trailing":        append(TenantKey("a"), 0),
		"missing part":    {byte(KindUser), 0, 1, 'a'},
		"short number":    {byte(KindAudit), 0, 0, 0},
	} {
		if _, err := DecodeKey(k); !errors.Is(err, ErrKey) {
			t.Errorf("%s: DecodeKey(%x) = %v, want ErrKey", name, k, err)
		}
	}
	if _, err := EncodeTuple(Tuple{Kind: KindUser, Components: []Component{{Bytes: []byte("a")}}}); !errors.Is(err, ErrKey) {
		t.Errorf("too few components: %v", err)
	}
	if _, err := EncodeTuple(Tuple{Kind: KindAudit, Components: []Component{{Bytes: []byte("a")}}}); !errors.Is(err, ErrKey) {
		t.Errorf("bytes for a number: %v", err)
	}
	if _, err := EncodeTuple(Tuple{Kind: 0x7f}); !errors.Is(err, ErrKey) {
		t.Errorf("unknown kind: %v", err)
	}
}

// tupleFrom builds a valid tuple of some kind from fuzz bytes.
func tupleFrom(data []byte) Tuple {
	kinds := make([]Kind, 0, len(layouts))
	for k := range layouts {
		kinds = append(kinds, k)
	}
	slices.Sort(kinds)
	if len(data) == 0 {
		return Tuple{Kind: kinds[0], Components: []Component{{Bytes: []byte{}}}}
	}
	t := Tuple{Kind: kinds[int(data[0])%len(kinds)]}
	data = data[1:]
	for _, p := range layouts[t.Kind] {
		switch p {
		case partBytes:
			n := 0
			if len(data) > 0 {
				n = min(int(data[0])%8, len(data)-1)
				data = data[1:]
			}
			t.Components = append(t.Components, Component{Bytes: bytes.Clone(data[:n])})
			data = data[n:]
		case partU64:
			var b [8]byte
			copy(b[:], data)
			data = data[min(8, len(data)):]
			t.Components = append(t.Components, Component{U64: binary.BigEndian.Uint64(b[:])})
		}
	}
	return t
}

// FuzzKeyInjective checks that two tuples share a key only when they are
// the same tuple, and that every key decodes back to its tuple.
func FuzzKeyInjective(f *testing.F) {
	f.Add([]byte{1, 2, 'a', 'b', 1, 'c'}, []byte{1, 1, 'a', 2, 'b', 'c'})
	f.Add([]byte{0, 0}, []byte{0, 0, 0})
	f.Add([]byte{14, 1, 2, 3, 4, 5, 6, 7, 8, 9}, []byte{14, 1, 2, 3, 4, 5, 6, 7, 8})
	f.Fuzz(func(t *testing.T, a, b []byte) {
		ta, tb := tupleFrom(a), tupleFrom(b)
		ka, err := EncodeTuple(ta)
		if err != nil {
			t.Fatalf("EncodeTuple(%v): %v", ta, err)
		}
		kb, err := EncodeTuple(tb)
		if err != nil {
			t.Fatalf("EncodeTuple(%v): %v", tb, err)
		}
		if bytes.Equal(ka, kb) != reflect.DeepEqual(normalize(ta), normalize(tb)) {
			t.Fatalf("tuples %v and %v: keys %x and %x", ta, tb, ka, kb)
		}
		back, err := DecodeKey(ka)
		if err != nil || !reflect.DeepEqual(normalize(back), normalize(ta)) {
			t.Fatalf("DecodeKey(%x) = %v, %v; want %v", ka, back, err, ta)
		}
	})
}

// FuzzDecodeKey checks that decoding any bytes never panics, and that a key
// that decodes re-encodes to exactly the same bytes (one key, one tuple).
func FuzzDecodeKey(f *testing.F) {
	f.Add([]byte(UserCredentialKey("t", "u", "c")))
	f.Add([]byte(expiryKey(5, TenantKey("x"))))
	f.Add([]byte{byte(KindAuditByUser), 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, k []byte) {
		tu, err := DecodeKey(k)
		if err != nil {
			return
		}
		again, err := EncodeTuple(tu)
		if err != nil || !bytes.Equal(again, k) {
			t.Fatalf("DecodeKey(%x) = %v, which encodes to %x, %v", k, tu, again, err)
		}
	})
}

// normalize makes empty and nil byte components compare equal.
func normalize(t Tuple) Tuple {
	out := Tuple{Kind: t.Kind}
	for i, c := range t.Components {
		if layouts[t.Kind][i] == partBytes && len(c.Bytes) == 0 {
			c.Bytes = []byte{}
		}
		out.Components = append(out.Components, c)
	}
	return out
}

func TestPrefixEnd(t *testing.T) {
	for _, c := range []struct{ in, want []byte }{
		{[]byte{1}, []byte{2}},
		{[]byte{1, 0xff}, []byte{2}},
		{[]byte{0xff, 0xff}, nil},
		{[]byte{1, 2, 3}, []byte{1, 2, 4}},
	} {
		if got := prefixEnd(c.in); !bytes.Equal(got, c.want) {
			t.Errorf("prefixEnd(%x) = %x, want %x", c.in, got, c.want)
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 1000 {
		p := make([]byte, 1+r.IntN(4))
		for i := range p {
			p[i] = byte(r.IntN(3)) + 0xfd
		}
		end := prefixEnd(p)
		ext := append(bytes.Clone(p), byte(r.IntN(256)))
		if end != nil && bytes.Compare(ext, end) >= 0 {
			t.Fatalf("prefixEnd(%x) = %x is not above %x", p, end, ext)
		}
	}
}
