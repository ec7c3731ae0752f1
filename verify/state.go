package verify

import (
	"crypto/ecdsa"
	"crypto/sha256"

	"github.com/keybind/keybind/attest"

	voi "github.com/oasisprotocol/curve25519-voi/primitives/ed25519"
)

// minEdBatch is the smallest number of Ed25519 signatures worth a batch
// equation: below it, single checks with the expanded key are as fast.
const minEdBatch = 3

// state is what one verifying goroutine reuses from batch to batch, so
// that the steady path allocates nothing of its own.
type state struct {
	spans []span
	bv    *voi.BatchVerifier
	edIt  []*Item
	edRes []*Result
	der   [72]byte
	count counts
}

func newState(maxBatch int) *state {
	return &state{
		spans: make([]span, 0, maxBatch),
		bv:    voi.NewBatchVerifierWithCapacity(maxBatch),
		edIt:  make([]*Item, 0, maxBatch),
		edRes: make([]*Result, 0, maxBatch),
	}
}

// run verifies the batch in st.spans and completes the jobs it came from.
func (st *state) run(p *Pipeline) {
	start := p.now()
	n := 0
	for _, s := range st.spans {
		st.check(p, s.j.items[s.lo:s.hi], s.j.results[s.lo:s.hi])
		n += s.hi - s.lo
	}
	st.flushEd(p)
	p.served(p.now()-start, n)
	p.stats.record(&st.count, n)
	for i, s := range st.spans {
		if s.j.pending.Add(-int32(s.hi-s.lo)) == 0 {
			s.j.done <- struct{}{}
		}
		st.spans[i] = span{}
	}
}

// verify verifies items for a caller verifying its own items.
func (st *state) verify(p *Pipeline, items []Item, results []Result) {
	start := p.now()
	st.check(p, items, results)
	st.flushEd(p)
	p.served(p.now()-start, len(items))
	p.stats.record(&st.count, len(items))
}

// check verifies the ECDSA items at once and gathers the Ed25519 ones for
// flushEd.
func (st *state) check(p *Pipeline, items []Item, results []Result) {
	for i := range items {
		it, res := &items[i], &results[i]
		if code := Precheck(it); code != "" {
			res.Code = code
			st.count.add(it.Algorithm, code)
			continue
		}
		switch it.Algorithm {
		case Ed25519:
			st.edIt = append(st.edIt, it)
			st.edRes = append(st.edRes, res)
			if len(st.edIt) == p.opts.MaxBatch {
				st.flushEd(p)
			}
			continue
		case ECDSAP256, AppAttest:
			res.Code = verifyECDSA(it.Key.p256, it.Message, it.Digest, it.Signature)
		case ECDSAP256Raw:
			res.Code = verifyECDSA(it.Key.p256, it.Message, it.Digest, rawToDER(&st.der, it.Signature))
		}
		st.count.add(it.Algorithm, res.Code)
	}
}

func verifyECDSA(pub *ecdsa.PublicKey, msg, digest, der []byte) attest.Code {
	var h [32]byte
	if digest == nil {
		h = sha256.Sum256(msg)
		digest = h[:]
	}
	if !ecdsa.VerifyASN1(pub, digest, der) {
		return CodeSignature
	}
	return ""
}

// flushEd verifies the gathered Ed25519 items: in one batch equation when
// there are enough of them and recent batches have not been failing, and
// one by one otherwise or when the batch fails.
func (st *state) flushEd(p *Pipeline) {
	n := len(st.edIt)
	if n == 0 {
		return
	}
	batched := false
	if n >= minEdBatch && p.stats.edBatchWorthIt() {
		st.bv.Reset()
		for _, it := range st.edIt {
			st.bv.AddExpanded(it.Key.ed, it.Message, it.Signature)
		}
		batched = st.bv.VerifyBatchOnly(nil)
		if !batched {
			p.stats.edBatchFailures.Add(1)
		}
	}
	allValid := true
	for i, it := range st.edIt {
		res := st.edRes[i]
		if batched || voi.VerifyExpanded(it.Key.ed, it.Message, it.Signature) {
			res.Code = ""
		} else {
			res.Code = CodeSignature
			allValid = false
		}
		st.count.add(Ed25519, res.Code)
		st.edIt[i], st.edRes[i] = nil, nil
	}
	if n >= minEdBatch {
		p.stats.edBatchOutcome(allValid)
	}
	st.edIt, st.edRes = st.edIt[:0], st.edRes[:0]
}
