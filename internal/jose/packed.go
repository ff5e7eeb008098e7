package jose

import (
	"encoding/binary"
	"math"
	"math/bits"
	"strconv"
	"unsafe"
)

// Packed is the compact, immutable form of a verified payload and its Claims, small enough to
// keep for every cached token: one string, which a cache can hold by a single pointer (PackedAt),
// made of a fixed header (Has, Exp, Nbf, Iat, the lengths and a 16-bit tag of the caller's), the
// payload text once, the strings that held escapes (so are not text of the payload), the values
// of aud, amr and roles as 4-byte spans, and a 4-byte span for each claim string the token has
// (auth_time as the text of its number). A payload whose text would need offsets over 16 bits,
// or a list of more than 255 values, is kept whole (Compact reports false): then only Payload,
// Tag and Roles (which parses it again) are served. The zero Packed holds nothing.
type Packed struct{ text string }

// The header of a Packed, at the start of its text (little-endian).
const (
	hTotal = 0  // uint32: the length of the text
	hHas   = 4  // uint32: Claims.Has
	hExp   = 8  // float64 bits
	hNbf   = 16 // float64 bits
	hIat   = 24 // float64 bits
	hPlen  = 32 // uint16: payload length (compact)
	hLists = 34 // uint16: offset of the list spans in the body
	hMask  = 36 // uint16: bit i set: string i has a span
	hNAud  = 38 // uint8 each: values of aud, amr, roles
	hNAmr  = 39
	hNRole = 40
	hFlags = 41 // flagWhole
	hTag   = 42 // uint16: the caller's
	header = 44 // the body (payload first) starts here
)

const flagWhole = 1

// span is the text of a string: body[off:off+n].
type span struct{ off, n uint16 }

// The strings of a Packed, in the order of Packed.str.
const (
	pIss = iota
	pSub
	pAzp
	pNonce
	pAuthReqID
	pAtHash
	pClientID
	pScope
	pUsername
	pRole
	pIdpRole
	pAcr
	pName
	pEmail
	pAuthTime // the number's text
	numPacked
)

// maxPackedText bounds the text of the compact form (16-bit offsets); maxPackedList the values
// of one list.
const (
	maxPackedText = 1<<16 - 1
	maxPackedList = 1<<8 - 1
)

// Pack returns the packed form of cl, the claims ParseClaims read from payload, with the
// caller's tag. Strings of cl must be text of payload or strings of their own (with escapes), as
// ParseClaims leaves them.
func Pack(payload string, cl *Claims, tag uint16) Packed {
	authTime := cl.authTimeText
	if cl.Has&HasAuthTime != 0 && authTime == "" {
		authTime = strconv.FormatFloat(cl.AuthTime, 'g', -1, 64) // exact: parses back to the same float64
	}
	strs := [numPacked]string{cl.Iss, cl.Sub, cl.Azp, cl.Nonce, cl.AuthReqID, cl.AtHash, cl.ClientID, cl.Scope,
		cl.Username, cl.Role, cl.IdpRole, cl.Acr, cl.Name, cl.Email, authTime}
	lists := [3][]string{cl.Aud, cl.Amr, cl.Roles}
	extra, values, present := 0, 0, 0
	for _, s := range strs {
		if s != "" {
			present++
		}
		if _, in := within(payload, s); !in {
			extra += len(s)
		}
	}
	for _, l := range lists {
		values += len(l)
		for _, s := range l {
			if _, in := within(payload, s); !in {
				extra += len(s)
			}
		}
	}
	body := len(payload) + extra + 4*values + 4*present
	whole := body > maxPackedText || len(cl.Aud) > maxPackedList || len(cl.Amr) > maxPackedList ||
		len(cl.Roles) > maxPackedList
	if whole {
		body = len(payload)
	}
	buf := make([]byte, header, header+body)
	le := binary.LittleEndian
	le.PutUint32(buf[hTotal:], uint32(header+body))
	le.PutUint32(buf[hHas:], cl.Has)
	le.PutUint64(buf[hExp:], math.Float64bits(cl.Exp))
	le.PutUint64(buf[hNbf:], math.Float64bits(cl.Nbf))
	le.PutUint64(buf[hIat:], math.Float64bits(cl.Iat))
	le.PutUint16(buf[hTag:], tag)
	buf = append(buf, payload...)
	if whole {
		buf[hFlags] = flagWhole
		return Packed{unsafe.String(unsafe.SliceData(buf), len(buf))} // buf is not written again
	}
	le.PutUint16(buf[hPlen:], uint16(len(payload)))
	buf[hNAud], buf[hNAmr], buf[hNRole] = uint8(len(cl.Aud)), uint8(len(cl.Amr)), uint8(len(cl.Roles))
	place := func(s string) span {
		if off, in := within(payload, s); in {
			return span{uint16(off), uint16(len(s))}
		}
		sp := span{uint16(len(buf) - header), uint16(len(s))}
		buf = append(buf, s...)
		return sp
	}
	var spans [3*maxPackedList + numPacked]span
	n := 0
	for _, l := range lists {
		for _, s := range l {
			spans[n] = place(s)
			n++
		}
	}
	var mask uint16
	for i, s := range strs {
		if s != "" {
			mask |= 1 << i
			spans[n] = place(s)
			n++
		}
	}
	le.PutUint16(buf[hLists:], uint16(len(buf)-header))
	le.PutUint16(buf[hMask:], mask)
	for _, sp := range spans[:n] {
		buf = le.AppendUint16(buf, sp.off)
		buf = le.AppendUint16(buf, sp.n)
	}
	return Packed{unsafe.String(unsafe.SliceData(buf), len(buf))} // buf is not written again
}

