package attest

import (
	"errors"
	"fmt"

	"github.com/fxamacker/cbor/v2"
)

// Codes of the cbor family: every CBOR input (App Attest objects and
// assertions, WebAuthn attestation objects, COSE keys) is decoded under one
// strict profile, and each way it can refuse has its own code.
const (
	CodeCBORMalformed     Code = "cbor.malformed"      // not well-formed CBOR, or truncated
	CodeCBORTrailingBytes Code = "cbor.trailing_bytes" // bytes after the one data item
	CodeCBORDuplicateKey  Code = "cbor.duplicate_key"  // a map repeats a key
	CodeCBORIndefinite    Code = "cbor.indefinite_length"
	CodeCBORTag           Code = "cbor.tag"   // tags are not part of any format keybind reads
	CodeCBORLimit         Code = "cbor.limit" // nesting, array or map size over the profile's limits
	CodeCBORType          Code = "cbor.type"  // well-formed, but a value has the wrong type
)

// Limits of the strict CBOR profile. Attestation objects and assertions are
// small maps of byte strings; nothing keybind reads needs more.
const (
	CBORMaxNesting  = 8
	CBORMaxArray    = 16
	CBORMaxMapPairs = 16
)

// strictCBOR is the decoding profile: duplicate map keys, indefinite lengths
// and tags rejected, small nesting, array and map limits, valid UTF-8 text,
// and (from Unmarshal) no bytes after the data item. A DecMode is immutable
// and safe for concurrent use.
var strictCBOR = func() cbor.DecMode {
	dm, err := cbor.DecOptions{
		DupMapKey:        cbor.DupMapKeyEnforcedAPF,
		IndefLength:      cbor.IndefLengthForbidden,
		TagsMd:           cbor.TagsForbidden,
		MaxNestedLevels:  CBORMaxNesting,
		MaxArrayElements: CBORMaxArray,
		MaxMapPairs:      CBORMaxMapPairs,
		UTF8:             cbor.UTF8RejectInvalid,
	}.DecMode()
	if err != nil {
		panic(err) // the options above are constants
	}
	return dm
}()

// UnmarshalCBOR decodes exactly one CBOR data item from data into v under
// the strict profile. A failure is an *Error of the cbor family; what names
// the input ("attestation object") prefixes its reason.
func UnmarshalCBOR(what string, data []byte, v any) error {
	err := strictCBOR.Unmarshal(data, v)
	if err == nil {
		return nil
	}
	return &Error{Code: cborCode(err), Reason: fmt.Sprintf("%s: %v", what, err), Err: err}
}

func cborCode(err error) Code {
	var (
		extra   *cbor.ExtraneousDataError
		dup     *cbor.DupMapKeyError
		indef   *cbor.IndefiniteLengthError
		tags    *cbor.TagsMdError
		nest    *cbor.MaxNestedLevelError
		arr     *cbor.MaxArrayElementsError
		pairs   *cbor.MaxMapPairsError
		typ     *cbor.UnmarshalTypeError
		unknown *cbor.UnknownFieldError
	)
	switch {
	case errors.As(err, &extra):
		return CodeCBORTrailingBytes
	case errors.As(err, &dup):
		return CodeCBORDuplicateKey
	case errors.As(err, &indef):
		return CodeCBORIndefinite
	case errors.As(err, &tags):
		return CodeCBORTag
	case errors.As(err, &nest), errors.As(err, &arr), errors.As(err, &pairs):
		return CodeCBORLimit
	case errors.As(err, &typ), errors.As(err, &unknown):
		return CodeCBORType
	}
	return CodeCBORMalformed
}
