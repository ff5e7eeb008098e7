package onesoidc

import (
	"strings"
	"time"
	"unsafe"

	"github.com/ones-now/onesoidc/internal/cache"
)

// The introspection cache: an answer of the provider's introspection endpoint (RFC 7662 §2.2) is
// reused for later validations of the same opaque token, keyed by the SHA-256 of the token (never
// the token itself). An entry keeps what a hit needs and no more: the answer's text (for Claims),
// the strings of the result as spans of that text, "exp" and "iat", and until when it may be
// reused; the result is built on each hit. A refusal keeps its error. The cache is bounded by
// memory (introspectionCacheBytes), not by a count.

// introEntry is one cached introspection answer, or a refusal. Entries are immutable.
type introEntry struct {
	// text is the answer, then the strings of the result that are not text of it (those that
	// held escapes), then the spans of the "aud" values (and of the strings, when wide).
	text   string
	reject *ValidationError // non-nil: the token is refused
	until  time.Time        // reused until then
	// exp and iat are the answer's "exp" and "iat" in Unix seconds and nanoseconds; 0, 0 when
	// the answer had none.
	exp, iat     int64
	expNs, iatNs int32
	spans        [numIntroStr]introSpan // the strings of the result, unless wide
	plen, nAud   uint32                 // the answer's length; the values of "aud"
	kind         EntityKind
	audSet       bool // the answer had "aud", maybe empty
	wide         bool // text passes 64 KiB: every span is in text, in 32-bit form
}

// maxSearchedAud is how many values of "aud" pack looks for in the answer; the others are kept
// after it.
const maxSearchedAud = 4

// introSpan is a string of an entry: text[off:off+n].
type introSpan struct{ off, n uint16 }

// The strings of the result an entry keeps, in the order of introEntry.spans.
const (
	iSub = iota
	iScope
	iUsername
	iClientID
	iRole
	iACR
	numIntroStr
)

// pack sets the text and spans of e: the answer body, then those of strs and aud that are not
// text of it, then the spans of aud (preceded by those of strs when the text passes 64 KiB, the
// reach of a 16-bit span). Only the first maxSearchedAud values of aud are looked for in the
// body, so that an answer of many values costs no more than a few passes over it.
func (e *introEntry) pack(body string, strs [numIntroStr]string, aud []string) {
	vals := append(strs[:], aud...)
	offs := make([]int, len(vals))
	end := len(body)
	for i, s := range vals {
		if s == "" {
			continue
		}
		offs[i] = -1
		if i < numIntroStr+maxSearchedAud {
			offs[i] = strings.Index(body, s) // any place of the same bytes will do
		}
		if offs[i] < 0 {
			offs[i], end = end, end+len(s)
		}
	}
	e.wide = end > 1<<16-1
	e.plen, e.nAud = uint32(len(body)), uint32(len(aud))
	w, tail := 2, numIntroStr // the spans in the tail: those from vals[tail:]
	if e.wide {
		w, tail = 4, 0
	} else {
		for i := range numIntroStr {
			e.spans[i] = introSpan{uint16(offs[i]), uint16(len(vals[i]))}
		}
	}
	buf := make([]byte, 0, end+2*w*(len(vals)-tail))
	buf = append(buf, body...)
	for i, s := range vals {
		if offs[i] == len(buf) && s != "" { // not text of the answer: it goes here
			buf = append(buf, s...)
		}
	}
	for i, s := range vals[tail:] {
		for _, v := range [2]int{offs[tail+i], len(s)} {
			for j := range w {
				buf = append(buf, byte(v>>(8*j)))
			}
		}
	}
	e.text = string(buf)
}

// str returns the string i (iSub ...) of the result.
func (e *introEntry) str(i int) string {
	if e.wide {
		return e.tailSpan(i)
	}
	sp := e.spans[i]
	return e.text[sp.off : int(sp.off)+int(sp.n)]
}

// aud returns the value i of "aud".
func (e *introEntry) aud(i int) string {
	if e.wide {
		return e.tailSpan(numIntroStr + i)
	}
	return e.tailSpan(i)
}

// hasAud reports whether "aud" holds want.
func (e *introEntry) hasAud(want string) bool {
	for i := range int(e.nAud) {
		if e.aud(i) == want {
			return true
		}
	}
	return false
}

// tailSpan returns the string of span k of the tail of text: 16-bit offset and length, or
// 32-bit when wide, little-endian.
func (e *introEntry) tailSpan(k int) string {
	w, n := 2, int(e.nAud)
	if e.wide {
		w, n = 4, n+numIntroStr
	}
	p := len(e.text) - 2*w*(n-k)
	word := func(p int) int {
		v := 0
		for j := w - 1; j >= 0; j-- {
			v = v<<8 | int(e.text[p+j])
		}
		return v
	}
	off := word(p)
	return e.text[off : off+word(p+w)]
}

// introEntryCost is the memory an entry holds: the cache's overhead, the entry, its text rounded
// up to 32 bytes (the allocator's size classes near 300 bytes), and a refusal's error.
func introEntryCost(e *introEntry) uint32 {
	n := cache.Overhead + unsafe.Sizeof(*e) + uintptr((len(e.text)+31)&^31)
	if r := e.reject; r != nil {
		n += unsafe.Sizeof(*r) + uintptr(len(r.detail))
		if _, ok := r.Err.(*TokenExpiredError); ok {
			n += unsafe.Sizeof(TokenExpiredError{})
		}
	}
	return uint32(n)
}

// unixParts returns t in Unix seconds and nanoseconds, 0, 0 for the zero time.
func unixParts(t time.Time) (int64, int32) {
	if t.IsZero() {
		return 0, 0
	}
	return t.Unix(), int32(t.Nanosecond())
}

// unixTime is the time of unixParts: the zero time for 0, 0. An answer's NumericDate of 0 is the
// zero time (parseNumericDate), so no other time has those parts.
func unixTime(sec int64, ns int32) time.Time {
	if sec == 0 && ns == 0 {
		return time.Time{}
	}
	return time.Unix(sec, int64(ns))
}