// PackPayload returns the packed form of a JSON object whose members are not claims read here,
// such as an introspection answer (RFC 7662 §2.2): only Payload gives something back.
func PackPayload(payload string) Packed {
	var cl Claims
	return Pack(payload, &cl, 0)
}

// PackedAt returns the Packed whose text starts at p, as Ptr returned it.
func PackedAt(p *byte) Packed {
	if p == nil {
		return Packed{}
	}
	n := binary.LittleEndian.Uint32(unsafe.Slice(p, header))
	return Packed{unsafe.String(p, n)}
}

// Ptr returns the start of p's text: with PackedAt, a Packed held by one pointer.
func (p Packed) Ptr() *byte { return unsafe.StringData(p.text) }

// within returns the offset of s in payload, if s is text of payload (or empty).
func within(payload, s string) (int, bool) {
	if len(s) == 0 {
		return 0, true
	}
	d := uintptr(unsafe.Pointer(unsafe.StringData(s))) - uintptr(unsafe.Pointer(unsafe.StringData(payload)))
	if d < uintptr(len(payload)) && d+uintptr(len(s)) <= uintptr(len(payload)) {
		return int(d), true
	}
	return 0, false
}

// u16 and u32 read the header.
func (p Packed) u16(at int) uint16 { return uint16(p.text[at]) | uint16(p.text[at+1])<<8 }
func (p Packed) u32(at int) uint32 { return uint32(p.u16(at)) | uint32(p.u16(at+2))<<16 }
func (p Packed) f64(at int) float64 {
	return math.Float64frombits(uint64(p.u32(at)) | uint64(p.u32(at+4))<<32)
}

// at returns the string of the 4-byte span at offset k of the body.
func (p Packed) at(k int) string {
	body := p.text[header:]
	off := int(body[k]) | int(body[k+1])<<8
	n := int(body[k+2]) | int(body[k+3])<<8
	return body[off : off+n]
}

func (p Packed) whole() bool { return p.text == "" || p.text[hFlags]&flagWhole != 0 }

// Has, Exp, Nbf and Iat are those of the Claims packed; Tag is the caller's.
func (p Packed) Has() uint32 {
	if p.text == "" {
		return 0
	}
	return p.u32(hHas)
}

// Tag returns the tag given to Pack.
func (p Packed) Tag() uint16 {
	if p.text == "" {
		return 0
	}
	return p.u16(hTag)
}

