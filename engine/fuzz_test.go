package engine

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"testing"

	"github.com/keybind/keybind/attest/webauthn"
	"github.com/keybind/keybind/testvectors/forge"
)

// FuzzEvidence feeds arbitrary evidence to the built-in verifiers through
// the engine's interface: never a panic, always a coded refusal (the seeds
// include valid attestations, which the fuzzer mutates). Minimizing a
// multi-kilobyte chain through full verification takes long, so run it with
// a short -fuzzminimizetime:
//
//	go test ./engine -run '^$' -fuzz '^FuzzEvidence$' -fuzztime 60s -fuzzminimizetime 2s -parallel 1
func FuzzEvidence(f *testing.F) {
	android, appleCA := testCAs()
	env := &testEnv{t: f, android: android, apple: appleCA} // no store: only the verifiers run
	challenge := []byte("fuzz challenge")
	ev, _ := env.androidEvidence(challenge, forge.AndroidKey{UserAuth: true})
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	apple := env.appleEvidence(challenge, key)
	f.Add(uint8(0), ev["chain"], []byte(nil))
	f.Add(uint8(1), apple["attestation"], apple["key_id"])
	f.Add(uint8(0), []byte{0x30, 0x80}, []byte(nil))
	policy := testPolicy().Effective()
	verifiers := Verifiers(nil)
	roots := map[string][]*x509.Certificate{rootAndroid: {android.Root.Cert}, rootApple: {appleCA.Root}}
	f.Fuzz(func(t *testing.T, which uint8, a, b []byte) {
		format := FormatAndroidKey
		evidence := Evidence{"chain": a}
		extra := roots[rootAndroid]
		if which%2 == 1 {
			format = FormatAppAttest
			evidence = Evidence{"attestation": a, "key_id": b}
			extra = roots[rootApple]
		}
		v, err := verifiers[format].VerifyAttestation(ctx, AttestationRequest{
			Format: format, Evidence: evidence, Challenge: challenge, Policy: policy.Attestation, ExtraRoots: extra, Time: t0,
		})
		if err != nil {
			if CodeOf(attestationError(err)) == "" || KindOf(attestationError(err)) == KindInternal {
				t.Fatalf("refusal without a code: %v", err)
			}
			return
		}
		if v.PublicKey == nil {
			t.Fatal("accepted without a key")
		}
	})
}

// FuzzAnswerSignature checks that no signature bytes other than a real
// signature verify, and that none panics: ECDSA, and App Attest assertions.
func FuzzAnswerSignature(f *testing.F) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	spki, _ := x509.MarshalPKIXPublicKey(key.Public())
	msg := AnswerMessage(AnswerFields{Attempt: "a", Tenant: "t", User: "u", Credential: "c", Nonce: []byte("n"), Decision: DecisionApprove, Number: 42})
	good, _ := SignAnswer(key, msg)
	assertion, _ := forge.AppAssert(key, forge.AppAssertOptions{AppID: testAppID, ClientData: msg, Counter: 1})
	f.Add(false, good)
	f.Add(true, assertion.Marshal())
	sigs := signatures{assertions: AppAttestAssertions(), appIDs: func(*Credential) []string { return []string{testAppID} }}
	f.Fuzz(func(t *testing.T, appAttest bool, sig []byte) {
		cred := &Credential{ID: "c", Format: FormatAndroidKey, PublicKey: spki}
		if appAttest {
			cred.Format = FormatAppAttest
		}
		_, err := sigs.VerifyAnswer(cred, msg, Proof{Signature: sig})
		if err == nil {
			return // a real signature (the seeds, or a mutation the scheme tolerates)
		}
		if CodeOf(err) == "" {
			t.Fatalf("refusal without a code: %v", err)
		}
		// A signature over another message never verifies.
		other := bytes.Clone(msg)
		other[len(other)-1] ^= 1
		if _, err := sigs.VerifyAnswer(cred, other, Proof{Signature: sig}); err == nil {
			t.Fatal("a signature verified over two messages")
		}
	})
}

