package androidkey

import (
	"errors"
	"fmt"
)

// A minimal DER reader for the KeyDescription. encoding/asn1 cannot express
// what the attestation schema needs (presence of every optional field, tags
// kept when unknown, AuthorizationList entries in any order), so the
// extension is read element by element. Lengths must be definite and
// minimally encoded, as DER requires; nothing is read past the end of its
// enclosing element.

// ASN.1 classes and universal tag numbers used by the schema.
const (
	classUniversal = 0
	classContext   = 2

	tagBoolean     = 1
	tagInteger     = 2
	tagOctetString = 4
	tagNull        = 5
	tagEnumerated  = 10
	tagSequence    = 16
	tagSet         = 17
)

// maxTagNumber bounds high-tag-number identifiers (KeyMint tags are below
// 2^28 once their type bits are removed; the schema uses numbers up to a
// few thousand).
const maxTagNumber = 1<<28 - 1

// element is one TLV.
type element struct {
	class       int
	constructed bool
	tag         int
	content     []byte // the value octets
	full        []byte // identifier, length and value
}

// derReader reads consecutive elements from b.
type derReader struct{ b []byte }

func (r *derReader) empty() bool { return len(r.b) == 0 }

var errTruncated = errors.New("truncated")

// next reads the next element.
func (r *derReader) next() (element, error) {
	var e element
	b := r.b
	if len(b) < 2 {
		return e, errTruncated
	}
	id := b[0]
	e.class = int(id >> 6)
	e.constructed = id&0x20 != 0
	e.tag = int(id & 0x1f)
	i := 1
	if e.tag == 0x1f {
		// High tag number form: base-128, minimal, at least 31.
		e.tag = 0
		for {
			if i >= len(b) {
				return e, errTruncated
			}
			c := b[i]
			i++
			if e.tag == 0 && c == 0x80 {
				return e, errors.New("tag number not minimally encoded")
			}
			if e.tag > maxTagNumber>>7 {
				return e, errors.New("tag number too large")
			}
			e.tag = e.tag<<7 | int(c&0x7f)
			if c&0x80 == 0 {
				break
			}
		}
		if e.tag < 0x1f {
			return e, errors.New("tag number not minimally encoded")
		}
	}
	if i >= len(b) {
		return e, errTruncated
	}
	l := int(b[i])
	i++
	if l&0x80 != 0 {
		n := l & 0x7f
		switch {
		case n == 0:
			return e, errors.New("indefinite length")
		case n > 4:
			return e, errors.New("length too large")
		}
		if i+n > len(b) {
			return e, errTruncated
		}
		if b[i] == 0 {
			return e, errors.New("length not minimally encoded")
		}
		l = 0
		for _, c := range b[i : i+n] {
			l = l<<8 | int(c)
		}
		i += n
		if l < 0x80 {
			return e, errors.New("length not minimally encoded")
		}
	}
	if l > len(b)-i {
		return e, errTruncated
	}
	e.content = b[i : i+l]
	e.full = b[:i+l]
	r.b = b[i+l:]
	return e, nil
}

// expect reads the next element and checks its class, form and tag.
func (r *derReader) expect(class int, constructed bool, tag int) (element, error) {
	e, err := r.next()
	if err != nil {
		return e, err
	}
	if e.class != class || e.constructed != constructed || e.tag != tag {
		return e, fmt.Errorf("found %s where %s was expected", describeTag(e.class, e.constructed, e.tag), describeTag(class, constructed, tag))
	}
	return e, nil
}

func describeTag(class int, constructed bool, tag int) string {
	if class == classUniversal {
		switch tag {
		case tagBoolean:
			return "BOOLEAN"
		case tagInteger:
			return "INTEGER"
		case tagOctetString:
			return "OCTET STRING"
		case tagNull:
			return "NULL"
		case tagEnumerated:
			return "ENUMERATED"
		case tagSequence:
			return "SEQUENCE"
		case tagSet:
			return "SET"
		}
		return fmt.Sprintf("universal tag %d", tag)
	}
	names := [4]string{"universal", "application", "context", "private"}
	form := "primitive"
	if constructed {
		form = "constructed"
	}
	return fmt.Sprintf("[%s %d, %s]", names[class], tag, form)
}

// parseInt64 decodes INTEGER or ENUMERATED content: two's complement,
// minimally encoded, at most 64 bits.
func parseInt64(content []byte) (int64, error) {
	switch {
	case len(content) == 0:
		return 0, errors.New("empty integer")
	case len(content) > 1 && (content[0] == 0 && content[1]&0x80 == 0 || content[0] == 0xff && content[1]&0x80 != 0):
		return 0, errors.New("integer not minimally encoded")
	case len(content) > 8:
		// Nine minimal octets hold a value of 2^63 or more.
		return 0, errors.New("integer too large")
	}
	v := int64(int8(content[0]))
	for _, c := range content[1:] {
		v = v<<8 | int64(c)
	}
	return v, nil
}

func readInt(r *derReader) (int64, error) {
	e, err := r.expect(classUniversal, false, tagInteger)
	if err != nil {
		return 0, err
	}
	return parseInt64(e.content)
}

func readEnum(r *derReader) (int64, error) {
	e, err := r.expect(classUniversal, false, tagEnumerated)
	if err != nil {
		return 0, err
	}
	return parseInt64(e.content)
}

func readOctets(r *derReader) ([]byte, error) {
	e, err := r.expect(classUniversal, false, tagOctetString)
	if err != nil {
		return nil, err
	}
	return e.content, nil
}

// readBool decodes a BOOLEAN. DER says true is 0xff; any non-zero octet is
// read as true, since the value is unambiguous either way.
func readBool(r *derReader) (bool, error) {
	e, err := r.expect(classUniversal, false, tagBoolean)
	if err != nil {
		return false, err
	}
	if len(e.content) != 1 {
		return false, errors.New("BOOLEAN must be one octet")
	}
	return e.content[0] != 0, nil
}

func readNull(r *derReader) error {
	e, err := r.expect(classUniversal, false, tagNull)
	if err != nil {
		return err
	}
	if len(e.content) != 0 {
		return errors.New("NULL with content")
	}
	return nil
}
