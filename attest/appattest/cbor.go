package appattest

import (
	"fmt"
	"unicode/utf8"

	"github.com/keybind/keybind/attest"
)

// A small reader for the strict CBOR profile of attest.UnmarshalCBOR, used
// where reflection and allocations matter: the assertion envelope and the
// extension map of the authenticator data, both on the sign-in hot path. It
// refuses what the profile refuses, with the same codes: indefinite lengths,
// tags, duplicate map keys, nesting deeper than attest.CBORMaxNesting,
// arrays and maps over attest.CBORMaxArray and attest.CBORMaxMapPairs, text
// that is not UTF-8, and anything not well-formed. The fuzz tests check that
// it agrees with attest.UnmarshalCBOR.

const (
	majorUint   = 0
	majorNeg    = 1
	majorBytes  = 2
	majorText   = 3
	majorArray  = 4
	majorMap    = 5
	majorTag    = 6
	majorSimple = 7
)

func cborError(code attest.Code, what, format string, args ...any) error {
	return &attest.Error{Code: code, Reason: what + ": " + fmt.Sprintf(format, args...)}
}

// cborHead reads the head of the data item at b[off:]: its major type and
// argument (the value, length or count). next is the offset after the head.
func cborHead(what string, b []byte, off int) (major byte, arg uint64, next int, err error) {
	if off >= len(b) {
		return 0, 0, 0, cborError(attest.CodeCBORMalformed, what, "unexpected end of data")
	}
	ib := b[off]
	major, ai := ib>>5, ib&0x1f
	off++
	switch {
	case ai < 24:
		arg = uint64(ai)
	case ai <= 27:
		n := 1 << (ai - 24) // 1, 2, 4 or 8 bytes
		if len(b)-off < n {
			return 0, 0, 0, cborError(attest.CodeCBORMalformed, what, "unexpected end of data")
		}
		for _, c := range b[off : off+n] {
			arg = arg<<8 | uint64(c)
		}
		off += n
		if major == majorSimple && ai == 24 && arg < 32 {
			return 0, 0, 0, cborError(attest.CodeCBORMalformed, what, "simple value %d encoded in two bytes", arg)
		}
	case ai == 31 && major >= majorBytes && major <= majorMap:
		return 0, 0, 0, cborError(attest.CodeCBORIndefinite, what, "indefinite-length item")
	default:
		return 0, 0, 0, cborError(attest.CodeCBORMalformed, what, "invalid additional information %d for major type %d", ai, major)
	}
	if major == majorTag {
		return 0, 0, 0, cborError(attest.CodeCBORTag, what, "tag %d", arg)
	}
	return major, arg, off, nil
}

// cborString reads a byte or text string of the given major type at
// b[off:] and returns a view of its content.
func cborString(what string, b []byte, off int, major byte) (s []byte, next int, err error) {
	m, n, off, err := cborHead(what, b, off)
	if err != nil {
		return nil, 0, err
	}
	if m != major {
		return nil, 0, cborError(attest.CodeCBORType, what, "%s where %s was expected", majorName(m), majorName(major))
	}
	if n > uint64(len(b)-off) {
		return nil, 0, cborError(attest.CodeCBORMalformed, what, "unexpected end of data")
	}
	s = b[off : off+int(n)]
	if major == majorText && !utf8.Valid(s) {
		return nil, 0, cborError(attest.CodeCBORMalformed, what, "text string is not valid UTF-8")
	}
	return s, off + int(n), nil
}

// cborSkip checks the well-formedness and profile of the data item at
// b[off:], at nesting level depth (1 for a top-level item; arrays and maps
// count as levels, as in the profile), and returns the offset after it.
func cborSkip(what string, b []byte, off, depth int) (int, error) {
	start := off
	major, arg, off, err := cborHead(what, b, off)
	if err != nil {
		return 0, err
	}
	if (major == majorArray || major == majorMap) && depth > attest.CBORMaxNesting {
		return 0, cborError(attest.CodeCBORLimit, what, "nested deeper than %d levels", attest.CBORMaxNesting)
	}
	switch major {
	case majorUint, majorNeg, majorSimple:
		return off, nil
	case majorBytes, majorText:
		_, next, err := cborString(what, b, start, major)
		return next, err
	case majorArray:
		if arg > attest.CBORMaxArray {
			return 0, cborError(attest.CodeCBORLimit, what, "array of %d elements (the limit is %d)", arg, attest.CBORMaxArray)
		}
		for i := uint64(0); i < arg; i++ {
			if off, err = cborSkip(what, b, off, depth+1); err != nil {
				return 0, err
			}
		}
		return off, nil
	case majorMap:
		if arg > attest.CBORMaxMapPairs {
			return 0, cborError(attest.CodeCBORLimit, what, "map of %d pairs (the limit is %d)", arg, attest.CBORMaxMapPairs)
		}
		var keys [attest.CBORMaxMapPairs][2]int // spans of the keys read so far
		for i := 0; i < int(arg); i++ {
			kstart := off
			if off, err = cborSkip(what, b, off, depth+1); err != nil {
				return 0, err
			}
			for _, k := range keys[:i] {
				if sameKey(b[k[0]:k[1]], b[kstart:off]) {
					return 0, cborError(attest.CodeCBORDuplicateKey, what, "map key repeated")
				}
			}
			keys[i] = [2]int{kstart, off}
			if off, err = cborSkip(what, b, off, depth+1); err != nil {
				return 0, err
			}
		}
		return off, nil
	}
	return 0, cborError(attest.CodeCBORMalformed, what, "unexpected major type %d", major)
}

// sameKey reports whether two well-formed encoded map keys are the same
// value. Integers and strings are compared by value, so that a key encoded
// in a longer form than needed still counts as a repeat; other keys (which
// nothing keybind reads uses) are compared by their encoding.
func sameKey(a, b []byte) bool {
	ma, va, na, erra := cborHead("", a, 0)
	mb, vb, nb, errb := cborHead("", b, 0)
	if erra != nil || errb != nil || ma != mb {
		return string(a) == string(b)
	}
	switch ma {
	case majorUint, majorNeg:
		return va == vb
	case majorBytes, majorText:
		return string(a[na:]) == string(b[nb:])
	}
	return string(a) == string(b)
}

func majorName(m byte) string {
	switch m {
	case majorUint:
		return "an unsigned integer"
	case majorNeg:
		return "a negative integer"
	case majorBytes:
		return "a byte string"
	case majorText:
		return "a text string"
	case majorArray:
		return "an array"
	case majorMap:
		return "a map"
	case majorTag:
		return "a tag"
	}
	return "a simple value or float"
}
