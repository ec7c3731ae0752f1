package androidkey

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/keybind/keybind/attest"
)

// GoogleStatusURL is where Google publishes the revocation status of
// attestation certificates.
const GoogleStatusURL = "https://android.googleapis.com/attestation/status"

// MaxStatusListSize bounds a status list read from a file or URL (Google's
// list is well under a megabyte).
const MaxStatusListSize = 32 << 20

// Certificate statuses of the status list.
const (
	StatusRevoked   = "REVOKED"
	StatusSuspended = "SUSPENDED"
)

// StatusList is Google's attestation certificate status list:
//
//	{"entries": {"<serial>": {"status": "REVOKED"|"SUSPENDED", "reason": "…"}}}
//
// keyed by certificate serial number in lower-case hex without leading
// zeros. Every certificate of a chain is looked up; a listed certificate
// rejects the chain (an entry with a status other than the two above
// rejects too: the list names only certificates that must not be trusted).
//
// A StatusList is immutable and safe for concurrent use.
type StatusList struct {
	entries map[string]StatusEntry
}

// StatusEntry is one entry of the list.
type StatusEntry struct {
	Status  string `json:"status"`
	Reason  string `json:"reason,omitempty"`
	Comment string `json:"comment,omitempty"`
	Expires string `json:"expires,omitempty"`
}

// Codes of the revocation checks.
const (
	CodeRevoked               attest.Code = "chain.revoked"                // a certificate is listed as revoked
	CodeSuspended             attest.Code = "chain.suspended"              // a certificate is listed as suspended
	CodeRevocationList        attest.Code = "input.revocation_list"        // the status list is not a usable list
	CodeRevocationUnavailable attest.Code = "chain.revocation_unavailable" // a configured list cannot be read (fail closed)
)

// ParseStatusList parses a status list. The list must be a JSON object with
// an "entries" object; every key must be a hex serial number and every
// entry must have a status. Anything else is refused, so that a broken
// download is never taken for an empty list.
func ParseStatusList(data []byte) (*StatusList, error) {
	var doc struct {
		Entries map[string]json.RawMessage `json:"entries"`
	}
	d := json.NewDecoder(bytes.NewReader(data))
	if err := d.Decode(&doc); err != nil {
		return nil, attest.Errorf(CodeRevocationList, "status list is not JSON: %v", err)
	}
	if d.More() {
		return nil, attest.Errorf(CodeRevocationList, "status list: data after the JSON object")
	}
	if doc.Entries == nil {
		return nil, attest.Errorf(CodeRevocationList, `status list has no "entries" object`)
	}
	l := &StatusList{entries: make(map[string]StatusEntry, len(doc.Entries))}
	for k, raw := range doc.Entries {
		serial, ok := normalizeSerial(k)
		if !ok {
			return nil, attest.Errorf(CodeRevocationList, "status list: key %q is not a hex serial number", k)
		}
		var e StatusEntry
		if err := json.Unmarshal(raw, &e); err != nil {
			return nil, attest.Errorf(CodeRevocationList, "status list: entry %s: %v", k, err)
		}
		if e.Status == "" {
			return nil, attest.Errorf(CodeRevocationList, "status list: entry %s has no status", k)
		}
		l.entries[serial] = e
	}
	return l, nil
}

// normalizeSerial lower-cases a hex serial and strips leading zeros.
func normalizeSerial(s string) (string, bool) {
	if s == "" || len(s) > 128 {
		return "", false
	}
	for _, c := range s {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return "", false
		}
	}
	s = strings.TrimLeft(strings.ToLower(s), "0")
	if s == "" {
		s = "0"
	}
	return s, true
}

// Len returns the number of entries.
func (l *StatusList) Len() int { return len(l.entries) }

// Lookup returns the entry for a certificate serial number.
func (l *StatusList) Lookup(serial *big.Int) (StatusEntry, bool) {
	if l == nil || serial == nil || serial.Sign() < 0 {
		return StatusEntry{}, false
	}
	e, ok := l.entries[serial.Text(16)]
	return e, ok
}

// check returns the rejection for a listed certificate.
func (l *StatusList) check(i int, serial *big.Int) error {
	e, ok := l.Lookup(serial)
	if !ok {
		return nil
	}
	code := CodeRevoked
	if e.Status == StatusSuspended {
		code = CodeSuspended
	}
	reason := ""
	if e.Reason != "" {
		reason = " (" + e.Reason + ")"
	}
	return attest.Errorf(code, "certificate %d (serial %s) is listed as %s%s", i, serial.Text(16), e.Status, reason)
}

