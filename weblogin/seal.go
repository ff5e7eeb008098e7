package weblogin

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"golang.org/x/oauth2"

	"github.com/ones-now/onesoidc"
)

// SealKeySize is the size of Config.SealKey: an AES-256 key.
const SealKeySize = 32

// sealer seals login results with AES-256-GCM (NIST SP 800-38D) before they reach the Store,
// so that a store holds no token in clear, whatever it is. The additional data binds a sealed
// result to its login, so that it cannot be moved to another.
type sealer struct{ aead cipher.AEAD }

func newSealer(key []byte) (*sealer, error) {
	if len(key) != SealKeySize {
		return nil, fmt.Errorf("weblogin: SealKey has %d bytes, want %d (AES-256)", len(key), SealKeySize)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("weblogin: SealKey: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("weblogin: SealKey: %w", err)
	}
	return &sealer{aead}, nil
}

// errUnseal reports a sealed result that does not open: another key, another login, or bytes
// changed in the store.
var errUnseal = errors.New("weblogin: sealed login result does not open with this key for this login")

func (s *sealer) seal(plain []byte, l *Login) []byte {
	nonce := make([]byte, s.aead.NonceSize(), s.aead.NonceSize()+len(plain)+s.aead.Overhead())
	_, _ = rand.Read(nonce) // never fails (crypto/rand)
	return s.aead.Seal(nonce, nonce, plain, sealAD(l))
}

func (s *sealer) open(sealed []byte, l *Login) ([]byte, error) {
	n := s.aead.NonceSize()
	if len(sealed) < n+s.aead.Overhead() {
		return nil, errUnseal
	}
	plain, err := s.aead.Open(nil, sealed[:n], sealed[n:], sealAD(l))
	if err != nil {
		return nil, errUnseal
	}
	return plain, nil
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
