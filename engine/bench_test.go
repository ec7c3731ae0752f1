package engine

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"testing"

	"github.com/keybind/keybind/bench/sidebyside"

	"github.com/keybind/keybind/testvectors/forge"
)

// BenchmarkAnswerProof measures the verification of an answer's proof by
// the kind of credential: a signature by each key type (RSA with PKCS #1
// v1.5, and with PSS, which is tried second), and a WebAuthn assertion.
// interleaved runs each one and a bare P-256 ecdsa.VerifyASN1 in turn in
// each iteration (alternating the order) and reports the median of each
// one's per-iteration ratio to the bare check, so that the load of the
// shared machine cancels out.
//
//	go test ./engine -run '^$' -bench AnswerProof -benchtime 2000x -count 3
func BenchmarkAnswerProof(b *testing.B) {
	msg := AnswerMessage(AnswerFields{Attempt: "attempt", Tenant: "tenant", User: "user", Credential: "credential", Nonce: make([]byte, 16), Decision: DecisionApprove, Number: 42})
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	policy := webAuthnTestPolicy(nil).Effective().Attestation.WebAuthn
	sigs := signatures{webauthn: func(*Credential) *WebAuthnPolicy { return policy }}
	type proofCase struct {
		name  string
		cred  *Credential
		proof Proof
	}
	raw := func(name string, key crypto.Signer, sign func() ([]byte, error)) proofCase {
		spki, _ := x509.MarshalPKIXPublicKey(key.Public())
		sig, err := sign()
		if err != nil {
			b.Fatal(err)
		}
		return proofCase{name, &Credential{ID: "credential", Format: FormatTPM, PublicKey: spki}, Proof{Signature: sig}}
	}
	h := sha256.Sum256(msg)
	a, err := forge.WebAuthnAssert(p256, forge.WebAuthnAssertOptions{RPID: waRPID, Origin: waOrigin, Challenge: AnswerChallenge(msg), Alg: -7, Counter: 1})
	if err != nil {
		b.Fatal(err)
	}
	spki, _ := x509.MarshalPKIXPublicKey(p256.Public())
	cases := []proofCase{
		raw("ecdsa-p256", p256, func() ([]byte, error) { return SignAnswer(p256, msg) }),
		raw("ecdsa-p384", p384, func() ([]byte, error) { return SignAnswer(p384, msg) }),
		raw("rsa-2048-pkcs1", rsaKey, func() ([]byte, error) { return SignAnswer(rsaKey, msg) }),
		raw("rsa-2048-pss", rsaKey, func() ([]byte, error) {
			return rsaKey.Sign(rand.Reader, h[:], &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: crypto.SHA256})
		}),
		raw("ed25519", ed, func() ([]byte, error) { return SignAnswer(ed, msg) }),
		{"webauthn-es256", &Credential{ID: "credential", Format: FormatWebAuthn, Statement: "tpm", PublicKey: spki, COSEAlgorithm: -7},
			Proof{Signature: a.Signature, AuthenticatorData: a.AuthenticatorData, ClientDataJSON: a.ClientDataJSON}},
	}
	verify := func(c proofCase) func() {
		return func() {
			if _, err := sigs.VerifyAnswer(c.cred, msg, c.proof); err != nil {
				b.Fatal(err)
			}
		}
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			f := verify(c)
			b.ReportAllocs()
			for b.Loop() {
				f()
			}
		})
	}
	b.Run("interleaved", func(b *testing.B) {
		digest := sha256.Sum256([]byte("keybind"))
		sig, _ := ecdsa.SignASN1(rand.Reader, p256, digest[:])
		fns := []func(){func() {
			if !ecdsa.VerifyASN1(&p256.PublicKey, digest[:], sig) {
				b.Fatal("signature")
			}
		}}
		for _, c := range cases {
			fns = append(fns, verify(c))
		}
		ratios := make([][]float64, len(cases))
		for i := 0; b.Loop(); i++ {
			t := sidebyside.Times(i, fns...)
			for j := range cases {
				ratios[j] = append(ratios[j], float64(t[j+1])/float64(t[0]))
			}
		}
		for j, c := range cases {
			b.ReportMetric(sidebyside.Median(ratios[j]), c.name+"/VerifyASN1")
		}
	})
}