// StatusSource keeps a status list fresh: it reads the list from a file or
// an http(s) URL, keeps it for Refresh, and reads it again after that. When
// a refresh fails it goes on with the list it has until that list is
// MaxAge old; after that, and when no list was ever read, List fails with
// chain.revocation_unavailable, so that a configured list that cannot be
// read fails closed.
//
// A StatusSource is safe for concurrent use: one caller refreshes while the
// others go on with the current list.
type StatusSource struct {
	// Location is a file path or an http:// or https:// URL.
	Location string
	// Refresh is how long a list is used before it is read again (zero:
	// one hour).
	Refresh time.Duration
	// MaxAge is how long a list may be used when it cannot be refreshed
	// (zero: 24 hours).
	MaxAge time.Duration
	// Client fetches URLs (nil: a client with a 30-second timeout).
	Client *http.Client
	// Now returns the current time (nil: time.Now).
	Now func() time.Time

	fetching sync.Mutex // held by the caller that reads the list
	mu       sync.Mutex // guards the fields below
	list     *StatusList
	readAt   time.Time
	lastErr  error
}

// NewStatusSource returns a source reading location (a file path or an
// http(s) URL) with the default refresh interval and maximum age.
func NewStatusSource(location string) *StatusSource {
	return &StatusSource{Location: location}
}

func (s *StatusSource) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *StatusSource) refresh() time.Duration {
	if s.Refresh > 0 {
		return s.Refresh
	}
	return time.Hour
}

func (s *StatusSource) maxAge() time.Duration {
	if s.MaxAge > 0 {
		return s.MaxAge
	}
	return 24 * time.Hour
}

func (s *StatusSource) current() (*StatusList, time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.list, s.readAt
}

// List returns a list no older than Refresh when one can be read, else the
// last list read while it is younger than MaxAge, else an error with code
// chain.revocation_unavailable.
func (s *StatusSource) List(ctx context.Context) (*StatusList, error) {
	list, at := s.current()
	now := s.now()
	if list != nil && now.Sub(at) < s.refresh() {
		return list, nil
	}
	if !s.fetching.TryLock() {
		// Another caller is reading the list: go on with the current one
		// while it may be used, else wait for the read.
		if list != nil && now.Sub(at) < s.maxAge() {
			return list, nil
		}
		s.fetching.Lock()
		s.fetching.Unlock()
		list, at = s.current()
		if list != nil && s.now().Sub(at) < s.maxAge() {
			return list, nil
		}
		return nil, s.unavailable()
	}
	defer s.fetching.Unlock()
	// Another caller may have refreshed between the check and the lock.
	if list, at = s.current(); list != nil && s.now().Sub(at) < s.refresh() {
		return list, nil
	}
	fresh, err := s.read(ctx)
	s.mu.Lock()
	if err == nil {
		s.list, s.readAt, s.lastErr = fresh, s.now(), nil
	} else {
		s.lastErr = err
	}
	list, at = s.list, s.readAt
	s.mu.Unlock()
	if list != nil && s.now().Sub(at) < s.maxAge() {
		return list, nil
	}
	return nil, s.unavailable()
}

func (s *StatusSource) unavailable() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.list != nil {
		return attest.Errorf(CodeRevocationUnavailable, "status list from %s is %s old and cannot be refreshed: %w", s.Location, s.now().Sub(s.readAt).Round(time.Second), s.lastErr)
	}
	return attest.Errorf(CodeRevocationUnavailable, "status list from %s cannot be read: %w", s.Location, s.lastErr)
}

// Status reports when the list in use was read and the error of the last
// refresh (nil when it succeeded), for health checks and logs.
func (s *StatusSource) Status() (readAt time.Time, entries int, lastErr error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.list != nil {
		entries = s.list.Len()
	}
	return s.readAt, entries, s.lastErr
}

func (s *StatusSource) read(ctx context.Context) (*StatusList, error) {
	data, err := ReadStatusData(ctx, s.Location, s.Client)
	if err != nil {
		return nil, err
	}
	return ParseStatusList(data)
}

// ReadStatusData reads the bytes of a status list from a file path or an
// http(s) URL (client nil: a client with a 30-second timeout), refusing
// anything larger than MaxStatusListSize.
func ReadStatusData(ctx context.Context, location string, client *http.Client) ([]byte, error) {
	if location == "" {
		return nil, errors.New("no status list location")
	}
	var body io.Reader
	if strings.HasPrefix(location, "http://") || strings.HasPrefix(location, "https://") {
		if client == nil {
			client = &http.Client{Timeout: 30 * time.Second}
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, location, nil)
		if err != nil {
			return nil, err
		}
		req.Header.Set("Accept", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("GET %s: %s", location, resp.Status)
		}
		body = resp.Body
	} else {
		f, err := os.Open(location)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		body = f
	}
	data, err := io.ReadAll(io.LimitReader(body, MaxStatusListSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxStatusListSize {
		return nil, fmt.Errorf("status list from %s is larger than %d bytes", location, MaxStatusListSize)
	}
	return data, nil
}
