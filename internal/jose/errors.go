package jose

// Kind classifies a parse failure by what it means for the token.
type Kind uint8

const (
	// Malformed: the token, header or payload is not what RFC 7515 / RFC 7519 allow (or what this
	// package refuses on purpose, such as "crit" or keys carried in the header).
	Malformed Kind = iota + 1
	// BadIssuer: "iss" is of the wrong type.
	BadIssuer
	// BadAudience: "aud" is of the wrong type.
	BadAudience
	// BadClaim: another registered claim is of the wrong type.
	BadClaim
)

// Error is a parse failure: its kind, the header parameter or claim it concerns (or ""), and a
// message that never quotes token bytes other than a member name.
type Error struct {
	Kind Kind
	Name string
	Msg  string
}

// Error returns "jose: ", the name if any, and the message.
func (e *Error) Error() string {
	if e.Name == "" {
		return "jose: " + e.Msg
	}
	return "jose: " + e.Name + ": " + e.Msg
}

func malformed(name, msg string) *Error { return &Error{Kind: Malformed, Name: name, Msg: msg} }
