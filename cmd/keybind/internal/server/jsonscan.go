package server

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"unicode/utf16"
	"unicode/utf8"
)

// jsonScanner reads strict JSON (RFC 8259) from a byte slice without
// allocating: strings come back as sub-slices of the input, or, when they
// hold escapes, decoded into a scratch buffer that the next escaped string
// overwrites. It reads only what the verify endpoint's request needs
// (objects, arrays, strings, non-negative integers); a syntax error records
// where it happened and every later call fails.
type jsonScanner struct {
	b   []byte
	i   int
	tmp []byte
	err string
}

func (s *jsonScanner) reset(b []byte) {
	s.b, s.i, s.err = b, 0, ""
	s.tmp = s.tmp[:0]
}

func (s *jsonScanner) failf(format string, args ...any) bool {
	if s.err == "" {
		s.err = fmt.Sprintf("offset %d: ", s.i) + fmt.Sprintf(format, args...)
	}
	s.i = len(s.b)
	return false
}

func (s *jsonScanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// peek returns the next non-space byte (0 at the end).
func (s *jsonScanner) peek() byte {
	s.ws()
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

// expect consumes c after optional space.
func (s *jsonScanner) expect(c byte) bool {
	if s.peek() == c {
		s.i++
		return true
	}
	if s.i >= len(s.b) {
		return s.failf("unexpected end of JSON, want %q", c)
	}
	return s.failf("unexpected %q, want %q", s.b[s.i], c)
}

// end checks that only space is left.
func (s *jsonScanner) end() bool {
	s.ws()
	if s.i != len(s.b) {
		return s.failf("data after the JSON value")
	}
	return s.err == ""
}

// next consumes the separator after a member or element: it returns true
// after a comma (another one follows), false after close (or an error).
func (s *jsonScanner) next(close byte) bool {
	switch s.peek() {
	case ',':
		s.i++
		return true
	case close:
		s.i++
		return false
	case 0:
		s.failf("unexpected end of JSON, want ',' or %q", close)
	default:
		s.failf("unexpected %q, want ',' or %q", s.b[s.i], close)
	}
	return false
}

// str reads a string and returns its content, unescaped.
func (s *jsonScanner) str() ([]byte, bool) {
	if s.peek() != '"' {
		if s.i >= len(s.b) {
			return nil, s.failf("unexpected end of JSON, want a string")
		}
		return nil, s.failf("unexpected %q, want a string", s.b[s.i])
	}
	s.i++
	start := s.i
	q := bytes.IndexByte(s.b[start:], '"')
	if q < 0 {
		return nil, s.failf("unterminated string")
	}
	v := s.b[start : start+q]
	if bytes.IndexByte(v, '\\') >= 0 {
		return s.escaped(start)
	}
	if !plainASCII(v) {
		for _, c := range v {
			if c < 0x20 {
				s.i = start
				return nil, s.failf("control character in a string")
			}
		}
		if !utf8.Valid(v) {
			return nil, s.failf("string is not valid UTF-8")
		}
	}
	s.i = start + q + 1
	return v, true
}

// plainASCII reports whether b holds only printable ASCII and DEL (no
// control character, nothing from 0x80), eight bytes at a time.
func plainASCII(b []byte) bool {
	const ones, highs = 0x2020202020202020, 0x8080808080808080
	for len(b) >= 8 {
		w := binary.LittleEndian.Uint64(b)
		// A byte below 0x20 borrows in w-0x20…, a byte from 0x80 has its
		// high bit set; borrows can flag a later byte wrongly, never miss
		// one, and the caller checks flagged strings byte by byte.
		if ((w-ones)|w)&highs != 0 {
			return false
		}
		b = b[8:]
	}
	for _, c := range b {
		if c < 0x20 || c >= 0x80 {
			return false
		}
	}
	return true
}

// escaped finishes reading a string holding escapes into s.tmp.
func (s *jsonScanner) escaped(start int) ([]byte, bool) {
	out := append(s.tmp[:0], s.b[start:s.i]...)
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			s.i++
			s.tmp = out
			if !utf8.Valid(out) {
				return nil, s.failf("string is not valid UTF-8")
			}
			return out, true
		case c < 0x20:
			return nil, s.failf("control character in a string")
		case c != '\\':
			out = append(out, c)
			s.i++
			continue
		}
		if s.i+1 >= len(s.b) {
			break
		}
		e := s.b[s.i+1]
		s.i += 2
		switch e {
		case '"', '\\', '/':
			out = append(out, e)
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r, ok := s.hex4()
			if !ok {
				return nil, false
			}
			if utf16.IsSurrogate(r) {
				if r >= 0xdc00 || s.i+1 >= len(s.b) || s.b[s.i] != '\\' || s.b[s.i+1] != 'u' {
					return nil, s.failf("lone surrogate in a string")
				}
				s.i += 2
				r2, ok := s.hex4()
				if !ok {
					return nil, false
				}
				if r2 < 0xdc00 || r2 > 0xdfff {
					return nil, s.failf("lone surrogate in a string")
				}
				r = utf16.DecodeRune(r, r2)
			}
			out = utf8.AppendRune(out, r)
		default:
			return nil, s.failf("invalid escape \\%c", e)
		}
	}
	return nil, s.failf("unterminated string")
}

func (s *jsonScanner) hex4() (rune, bool) {
	if s.i+4 > len(s.b) {
		return 0, s.failf("truncated \\u escape")
	}
	var r rune
	for _, c := range s.b[s.i : s.i+4] {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, s.failf("invalid \\u escape")
		}
	}
	s.i += 4
	return r, true
}

// uint reads a non-negative integer no larger than max (no fraction, no
// exponent, no leading zeros).
func (s *jsonScanner) uint(max uint64) (uint64, bool) {
	s.ws()
	start := s.i
	var v uint64
	for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
		d := uint64(s.b[s.i] - '0')
		if v > (max-d)/10 {
			return 0, s.failf("number out of range (at most %d)", max)
		}
		v = v*10 + d
		s.i++
	}
	switch {
	case s.i == start:
		return 0, s.failf("want a non-negative integer")
	case s.b[start] == '0' && s.i-start > 1:
		return 0, s.failf("leading zero in a number")
	case s.i < len(s.b) && (s.b[s.i] == '.' || s.b[s.i] == 'e' || s.b[s.i] == 'E'):
		return 0, s.failf("want an integer")
	}
	return v, true
}