func TestSplitDER(t *testing.T) {
	env := newEnv(t)
	ev, _ := env.androidEvidence([]byte("c"), forge.AndroidKey{})
	certs, err := SplitDER(ev["chain"])
	if err != nil || len(certs) != 4 || !bytes.Equal(JoinDER(certs), ev["chain"]) {
		t.Fatalf("SplitDER: %d certificates, %v", len(certs), err)
	}
	for _, c := range certs {
		if _, err := x509.ParseCertificate(c); err != nil {
			t.Error(err)
		}
	}
	many := bytes.Repeat(certs[0], 11)
	if _, err := SplitDER(many); err == nil {
		t.Error("11 certificates split")
	}
	if _, err := SplitDER([]byte{0x30, 0x05, 1}); err == nil {
		t.Error("truncated DER split")
	}
	h := sha256.Sum256(nil)
	if _, err := SplitDER(h[:]); err == nil {
		t.Error("random bytes split")
	}
}

// FuzzWebAuthnEvidence feeds arbitrary registrations to the WebAuthn
// verifier through the engine's interface, under a policy that accepts
// every statement format (format none included): never a panic, always a
// coded refusal.
//
//	go test ./engine -run '^$' -fuzz '^FuzzWebAuthnEvidence$' -fuzztime 60s -fuzzminimizetime 2s -parallel 1
func FuzzWebAuthnEvidence(f *testing.F) {
	android, appleCA := testCAs()
	env := &waEnv{testEnv: &testEnv{t: f, android: android, apple: appleCA}}
	challenge := []byte("fuzz challenge 0123456789abcdef")
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	for _, r := range []registration{
		env.androidRegistration(challenge, forge.AndroidKey{UserAuth: true}, -7),
		env.appleRegistration(challenge),
		noneRegistration(f, challenge, key, -7),
	} {
		f.Add(r.evidence["attestation_object"], r.evidence["client_data_json"])
	}
	policy := webAuthnTestPolicy(func(w *WebAuthnPolicy) {
		no := false
		w.AllowSoftwareKeys, w.RequireUserVerification = true, &no
		w.AppAttest = &AppAttestPolicy{AppIDs: []string{testAppID}, ExtraRoots: []string{rootApple}}
	}).Effective()
	v := WebAuthnVerifier(webauthn.NewVerifier(), nil)
	roots := map[string][]*x509.Certificate{rootAndroid: {android.Root.Cert}, rootApple: {appleCA.Root}}
	f.Fuzz(func(t *testing.T, object, clientData []byte) {
		verdict, err := v.VerifyAttestation(ctx, AttestationRequest{
			Format: FormatWebAuthn, Evidence: Evidence{"attestation_object": object, "client_data_json": clientData},
			Challenge: challenge, Policy: policy.Attestation, Roots: roots, Time: t0,
		})
		if err != nil {
			if CodeOf(attestationError(err)) == "" || KindOf(attestationError(err)) == KindInternal {
				t.Fatalf("refusal without a code: %v", err)
			}
			return
		}
		if verdict.PublicKey == nil || checkSigningKey(FormatWebAuthn, verdict.PublicKey) != nil {
			t.Fatalf("accepted a key that cannot answer: %T", verdict.PublicKey)
		}
	})
}

// FuzzWebAuthnAnswer checks that no assertion but a real one verifies for
// a WebAuthn credential, and that none panics.
func FuzzWebAuthnAnswer(f *testing.F) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	spki, _ := x509.MarshalPKIXPublicKey(key.Public())
	msg := AnswerMessage(AnswerFields{Attempt: "a", Tenant: "t", User: "u", Credential: "c", Nonce: []byte("n"), Decision: DecisionApprove, Number: 42})
	a, _ := forge.WebAuthnAssert(key, forge.WebAuthnAssertOptions{RPID: waRPID, Origin: waOrigin, Challenge: AnswerChallenge(msg), Alg: -7, Counter: 3})
	f.Add(a.AuthenticatorData, a.ClientDataJSON, a.Signature)
	policy := webAuthnTestPolicy(nil).Effective().Attestation.WebAuthn
	sigs := signatures{webauthn: func(*Credential) *WebAuthnPolicy { return policy }}
	cred := &Credential{ID: "c", Format: FormatWebAuthn, Statement: "tpm", PublicKey: spki, COSEAlgorithm: -7}
	f.Fuzz(func(t *testing.T, authData, clientData, sig []byte) {
		proof := Proof{Signature: sig, AuthenticatorData: authData, ClientDataJSON: clientData}
		_, err := sigs.VerifyAnswer(cred, msg, proof)
		if err == nil {
			other := bytes.Clone(msg)
			other[len(other)-1] ^= 1
			if _, err := sigs.VerifyAnswer(cred, other, proof); err == nil {
				t.Fatal("an assertion verified over two messages")
			}
			return
		}
		if CodeOf(err) == "" {
			t.Fatalf("refusal without a code: %v", err)
		}
	})
}
