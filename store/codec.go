package store

import (
	"errors"
	"fmt"

	"github.com/fxamacker/cbor/v2"
	"github.com/klauspost/compress/zstd"
)

// Values are CBOR. Records are encoded deterministically (Core Deterministic
// Encoding: shortest forms, sorted map keys, no indefinite lengths; times as
// RFC 3339 text with nanoseconds), so the same record always makes the same
// bytes, which CompareAndSwap relies on. Decoding is strict — duplicate map
// keys, indefinite lengths, tags, invalid UTF-8, unknown fields and bytes
// after the data item are refused — with limits sized for stored records
// (larger than the attestation profile of package attest, which decodes
// untrusted input from phones).

// Limits of the record decoding profile.
const (
	RecordMaxNesting  = 16
	RecordMaxArray    = 4096
	RecordMaxMapPairs = 4096
)

// encMode and decMode are immutable and safe for concurrent use.
var encMode = func() cbor.EncMode {
	o := cbor.CoreDetEncOptions()
	o.Time = cbor.TimeRFC3339Nano
	o.TimeTag = cbor.EncTagNone
	em, err := o.EncMode()
	if err != nil {
		panic(err) // the options above are constants
	}
	return em
}()

var decMode = func() cbor.DecMode {
	dm, err := cbor.DecOptions{
		DupMapKey:         cbor.DupMapKeyEnforcedAPF,
		IndefLength:       cbor.IndefLengthForbidden,
		TagsMd:            cbor.TagsForbidden,
		MaxNestedLevels:   RecordMaxNesting,
		MaxArrayElements:  RecordMaxArray,
		MaxMapPairs:       RecordMaxMapPairs,
		UTF8:              cbor.UTF8RejectInvalid,
		ExtraReturnErrors: cbor.ExtraDecErrorUnknownField,
	}.DecMode()
	if err != nil {
		panic(err) // the options above are constants
	}
	return dm
}()

// ErrCorrupt is returned (wrapped) when stored bytes do not decode: a value
// that is not a record of the expected shape, evidence that does not
// decompress, or an export stream that is damaged.
var ErrCorrupt = errors.New("store: corrupt data")

// Marshal encodes a record the way the store writes it.
func Marshal(v any) ([]byte, error) {
	b, err := encMode.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("store: encoding %T: %w", v, err)
	}
	return b, nil
}

// Unmarshal decodes a stored record into v under the strict record profile.
func Unmarshal(data []byte, v any) error {
	if err := decMode.Unmarshal(data, v); err != nil {
		return fmt.Errorf("%w: decoding %T: %v", ErrCorrupt, v, err)
	}
	return nil
}

// MaxEvidence is the default bound on decompressed attestation evidence.
const MaxEvidence = 1 << 20

// compressor compresses attestation evidence with zstd. EncodeAll and
// DecodeAll are safe for concurrent use; each Store has its own.
type compressor struct {
	enc *zstd.Encoder
	dec *zstd.Decoder
	max int
}

func newCompressor(max int) (*compressor, error) {
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithEncoderConcurrency(1))
	if err != nil {
		return nil, err
	}
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(uint64(max)))
	if err != nil {
		enc.Close()
		return nil, err
	}
	return &compressor{enc: enc, dec: dec, max: max}, nil
}

func (c *compressor) compress(raw []byte) []byte { return c.enc.EncodeAll(raw, nil) }

func (c *compressor) decompress(z []byte) ([]byte, error) {
	out, err := c.dec.DecodeAll(z, nil) // WithDecoderMaxMemory bounds the output
	if err != nil {
		return nil, fmt.Errorf("%w: evidence: %v", ErrCorrupt, err)
	}
	if len(out) > c.max {
		return nil, fmt.Errorf("%w: evidence larger than %d bytes", ErrCorrupt, c.max)
	}
	return out, nil
}

func (c *compressor) close() {
	c.enc.Close()
	c.dec.Close()
}
