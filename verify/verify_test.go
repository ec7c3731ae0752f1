package verify

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/hex"
	"fmt"
	"math/big"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keybind/keybind/attest"
)

// signer makes keys and signatures for the tests.
type signer struct {
	p256    *ecdsa.PrivateKey
	ed      ed25519.PrivateKey
	p256Key *PublicKey
	edKey   *PublicKey
}

func newSigner(t testing.TB) *signer {
	t.Helper()
	p, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	_, ed, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s := &signer{p256: p, ed: ed}
	spki, err := x509.MarshalPKIXPublicKey(&p.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	if s.p256Key, err = ParsePublicKey(spki); err != nil {
		t.Fatal(err)
	}
	if s.edKey, err = ParsePublicKey(ed.Public().(ed25519.PublicKey)); err != nil {
		t.Fatal(err)
	}
	return s
}

func (s *signer) der(t testing.TB, msg []byte) []byte {
	h := sha256.Sum256(msg)
	sig, err := ecdsa.SignASN1(rand.Reader, s.p256, h[:])
	if err != nil {
		t.Fatal(err)
	}
	return sig
}

// raw converts a DER signature to r‖s.
func raw(t testing.TB, der []byte) []byte {
	var v struct{ R, S *big.Int }
	if _, err := asn1Unmarshal(der, &v); err != nil {
		t.Fatal(err)
	}
	out := make([]byte, 64)
	v.R.FillBytes(out[:32])
	v.S.FillBytes(out[32:])
	return out
}

// item builds a valid item of algorithm a over msg.
func (s *signer) item(t testing.TB, a Algorithm, msg []byte) Item {
	switch a {
	case ECDSAP256, AppAttest:
		return Item{Algorithm: a, Key: s.p256Key, Message: msg, Signature: s.der(t, msg)}
	case ECDSAP256Raw:
		return Item{Algorithm: a, Key: s.p256Key, Message: msg, Signature: raw(t, s.der(t, msg))}
	case Ed25519:
		return Item{Algorithm: a, Key: s.edKey, Message: msg, Signature: ed25519.Sign(s.ed, msg)}
	}
	t.Fatalf("no algorithm %d", a)
	return Item{}
}

func verifyOne(t testing.TB, p *Pipeline, it Item) attest.Code {
	t.Helper()
	res := make([]Result, 1)
	if err := p.Verify([]Item{it}, res); err != nil {
		t.Fatal(err)
	}
	return res[0].Code
}

func TestParsePublicKey(t *testing.T) {
	s := newSigner(t)
	spki, _ := x509.MarshalPKIXPublicKey(&s.p256.PublicKey)
	point, _ := s.p256.PublicKey.Bytes()
	edRaw := s.ed.Public().(ed25519.PublicKey)
	edSPKI, _ := x509.MarshalPKIXPublicKey(edRaw)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	p384SPKI, _ := x509.MarshalPKIXPublicKey(&p384.PublicKey)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 1024)
	rsaSPKI, _ := x509.MarshalPKIXPublicKey(&rsaKey.PublicKey)
	offCurve := bytes.Clone(point)
	offCurve[64] ^= 1
	// The identity point's encoding (y = 1) has order 1; y = -1 has order 2.
	smallOrder, _ := hex.DecodeString("0100000000000000000000000000000000000000000000000000000000000000")
	// y = p + 1 is a non-canonical encoding of the point with y = 1... and
	// of small order; y = p + 2 is the non-canonical name of y = 2, a point
	// of large order.
	nonCanonical, _ := hex.DecodeString("efffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f")
	notAPoint, _ := hex.DecodeString("0200000000000000000000000000000000000000000000000000000000000000")

	for _, tc := range []struct {
		name string
		in   []byte
		want KeyType
	}{
		{"P-256 SubjectPublicKeyInfo", spki, KeyP256},
		{"P-256 uncompressed point", point, KeyP256},
		{"Ed25519 raw", edRaw, KeyEd25519},
		{"Ed25519 SubjectPublicKeyInfo", edSPKI, KeyEd25519},
	} {
		k, err := ParsePublicKey(tc.in)
		if err != nil || k.Type() != tc.want {
			t.Errorf("%s: %v %v", tc.name, k, err)
		}
	}
	k, _ := ParsePublicKey(point)
	if !k.ECDSA().Equal(&s.p256.PublicKey) || k.Ed25519() != nil {
		t.Error("P-256 key does not round-trip")
	}
	k, _ = ParsePublicKey(edRaw)
	if !k.Ed25519().Equal(edRaw) || k.ECDSA() != nil {
		t.Error("Ed25519 key does not round-trip")
	}

	for _, tc := range []struct {
		name string
		in   []byte
	}{
		{"empty", nil},
		{"garbage", []byte("not a key")},
		{"P-384 key", p384SPKI},
		{"RSA key", rsaSPKI},
		{"P-256 point off the curve", offCurve},
		{"P-256 point, compressed", append([]byte{2}, point[1:33]...)},
		{"truncated SubjectPublicKeyInfo", spki[:len(spki)-1]},
		{"Ed25519 key of small order", smallOrder},
		{"Ed25519 key not canonically encoded", nonCanonical},
		{"Ed25519 key not a point", notAPoint},
	} {
		_, err := ParsePublicKey(tc.in)
		if attest.CodeOf(err) != CodePublicKey {
			t.Errorf("%s: got %v, want %s", tc.name, err, CodePublicKey)
		}
	}
}

