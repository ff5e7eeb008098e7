package cache

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"hash"
	"sync"
	"unsafe"
)

// Key is the 16-byte keyed hash of what an entry answers (Cache.Key): a token is never kept.
type Key = [16]byte

// hasher computes Cache.Key: the GHASH of the input under a random key, encrypted with AES
// under a second random key: AES-K2(GHASH-H(s) ⊕ E-K1(J0)), the tag of AES-128-GCM with an empty
// plaintext, s as its additional data and a fixed nonce (NIST SP 800-38D §7.1), put through one
// more AES-128 block encryption. It is the universal-hash-then-block-cipher construction by
// which AES-GCM-SIV derives its synthetic IV (RFC 8452 §4), used here as a pseudorandom function
// of the token:
//
//   - GHASH under a secret H is almost-XOR-universal: two distinct inputs of at most l 128-bit
//     blocks give the same value with probability at most l/2^128 (SP 800-38D Appendix B), so a
//     token that is not the cached one finds its entry with probability at most 2^-118 (tokens
//     of at most 16 KiB), whatever its maker knows;
//   - the outer AES block hides the hash, so that even keys that leaked (they never leave the
//     process) would tell nothing about H; the two keys are random per cache and never leave it.
//
// A hash with these properties was wanted instead of SHA-256 for speed: on a CPU with AES-NI
// and carry-less multiplication it costs a third of SHA-256 with SHA-NI on a 900-byte token,
// and the hash is most of the cost of a cache hit. Where AES-GCM with a caller's nonce is
// refused (GODEBUG=fips140=only), the key is HMAC-SHA-256 (RFC 2104) under a random key, cut to
// 16 bytes.
type hasher struct {
	mac     cipher.AEAD
	prp     cipher.Block
	scratch sync.Pool // *[32]byte: the tag or sum; a stack buffer would escape through the interfaces
	hmacs   sync.Pool // hash.Hash: HMAC-SHA-256 when mac is nil
}

// zeroNonce is the fixed GCM nonce: the tag is never sent anywhere, so a fixed nonce makes it a
// deterministic function of the input, as a key must be.
var zeroNonce [12]byte

// newHasher returns a hasher under fresh random keys.
func newHasher() *hasher {
	keys := make([]byte, 32)
	rand.Read(keys) // crypto/rand.Read never fails (Go 1.24+)
	return newHasherWith(keys, true)
}

// newHasherWith returns a hasher under keys (32 bytes), of AES-GCM when gcm is true and Go
// allows it, else of HMAC-SHA-256.
func newHasherWith(keys []byte, gcm bool) *hasher {
	h := &hasher{}
	h.scratch.New = func() any { return new([32]byte) }
	h.hmacs.New = func() any { return hmac.New(sha256.New, keys) }
	if !gcm {
		return h
	}
	block, err := aes.NewCipher(keys[:16])
	if err != nil {
		return h
	}
	mac, err := cipher.NewGCM(block)
	if err != nil {
		return h
	}
	prp, err := aes.NewCipher(keys[16:])
	if err != nil {
		return h
	}
	h.mac, h.prp = mac, prp
	return h
}

// key returns the key of s.
func (h *hasher) key(s string) (k Key) {
	b := unsafe.Slice(unsafe.StringData(s), len(s)) // read only
	if h.mac == nil {
		m, buf := h.hmacs.Get().(hash.Hash), h.scratch.Get().(*[32]byte)
		m.Reset()
		m.Write(b)
		k = Key(m.Sum(buf[:0]))
		h.hmacs.Put(m)
		h.scratch.Put(buf)
		return k
	}
	buf := h.scratch.Get().(*[32]byte)
	tag := h.mac.Seal(buf[:0], zeroNonce[:], nil, b)
	h.prp.Encrypt(buf[16:], tag)
	k = Key(buf[16:])
	h.scratch.Put(buf)
	return k
}
