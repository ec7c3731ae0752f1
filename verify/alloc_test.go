package verify

import (
	"crypto/ecdsa"
	"crypto/sha256"
	"fmt"
	"testing"

	"github.com/keybind/keybind/attest/appattest"
	"github.com/keybind/keybind/testvectors/forge"
	voi "github.com/oasisprotocol/curve25519-voi/primitives/ed25519"
)

// TestSteadyPathAllocations proves that the pipeline adds no allocation of
// its own to a verification: with cached keys and warm pools, a Verify call
// allocates exactly what the crypto calls it makes allocate on their own
// (crypto/ecdsa converts the key and the signature on every call;
// curve25519-voi's batch equation allocates its tables per batch; its
// single check with an expanded key allocates nothing).
func TestSteadyPathAllocations(t *testing.T) {
	s := newSigner(t)
	msg := []byte("approve sign-in 42")
	digest := sha256.Sum256(msg)
	der := s.der(t, msg)

	bareECDSA := testing.AllocsPerRun(200, func() {
		d := sha256.Sum256(msg)
		if !ecdsa.VerifyASN1(s.p256Key.p256, d[:], der) {
			t.Fatal("invalid")
		}
	})
	edOne := s.item(t, Ed25519, msg)
	bareEd := testing.AllocsPerRun(200, func() {
		if !voi.VerifyExpanded(s.edKey.ed, edOne.Message, edOne.Signature) {
			t.Fatal("invalid")
		}
	})
	if bareEd != 0 {
		t.Errorf("single Ed25519 check with an expanded key allocates %v times", bareEd)
	}
	var edBatch []Item
	for i := range 16 {
		edBatch = append(edBatch, s.item(t, Ed25519, []byte(fmt.Sprint("m", i))))
	}
	bv := voi.NewBatchVerifierWithCapacity(64)
	bareBatch := testing.AllocsPerRun(50, func() {
		bv.Reset()
		for i := range edBatch {
			bv.AddExpanded(edBatch[i].Key.ed, edBatch[i].Message, edBatch[i].Signature)
		}
		if !bv.VerifyBatchOnly(nil) {
			t.Fatal("invalid batch")
		}
	})
	t.Logf("allocations of the bare crypto calls: ECDSA P-256 %v per signature, Ed25519 single %v, Ed25519 batch of 16 %v per batch", bareECDSA, bareEd, bareBatch)

	// An App Attest assertion: parsing and checks allocate nothing, the
	// signature what crypto/ecdsa allocates.
	dev := s.p256
	const appID = "8YE23NZS57.com.example.keybind"
	a, err := forge.AppAssert(dev, forge.AppAssertOptions{AppID: appID, ClientData: msg, Counter: 3})
	if err != nil {
		t.Fatal(err)
	}
	assertion := a.Marshal()
	aaOpts := appattest.AssertionOptions{AppIDs: []string{appID}}
	aaPipe := New(Options{Workers: 1, MaxWait: -1})
	defer aaPipe.Close()
	var signed [32]byte
	aaItems, aaRes := make([]Item, 1), make([]Result, 1)
	aaRun := func() {
		it, _, err := AppAttestItem(s.p256Key, assertion, msg, aaOpts, &signed)
		if err != nil {
			t.Fatal(err)
		}
		aaItems[0] = it
		if err := aaPipe.Verify(aaItems, aaRes); err != nil || !aaRes[0].Valid() {
			t.Fatal(err, aaRes[0].Code)
		}
	}
	aaRun()
	if got := testing.AllocsPerRun(100, aaRun); got > bareECDSA {
		t.Errorf("App Attest: %v allocations, the crypto alone makes %v", got, bareECDSA)
	}

	for _, queued := range []bool{false, true} {
		p := New(Options{Workers: 1, MaxWait: -1})
		p.queueAlways = queued
		for _, tc := range []struct {
			name  string
			items []Item
			bare  float64
		}{
			{"ecdsa-p256", []Item{s.item(t, ECDSAP256, msg)}, bareECDSA},
			{"ecdsa-p256 digest", []Item{{Algorithm: ECDSAP256, Key: s.p256Key, Digest: digest[:], Signature: der}}, bareECDSA},
			{"ecdsa-p256-raw", []Item{s.item(t, ECDSAP256Raw, msg)}, bareECDSA},
			{"appattest", []Item{s.item(t, AppAttest, msg)}, bareECDSA},
			{"4 × ecdsa-p256", []Item{s.item(t, ECDSAP256, msg), s.item(t, ECDSAP256, msg), s.item(t, ECDSAP256, msg), s.item(t, ECDSAP256, msg)}, 4 * bareECDSA},
			{"ed25519", []Item{edOne}, 0},
			{"16 × ed25519", edBatch, bareBatch},
		} {
			res := make([]Result, len(tc.items))
			run := func() {
				if err := p.Verify(tc.items, res); err != nil {
					t.Fatal(err)
				}
				for i := range res {
					if !res[i].Valid() {
						t.Fatalf("%s: item %d: %s", tc.name, i, res[i].Code)
					}
				}
			}
			run() // warm the pools
			got := testing.AllocsPerRun(100, run)
			// crypto/ecdsa allocates a fixed number of objects; voi's batch
			// tables vary by a few with the random scalars' sizes.
			slack := 0.0
			if len(tc.items) == 16 {
				slack = 1
			}
			if got > tc.bare+slack {
				t.Errorf("queued=%v %s: %v allocations per call, the crypto alone makes %v", queued, tc.name, got, tc.bare)
			}
		}
		p.Close()
	}
}
