package verify

import (
	"sync/atomic"

	"github.com/keybind/keybind/attest"
)

// outcomeCodes are the outcomes counted one by one; any other code (such
// as an App Attest check's) is counted as "other".
var outcomeCodes = [...]attest.Code{
	"", CodeAlgorithm, CodePublicKey, CodeKeyAlgorithm, CodeDigest, CodeMessage,
	CodeSignatureEncoding, CodeSignature,
}

const (
	numOutcomes  = len(outcomeCodes) + 1 // + other
	otherOutcome = numOutcomes - 1
)

// OtherCode is the code Stats reports for outcomes outside the pipeline's
// own codes.
const OtherCode attest.Code = "other"

func outcomeIndex(c attest.Code) int {
	for i, oc := range outcomeCodes {
		if c == oc {
			return i
		}
	}
	return otherOutcome
}

// counts are one batch's outcomes, gathered without atomics.
type counts [numAlgorithms][numOutcomes]uint32

func (c *counts) add(a Algorithm, code attest.Code) {
	if a >= numAlgorithms {
		a = 0
	}
	c[a][outcomeIndex(code)]++
}

// BatchBounds are the upper bounds of the batch-size histogram's buckets
// (the last bucket, +Inf, is implied).
var BatchBounds = [...]int{1, 2, 4, 8, 16, 32, 64, 128, 256}

type stats struct {
	verdicts        [numAlgorithms][numOutcomes]atomic.Uint64
	batches         [len(BatchBounds) + 1]atomic.Uint64
	batchItems      atomic.Uint64
	overloaded      atomic.Uint64
	onTheSpot       atomic.Uint64
	queued          atomic.Uint64
	edBatchFailures atomic.Uint64
	// edFail is a moving score of recent Ed25519 batches that failed (or
	// would have): 1024 per failure, decaying by 1/8 per batch.
	edFail atomic.Int64
}

// record adds a batch's counts and size, and clears c.
func (s *stats) record(c *counts, size int) {
	for a := range c {
		for o, n := range c[a] {
			if n != 0 {
				s.verdicts[a][o].Add(uint64(n))
			}
		}
	}
	*c = counts{}
	b := len(BatchBounds)
	for i, bound := range BatchBounds {
		if size <= bound {
			b = i
			break
		}
	}
	s.batches[b].Add(1)
	s.batchItems.Add(uint64(size))
}

// edBatchWorthIt reports whether recent Ed25519 batches mostly held valid
// signatures only. When many fail (a caller sending bad signatures), every
// failed batch costs its equation on top of the single checks, so the
// pipeline checks one by one until the failures stop.
func (s *stats) edBatchWorthIt() bool { return s.edFail.Load() < 256 }

func (s *stats) edBatchOutcome(valid bool) {
	v := s.edFail.Load()
	v -= v / 8
	if !valid {
		v += 1024
	}
	s.edFail.Store(v)
}

// Stats is a snapshot of a pipeline's counters, for metrics.
type Stats struct {
	// Verdicts counts verified items by algorithm and outcome ("" for
	// valid). Only non-zero counts are listed.
	Verdicts []VerdictCount
	// BatchCounts[i] is the number of batches of at most BatchBounds[i]
	// items (and more than the previous bound); the last entry counts the
	// larger ones. BatchItems is the total of their sizes.
	BatchCounts [len(BatchBounds) + 1]uint64
	BatchItems  uint64
	// QueueDepth is the number of items waiting for a worker.
	QueueDepth int
	// Overloaded counts Verify calls refused with ErrOverloaded.
	Overloaded uint64
	// OnTheSpot counts Verify calls verified by their caller (light
	// load), Queued those that went through the queue (load).
	OnTheSpot, Queued uint64
	// Ed25519BatchFailures counts batch equations that failed (each
	// followed by single checks).
	Ed25519BatchFailures uint64
}

// VerdictCount is the number of items of one algorithm with one outcome.
type VerdictCount struct {
	Algorithm Algorithm
	Code      attest.Code // "" for valid, OtherCode for codes of other packages
	Count     uint64
}

// Stats returns a snapshot of the pipeline's counters.
func (p *Pipeline) Stats() Stats {
	var st Stats
	for a := range p.stats.verdicts {
		for o := range p.stats.verdicts[a] {
			if n := p.stats.verdicts[a][o].Load(); n != 0 {
				code := OtherCode
				if o < len(outcomeCodes) {
					code = outcomeCodes[o]
				}
				st.Verdicts = append(st.Verdicts, VerdictCount{Algorithm: Algorithm(a), Code: code, Count: n})
			}
		}
	}
	for i := range p.stats.batches {
		st.BatchCounts[i] = p.stats.batches[i].Load()
	}
	st.BatchItems = p.stats.batchItems.Load()
	st.Overloaded = p.stats.overloaded.Load()
	st.OnTheSpot = p.stats.onTheSpot.Load()
	st.Queued = p.stats.queued.Load()
	st.Ed25519BatchFailures = p.stats.edBatchFailures.Load()
	st.QueueDepth = p.QueueDepth()
	return st
}
