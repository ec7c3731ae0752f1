package webauthn

import (
	"bytes"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"io"
	"unicode/utf8"

	"github.com/keybind/keybind/attest"
)

// MaxClientData bounds clientDataJSON; browsers send a few hundred bytes.
const MaxClientData = 16 << 10

// ClientData is a parsed clientDataJSON.
type ClientData struct {
	Type        string // "webauthn.create" for a registration
	Challenge   []byte // decoded from base64url
	Origin      string
	CrossOrigin bool
	TopOrigin   string // set by browsers for cross-origin frames
	// TokenBindingStatus is tokenBinding.status when present ("present",
	// "supported", "not-supported").
	TokenBindingStatus string
}

// ParseClientData decodes clientDataJSON strictly: UTF-8 JSON holding one
// object, no member twice (a second "challenge" or "origin" must not be able
// to mean something else to another parser), type, challenge (base64url
// without padding) and origin present as strings, crossOrigin a boolean and
// topOrigin a string when present. Members the specification may add later
// are allowed and ignored. Failures are webauthn.client_data_malformed.
func ParseClientData(b []byte) (*ClientData, error) {
	bad := func(format string, args ...any) error {
		return attest.Errorf(CodeClientData, "clientDataJSON: "+format, args...)
	}
	if len(b) == 0 {
		return nil, bad("empty")
	}
	if len(b) > MaxClientData {
		return nil, bad("%d bytes (at most %d)", len(b), MaxClientData)
	}
	if !utf8.Valid(b) {
		return nil, bad("not UTF-8")
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	tok, err := d.Token()
	if err != nil || tok != json.Delim('{') {
		return nil, bad("not a JSON object")
	}
	members := map[string]json.RawMessage{}
	for d.More() {
		tok, err := d.Token()
		if err != nil {
			return nil, bad("%v", err)
		}
		key, ok := tok.(string)
		if !ok {
			return nil, bad("a member name is not a string")
		}
		if _, dup := members[key]; dup {
			return nil, bad("member %q appears twice", key)
		}
		var v json.RawMessage
		if err := d.Decode(&v); err != nil {
			return nil, bad("member %q: %v", key, err)
		}
		members[key] = v
	}
	if tok, err := d.Token(); err != nil || tok != json.Delim('}') {
		return nil, bad("the object is not closed")
	}
	if _, err := d.Token(); err != io.EOF {
		return nil, bad("data after the object")
	}

	cd := &ClientData{}
	str := func(name string, dst *string, required bool) error {
		raw, ok := members[name]
		if !ok {
			if required {
				return bad("no %s", name)
			}
			return nil
		}
		if err := json.Unmarshal(raw, dst); err != nil {
			return bad("%s is not a string", name)
		}
		return nil
	}
	var challenge string
	for _, f := range []struct {
		name     string
		dst      *string
		required bool
	}{{"type", &cd.Type, true}, {"challenge", &challenge, true}, {"origin", &cd.Origin, true}, {"topOrigin", &cd.TopOrigin, false}} {
		if err := str(f.name, f.dst, f.required); err != nil {
			return nil, err
		}
	}
	if cd.Challenge, err = base64.RawURLEncoding.Strict().DecodeString(challenge); err != nil || len(cd.Challenge) == 0 {
		return nil, bad("challenge is not base64url without padding")
	}
	if raw, ok := members["crossOrigin"]; ok {
		if err := json.Unmarshal(raw, &cd.CrossOrigin); err != nil {
			return nil, bad("crossOrigin is not a boolean")
		}
	}
	if raw, ok := members["tokenBinding"]; ok {
		var tb struct {
			Status string `json:"status"`
		}
		if err := json.Unmarshal(raw, &tb); err != nil || tb.Status == "" {
			return nil, bad("tokenBinding is not an object with a status")
		}
		cd.TokenBindingStatus = tb.Status
	}
	return cd, nil
}

// check compares the client data with what the server expects.
func (cd *ClientData) check(opts *Options) error {
	if cd.Type != "webauthn.create" {
		return attest.Errorf(CodeClientDataType, "type is %q, not webauthn.create", cd.Type)
	}
	if subtle.ConstantTimeCompare(cd.Challenge, opts.Challenge) != 1 {
		return attest.Errorf(CodeChallenge, "the challenge is not the server's")
	}
	return cd.checkOrigin(opts.Origins)
}

// checkOrigin checks where the client data was made: an accepted origin,
// not a cross-origin frame, no token binding in use.
func (cd *ClientData) checkOrigin(origins []string) error {
	found := false
	for _, o := range origins {
		found = found || o == cd.Origin
	}
	if !found {
		return attest.Errorf(CodeOrigin, "origin %q is not accepted", cd.Origin)
	}
	if cd.CrossOrigin {
		return attest.Errorf(CodeCrossOrigin, "made in a cross-origin frame (top origin %q)", cd.TopOrigin)
	}
	if cd.TokenBindingStatus == "present" {
		return attest.Errorf(CodeTokenBinding, "token binding is in use, and keybind cannot check it")
	}
	return nil
}