func TestAlgorithmNames(t *testing.T) {
	for a := Algorithm(1); a < numAlgorithms; a++ {
		got, ok := ParseAlgorithm([]byte(a.String()))
		if !ok || got != a {
			t.Errorf("%v does not round-trip", a)
		}
	}
	for _, bad := range []string{"", "ES256", "ecdsa", "ed448", "unknown"} {
		if _, ok := ParseAlgorithm([]byte(bad)); ok {
			t.Errorf("ParseAlgorithm(%q) accepted", bad)
		}
	}
	if Algorithm(0).String() != "unknown" || Algorithm(99).String() != "unknown" {
		t.Error("String of an unknown algorithm")
	}
}

// TestChecks runs one valid and one invalid item per check, through the
// pipeline.
func TestChecks(t *testing.T) {
	p := New(Options{})
	defer p.Close()
	s := newSigner(t)
	msg := []byte("approve sign-in 42")
	digest := sha256.Sum256(msg)
	other := newSigner(t)

	withDigest := func(it Item) Item { it.Message, it.Digest = nil, digest[:]; return it }
	corrupt := func(it Item) Item {
		it.Signature = bytes.Clone(it.Signature)
		it.Signature[len(it.Signature)-1] ^= 1
		return it
	}
	wrongMsg := func(it Item) Item { it.Message = []byte("approve sign-in 43"); return it }

	for _, a := range []Algorithm{ECDSAP256, ECDSAP256Raw, Ed25519, AppAttest} {
		t.Run(a.String(), func(t *testing.T) {
			good := s.item(t, a, msg)
			encoding := CodeSignatureEncoding
			if a == AppAttest {
				encoding = CodeSignature // the signature is part of the device's evidence
			}
			if code := verifyOne(t, p, good); code != "" {
				t.Errorf("valid item: %s", code)
			}
			if a != Ed25519 {
				if code := verifyOne(t, p, withDigest(good)); code != "" {
					t.Errorf("valid item over a digest: %s", code)
				}
			}
			cases := []struct {
				name string
				it   Item
				want attest.Code
			}{
				{"wrong message", wrongMsg(good), CodeSignature},
				{"corrupted signature", corrupt(good), CodeSignature},
				{"another key", func() Item { it := good; it.Key = other.item(t, a, msg).Key; return it }(), CodeSignature},
				{"no algorithm", func() Item { it := good; it.Algorithm = 0; return it }(), CodeAlgorithm},
				{"no key", func() Item { it := good; it.Key = nil; return it }(), CodePublicKey},
				{"no message", func() Item { it := good; it.Message = nil; return it }(), CodeMessage},
				{"message and digest", func() Item { it := good; it.Digest = digest[:]; return it }(), CodeMessage},
				{"digest of 31 bytes", func() Item { it := good; it.Message, it.Digest = nil, digest[:31]; return it }(), CodeDigest},
				{"truncated signature", func() Item { it := good; it.Signature = it.Signature[:len(it.Signature)-1]; return it }(), encoding},
				{"no signature", func() Item { it := good; it.Signature = nil; return it }(), encoding},
			}
			if a == Ed25519 {
				cases = append(cases,
					struct {
						name string
						it   Item
						want attest.Code
					}{"digest instead of message", withDigest(good), CodeDigest},
					struct {
						name string
						it   Item
						want attest.Code
					}{"P-256 key", func() Item { it := good; it.Key = s.p256Key; return it }(), CodeKeyAlgorithm})
			} else {
				cases = append(cases,
					struct {
						name string
						it   Item
						want attest.Code
					}{"wrong digest", func() Item { it := withDigest(good); d := sha256.Sum256([]byte("x")); it.Digest = d[:]; return it }(), CodeSignature},
					struct {
						name string
						it   Item
						want attest.Code
					}{"Ed25519 key", func() Item { it := good; it.Key = s.edKey; return it }(), CodeKeyAlgorithm})
			}
			for _, tc := range cases {
				if code := verifyOne(t, p, tc.it); code != tc.want {
					t.Errorf("%s: got %q, want %q", tc.name, code, tc.want)
				}
			}
		})
	}
}

