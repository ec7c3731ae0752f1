package attest

import (
	"errors"
	"fmt"
	"io"
	"testing"
)

func TestError(t *testing.T) {
	const expired Code = "chain.expired"
	err := fmt.Errorf("verifying: %w", Errorf(expired, "certificate %d expired: %w", 2, io.ErrUnexpectedEOF))
	if !errors.Is(err, expired.Err()) {
		t.Error("errors.Is does not match the code's sentinel")
	}
	if errors.Is(err, Code("chain.untrusted_root").Err()) {
		t.Error("errors.Is matches another code")
	}
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Error("the wrapped cause is lost")
	}
	var e *Error
	if !errors.As(err, &e) || e.Code != expired || e.Reason != "certificate 2 expired: unexpected EOF" {
		t.Errorf("errors.As: %#v", e)
	}
	if CodeOf(err) != expired || CodeOf(io.EOF) != "" || CodeOf(nil) != "" {
		t.Error("CodeOf")
	}
	if expired.Family() != "chain" || !expired.HasPrefix("chain.") || expired.HasPrefix("android.") {
		t.Error("Family/HasPrefix")
	}
	if got := err.Error(); got != "verifying: chain.expired: certificate 2 expired: unexpected EOF" {
		t.Errorf("message %q", got)
	}
}
