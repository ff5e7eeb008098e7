package weblogin

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"golang.org/x/oauth2"

	"github.com/ones-now/onesoidc"
)

// SealKeySize is the size of Config.SealKey: an AES-256 key.
const SealKeySize = 32

// sealer seals login results with AES-256-GCM (NIST SP 800-38D) before they reach the Store,
// so that a store holds no token in clear, whatever it is. The additional data binds a sealed
// result to its login, so that it cannot be moved to another.
//
// It seals under its first key (Config.SealKey) and opens with each of its keys in turn
// (SealKey, then Config.PreviousSealKeys in order). The sealed result is nonce || ciphertext ||
// tag, as in earlier releases, with no key id: replicas of one release and of the release before
// it share a store during a rolling upgrade, and neither must find a result of the other
// unreadable (the release before opens no result with a key id in front). Trying the keys in
// turn costs one failed GCM open for each key before the one that fits: 1 to 2 µs for a 2 KB
// result (BenchmarkSealOpen), once per collected login, and only for results sealed before the
// last change of SealKey. A wrong key passes the 128-bit tag with probability 2^-128.
type sealer struct{ aeads []cipher.AEAD }

// newSealer returns the sealer of key and the previous keys, checked as Config fields: each
// SealKeySize bytes, none repeated. The errors name the field, never a key byte.
func newSealer(key []byte, previous ...[]byte) (*sealer, error) {
	s := &sealer{aeads: make([]cipher.AEAD, 0, 1+len(previous))}
	for i, k := range append([][]byte{key}, previous...) {
		field := "SealKey"
		if i > 0 {
			field = "PreviousSealKeys[" + strconv.Itoa(i-1) + "]"
		}
		if len(k) != SealKeySize {
			return nil, &ConfigError{field, fmt.Sprintf("has %d bytes, want %d (AES-256)", len(k), SealKeySize)}
		}
		if i > 0 {
			if subtle.ConstantTimeCompare(k, key) == 1 {
				return nil, &ConfigError{field, "repeats SealKey: the current key is not a previous one"}
			}
			for j, seen := range previous[:i-1] {
				if subtle.ConstantTimeCompare(k, seen) == 1 {
					return nil, &ConfigError{field, "repeats PreviousSealKeys[" + strconv.Itoa(j) + "]"}
				}
			}
		}
		block, err := aes.NewCipher(k)
		if err != nil {
			return nil, &ConfigError{field, err.Error()}
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, &ConfigError{field, err.Error()}
		}
		s.aeads = append(s.aeads, aead)
	}
	return s, nil
}

// errUnseal reports a sealed result that does not open: a key that is neither SealKey nor one
// of PreviousSealKeys, another login, or bytes changed in the store.
var errUnseal = errors.New("weblogin: sealed login result does not open with the seal keys for this login")

// seal seals plain for l under the current key.
func (s *sealer) seal(plain []byte, l *Login) []byte {
	aead := s.aeads[0]
	nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plain)+aead.Overhead())
	_, _ = rand.Read(nonce) // never fails (crypto/rand)
	return aead.Seal(nonce, nonce, plain, sealAD(l))
}

// open opens a result sealed for l under any of the keys, the current one first.
func (s *sealer) open(sealed []byte, l *Login) ([]byte, error) {
	n, overhead := s.aeads[0].NonceSize(), s.aeads[0].Overhead()
	if len(sealed) < n+overhead {
		return nil, errUnseal
	}
	ad := sealAD(l)
	for _, aead := range s.aeads {
		if plain, err := aead.Open(nil, sealed[:n], sealed[n:], ad); err == nil {
			return plain, nil
		}
	}
	return nil, errUnseal
}

func sealAD(l *Login) []byte {
	return []byte("onesoidc-weblogin-v1\x00" + l.Session + "\x00" + l.ID + "\x00" + l.PollKey)
}

// storedResult is what a sealed result holds: the tokens, and for QR logins the identity that
// the provider's introspection gave (a CIBA identity is validated again from the ID token when
// it is collected).
type storedResult struct {
	AccessToken  string                        `json:"access_token"`
	TokenType    string                        `json:"token_type,omitempty"`
	RefreshToken string                        `json:"refresh_token,omitempty"`
	Expiry       time.Time                     `json:"expiry,omitzero"`
	ExpiresIn    int64                         `json:"expires_in,omitempty"`
	IDToken      string                        `json:"id_token,omitempty"`
	Scope        string                        `json:"scope,omitempty"`
	AuthReqID    string                        `json:"auth_req_id,omitempty"`
	Entity       *onesoidc.AuthenticatedEntity `json:"entity,omitempty"`
	TokenKind    onesoidc.TokenKind            `json:"token_kind,omitempty"`
}

func encodeResult(res *onesoidc.LoginResult, withEntity bool) ([]byte, error) {
	if res == nil || res.Token == nil {
		return nil, errors.New("weblogin: empty login result")
	}
	sr := storedResult{
		AccessToken: res.Token.AccessToken, TokenType: res.Token.TokenType, RefreshToken: res.Token.RefreshToken,
		Expiry: res.Token.Expiry, ExpiresIn: res.Token.ExpiresIn, IDToken: res.IDToken, Scope: res.Scope, AuthReqID: res.AuthReqID,
	}
	if withEntity && res.Auth != nil {
		e := res.Auth.Entity
		sr.Entity, sr.TokenKind = &e, res.Auth.Kind
	}
	return json.Marshal(sr)
}

func decodeResult(data []byte) (*storedResult, *oauth2.Token, error) {
	var sr storedResult
	if err := json.Unmarshal(data, &sr); err != nil {
		return nil, nil, fmt.Errorf("weblogin: sealed login result: %w", err)
	}
	tok := &oauth2.Token{AccessToken: sr.AccessToken, TokenType: sr.TokenType, RefreshToken: sr.RefreshToken,
		Expiry: sr.Expiry, ExpiresIn: sr.ExpiresIn}
	extra := map[string]any{}
	if sr.IDToken != "" {
		extra["id_token"] = sr.IDToken
	}
	if sr.Scope != "" {
		extra["scope"] = sr.Scope
	}
	return &sr, tok.WithExtra(extra), nil
}