func TestDER(t *testing.T) {
	s := newSigner(t)
	var buf [72]byte
	for i := range 200 {
		msg := []byte(fmt.Sprint("message ", i))
		der := s.der(t, msg)
		if !validDER(der) {
			t.Fatalf("valid DER refused: %x", der)
		}
		if got := rawToDER(&buf, raw(t, der)); !bytes.Equal(got, der) {
			t.Fatalf("rawToDER(raw(%x)) = %x", der, got)
		}
	}
	for _, tc := range []struct {
		name, hex string
	}{
		{"empty", ""},
		{"not a sequence", "3106020101020101"},
		{"long-form length", "308106020101020101"},
		{"length too long", "3007020101020101"},
		{"trailing byte", "300602010102010100"},
		{"negative r", "3006020181020101"},
		{"non-minimal r", "300702020001020101"},
		{"zero-length s", "30050201010200"},
		{"r of 33 significant bytes", "3026022101" + strings.Repeat("01", 32) + "020101"},
		{"three integers", "3009020101020101020101"},
	} {
		b, err := hex.DecodeString(tc.hex)
		if err != nil {
			t.Fatal(err)
		}
		if validDER(b) {
			t.Errorf("%s: accepted %x", tc.name, b)
		}
	}
	// High bits and leading zeros in r‖s.
	for _, r := range [][]byte{bytes.Repeat([]byte{0xff}, 32), append(make([]byte, 31), 1), make([]byte, 32)} {
		rs := append(bytes.Clone(r), r...)
		der := rawToDER(&buf, rs)
		if !validDER(der) {
			t.Errorf("rawToDER(%x) = %x, not valid DER", rs, der)
		}
	}
}

func asn1Unmarshal(b []byte, v any) ([]byte, error) { return asn1.Unmarshal(b, v) }

// TestEd25519BatchFindsBadSignatures puts bad signatures at every position
// of a batch and checks that exactly they are reported.
func TestEd25519BatchFindsBadSignatures(t *testing.T) {
	p := New(Options{Workers: 1, MaxBatch: 16})
	defer p.Close()
	signers := make([]*signer, 16)
	for i := range signers {
		signers[i] = newSigner(t)
	}
	for bad := -1; bad < 16; bad++ {
		items := make([]Item, 16)
		for i := range items {
			items[i] = signers[i].item(t, Ed25519, []byte(fmt.Sprint("sign-in ", i)))
			if i == bad || (bad >= 0 && i == (bad+5)%16) {
				items[i].Message = []byte("tampered")
			}
		}
		res := make([]Result, len(items))
		if err := p.Verify(items, res); err != nil {
			t.Fatal(err)
		}
		for i, r := range res {
			wantBad := i == bad || (bad >= 0 && i == (bad+5)%16)
			if r.Valid() == wantBad {
				t.Errorf("bad=%d: item %d valid=%v", bad, i, r.Valid())
			}
		}
	}
	st := p.Stats()
	if st.Ed25519BatchFailures == 0 {
		t.Error("no failed batch counted")
	}
}

