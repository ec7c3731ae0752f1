package bench

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"math/big"

	"github.com/keybind/keybind/verify"
)

// Workload is a set of signed verify requests: Requests of ItemCount items
// each, every item a valid signature by one of a set of keys, as JSON
// bodies for POST /v1/verify (Bodies) and as pipeline items (Items).
type Workload struct {
	Algorithm string // "ecdsa-p256", "ecdsa-p256-raw" or "ed25519"
	ItemCount int
	Bodies    [][]byte

	requests [][]sample
}

type sample struct {
	pub, msg, sig []byte
}

// NewWorkload makes requests distinct request bodies of items items each,
// signed by keys distinct keys in turn.
func NewWorkload(alg string, items, requests, keys int) (*Workload, error) {
	if items <= 0 || requests <= 0 || keys <= 0 {
		return nil, fmt.Errorf("bench: a workload needs items, requests and keys")
	}
	type signer struct {
		pub  []byte
		sign func(msg []byte) ([]byte, error)
	}
	signers := make([]signer, keys)
	for i := range signers {
		switch alg {
		case "ecdsa-p256", "ecdsa-p256-raw":
			k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			if err != nil {
				return nil, err
			}
			pub, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
			if err != nil {
				return nil, err
			}
			raw := alg == "ecdsa-p256-raw"
			signers[i] = signer{pub, func(msg []byte) ([]byte, error) {
				h := sha256.Sum256(msg)
				if raw {
					r, s, err := ecdsa.Sign(rand.Reader, k, h[:])
					if err != nil {
						return nil, err
					}
					out := make([]byte, 64)
					r.FillBytes(out[:32])
					s.FillBytes(out[32:])
					return out, nil
				}
				return ecdsa.SignASN1(rand.Reader, k, h[:])
			}}
		case "ed25519":
			pub, priv, err := ed25519.GenerateKey(rand.Reader)
			if err != nil {
				return nil, err
			}
			signers[i] = signer{pub, func(msg []byte) ([]byte, error) { return ed25519.Sign(priv, msg), nil }}
		default:
			return nil, fmt.Errorf("bench: unknown algorithm %q", alg)
		}
	}
	w := &Workload{Algorithm: alg, ItemCount: items}
	n := 0
	for r := range requests {
		var req []sample
		body := []byte(`{"items":[`)
		for i := range items {
			s := signers[n%keys]
			n++
			msg := fmt.Appendf(nil, "sign-in %d.%d: approve with number %02d", r, i, new(big.Int).SetBytes(s.pub[len(s.pub)-1:]).Int64()%100)
			sig, err := s.sign(msg)
			if err != nil {
				return nil, err
			}
			req = append(req, sample{s.pub, msg, sig})
			if i > 0 {
				body = append(body, ',')
			}
			body = fmt.Appendf(body, `{"algorithm":%q,"public_key":%q,"message":%q,"signature":%q}`,
				alg, base64.StdEncoding.EncodeToString(s.pub), base64.StdEncoding.EncodeToString(msg), base64.StdEncoding.EncodeToString(sig))
		}
		body = append(body, "]}"...)
		w.Bodies = append(w.Bodies, body)
		w.requests = append(w.requests, req)
	}
	return w, nil
}

// Items returns the workload's requests as pipeline items, keys parsed.
func (w *Workload) Items() ([][]verify.Item, error) {
	alg, ok := verify.ParseAlgorithm([]byte(w.Algorithm))
	if !ok {
		return nil, fmt.Errorf("bench: unknown algorithm %q", w.Algorithm)
	}
	keys := map[string]*verify.PublicKey{}
	var out [][]verify.Item
	for _, req := range w.requests {
		var items []verify.Item
		for _, s := range req {
			k := keys[string(s.pub)]
			if k == nil {
				var err error
				if k, err = verify.ParsePublicKey(s.pub); err != nil {
					return nil, err
				}
				keys[string(s.pub)] = k
			}
			items = append(items, verify.Item{Algorithm: alg, Key: k, Message: s.msg, Signature: s.sig})
		}
		out = append(out, items)
	}
	return out, nil
}
