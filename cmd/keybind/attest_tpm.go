package main

import (
	"crypto/x509"
	"fmt"
	"time"

	"github.com/keybind/keybind/attest"
	"github.com/keybind/keybind/attest/tpm"
	"github.com/keybind/keybind/testvectors"
)

func runAttestTPM(e *env, args []string) int {
	fs := newFlags(e, "keybind attest tpm --ak-public V --public V --create-attestation V --create-signature V --challenge V [flags]", `
Verify a sign-in key certified by a TPM attestation key (AK), as
go-attestation's Key.CertificationParameters gives it, and print the verdict
and facts as JSON.

The AK is the one enrolled earlier by credential activation, or, with
--ak-certificate, the one an AIK certificate chaining to --roots vouches for.

Values use the test-vector syntax: hex:..., b64:..., b64url:..., text:...
or file:PATH.`)
	akPublic := fs.String("ak-public", "", "the AK's TPM2B_PUBLIC (required)")
	public := fs.String("public", "", "the certified key's TPMT_PUBLIC (required)")
	attestation := fs.String("create-attestation", "", "the TPMS_ATTEST of TPM2_Certify (required)")
	signature := fs.String("create-signature", "", "its TPMT_SIGNATURE by the AK (required)")
	challenge := fs.String("challenge", "", "the server challenge the certification must carry (required)")
	var akChain, roots pemOrDERValues
	fs.Var(&akChain, "ak-certificate", "the AK's certificate, then its issuers: a PEM file or DER values (repeatable)")
	fs.Var(&roots, "roots", "trust anchors for --ak-certificate: PEM files or DER values (repeatable)")
	when := fs.String("time", "", "validation time, RFC 3339 (default: now)")
	if st := parseFlags(e, fs, args); st >= 0 {
		return st
	}
	if fs.NArg() != 0 {
		e.errorf("attest tpm: unexpected argument %q", fs.Arg(0))
		return 2
	}
	var p tpm.CertificationParameters
	var akPub, ch []byte
	for _, f := range []struct {
		name, value string
		dst         *[]byte
	}{
		{"ak-public", *akPublic, &akPub}, {"public", *public, &p.Public},
		{"create-attestation", *attestation, &p.CreateAttestation},
		{"create-signature", *signature, &p.CreateSignature}, {"challenge", *challenge, &ch},
	} {
		if f.value == "" {
			e.errorf("attest tpm: --%s is required", f.name)
			return 2
		}
		b, err := testvectors.DecodeValue(f.value, ".")
		if err != nil {
			e.errorf("attest tpm: --%s: %v", f.name, err)
			return 2
		}
		*f.dst = b
	}
	t, err := attestTimeFlag(*when)
	if err != nil {
		e.errorf("attest tpm: --time: %v", err)
		return 2
	}
	anchors, err := roots.certificates()
	if err != nil {
		e.errorf("attest tpm: --roots: %v", err)
		return 2
	}

	public2, _, err := tpm.ParsePublic2B(akPub)
	if err != nil {
		return printVerdict(e, nil, err)
	}
	var ak *tpm.AK
	if len(akChain.ders) > 0 {
		ak, err = tpm.AKFromCertificate(public2, akChain.ders, tpm.ChainOptions{Roots: anchors, Time: t})
	} else {
		ak, err = tpm.TrustedAK(public2, testvectors.EnrolledAKRoot)
	}
	if err != nil {
		return printVerdict(e, nil, err)
	}
	v, err := tpm.VerifyCertification(ak, p, ch)
	return printVerdict(e, v, err)
}

// attestTimeFlag parses an RFC 3339 validation time; "" is now.
func attestTimeFlag(s string) (time.Time, error) {
	if s == "" {
		return time.Now(), nil
	}
	return time.Parse(time.RFC3339Nano, s)
}

// pemOrDERValues is a repeatable flag of certificates: each value (in the
// test-vector syntax) holds one or more PEM certificates, or one DER
// certificate.
type pemOrDERValues struct{ ders [][]byte }

func (v *pemOrDERValues) String() string { return fmt.Sprintf("%d certificates", len(v.ders)) }

func (v *pemOrDERValues) Set(s string) error {
	b, err := testvectors.DecodeValue(s, ".")
	if err != nil {
		return err
	}
	ders, err := attest.SplitCertificates(b)
	if err != nil {
		return err
	}
	v.ders = append(v.ders, ders...)
	return nil
}

func (v *pemOrDERValues) certificates() ([]*x509.Certificate, error) {
	out := make([]*x509.Certificate, 0, len(v.ders))
	for i, der := range v.ders {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, fmt.Errorf("certificate %d: %v", i, err)
		}
		out = append(out, c)
	}
	return out, nil
}