// TestEd25519AgreesWithStandardLibrary checks the cofactored batch and
// single checks against crypto/ed25519 on honest signatures and tampered
// ones.
func TestEd25519AgreesWithStandardLibrary(t *testing.T) {
	p := New(Options{Workers: 2, MaxBatch: 8})
	defer p.Close()
	var items []Item
	var want []bool
	for i := range 64 {
		s := newSigner(t)
		msg := []byte(fmt.Sprint("m", i))
		it := s.item(t, Ed25519, msg)
		if i%7 == 3 {
			it.Signature = bytes.Clone(it.Signature)
			it.Signature[i%64] ^= 0x10
		}
		items = append(items, it)
		want = append(want, ed25519.Verify(s.edKey.Ed25519(), it.Message, it.Signature))
	}
	res := make([]Result, len(items))
	if err := p.Verify(items, res); err != nil {
		t.Fatal(err)
	}
	for i := range items {
		// A tampered S beyond the group order is an encoding the standard
		// library rejects as well; both must say invalid.
		if res[i].Valid() != want[i] {
			t.Errorf("item %d: pipeline %v (%s), crypto/ed25519 %v", i, res[i].Valid(), res[i].Code, want[i])
		}
	}
}

// TestConcurrentCallers drives the pipeline from many goroutines with mixed
// algorithms and sizes (run with -race).
func TestConcurrentCallers(t *testing.T) {
	for _, opts := range []Options{{}, {Workers: 1, MaxBatch: 4}, {Workers: 3, MaxBatch: 7, MaxWait: -1}} {
		p := New(opts)
		s := newSigner(t)
		algs := []Algorithm{ECDSAP256, ECDSAP256Raw, Ed25519, AppAttest}
		var pool []Item
		for i := range 32 {
			pool = append(pool, s.item(t, algs[i%4], []byte(fmt.Sprint("msg ", i))))
		}
		var wg sync.WaitGroup
		for g := range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for r := range 20 {
					n := 1 + (g*7+r*3)%17
					items := make([]Item, n)
					want := make([]bool, n)
					for i := range items {
						items[i] = pool[(g+r+i*5)%len(pool)]
						if (g+r+i)%5 == 0 {
							items[i].Message = []byte("tampered")
						} else {
							want[i] = true
						}
						if g%2 == 0 {
							items[i].Algorithm = Ed25519
							items[i].Key = s.edKey
							items[i].Signature = ed25519.Sign(s.ed, items[i].Message)
							if !want[i] {
								items[i].Message = []byte("tampered after signing")
							}
						}
					}
					res := make([]Result, n)
					if err := p.Verify(items, res); err != nil {
						t.Error(err)
						return
					}
					for i := range res {
						if res[i].Valid() != want[i] {
							t.Errorf("goroutine %d round %d item %d (%v): %q, want valid=%v", g, r, i, items[i].Algorithm, res[i].Code, want[i])
						}
					}
				}
			}()
		}
		wg.Wait()
		p.Close()
		if err := p.Verify(pool[:1], make([]Result, 1)); err != ErrClosed {
			t.Errorf("Verify after Close: %v", err)
		}
		st := p.Stats()
		var total uint64
		for _, v := range st.Verdicts {
			total += v.Count
		}
		if total != st.BatchItems || total == 0 {
			t.Errorf("verdicts %d, batch items %d", total, st.BatchItems)
		}
	}
}