// Payload returns the verified payload, a JSON object.
func (p Packed) Payload() string {
	if p.text == "" {
		return ""
	}
	if p.whole() {
		return p.text[header:]
	}
	return p.text[header : header+int(p.u16(hPlen))]
}

// Compact reports whether p holds its claims (else only the payload).
func (p Packed) Compact() bool { return !p.whole() }

// Bytes returns the length of p's text, all the memory it holds.
func (p Packed) Bytes() int { return len(p.text) }

// parse returns the claims of a payload kept whole, parsed again.
func (p Packed) parse() *Claims {
	cl := new(Claims)
	if ParseClaims(p.Payload(), cl) != nil {
		return new(Claims)
	}
	return cl
}

// list appends the values of list i (0 aud, 1 amr, 2 roles) to dst.
func (p Packed) list(dst []string, i int) []string {
	if p.whole() {
		cl := p.parse()
		return append(dst, [3][]string{cl.Aud, cl.Amr, cl.Roles}[i]...)
	}
	start, n := 0, int(p.text[hNAud])
	switch i {
	case 1:
		start, n = int(p.text[hNAud]), int(p.text[hNAmr])
	case 2:
		start, n = int(p.text[hNAud])+int(p.text[hNAmr]), int(p.text[hNRole])
	}
	at := int(p.u16(hLists)) + 4*start
	for j := range n {
		dst = append(dst, p.at(at+4*j))
	}
	return dst
}

// Aud appends the values of "aud" to dst.
func (p Packed) Aud(dst []string) []string { return p.list(dst, 0) }

// HasAmr reports whether "amr" has values.
func (p Packed) HasAmr() bool {
	if p.whole() {
		return len(p.parse().Amr) > 0
	}
	return p.text[hNAmr] > 0
}

// AppendAmr appends the values of "amr" to dst.
func (p Packed) AppendAmr(dst []string) []string { return p.list(dst, 1) }

// Amr returns the values of "amr" in a new slice, nil if there are none.
func (p Packed) Amr() []string { return p.fresh(1) }

// Roles returns the values of "roles" in a new slice, nil if there are none.
func (p Packed) Roles() []string { return p.fresh(2) }

func (p Packed) fresh(i int) []string {
	if p.whole() {
		cl := p.parse()
		l := [3][]string{cl.Aud, cl.Amr, cl.Roles}[i]
		if len(l) == 0 {
			return nil
		}
		return l
	}
	n := p.text[hNAud+i]
	if n == 0 {
		return nil
	}
	return p.list(make([]string, 0, n), i)
}

// Unpack sets cl to the claims of p, except Amr and Roles; cl.Aud is appended to aud.
func (p Packed) Unpack(cl *Claims, aud []string) {
	if p.whole() {
		*cl = *p.parse()
		cl.Aud = append(aud, cl.Aud...)
		cl.Amr, cl.Roles = nil, nil
		return
	}
	*cl = Claims{Has: p.u32(hHas), Exp: p.f64(hExp), Nbf: p.f64(hNbf), Iat: p.f64(hIat)}
	nAud := int(p.text[hNAud])
	k := int(p.u16(hLists)) + 4*(nAud+int(p.text[hNAmr])+int(p.text[hNRole]))
	strs := [numPacked]*string{&cl.Iss, &cl.Sub, &cl.Azp, &cl.Nonce, &cl.AuthReqID, &cl.AtHash, &cl.ClientID,
		&cl.Scope, &cl.Username, &cl.Role, &cl.IdpRole, &cl.Acr, &cl.Name, &cl.Email, nil}
	for mask := p.u16(hMask); mask != 0; mask &= mask - 1 {
		i := bits.TrailingZeros16(mask)
		if i == pAuthTime {
			cl.AuthTime, _ = numberValue(jsonValue{kind: jsonNumber, raw: p.at(k)})
		} else {
			*strs[i] = p.at(k)
		}
		k += 4
	}
	if cl.Has&HasAud != 0 {
		cl.Aud = p.list(aud, 0)
	}
}
