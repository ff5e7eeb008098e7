package jose

import (
	"encoding/binary"
	"strconv"
	"unsafe"
)

// Packed is the compact, immutable form of a verified payload and its Claims, small enough to
// keep for every cached token: the payload text once, and where in it each claim lies. Strings
// that held escapes (so are not text of the payload) follow the payload; the values of aud, amr
// and roles follow as 4-byte spans; auth_time is kept as the text of its number. A payload whose
// text would need offsets over 16 bits, or a list of more than 255 values, is kept whole
// (Compact reports false): then only Payload and Roles (which parses it again) are served.
type Packed struct {
	text              string
	str               [numPacked]span
	plen, lists       uint16 // payload length; offset of the list spans
	nAud, nAmr, nRole uint8
	whole             bool // not compact: text is the payload
	// Has, Exp, Nbf and Iat are those of Claims.
	Has           uint32
	Exp, Nbf, Iat float64
}

// span is the text of a string: text[off:off+n].
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

// Pack returns the packed form of cl, the claims ParseClaims read from payload. Strings of cl
// must be text of payload or strings of their own (with escapes), as ParseClaims leaves them.
func Pack(payload string, cl *Claims) Packed {
	p := Packed{text: payload, Has: cl.Has, Exp: cl.Exp, Nbf: cl.Nbf, Iat: cl.Iat}
	authTime := cl.authTimeText
	if cl.Has&HasAuthTime != 0 && authTime == "" {
		authTime = strconv.FormatFloat(cl.AuthTime, 'g', -1, 64) // exact: parses back to the same float64
	}
	strs := [numPacked]string{cl.Iss, cl.Sub, cl.Azp, cl.Nonce, cl.AuthReqID, cl.AtHash, cl.ClientID, cl.Scope,
		cl.Username, cl.Role, cl.IdpRole, cl.Acr, cl.Name, cl.Email, authTime}
	lists := [3][]string{cl.Aud, cl.Amr, cl.Roles}
	extra, values := 0, 0
	for _, s := range strs {
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
	total := len(payload) + extra + 4*values
	if total > maxPackedText || len(cl.Aud) > maxPackedList || len(cl.Amr) > maxPackedList || len(cl.Roles) > maxPackedList {
		p.whole = true
		return p
	}
	p.plen = uint16(len(payload))
	p.nAud, p.nAmr, p.nRole = uint8(len(cl.Aud)), uint8(len(cl.Amr)), uint8(len(cl.Roles))
	var buf []byte
	if total > len(payload) {
		buf = make([]byte, 0, total)
		buf = append(buf, payload...)
	}
	place := func(s string) span {
		if off, in := within(payload, s); in {
			return span{uint16(off), uint16(len(s))}
		}
		sp := span{uint16(len(buf)), uint16(len(s))}
		buf = append(buf, s...)
		return sp
	}
	for i, s := range strs {
		p.str[i] = place(s)
	}
	var spans [3 * maxPackedList]span
	n := 0
	for _, l := range lists {
		for _, s := range l {
			spans[n] = place(s)
			n++
		}
	}
	if buf != nil {
		p.lists = uint16(len(buf))
		for _, sp := range spans[:n] {
			buf = binary.LittleEndian.AppendUint16(buf, sp.off)
			buf = binary.LittleEndian.AppendUint16(buf, sp.n)
		}
		p.text = unsafe.String(unsafe.SliceData(buf), len(buf)) // buf is not written again
	}
	return p
}

// PackPayload returns the packed form of a JSON object whose members are not claims read here,
// such as an introspection answer (RFC 7662 §2.2): only Payload gives something back.
func PackPayload(payload string) Packed {
	var cl Claims
	return Pack(payload, &cl)
}

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

func (p *Packed) s(i int) string {
	sp := p.str[i]
	return p.text[sp.off : int(sp.off)+int(sp.n)]
}

// Payload returns the verified payload, a JSON object.
func (p *Packed) Payload() string {
	if p.whole {
		return p.text
	}
	return p.text[:p.plen]
}

// Compact reports whether p holds its claims (else only the payload).
func (p *Packed) Compact() bool { return !p.whole }

// Bytes returns the bytes the packed form holds beyond its own size.
func (p *Packed) Bytes() int { return len(p.text) }

// whole returns the claims of a payload kept whole, parsed again.
func (p *Packed) parse() *Claims {
	cl := new(Claims)
	if ParseClaims(p.text, cl) != nil {
		return new(Claims)
	}
	return cl
}

// list appends the values of list i (0 aud, 1 amr, 2 roles) to dst.
func (p *Packed) list(dst []string, i int) []string {
	if p.whole {
		cl := p.parse()
		return append(dst, [3][]string{cl.Aud, cl.Amr, cl.Roles}[i]...)
	}
	start, n := 0, int(p.nAud)
	switch i {
	case 1:
		start, n = int(p.nAud), int(p.nAmr)
	case 2:
		start, n = int(p.nAud)+int(p.nAmr), int(p.nRole)
	}
	at := int(p.lists) + 4*start
	for j := range n {
		k := at + 4*j
		off := int(p.text[k]) | int(p.text[k+1])<<8
		l := int(p.text[k+2]) | int(p.text[k+3])<<8
		dst = append(dst, p.text[off:off+l])
	}
	return dst
}

// Aud appends the values of "aud" to dst.
func (p *Packed) Aud(dst []string) []string { return p.list(dst, 0) }

// HasAmr reports whether "amr" has values.
func (p *Packed) HasAmr() bool {
	if p.whole {
		return len(p.parse().Amr) > 0
	}
	return p.nAmr > 0
}

// AppendAmr appends the values of "amr" to dst.
func (p *Packed) AppendAmr(dst []string) []string { return p.list(dst, 1) }

// Amr returns the values of "amr" in a new slice, nil if there are none.
func (p *Packed) Amr() []string { return p.fresh(1, p.nAmr) }

// Roles returns the values of "roles" in a new slice, nil if there are none.
func (p *Packed) Roles() []string { return p.fresh(2, p.nRole) }

func (p *Packed) fresh(i int, n uint8) []string {
	if p.whole {
		cl := p.parse()
		l := [3][]string{cl.Aud, cl.Amr, cl.Roles}[i]
		if len(l) == 0 {
			return nil
		}
		return l
	}
	if n == 0 {
		return nil
	}
	return p.list(make([]string, 0, n), i)
}

// Unpack sets cl to the claims of p, except Amr and Roles; cl.Aud is appended to aud.
func (p *Packed) Unpack(cl *Claims, aud []string) {
	if p.whole {
		*cl = *p.parse()
		cl.Aud = append(aud, cl.Aud...)
		cl.Amr, cl.Roles = nil, nil
		return
	}
	*cl = Claims{
		Has: p.Has, Iss: p.s(pIss), Sub: p.s(pSub), Azp: p.s(pAzp), Nonce: p.s(pNonce), AuthReqID: p.s(pAuthReqID),
		AtHash: p.s(pAtHash), ClientID: p.s(pClientID), Scope: p.s(pScope), Username: p.s(pUsername),
		Role: p.s(pRole), IdpRole: p.s(pIdpRole), Acr: p.s(pAcr), Name: p.s(pName), Email: p.s(pEmail),
		Exp: p.Exp, Nbf: p.Nbf, Iat: p.Iat,
	}
	if p.Has&HasAuthTime != 0 {
		cl.AuthTime, _ = numberValue(jsonValue{kind: jsonNumber, raw: p.s(pAuthTime)})
	}
	if p.Has&HasAud != 0 {
		cl.Aud = p.list(aud, 0)
	}
}