func TestOverloaded(t *testing.T) {
	p := New(Options{Workers: 1, MaxQueue: 4, MaxWait: -1})
	defer p.Close()
	s := newSigner(t)
	big := make([]Item, 256)
	for i := range big {
		big[i] = s.item(t, ECDSAP256, []byte("m"))
	}
	// Occupy the only worker with a long request, then queue more than
	// MaxQueue. (Should the long request end before the second call, the
	// second is verified on the spot: try again.)
	overloaded := false
	for attempt := 0; attempt < 20 && !overloaded; attempt++ {
		done := make(chan error, 1)
		go func() { done <- p.Verify(big, make([]Result, len(big))) }()
	wait:
		for {
			select {
			case err := <-done:
				if err != nil {
					t.Fatal(err)
				}
				break wait
			default:
			}
			p.mu.Lock()
			busy := p.busy
			p.mu.Unlock()
			if busy == 1 {
				err := p.Verify(big[:5], make([]Result, 5))
				overloaded = err == ErrOverloaded
				if err != nil && err != ErrOverloaded {
					t.Fatal(err)
				}
				res := make([]Result, 4)
				if err := p.Verify(big[:4], res); err != nil || !res[3].Valid() {
					t.Errorf("Verify of 4 items with MaxQueue 4: %v %v", err, res)
				}
				if err := <-done; err != nil {
					t.Fatal(err)
				}
				break wait
			}
			runtime.Gosched()
		}
	}
	if !overloaded {
		t.Error("Verify of 5 items with MaxQueue 4 while the worker was busy never refused")
	}
	if p.Stats().Overloaded == 0 {
		t.Error("overload not counted")
	}
}

func TestEmptyAndShortResults(t *testing.T) {
	p := New(Options{})
	defer p.Close()
	if err := p.Verify(nil, nil); err != nil {
		t.Error(err)
	}
	defer func() {
		if recover() == nil {
			t.Error("Verify with fewer results than items did not panic")
		}
	}()
	p.Verify(make([]Item, 2), make([]Result, 1))
}

// TestEd25519BatchesAcrossRequests checks that one-item Ed25519 requests
// from many callers end up verified together.
func TestEd25519BatchesAcrossRequests(t *testing.T) {
	atLeastTwoPs(t)
	p := New(Options{Workers: 2})
	defer p.Close()
	s := newSigner(t)
	it := s.item(t, Ed25519, []byte("sign-in"))
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res := make([]Result, 1)
			for range 50 {
				if err := p.Verify([]Item{it}, res); err != nil || !res[0].Valid() {
					t.Error(err, res[0].Code)
					return
				}
			}
		}()
	}
	wg.Wait()
	st := p.Stats()
	var batched uint64
	for i := 1; i < len(st.BatchCounts); i++ {
		batched += st.BatchCounts[i]
	}
	if batched == 0 {
		t.Errorf("800 one-item requests from 16 callers never shared a batch: %v", st.BatchCounts)
	}
	t.Logf("batch sizes (≤1, ≤2, ≤4, …): %v", st.BatchCounts)
}

// TestCloseWhileBusy closes the pipeline while callers are queued: every
// call returns, with its results or ErrClosed.
func TestCloseWhileBusy(t *testing.T) {
	for range 5 {
		p := New(Options{Workers: 2})
		s := newSigner(t)
		items := []Item{s.item(t, Ed25519, []byte("a")), s.item(t, ECDSAP256, []byte("b"))}
		var wg sync.WaitGroup
		for g := range 12 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				res := make([]Result, 2)
				for range 10 {
					err := p.Verify(items[g%2:g%2+1], res)
					if err == ErrClosed {
						return
					}
					if err != nil || !res[0].Valid() {
						t.Error(err, res[0].Code)
						return
					}
				}
			}()
		}
		time.Sleep(2 * time.Millisecond)
		done := make(chan struct{})
		go func() { p.Close(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Fatal("Close did not return")
		}
		wg.Wait()
	}
}

