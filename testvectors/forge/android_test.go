package forge

import (
	"crypto/ecdsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"slices"
	"testing"
	"time"

	"github.com/keybind/keybind/attest/androidkey"
)

func TestAndroidShapes(t *testing.T) {
	now := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	factory, err := NewAndroidCA(AndroidCAOptions{Time: now})
	if err != nil {
		t.Fatal(err)
	}
	remote, err := factory.Root.NewCA(AndroidCAOptions{Shape: RemoteShape, Time: now, Level: "strongbox"})
	if err != nil {
		t.Fatal(err)
	}
	// Factory: the batch certificate has no basic constraints, like real
	// OEM batch certificates, so crypto/x509's Verify refuses the chain.
	if len(factory.Intermediates) != 2 || factory.Intermediates[0].BasicConstraintsValid || !factory.Intermediates[1].IsCA {
		t.Errorf("factory intermediates: %d, batch has basic constraints %v", len(factory.Intermediates), factory.Intermediates[0].BasicConstraintsValid)
	}
	att, err := factory.Attest(AndroidKey{Challenge: []byte("c")})
	if err != nil {
		t.Fatal(err)
	}
	pool, inter := x509.NewCertPool(), x509.NewCertPool()
	pool.AddCert(factory.Root.Cert)
	for _, c := range factory.Intermediates {
		inter.AddCert(c)
	}
	if _, err := att.Leaf.Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter, CurrentTime: now}); err == nil {
		t.Error("crypto/x509 accepts the factory shape; it should refuse the batch certificate as an issuer")
	}
	// Remote: Droid CA2, Droid CA3, and a short-lived attestation key with
	// the provisioning-info extension.
	if len(remote.Intermediates) != 3 || remote.Intermediates[2].Subject.CommonName != "Droid CA2" || remote.Intermediates[1].Subject.CommonName != "Droid CA3" {
		t.Fatalf("remote intermediates: %v", remote.Intermediates)
	}
	ak := remote.Intermediates[0]
	if !slices.ContainsFunc(ak.Extensions, func(e pkix.Extension) bool { return e.Id.Equal(androidkey.OIDProvisioningInfo) }) {
		t.Error("no provisioning-info extension on the attestation key")
	}
	if ak.NotAfter.Sub(ak.NotBefore) > 30*24*time.Hour || !ak.NotAfter.After(now) {
		t.Errorf("attestation key valid %s to %s", ak.NotBefore, ak.NotAfter)
	}
	if remote.Intermediates[2].MaxPathLen != 2 {
		t.Errorf("Droid CA2 path length %d", remote.Intermediates[2].MaxPathLen)
	}
}

func TestAndroidAttestTwoCalls(t *testing.T) {
	ca, err := NewAndroidCA(AndroidCAOptions{})
	if err != nil {
		t.Fatal(err)
	}
	att, err := ca.Attest(AndroidKey{Challenge: []byte("challenge"), UserAuth: true, Package: "com.example"})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := att.Key.(*ecdsa.PrivateKey); !ok {
		t.Errorf("default key %T, want ECDSA P-256", att.Key)
	}
	kd := att.Description
	hw := kd.HardwareEnforced
	switch {
	case kd.AttestationSecurityLevel != androidkey.TrustedEnvironment || kd.AttestationVersion != 300:
		t.Errorf("level %s version %d", kd.AttestationSecurityLevel, kd.AttestationVersion)
	case hw.NoAuthRequired || hw.UserAuthType == nil || *hw.UserAuthType != androidkey.AuthPassword|androidkey.AuthFingerprint:
		t.Error("user authentication not required by the description")
	case kd.SoftwareEnforced.AttestationApplicationID.Packages[0].Name != "com.example":
		t.Error("package")
	case hw.RootOfTrust == nil || !hw.RootOfTrust.DeviceLocked || hw.RootOfTrust.VerifiedBootState != androidkey.Verified:
		t.Error("root of trust")
	}
	// The leaf is signed by the attestation key and the chain ends in the
	// root; the PEM forms parse back to the same certificates.
	if err := ca.Intermediates[0].CheckSignature(att.Leaf.SignatureAlgorithm, att.Leaf.RawTBSCertificate, att.Leaf.Signature); err != nil {
		t.Errorf("the leaf is not signed by the attestation key: %v", err)
	}
	var got [][]byte
	rest := att.ChainPEM()
	for {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		got = append(got, b.Bytes)
	}
	if len(got) != len(att.Chain) || len(att.WithoutRoot()) != len(att.Chain)-1 {
		t.Errorf("PEM chain has %d certificates, chain %d", len(got), len(att.Chain))
	}
	roots, err := androidkey.ParseRootsPEM(ca.RootPEM())
	if err != nil || roots.Len() != 1 {
		t.Errorf("root PEM: %v", err)
	}
	if _, err := androidkey.NewVerifier().Verify(att.Chain, androidkey.Options{Challenge: []byte("challenge"), Roots: roots,
		Policy: androidkey.Policy{RequireUserAuth: true, Packages: []string{"com.example"}}}); err != nil {
		t.Errorf("the verifier refuses the forged attestation: %v", err)
	}
	below, err := att.Below(AndroidKey{Challenge: []byte("x")})
	if err != nil {
		t.Fatal(err)
	}
	if err := att.Leaf.CheckSignature(below.Leaf.SignatureAlgorithm, below.Leaf.RawTBSCertificate, below.Leaf.Signature); err != nil {
		t.Errorf("the forged leaf is not signed by the attested key: %v", err)
	}
	if _, err := ca.Attest(AndroidKey{Level: "hsm"}); err == nil {
		t.Error("unknown level accepted")
	}
	if _, err := ca.Attest(AndroidKey{Algorithm: "dsa"}); err == nil {
		t.Error("unknown algorithm accepted")
	}
}
