package jose

import (
	"encoding/json"
	"math/bits"
	"reflect"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// A strict, allocation-free reader for the JSON of JWS headers and JWT payloads (RFC 8259),
// used instead of encoding/json on the validation hot path. It works on a string so that claim
// values are substrings of the payload and cost no allocation. Compared with encoding/json it is
// stricter where RFC 8725 §3.7 asks: numbers must be finite float64 values (1e400 is refused),
// nesting is bounded, and the callers refuse duplicate member names at the top level. Valid
// UTF-8 is checked by the callers on the whole input.

// Kinds of JSON values.
const (
	jsonString = iota + 1
	jsonNumber
	jsonBool
	jsonNull
	jsonArray
	jsonObject
)

// maxJSONDepth bounds the nesting of arrays and objects.
const maxJSONDepth = 32

// jsonValue is one value: for strings raw is the text between the quotes (escaped tells whether
// it holds escape sequences); for the other kinds raw is the value's text.
type jsonValue struct {
	kind    int
	raw     string
	escaped bool
}

// text returns the string a jsonString value denotes.
func (v jsonValue) text() string {
	if !v.escaped {
		return v.raw
	}
	return unescapeJSON(v.raw)
}

// unescapeJSON decodes the body of a JSON string with escapes exactly as encoding/json does, so
// that UnmarshalClaims and ClaimsMap see the same values as ParseClaims. It is off the common path.
func unescapeJSON(raw string) string {
	var s string
	if err := json.Unmarshal([]byte(`"`+raw+`"`), &s); err != nil {
		return ""
	}
	return s
}

// jsonReader reads one JSON text. After a failure ok is false and every read fails.
type jsonReader struct {
	s   string
	i   int
	bad bool
}

func (r *jsonReader) fail() { r.bad = true; r.i = len(r.s) }

func (r *jsonReader) ws() {
	for r.i < len(r.s) {
		switch r.s[r.i] {
		case ' ', '\t', '\n', '\r':
			r.i++
		default:
			return
		}
	}
}

// begin starts the top-level object.
func (r *jsonReader) begin() bool {
	r.ws()
	if r.i >= len(r.s) || r.s[r.i] != '{' { // a BOM is not whitespace
		r.fail()
		return false
	}
	r.i++
	return true
}

// end checks that nothing but whitespace follows the top-level value.
func (r *jsonReader) end() bool {
	r.ws()
	return !r.bad && r.i == len(r.s)
}

// member reads the name of the next member of the object being read and the colon after it. It
// returns false at the closing brace or on a syntax error (then r.bad is set). first is true for
// the first member.
func (r *jsonReader) member(first bool) (string, bool) {
	r.ws()
	if r.i >= len(r.s) {
		r.fail()
		return "", false
	}
	if r.s[r.i] == '}' {
		r.i++
		return "", false
	}
	if !first {
		if r.s[r.i] != ',' {
			r.fail()
			return "", false
		}
		r.i++
		r.ws()
	}
	if r.i >= len(r.s) || r.s[r.i] != '"' {
		r.fail()
		return "", false
	}
	name, esc := r.str()
	r.ws()
	if r.bad || r.i >= len(r.s) || r.s[r.i] != ':' {
		r.fail()
		return "", false
	}
	r.i++
	if esc {
		name = unescapeJSON(name)
	}
	return name, true
}

// str reads a string at r.i (on the opening quote) and returns its body.
func (r *jsonReader) str() (string, bool) {
	start := r.i + 1
	esc := false
	i := start
	// Eight bytes at a time up to the first that is '"', '\\' or a control character (the bytes
	// the loop below acts on; every other byte it passes over): in each mask the lowest set
	// high bit marks the first such byte exactly (a borrow only flags bytes above a true one).
	for ; i+8 <= len(r.s); i += 8 {
		x := uint64(r.s[i]) | uint64(r.s[i+1])<<8 | uint64(r.s[i+2])<<16 | uint64(r.s[i+3])<<24 |
			uint64(r.s[i+4])<<32 | uint64(r.s[i+5])<<40 | uint64(r.s[i+6])<<48 | uint64(r.s[i+7])<<56
		q, b := x^(0x22*lsb8), x^(0x5c*lsb8)
		if m := ((q-lsb8)&^q | (b-lsb8)&^b | (x-0x20*lsb8)&^x) & msb8; m != 0 {
			i += bits.TrailingZeros64(m) / 8
			break
		}
	}
	for ; i < len(r.s); i++ {
		c := r.s[i]
		switch {
		case c == '"':
			r.i = i + 1
			return r.s[start:i], esc
		case c == '\\':
			esc = true
			i++
			if i >= len(r.s) {
				r.fail()
				return "", false
			}
			switch r.s[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if i+4 >= len(r.s) {
					r.fail()
					return "", false
				}
				for _, h := range []byte(r.s[i+1 : i+5]) {
					if !isHex(h) {
						r.fail()
						return "", false
					}
				}
				i += 4
			default:
				r.fail()
				return "", false
			}
		case c < 0x20:
			r.fail()
			return "", false
		}
	}
	r.fail()
	return "", false
}

// lsb8 and msb8 are the low and the high bit of each byte of a uint64.
const (
	lsb8 = 0x0101010101010101
	msb8 = 0x8080808080808080
)

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// value reads any value.
func (r *jsonReader) value(depth int) jsonValue {
	r.ws()
	if r.i >= len(r.s) {
		r.fail()
		return jsonValue{}
	}
	start := r.i
	switch c := r.s[r.i]; {
	case c == '"':
		body, esc := r.str()
		return jsonValue{kind: jsonString, raw: body, escaped: esc}
	case c == '-' || ('0' <= c && c <= '9'):
		r.number()
		return jsonValue{kind: jsonNumber, raw: r.s[start:r.i]}
	case c == 't':
		r.literal("true")
		return jsonValue{kind: jsonBool, raw: r.s[start:r.i]}
	case c == 'f':
		r.literal("false")
		return jsonValue{kind: jsonBool, raw: r.s[start:r.i]}
	case c == 'n':
		r.literal("null")
		return jsonValue{kind: jsonNull}
	case c == '[':
		if depth >= maxJSONDepth {
			r.fail()
			return jsonValue{}
		}
		r.i++
		r.ws()
		if r.i < len(r.s) && r.s[r.i] == ']' {
			r.i++
		} else {
			for !r.bad {
				r.value(depth + 1)
				r.ws()
				if r.i >= len(r.s) {
					r.fail()
				} else if r.s[r.i] == ',' {
					r.i++
				} else if r.s[r.i] == ']' {
					r.i++
					break
				} else {
					r.fail()
				}
			}
		}
		return jsonValue{kind: jsonArray, raw: r.s[start:r.i]}
	case c == '{':
		if depth >= maxJSONDepth {
			r.fail()
			return jsonValue{}
		}
		r.i++
		for first := true; ; first = false {
			if _, ok := r.member(first); !ok {
				break
			}
			r.value(depth + 1)
		}
		return jsonValue{kind: jsonObject, raw: r.s[start:r.i]}
	}
	r.fail()
	return jsonValue{}
}

func (r *jsonReader) literal(lit string) {
	if len(r.s)-r.i >= len(lit) && r.s[r.i:r.i+len(lit)] == lit {
		r.i += len(lit)
		return
	}
	r.fail()
}

// number reads a number (RFC 8259 §6) and refuses one that is not a finite float64.
func (r *jsonReader) number() {
	s, i := r.s, r.i
	if i < len(s) && s[i] == '-' {
		i++
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case i < len(s) && '1' <= s[i] && s[i] <= '9':
		for i < len(s) && '0' <= s[i] && s[i] <= '9' {
			i++
		}
	default:
		r.fail()
		return
	}
	simple := i-r.i <= 15
	if i < len(s) && s[i] == '.' {
		i++
		d := i
		for i < len(s) && '0' <= s[i] && s[i] <= '9' {
			i++
		}
		if i == d {
			r.fail()
			return
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		simple = false
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		d := i
		for i < len(s) && '0' <= s[i] && s[i] <= '9' {
			i++
		}
		if i == d {
			r.fail()
			return
		}
	}
	if !simple { // up to 15 integer digits and no exponent is always finite
		if _, err := strconv.ParseFloat(s[r.i:i], 64); err != nil {
			r.fail()
			return
		}
	}
	r.i = i
}

// numberValue returns the float64 of a number value.
func numberValue(v jsonValue) (float64, bool) {
	if v.kind != jsonNumber {
		return 0, false
	}
	if n := len(v.raw); n > 0 && n <= 15 { // the common NumericDate: a plain integer
		var i int64
		for j := 0; j < n; j++ {
			c := v.raw[j]
			if c < '0' || c > '9' {
				goto slow
			}
			i = i*10 + int64(c-'0')
		}
		return float64(i), true
	}
slow:
	f, err := strconv.ParseFloat(v.raw, 64)
	return f, err == nil
}

// stringArray returns the strings of an array value of strings only.
func stringArray(v jsonValue) ([]string, bool) {
	if v.kind != jsonArray {
		return nil, false
	}
	r := jsonReader{s: v.raw, i: 1}
	r.ws()
	if r.i < len(r.s) && r.s[r.i] == ']' {
		return []string{}, true
	}
	out := make([]string, 0, 2)
	for {
		e := r.value(1)
		if r.bad || e.kind != jsonString {
			return nil, false
		}
		out = append(out, e.text())
		r.ws()
		if r.i >= len(r.s) {
			return nil, false
		}
		if r.s[r.i] == ']' {
			return out, true
		}
		if r.s[r.i] != ',' {
			return nil, false
		}
		r.i++
	}
}

// memberSet detects duplicate member names at the top level of a header or payload (RFC 7515
// §4, RFC 7519 §4: reject rather than take the last one). Names that differ only in case count
// as duplicates in both, the rule of the claims (below); no header needs such a pair.
type memberSet struct {
	names [24]string
	n     int
	// more holds the names after the first 24, by a hash of their folded form: an open
	// addressing table that doubles when half full, so that a payload of many claims costs a
	// few allocations, not one per claim.
	more []foldEntry
	used int
}

type foldEntry struct {
	hash uint64
	name string
}

// add records name and reports false if a name equal to it under Unicode simple case folding
// was already there: encoding/json, which UnmarshalClaims uses, fills a struct field from any member whose
// name folds to the field's ("SUB", "Sub" and "ſub" fill `json:"sub"`), so such names are
// duplicates for the claims (strings.EqualFold, the rule of encoding/json).
func (m *memberSet) add(name string) bool {
	for _, s := range m.names[:m.n] {
		// Most names differ in a first ASCII byte; EqualFold only for the others.
		if len(s) > 0 && len(name) > 0 && s[0] < utf8.RuneSelf && name[0] < utf8.RuneSelf &&
			lowerASCII(s[0]) != lowerASCII(name[0]) {
			continue
		}
		if strings.EqualFold(s, name) {
			return false
		}
	}
	if m.n < len(m.names) {
		m.names[m.n] = name
		m.n++
		return true
	}
	h := foldHash(name)
	if m.more != nil {
		mask := uint64(len(m.more) - 1)
		for i := h & mask; m.more[i].hash != 0 || m.more[i].name != ""; i = (i + 1) & mask {
			if m.more[i].hash == h && strings.EqualFold(m.more[i].name, name) {
				return false
			}
		}
	}
	if 2*(m.used+1) > len(m.more) {
		old := m.more
		m.more = make([]foldEntry, max(64, 2*len(old)))
		for _, e := range old {
			if e.hash != 0 || e.name != "" {
				m.insert(e)
			}
		}
	}
	m.insert(foldEntry{h, name})
	m.used++
	return true
}

func (m *memberSet) insert(e foldEntry) {
	mask := uint64(len(m.more) - 1)
	i := e.hash & mask
	for m.more[i].hash != 0 || m.more[i].name != "" {
		i = (i + 1) & mask
	}
	m.more[i] = e
}

// foldHash hashes name so that names equal under strings.EqualFold hash alike: each rune is
// replaced by the smallest rune of its case-folding orbit (for ASCII letters the upper-case
// letter: the other members of the orbits of K and S, U+212A and U+017F, are larger), then
// hashed with FNV-1a. It is never 0 for a non-empty name.
func foldHash(name string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(name); {
		r := rune(name[i])
		if r < utf8.RuneSelf {
			if 'a' <= r && r <= 'z' {
				r -= 'a' - 'A'
			}
			i++
		} else {
			var size int
			r, size = utf8.DecodeRuneInString(name[i:])
			i += size
			r = minFold(r)
		}
		h = (h ^ uint64(r)) * 1099511628211
	}
	if h == 0 {
		h = 1
	}
	return h
}

// minFold returns the smallest rune of r's case-folding orbit (unicode.SimpleFold).
func minFold(r rune) rune {
	m := r
	for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
		m = min(m, f)
	}
	return m
}

func lowerASCII(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// CheckMembers reads doc, which must be one JSON object in UTF-8 (RFC 8259 §4, §8.1), and
// refuses what would make encoding/json read it otherwise than its exact member names say: a
// member name twice at the top level, also under case folding (encoding/json keeps the last),
// and a member whose name equals one of fields only without regard to case (encoding/json fills
// a struct field from it). Numbers must be finite float64 values and nesting is bounded, as in
// ParseClaims. It is for JSON documents of the provider whose members may come from users, such
// as introspection answers (RFC 7662 §2.2) that carry a token's custom claims. Error.Name may
// hold a member name of doc, unescaped and unbounded.
func CheckMembers(doc string, fields ...string) *Error {
	if !utf8.ValidString(doc) {
		return malformed("", "not UTF-8")
	}
	r := jsonReader{s: doc}
	if !r.begin() {
		return malformed("", "not a JSON object")
	}
	var seen memberSet
	for first := true; ; first = false {
		name, ok := r.member(first)
		if !ok {
			break
		}
		if !seen.add(name) {
			return malformed(name, "duplicate member (names compare without regard to case)")
		}
		for _, f := range fields {
			if name != f && strings.EqualFold(name, f) {
				return malformed(name, "member name differs from "+f+" only in case")
			}
		}
		if r.value(0); r.bad {
			return malformed(name, "value not valid JSON, a number beyond float64, or nested too deep")
		}
	}
	if !r.end() {
		return malformed("", "not valid JSON")
	}
	return nil
}

// JSONNames returns the member names that encoding/json reads into the struct v points to: each
// exported field's name in its json tag, or the field's own name, skipping fields tagged "-".
// They are the fields to give CheckMembers for a document decoded into v.
func JSONNames(v any) []string {
	t := reflect.TypeOf(v).Elem()
	names := make([]string, 0, t.NumField())
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if !f.IsExported() || tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if name == "" {
			name = f.Name
		}
		names = append(names, name)
	}
	return names
}