// TestSplitLargeRequest checks a large request spread over idle workers:
// every result in its place.
func TestSplitLargeRequest(t *testing.T) {
	p := New(Options{Workers: 3, MaxBatch: 8})
	defer p.Close()
	s := newSigner(t)
	items := make([]Item, 45)
	for i := range items {
		items[i] = s.item(t, []Algorithm{ECDSAP256, ECDSAP256Raw, AppAttest}[i%3], []byte(fmt.Sprint("m", i)))
		if i%7 == 2 {
			items[i].Message = []byte("tampered")
		}
	}
	time.Sleep(10 * time.Millisecond) // let the workers park
	for range 3 {
		res := make([]Result, len(items))
		if err := p.Verify(items, res); err != nil {
			t.Fatal(err)
		}
		for i, r := range res {
			if r.Valid() != (i%7 != 2) {
				t.Fatalf("item %d: %q", i, r.Code)
			}
		}
	}
	if st := p.Stats(); st.BatchCounts[0]+st.BatchCounts[1]+st.BatchCounts[2]+st.BatchCounts[3] == 0 {
		t.Errorf("no batch of at most MaxBatch: the request was not spread (%v)", st.BatchCounts)
	}
}

// TestEd25519MaxWait checks that an Ed25519 request queued behind a long
// Ed25519 batch is verified by another core once it has waited MaxWait,
// before the long one ends.
func TestEd25519MaxWait(t *testing.T) {
	p := New(Options{Workers: 2, MaxWait: 100 * time.Microsecond})
	defer p.Close()
	s := newSigner(t)
	long := make([]Item, 2048)
	for i := range long {
		long[i] = s.item(t, Ed25519, []byte("long"))
	}
	short := []Item{s.item(t, Ed25519, []byte("short"))}
	longDone := make(chan time.Time, 1)
	go func() {
		res := make([]Result, len(long))
		if err := p.Verify(long, res); err != nil {
			t.Error(err)
		}
		longDone <- time.Now()
	}()
	for deadline := time.Now().Add(10 * time.Second); ; {
		p.mu.Lock()
		busy := p.edBusy
		p.mu.Unlock()
		if busy == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the long request never started")
		}
		runtime.Gosched()
	}
	res := make([]Result, 1)
	if err := p.Verify(short, res); err != nil || !res[0].Valid() {
		t.Fatal(err, res[0].Code)
	}
	shortDone := time.Now()
	select {
	case at := <-longDone:
		t.Errorf("the short request waited for the long one (done %v after it)", shortDone.Sub(at))
	default:
		<-longDone
	}
}

// TestLoadAdaptive checks that a lone request is verified by its caller and
// that concurrent callers under load go through the queue.
func TestLoadAdaptive(t *testing.T) {
	atLeastTwoPs(t)
	p := New(Options{Workers: 2})
	defer p.Close()
	s := newSigner(t)
	it := []Item{s.item(t, ECDSAP256, []byte("m"))}
	res := make([]Result, 1)
	time.Sleep(5 * time.Millisecond)
	if err := p.Verify(it, res); err != nil || !res[0].Valid() {
		t.Fatal(err, res[0].Code)
	}
	if st := p.Stats(); st.OnTheSpot != 1 || st.Queued != 0 {
		t.Errorf("a lone request: on the spot %d, queued %d", st.OnTheSpot, st.Queued)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res := make([]Result, 1)
			for range 30 {
				if err := p.Verify(it, res); err != nil || !res[0].Valid() {
					t.Error(err, res[0].Code)
					return
				}
			}
		}()
	}
	wg.Wait()
	if st := p.Stats(); st.Queued == 0 {
		t.Errorf("240 requests from 8 callers on 2 workers never queued (on the spot %d)", st.OnTheSpot)
	}
	// After a pause, a lone request is again verified on the spot.
	time.Sleep(20 * time.Millisecond)
	before := p.Stats().OnTheSpot
	if err := p.Verify(it, res); err != nil {
		t.Fatal(err)
	}
	if p.Stats().OnTheSpot != before+1 {
		t.Error("a lone request after a pause was queued")
	}
}

// atLeastTwoPs runs the test with GOMAXPROCS of at least 2: with one P
// (go test -cpu 1, or a container of one CPU) callers verifying on the
// spot never overlap, and nothing would ever wait in the queue.
func atLeastTwoPs(t *testing.T) {
	prev := runtime.GOMAXPROCS(max(2, runtime.GOMAXPROCS(0)))
	t.Cleanup(func() { runtime.GOMAXPROCS(prev) })
}
